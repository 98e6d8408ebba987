"""WassersteinRobustNeuralNetClassifier: inner maximization and certificate."""

import copy
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skrobust.nn import WassersteinRobustNeuralNetClassifier  # noqa: E402

torch.set_num_threads(1)

# first-order condition of the float64 inner solve (tol=1e-9 in input units)
FOC_ATOL = 1e-7
# a grid of spacing h finds the sup of a smooth concave function to O(h^2)
GRID_ATOL = 1e-6


def _loss64(clf):
    module = copy.deepcopy(clf.module_).double().eval()

    def loss(x, y):
        logits = module(torch.as_tensor(x, dtype=torch.float64))
        target = torch.as_tensor(np.searchsorted(clf.classes_, y))
        return torch.nn.functional.cross_entropy(logits, target, reduction="none")

    return loss


@pytest.fixture(scope="module")
def tiny_1d():
    # three points in one dimension, a small smooth (ELU) network
    X = np.array([[-1.0], [0.2], [0.9]])
    y = np.array([0, 1, 1])
    rng = np.random.default_rng(0)
    X_train = np.vstack([X, rng.normal(size=(40, 1))])
    y_train = np.concatenate([y, (X_train[3:, 0] > 0).astype(int)])
    clf = WassersteinRobustNeuralNetClassifier(
        hidden_layer_sizes=(4,), gamma=2.0, max_epochs=20, lr=0.05, random_state=0
    ).fit(X_train, y_train)
    return clf, X, y


def test_inner_solution_satisfies_first_order_condition():
    X = np.random.default_rng(1).normal(size=(30, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
    clf = WassersteinRobustNeuralNetClassifier(
        hidden_layer_sizes=(6,), gamma=3.0, max_epochs=10, lr=0.05, random_state=0
    ).fit(X, y)
    X_adv = clf.perturb(X, y)
    z = torch.tensor(X_adv, requires_grad=True)
    _loss64(clf)(z, y).sum().backward()
    # stationarity of loss(x') - gamma ||x' - x||^2: grad loss = 2 gamma (x' - x)
    assert_allclose(z.grad.numpy(), 2 * 3.0 * (X_adv - X), atol=FOC_ATOL)
    assert np.abs(X_adv - X).max() > 1e-3  # the points did move


def test_inner_sup_matches_grid_and_certificate_bounds_brute_force(tiny_1d):
    clf, X, y = tiny_1d
    gamma = clf.gamma
    loss = _loss64(clf)
    # robust surrogate phi_gamma by a fine grid (strongly concave: unique max)
    grid = np.linspace(-4.0, 4.0, 40001)
    phi_grid = np.array(
        [
            np.max(
                loss(x0 + grid[:, None], np.full(grid.size, label)).detach().numpy()
                - gamma * grid**2
            )
            for x0, label in zip(X[:, 0], y, strict=True)
        ]
    )
    X_adv = clf.perturb(X, y)
    phi = loss(X_adv, y).detach().numpy() - gamma * ((X_adv - X) ** 2).sum(axis=1)
    assert_allclose(phi, phi_grid, atol=GRID_ATOL)

    # brute-force worst case over distributions within transport budget rho:
    # move each point by delta_i with mean(delta_i^2) <= rho, maximize the
    # mean loss (a lower bound of the sup over the Wasserstein ball)
    deltas = np.linspace(-1.5, 1.5, 121)
    table = np.stack(
        [
            loss(x0 + deltas[:, None], np.full(deltas.size, label)).detach().numpy()
            for x0, label in zip(X[:, 0], y, strict=True)
        ]
    )
    d0, d1, d2 = np.meshgrid(deltas, deltas, deltas, indexing="ij")
    l0, l1, l2 = np.meshgrid(*table, indexing="ij")
    cost = (d0**2 + d1**2 + d2**2) / 3
    mean_loss = (l0 + l1 + l2) / 3
    for rho in [0.0, 0.05, 0.2, 0.5]:
        worst = mean_loss[cost <= rho].max()
        for gamma in [2.0, 4.0, 16.0]:  # valid at every strongly concave gamma
            assert clf.certificate(X, y, radius=rho, gamma=gamma) >= worst - 1e-9


def test_certificate_is_tight_at_the_implied_radius(tiny_1d):
    # at rho = mean transport cost of the maximizers, the certificate equals the
    # mean loss at the maximizers, a feasible point: the bound is attained
    clf, X, y = tiny_1d
    X_adv = clf.perturb(X, y)
    rho_hat = ((X_adv - X) ** 2).sum(axis=1).mean()
    attained = _loss64(clf)(X_adv, y).detach().numpy().mean()
    assert_allclose(clf.certificate(X, y, radius=rho_hat), attained, rtol=1e-12)


def test_large_gamma_gives_one_gradient_step(tiny_1d):
    # x* = x + grad loss(x*) / (2 gamma) -> x + grad loss(x) / (2 gamma)
    clf, X, y = tiny_1d
    X_adv = clf.perturb(X, y, gamma=1e4)
    x = torch.tensor(X, requires_grad=True)
    _loss64(clf)(x, y).sum().backward()
    assert_allclose(X_adv, X + x.grad.numpy() / 2e4, rtol=1e-3, atol=1e-12)


def test_ada_appends_adversarial_points():
    X = np.random.default_rng(2).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = WassersteinRobustNeuralNetClassifier(
        method="ada",
        n_phases=2,
        hidden_layer_sizes=(4,),
        max_epochs=5,
        lr=0.05,
        random_state=0,
    ).fit(X, y)
    # the set doubles each phase: 40 + 40 + 80 points
    assert clf.n_augmented_ == 120
    assert clf.n_iter_ == 15
    assert clf.score(X, y) > 0.8
    wrm = WassersteinRobustNeuralNetClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert wrm.n_augmented_ == 0


def test_wrm_moves_training_toward_robustness():
    # WRM lowers the certified worst-case loss of its own training data compared
    # with the same network trained without perturbation (inner_steps=0 is ERM)
    X = np.random.default_rng(3).normal(size=(80, 2))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    params = {
        "hidden_layer_sizes": (8,),
        "gamma": 2.0,
        "max_epochs": 30,
        "lr": 0.02,
        "random_state": 0,
    }
    wrm = WassersteinRobustNeuralNetClassifier(**params).fit(X, y)
    erm = WassersteinRobustNeuralNetClassifier(inner_steps=0, **params).fit(X, y)
    assert wrm.certificate(X, y, radius=0.1) < erm.certificate(X, y, radius=0.1)


def test_bad_inputs_and_convergence_warning(tiny_1d):
    clf, X, y = tiny_1d
    with pytest.raises(ValueError, match="radius"):
        clf.certificate(X, y, radius=-1.0)
    with pytest.raises(ValueError, match="labels not seen"):
        clf.certificate(X, y + 7, radius=0.1)
    with pytest.raises(ValueError, match="gamma"):
        clf.perturb(X, y, gamma=0.0)
    with pytest.raises(ValueError, match="samples"):
        clf.perturb(X, y[:2])
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        clf.perturb(X, y, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.perturb(X, y)


@pytest.mark.gpu
def test_wrm_trains_on_cuda():
    X = np.random.default_rng(4).normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    for method in ["wrm", "ada"]:
        clf = WassersteinRobustNeuralNetClassifier(
            method=method,
            device="cuda",
            hidden_layer_sizes=(4,),
            max_epochs=5,
            random_state=0,
        ).fit(X, y)
        assert next(clf.module_.parameters()).device.type == "cuda"
        assert np.isfinite(clf.certificate(X, y, radius=0.1))
