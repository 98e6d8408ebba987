"""Worst-subpopulation risk: closed forms, brute force, API behaviour."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeRegressor

from skrobust.ambiguity import CVaR
from skrobust.metrics import (
    WorstSubpopulationEvaluator,
    WorstSubpopulationResult,
    make_worst_subpopulation_scorer,
    worst_subpopulation_risk,
)

RTOL = 1e-10
N_SE = 4.0  # simulation checks: estimate within 4 standard errors of the truth


def _uniform_errors(n, seed, d=2):
    """Z_1 ~ U(0, 1); the model errs with probability Z_1.

    Closed form: the worst subpopulation of mass alpha is {Z_1 > 1 - alpha},
    whose error rate is E[Z_1 | Z_1 > 1 - alpha] = 1 - alpha / 2.
    """
    rng = np.random.default_rng(seed)
    Z = rng.uniform(size=(n, d))
    y_pred = (rng.uniform(size=n) < Z[:, 0]).astype(float)
    return np.zeros(n), y_pred, Z


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.6])
def test_closed_form_uniform_error_rate(alpha):
    y_true, y_pred, Z = _uniform_errors(20000, seed=1)
    result = worst_subpopulation_risk(
        y_true, y_pred, Z, alpha, regressor=LinearRegression(), random_state=0
    )
    truth = 1 - alpha / 2
    assert isinstance(result, WorstSubpopulationResult)
    assert abs(result.risk - truth) < N_SE * result.std_error
    assert result.lower < result.risk < result.upper
    assert_allclose(result.confidence_interval, (result.lower, result.upper))


def test_naive_estimators_miss_the_truth():
    alpha = 0.2
    y_true, y_pred, Z = _uniform_errors(20000, seed=2)
    losses = (y_pred != y_true).astype(float)
    # CVaR of the raw 0/1 losses: the top 20% of losses are all ones
    assert CVaR(alpha=alpha).risk(losses) == 1.0
    result = worst_subpopulation_risk(
        y_true, y_pred, Z, alpha, regressor=LinearRegression(), random_state=0
    )
    assert result.upper < 0.95  # truth 0.9, far from the naive 1.0


def test_intersections_beat_worst_predefined_group():
    # two independent binary attributes; errors concentrate on A = B = 1
    # (mass 0.25): P(error) = 0.8 there and 0.2 elsewhere.
    rng = np.random.default_rng(3)
    n = 20000
    Z = rng.integers(0, 2, size=(n, 2)).astype(float)
    rate = np.where((Z[:, 0] == 1) & (Z[:, 1] == 1), 0.8, 0.2)
    y_pred = (rng.uniform(size=n) < rate).astype(float)
    y_true = np.zeros(n)
    # worst single predefined group (A = 1 or B = 1): 0.5 * 0.8 + 0.5 * 0.2
    worst_group = max(y_pred[Z[:, j] == v].mean() for j in range(2) for v in range(2))
    assert abs(worst_group - 0.5) < 0.02
    result = worst_subpopulation_risk(
        y_true,
        y_pred,
        Z,
        0.25,
        regressor=DecisionTreeRegressor(max_depth=2),
        random_state=0,
    )
    # closed form: the intersection itself, error rate 0.8
    assert abs(result.risk - 0.8) < N_SE * result.std_error
    assert result.lower > worst_group


def test_brute_force_top_fraction():
    # no ties and alpha * n integer: the estimate is the average observed loss
    # of the samples with the largest fitted conditional risks.
    rng = np.random.default_rng(4)
    n, alpha = 200, 0.25
    X = rng.normal(size=(n, 3))
    y = X[:, 0] + rng.normal(size=n)
    model = DummyRegressor().fit(X, y)
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=alpha,
        loss="squared_error",
        regressor=LinearRegression(),
        bias_correction=False,
        random_state=0,
    ).fit(X, y)
    mu = evaluator.conditional_risk_
    losses = evaluator.losses_
    top = np.argsort(mu)[::-1][: int(alpha * n)]
    assert_allclose(evaluator.risk_, losses[top].mean(), rtol=RTOL)
    assert_allclose(evaluator.plug_in_risk_, mu[top].mean(), rtol=RTOL)
    eta = np.sort(mu)[::-1][int(alpha * n) - 1]
    psi = eta + (mu >= eta) * (losses - eta) / alpha
    assert_allclose(evaluator.std_error_, psi.std(ddof=1) / np.sqrt(n), rtol=1e-8)
    assert evaluator.membership_.sum() == int(alpha * n)
    assert set(np.flatnonzero(evaluator.membership_)) == set(top)


def test_curve_matches_per_level_computation():
    y_true, y_pred, Z = _uniform_errors(3000, seed=5)
    X = Z
    y = (y_pred != 0).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    alphas = np.array([0.05, 0.13, 0.5, 0.77, 1.0])
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=0.13,
        regressor=DecisionTreeRegressor(max_depth=3),
        bias_correction=False,
        random_state=0,
    ).fit(X, y)
    curve = evaluator.risk_curve(alphas)
    mu, losses, n = evaluator.conditional_risk_, evaluator.losses_, y.shape[0]
    for k, alpha in enumerate(alphas):
        # reference: ungrouped worst-case weights of CVaR (ties included)
        cvar = CVaR(alpha=alpha)
        plug_in, q = cvar.risk_and_weights(mu)
        eta = cvar.dual_init(mu)[0]
        psi = eta + n * q * (losses - eta)
        assert_allclose(curve.risk[k], q @ losses, rtol=RTOL)
        assert_allclose(curve.plug_in_risk[k], plug_in, rtol=RTOL)
        assert_allclose(curve.threshold[k], eta, rtol=RTOL)
        assert_allclose(curve.std_error[k], psi.std(ddof=1) / np.sqrt(n), rtol=1e-8)
    k = 1
    assert_allclose(evaluator.risk_, curve.risk[k], rtol=RTOL)
    assert_allclose(evaluator.confidence_interval_, (curve.lower[k], curve.upper[k]))
    # alpha = 1: the plain average loss and its standard error
    assert_allclose(curve.risk[-1], losses.mean(), rtol=RTOL)
    assert_allclose(curve.std_error[-1], losses.std(ddof=1) / np.sqrt(n), rtol=1e-8)
    assert np.all(np.diff(curve.risk) <= 1e-12)  # worst case shrinks with alpha


def test_default_first_stage_and_determinism():
    y_true, y_pred, Z = _uniform_errors(3000, seed=6)
    a = worst_subpopulation_risk(y_true, y_pred, Z, 0.2, random_state=3)
    b = worst_subpopulation_risk(y_true, y_pred, Z, 0.2, random_state=3)
    assert a == b
    assert abs(a.risk - 0.9) < N_SE * a.std_error


def test_n_repeats_averages_repeated_cross_fitting():
    y_true, y_pred, Z = _uniform_errors(1000, seed=7)
    one = worst_subpopulation_risk(
        y_true, y_pred, Z, 0.3, regressor=LinearRegression(), random_state=0
    )
    three = worst_subpopulation_risk(
        y_true,
        y_pred,
        Z,
        0.3,
        regressor=LinearRegression(),
        n_repeats=3,
        random_state=0,
    )
    assert one.risk != three.risk
    assert abs(three.risk - 0.85) < N_SE * three.std_error


def test_dataframe_core_features_and_new_samples():
    rng = np.random.default_rng(8)
    n = 2000
    X = pd.DataFrame(
        {
            "age": rng.uniform(size=n),
            "noise": rng.normal(size=n),
            "x": rng.normal(size=n),
        }
    )
    y = (rng.uniform(size=n) < X["age"]).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=0.3,
        core_features=["age"],
        regressor=LinearRegression(),
        random_state=0,
    ).fit(X, y)
    assert abs(evaluator.membership_.mean() - 0.3) < 0.01
    new = pd.DataFrame({"age": [0.05, 0.95], "noise": [0.0, 0.0], "x": [0.0, 0.0]})
    assert evaluator.in_worst_subpopulation(new).tolist() == [False, True]
    assert_allclose(evaluator.conditional_risk(new), [0.05, 0.95], atol=0.05)
    with pytest.raises(ValueError, match="feature names"):
        evaluator.conditional_risk(new[["age", "noise"]])


def test_log_loss_uses_predict_proba():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(600, 2))
    y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=1.0,
        loss="log_loss",
        regressor=LinearRegression(),
        random_state=0,
    ).fit(X, y)
    proba = model.predict_proba(X)[np.arange(600), y]
    assert_allclose(evaluator.risk_, -np.log(proba).mean(), rtol=1e-10)


def test_scorer_in_grid_search_and_pickle():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(600, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(int)
    scorer = make_worst_subpopulation_scorer(
        0.2, core_features=[1, 2], regressor=LinearRegression()
    )
    model = LogisticRegression().fit(X, y)
    direct = worst_subpopulation_risk(
        y,
        model.predict(X),
        X[:, [1, 2]],
        0.2,
        regressor=LinearRegression(),
        random_state=0,
    )
    assert_allclose(scorer(model, X, y), -direct.risk, rtol=RTOL)
    search = GridSearchCV(
        LogisticRegression(), {"C": [1e-4, 1.0]}, scoring=scorer, cv=3
    ).fit(X, y)
    assert search.best_params_ == {"C": 1.0}
    restored = pickle.loads(pickle.dumps(scorer))
    assert_allclose(restored(model, X, y), scorer(model, X, y), rtol=RTOL)
    assert "subpopulation_size=0.2" in repr(scorer)


def test_evaluator_clone_and_pickle():
    y_true, y_pred, Z = _uniform_errors(500, seed=11)
    y = y_pred.astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    evaluator = WorstSubpopulationEvaluator(
        model, subpopulation_size=0.2, regressor=LinearRegression(), random_state=0
    )
    twin = clone(evaluator)
    assert twin.get_params()["subpopulation_size"] == 0.2
    fitted = evaluator.fit(Z, y)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_allclose(restored.risk_curve([0.3]).risk, fitted.risk_curve([0.3]).risk)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0.2, "loss": "hinge"}, "loss"),
        ({"alpha": 0.2, "confidence": 1.0}, "confidence"),
        ({"alpha": 0.2, "cv": 1}, "cv"),
    ],
)
def test_bad_parameters(kwargs, match):
    y_true, y_pred, Z = _uniform_errors(50, seed=12)
    with pytest.raises(ValueError, match=match):
        worst_subpopulation_risk(y_true, y_pred, Z, **kwargs)


def test_bad_data():
    y_true, y_pred, Z = _uniform_errors(50, seed=13)
    with pytest.raises(ValueError, match="Z has 49 rows"):
        worst_subpopulation_risk(y_true, y_pred, Z[:49], 0.2)
    bad = y_pred.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        worst_subpopulation_risk(y_true, bad, Z, 0.2, loss="squared_error")
    with pytest.raises(ValueError, match="shape"):
        worst_subpopulation_risk(y_true, y_pred[:10], Z, 0.2)
    with pytest.raises(ValueError, match="cross-fitting folds"):
        worst_subpopulation_risk(y_true[:3], y_pred[:3], Z[:3], 0.2)
    with pytest.raises(ValueError, match="alphas"):
        model = DummyClassifier().fit(Z, y_pred)
        evaluator = WorstSubpopulationEvaluator(model, regressor=LinearRegression())
        evaluator.fit(Z, y_pred).risk_curve([0.0, 0.5])
    with pytest.raises(NotFittedError):
        WorstSubpopulationEvaluator(DummyClassifier()).fit(Z, y_pred)


def test_inputs_not_modified():
    y_true, y_pred, Z = _uniform_errors(200, seed=14)
    copies = [a.copy() for a in (y_true, y_pred, Z)]
    worst_subpopulation_risk(y_true, y_pred, Z, 0.2, regressor=LinearRegression())
    for before, after in zip(copies, (y_true, y_pred, Z), strict=True):
        assert_allclose(before, after)


def test_jackknife_variance_at_alpha_one():
    # alpha = 1: every leave-group-out estimate is the mean loss of the samples
    # kept, so the jackknife standard error has a direct formula
    from scipy.stats import t

    y_true, y_pred, Z = _uniform_errors(1000, seed=15)
    y = y_pred.astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=1.0,
        regressor=LinearRegression(),
        variance="jackknife",
        jackknife_groups=8,
        random_state=0,
    ).fit(Z, y)
    subsets = [subset for subset, _ in evaluator._jackknife]
    assert len(subsets) == 8
    left_out = np.sort(
        np.concatenate([np.setdiff1d(np.arange(1000), s) for s in subsets])
    )
    assert_allclose(left_out, np.arange(1000))  # the groups partition the data
    means = np.array([evaluator.losses_[s].mean() for s in subsets])
    std_error = np.sqrt(7 / 8 * np.sum((means - means.mean()) ** 2))
    assert_allclose(evaluator.risk_, evaluator.losses_.mean(), rtol=RTOL)
    assert_allclose(evaluator.std_error_, std_error, rtol=1e-10)
    half = t.ppf(0.975, 7) * std_error
    assert_allclose(
        evaluator.confidence_interval_,
        (evaluator.risk_ - half, evaluator.risk_ + half),
        rtol=1e-10,
    )
    curve = evaluator.risk_curve([0.5, 1.0])
    assert_allclose(curve.std_error[1], std_error, rtol=1e-10)


def test_jackknife_is_deterministic_and_keeps_the_estimate():
    y_true, y_pred, Z = _uniform_errors(600, seed=16)
    kwargs = {"regressor": LinearRegression(), "random_state": 4}
    plain = worst_subpopulation_risk(y_true, y_pred, Z, 0.3, **kwargs)
    a = worst_subpopulation_risk(
        y_true, y_pred, Z, 0.3, variance="jackknife", jackknife_groups=5, **kwargs
    )
    b = worst_subpopulation_risk(
        y_true, y_pred, Z, 0.3, variance="jackknife", jackknife_groups=5, **kwargs
    )
    assert a == b
    assert a.risk == plain.risk
    assert a.std_error != plain.std_error
    with pytest.raises(ValueError, match="jackknife_groups"):
        worst_subpopulation_risk(
            y_true[:20],
            y_pred[:20],
            Z[:20],
            0.3,
            variance="jackknife",
            jackknife_groups=30,
            cv=2,
        )
    with pytest.raises(ValueError, match="variance"):
        worst_subpopulation_risk(y_true, y_pred, Z, 0.3, variance="bootstrap")


def test_parallel_fits_give_the_same_result():
    y_true, y_pred, Z = _uniform_errors(500, seed=17)
    kwargs = {"regressor": LinearRegression(), "random_state": 0}
    serial = worst_subpopulation_risk(y_true, y_pred, Z, 0.2, **kwargs)
    parallel = worst_subpopulation_risk(
        y_true, y_pred, Z, 0.2, n_jobs=2, verbose=0, **kwargs
    )
    assert serial == parallel


class _FixedRisk(RegressorMixin, BaseEstimator):
    """First stage that ignores its training data: predicts the first column."""

    def fit(self, X, y, sample_weight=None):
        self.is_fitted_ = True
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float)[:, 0]


def test_misranking_correction_matches_cvar_weights():
    # reference: <q1 - q2, mu1 - mu2> / 8 with the ungrouped CVaR weights
    from skrobust.metrics._worst_subpopulation import _misranking_correction

    rng = np.random.default_rng(20)
    first = np.round(rng.uniform(size=300), 2)  # ties
    second = first + 0.1 * rng.normal(size=300)
    weights = rng.integers(0, 3, size=300).astype(float)
    alphas = np.array([0.05, 0.2, 0.5, 1.0])
    got = _misranking_correction(first, second, weights, alphas)
    for k, alpha in enumerate(alphas):
        q1 = CVaR(alpha=alpha).worst_case_weights(first, sample_weight=weights)
        q2 = CVaR(alpha=alpha).worst_case_weights(second, sample_weight=weights)
        assert_allclose(
            got[k], (q1 - q2) @ (first - second) / 8, rtol=1e-10, atol=1e-15
        )
    assert np.all(got >= -1e-15)  # each fit ranks its own values best
    assert_allclose(got[-1], 0.0, atol=1e-15)  # alpha = 1: no ranking


def test_bias_correction_adds_the_misranking_term():
    y_true, y_pred, Z = _uniform_errors(3000, seed=21)
    X = Z
    y = (y_pred != 0).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    alphas = np.array([0.1, 0.2, 0.6])
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=0.2,
        regressor=DecisionTreeRegressor(max_depth=3),
        random_state=0,
    ).fit(X, y)
    curve = evaluator.risk_curve(alphas)
    # one repeat: two first stages fitted on disjoint halves of each training
    # fold; the conditional risk is their average
    ((first, second),) = evaluator._predictions
    assert_allclose(evaluator.conditional_risk_, (first + second) / 2, rtol=RTOL)
    assert not np.allclose(first, second)
    losses = evaluator.losses_
    for k, alpha in enumerate(alphas):
        q = CVaR(alpha=alpha).worst_case_weights(evaluator.conditional_risk_)
        q1 = CVaR(alpha=alpha).worst_case_weights(first)
        q2 = CVaR(alpha=alpha).worst_case_weights(second)
        correction = (q1 - q2) @ (first - second) / 8
        assert correction > 0
        assert_allclose(curve.risk[k], q @ losses + correction, rtol=RTOL)
    assert_allclose(evaluator.risk_, curve.risk[1], rtol=RTOL)


def test_weighted_equals_repeated_rows():
    # the first stage ignores its data, so both cross-fittings give the same
    # conditional risks; the weights then act as copies in the second stage
    rng = np.random.default_rng(22)
    n = 300
    Z = rng.uniform(size=(n, 2))
    y = (rng.uniform(size=n) < Z[:, 0]).astype(int)
    counts = rng.integers(0, 4, size=n)
    rows = np.repeat(np.arange(n), counts)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    kwargs = dict(regressor=_FixedRisk(), random_state=0)
    for alpha in (0.1, 0.37, 1.0):
        weighted = worst_subpopulation_risk(
            y, np.zeros(n), Z, alpha, sample_weight=counts, **kwargs
        )
        repeated = worst_subpopulation_risk(
            y[rows], np.zeros(rows.size), Z[rows], alpha, **kwargs
        )
        for field in ("risk", "lower", "upper", "std_error", "plug_in_risk"):
            assert_allclose(
                getattr(weighted, field), getattr(repeated, field), rtol=1e-10
            )
    weighted = WorstSubpopulationEvaluator(model, subpopulation_size=0.2, **kwargs).fit(
        Z, y, sample_weight=counts
    )
    repeated = WorstSubpopulationEvaluator(model, subpopulation_size=0.2, **kwargs).fit(
        Z[rows], y[rows]
    )
    assert_allclose(weighted.risk_, repeated.risk_, rtol=1e-10)
    assert_allclose(weighted.std_error_, repeated.std_error_, rtol=1e-10)
    assert_allclose(
        weighted.risk_curve([0.1, 0.5]).risk,
        repeated.risk_curve([0.1, 0.5]).risk,
        rtol=1e-10,
    )
    assert_allclose(
        weighted.worst_case_weights_[rows] / counts[rows],
        repeated.worst_case_weights_,
        rtol=1e-10,
    )
    scorer = make_worst_subpopulation_scorer(0.2, regressor=_FixedRisk())
    assert_allclose(
        scorer(model, Z, y, sample_weight=counts), scorer(model, Z[rows], y[rows])
    )


def test_sample_weight_reaches_the_first_stage():
    # zero weights: the same as dropping the rows when the folds do not matter;
    # with a data-driven first stage the weights change its fit
    y_true, y_pred, Z = _uniform_errors(2000, seed=23)
    weights = np.where(Z[:, 1] > 0.5, 3.0, 1.0)
    plain = worst_subpopulation_risk(
        y_true, y_pred, Z, 0.2, regressor=LinearRegression(), random_state=0
    )
    weighted = worst_subpopulation_risk(
        y_true,
        y_pred,
        Z,
        0.2,
        regressor=LinearRegression(),
        sample_weight=weights,
        random_state=0,
    )
    assert plain.risk != weighted.risk
    assert abs(weighted.risk - 0.9) < N_SE * weighted.std_error


def test_bad_sample_weight():
    y_true, y_pred, Z = _uniform_errors(100, seed=24)
    with pytest.raises(ValueError, match="Negative"):
        worst_subpopulation_risk(
            y_true, y_pred, Z, 0.2, sample_weight=-np.ones(100), random_state=0
        )
    with pytest.raises(ValueError, match="non-zero"):
        worst_subpopulation_risk(
            y_true, y_pred, Z, 0.2, sample_weight=np.zeros(100), random_state=0
        )
    with pytest.raises(ValueError, match="sample_weight"):
        worst_subpopulation_risk(
            y_true, y_pred, Z, 0.2, sample_weight=np.ones(99), random_state=0
        )

    class NoWeights(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            return self

        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(ValueError, match="NoWeights.fit does not"):
        worst_subpopulation_risk(
            y_true,
            y_pred,
            Z,
            0.2,
            regressor=NoWeights(),
            sample_weight=np.ones(100),
        )
