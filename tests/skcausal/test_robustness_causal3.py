"""Issue 14, third round for skcausal: peak memory of ``fit`` at most 3x the input.

The input is X plus the 2-column target (outcome, treatment) of
make_limited_overlap(n_samples, n_features=2), default nuisance models. The
fixes: fitted ``coef_`` / ``intercept_`` no longer view the n_train-long
least-squares buffer; each arm's training rows are indexed once; training parts
are boolean masks; outcome and treatment are views of the validated target;
TMLE builds its clever covariate one arm at a time; the C-Learner's
constrained least squares accumulates its Gram matrix over row blocks.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression

from skcausal import AIPW, IPW, TMLE, CLearner, PlugIn, WorstCaseTreatmentEffect
from skcausal.datasets import make_limited_overlap
from tests._memory import peak_bytes as _peak


def _fit_quietly(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


# tracemalloc peak of fit / input on make_limited_overlap(n, n_features=2):
# before this round (n=1e4) -> now at n=2e4 (1e4; 1e5), measured on this
# machine: PlugIn 4.62 -> 2.07 (2.34; 2.01), IPW 2.90 -> 2.09 (2.23; 1.98),
# AIPW 4.91 -> 2.59 (2.72; 2.48), TMLE 6.11 -> 2.83 (2.94; 2.77),
# CLearner 4.51 -> 2.69 (2.90; 2.56). The peaks include the nuisance models'
# own allocations (a LogisticRegression fit on 80% of the units: 1.07x).
ESTIMATORS = [
    ("PlugIn", lambda: PlugIn(random_state=0)),
    ("IPW", lambda: IPW(random_state=0)),
    ("AIPW", lambda: AIPW(random_state=0)),
    ("TMLE", lambda: TMLE(random_state=0)),
    ("CLearner", lambda: CLearner(random_state=0)),
]


@pytest.mark.parametrize(
    "make", [m for _, m in ESTIMATORS], ids=[k for k, _ in ESTIMATORS]
)
def test_fit_peak_memory_at_most_three_times_the_input(make):
    X, y = make_limited_overlap(n_samples=20000, random_state=0)
    size = X.nbytes + y.nbytes
    # a first small fit, so that one-time caches of the libraries (about
    # 60 KB) are not counted
    _fit_quietly(make(), *make_limited_overlap(n_samples=300, random_state=1))
    est = make()
    assert _peak(lambda: _fit_quietly(est, X, y)) < 3.0 * size


@pytest.mark.parametrize(
    "make", [m for _, m in ESTIMATORS], ids=[k for k, _ in ESTIMATORS]
)
def test_fitted_linear_models_own_small_coefficients(make):
    # Before: each fitted LinearRegression's coef_ viewed its n_train-long
    # least-squares buffer (about 1x the input held at d=2). Now coef_ and
    # intercept_ own their data, and the predictions equal those of a plain
    # LinearRegression refit on the same fold's arm (reference: sklearn).
    X, y = make_limited_overlap(n_samples=2000, random_state=0)
    est = _fit_quietly(make(), X, y)
    models = list(getattr(est, "propensity_models_", []))
    for fit in getattr(est, "_outcome_fits", []):
        models.extend(getattr(arm, "model", arm) for arm in fit.models)
    for model in models:
        for name in ("coef_", "intercept_"):
            value = getattr(model, name, None)
            if isinstance(value, np.ndarray):
                assert value.base is None
                assert value.nbytes <= 8 * (X.shape[1] + 1)
    if isinstance(est, PlugIn):
        test = est.fold_indices_[0]
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        treated = train[y[train, 1] == 1]
        ref = LinearRegression().fit(X[treated], y[treated, 0])
        mine = est._outcome_fits[0].models[1]
        assert_allclose(mine.predict(X[test]), ref.predict(X[test]), rtol=1e-12)


@pytest.mark.parametrize(
    "make", [m for _, m in ESTIMATORS], ids=[k for k, _ in ESTIMATORS]
)
def test_fit_leaves_the_target_and_treatment_unchanged(make):
    # outcome and treatment are now views of the caller's target: fit must
    # never write into them, with the 2-column target or with treatment=
    X, y = make_limited_overlap(n_samples=400, random_state=0)
    y_before = y.copy()
    est = _fit_quietly(make(), X, y)
    np.testing.assert_array_equal(y, y_before)
    outcome, t = y[:, 0].copy(), y[:, 1].copy()
    est2 = _fit_quietly(make(), X, outcome, treatment=t)
    np.testing.assert_array_equal(outcome, y_before[:, 0])
    np.testing.assert_array_equal(t, y_before[:, 1])
    assert est2.estimate_ == est.estimate_
    # the fitted state holds no view of the caller's arrays
    for value in vars(est).values():
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, y)


def test_tmle_per_arm_clever_covariate_matches_the_two_column_form():
    # Reference: the targeted predictions recomputed from the stored
    # fluctuation with the (n, 2) clever covariate and arm indicator of the
    # earlier implementation, and the first-order condition they solve.
    X, y = make_limited_overlap(n_samples=1500, random_state=3)
    est = _fit_quietly(TMLE(random_state=0), X, y)
    e, mu, t = est.propensity_, est.outcome_predictions_, y[:, 1]
    lo, hi = y[:, 0].min(), y[:, 0].max()
    h = np.column_stack([1.0 / (1.0 - e), 1.0 / e])
    q = np.clip((mu - lo) / (hi - lo), 1e-4, 1 - 1e-4)
    z = np.log(q) - np.log1p(-q) + est.fluctuation_ * h
    q_star = lo + (hi - lo) / (1.0 + np.exp(-z))
    assert_allclose(est.targeted_predictions_, q_star, rtol=1e-12)
    received = np.column_stack([1.0 - t, t])
    correction = np.mean(received * h * (y[:, [0]] - q_star), axis=0)
    assert np.max(np.abs(correction)) <= 1e-6 * np.max(np.abs(y[:, 0]))


def test_worst_case_fit_peak_memory_reduced():
    # WorstCaseTreatmentEffect does not reach 3x: its public per-unit
    # attributes (pseudo_outcomes_, effect_predictions_, influence_function_,
    # worst_case_weights_, the AIPW potential_outcome_influence_, propensity_,
    # outcome_predictions_, fold_indices_) hold about 2.3x, and the effect
    # model's fit on 80% of the units adds its rows (0.6x) and its own
    # buffers. Measured: 6.76x (n=1e4) before -> 4.49x (n=1e4), 4.21x (2e4).
    X, y = make_limited_overlap(n_samples=20000, random_state=0)
    size = X.nbytes + y.nbytes
    _fit_quietly(
        WorstCaseTreatmentEffect(random_state=0),
        *make_limited_overlap(n_samples=300, random_state=1),
    )
    est = WorstCaseTreatmentEffect(random_state=0)
    assert _peak(lambda: _fit_quietly(est, X, y)) < 4.6 * size
