"""Ambiguity sets against independent references.

References: a cvxpy solve of the *primal* problem over the weight vector
(maximize q . losses subject to q in the set), closed forms (variance
expansion of the chi-square risk, average of the top losses for CVaR, the
Bernoulli KL equation solved by scipy's brentq), and invariances checked with
hypothesis.
"""

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import brentq, minimize_scalar
from sklearn.base import clone

from skrobust.ambiguity import (
    KL,
    ChiSquare,
    CressieRead,
    CVaR,
    TotalVariation,
    check_ambiguity,
)
from skrobust.ambiguity._base import _group_descending
from skrobust.ambiguity._cressie_read import _chi2_root, _cressie_read_root

# cvxpy's interior-point solution is accurate to about 1e-8.
CVXPY_ATOL = 1e-6
EXACT_RTOL = 1e-12

SETS = [
    ChiSquare(0.3),
    ChiSquare(2.0),
    CressieRead(0.5, k=3.0),
    CressieRead(0.2, k=1.5),
    KL(0.3),
    KL(2.0),
    CVaR(0.15),
    CVaR(0.5),
    TotalVariation(0.2),
    TotalVariation(0.7),
]


def divergence(ambiguity, q, p):
    """The set's divergence of q from p (numpy), for feasibility checks."""
    mask = p > 0
    t = q[mask] / p[mask]
    if isinstance(ambiguity, KL):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(t > 0, q[mask] * np.log(t), 0.0)))
    if isinstance(ambiguity, CVaR):
        return float(np.max(t))
    if isinstance(ambiguity, TotalVariation):
        return 0.5 * float(np.sum(np.abs(q - p)))
    k = ambiguity._k
    return float(np.sum(p[mask] * (t**k - k * t + k - 1) / (k * (k - 1))))


def primal_risk(ambiguity, losses, p):
    """Independent reference: maximize E_q[losses] over the set with cvxpy."""
    n = losses.shape[0]
    q = cp.Variable(n, nonneg=True)
    constraints = [cp.sum(q) == 1]
    if isinstance(ambiguity, KL):
        constraints.append(cp.sum(cp.rel_entr(q, p)) <= ambiguity.radius)
    elif isinstance(ambiguity, CVaR):
        constraints.append(q <= p / ambiguity.alpha)
    elif isinstance(ambiguity, TotalVariation):
        constraints.append(0.5 * cp.sum(cp.abs(q - p)) <= ambiguity.radius)
    else:
        k = ambiguity._k
        t = cp.multiply(q, 1 / p)
        f = (cp.power(t, k) - k * t + k - 1) / (k * (k - 1))
        constraints.append(p @ f <= ambiguity.radius)
    problem = cp.Problem(cp.Maximize(q @ losses), constraints)
    problem.solve(solver="CLARABEL")
    return problem.value, q.value


