"""
=====================================================
Why did performance drop? Decomposing a shift (DISDE)
=====================================================

A model trained on one hospital loses accuracy at another. Is it because the
new patients are more often of a kind that was already hard (a shift of X
within the region both sites see), because the outcome relates differently to
the features (a shift of Y given X), or because the new site has patients the
model has rarely or never seen? :func:`~skrobust.shift.decompose_performance_shift`
answers with three terms that add up to the drop, each with an interval,
following Cai, Namkoong and Yadlowsky. A cross-fitted domain classifier
defines a shared distribution with density proportional to
``p(x) q(x) / (p(x) + q(x))``, which lives where both sites have data; the
shared-distribution risks are one-step estimates (overlap weights plus
cross-fitted regressions of the loss in each site), so the intervals account
for the error of the fitted classifier.

Here the target site has older patients (more of the older, harder patients
that training saw, and some older than almost any in training, for whom the
lab value acts the other way) and a weaker effect of the lab value (a change
of Y given X).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from skrobust.shift import decompose_performance_shift

rng = np.random.default_rng(0)


def site(n, age_mean, age_sd, lab_effect):
    age = rng.normal(age_mean, age_sd, size=n)
    lab = rng.normal(size=n)
    # the lab value matters less with age, and its effect flips after 70
    slope = np.where(age > 70, -2.0, lab_effect * (1 - (age - 30) / 60))
    logit = 3.0 * slope * lab
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.column_stack([age, lab]), y


X_source, y_source = site(6000, age_mean=45, age_sd=8, lab_effect=1.0)
X_target, y_target = site(6000, age_mean=58, age_sd=10, lab_effect=0.6)
model = LogisticRegression().fit(X_source, y_source)
print(f"source error {np.mean(model.predict(X_source) != y_source):.3f}")
print(f"target error {np.mean(model.predict(X_target) != y_target):.3f}")

# %%
# Decompose the drop in error rate; any probabilistic classifier can tell the
# sites apart, here gradient boosting.
result = decompose_performance_shift(
    model,
    X_source,
    y_source,
    X_target,
    y_target,
    loss="zero_one",
    domain_classifier=HistGradientBoostingClassifier(max_iter=100, random_state=0),
    random_state=0,
)
for term in ("total", "x_shift_shared", "y_given_x_shift", "x_shift_unseen"):
    low, high = result.intervals[term]
    print(f"{term:>16}: {getattr(result, term):+.3f} [{low:+.3f}, {high:+.3f}]")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
result.plot(ax=ax)
ax.set_title("Error-rate change from source to target site")
fig.tight_layout()
plt.show()
