"""The nets use the ambiguity sets' torch backend (issue 15 A, E): every set,
TotalVariation included, and the validation of the shared checker.

References: the numpy exact risk and worst-case weights of the same set
objects (``ReweightingAmbiguitySet.risk_and_weights``).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from skrobust.ambiguity import (  # noqa: E402
    KL,
    ChiSquare,
    CressieRead,
    CVaR,
    TotalVariation,
    Wasserstein,
)
from skrobust.nn import (  # noqa: E402
    DROLoss,
    DRONeuralNetClassifier,
    DRONeuralNetRegressor,
    DualDROLoss,
)

FAST = {"hidden_layer_sizes": (8,), "max_epochs": 5, "lr": 0.02, "random_state": 0}
ALL = [ChiSquare(0.3), CressieRead(0.2, k=3.0), KL(0.2), CVaR(0.3), TotalVariation(0.2)]


@pytest.mark.parametrize("ambiguity", ALL, ids=repr)
def test_droloss_gradient_is_the_numpy_worst_case(ambiguity):
    rng = np.random.default_rng(0)
    target = rng.normal(size=17)
    weight = rng.uniform(size=17) * (rng.uniform(size=17) > 0.3)
    weight[0] = 1.0
    pred = torch.zeros(17, dtype=torch.float64, requires_grad=True)
    criterion = DROLoss(torch.nn.MSELoss(reduction="none"), ambiguity)
    value = criterion(pred, torch.tensor(target), torch.tensor(weight))
    value.backward()
    losses = target**2
    risk, q = ambiguity.risk_and_weights(losses, weight)
    assert_allclose(value.item(), risk, rtol=1e-10)
    # d/dpred (pred - t)^2 = 2 (pred - t): the gradient is -2 t q
    assert_allclose(pred.grad.numpy(), -2.0 * target * q, atol=1e-10)


def test_total_variation_trains_and_matches_the_numpy_risk():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=80)).astype(np.float32)
    est = DRONeuralNetRegressor(ambiguity=TotalVariation(0.2), **FAST).fit(X, y)
    assert np.all(np.isfinite(est.loss_curve_))
    losses = est._per_sample_losses(X, y)
    assert_allclose(est.robust_risk(X, y), TotalVariation(0.2).risk(losses))
    # the criterion sees the same number on the whole data as one batch
    with torch.no_grad():
        out = est.module_(torch.as_tensor(X))
        value = est.criterion_(out, torch.as_tensor(y).reshape(out.shape))
    assert_allclose(value.item(), TotalVariation(0.2).risk(losses), rtol=1e-5)


def test_dual_minibatch_refuses_sets_without_an_expectation_dual():
    with pytest.raises(ValueError, match="TotalVariation"):
        DualDROLoss(torch.nn.MSELoss(reduction="none"), TotalVariation(0.2))
    X = np.random.default_rng(2).normal(size=(30, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="minibatch='dual'"):
        DRONeuralNetClassifier(
            ambiguity=TotalVariation(0.2), minibatch="dual", **FAST
        ).fit(X, y)


def test_nets_refuse_feature_space_sets_with_a_clear_error():
    with pytest.raises(TypeError, match="feature-space"):
        DROLoss(torch.nn.MSELoss(reduction="none"), Wasserstein(0.1))
    with pytest.raises(TypeError, match="ambiguity"):
        DROLoss(torch.nn.MSELoss(reduction="none"), "cvar")


def test_criterion_does_not_hold_the_users_object():
    ambiguity = CVaR(0.3)
    criterion = DROLoss(torch.nn.MSELoss(reduction="none"), ambiguity)
    criterion.ambiguity.set_params(alpha=0.9)
    assert ambiguity.alpha == 0.3


@pytest.mark.parametrize(
    "ambiguity", [CVaR(0.3), ChiSquare(0.5), CressieRead(0.2, k=3.0)], ids=repr
)
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_dual_mean_matches_autograd_of_the_terms(ambiguity, weighted):
    # reference: autograd through the per-sample terms (dual_terms), float64
    rng = np.random.default_rng(7)
    losses = torch.tensor(rng.exponential(size=23), requires_grad=True)
    weight = None
    if weighted:
        weight = torch.tensor(rng.uniform(size=23) * (rng.uniform(size=23) > 0.3))
    criterion = DualDROLoss(torch.nn.MSELoss(reduction="none"), ambiguity).double()
    criterion.initialize_dual(losses.detach() + 0.3)
    params = [losses, *criterion._dual_parameters()]
    fused = criterion.dual_objective(losses, weight)
    grads = torch.autograd.grad(fused, params)
    terms = criterion.dual_terms(losses)
    plain = terms.mean() if weight is None else (weight * terms).mean()
    ref = torch.autograd.grad(plain, params)
    assert_allclose(fused.item(), plain.item(), rtol=1e-13)
    for g, r in zip(grads, ref, strict=True):
        assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-14)
