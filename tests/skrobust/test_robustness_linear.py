"""Numerical regimes of the DRO linear models (issue 14, sections 2, 3, 6, 7).

Every reference value comes from an independent source, named next to it:

* ``_cvxpy_optimum``: the primal problem written here from scratch in cvxpy
  (Rockafellar-Uryasev for CVaR, CVaR plus the maximum for total variation,
  the second-order cone for chi-square) and solved by Clarabel at gap
  tolerance 1e-10 -- it does not use the package's cvxpy formulations;
* closed forms: least squares (``numpy.linalg.lstsq``), the maximum loss
  ``log 2`` of a constant logistic predictor, a perfect fit's zero loss;
* exact identities: zero-weight rows equal dropped rows; scaling ``y``
  scales the solution.
"""

import tracemalloc
import warnings

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from skrobust.ambiguity import KL, ChiSquare, CVaR, TotalVariation, Wasserstein
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression
from skrobust.utils import LOSS_NAMES

# issue 14's target: within 1e-6 relative of the optimum
RTOL = 1e-6


def _cvxpy_optimum(X, y, loss, head, alpha=0.0, weights=None, epsilon=1.0):
    """Optimal objective of the DRO problem, from a cvxpy primal written here.

    ``loss`` in {"squared", "absolute", "huber", "logistic"} (logistic with
    y in {-1, +1}); ``head`` an ambiguity set of skrobust.ambiguity.
    """
    n, d = X.shape
    p = np.full(n, 1.0 / n) if weights is None else weights / weights.sum()
    w, b = cp.Variable(d), cp.Variable()
    z = X @ w + b
    if loss == "squared":
        losses = 0.5 * cp.square(z - y)
    elif loss == "absolute":
        losses = cp.abs(z - y)
    elif loss == "huber":
        losses = 0.5 * cp.huber(z - y, epsilon)
    else:
        losses = cp.logistic(-cp.multiply(y, z))
    support = np.flatnonzero(p > 0)
    if head == "erm":
        risk = p @ losses
    elif isinstance(head, Wasserstein):
        # mean loss + radius * L * ||w||_*, the dual of the transport norm
        lipschitz = {"absolute": 1.0, "huber": epsilon, "logistic": 1.0}[loss]
        dual = {2: 2, 1: "inf", "inf": 1}[head.norm]
        risk = p @ losses + head.radius * lipschitz * cp.norm(w, dual)
    elif isinstance(head, CVaR):
        eta = cp.Variable()
        risk = eta + p @ cp.pos(losses - eta) / head.alpha
    elif isinstance(head, TotalVariation):
        eta = cp.Variable()
        delta = head.radius
        cvar = eta + p @ cp.pos(losses - eta) / (1 - delta)
        risk = (1 - delta) * cvar + delta * cp.max(losses[support])
    elif isinstance(head, ChiSquare):
        # sqrt(1 + 2 rho) * E_p[(l - eta)_+^2]^(1/2) + eta
        eta = cp.Variable()
        c = np.sqrt(1 + 2 * head.radius)
        risk = c * cp.norm(cp.multiply(np.sqrt(p), cp.pos(losses - eta))) + eta
    elif isinstance(head, KL):
        # min_{lam >= 0, s} lam rho + s  with  E_p[lam exp((l - s) / lam)] <= lam,
        # through exponential cones u_i >= lam exp((t_i - s) / lam), t >= l
        lam, s, t, u = (
            cp.Variable(nonneg=True),
            cp.Variable(),
            cp.Variable(n),
            cp.Variable(n),
        )
        constraints = [t >= losses, cp.constraints.ExpCone(t - s, lam * np.ones(n), u)]
        constraints.append(p @ u <= lam)
        problem = cp.Problem(
            cp.Minimize(lam * head.radius + s + 0.5 * alpha * cp.sum_squares(w)),
            constraints,
        )
        problem.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10)
        assert problem.status in ("optimal", "optimal_inaccurate")
        return float(problem.value)
    else:
        raise ValueError(f"the test has no cvxpy reference for {head!r}")
    objective = risk + 0.5 * alpha * cp.sum_squares(w)
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(
        solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10
    )
    assert problem.status in ("optimal", "optimal_inaccurate")
    return float(problem.value)


