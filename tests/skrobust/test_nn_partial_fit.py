"""Out-of-core training of the DRO networks: ``partial_fit`` on chunks."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402

from skrobust.ambiguity import KL, ChiSquare, CVaR  # noqa: E402
from skrobust.nn import DRONeuralNetClassifier, DRONeuralNetRegressor  # noqa: E402

torch.set_num_threads(1)

# float32 training: sums in another order change the last digits
F32_RTOL = 1e-4
# robust training risks of two SGD runs on the same objective (fit on the
# array vs partial_fit on chunks): different batches, same optimum
RUN_RTOL = 5e-2
# gap between the learned dual objective and the exact risk after SGD
DUAL_RTOL = 1e-2
# robust risk of the model recomputed from predict_proba in float64
EXACT_RTOL = 1e-8

N_CHUNKS = 3
DUAL = {
    "hidden_layer_sizes": (8,),
    "minibatch": "dual",
    "batch_size": 50,
    "lr": 0.01,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=300, n_features=5, flip_y=0.1, random_state=1)


def _chunks(X, y, n_chunks=N_CHUNKS):
    """Consecutive chunks covering the data once, as read from a file."""
    bounds = np.linspace(0, X.shape[0], n_chunks + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        yield X[lo:hi], y[lo:hi]


def _stream(est, X, y, n_epochs, **kwargs):
    for _ in range(n_epochs):
        for X_chunk, y_chunk in _chunks(X, y):
            est.partial_fit(X_chunk, y_chunk, **kwargs)
    return est


@pytest.mark.parametrize("ambiguity", [ChiSquare(radius=1.0), CVaR(alpha=0.2)])
def test_chunks_reach_the_robust_risk_of_fit(data, ambiguity):
    X, y = data
    n_epochs = 30
    full = DRONeuralNetClassifier(ambiguity=ambiguity, max_epochs=n_epochs, **DUAL).fit(
        X, y
    )
    streamed = _stream(
        DRONeuralNetClassifier(ambiguity=ambiguity, **DUAL),
        X,
        y,
        n_epochs,
        classes=[0, 1],
    )
    assert streamed.n_iter_ == n_epochs * N_CHUNKS
    # reference: the exact robust risk of the model's cross-entropy losses,
    # computed by skrobust.ambiguity (numpy) from the predicted probabilities
    proba = streamed.predict_proba(X)
    losses = -np.log(proba[np.arange(len(y)), y])
    exact = ambiguity.risk(losses)
    assert_allclose(streamed.robust_risk(X, y), exact, rtol=EXACT_RTOL)
    assert_allclose(exact, full.robust_risk(X, y), rtol=RUN_RTOL)
    # ERM with the same network and epochs is far less robust
    erm = DRONeuralNetClassifier(
        ambiguity=CVaR(alpha=1.0), max_epochs=n_epochs, **DUAL
    ).fit(X, y)
    assert exact < 0.8 * ambiguity.risk(erm._per_sample_losses(X, y))
    # the dual variables learned across the chunks are (near) optimal for the
    # whole data set: the full-data dual objective is the exact robust risk
    with torch.no_grad():
        logits = streamed.module_(torch.tensor(X, dtype=torch.float32))
        dual = streamed.criterion_(logits, torch.tensor(y)).item()
    assert dual >= exact * (1 - 1e-6)  # weak duality
    assert_allclose(dual, exact, rtol=DUAL_RTOL)


def test_regressor_chunks_reach_the_robust_risk_of_fit():
    X, y = make_regression(
        n_samples=300, n_features=3, n_targets=2, noise=30.0, random_state=0
    )
    y = y / y.std(axis=0)
    ambiguity = ChiSquare(radius=0.5)
    params = {**DUAL, "ambiguity": ambiguity, "lr": 0.02}
    full = DRONeuralNetRegressor(max_epochs=30, **params).fit(X, y)
    streamed = _stream(DRONeuralNetRegressor(**params), X, y, 30)
    assert streamed.predict(X).shape == (300, 2)
    losses = ((streamed.predict(X) - y) ** 2).mean(axis=1)
    exact = ambiguity.risk(losses)
    assert_allclose(streamed.robust_risk(X, y), exact, rtol=EXACT_RTOL)
    assert_allclose(exact, full.robust_risk(X, y), rtol=RUN_RTOL)
    with pytest.raises(ValueError, match="outputs"):
        streamed.partial_fit(X, y[:, 0])
    one = DRONeuralNetRegressor(**params).partial_fit(X, y[:, 0])
    assert one.predict(X).shape == (300,)


def test_classes_on_the_first_call(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=CVaR(0.3), **DUAL)
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X, y)
    # a first chunk holding one class only: the classes come from `classes`
    labels = np.where(y == 1, "b", "a")
    only_a = labels == "a"
    clf.partial_fit(X[only_a], labels[only_a], classes=["b", "a", "a"])
    assert_array_equal(clf.classes_, ["a", "b"])
    assert clf.predict_proba(X).shape == (len(y), 2)
    clf.partial_fit(X, labels)  # later calls may omit classes
    clf.partial_fit(X, labels, classes=["a", "b"])
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, labels, classes=["a", "c"])
    with pytest.raises(ValueError, match=r"not in classes"):
        clf.partial_fit(X[:3], ["a", "c", "b"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        DRONeuralNetClassifier(**DUAL).partial_fit(X, y, classes=[1])
    with pytest.raises(ValueError, match="not in classes"):
        DRONeuralNetClassifier(**DUAL).partial_fit(X, y, classes=[0, 2])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], labels)
    # a refused first call leaves the estimator unfitted
    refused = DRONeuralNetClassifier(**{**DUAL, "ambiguity": KL(0.1)})
    with pytest.raises(ValueError, match="minibatch='dual'"):
        refused.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(refused, "classes_")
    assert not hasattr(refused, "module_")


def test_dual_variables_and_optimizer_state_persist(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=ChiSquare(1.0), **DUAL)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1])
    criterion, optimizer = clf.criterion_, clf._net.optimizer_
    assert bool(criterion.initialized)
    eta_after_first = criterion.eta.item()
    calls = []
    original = criterion.initialize_dual

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    criterion.initialize_dual = counting
    clf.partial_fit(X[100:200], y[100:200])
    clf.partial_fit(X[200:], y[200:])
    # the same criterion and optimizer; the duals were trained, not re-solved
    assert clf.criterion_ is criterion
    assert clf._net.optimizer_ is optimizer
    assert calls == []
    assert criterion.eta.item() != eta_after_first
    # Adam counted every mini-batch of the three chunks: 3 chunks x 2 batches
    assert optimizer.state[criterion.eta]["step"].item() == 6
    assert optimizer.state[criterion.log_lambda]["step"].item() == 6
    assert clf.n_iter_ == 3
    assert clf.loss_curve_.shape == (3,)


def test_weighted_chunk_equals_repeated_rows():
    # Full-batch chunks with integer weights of mean one: the same dual
    # objective (and the same first-batch initialization) as repeated rows,
    # so the two runs differ only by the order and number of float32 terms
    # in each batch sum (90 weighted rows vs 120 repeated ones).
    #
    # Plain SGD is used because its step is Lipschitz in the gradient: a
    # float32 sum of m terms is off by about sqrt(m) * eps32 (relative, for
    # the blocked summation torch uses), and n_steps such steps add up to at
    # most n_steps * sqrt(m) * eps32 = 10 * 11 * 1.2e-7 = 1.3e-5 (measured:
    # 3e-8). Adam is not a fair test of the identity: its first steps are
    # lr * sign(g) per coordinate, so a gradient coordinate that is zero up
    # to rounding takes a full step of either sign (measured 1.1e-4 apart,
    # and 1.3e-5 apart for the repeated rows merely shuffled).
    n_steps = 10
    X, y = make_classification(n_samples=90, n_features=4, random_state=2)
    counts = np.tile([0, 1, 2], 30)
    params = {
        **DUAL,
        "ambiguity": ChiSquare(1.0),
        "batch_size": 1000,
        "optimizer": "sgd",
    }
    weighted = DRONeuralNetClassifier(**params)
    repeated = DRONeuralNetClassifier(**params)
    X_rep, y_rep = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    for _ in range(n_steps):
        weighted.partial_fit(X, y, classes=[0, 1], sample_weight=counts)
        repeated.partial_fit(X_rep, y_rep, classes=[0, 1])
    rtol = n_steps * np.sqrt(len(y_rep)) * np.finfo(np.float32).eps
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=rtol)
    assert_allclose(
        weighted.criterion_.eta.item(), repeated.criterion_.eta.item(), rtol=rtol
    )
    # and the runs did move: the identity is not checked on the initial model
    assert weighted.n_iter_ == n_steps


def test_determinism_and_global_rng_untouched(data):
    X, y = data
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = _stream(DRONeuralNetClassifier(**DUAL), X, y, 2, classes=[0, 1])
    assert torch.equal(torch.get_rng_state(), state)
    b = _stream(DRONeuralNetClassifier(**DUAL), X, y, 2, classes=[0, 1])
    c = _stream(
        DRONeuralNetClassifier(**{**DUAL, "random_state": 1}), X, y, 2, classes=[0, 1]
    )
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))


def test_partial_fit_after_fit_and_fit_after_partial_fit(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=CVaR(0.3), max_epochs=5, **DUAL).fit(X, y)
    before = clf.predict_proba(X)
    clf.partial_fit(X[:100], y[:100])  # continues: classes_ are known
    assert clf.n_iter_ == 6
    assert not np.allclose(clf.predict_proba(X), before)
    clf.fit(X, y)  # fit starts over
    assert clf.n_iter_ == 5
    assert_allclose(clf.predict_proba(X), before, rtol=F32_RTOL)


def test_exact_minibatch_warns_about_the_bias(data):
    X, y = data
    exact = DRONeuralNetClassifier(**{**DUAL, "minibatch": "exact"})
    with pytest.warns(UserWarning, match="minibatch='dual'"):
        exact.partial_fit(X[:100], y[:100], classes=[0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact.partial_fit(X[100:200], y[100:200])  # warned once, on the first call
        DRONeuralNetClassifier(**DUAL).partial_fit(X, y, classes=[0, 1])
        # a trivial set is ERM, an average: nothing to warn about
        DRONeuralNetClassifier(
            **{**DUAL, "minibatch": "exact", "ambiguity": CVaR(1.0)}
        ).partial_fit(X, y, classes=[0, 1])


def test_clone_and_pickle_after_partial_fit(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=ChiSquare(1.0), **DUAL)
    clf.partial_fit(X[:150], y[:150], classes=[0, 1])
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # training goes on identically from the pickled state: network, optimizer
    # moments, dual variables and the seeds of the next calls travel with it
    clf.partial_fit(X[150:], y[150:])
    restored.partial_fit(X[150:], y[150:])
    assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.criterion_.eta.item() == clf.criterion_.eta.item()
    fresh = clone(clf)
    assert not hasattr(fresh, "module_")
    with pytest.raises(ValueError, match="classes must be given"):
        fresh.partial_fit(X, y)


def test_memmap_chunks(data, tmp_path):
    # the documented out-of-core use: chunks sliced from an on-disk array
    X, y = data
    path = tmp_path / "X.dat"
    on_disk = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    on_disk[:] = X
    on_disk.flush()
    X_map = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    from_disk = _stream(DRONeuralNetClassifier(**DUAL), X_map, y, 2, classes=[0, 1])
    in_memory = _stream(
        DRONeuralNetClassifier(**DUAL), X.astype(np.float32), y, 2, classes=[0, 1]
    )
    assert_array_equal(from_disk.predict_proba(X), in_memory.predict_proba(X))


def test_wrm_chunks_reach_the_surrogate_risk_of_fit(data):
    from skrobust.nn import WassersteinRobustNeuralNetClassifier

    X, y = data
    params = {
        "hidden_layer_sizes": (8,),
        "gamma": 2.0,
        "batch_size": 50,
        "lr": 0.02,
        "random_state": 0,
    }
    full = WassersteinRobustNeuralNetClassifier(max_epochs=20, **params).fit(X, y)
    streamed = _stream(
        WassersteinRobustNeuralNetClassifier(**params), X, y, 20, classes=[0, 1]
    )
    assert streamed.n_iter_ == 20 * N_CHUNKS
    assert streamed.n_augmented_ == 0
    # radius 0: the certificate is the robust surrogate E[phi_gamma], the
    # training objective of WRM, solved to convergence in float64
    surrogate = streamed.certificate(X, y, radius=0.0)
    assert_allclose(surrogate, full.certificate(X, y, radius=0.0), rtol=RUN_RTOL)
    one_pass = WassersteinRobustNeuralNetClassifier(max_epochs=1, **params).fit(X, y)
    assert surrogate < one_pass.certificate(X, y, radius=0.0)
    with pytest.raises(ValueError, match="method='wrm' only"):
        WassersteinRobustNeuralNetClassifier(method="ada", **params).partial_fit(
            X, y, classes=[0, 1]
        )
    with pytest.raises(ValueError, match="classes must be given"):
        WassersteinRobustNeuralNetClassifier(**params).partial_fit(X, y)


@pytest.mark.gpu
def test_partial_fit_on_cuda(data):
    X, y = data
    clf = DRONeuralNetClassifier(device="cuda", ambiguity=ChiSquare(1.0), **DUAL)
    _stream(clf, X, y, 2, classes=[0, 1])
    assert clf.criterion_.eta.device.type == "cuda"
    assert next(clf.module_.parameters()).device.type == "cuda"
    assert np.isfinite(clf.robust_risk(X, y))
