"""DRONeuralNetClassifier / DRONeuralNetRegressor beyond the common checks."""

import pickle

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
# gap between the learned dual objective and the exact risk after SGD
DUAL_RTOL = 1e-2

FAST = {"hidden_layer_sizes": (8,), "max_epochs": 15, "lr": 0.02, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    return make_classification(
        n_samples=120,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        flip_y=0.1,
        random_state=0,
    )


def test_dual_objective_at_learned_duals_matches_exact_risk():
    # mini-batches of 40 with minibatch="dual": the full-batch dual objective at
    # the learned (theta, eta, lambda) equals the exact robust risk at theta
    X, y = make_classification(n_samples=200, n_features=5, flip_y=0.1, random_state=1)
    for ambiguity in [ChiSquare(radius=1.0), CVaR(alpha=0.2)]:
        clf = DRONeuralNetClassifier(
            hidden_layer_sizes=(8,),
            ambiguity=ambiguity,
            minibatch="dual",
            batch_size=40,
            max_epochs=60,
            lr=0.01,
            random_state=0,
        ).fit(X, y)
        with torch.no_grad():
            logits = clf.module_(torch.tensor(X, dtype=torch.float32))
            dual = clf.criterion_(logits, torch.tensor(y)).item()
        exact = clf.robust_risk(X, y)
        assert dual >= exact * (1 - 1e-6)  # weak duality
        assert_allclose(dual, exact, rtol=DUAL_RTOL)


def test_dro_lowers_the_robust_training_risk(data):
    X, y = data
    ambiguity = CVaR(alpha=0.2)
    params = {**FAST, "max_epochs": 60, "batch_size": 120}
    dro = DRONeuralNetClassifier(ambiguity=ambiguity, **params).fit(X, y)
    erm = DRONeuralNetClassifier(ambiguity=CVaR(alpha=1.0), **params).fit(X, y)
    # same network, seed and epochs: the robust objective is lower when trained on
    assert dro.robust_risk(X, y) < CVaR(alpha=0.2).risk(erm._per_sample_losses(X, y))


def test_trivial_sets_coincide(data):
    # radius 0 and alpha = 1 are both the empirical risk (ERM)
    X, y = data
    a = DRONeuralNetClassifier(ambiguity=ChiSquare(0.0), **FAST).fit(X, y)
    b = DRONeuralNetClassifier(ambiguity=CVaR(1.0), **FAST).fit(X, y)
    c = DRONeuralNetClassifier(ambiguity=KL(0.0), **FAST).fit(X, y)
    assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=F32_RTOL)
    assert_allclose(a.predict_proba(X), c.predict_proba(X), rtol=F32_RTOL)


def test_erm_equals_plain_torch_loop(data):
    # radius 0 with full batches is ERM: replay the same steps by hand
    X, y = data
    clf = DRONeuralNetClassifier(
        ambiguity=ChiSquare(0.0), batch_size=len(X), optimizer="sgd", **FAST
    ).fit(X, y)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    torch.manual_seed(seed)
    from skrobust.nn._net import MLP

    model = MLP(4, 2, (8,), "relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(15):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(Xt), yt).backward()
        optimizer.step()
    with torch.no_grad():
        expected = torch.softmax(model(Xt), dim=1).double().numpy()
    assert_allclose(clf.predict_proba(X), expected, rtol=F32_RTOL)


def test_determinism_and_global_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = DRONeuralNetClassifier(**FAST).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = DRONeuralNetClassifier(**FAST).fit(X, y).predict_proba(X)
    c = DRONeuralNetClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_weights_equal_repeated_rows_with_full_batches(data):
    X, y = data
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3, size=len(y))
    params = {**FAST, "ambiguity": ChiSquare(1.0), "batch_size": 10_000}
    weighted = DRONeuralNetClassifier(**params).fit(X, y, sample_weight=counts)
    repeated = DRONeuralNetClassifier(**params).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=F32_RTOL)


