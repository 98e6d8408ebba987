"""DROLoss and DualDROLoss: values, Danskin gradients, dual, plain torch use."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

import cvxpy as cp  # noqa: E402

from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR  # noqa: E402
from skrobust.nn import DROLoss, DualDROLoss  # noqa: E402

# float64 agreement with skrobust.ambiguity
RTOL = 1e-10
# central finite differences of the numpy risk (step 1e-6)
FD_RTOL = 1e-5
# optimum of a convex DRO problem from torch L-BFGS vs cvxpy (Clarabel)
OPT_RTOL = 1e-5

SETS = [ChiSquare(0.5), CressieRead(0.5, k=3.0), KL(0.3), CVaR(0.3)]


def _mse():
    return torch.nn.MSELoss(reduction="none")


@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_value_is_exact_risk_and_gradient_is_danskin(ambiguity):
    rng = np.random.default_rng(0)
    target = torch.tensor(rng.normal(size=30))
    pred = torch.tensor(rng.normal(size=30), requires_grad=True)
    criterion = DROLoss(_mse(), ambiguity)
    value = criterion(pred, target)
    value.backward()

    def risk(p):
        return ambiguity.risk((p - target.numpy()) ** 2)

    assert_allclose(value.item(), risk(pred.detach().numpy()), rtol=RTOL)
    # independent check of the gradient: finite differences of the numpy risk
    base = pred.detach().numpy()
    step = 1e-6
    numeric = np.empty_like(base)
    for i in range(base.shape[0]):
        up, down = base.copy(), base.copy()
        up[i] += step
        down[i] -= step
        numeric[i] = (risk(up) - risk(down)) / (2 * step)
    assert_allclose(pred.grad.numpy(), numeric, rtol=FD_RTOL, atol=1e-8)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(1)
    losses = torch.tensor(rng.exponential(size=12))
    counts = rng.integers(1, 4, size=12)
    criterion = DROLoss(_mse(), ChiSquare(1.0))
    weighted = criterion.robust_risk(losses, torch.tensor(counts, dtype=torch.float64))
    repeated = criterion.robust_risk(
        torch.repeat_interleave(losses, torch.tensor(counts))
    )
    assert_allclose(weighted.item(), repeated.item(), rtol=1e-12)


def test_trailing_dimensions_are_averaged():
    pred = torch.zeros(4, 3, dtype=torch.float64)
    target = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    value = DROLoss(_mse(), CVaR(alpha=0.25))(pred, target)
    # worst row: 9, 10, 11 -> mean of squares
    assert_allclose(value.item(), (81 + 100 + 121) / 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="reduction='none'"):
        DROLoss(torch.nn.MSELoss(), ChiSquare())
    with pytest.raises(TypeError, match="callable"):
        DROLoss("mse", ChiSquare())
    with pytest.raises(TypeError, match="ambiguity must be"):
        DROLoss(_mse(), 0.5)
    with pytest.raises(ValueError, match="radius"):
        DROLoss(_mse(), ChiSquare(radius=-1.0))
    with pytest.raises(ValueError, match="scalar"):
        DROLoss(lambda a, b: ((a - b) ** 2).mean(), ChiSquare())(
            torch.zeros(3), torch.ones(3)
        )
    with pytest.raises(ValueError, match="NaN"):
        DROLoss(_mse(), ChiSquare())(torch.tensor([0.0, np.nan]), torch.zeros(2))
    with pytest.raises(ValueError, match="KL"):
        DualDROLoss(_mse(), KL(0.1))


def test_plain_torch_loop_reaches_cvxpy_optimum():
    # min_theta ChiSquare-risk of squared errors of a linear model; the
    # reference is cvxpy's exact conic solve of the same problem
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(3, size=40)
    ambiguity = ChiSquare(radius=0.5)

    theta = cp.Variable(3)
    objective, constraints = ambiguity.cvxpy_risk(
        cp.square(X @ theta - y), np.full(40, 1 / 40)
    )
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.CLARABEL)

    Xt, yt = torch.tensor(X), torch.tensor(y)
    model = torch.nn.Linear(3, 1, bias=False).double()
    criterion = DROLoss(_mse(), ambiguity)
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = criterion(model(Xt).ravel(), yt)
        loss.backward()
        return loss

    optimizer.step(closure)
    final = criterion(model(Xt).ravel(), yt).item()
    assert_allclose(final, problem.value, rtol=OPT_RTOL)
    assert_allclose(model.weight.detach().numpy().ravel(), theta.value, rtol=1e-3)


@pytest.mark.parametrize(
    "ambiguity", [ChiSquare(0.5), CressieRead(0.4, k=3.0), CVaR(0.3)], ids=repr
)
def test_dual_at_initialized_duals_is_exact_and_an_upper_bound(ambiguity):
    rng = np.random.default_rng(3)
    losses = torch.tensor(rng.exponential(size=50))
    criterion = DualDROLoss(_mse(), ambiguity).double()
    criterion.initialize_dual(losses)
    exact = ambiguity.risk(losses.numpy())
    # the dual at the exact optimum (eta*, lambda*) equals the risk
    assert_allclose(criterion.dual_objective(losses).item(), exact, rtol=1e-10)
    # weak duality: any other dual point gives an upper bound
    with torch.no_grad():
        for shift in [-1.0, -0.1, 0.2, 1.0]:
            criterion.eta.add_(shift)
            assert criterion.dual_objective(losses).item() >= exact - 1e-12
            criterion.eta.sub_(shift)
            if criterion.log_lambda is not None:
                criterion.log_lambda.add_(shift)
                assert criterion.dual_objective(losses).item() >= exact - 1e-12
                criterion.log_lambda.sub_(shift)


def test_dual_minimized_over_duals_by_sgd_gives_the_risk():
    # minibatch SGD on (eta, lambda) only, for fixed losses: unbiased gradients
    # drive the full-data dual down to the exact risk (ChiSquare, radius 1)
    rng = np.random.default_rng(4)
    losses = torch.tensor(rng.exponential(size=2000))
    criterion = DualDROLoss(_mse(), ChiSquare(1.0)).double()
    with torch.no_grad():  # start far from the optimum
        criterion.eta.fill_(0.0)
        criterion.log_lambda.fill_(0.0)
        criterion.initialized.fill_(True)
    optimizer = torch.optim.Adam(criterion.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        for batch in torch.randperm(2000, generator=gen).split(50):
            optimizer.zero_grad()
            criterion.dual_objective(losses[batch]).backward()
            optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] *= 0.9
    exact = ChiSquare(1.0).risk(losses.numpy())
    assert_allclose(criterion.dual_objective(losses).item(), exact, rtol=2e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("ambiguity", SETS, ids=repr)
def test_droloss_on_cuda(ambiguity):
    rng = np.random.default_rng(5)
    target = torch.tensor(rng.normal(size=64), device="cuda")
    pred = torch.tensor(rng.normal(size=64), device="cuda", requires_grad=True)
    value = DROLoss(_mse(), ambiguity).cuda()(pred, target)
    value.backward()
    assert pred.grad.device.type == "cuda"
    losses = (pred.detach() - target).cpu().numpy() ** 2
    assert_allclose(value.item(), ambiguity.risk(losses), rtol=RTOL)


def test_droloss_as_skorch_criterion():
    # a user's own skorch net with DROLoss as criterion: the logged training
    # loss of a full-batch epoch is the exact robust risk before the step
    from skorch import NeuralNetClassifier

    rng = np.random.default_rng(6)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    net = NeuralNetClassifier(
        module,
        criterion=DROLoss,
        criterion__base_criterion=torch.nn.CrossEntropyLoss(reduction="none"),
        criterion__ambiguity=CVaR(alpha=0.25),
        optimizer=torch.optim.SGD,
        lr=0.0,  # no update: the logged loss is the risk of the initial module
        max_epochs=1,
        batch_size=64,
        train_split=None,
        predict_nonlinearity=lambda logits: torch.softmax(logits, dim=1),
        verbose=0,
    ).fit(X, y)
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(
            module(torch.tensor(X)), torch.tensor(y), reduction="none"
        )
    expected = CVaR(alpha=0.25).risk(losses.double().numpy())
    assert_allclose(net.history[-1, "train_loss"], expected, rtol=1e-6)
    assert_allclose(net.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("ambiguity", [ChiSquare(1.0), CVaR(0.2)], ids=repr)
def test_minibatch_bias_and_unbiased_dual(ambiguity):
    # over a partition into equal batches, the mean of the batch robust risks
    # is below the full-data robust risk (concavity in the distribution,
    # Jensen), while the mean of the batch dual objectives equals the full dual
    # objective exactly (it is an average over samples)
    rng = np.random.default_rng(7)
    losses = torch.tensor(rng.exponential(size=1000))
    full = ambiguity.risk(losses.numpy())
    batches = losses[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    batches = batches.split(20)
    exact = DROLoss(_mse(), ambiguity)
    batch_mean = np.mean([exact.robust_risk(b).item() for b in batches])
    assert batch_mean < full - 0.05 * (full - losses.mean().item())

    dual = DualDROLoss(_mse(), ambiguity).double()
    dual.initialize_dual(losses)
    dual_batch_mean = np.mean([dual.dual_objective(b).item() for b in batches])
    assert_allclose(dual_batch_mean, dual.dual_objective(losses).item(), rtol=1e-12)
    assert_allclose(dual.dual_objective(losses).item(), full, rtol=1e-10)
