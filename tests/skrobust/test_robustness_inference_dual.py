"""The one EL dual solver and the power-series endpoints (issue 15, A, D, F).

Every number is checked against an independent reference: the per-sample
Halley iteration (a separate code path), the statistic of the dual solver
at the endpoint, a root of the multiplier equation by scipy's brentq, the
closed form of two points, and statsmodels' ``emplike``.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import brentq
from scipy.stats import chi2

from skrobust.ambiguity import ChiSquare
from skrobust.inference import (
    _mean,
    el_coef_interval,
    el_max_mean_interval,
    el_mean_interval,
    el_mean_test,
    gel_model_risk_interval,
    gel_optimal_value_interval,
    gel_risk_interval,
)
from skrobust.utils import ConfidenceInterval

CHI2_95 = chi2.ppf(0.95, 1)
N_SERIES = 70_000  # above SERIES_MIN_N: the power-series path


def _halley(x, **kwargs):
    """The endpoints by the per-sample Halley iteration alone (reference)."""
    saved = _mean.SERIES_MIN_N
    _mean.SERIES_MIN_N = np.iinfo(np.int64).max
    try:
        return el_mean_interval(x, **kwargs)
    finally:
        _mean.SERIES_MIN_N = saved


def _samples():
    rng = np.random.default_rng(11)
    return {
        "exponential": rng.exponential(size=N_SERIES),
        "normal": rng.normal(size=N_SERIES),
        "lognormal": rng.lognormal(0.0, 0.4, size=N_SERIES),
        "uniform": rng.uniform(size=N_SERIES),
    }


@pytest.mark.parametrize("name", ["exponential", "normal", "lognormal", "uniform"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bartlett", [False, True])
def test_series_endpoints_match_the_halley_iteration(name, weighted, bartlett):
    x = _samples()[name]
    w = np.random.default_rng(3).uniform(0.2, 2.0, size=x.size) if weighted else None
    mean = np.average(x, weights=w)
    scale = max(x.max() - mean, mean - x.min())
    order = _mean._series_order(x, x.size if w is None else w.sum(), mean, scale, 3.84)
    assert order is not None  # the series path is the one tested
    ours = el_mean_interval(x, sample_weight=w, bartlett=bartlett)
    ref = _halley(x, sample_weight=w, bartlett=bartlett)
    # reference: the per-sample iteration, exact to ~1e-14 of the offsets
    width = ref[1] - ref[0]
    assert_allclose(ours, ref, rtol=0, atol=1e-12 * width)


def test_series_endpoints_have_the_threshold_statistic():
    # reference: the dual solver's statistic at each endpoint is the chi2
    # quantile (a different solve: the multiplier at a fixed mean)
    x = _samples()["exponential"]
    low, high = el_mean_interval(x)
    for end in (low, high):
        assert_allclose(el_mean_test(x, end)[0], CHI2_95, rtol=1e-8)


def test_series_endpoints_match_statsmodels():
    descriptive = pytest.importorskip("statsmodels.emplike.descriptive")
    x = np.random.default_rng(0).exponential(size=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = descriptive.DescStat(x).ci_mean()
    # reference: statsmodels' emplike (brentq on its own Newton solve)
    assert_allclose(el_mean_interval(x), ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("factor", [1e-150, 1e150])
def test_series_endpoints_are_equivariant(factor):
    x = _samples()["exponential"]
    ref = np.array(el_mean_interval(x))
    # identity: the interval of a x + b is a * interval(x) + b
    assert_allclose(np.array(el_mean_interval(x * factor)) / factor, ref, rtol=1e-13)
    assert_allclose(np.array(el_mean_interval(x + 1e6)) - 1e6, ref, atol=1e-8)


def test_heavy_tails_fall_back_to_the_halley_iteration():
    x = np.random.default_rng(4).standard_t(1.5, size=N_SERIES)
    assert_allclose(el_mean_interval(x), _halley(x), rtol=1e-15)


def test_series_certificate_rejects_a_short_series():
    # at n = 1000 the multiplier is ~0.3: power sums to order 6 leave a tail
    # far above the tolerance, and the certificate refuses them; order 16
    # at n = N_SERIES passes and gives the Halley offset
    x = np.random.default_rng(5).exponential(size=1000)
    mean, scale = x.mean(), x.max() - x.mean()
    S = _mean._power_sums(x, None, mean, scale, 6)
    assert _mean._series_offset(S, float(x.size), CHI2_95) is None
    x = _samples()["exponential"]
    mean, scale = x.mean(), x.max() - x.mean()
    S = _mean._power_sums(x, None, mean, scale, 16)
    offset = _mean._series_offset(S, float(x.size), CHI2_95)
    assert_allclose(mean + scale * offset, _halley(x)[1], rtol=1e-15)


def test_power_sums_match_numpy():
    # reference: the powers formed in full by numpy
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=5000), rng.uniform(size=5000)
    z = (x - 0.1) / 4.0
    S = _mean._power_sums(x, w, 0.1, 4.0, 10)
    ref = [np.sum(w * z**k) for k in range(11)]
    assert_allclose(S, ref, rtol=1e-12, atol=1e-12 * w.sum())


def test_el_mean_interval_peak_memory_is_below_the_data():
    # before: 3.0x x's bytes (z and two work arrays of the Halley steps);
    # the series path needs no array of x's size, only a block of powers
    from tests._memory import peak_bytes

    rng = np.random.default_rng(0)
    x = rng.exponential(size=200_000)
    w = rng.uniform(0.1, 2.0, size=x.size)
    el_mean_interval(x[:100], sample_weight=w[:100])  # first-call imports
    assert peak_bytes(el_mean_interval, x) <= 1.0 * x.nbytes
    # weighted (before: 2.5x x and w, copies restricted to positive
    # weights even when all are positive)
    assert peak_bytes(el_mean_interval, x, sample_weight=w) <= 0.75 * (
        x.nbytes + w.nbytes
    )


# -- the mean's statistic through the one dual solver ------------------------


@pytest.mark.parametrize("mu", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_two_points_statistic_closed_form(mu):
    # closed form: on {0, 1} the EL weights are (1 - mu, mu)
    ref = -2.0 * (np.log(2.0 * (1.0 - mu)) + np.log(2.0 * mu))
    assert_allclose(el_mean_test([0.0, 1.0], mu)[0], ref, rtol=1e-12)


def _brentq_statistic(x, w, mu):
    """-2 log R by brentq on the multiplier equation (reference)."""
    z = x - mu
    lo, hi = -1.0 / z.max(), -1.0 / z.min()
    pad = 1e-12 * (hi - lo)
    lam = brentq(
        lambda t: np.sum(w * z / (1.0 + t * z)), lo + pad, hi - pad, xtol=1e-300
    )
    return 2.0 * np.sum(w * np.log1p(lam * z))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 50),
    seed=st.integers(0, 2**31 - 1),
    q=st.floats(0.05, 0.95),
    scale=st.sampled_from([1e-150, 1.0, 1e150]),
)
def test_mean_statistic_matches_brentq(n, seed, q, scale):
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=n) * scale
    w = rng.integers(1, 4, size=n).astype(float)
    mu = float(np.quantile(x, q))
    if not x.min() < mu < x.max():
        return
    ref = _brentq_statistic(x / scale, w, mu / scale)
    ours = el_mean_test(x, mu, sample_weight=w)[0]
    assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    # frequency weights are repetitions
    rep = el_mean_test(np.repeat(x, w.astype(int)), mu)[0]
    assert_allclose(ours, rep, rtol=1e-10, atol=1e-12)


# -- conventions: confidence_level, low / high, one ambiguity constraint -----


def _calls(level_kw):
    from sklearn.linear_model import LinearRegression

    from skrobust.linear_model import DROLinearRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    y = X @ np.array([1.0, -1.0]) + rng.normal(size=80)
    losses = rng.exponential(size=80)
    model = LinearRegression().fit(X, y)
    return [
        lambda: el_mean_interval(losses, **level_kw),
        lambda: gel_risk_interval(losses, **level_kw),
        lambda: gel_model_risk_interval(model, X, y, **level_kw),
        lambda: el_coef_interval(LinearRegression(), X, y, **level_kw),
        lambda: el_max_mean_interval(
            np.column_stack([losses, losses[::-1]]), random_state=0, **level_kw
        ),
        lambda: gel_optimal_value_interval(DROLinearRegression(), X, y, **level_kw),
    ]


def test_old_confidence_name_still_works_and_warns():
    new = [f() for f in _calls({"confidence_level": 0.9})]
    for f, ref in zip(_calls({"confidence": 0.9}), new, strict=True):
        with pytest.warns(FutureWarning, match="confidence_level"):
            old = f()
        assert_allclose(np.asarray(old, dtype=float), np.asarray(ref, dtype=float))
    # the level is 0.9, not the default 0.95
    assert np.ptp(el_mean_interval(np.arange(10.0), confidence_level=0.9)) < np.ptp(
        el_mean_interval(np.arange(10.0))
    )


def test_mean_interval_has_low_and_high():
    ci = el_mean_interval([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    assert isinstance(ci, ConfidenceInterval)
    low, high = ci
    assert (ci.low, ci.high) == (low, high)
    assert low < high
    assert gel_risk_interval(np.arange(5.0)).low < 2.0


def test_one_ambiguity_constraint():
    losses = np.random.default_rng(2).exponential(size=50)
    a = gel_risk_interval(losses, ambiguity="chi2")
    b = gel_risk_interval(losses, ambiguity=ChiSquare(radius=123.0))
    assert_allclose(a, b)  # the radius is replaced by the calibrated one
    for bad in ("cvar", object()):
        with pytest.raises(ValueError, match="ambiguity"):
            gel_risk_interval(losses, ambiguity=bad)
        with pytest.raises(ValueError, match="ambiguity"):
            el_max_mean_interval(losses[:, None], ambiguity=bad)


# -- generalized EL: the certified worst-case risk, lean ----------------------


def test_gel_risk_interval_peak_memory():
    # before: 8.3x the losses (a uniform p, the rescaled losses twice, a
    # negated copy, the feasible weights and the divergence's temporaries);
    # now the rescaled losses plus the set's dual check (3x of its own)
    from tests._memory import peak_bytes

    x = np.random.default_rng(0).exponential(size=200_000)
    gel_risk_interval(x[:100])
    for kind in ("chi2", "kl"):
        assert peak_bytes(gel_risk_interval, x, ambiguity=kind) <= 4.2 * x.nbytes


@pytest.mark.parametrize("kind", ["chi2", "kl"])
@pytest.mark.parametrize("weighted", [False, True])
def test_certified_risk_matches_the_protocol(kind, weighted):
    # reference: the set's own public risk and worst-case weights (the
    # protocol), on the losses and on their negation
    from skrobust.ambiguity import check_ambiguity
    from skrobust.inference._gel_risk import _certified_risk

    rng = np.random.default_rng(8)
    x = rng.lognormal(size=300)
    p = None
    if weighted:
        w = rng.integers(0, 3, size=300).astype(float)
        p = w / w.sum()
    ball = check_ambiguity(kind).set_params(radius=0.02)
    for sign in (1.0, -1.0):
        risk, gap, q = _certified_risk(ball, x, p, sign=sign)
        ref = ball.risk(sign * x, sample_weight=p)
        assert_allclose(risk, ref, rtol=1e-12)
        assert 0.0 <= gap <= 1e-9 * np.ptp(x)
        # q is a distribution (feasible weights) whose mean is the risk
        assert_allclose(q.sum(), 1.0, rtol=1e-12)
        assert_allclose(np.dot(q, sign * x), risk, rtol=1e-8)


def test_coef_interval_accepts_both_squared_loss_names():
    # reference: LinearRegression's interval (the same estimating equations)
    from sklearn.linear_model import LinearRegression

    from skrobust.linear_model import DROLinearRegression

    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 2))
    y = X[:, 0] + rng.normal(size=60)
    ref = el_coef_interval(LinearRegression(), X, y)
    for name in ("squared", "squared_error"):
        model = DROLinearRegression(ambiguity="erm")
        model.loss = name  # set directly: the name the model was built with
        assert_allclose(el_coef_interval(model, X, y), ref, rtol=1e-12)


def test_el_moment_test_peak_memory():
    # before: 3.5x G at n = 1e4 (a weighted copy of G for the Hessian)
    from skrobust.inference import el_moment_test
    from tests._memory import peak_bytes

    x = np.random.default_rng(0).exponential(size=20_000)
    G = np.column_stack([x - 1.0, x * x - 2.0])
    el_moment_test(G[:100])
    assert peak_bytes(el_moment_test, G) <= 2.6 * G.nbytes
