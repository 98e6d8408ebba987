"""Numerical regimes of the DRO nets and torch losses (issue 14, section 4).

References: a batch of zero total weight must leave the network exactly as
it was (its step is skipped), so the reference is the net trained without
those rows' batches; negative weights and overflowing inputs must raise our
ValueError naming the parameter.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from skrobust.ambiguity import KL, ChiSquare, CVaR  # noqa: E402
from skrobust.nn import (  # noqa: E402
    DROLoss,
    DRONeuralNetClassifier,
    DRONeuralNetRegressor,
    DualDROLoss,
    WassersteinRobustNeuralNetClassifier,
)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("ambiguity", [None, CVaR(alpha=0.5), KL(1.0)])
@pytest.mark.parametrize("minibatch", ["exact", "dual"])
def test_zero_weight_batches_keep_predictions_finite(ambiguity, minibatch):
    # batch_size=1 with half the weights zero: many batches have total weight
    # 0; they used to divide by zero and fill the network with NaN
    if minibatch == "dual" and isinstance(ambiguity, KL):
        pytest.skip("DualDROLoss does not support KL")
    X, y = _data()
    w = np.ones(40)
    w[::2] = 0.0
    clf = DRONeuralNetClassifier(
        ambiguity=ambiguity,
        minibatch=minibatch,
        max_epochs=2,
        batch_size=1,
        hidden_layer_sizes=(8,),
        random_state=0,
    ).fit(X, y, sample_weight=w)
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(clf.loss_curve_))


def test_zero_weight_batch_step_is_skipped():
    # reference: a skipped step leaves every parameter bit-identical, even
    # under Adam, whose momentum would move them on a zero gradient
    X, y = _data()
    clf = DRONeuralNetClassifier(max_epochs=2, batch_size=8, random_state=0)
    clf.fit(X, y, sample_weight=np.linspace(0.5, 1.5, 40))
    before = [p.detach().clone() for p in clf.module_.parameters()]
    batch = (
        {
            "X": torch.tensor(X[:8], dtype=torch.float32),
            "sample_weight": torch.zeros(8),
        },
        torch.tensor(y[:8]),
    )
    step = clf._net.train_step(batch)
    assert step["loss"].item() == 0.0
    for old, new in zip(before, clf.module_.parameters(), strict=True):
        assert torch.equal(old, new)


def test_dro_loss_zero_weight_batch_is_zero_without_gradient():
    crit = DROLoss(torch.nn.MSELoss(reduction="none"), ChiSquare(1.0))
    pred = torch.zeros(3, requires_grad=True)
    value = crit(pred, torch.tensor([1.0, 2.0, 3.0]), sample_weight=torch.zeros(3))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(pred.grad, torch.zeros(3))


def test_dual_loss_zero_weight_batch_does_not_initialize():
    crit = DualDROLoss(torch.nn.MSELoss(reduction="none"), ChiSquare(1.0))
    pred, target = torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])
    assert crit(pred, target, sample_weight=torch.zeros(3)).item() == 0.0
    assert not bool(crit.initialized)
    # then a real batch initializes at its exact optimum (reference: the
    # ambiguity set's exact risk of the squared losses)
    value = crit(pred, target)
    assert abs(value.item() - ChiSquare(1.0).risk([1.0, 4.0, 9.0])) < 1e-4
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        crit.initialize_dual(torch.tensor([1.0, 4.0]), torch.zeros(2))


@pytest.mark.parametrize("bad", [[1.0, -1.0, 1.0], [1.0, np.nan, 1.0]])
@pytest.mark.parametrize("loss_class", [DROLoss, DualDROLoss])
def test_torch_losses_reject_bad_weights(loss_class, bad):
    crit = loss_class(torch.nn.MSELoss(reduction="none"), CVaR(alpha=0.5))
    with pytest.raises(ValueError, match="sample_weight"):
        crit(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]), torch.tensor(bad))


@pytest.mark.parametrize("scale", [1e39, 1e300])
@pytest.mark.parametrize(
    "make",
    [
        lambda: DRONeuralNetClassifier(max_epochs=1, random_state=0),
        lambda: DRONeuralNetRegressor(max_epochs=1, random_state=0),
        lambda: WassersteinRobustNeuralNetClassifier(max_epochs=1, random_state=0),
    ],
)
def test_beyond_float32_inputs_raise_naming_X(make, scale):
    X, y = _data()
    with pytest.raises(ValueError, match="X has values beyond the float32 range"):
        make().fit(X * scale, y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DRONeuralNetClassifier(max_epochs=1, random_state=0),
        lambda: WassersteinRobustNeuralNetClassifier(max_epochs=1, random_state=0),
    ],
)
def test_huge_inputs_give_finite_answer_or_error_naming_X(make):
    # 1e30 fits float32, but the forward pass or the WRM ascent may overflow:
    # then our ValueError names X; otherwise the probabilities are finite
    X, y = _data()
    est = make().fit(X, y)
    for scale in [1e30, 1e37]:
        try:
            proba = est.predict_proba(X * scale)
        except ValueError as exc:
            assert "X" in str(exc)
        else:
            assert np.all(np.isfinite(proba))
    try:
        make().fit(X * 1e37, y)
    except ValueError as exc:
        assert "X" in str(exc)


def test_regressor_overflowing_loss_names_X():
    # 1e30 inputs give outputs ~1e31 whose squared error overflows float32
    X, y = _data()
    with pytest.raises(ValueError, match="X or y holds huge values|X has values"):
        DRONeuralNetRegressor(max_epochs=1, random_state=0).fit(X * 1e30, y * 1.0)


def test_forward_overflow_in_predict_names_X():
    # reference: a network whose first layer maps 1e30 inputs beyond float32
    X, y = _data()
    reg = DRONeuralNetRegressor(max_epochs=1, random_state=0).fit(X, y * 1.0)
    with torch.no_grad():
        for p in reg.module_.parameters():
            p.fill_(1e10)
    with pytest.raises(ValueError, match="forward pass overflowed.*X"):
        reg.predict(X * 1e30)
