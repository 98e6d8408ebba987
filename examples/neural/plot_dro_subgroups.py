"""
===========================================================
Robust versus ERM training of a neural net across subgroups
===========================================================

A data set mixes a majority group (90%) and a minority group (10%) whose
labels follow different rules, and the group is not a feature: the model
cannot tell the groups apart. Empirical risk minimization (ERM) fits the
majority and leaves the minority with a large loss. Training on a robust
risk (chi-square ball or CVaR, :class:`skrobust.nn.DRONeuralNetClassifier`)
up-weights the samples with large losses, which lowers the loss of the
worst group at some cost to the average.

The group labels are used only to evaluate, never to train.
"""

# %%
# Simulated data
# --------------
# Both groups draw features from the same Gaussian; the majority's label is
# the sign of the first feature, the minority's the sign of the second, with
# 5% label noise.
import matplotlib.pyplot as plt
import numpy as np
import torch

from skrobust.ambiguity import ChiSquare, CVaR
from skrobust.nn import DRONeuralNetClassifier

torch.set_num_threads(1)


def simulate(n, rng):
    group = (rng.uniform(size=n) < 0.1).astype(int)
    X = rng.normal(size=(n, 2))
    y = np.where(group == 0, X[:, 0] > 0, X[:, 1] > 0).astype(int)
    flip = rng.uniform(size=n) < 0.05
    return X, np.where(flip, 1 - y, y), group


rng = np.random.default_rng(0)
X, y, _ = simulate(1000, rng)
X_test, y_test, group_test = simulate(5000, rng)

# %%
# ERM and robust fits of the same network
# ---------------------------------------
# Radius 0 of the chi-square ball is ERM. Everything else is identical:
# network, seed, epochs, batch size.
models = {
    "ERM": ChiSquare(radius=0.0),
    "chi-square 0.1": ChiSquare(radius=0.1),
    "chi-square 0.3": ChiSquare(radius=0.3),
    "CVaR 0.3": CVaR(alpha=0.3),
}
results = {}
for name, ambiguity in models.items():
    clf = DRONeuralNetClassifier(
        hidden_layer_sizes=(8,),
        ambiguity=ambiguity,
        max_epochs=30,
        batch_size=200,
        lr=0.03,
        random_state=0,
    ).fit(X, y)
    proba = clf.predict_proba(X_test)
    loss = -np.log(proba[np.arange(len(y_test)), y_test])
    results[name] = {
        "average": loss.mean(),
        "majority": loss[group_test == 0].mean(),
        "minority": loss[group_test == 1].mean(),
    }
    print(
        f"{name:>15}: average {loss.mean():.3f}, "
        f"majority {results[name]['majority']:.3f}, "
        f"minority {results[name]['minority']:.3f}"
    )

# %%
# Test log loss by group
# ----------------------
# The robust fits trade a little average loss for a much smaller loss of the
# minority group, the worst one.
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.25
positions = np.arange(len(results))
keys = ("average", "majority", "minority")
for shift, key in zip((-width, 0.0, width), keys, strict=True):
    ax.bar(positions + shift, [r[key] for r in results.values()], width, label=key)
ax.set_xticks(positions, list(results))
ax.set_ylabel("test log loss")
ax.legend()
fig.tight_layout()
plt.show()
