"""The ambiguity protocol (issue 15 A): enforced abstract base, two kinds of
sets, certificates, and the torch backend checked against the numpy solves.

References: the numpy exact solves of ``skrobust.ambiguity`` (themselves
checked against cvxpy primals in ``test_robustness_ambiguity.py``); the
gradient of the torch risk is compared with the numpy worst-case weights
(Danskin's theorem); closed forms are stated where used.
"""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.base import clone

from skrobust.ambiguity import (
    KL,
    AmbiguitySet,
    ChiSquare,
    CressieRead,
    CVaR,
    FeatureAmbiguitySet,
    ReweightingAmbiguitySet,
    TotalVariation,
    Wasserstein,
    ambiguity_constraint,
    check_ambiguity,
)

SETS = [
    ChiSquare(radius=0.01),
    ChiSquare(radius=1.0),
    ChiSquare(radius=50.0),
    CressieRead(radius=0.5, k=3.0),
    CressieRead(radius=1e-3, k=1.5),
    KL(radius=0.1),
    KL(radius=2.0),
    CVaR(alpha=0.1),
    CVaR(alpha=0.7),
    TotalVariation(radius=0.05),
    TotalVariation(radius=0.4),
    TotalVariation(radius=1.0),
]


# -- the abstract base -------------------------------------------------------
def test_abstract_methods_are_enforced():
    class Incomplete(ReweightingAmbiguitySet):
        def dual_objective(self, dual, losses, p, smoothing=0.0):
            return 0.0, losses, dual

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
    with pytest.raises(TypeError, match="abstract"):
        AmbiguitySet()
    with pytest.raises(TypeError, match="abstract"):
        FeatureAmbiguitySet()


@pytest.mark.parametrize("ambiguity", SETS + [Wasserstein(0.2, norm=1)], ids=repr)
def test_sets_are_parameter_objects(ambiguity):
    assert isinstance(ambiguity, AmbiguitySet)
    twin = clone(ambiguity)
    assert twin.get_params() == ambiguity.get_params() and twin is not ambiguity
    again = pickle.loads(pickle.dumps(ambiguity))
    assert again.get_params() == ambiguity.get_params()
    assert again.set_params(**ambiguity.get_params()).get_params() == (
        ambiguity.get_params()
    )


def test_two_kinds():
    assert isinstance(ChiSquare(), ReweightingAmbiguitySet)
    assert not ChiSquare().feature_space
    assert isinstance(Wasserstein(), FeatureAmbiguitySet)
    assert not isinstance(Wasserstein(), ReweightingAmbiguitySet)
    assert Wasserstein().feature_space
    # the solvers of other packages tell the kinds apart by their methods
    assert not hasattr(Wasserstein(), "worst_case_weights")
    assert not hasattr(ChiSquare(), "penalty")


def test_check_ambiguity_kinds():
    assert isinstance(check_ambiguity(Wasserstein()), Wasserstein)
    with pytest.raises(TypeError, match="feature-space sets are not supported"):
        check_ambiguity(Wasserstein(), feature_space=False)
    assert check_ambiguity(TotalVariation(0.2), feature_space=False) == (
        TotalVariation(0.2)
    ) or isinstance(check_ambiguity(TotalVariation(0.2)), TotalVariation)
    constraints = ambiguity_constraint(shortcuts=(), feature_space=True)
    assert len(constraints) == 2


# -- the protocol methods ----------------------------------------------------
@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
@pytest.mark.parametrize("n", [2, 7, 50])
def test_certificate_gap_is_rounding(ambiguity, n):
    rng = np.random.default_rng(n)
    losses = rng.exponential(size=n) * 10.0 ** rng.integers(-3, 4)
    weights = rng.uniform(size=n) * (rng.uniform(size=n) > 0.3)
    weights[0] = 1.0
    for w in (None, weights):
        cert = ambiguity.certificate(losses, w)
        scale = np.ptp(losses)
        assert cert["gap"] <= 1e-9 * scale
        assert cert["lower"] - 1e-9 * scale <= cert["risk"]
        assert cert["risk"] <= cert["upper"] + 1e-9 * scale
        assert_allclose(cert["risk"], ambiguity.risk(losses, w), rtol=1e-15)


