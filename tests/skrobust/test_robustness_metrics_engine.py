"""The evaluators on the ambiguity protocol (issue 15 A, D, E; issue 14 memory).

- ``skrobust.ambiguity._curves.cvar_level_sums``: the CVaR worst case of one
  vector at every level, applied to other vectors, checked against
  ``CVaR(alpha).risk_and_weights`` level by level (the set's own exact solve).
- ``kl_radius_at_risk``: the KL radius at which the worst case reaches a
  level, checked against ``KL(radius).risk`` (the set's own Newton solve) and
  a closed form; ``kl_stability`` is that radius.
- ``WorstSubpopulationEvaluator.risk_curve``: peak memory at most 3x the loss
  vector (9.3x to 11.1x before, measured with ``tests/_memory.py`` at
  n = 1e4 and 1e5), and its value at risk equals CVaR's at every level (the
  old cumulative sum of 1/n picked the next sample once its rounding passed
  CVaR's slack of 1e-12: 12 of 50 levels at n = 1e5).
- The renamed parameters (``subpopulation_size``, ``confidence_level``) with
  the old names kept one release (FutureWarning), intervals as objects with
  ``low`` / ``high``.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression

from skrobust.ambiguity import KL, CVaR
from skrobust.ambiguity._curves import (
    cvar_level_sums,
    cvar_weighted_means,
    kl_radius_at_risk,
)
from skrobust.metrics import (
    WorstSubpopulationEvaluator,
    make_worst_subpopulation_scorer,
    worst_subpopulation_risk,
)
from skrobust.shift import decompose_performance_shift, kl_stability
from skrobust.utils import ConfidenceInterval
from tests._memory import peak_bytes

RTOL = 1e-10
ATOL = 1e-12
MEMORY_RATIO = 3.0  # issue 14, section 6


def _reference_sums(rank_by, alphas, column, weights):
    """sum_i q_i c_i and sum_i q_i c_i^2 with q = CVaR(alpha)'s worst case."""
    first, second = [], []
    for alpha in alphas:
        q = CVaR(alpha=alpha).worst_case_weights(rank_by, sample_weight=weights)
        first.append(q @ column)
        second.append(q @ column**2)
    return np.array(first), np.array(second)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    ties=st.booleans(),
    weighted=st.booleans(),
    exponent=st.sampled_from([-150, 0, 150]),
    seed=st.integers(0, 2**16),
)
def test_level_sums_match_cvar_worst_case(n, ties, weighted, exponent, seed):
    # reference: CVaR(alpha).worst_case_weights, one exact solve per level
    rng = np.random.default_rng(seed)
    rank_by = rng.integers(0, 3, n).astype(float) if ties else rng.standard_t(3, n)
    rank_by *= 10.0**exponent
    column = rng.normal(size=n) * 10.0**exponent
    weights = None
    if weighted:
        weights = rng.uniform(size=n) * (rng.uniform(size=n) < 0.7)
        weights[0] = 1.0
    alphas = np.r_[rng.uniform(size=8), 1.0, 1e-9, 0.5]
    scale = 10.0**exponent
    sums = cvar_level_sums(
        rank_by, alphas, [column], sample_weight=weights, scale=scale, powers=(1, 2)
    )
    got_first = (sums.above[0, 0] + sums.tie_share * sums.tie[0, 0]) / alphas
    got_second = (sums.above[0, 1] + sums.tie_share * sums.tie[0, 1]) / alphas
    ref_first, ref_second = _reference_sums(rank_by, alphas, column / scale, weights)
    assert_allclose(got_first, ref_first, rtol=1e-9, atol=1e-9)
    assert_allclose(got_second, ref_second, rtol=1e-9, atol=1e-9)
    risks = [CVaR(alpha=a).risk(rank_by, sample_weight=weights) for a in alphas]
    assert_allclose(sums.risk, risks, rtol=1e-9, atol=ATOL * 10.0**exponent)
    assert np.all((sums.tie_share >= 0) & (sums.tie_share <= 1))


def test_level_sums_difference_columns_and_blocks():
    # a pair (a, b) is a - b formed a block at a time; n spans many blocks.
    # Reference: CVaR(alpha).worst_case_weights applied to a - b.
    rng = np.random.default_rng(1)
    n = 50_000
    rank_by = np.round(rng.uniform(size=n), 3)  # ties across block edges
    a, b = rng.normal(size=n), rng.normal(size=n)
    weights = rng.integers(0, 3, n).astype(float)
    alphas = np.array([0.001, 0.1, 0.37, 0.9, 1.0])
    got = cvar_weighted_means(rank_by, alphas, [(a, b)], sample_weight=weights)[0]
    for k, alpha in enumerate(alphas):
        q = CVaR(alpha=alpha).worst_case_weights(rank_by, sample_weight=weights)
        assert_allclose(got[k], q @ (a - b), rtol=1e-9, atol=1e-12)


