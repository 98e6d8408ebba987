"""
Quickstart: robust versus average-case training
================================================

Fits plain (ERM) and distributionally robust logistic regressions on the
handwritten digits shipped with scikit-learn, and compares their held-out
average loss with their loss on the hardest class (the worst subgroup).
Then it estimates the effect of quitting smoking on weight gain with a
cross-fitted AIPW and the C-Learner (NHEFS, shipped by ``causaldata``), and
runs linear Thompson sampling on a bandit built from the digits. Run it with
``make demo``; it prints the tables and saves ``examples/quickstart.png``.
"""

# %%
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrobust.ambiguity import KL, ChiSquare, CVaR
from skrobust.linear_model import DROLogisticRegression

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)

models = {
    "ERM": "erm",
    "chi-square (radius 1)": ChiSquare(radius=1.0),
    "KL (radius 0.5)": KL(radius=0.5),
    "CVaR (alpha 0.2)": CVaR(alpha=0.2),
}

# %%
rows, per_class = [], {}
start = time.perf_counter()
for name, ambiguity in models.items():
    model = make_pipeline(
        StandardScaler(), DROLogisticRegression(ambiguity, alpha=1e-2, tol=1e-5)
    )
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    loss = -np.log(proba[np.arange(len(y_test)), y_test])
    class_loss = np.array([loss[y_test == k].mean() for k in range(10)])
    per_class[name] = class_loss
    error = np.mean(model.predict(X_test) != y_test)
    rows.append((name, loss.mean(), class_loss.max(), error))

print(f"{'model':<24}{'avg test loss':>15}{'worst-class loss':>18}{'error':>8}")
for name, avg, worst, error in rows:
    print(f"{name:<24}{avg:>15.4f}{worst:>18.4f}{error:>8.3f}")
print(f"(fitted {len(models)} models in {time.perf_counter() - start:.1f} s)")

# %%
# Per-class held-out loss: the robust models lift the hardest classes.
fig, ax = plt.subplots(figsize=(8, 3.5))
width = 0.8 / len(per_class)
for i, (name, class_loss) in enumerate(per_class.items()):
    ax.bar(np.arange(10) + i * width, class_loss, width, label=name)
ax.set_xticks(np.arange(10) + 0.4 - width / 2, [str(k) for k in range(10)])
ax.set_xlabel("digit (subgroup)")
ax.set_ylabel("held-out log loss")
ax.set_title("Average-case (ERM) vs distributionally robust logistic regression")
ax.legend(fontsize=8)
fig.tight_layout()
out = Path(__file__).with_suffix(".png")
fig.savefig(out, dpi=120)
print(f"figure saved to {out}")

# %%
# skcausal: effect of quitting smoking on weight gain (kg), NHEFS.
import pandas as pd  # noqa: E402
from causaldata import nhefs  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402

from skcausal import AIPW, CLearner, make_target  # noqa: E402

data = nhefs.load_pandas().data.dropna(subset=["wt82_71"])
numeric = ["age", "smokeintensity", "smokeyrs", "wt71"]
categorical = ["sex", "race", "education", "exercise", "active"]
covariates = pd.concat(
    [
        data[numeric].astype(float),
        (data[numeric].astype(float) ** 2).add_suffix("^2"),
        pd.get_dummies(data[categorical].astype(str), drop_first=True, dtype=float),
    ],
    axis=1,
).to_numpy()
target = make_target(data["wt82_71"], data["qsmk"])
propensity = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
print(f"\n{'ATE estimator (NHEFS)':<24}{'estimate':>10}{'95% interval':>22}")
for name, est in {
    "AIPW": AIPW(LinearRegression(), propensity, random_state=0),
    "C-Learner": CLearner(LinearRegression(), propensity, random_state=0),
}.items():
    est.fit(covariates, target)
    low, high = est.conf_int()
    print(f"{name:<24}{est.estimate_:>10.2f}{f'[{low:.2f}, {high:.2f}]':>22}")

# %%
# skbandit: regret of linear Thompson sampling on the digits bandit.
from skbandit import LinearThompsonSampling, Uniform  # noqa: E402
from skbandit.environments import SupervisedBandit, simulate  # noqa: E402

env = SupervisedBandit(X / 16.0, y)
print(f"\n{'bandit policy (digits)':<28}{'regret after 2000 rounds':>26}")
for name, policy in {
    "linear Thompson sampling": LinearThompsonSampling(noise_variance=0.1),
    "uniform": Uniform(),
}.items():
    result = simulate(policy, env, n_rounds=2000, batch_size=50, random_state=0)
    print(f"{name:<28}{result.cumulative_regret[:, -1].mean():>26.0f}")