def test_certificate_sees_a_wrong_solve():
    class OffByOneTenth(ChiSquare):
        def _solve_unit(self, z, p):
            risk, q, dual = super()._solve_unit(z, p)
            return risk, q, dual - 0.1  # a dual off its optimum

    losses = np.random.default_rng(0).exponential(size=30)
    assert OffByOneTenth(0.5).certificate(losses)["gap"] > 1e-4


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_feasible_weights_lie_in_the_set(ambiguity):
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(20))
    q = rng.dirichlet(np.full(20, 0.1))
    if isinstance(ambiguity, CVaR):
        q = np.minimum(q, p / ambiguity.alpha)
    f = ambiguity.feasible_weights(q, p)
    assert_allclose(f.sum(), 1.0, rtol=1e-12)
    assert np.all(f >= 0)
    # membership checked with the set's own description
    if isinstance(ambiguity, CressieRead | KL):
        assert ambiguity.divergence(f, p) <= ambiguity.radius * (1 + 1e-9)
    elif isinstance(ambiguity, CVaR):
        assert np.all(f <= p / ambiguity.alpha * (1 + 1e-12))
    else:
        assert 0.5 * np.abs(f - p).sum() <= ambiguity.radius + 1e-12


def test_risk_gradient_is_the_finite_difference():
    # central differences of the exact risk (a smooth point: no ties)
    rng = np.random.default_rng(4)
    losses = rng.exponential(size=12)
    for ambiguity in (ChiSquare(0.3), KL(0.2), CressieRead(0.2, k=3.0)):
        grad = ambiguity.risk_gradient(losses)
        h = 1e-6
        fd = [
            (ambiguity.risk(losses + h * e) - ambiguity.risk(losses - h * e)) / (2 * h)
            for e in np.eye(12)
        ]
        assert_allclose(grad, fd, atol=1e-6)


def test_profiled_dual_matches_argmin_then_objective():
    rng = np.random.default_rng(5)
    losses = rng.exponential(size=40)
    p = np.full(40, 1 / 40)
    for ambiguity in (ChiSquare(0.3), CVaR(0.3), TotalVariation(0.2)):
        for tau in (0.0, 0.05):
            dual, value, grad = ambiguity.profiled_dual(losses, p, tau)
            ref_dual = ambiguity.dual_argmin(losses, p, smoothing=tau)
            ref_value, ref_grad, _ = ambiguity.dual_objective(
                ref_dual, losses, p, smoothing=tau
            )
            assert_allclose(value, ref_value, rtol=1e-12)
            assert_allclose(grad, ref_grad, atol=1e-12)
    assert CVaR(0.3).has_profiled_curvature
    assert TotalVariation(0.3).has_profiled_curvature
    assert not ChiSquare().has_profiled_curvature
    assert ChiSquare().profiled_curvature(np.zeros(1), losses, p, 0.1) is None


# -- the torch backend -------------------------------------------------------
torch = pytest.importorskip("torch")

from skrobust.ambiguity._torch import risk_and_weights  # noqa: E402


def _case(seed, n, ties, weighted, scale):
    rng = np.random.default_rng(seed)
    losses = rng.exponential(size=n) * scale
    if ties:
        losses = np.round(losses / scale, 1) * scale
    weights = None
    if weighted:
        weights = rng.uniform(0.0, 2.0, size=n) * (rng.uniform(size=n) > 0.3)
        weights[0] = 1.0
    return losses, weights


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
@pytest.mark.parametrize("kernel", ["numpy", "torch"])
@pytest.mark.parametrize(
    "n,ties,weighted,scale",
    [
        (2, False, False, 1.0),
        (9, True, True, 1e-150),
        (40, True, False, 1e150),
        (64, False, True, 3.0),
    ],
)
def test_torch_risk_and_gradient_match_numpy(
    ambiguity, kernel, n, ties, weighted, scale
):
    losses, weights = _case(n, n, ties, weighted, scale)
    risk, q = ambiguity.risk_and_weights(losses, weights)
    lt = torch.tensor(losses, requires_grad=True)
    wt = None if weights is None else torch.tensor(weights)
    risk_t, q_t = risk_and_weights(ambiguity, lt, wt, kernel=kernel)
    assert risk_t.dtype == q_t.dtype == torch.float64
    assert_allclose(risk_t.item(), risk, rtol=1e-10, atol=0)
    assert_allclose(q_t.numpy(), q, rtol=0, atol=1e-10)
    # differentiable risk: its autograd gradient is the worst-case weights
    value = ambiguity.torch_risk(lt, wt)
    (grad,) = torch.autograd.grad(value, lt)
    assert_allclose(value.item(), risk, rtol=1e-10)
    assert_allclose(grad.numpy(), q, rtol=0, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e3), min_size=2, max_size=30),
    st.sampled_from(SETS),
)
def test_torch_kernel_matches_numpy_property(values, ambiguity):
    losses = np.array(values)
    risk, q = ambiguity.risk_and_weights(losses)
    risk_t, q_t = risk_and_weights(ambiguity, torch.tensor(losses), kernel="torch")
    atol = 1e-10 * max(1.0, float(np.ptp(losses)))
    assert_allclose(risk_t.item(), risk, rtol=1e-10, atol=atol)
    assert_allclose(q_t.numpy(), q, atol=1e-9)