def _heavy_tailed(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.standard_t(3, size=n)
    return X, y


def _fit_quietly(est, X, y, **kw):
    """Fit, returning the ConvergenceWarnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X, y, **kw)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


# -- section 2: no silent suboptimal solve ------------------------------------


@pytest.mark.parametrize(
    "n, head, loss",
    [
        (50, CVaR(0.1), "absolute"),  # issue: 28% above, L-BFGS ABNORMAL
        (200, CVaR(0.1), "absolute"),  # issue: 0.5% above (here 6.6e-4 before)
        (200, CVaR(0.1), "huber"),  # issue: 1.4% (here 8.1e-3 before)
        (200, TotalVariation(0.1), "absolute"),  # issue: 0.46%
        (60, CVaR(0.05), "absolute"),
        (80, TotalVariation(0.3), "huber"),
    ],
    ids=repr,
)
def test_kinked_problems_reach_the_optimum(n, head, loss):
    X, y = _heavy_tailed(n, 5, seed=n)
    reg = DROLinearRegression(head, loss=LOSS_NAMES[loss])
    caught = _fit_quietly(reg, X, y)
    ref = _cvxpy_optimum(X, y, loss, head)  # cvxpy primal written above
    assert reg.objective_ <= ref * (1 + RTOL)
    assert reg.objective_ >= ref * (1 - RTOL)
    assert not caught
    # the certificate: a valid lower bound (below the optimum) within tol
    info = reg.solver_info_
    assert info["certified"]
    assert info["lower_bound"] <= ref * (1 + 1e-8)
    assert reg.optimality_gap_ <= reg.tol * abs(reg.objective_) * 1.001


def test_huge_chi_square_radius_is_the_maximum_loss():
    # radius 1e3 with n = 200 puts all mass on the largest loss for every
    # model (1 + 2 rho > n); non-separable labels make the constant predictor
    # optimal, with risk log 2 (closed form). Before: 1.845 / 0.907, no warning.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    clf = DROLogisticRegression(ChiSquare(radius=1e3))
    assert not _fit_quietly(clf, X, y)
    assert_allclose(clf.objective_, np.log(2), rtol=RTOL)
    assert clf.solver_info_["certified"]


@pytest.mark.parametrize(
    "head", [ChiSquare(0.5), KL(0.3), CVaR(0.2), TotalVariation(0.1)], ids=repr
)
@pytest.mark.parametrize("loss", ["squared", "absolute", "logistic"])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_certificate_is_a_valid_bound(head, loss, alpha):
    X, y = _heavy_tailed(70, 4, seed=7)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
        if alpha == 0.0:
            alpha = 1e-3  # the logistic optimum may not exist without a penalty
        est = DROLogisticRegression(head, alpha=alpha)
    else:
        est = DROLinearRegression(head, loss=LOSS_NAMES[loss], alpha=alpha)
    caught = _fit_quietly(est, X, y)
    ref = _cvxpy_optimum(X, y, loss, head, alpha=alpha)
    info = est.solver_info_
    assert set(info) >= {
        "objective",
        "lower_bound",
        "duality_gap",
        "kkt_residual",
        "certified",
        "method",
    }
    assert_allclose(info["objective"], est.objective_, rtol=1e-9)
    # weak duality: lower bound <= optimum <= objective (cvxpy reference, to
    # its own accuracy: Clarabel's exponential cones stop near 1e-7 for KL)
    ref_acc = 1e-6 if isinstance(head, KL) else 1e-8
    assert info["lower_bound"] <= ref + ref_acc * abs(ref)
    assert est.objective_ >= ref - ref_acc * abs(ref)
    assert abs(est.objective_ - ref) <= RTOL * abs(ref)
    assert info["certified"] and not caught


@pytest.mark.parametrize("norm", [2, 1, "inf"])
@pytest.mark.parametrize("loss", ["absolute", "huber", "logistic"])
def test_wasserstein_penalty_is_certified(norm, loss):
    # the certificate's Fenchel bound covers the penalty radius * L * ||w||_*
    X, y = _heavy_tailed(150, 4, seed=29)
    head = Wasserstein(0.1, norm=norm)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
        est = DROLogisticRegression(head, alpha=1e-3)
        alpha = 1e-3
    else:
        est, alpha = DROLinearRegression(head, loss=LOSS_NAMES[loss]), 0.0
    assert not _fit_quietly(est, X, y)
    assert est.solver_info_["certified"]
    assert np.isfinite(est.optimality_gap_)
    ref = _cvxpy_optimum(X, y, loss, head, alpha=alpha)
    assert est.solver_info_["lower_bound"] <= ref * (1 + 1e-8)
    assert_allclose(est.objective_, ref, rtol=RTOL)


def test_exact_fallback_rescues_a_truncated_solve():
    # two L-BFGS iterations cannot solve this; the certificate sees it and the
    # exact conic solve (Clarabel) takes over
    X, y = _heavy_tailed(80, 4, seed=3)
    reg = DROLinearRegression(CVaR(0.1), loss="absolute_error", max_iter=2)
    assert not _fit_quietly(reg, X, y)
    assert reg.solver_info_["method"] == "lbfgs+cvxpy"
    ref = _cvxpy_optimum(X, y, "absolute", CVaR(0.1))
    assert_allclose(reg.objective_, ref, rtol=RTOL)


def test_failed_certificate_warns_with_the_gap(monkeypatch):
    from skrobust.linear_model import _solver

    monkeypatch.setattr(_solver, "_CVXPY_MAX_SIZE", 0)  # no fallback
    X, y = _heavy_tailed(80, 4, seed=3)
    reg = DROLinearRegression(CVaR(0.1), loss="absolute_error", max_iter=2)
    with pytest.warns(ConvergenceWarning, match=r"duality gap is [0-9.e+-]+"):
        reg.fit(X, y)
    assert not reg.solver_info_["certified"]
    assert reg.optimality_gap_ > reg.tol * abs(reg.objective_)


def test_cvxpy_solver_reports_a_certificate():
    X, y = _heavy_tailed(60, 3, seed=5)
    reg = DROLinearRegression(CVaR(0.2), solver="cvxpy").fit(X, y)
    assert reg.solver_info_["method"] == "cvxpy"
    assert np.isfinite(reg.solver_info_["kkt_residual"])


# -- section 3: no crash on small absolute-loss problems ----------------------


@pytest.mark.parametrize("seed", range(30))
def test_absolute_loss_small_gaussian_sets(seed):
    # issue: 17 of 30 such sets crashed in solve_triangular (here 21 of 30)
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 61)), int(rng.integers(3, 9))
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    reg = DROLinearRegression("erm", loss="absolute_error")
    assert not _fit_quietly(reg, X, y)
    ref = _cvxpy_optimum(X, y, "absolute", "erm")  # least absolute deviations
    assert_allclose(reg.objective_, ref, rtol=RTOL)


# -- section 7: numerical regimes ---------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 10])
@pytest.mark.parametrize("loss", ["squared", "absolute", "huber"])
@pytest.mark.parametrize("head", ["erm", CVaR(0.3), ChiSquare(0.5)], ids=repr)
def test_tiny_samples(n, loss, head):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3))
    y = rng.normal(size=n)
    reg = DROLinearRegression(head, loss=LOSS_NAMES[loss])
    assert not _fit_quietly(reg, X, y)
    ref = _cvxpy_optimum(X, y, loss, head)
    if n <= 4:
        # n <= d + 1: an exact interpolation exists, so the optimum is 0
        assert ref <= 1e-7
        assert reg.objective_ <= 1e-6 * np.mean(np.abs(y))
    else:
        assert_allclose(reg.objective_, ref, rtol=RTOL)


@pytest.mark.parametrize("loss", ["squared", "absolute", "huber"])
@pytest.mark.parametrize("head", ["erm", CVaR(0.2), ChiSquare(1.0)], ids=repr)
def test_collinear_columns(loss, head):
    X, y = _heavy_tailed(60, 3, seed=11)
    X = np.column_stack([X, X[:, 0], 2 * X[:, 1] - X[:, 2]])  # rank 3 of 5
    reg = DROLinearRegression(head, loss=LOSS_NAMES[loss])
    assert not _fit_quietly(reg, X, y)
    ref = _cvxpy_optimum(X, y, loss, head)
    assert_allclose(reg.objective_, ref, rtol=RTOL)


@pytest.mark.parametrize(
    "head", ["erm", CVaR(0.2), ChiSquare(1.0), TotalVariation(0.2)], ids=repr
)
@pytest.mark.parametrize("loss", ["squared", "absolute"])
def test_zero_weights_equal_dropped_rows(head, loss):
    X, y = _heavy_tailed(60, 3, seed=13)
    w = np.ones(60)
    w[::4] = 0.0
    weighted = DROLinearRegression(head, loss=LOSS_NAMES[loss])
    assert not _fit_quietly(weighted, X, y, sample_weight=w)
    dropped = DROLinearRegression(head, loss=LOSS_NAMES[loss]).fit(X[w > 0], y[w > 0])
    # identity: rows of weight 0 are not in the nominal distribution
    assert_allclose(weighted.objective_, dropped.objective_, rtol=RTOL)
    assert np.all(weighted.worst_case_weights_[w == 0] == 0)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_scaled_targets_least_squares(scale):
    # closed form: least squares with an intercept (numpy lstsq). Before, at
    # 1e-8 the gradient at zero was below tol and L-BFGS stopped there.
    X, y = _heavy_tailed(100, 4, seed=17)
    y = y * scale
    A = np.column_stack([X, np.ones(len(y))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    reg = DROLinearRegression("erm")
    assert not _fit_quietly(reg, X, y)
    assert_allclose(reg.coef_, coef[:-1], rtol=1e-6, atol=1e-9 * scale)
    assert_allclose(reg.intercept_, coef[-1], rtol=1e-6, atol=1e-9 * scale)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize(
    "head, loss",
    [(CVaR(0.1), "absolute"), (ChiSquare(0.5), "squared"), (CVaR(0.2), "huber")],
    ids=repr,
)
def test_scaled_targets_dro(scale, head, loss):
    # identity: with y -> s y (and the Huber threshold -> s epsilon) the
    # solution scales by s and the objective by s (absolute) or s^2
    X, y = _heavy_tailed(100, 3, seed=19)
    unit = DROLinearRegression(head, loss=LOSS_NAMES[loss], epsilon=1.0).fit(X, y)
    ref = _cvxpy_optimum(X, y, loss, head)
    assert_allclose(unit.objective_, ref, rtol=RTOL)
    scaled = DROLinearRegression(head, loss=LOSS_NAMES[loss], epsilon=scale)
    assert not _fit_quietly(scaled, X, y * scale)
    power = 1 if loss == "absolute" else 2
    assert_allclose(scaled.objective_, ref * scale**power, rtol=RTOL)
    # (an objective within 1e-6 pins flat directions of the coefficients to
    # about its square root)
    assert_allclose(scaled.coef_, unit.coef_ * scale, rtol=5e-3, atol=1e-6 * scale)


def test_perfect_fit():
    # closed form: y is exactly linear, so every risk head's optimum is 0
    rng = np.random.default_rng(23)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    for loss in ("squared", "absolute", "huber"):
        reg = DROLinearRegression(CVaR(0.2), loss=LOSS_NAMES[loss])
        assert not _fit_quietly(reg, X, y)
        assert_allclose(reg.coef_, [1.0, -2.0, 0.5], atol=1e-5)
        assert reg.objective_ <= 1e-6


# -- section 6: memory --------------------------------------------------------


@pytest.mark.parametrize("head", ["erm", ChiSquare(1.0), CVaR(0.1)], ids=repr)
@pytest.mark.parametrize("model", ["regression", "logistic"])
def test_peak_memory_at_most_three_times_the_input(head, model):
    # tracemalloc's peak over fit, against X's size (issue target: <= 3x);
    # measured at n = 1e5, d = 20: at most 1.1x (see the report), here smaller
    rng = np.random.default_rng(0)
    n, d = 20_000, 20
    X = rng.normal(size=(n, d))
    score = X @ rng.normal(size=d)
    if model == "regression":
        est, y = DROLinearRegression(head), score + rng.normal(size=n)
    else:
        est, y = DROLogisticRegression(head), (score + rng.logistic(size=n) > 0)
    tracemalloc.start()
    try:
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3 * X.nbytes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(5, 40),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
    exponent=st.integers(-6, 6),
    head=st.sampled_from(["erm", CVaR(0.1), CVaR(0.5), TotalVariation(0.2)]),
    loss=st.sampled_from(["absolute", "huber", "squared"]),
)
def test_kinked_fits_match_cvxpy_hypothesis(n, d, seed, exponent, head, loss):
    # random small problems at scales 1e-6..1e6: the fit matches the cvxpy
    # primal (written above) on the rescaled problem, with no warning
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.standard_t(3, size=n)
    scale = 10.0**exponent
    reg = DROLinearRegression(head, loss=LOSS_NAMES[loss], epsilon=scale)
    assert not _fit_quietly(reg, X, y * scale)
    ref = _cvxpy_optimum(X, y, loss, head)  # unit scale, then scaled
    power = 1 if loss == "absolute" else 2
    target = ref * scale**power
    # the certificate's floor (documented: tol * 1e-3 * the mean loss of the
    # intercept-only model) and the reference's accuracy (~1e-10) matter for
    # perfect fits (n <= d + 1)
    resid = (y - y.mean()) * scale
    null = {
        "absolute": np.mean(np.abs(resid)),
        "squared": np.mean(resid**2) / 2,
        "huber": np.mean(
            np.where(
                np.abs(resid) <= scale,
                resid**2 / 2,
                scale * np.abs(resid) - scale**2 / 2,
            )
        ),
    }[loss]
    atol = RTOL * 1e-3 * null * 1.01 + 1e-9 * scale**power
    assert abs(reg.objective_ - target) <= RTOL * target + atol


@pytest.mark.parametrize("n", [2, 4, 10])
@pytest.mark.parametrize("head", ["erm", CVaR(0.3), ChiSquare(0.5)], ids=repr)
def test_logistic_tiny_collinear_zero_weight(n, head):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    X = np.column_stack([X, X[:, 0] - X[:, 1]])  # collinear
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    w = np.ones(n)
    w[-1] = 0.0 if n > 2 else 1.0
    clf = DROLogisticRegression(head, alpha=1e-2)
    assert not _fit_quietly(clf, X, y, sample_weight=w)
    ref = _cvxpy_optimum(X, y, "logistic", head, alpha=1e-2, weights=w)
    assert_allclose(clf.objective_, ref, rtol=RTOL)