def test_level_sums_when_rounding_leaves_a_target_unmet(monkeypatch):
    # a negative slack puts the target of alpha = 1 above the cumulated
    # mass, as rounding can: the worst case is then all of the mass.
    # Reference: the weighted mean (CVaR at alpha = 1).
    import skrobust.ambiguity._curves as curves

    monkeypatch.setattr(curves, "_SLACK", -1e-9)
    rng = np.random.default_rng(7)
    for n in (3, 50, 5000):
        rank_by = np.round(rng.uniform(size=n), 1)
        column = rng.normal(size=n)
        weights = rng.integers(0, 3, n).astype(float)
        weights[0] = 1.0
        sums = cvar_level_sums(
            rank_by, [1.0, 0.5], [column], sample_weight=weights, powers=(1, 2)
        )
        p = weights / weights.sum()
        got = sums.above[0, :, 0] + sums.tie_share[0] * sums.tie[0, :, 0]
        assert_allclose(got, [p @ column, p @ column**2], rtol=RTOL)
        assert_allclose(sums.risk[0], p @ rank_by, rtol=RTOL)


def test_level_sums_do_not_modify_inputs():
    rank_by = np.array([3.0, 1.0, 2.0, 2.0])
    column = np.array([1.0, -1.0, 4.0, 0.5])
    weights = np.array([1.0, 0.0, 2.0, 1.0])
    copies = [rank_by.copy(), column.copy(), weights.copy()]
    cvar_level_sums(rank_by, [0.5, 0.1], [column], sample_weight=weights)
    for array, copy in zip([rank_by, column, weights], copies, strict=True):
        assert_allclose(array, copy)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alphas": [0.0]}, "alphas must lie in"),
        ({"alphas": []}, "alphas is empty"),
        ({"columns": [np.ones(3)]}, "every column must have shape"),
        ({"sample_weight": [1.0, -1.0]}, "Negative|negative"),
        ({"rank_by": [1.0, np.nan]}, "rank_by contains NaN"),
    ],
)
def test_level_sums_bad_input(kwargs, match):
    arguments = {"rank_by": [1.0, 2.0], "alphas": [0.5]} | kwargs
    with pytest.raises(ValueError, match=match):
        cvar_level_sums(**arguments)


def test_evaluator_value_at_risk_is_cvars_at_every_level():
    # n * alpha integer: the old cumulative sum of 1 / n rounded past the
    # 1e-12 slack and took the next sample as value at risk (before: 12 of
    # the 50 levels differed at this n, alpha = 0.76 to 0.98). Reference:
    # CVaR(alpha).dual_init, the set's own value at risk.
    n = 100_000
    rng = np.random.default_rng(0)
    Z = rng.uniform(size=(n, 1))
    y = (rng.uniform(size=n) < Z[:, 0]).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    evaluator = WorstSubpopulationEvaluator(
        model,
        subpopulation_size=0.2,
        regressor=LinearRegression(),
        bias_correction=False,
        cv=2,
        random_state=0,
    ).fit(Z, y)
    sizes = np.linspace(0.02, 1.0, 50)
    curve = evaluator.risk_curve(sizes)
    mu = evaluator.conditional_risk_
    reference = [CVaR(alpha=a).dual_init(mu)[0] for a in sizes]
    assert_allclose(curve.threshold, reference, rtol=1e-12)
    for k in (10, 40):
        q = CVaR(alpha=sizes[k]).worst_case_weights(mu)
        assert_allclose(curve.plug_in_risk[k], q @ mu, rtol=RTOL)


@pytest.fixture(scope="module")
def fitted_evaluators():
    n = 20_000
    rng = np.random.default_rng(3)
    Z = rng.uniform(size=(n, 5))
    y = (rng.uniform(size=n) < Z[:, 0]).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    weights = rng.integers(0, 3, n).astype(float)
    fitted = {}
    for bias_correction in (False, True):
        for weighted in (False, True):
            evaluator = WorstSubpopulationEvaluator(
                model,
                subpopulation_size=0.2,
                regressor=LinearRegression(),
                bias_correction=bias_correction,
                random_state=0,
            )
            fitted[bias_correction, weighted] = evaluator.fit(
                Z, y, sample_weight=weights if weighted else None
            )
    return fitted


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("bias_correction", [False, True], ids=["one", "halves"])
def test_risk_curve_peak_memory(fitted_evaluators, bias_correction, weighted):
    # before: 10.0x (one first stage per fold), 11.0x (two halves), 9.4x
    # weighted, at n = 20000; after: 1.3x to 2.4x
    evaluator = fitted_evaluators[bias_correction, weighted]
    sizes = np.linspace(0.02, 1.0, 50)
    evaluator.risk_curve(sizes)  # lazy imports and caches
    peak = peak_bytes(evaluator.risk_curve, sizes)
    assert peak <= MEMORY_RATIO * evaluator.losses_.nbytes