def test_total_variation_closed_form_in_torch():
    # (1 - delta) * CVaR_{1-delta} + delta * max on 0..9, delta = 0.2:
    # 0.8 * mean(2..9) + 0.2 * 9 = 0.8 * 5.5 + 1.8 = 6.2
    losses = torch.arange(10.0, dtype=torch.float64)
    for kernel in ("numpy", "torch"):
        risk, q = risk_and_weights(TotalVariation(0.2), losses, kernel=kernel)
        assert_allclose(risk.item(), 6.2, rtol=1e-14)
        assert_allclose(q.numpy(), [0, 0] + [0.1] * 7 + [0.3], atol=1e-15)


def test_float32_losses_and_bad_kernel():
    losses = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float32, requires_grad=True)
    value = ChiSquare(0.5).torch_risk(losses)
    assert value.dtype == torch.float32
    value.backward()
    assert_allclose(
        losses.grad.numpy(),
        ChiSquare(0.5).worst_case_weights([1.0, 2.0, 5.0]),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="kernel"):
        risk_and_weights(ChiSquare(), losses, kernel="cuda")
    with pytest.raises(ValueError, match="empty"):
        risk_and_weights(ChiSquare(), torch.zeros(0))


def test_ambiguity_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, skrobust.ambiguity as a, numpy as np;"
        "a.ChiSquare().risk(np.arange(3.0));"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("ambiguity", SETS[1::2], ids=repr)
def test_torch_backend_numpy_kernel_peak_memory(ambiguity):
    # tracemalloc sees the numpy solve's arrays (not torch's allocator): at
    # most 3x the loss vector unweighted (measured 2.0-2.6x) and 1.6x of the
    # losses and weights together when weighted (measured 1.1-1.5x)
    from tests._memory import peak_bytes

    rng = np.random.default_rng(0)
    losses = torch.tensor(rng.exponential(size=100_000))
    weights = torch.tensor(rng.uniform(size=100_000))
    size = losses.numpy().nbytes
    assert peak_bytes(risk_and_weights, ambiguity, losses) <= 3.0 * size
    assert peak_bytes(risk_and_weights, ambiguity, losses, weights) <= 1.6 * 2 * size


def test_a_set_without_a_torch_kernel_runs_its_numpy_solve():
    # off the CPU (or with kernel='torch') the base class's kernel hook
    # raised NotImplementedError; now the numpy solve runs through the host,
    # and an explicit kernel='torch' is refused by name
    from skrobust.ambiguity._conditional_cvar import ConditionalCVaR

    rng = np.random.default_rng(0)
    losses = rng.exponential(size=40)
    controls = rng.normal(size=(40, 1))
    amb = ConditionalCVaR(alpha=0.3, controls=controls)
    risk, q = risk_and_weights(amb, torch.from_numpy(losses), kernel="auto")
    expected, q_expected = amb.risk_and_weights(losses)
    assert_allclose(float(risk), expected, rtol=1e-12)
    assert_allclose(q.numpy(), q_expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="has no torch kernel"):
        risk_and_weights(amb, torch.from_numpy(losses), kernel="torch")
