"""The torch solves of skrobust.nn agree with skrobust.ambiguity."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR  # noqa: E402
from skrobust.nn._solvers import risk_and_weights  # noqa: E402

# float64 agreement required between the torch port and the numpy solves
ATOL = 1e-10

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
]


def _losses(seed, n, ties, weighted):
    rng = np.random.default_rng(seed)
    losses = rng.exponential(size=n) * rng.choice([1e-3, 1.0, 100.0])
    if ties:
        losses = np.round(losses, 1)
    weights = None
    if weighted:
        weights = rng.uniform(0.0, 2.0, size=n) * (rng.uniform(size=n) > 0.2)
        weights[0] = 1.0
    return losses, weights


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
@pytest.mark.parametrize("seed", range(4))
def test_torch_solve_matches_numpy(ambiguity, seed):
    n = [1, 2, 17, 200][seed]
    losses, weights = _losses(seed, n, ties=seed % 2 == 0, weighted=seed >= 2)
    risk, q = ambiguity.risk_and_weights(losses, weights)
    risk_t, q_t = risk_and_weights(
        ambiguity,
        torch.tensor(losses),
        None if weights is None else torch.tensor(weights),
    )
    assert q_t.dtype == torch.float64
    assert_allclose(risk_t.item(), risk, rtol=ATOL, atol=ATOL)
    assert_allclose(q_t.numpy(), q, rtol=0, atol=ATOL)


def test_closed_forms():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    # chi-square without clipping: mean + sqrt(2 rho Var) (variance expansion)
    risk, _ = risk_and_weights(ChiSquare(radius=0.1), losses)
    assert_allclose(risk.item(), 2.5 + np.sqrt(2 * 0.1 * 1.25), rtol=1e-14)
    # CVaR_0.5 of four equally likely losses: mean of the two largest
    risk, q = risk_and_weights(CVaR(alpha=0.5), losses)
    assert_allclose(risk.item(), 3.5, rtol=1e-14)
    assert_allclose(q.numpy(), [0, 0, 0.5, 0.5], atol=1e-15)
    # a huge KL radius puts all mass on the maximum
    risk, q = risk_and_weights(KL(radius=10.0), losses)
    assert_allclose(risk.item(), 4.0, rtol=1e-14)
    assert_allclose(q.numpy(), [0, 0, 0, 1], atol=1e-15)


@pytest.mark.parametrize("ambiguity", SETS[:1] + SETS[5:6] + SETS[7:8], ids=repr)
def test_trivial_cases_give_the_mean(ambiguity):
    tied = torch.full((5,), 3.0, dtype=torch.float64)
    risk, q = risk_and_weights(ambiguity, tied)
    assert_allclose(risk.item(), 3.0)
    assert_allclose(q.numpy(), np.full(5, 0.2))
    risk, q = risk_and_weights(
        type(ambiguity)(0.0 if not isinstance(ambiguity, CVaR) else 1.0),
        torch.arange(4.0, dtype=torch.float64),
    )
    assert_allclose(risk.item(), 1.5)


def test_float32_losses_are_solved_in_float64():
    losses = torch.rand(50, dtype=torch.float32)
    _, q = risk_and_weights(ChiSquare(radius=1.0), losses)
    expected = ChiSquare(radius=1.0).worst_case_weights(losses.double().numpy())
    assert q.dtype == torch.float64
    assert_allclose(q.numpy(), expected, atol=ATOL)


def test_bad_weights_shape():
    with pytest.raises(ValueError, match="sample_weight has 2 entries"):
        risk_and_weights(ChiSquare(), torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="empty"):
        risk_and_weights(ChiSquare(), torch.ones(0))


@pytest.mark.gpu
@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_solve_on_cuda_matches_numpy(ambiguity):
    losses, weights = _losses(7, 300, ties=True, weighted=True)
    risk, q = ambiguity.risk_and_weights(losses, weights)
    risk_t, q_t = risk_and_weights(
        ambiguity,
        torch.tensor(losses, device="cuda"),
        torch.tensor(weights, device="cuda"),
    )
    assert q_t.device.type == "cuda"
    assert_allclose(risk_t.item(), risk, rtol=ATOL, atol=ATOL)
    assert_allclose(q_t.cpu().numpy(), q, atol=ATOL)
