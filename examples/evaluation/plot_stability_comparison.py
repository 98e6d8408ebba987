"""
=================================================
How far can the data move before a model fails?
=================================================

The stability of a model (Namkoong, Ma and Glynn) is the smallest KL
divergence of a shifted data distribution under which its expected loss
reaches a level the user cannot accept. Unlike a robust loss, it needs no
guess of how large the shift will be: the user states the acceptable
degradation, and the answer is a distance, larger for a more stable model.

Two regressors with similar average errors are compared with
:func:`~skrobust.shift.kl_stability`: a linear model, which has the lower
average error but whose errors pile up in a rare region of the inputs where
the relation bends, and a small boosted model, which is a little worse on
average but follows the bend. The linear model fails under a much smaller
shift. The conditional version lets only the distribution of a core variable
move (the loss given it stays put), which is what a change of population,
rather than of the whole data-generating process, does.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from skrobust.shift import kl_stability

rng = np.random.default_rng(0)
n = 8000
X = rng.normal(size=(n, 3))
# a rare region (X_1 > 1.5) where the relation bends
y = X @ [1.0, 0.5, 0.0] + 3.0 * np.maximum(X[:, 0] - 1.5, 0) ** 2
y += rng.normal(scale=0.8, size=n)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

models = {
    "linear": LinearRegression(),
    "boosting (few, shallow trees)": HistGradientBoostingRegressor(
        max_iter=15, max_depth=2, random_state=0
    ),
}
losses = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    losses[name] = (model.predict(X_test) - y_test) ** 2
    print(f"{name}: test MSE {losses[name].mean():.3f}")

# %%
# Stability at one threshold: the expected squared error reaching 2.0.
for name, loss in losses.items():
    result = kl_stability(loss, threshold=2.0)
    print(
        f"{name}: KL distance to MSE 2.0 = {result.stability:.3f} "
        f"[{result.lower:.3f}, {result.upper:.3f}]"
    )

# %%
# The conditional version: only the distribution of X_1 moves. It is larger
# (a shift of one variable is a special case of any shift), and infinite once
# the threshold exceeds every fitted conditional risk given X_1.
for name, loss in losses.items():
    result = kl_stability(loss, threshold=1.2, Z=X_test[:, [0]], random_state=0)
    joint = kl_stability(loss, threshold=1.2)
    print(
        f"{name}: to MSE 1.2, shifting X_1 only {result.stability:.3f} "
        f"[{result.lower:.3f}, {result.upper:.3f}], any shift {joint.stability:.3f}"
    )

# %%
# The whole profile over thresholds, with 95% intervals.
thresholds = np.linspace(1.0, 3.0, 15)
fig, ax = plt.subplots(figsize=(6, 4))
for name, loss in losses.items():
    results = [kl_stability(loss, t) for t in thresholds]
    ax.plot(thresholds, [r.stability for r in results], marker="o", label=name)
    ax.fill_between(
        thresholds,
        [r.lower for r in results],
        [r.upper for r in results],
        alpha=0.2,
    )
ax.set_xlabel("unacceptable expected squared error (threshold)")
ax.set_ylabel("stability: smallest KL shift (nats)")
ax.legend()
fig.tight_layout()
plt.show()