def test_risk_curve_does_not_modify_the_fit(fitted_evaluators):
    evaluator = fitted_evaluators[True, True]
    losses = evaluator.losses_.copy()
    predictions = evaluator._predictions.copy()
    evaluator.risk_curve([0.1, 0.5])
    assert_allclose(evaluator.losses_, losses)
    assert_allclose(evaluator._predictions, predictions)


def test_kl_radius_closed_form():
    # 0/1 losses with mean 0.1: I(y) = KL(Bernoulli(y) || Bernoulli(0.1))
    losses = np.r_[np.ones(100), np.zeros(900)]
    radius, multiplier, q = kl_radius_at_risk(losses, 0.3)
    exact = 0.3 * np.log(0.3 / 0.1) + 0.7 * np.log(0.7 / 0.9)
    assert_allclose(radius, exact, rtol=1e-12)
    # tilt exp(lambda) = odds ratio (0.3 / 0.7) / (0.1 / 0.9)
    assert_allclose(multiplier, np.log((0.3 / 0.7) / (0.1 / 0.9)), rtol=1e-10)
    assert_allclose(q @ losses, 0.3, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 50),
    ties=st.booleans(),
    exponent=st.sampled_from([-150, -5, 0, 5, 150]),
    share=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**16),
)
def test_kl_radius_inverts_the_kl_ball(n, ties, exponent, share, seed):
    # reference: KL(radius).risk, the set's own exact solve, at the radius
    rng = np.random.default_rng(seed)
    losses = rng.integers(0, 3, n).astype(float) if ties else rng.exponential(size=n)
    losses *= 10.0**exponent
    mean, top = losses.mean(), losses.max()
    if top == mean:
        return
    level = mean + share * (top - mean)
    copy = losses.copy()
    radius, _, q = kl_radius_at_risk(losses, level)
    assert_allclose(losses, copy)  # not overwritten by default
    assert_allclose(q.sum(), 1.0, rtol=1e-12)
    assert_allclose(q @ losses, level, rtol=1e-8)
    assert_allclose(KL(radius=radius).risk(losses), level, rtol=1e-8)
    # the radius is the KL divergence of the tilt
    positive = q > 0
    divergence = np.sum(q[positive] * np.log(q[positive] * n))
    assert_allclose(radius, divergence, rtol=1e-7, atol=1e-12)


def test_kl_radius_edges():
    losses = np.array([0.0, 1.0, 1.0, 3.0])
    assert kl_radius_at_risk(losses, 1.0)[0] == 0.0  # the mean
    radius, multiplier, q = kl_radius_at_risk(losses, 3.0)  # the largest
    assert_allclose(radius, np.log(4.0))
    assert multiplier == np.inf
    assert_allclose(q, [0, 0, 0, 1])
    assert kl_radius_at_risk(losses, 3.5)[0] == np.inf


def test_kl_stability_is_the_kl_radius():
    rng = np.random.default_rng(5)
    losses = rng.exponential(size=500)
    result = kl_stability(losses, 1.6)
    radius, multiplier, _ = kl_radius_at_risk(losses, 1.6)
    assert result.stability == radius
    assert result.multiplier == multiplier
    assert_allclose(KL(radius=result.stability).risk(losses), 1.6, rtol=1e-10)