def random_case(rng, n, ties=False):
    losses = rng.normal(size=n)
    if ties and n > 3:
        losses[: n // 3] = losses[0]
        losses[-2:] = losses.max()
    p = rng.uniform(0.2, 1.0, size=n)
    return losses, p / p.sum()


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize("ties", [False, True])
def test_risk_matches_cvxpy_primal(ambiguity, n, ties):
    rng = np.random.default_rng(n + 100 * ties)
    losses, p = random_case(rng, n, ties)
    risk, q = ambiguity.risk_and_weights(losses, p)
    reference, q_ref = primal_risk(ambiguity, losses, p)
    assert_allclose(risk, reference, atol=CVXPY_ATOL)
    # the weights are a feasible worst case attaining the risk
    assert np.all(q >= 0)
    assert_allclose(q.sum(), 1.0, rtol=EXACT_RTOL)
    assert_allclose(q @ losses, risk, rtol=1e-10, atol=1e-12)
    bound = 1 / ambiguity.alpha if isinstance(ambiguity, CVaR) else ambiguity.radius
    assert divergence(ambiguity, q, p) <= bound * (1 + 1e-8) + 1e-10
    if not ties and not isinstance(ambiguity, (CVaR, TotalVariation)):
        # strictly convex divergences: the maximizer is unique
        # (cvxpy power-cone weights are accurate to ~1e-5)
        assert_allclose(q, q_ref, atol=5e-5)


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_all_equal_losses_give_that_value(ambiguity):
    losses = np.full(5, 3.25)
    risk, q = ambiguity.risk_and_weights(losses)
    assert risk == 3.25
    assert_allclose(q, np.full(5, 0.2))


@pytest.mark.parametrize(
    "ambiguity", [ChiSquare(1e6), CressieRead(1e6, k=3), KL(50.0), CVaR(1e-6)], ids=repr
)
def test_huge_radius_puts_all_mass_on_largest_loss(ambiguity):
    losses = np.array([0.3, 2.0, -1.0, 2.0, 1.5])
    risk, q = ambiguity.risk_and_weights(losses)
    assert risk == 2.0
    assert_allclose(q, [0, 0.5, 0, 0.5, 0])


def test_chi_square_variance_expansion():
    # Closed form when no loss is clipped: mean + sqrt(2 rho Var).
    losses = np.array([1.0, 2.0, 3.0, 4.0])
    rho = 0.1
    assert_allclose(
        ChiSquare(rho).risk(losses), 2.5 + np.sqrt(2 * rho * 1.25), rtol=EXACT_RTOL
    )


def test_total_variation_mixes_cvar_and_max():
    # Closed form: move mass delta from the smallest losses to the largest.
    losses = np.array([4.0, 1.0, 3.0, 2.0, 0.0])
    # delta = 0.4: remove 0.2 from loss 0 and 0.2 from loss 1, add 0.4 to loss 4
    expected = 0.2 * (2 + 3 + 4) + 0.4 * 4.0
    assert_allclose(TotalVariation(0.4).risk(losses), expected, rtol=EXACT_RTOL)
    assert TotalVariation(1.0).risk(losses) == 4.0


def test_cvar_is_average_of_top_losses():
    rng = np.random.default_rng(0)
    losses = rng.normal(size=100)
    top = np.sort(losses)[-20:]
    assert_allclose(CVaR(0.2).risk(losses), top.mean(), rtol=EXACT_RTOL)


def test_kl_bernoulli_closed_form():
    # Two-point losses {0, 1} with P(1) = 0.3: the worst case is Bernoulli(q)
    # with KL(Ber(q) || Ber(0.3)) = rho, solved independently with brentq.
    rho, base = 0.2, 0.3
    losses = np.array([0.0] * 7 + [1.0] * 3)

    def bern_kl(q):
        return q * np.log(q / base) + (1 - q) * np.log((1 - q) / (1 - base)) - rho

    expected = brentq(bern_kl, base, 1 - 1e-15, xtol=1e-15)
    assert_allclose(KL(rho).risk(losses), expected, rtol=1e-12)


@pytest.mark.parametrize("k", [1.5, 2.0, 3.0, 7.0])
def test_generic_cressie_read_root_matches_closed_form_at_k2(k):
    rng = np.random.default_rng(3)
    z = rng.uniform(size=50)
    z = (z - z.min()) / np.ptp(z)
    p = np.full(50, 1 / 50)
    values, mass, _ = _group_descending(z, p)
    s = k / (k - 1)
    c = (1 + k * (k - 1) * 0.4) ** (1 / k)
    eta = _cressie_read_root(z, p, s, c)

    def dual(e):
        return c * np.dot(p, np.maximum(z - e, 0) ** s) ** (1 / s) + e

    ref = minimize_scalar(
        dual, bounds=(-10, 1), method="bounded", options={"xatol": 1e-12}
    )
    assert_allclose(dual(eta), ref.fun, rtol=1e-10)
    if k == 2.0:
        assert_allclose(_chi2_root(values, mass, c, z, p), eta, atol=1e-10)


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_dual_objective_minimum_is_the_risk_and_gradients_match(ambiguity):
    rng = np.random.default_rng(5)
    losses, p = random_case(rng, 30)
    dual = ambiguity.dual_init(losses, p)
    value, g_loss, g_dual = ambiguity.dual_objective(dual, losses, p)
    assert_allclose(value, ambiguity.risk(losses, p), rtol=1e-9)
    if ambiguity.needs_smoothing:
        # CVaR: eta* is a kink; 0 lies in the subdifferential [1 - P(l >= eta)/a,
        # 1 - P(l > eta)/a], of width at most max(p) / alpha
        alpha = getattr(ambiguity, "alpha", None) or 1 - ambiguity.radius
        assert abs(g_dual[0]) <= p.max() / alpha + 1e-12
    else:
        assert_allclose(g_dual, 0.0, atol=1e-6)
    # gradient in the losses: finite differences at a generic dual point
    smoothing = 0.05 if ambiguity.needs_smoothing else 0.0
    d0 = dual + 0.1
    v0, g0, gd0 = ambiguity.dual_objective(d0, losses, p, smoothing=smoothing)
    h = 1e-6
    for i in range(3):
        bumped = losses.copy()
        bumped[i] += h
        v1 = ambiguity.dual_objective(d0, bumped, p, smoothing=smoothing)[0]
        assert_allclose((v1 - v0) / h, g0[i], rtol=1e-3, atol=1e-7)
    v1 = ambiguity.dual_objective(d0 + h, losses, p, smoothing=smoothing)[0]
    assert_allclose((v1 - v0) / h, gd0[0], rtol=1e-3, atol=1e-6)


def test_cvar_smoothing_error_bound_holds():
    rng = np.random.default_rng(2)
    losses, p = random_case(rng, 50)
    cvar = CVaR(0.1)
    for tau in [1.0, 0.1, 0.01]:
        for eta in np.linspace(-2, 2, 9):
            exact = cvar.dual_objective([eta], losses, p)[0]
            smooth = cvar.dual_objective([eta], losses, p, smoothing=tau)[0]
            assert exact <= smooth <= exact + cvar.smoothing_error(tau) + 1e-12


def test_sample_weight_equals_repeating_samples():
    losses = np.array([0.5, 1.0, 3.0, -2.0])
    weights = np.array([1, 3, 2, 0])
    repeated = np.repeat(losses, weights)
    for ambiguity in SETS:
        r_w, q_w = ambiguity.risk_and_weights(losses, weights)
        r_r = ambiguity.risk(repeated)
        assert_allclose(r_w, r_r, rtol=1e-12)
        assert q_w[3] == 0.0


@pytest.mark.parametrize(
    "ambiguity", [ChiSquare(0), KL(0), CressieRead(0, 3), CVaR(1), TotalVariation(0)]
)
def test_trivial_sets_give_the_mean(ambiguity):
    losses = np.array([1.0, 5.0, -3.0])
    p = np.array([0.2, 0.3, 0.5])
    assert_allclose(ambiguity.risk(losses, p), losses @ p)
    assert_allclose(ambiguity.worst_case_weights(losses, p), p)


def test_extreme_scales_stay_finite_and_ordered():
    losses = np.geomspace(1e-12, 1e12, 50)
    for ambiguity in [
        ChiSquare(1e-12),
        ChiSquare(1e12),
        KL(1e-12),
        KL(1e3),
        CVaR(1e-9),
    ]:
        risk = ambiguity.risk(losses)
        assert np.isfinite(risk)
        assert losses.mean() * (1 - 1e-12) <= risk <= losses.max()
    # tiny losses: scale invariance at 1e-12
    small = np.array([1e-12, 2e-12, 4e-12])
    assert_allclose(
        ChiSquare(0.5).risk(small), 1e-12 * ChiSquare(0.5).risk(small * 1e12)
    )


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
loss_vectors = st.lists(finite, min_size=1, max_size=30).map(np.array)
radii = st.floats(0, 20, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(losses=loss_vectors, r1=radii, r2=radii, k=st.floats(1.1, 6))
def test_risk_is_monotone_in_radius_and_between_mean_and_max(losses, r1, r2, k):
    lo, hi = sorted([r1, r2])
    slack = 1e-9 * (1 + np.abs(losses).max())
    for make in (ChiSquare, KL, lambda r: CressieRead(r, k=k)):
        small, large = make(lo).risk(losses), make(hi).risk(losses)
        assert small <= large + slack
        assert losses.mean() - slack <= small <= losses.max() + slack


@settings(max_examples=60, deadline=None)
@given(losses=loss_vectors, a1=st.floats(1e-3, 1), a2=st.floats(1e-3, 1))
def test_cvar_monotone_in_alpha(losses, a1, a2):
    lo, hi = sorted([a1, a2])
    slack = 1e-9 * (1 + np.abs(losses).max())
    assert CVaR(hi).risk(losses) <= CVaR(lo).risk(losses) + slack


@settings(max_examples=40, deadline=None)
@given(losses=loss_vectors, shift=finite, scale=st.floats(1e-3, 1e3))
def test_translation_and_scale_equivariance(losses, shift, scale):
    for ambiguity in (ChiSquare(0.7), KL(0.4), CVaR(0.3), CressieRead(0.3, k=4)):
        base = ambiguity.risk(losses)
        moved = ambiguity.risk(scale * losses + shift)
        assert_allclose(
            moved,
            scale * base + shift,
            rtol=1e-8,
            atol=1e-8 * (abs(shift) + scale * (1 + np.abs(losses).max())),
        )


def test_params_clone_and_repr():
    ball = ChiSquare(radius=0.5)
    assert ball.get_params() == {"radius": 0.5}
    assert clone(ball.set_params(radius=2.0)).radius == 2.0
    assert repr(CressieRead(0.1, k=3)) == "CressieRead(k=3, radius=0.1)"
    assert isinstance(check_ambiguity("kl"), KL)


@pytest.mark.parametrize(
    "ambiguity, match",
    [
        (ChiSquare(-1.0), "radius"),
        (KL(-0.1), "radius"),
        (CVaR(0.0), "alpha"),
        (CVaR(1.5), "alpha"),
        (CressieRead(0.1, k=1.0), "k"),
    ],
)
def test_invalid_parameters_are_named(ambiguity, match):
    with pytest.raises(ValueError, match=match):
        ambiguity.risk([1.0, 2.0])


def test_invalid_losses_and_weights():
    ball = ChiSquare(0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ball.risk([1.0, np.nan])
    with pytest.raises(ValueError, match="NaN or infinite"):
        ball.risk([1.0, np.inf])
    with pytest.raises(ValueError, match="empty"):
        ball.risk([])
    with pytest.raises(ValueError, match="1-dimensional"):
        ball.risk(np.ones((2, 2)))
    with pytest.raises(ValueError, match="negative"):
        ball.risk([1.0, 2.0], sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="shape"):
        ball.risk([1.0, 2.0], sample_weight=[1.0])
    with pytest.raises(ValueError, match="sums to zero"):
        ball.risk([1.0, 2.0], sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match="shortcut"):
        check_ambiguity("wasserstein-ish")
    with pytest.raises(TypeError, match="ambiguity set"):
        check_ambiguity(3.0)


def test_inputs_are_not_modified():
    losses = np.array([3.0, 1.0, 2.0])
    weights = np.array([1.0, 2.0, 3.0])
    for ambiguity in SETS:
        ambiguity.risk_and_weights(losses, weights)
    assert_allclose(losses, [3.0, 1.0, 2.0])
    assert_allclose(weights, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("seed", range(40))
def test_cvar_smoothed_dual_argmin_matches_brent(seed):
    # Reference: scipy's brentq on the optimality condition
    # E_p[sigmoid((l - eta) / tau)] = alpha, on a bracket wide enough to hold it.
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    losses = rng.normal(size=n) * 10 ** rng.uniform(-3, 3)
    if seed % 7 == 0:
        losses[:] = losses[0]
    p = rng.uniform(size=n)
    p /= p.sum()
    alpha = rng.uniform(0.01, 1)
    tau = 10 ** rng.uniform(-8, 0) * max(np.ptp(losses), 1e-3)
    cvar = CVaR(alpha)
    start = None if seed % 2 else np.array([losses.mean() + 10 * rng.normal()])
    eta = cvar.dual_argmin(losses, p, tau, start)[0]

    def condition(e):
        return p @ expit((losses - e) / tau) - alpha

    lo, hi = losses.min() - 50 * tau - 1, losses.max() + 50 * tau + 1
    reference = brentq(condition, lo, hi, xtol=1e-15 * max(1, abs(lo), abs(hi)))
    value = cvar.dual_objective([eta], losses, p, tau)[0]
    best = cvar.dual_objective([reference], losses, p, tau)[0]
    assert value <= best + 1e-14 * max(1.0, abs(best))
