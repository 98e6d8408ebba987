"""
=========================================================
Distributionally robust gradient boosting with LightGBM
=========================================================

A fifth of the users follow a different labelling rule, and nothing in the
features says who they are. Plain LightGBM fits the majority rule; its
log-loss on the hidden minority is more than twice its average.
:class:`~skrobust.ensemble.DROLGBMClassifier` boosts the same trees on a
robust risk: each round reweights the gradients and hessians by the
worst-case weights of the current losses, so the trees keep working on the
samples the model serves worst.
"""

# %%
import lightgbm as lgb
import matplotlib.pyplot as plt
import numpy as np

from skrobust.ambiguity import ChiSquare, CVaR
from skrobust.ensemble import DROLGBMClassifier


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    minority = rng.uniform(size=n) < 0.2
    score = np.where(minority, X[:, 0] - X[:, 1], X[:, 0] + X[:, 1])
    y = (score + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y, minority


X, y, _ = simulate(3000, 0)
X_test, y_test, minority = simulate(20_000, 1)
params = {"n_estimators": 100, "num_leaves": 15, "random_state": 0, "n_jobs": 1}
models = {
    "LightGBM": lgb.LGBMClassifier(verbose=-1, **params),
    "chi-square DRO (radius 0.5)": DROLGBMClassifier(ChiSquare(radius=0.5), **params),
    "CVaR DRO (alpha 0.2)": DROLGBMClassifier(CVaR(alpha=0.2), **params),
}

average, hidden = [], []
for name, model in models.items():
    proba = model.fit(X, y).predict_proba(X_test)[np.arange(len(y_test)), y_test]
    losses = -np.log(proba)
    average.append(losses.mean())
    hidden.append(losses[minority].mean())
    print(f"{name:28s} average {losses.mean():.3f}  minority {hidden[-1]:.3f}")

# %%
# The robust models give up a little average loss for a much better loss on
# the group nobody labelled.
positions = np.arange(len(models))
plt.figure(figsize=(7, 3.5))
plt.bar(positions - 0.2, average, width=0.4, label="average")
plt.bar(positions + 0.2, hidden, width=0.4, label="hidden minority")
plt.xticks(positions, list(models), fontsize=8)
plt.ylabel("test log-loss")
plt.legend()
plt.tight_layout()
plt.show()
