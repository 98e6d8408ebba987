"""
=====================================================
Residual Horizon Optimization against uniform testing
=====================================================

An experiment compares 10 arms in 4 batches of 40 units and then picks one
arm. The rewards are noisy (unit noise) and the arms differ little (prior
standard deviation 0.3), the regime where the allocation matters.

:class:`~skbandit.experiment.ResidualHorizonOptimization` (RHO) plans each
batch by optimizing, with stochastic gradients, the allocation of all the
remaining units; uniform allocation splits every batch equally. We simulate
both designs on the same draws of true means and rewards and compare their
simple regret (best true mean minus the true mean of the picked arm).
"""

# %%
# Simulate both designs
# ---------------------
import matplotlib.pyplot as plt
import numpy as np

from skbandit.experiment import (
    ResidualHorizonOptimization,
    UniformAllocation,
    simulate_best_arm,
)

shape = dict(n_arms=10, n_batches=4, batch_size=40, prior_var=0.3**2)
n_repeats = 30
uniform = simulate_best_arm(
    UniformAllocation(**shape), n_repeats=n_repeats, random_state=0
)
rho = simulate_best_arm(
    ResidualHorizonOptimization(**shape, max_iter=80),
    n_repeats=n_repeats,
    random_state=0,
)
for name, result in [("uniform", uniform), ("RHO", rho)]:
    regret = result.simple_regret
    print(
        f"{name:8s} simple regret {regret.mean():.3f} "
        f"(s.e. {regret.std(ddof=1) / np.sqrt(n_repeats):.3f}), "
        f"correct selection {result.correct_selection.mean():.2f}"
    )

# %%
# Where RHO sends the units
# -------------------------
# In one simulated experiment, the arms are sorted by their true mean (best
# on top). RHO starts almost uniform and then concentrates the later batches
# on the arms that may still be the best.
order = np.argsort(-rho.means[0])
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
image = axes[0].imshow(
    rho.allocations[0][:, order].T, aspect="auto", cmap="viridis", origin="upper"
)
axes[0].set_xlabel("batch")
axes[0].set_ylabel("arm (sorted by true mean, best on top)")
axes[0].set_title("RHO allocation in one experiment")
fig.colorbar(image, ax=axes[0], label="share of the batch")

means = [uniform.simple_regret.mean(), rho.simple_regret.mean()]
errors = [
    uniform.simple_regret.std(ddof=1) / np.sqrt(n_repeats),
    rho.simple_regret.std(ddof=1) / np.sqrt(n_repeats),
]
axes[1].bar(["uniform", "RHO"], means, yerr=errors, color=["grey", "tab:blue"])
axes[1].set_ylabel("simple regret (mean and s.e.)")
axes[1].set_title(f"{n_repeats} simulated experiments")
fig.tight_layout()
plt.show()
