"""
==========================================================
Effect of quitting smoking on weight gain (NHEFS)
==========================================================

The NHEFS follow-up study (shipped by the ``causaldata`` package) records
whether 1,566 smokers quit between 1971 and 1982 and how their weight changed.
Hernan and Robins estimate that quitting causes a weight gain of about 3.5 kg.
We estimate the average treatment effect with cross-fitted AIPW, TMLE and
C-Learner, look at the overlap of the propensity scores, and ask how much the
conclusion depends on units with extreme propensities.
"""

# %%
# Data: treatment ``qsmk``, outcome ``wt82_71`` (kg), confounders as in
# Hernan and Robins (Causal Inference: What If, chapter 12).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from causaldata import nhefs
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcausal import AIPW, TMLE, CLearner, TrimmingSensitivity, make_target

data = nhefs.load_pandas().data.dropna(subset=["wt82_71"])
numeric = ["age", "smokeintensity", "smokeyrs", "wt71"]
categorical = ["sex", "race", "education", "exercise", "active"]
X = pd.concat(
    [
        data[numeric].astype(float),
        (data[numeric].astype(float) ** 2).add_suffix("^2"),
        pd.get_dummies(data[categorical].astype(str), drop_first=True, dtype=float),
    ],
    axis=1,
)
y = make_target(data["wt82_71"], data["qsmk"])
print(X.shape, "treated:", int(y[:, 1].sum()))

# %%
# Nuisance models: linear and logistic regressions on the confounders and the
# squares of the continuous ones, as in the book (one outcome model per arm).
outcome_model = LinearRegression()
propensity_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
estimators = {
    "AIPW": AIPW(outcome_model, propensity_model, random_state=0),
    "TMLE": TMLE(outcome_model, propensity_model, random_state=0),
    "C-Learner": CLearner(outcome_model, propensity_model, random_state=0),
}
rows = {}
for name, est in estimators.items():
    est.fit(X.to_numpy(), y)
    rows[name] = est.summary().loc["ATE"]
print(pd.DataFrame(rows).T[["estimate", "std_error", "ci_lower", "ci_upper"]])

# %%
# Overlap: the out-of-fold propensity scores of both arms.
aipw = estimators["AIPW"]
e, t = aipw.propensity_, y[:, 1]
fig, ax = plt.subplots()
bins = np.linspace(0, 1, 41)
ax.hist(e[t == 0], bins=bins, alpha=0.6, label="did not quit")
ax.hist(e[t == 1], bins=bins, alpha=0.6, label="quit smoking")
ax.set_xlabel("estimated propensity to quit")
ax.set_ylabel("number of people")
ax.legend()
print(aipw.diagnostics_)

# %%
# Trimming sensitivity: the effect on the overlap population
# {0.1 <= e(x) <= 0.9}, and a bias-aware interval for the whole population
# that holds if weight change is L-Lipschitz (kg per standard deviation) in
# the standardized confounders: for the units outside the overlap
# region, the missing arm is bracketed by the lower and upper Lipschitz
# extensions of the outcome model from the overlap units. The breakdown value
# L* is how irregular the outcome must be before the interval reaches zero.
trim = TrimmingSensitivity(
    outcome_model, propensity_model, threshold=0.1, random_state=0
).fit(X.to_numpy(), y)
print(
    f"overlap population: {trim.overlap_fraction_:.0%} of units, "
    f"effect {trim.estimate_:.2f} kg, breakdown L* = {trim.breakdown_lipschitz_:.2f}"
)
curve = trim.sensitivity_curve([0.0, 5.0, 10.0, 20.0, 40.0])
print(
    curve[["lipschitz", "lower_bound", "upper_bound", "ci_lower", "ci_upper"]].round(2)
)
trim.plot()
plt.show()
