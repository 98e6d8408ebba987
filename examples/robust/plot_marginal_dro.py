r"""
==============================================================
Marginal DRO: protecting subpopulations defined by a covariate
==============================================================

A fifth of the population (:math:`z > 0.6`) has the opposite relation between
:math:`x` and :math:`y` from the rest. Least squares fits the majority, so its
error on that subpopulation is several times its average error, but nobody
labelled the subpopulation: we only know that it is defined by :math:`z`.

:class:`~skrobust.subpopulation.MarginalDROLinearRegression` with
``covariates=["z"]`` minimizes a bound on the worst mean squared error over
*every* subpopulation of mass at least ``alpha`` defined by :math:`z`,
assuming the conditional risk is smooth (``lipschitz``) in :math:`z`.
Chi-square DRO on the individual losses (``lipschitz=np.inf``, "joint DRO")
protects against the noise in :math:`y` as well and is more pessimistic.
With the group labels known,
:class:`~skrobust.subpopulation.GroupDROLinearRegression` minimizes the worst
group's error exactly.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from skrobust.subpopulation import GroupDROLinearRegression, MarginalDROLinearRegression


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, n)
    x = rng.normal(size=n)
    minority = z > 0.6
    y = np.where(minority, -1.0, 1.0) * x + 0.5 * rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": z}), y, minority


X, y, minority = simulate(200, 0)
X_test, y_test, minority_test = simulate(20_000, 1)

models = {
    "least squares": LinearRegression().fit(X, y),
    "joint chi-square DRO": MarginalDROLinearRegression(
        subpopulation_size=0.2, covariates=["z"], lipschitz=np.inf
    ).fit(X, y),
    "marginal DRO": MarginalDROLinearRegression(
        subpopulation_size=0.2, covariates=["z"], lipschitz=5.0
    ).fit(X, y),
    "group DRO (labels known)": GroupDROLinearRegression().fit(X, y, groups=minority),
}

# %%
# Average error and error on the hidden subpopulation, on fresh data
rows = []
for name, model in models.items():
    squared = (model.predict(X_test) - y_test) ** 2
    rows.append(
        {
            "model": name,
            "average MSE": squared.mean(),
            "MSE on z > 0.6": squared[minority_test].mean(),
            "MSE on z <= 0.6": squared[~minority_test].mean(),
        }
    )
table = pd.DataFrame(rows).set_index("model").round(3)
print(table)

# %%
ax = table[["average MSE", "MSE on z > 0.6"]].plot.barh(figsize=(7, 3.5))
ax.set_xlabel("test mean squared error")
plt.tight_layout()
plt.show()

# %%
# The worst-case weights of marginal DRO are a smooth function of z that
# puts its mass on the high-z region, without being told where it is.
dro = models["marginal DRO"]
order = np.argsort(X["z"].to_numpy())
plt.figure(figsize=(6, 3))
plt.plot(X["z"].to_numpy()[order], len(y) * dro.worst_case_weights_[order])
plt.axvline(0.6, color="gray", linestyle="--")
plt.xlabel("z")
plt.ylabel("worst-case likelihood ratio")
plt.tight_layout()
plt.show()
