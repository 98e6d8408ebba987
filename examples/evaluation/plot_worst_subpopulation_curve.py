"""
=====================================================
Worst-case risk over subpopulations, as alpha varies
=====================================================

A model's average error hides the groups it fails. Here a classifier is
evaluated on held-out data by its worst-case error rate over every
subpopulation of mass at least ``alpha`` defined by two core attributes
(``age`` and ``region``, and every intersection of them), with
:class:`~skrobust.metrics.WorstSubpopulationEvaluator`. The evaluator fits the
conditional error rate given the core attributes with cross-fitting once; the
whole curve over ``alpha`` comes from that fit.

Two naive answers are drawn for comparison: the CVaR of the raw 0/1 losses,
which is 1 whenever ``alpha`` is below the error rate (it treats noise as a
subpopulation), and the worst predefined group (the worst region), which
misses the intersection of old age and one region where the errors
concentrate.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from skrobust.ambiguity import CVaR
from skrobust.metrics import WorstSubpopulationEvaluator

rng = np.random.default_rng(0)
n = 12000
age = rng.uniform(20, 80, size=n)
region = rng.integers(0, 3, size=n)
x = rng.normal(size=(n, 3))
# the label is noisier for older people in region 2
noise = 0.3 + 1.7 * ((age > 60) & (region == 2))
y = (x[:, 0] + 0.5 * x[:, 1] + noise * rng.normal(size=n) > 0).astype(int)
X = np.column_stack([age, region, x])
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = HistGradientBoostingClassifier(random_state=0).fit(X_train, y_train)

# %%
# Evaluate on the held-out data; columns 0 and 1 are the core attributes.
evaluator = WorstSubpopulationEvaluator(
    model, subpopulation_size=0.1, core_features=[0, 1], random_state=0
).fit(X_test, y_test)
low, high = evaluator.confidence_interval_
print(f"average error {evaluator.losses_.mean():.3f}")
print(f"worst 10% subpopulation: {evaluator.risk_:.3f} [{low:.3f}, {high:.3f}]")

# %%
# Who is in the worst subpopulation? Its share of each (age > 60, region) cell.
members = evaluator.membership_
for old in (False, True):
    for r in range(3):
        cell = ((X_test[:, 0] > 60) == old) & (X_test[:, 1] == r)
        print(
            f"age {'> 60' if old else '<= 60'}, region {r}: "
            f"{members[cell].mean():.2f} of {cell.sum()} in the worst subpopulation"
        )

# %%
# The curve over alpha, with the two naive answers.
alphas = np.linspace(0.05, 1.0, 40)
curve = evaluator.risk_curve(alphas)
raw = CVaR().risk_curve(evaluator.losses_, alphas)  # one sort for all levels
worst_region = max(evaluator.losses_[X_test[:, 1] == r].mean() for r in range(3))

fig, ax = plt.subplots(figsize=(6, 4))
ax.fill_between(alphas, curve.lower, curve.upper, alpha=0.3, label="95% interval")
ax.plot(alphas, curve.risk, label="worst subpopulation (debiased)")
ax.plot(alphas, raw, "--", label="naive: CVaR of raw losses")
ax.axhline(worst_region, color="gray", linestyle=":", label="naive: worst region")
ax.axhline(evaluator.losses_.mean(), color="black", linewidth=0.8, label="average")
ax.set_xlabel("subpopulation mass alpha")
ax.set_ylabel("error rate")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