def test_user_module_class_and_instance(data):
    X, y = data

    class Net(torch.nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, 2)
            )

        def forward(self, X):
            return self.body(X)

    clf = DRONeuralNetClassifier(Net, module_kwargs={"width": 6}, **FAST).fit(X, y)
    assert clf.module_.body[0].out_features == 6
    instance = Net()
    before = [p.detach().clone() for p in instance.parameters()]
    fitted = DRONeuralNetClassifier(instance, **FAST).fit(X, y)
    assert fitted.module_ is not instance
    for old, new in zip(before, instance.parameters(), strict=True):
        assert torch.equal(old, new)  # the user's module is never trained
    again = DRONeuralNetClassifier(instance, **FAST).fit(X, y)
    assert_array_equal(fitted.predict_proba(X), again.predict_proba(X))
    with pytest.raises(ValueError, match="module_kwargs"):
        DRONeuralNetClassifier(instance, module_kwargs={"width": 3}, **FAST).fit(X, y)


def test_regressor_multioutput_and_dual():
    X, y = make_regression(n_samples=100, n_features=3, n_targets=2, random_state=0)
    y = y / y.std(axis=0)
    reg = DRONeuralNetRegressor(
        ambiguity=CVaR(0.3), minibatch="dual", **{**FAST, "max_epochs": 60}
    ).fit(X, y)
    assert reg.predict(X).shape == (100, 2)
    assert reg.score(X, y) > 0.8
    losses = ((reg.predict(X) - y) ** 2).mean(axis=1)  # per-sample mean squared error
    assert_allclose(reg.robust_risk(X, y), CVaR(0.3).risk(losses), rtol=1e-10)


def test_pickle_and_clone(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=CVaR(0.3), **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert not hasattr(fresh, "module_")
    assert fresh.get_params()["ambiguity"].alpha == 0.3


def test_bad_inputs(data):
    X, y = data
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            DRONeuralNetClassifier(device="cuda", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="not a torch device"):
        DRONeuralNetClassifier(device="gpu0", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        DRONeuralNetClassifier(**{**FAST, "hidden_layer_sizes": (8, 0)}).fit(X, y)
    with pytest.raises(ValueError, match="minibatch='dual'"):
        DRONeuralNetClassifier(ambiguity=KL(0.1), minibatch="dual", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="ambiguity"):
        DRONeuralNetClassifier(ambiguity="chi2", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="2 classes"):
        DRONeuralNetClassifier(**FAST).fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="Negative values"):
        DRONeuralNetClassifier(**FAST).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero"):
        DRONeuralNetClassifier(**FAST).fit(X, y, sample_weight=np.zeros(len(y)))
    clf = DRONeuralNetClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="labels not seen"):
        clf.robust_risk(X, y + 5)


@pytest.mark.gpu
def test_trains_on_cuda(data):
    X, y = data
    clf = DRONeuralNetClassifier(device="cuda", ambiguity=CVaR(0.3), **FAST).fit(X, y)
    assert next(clf.module_.parameters()).device.type == "cuda"
    assert clf.predict_proba(X).shape == (len(y), 2)
    dual = DRONeuralNetClassifier(
        device="cuda", minibatch="dual", ambiguity=ChiSquare(1.0), **FAST
    ).fit(X, y)
    assert dual.criterion_.eta.device.type == "cuda"
    reg = DRONeuralNetRegressor(device="cuda", **FAST).fit(X, y.astype(float))
    assert np.isfinite(reg.predict(X)).all()


def test_dual_variables_are_trained(data):
    X, y = data
    clf = DRONeuralNetClassifier(ambiguity=ChiSquare(1.0), minibatch="dual", **FAST)
    clf.fit(X, y)
    optimized = {id(p) for g in clf._net.optimizer_.param_groups for p in g["params"]}
    assert id(clf.criterion_.eta) in optimized
    assert id(clf.criterion_.log_lambda) in optimized


def test_clear_import_error_without_torch():
    import os
    import subprocess
    import sys
    from pathlib import Path

    import skrobust

    # a fresh interpreter in which importing torch fails, as if not installed
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'skorch'):\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n    import skrobust.nn\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(skrobust.__file__).parents[1])},
    ).stdout
    assert 'pip install "skrobust[torch]"' in out
