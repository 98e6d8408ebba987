"""Integer sample weights give the same results as repeated rows."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcausal import (
    AIPW,
    IPW,
    TMLE,
    CLearner,
    PlugIn,
    TrimmingSensitivity,
    WorstCaseTreatmentEffect,
)
from skcausal.datasets import make_limited_overlap

# the propensity model is solved by L-BFGS on weighted vs repeated data: the
# two optima agree to the solver tolerance, not to machine precision
RTOL = 1e-6
N = 120


def _propensity():
    return make_pipeline(StandardScaler(), LogisticRegression(tol=1e-12, C=10.0))


def _weighted_and_repeated(seed=0):
    X, y = make_limited_overlap(N, overlap=0.1, random_state=seed)
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 4, size=N).astype(float)
    fold_of = np.arange(N) % 3
    rows = np.repeat(np.arange(N), w.astype(int))
    folds_w = [
        (np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(3)
    ]
    folds_r = [
        (np.flatnonzero(fold_of[rows] != k), np.flatnonzero(fold_of[rows] == k))
        for k in range(3)
    ]
    return X, y, w, rows, folds_w, folds_r


ESTIMATORS = {
    "PlugIn": lambda cv: PlugIn(cv=cv),
    "IPW": lambda cv: IPW(_propensity(), cv=cv),
    "IPW-HT": lambda cv: IPW(_propensity(), normalize=False, cv=cv),
    "AIPW": lambda cv: AIPW(propensity_model=_propensity(), cv=cv),
    "TMLE": lambda cv: TMLE(propensity_model=_propensity(), cv=cv),
    "TMLE-linear": lambda cv: TMLE(
        propensity_model=_propensity(), fluctuation="linear", cv=cv
    ),
    "CLearner": lambda cv: CLearner(propensity_model=_propensity(), cv=cv),
    "AIPW-S": lambda cv: AIPW(propensity_model=_propensity(), learner="S", cv=cv),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_weighted_equals_repeated(name):
    X, y, w, rows, folds_w, folds_r = _weighted_and_repeated()
    weighted = ESTIMATORS[name](folds_w).fit(X, y, sample_weight=w)
    repeated = ESTIMATORS[name](folds_r).fit(X[rows], y[rows])
    assert_allclose(weighted.estimate_, repeated.estimate_, rtol=RTOL)
    assert_allclose(weighted.stderr_, repeated.stderr_, rtol=RTOL)
    assert_allclose(
        weighted.potential_outcome_means_, repeated.potential_outcome_means_, rtol=RTOL
    )


def test_worst_case_weighted_equals_repeated():
    X, y, w, rows, folds_w, folds_r = _weighted_and_repeated(1)
    kw = dict(propensity_model=_propensity(), subgroup_features=[0], mass=0.3)
    weighted = WorstCaseTreatmentEffect(cv=folds_w, **kw).fit(X, y, sample_weight=w)
    repeated = WorstCaseTreatmentEffect(cv=folds_r, **kw).fit(X[rows], y[rows])
    assert_allclose(weighted.estimate_, repeated.estimate_, rtol=RTOL)
    assert_allclose(weighted.stderr_, repeated.stderr_, rtol=RTOL)
    assert_allclose(weighted.plugin_estimate_, repeated.plugin_estimate_, rtol=RTOL)


def test_trimming_weighted_equals_repeated():
    # the trimmed estimate, its stderr and the Lipschitz bounds; the bootstrap
    # standard errors are random draws and are not compared
    X, y, w, rows, folds_w, folds_r = _weighted_and_repeated(2)
    kw = dict(
        propensity_model=_propensity(), threshold=0.15, n_bootstrap=2, anchor_margin=0.0
    )
    weighted = TrimmingSensitivity(cv=folds_w, **kw).fit(X, y, sample_weight=w)
    repeated = TrimmingSensitivity(cv=folds_r, **kw).fit(X[rows], y[rows])
    assert weighted.overlap_mask_.sum() < N
    assert_allclose(weighted.estimate_, repeated.estimate_, rtol=RTOL)
    assert_allclose(weighted.stderr_, repeated.stderr_, rtol=RTOL)
    assert_allclose(weighted.overlap_fraction_, repeated.overlap_fraction_, rtol=RTOL)
    cols = ["lower_bound", "upper_bound"]
    for L in (0.0, 1.0, 5.0):
        a = weighted.sensitivity_curve([L])[cols].to_numpy()
        b = repeated.sensitivity_curve([L])[cols].to_numpy()
        assert_allclose(a, b, rtol=1e-5)


def test_unit_weights_equal_no_weights():
    X, y = make_limited_overlap(N, overlap=0.1, random_state=3)
    a = AIPW(random_state=0).fit(X, y)
    b = AIPW(random_state=0).fit(X, y, sample_weight=np.ones(N))
    assert_allclose(a.estimate_, b.estimate_, rtol=1e-10)
    assert_allclose(a.stderr_, b.stderr_, rtol=1e-10)


def test_zero_weight_drops_unit():
    # a unit of weight zero counts as absent (same folds, same models)
    X, y, w, rows, folds_w, _ = _weighted_and_repeated(4)
    w0 = np.ones(N)
    w0[5] = 0.0
    keep = np.flatnonzero(w0 > 0)
    fold_of = np.arange(N) % 3
    folds_k = [
        (np.flatnonzero(fold_of[keep] != k), np.flatnonzero(fold_of[keep] == k))
        for k in range(3)
    ]
    a = AIPW(propensity_model=_propensity(), cv=folds_w).fit(X, y, sample_weight=w0)
    b = AIPW(propensity_model=_propensity(), cv=folds_k).fit(X[keep], y[keep])
    assert_allclose(a.estimate_, b.estimate_, rtol=RTOL)
    assert_allclose(a.stderr_, b.stderr_, rtol=RTOL)


class _NoWeights(LinearRegression):
    """A regressor whose fit takes no sample_weight."""

    def fit(self, X, y):
        return super().fit(X, y)


def test_model_without_weights():
    X, y, w, rows, folds_w, folds_r = _weighted_and_repeated(5)
    # integer weights: passed as repeated rows
    a = AIPW(_NoWeights(), _propensity(), cv=folds_w).fit(X, y, sample_weight=w)
    b = AIPW(_NoWeights(), _propensity(), cv=folds_r).fit(X[rows], y[rows])
    assert_allclose(a.estimate_, b.estimate_, rtol=RTOL)
    with pytest.raises(TypeError, match="does not accept sample_weight"):
        AIPW(_NoWeights(), cv=folds_w).fit(X, y, sample_weight=w + 0.5)


def test_bad_sample_weight():
    X, y = make_limited_overlap(N, overlap=0.1, random_state=0)
    with pytest.raises(ValueError, match="non-zero|positive sum"):
        AIPW().fit(X, y, sample_weight=np.zeros(N))
    with pytest.raises(ValueError, match="[Nn]egative"):
        AIPW().fit(X, y, sample_weight=np.r_[-1.0, np.ones(N - 1)])