def _small_evaluation(n=300, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.uniform(size=(n, 2))
    y = (rng.uniform(size=n) < Z[:, 0]).astype(int)
    model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
    return Z, y, model


def test_evaluator_old_names_warn_and_agree():
    Z, y, model = _small_evaluation()
    kwargs = {"regressor": LinearRegression(), "random_state": 0}
    new = WorstSubpopulationEvaluator(
        model, subpopulation_size=0.3, confidence_level=0.9, **kwargs
    ).fit(Z, y)
    with pytest.warns(FutureWarning, match="'alpha' is deprecated"):
        old = WorstSubpopulationEvaluator(model, alpha=0.3, **kwargs).fit(Z, y)
    assert_allclose(old.risk_, new.risk_, rtol=RTOL)
    with pytest.warns(FutureWarning, match="'confidence' is deprecated"):
        old = WorstSubpopulationEvaluator(
            model, subpopulation_size=0.3, confidence=0.9, **kwargs
        ).fit(Z, y)
    assert_allclose(old.confidence_interval_, new.confidence_interval_, rtol=RTOL)
    interval = new.confidence_interval_
    assert isinstance(interval, ConfidenceInterval)
    assert interval.low <= new.risk_ <= interval.high
    curve = new.risk_curve([0.2, 0.6])
    with pytest.warns(FutureWarning, match="'alphas' is deprecated"):
        old_curve = new.risk_curve(alphas=[0.2, 0.6])
    assert_allclose(old_curve.risk, curve.risk, rtol=RTOL)
    assert_allclose(curve.subpopulation_size, [0.2, 0.6])
    assert curve.confidence_level == 0.9
    with pytest.warns(FutureWarning, match="subpopulation_size"):
        assert_allclose(curve.alpha, [0.2, 0.6])
    with pytest.warns(FutureWarning, match="confidence_level"):
        assert curve.confidence == 0.9
    with pytest.raises(ValueError, match="subpopulation_sizes"):
        new.risk_curve([0.0, 0.5])


def test_function_and_scorer_old_names_warn_and_agree():
    rng = np.random.default_rng(2)
    Z = rng.uniform(size=(400, 2))
    y_pred = (rng.uniform(size=400) < Z[:, 0]).astype(float)
    y_true = np.zeros(400)
    kwargs = {"regressor": LinearRegression(), "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        positional = worst_subpopulation_risk(y_true, y_pred, Z, 0.2, **kwargs)
        named = worst_subpopulation_risk(
            y_true, y_pred, Z, subpopulation_size=0.2, confidence_level=0.9, **kwargs
        )
    with pytest.warns(FutureWarning, match="'alpha' is deprecated"):
        old = worst_subpopulation_risk(y_true, y_pred, Z, alpha=0.2, **kwargs)
    assert old.risk == positional.risk
    with pytest.warns(FutureWarning, match="'confidence' is deprecated"):
        old = worst_subpopulation_risk(y_true, y_pred, Z, 0.2, confidence=0.9, **kwargs)
    assert old.confidence_interval == named.confidence_interval
    assert named.confidence_interval.low == named.lower
    with pytest.raises(TypeError, match="subpopulation_size"):
        worst_subpopulation_risk(y_true, y_pred, Z, **kwargs)
    X = Z
    model = DummyClassifier(strategy="constant", constant=0).fit(X, y_pred)
    scorer = make_worst_subpopulation_scorer(0.2, regressor=LinearRegression())
    with pytest.warns(FutureWarning, match="'alpha' is deprecated"):
        old_scorer = make_worst_subpopulation_scorer(
            alpha=0.2, regressor=LinearRegression()
        )
    assert old_scorer(model, X, y_pred) == scorer(model, X, y_pred)


def test_shift_old_names_warn_and_agree():
    rng = np.random.default_rng(4)
    losses = rng.exponential(size=300)
    new = kl_stability(losses, 1.5, confidence_level=0.9)
    with pytest.warns(FutureWarning, match="'confidence' is deprecated"):
        old = kl_stability(losses, 1.5, confidence=0.9)
    assert old.confidence_interval == new.confidence_interval
    assert isinstance(new.confidence_interval, ConfidenceInterval)
    assert new.confidence_interval.low == new.lower
    with pytest.warns(FutureWarning, match="confidence_level"):
        assert new.confidence == 0.9
    X_source = rng.normal(size=(200, 2))
    X_target = rng.normal(loc=0.5, size=(200, 2))
    y_source = X_source[:, 0] + rng.normal(size=200)
    y_target = X_target[:, 0] + rng.normal(size=200)
    model = DummyRegressor().fit(X_source, y_source)
    kwargs = {"loss": "squared_error", "cv": 2, "random_state": 0}
    data = (model, X_source, y_source, X_target, y_target)
    result = decompose_performance_shift(*data, confidence_level=0.8, **kwargs)
    with pytest.warns(FutureWarning, match="'confidence' is deprecated"):
        old = decompose_performance_shift(*data, confidence=0.8, **kwargs)
    interval = result.intervals["total"]
    assert isinstance(interval, ConfidenceInterval)
    assert interval == old.intervals["total"]
    assert interval.low < result.total < interval.high
    assert result.confidence_level == 0.8
