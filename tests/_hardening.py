"""Shared machinery of the hardening tests (tests/<package>/test_hardening.py).

Hardening: malformed input, round trips and numerical stress.

Every public estimator (found by :func:`skrobust.utils.all_estimators`) and
the main public functions get malformed input: NaN, inf, empty arrays, one
sample, one class, constant features, strings and object arrays, mismatched
lengths, negative or zero weights, out-of-range parameters. Each must either
raise a ``ValueError``/``TypeError`` whose message names the problem, raised
by our code or scikit-learn's validation (not deep inside numpy, scipy,
cvxpy, LightGBM or torch), or succeed with finite results; never a silent
NaN. Estimators also round-trip through pickle and joblib, leave their inputs
unchanged and are deterministic for a fixed ``random_state``. The numerical
stress tests push losses over 1e-12..1e12, radii from 0 to huge,
propensities to within 1e-9 of 0 and 1, and bandits to a thousand arms.

Estimators that need a special target get a valid one from a per-package
builder (``skcausal.make_target``, ``skbandit.make_feedback``).

The tests that run on every estimator and public function are written here
once, decorated with :func:`per_package` instead of ``parametrize``; each
package's ``test_hardening.py`` imports them and sets ``PACKAGE``, and
``tests/conftest.py`` parametrizes them there with that package's estimators
and functions only. The tests specific to one package live in its module.
"""

import copy
import importlib
import inspect
import io
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning

from skrobust.utils import all_estimators
from skrobust.utils._discovery import PACKAGES

try:  # optional submodule (torch); all_estimators skips it when missing
    import skrobust.nn  # noqa: F401
except ImportError:  # pragma: no cover
    pass

# few, fast examples: the module must stay within about two minutes on 2 cores
HYPOTHESIS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI reproducibility)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# the generic checks: each package's test_hardening.py imports them with *
__all__ = [
    "test_nan_and_inf_in_X",
    "test_nan_and_inf_in_target",
    "test_empty_input",
    "test_one_sample",
    "test_one_class",
    "test_constant_features",
    "test_string_and_object_X",
    "test_mismatched_lengths",
    "test_wrong_target_dtype",
    "test_bad_sample_weight",
    "test_predict_wrong_number_of_features",
    "test_pickle_and_joblib_round_trip",
    "test_inputs_not_modified",
    "test_same_random_state_same_results",
    "test_features_and_targets_from_1e_minus_12_to_1e12",
    "test_any_nonfinite_entry_of_X_is_rejected",
    "test_score_rejects_malformed_targets",
]

RTOL = 1e-6
N_SAMPLES = 40

# libraries whose own frames must never be where a user-facing error is raised
_DEEP = ("numpy", "scipy", "cvxpy", "lightgbm", "torch", "skorch", "pandas")


def _package_of(value):
    """The package (skrobust, skcausal, skbandit) an estimator or case belongs to."""
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, str):
        from tests._hardening_functions import FUNCTIONS

        value = FUNCTIONS[value][0]
    return value.__module__.split(".")[0]


def _case_id(value):
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    return value if isinstance(value, str) else value.__name__


def per_package(argnames, values, ids=None):
    """``parametrize`` over the ``values`` of the collecting module's ``PACKAGE``.

    ``values`` are estimator classes, names of
    ``tests._hardening_functions.FUNCTIONS``, or tuples whose first item is
    one; tests/conftest.py calls the stored function.
    """
    values = list(values)
    ids = [_case_id(v) for v in values] if ids is None else list(ids)

    def parametrize(metafunc):
        package = metafunc.module.PACKAGE
        chosen = [
            (v, i)
            for v, i in zip(values, ids, strict=True)
            if _package_of(v) == package
        ]
        metafunc.parametrize(
            argnames, [v for v, _ in chosen], ids=[i for _, i in chosen]
        )

    def mark(func):
        func.per_package = parametrize
        return func

    return mark


def _config():
    fast = {}
    for package in PACKAGES:
        config = importlib.import_module(f"tests.{package}.common_config")
        fast.update(copy.deepcopy(config.FAST_PARAMS))
    # fewer epochs still exercise every code path of the networks
    for name in (
        "DRONeuralNetClassifier",
        "DRONeuralNetRegressor",
        "WassersteinRobustNeuralNetClassifier",
    ):
        if name in fast:
            fast[name].update(max_epochs=3, batch_size=16)
    return fast


FAST_PARAMS = _config()
ESTIMATORS = [cls for _, cls in all_estimators()]
IDS = [cls.__name__ for cls in ESTIMATORS]


def _make(cls, **params):
    est = cls(**FAST_PARAMS.get(cls.__name__, {}))
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    return est.set_params(**params)


def _package(est):
    return type(est).__module__.split(".")[0]


def _accepts_weights(est):
    return "sample_weight" in inspect.signature(est.fit).parameters


# -- valid data for each kind of estimator ----------------------------------


def _valid_data(est, n=N_SAMPLES, seed=0):
    """Return ``(X, y)`` that ``est`` fits without complaint."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    package = _package(est)
    if package == "skcausal":
        from skcausal import make_target

        t = np.arange(n) % 2
        outcome = X[:, 0] + t + 0.1 * rng.normal(size=n)
        return X, make_target(outcome, t)
    if package == "skbandit":
        from skbandit import make_feedback

        actions = np.arange(n) % 3
        rewards = rng.binomial(1, 0.5, size=n).astype(float)
        return X, make_feedback(actions, rewards, np.full(n, 1 / 3))
    if is_classifier(est):
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
        y[:2] = [0, 1]
        return X, y
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=n)


def _with_target(est, y, *, outcome=None, treatment=None, reward=None):
    """Copy of a valid target with one field replaced (without validation)."""
    package = _package(est)
    y = np.array(y, copy=True)
    if package == "skcausal":
        if outcome is not None:
            y[:, 0] = outcome
        if treatment is not None:
            y[:, 1] = treatment
    elif package == "skbandit":
        if reward is not None:
            y["reward"] = reward
    elif outcome is not None:
        y = np.asarray(outcome)
    return y


def _outputs(est, X):
    """Everything a fitted estimator reports, for comparisons."""
    out = {}
    for method in ("predict", "predict_proba", "decision_function"):
        if hasattr(est, method):
            out[method] = np.asarray(getattr(est, method)(X))
    for attr in ("estimate_", "stderr_", "coef_", "intercept_", "bounds_"):
        if hasattr(est, attr):
            out[attr] = np.asarray(getattr(est, attr))
    if hasattr(est, "risk_curve"):
        out["risk_curve"] = np.asarray(est.risk_curve([0.3, 0.6]).risk)
    return out


def _assert_finite_outputs(est, X):
    for name, value in _outputs(est, X).items():
        if value.dtype.kind in "fc":
            assert np.all(np.isfinite(value)), f"{name} has NaN/inf: {value}"


def _fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y, **kwargs)


def _assert_clear_error(excinfo, match):
    """The error names the problem and is raised by us or by sklearn."""
    exc = excinfo.value
    assert isinstance(exc, (ValueError, TypeError)), repr(exc)
    assert re.search(match, str(exc), flags=re.IGNORECASE), (
        f"message does not name the problem ({match!r}): {exc}"
    )
    origin = str(excinfo.traceback[-1].path)
    for lib in _DEEP:
        assert f"/{lib}/" not in origin, f"raised deep inside {lib}: {origin}\n{exc}"


def _fit_or_clear_error(est, X, y, match, **kwargs):
    """Either fit and report finite numbers, or fail with a clear message."""
    try:
        _fit(est, X, y, **kwargs)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)) as excinfo:
            _fit(clone(est), X, y, **kwargs)
        _assert_clear_error(excinfo, match)
        return False
    _assert_finite_outputs(est, X)
    return True


# -- malformed input to every estimator --------------------------------------

NAN_MSG = r"nan|missing|finite"
INF_MSG = r"inf|finite|large"


@per_package("cls", ESTIMATORS)
def test_nan_and_inf_in_X(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    for value, match in ((np.nan, NAN_MSG), (np.inf, INF_MSG), (-np.inf, INF_MSG)):
        X_bad = X.copy()
        X_bad[3, 1] = value
        with pytest.raises((ValueError, TypeError)) as excinfo:
            _fit(clone(est), X_bad, y)
        _assert_clear_error(excinfo, match)
    # ... and at predict time
    if hasattr(est, "predict"):
        _fit(est, X, y)
        X_bad = X.copy()
        X_bad[0, 0] = np.nan
        with pytest.raises((ValueError, TypeError)) as excinfo:
            est.predict(X_bad)
        _assert_clear_error(excinfo, NAN_MSG)


@per_package("cls", ESTIMATORS)
def test_nan_and_inf_in_target(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    if is_classifier(est) and _package(est) == "skrobust":
        return  # class labels: NaN is a label-type problem, tested below
    base = y["reward"] if _package(est) == "skbandit" else np.asarray(y, float)
    base = base[:, 0] if base.ndim == 2 else base
    for value, match in ((np.nan, NAN_MSG), (np.inf, INF_MSG)):
        bad = base.copy()
        bad[5] = value
        y_bad = _with_target(est, y, outcome=bad, reward=bad)
        with pytest.raises((ValueError, TypeError)) as excinfo:
            _fit(clone(est), X, y_bad)
        _assert_clear_error(excinfo, match)


@per_package("cls", ESTIMATORS)
def test_empty_input(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(est, X[:0], y[:0])
    _assert_clear_error(excinfo, r"0 sample|empty|at least|no sample|n_samples")


@per_package("cls", ESTIMATORS)
def test_one_sample(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    _fit_or_clear_error(
        est, X[:1], y[:1], r"sample|class|treat|control|fold|split|at least|arm"
    )


@per_package("cls", ESTIMATORS)
def test_one_class(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    package = _package(est)
    if package == "skcausal":
        # everyone treated: no control group
        y_bad = _with_target(est, y, treatment=np.ones(len(y)))
        match = r"treat|control|both|class"
    elif package == "skbandit":
        from skbandit import make_feedback

        y_bad = make_feedback(np.zeros(len(y), int), y["reward"], y["propensity"])
        match = r"arm|action|class"
    elif is_classifier(est):
        y_bad = np.zeros(len(y), int)
        match = r"class"
    else:
        y_bad = np.full(len(y), 3.0)  # constant target
        match = r"constant|target|variance"
    _fit_or_clear_error(est, X, y_bad, match)


@per_package("cls", ESTIMATORS)
def test_constant_features(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    X_const = np.ones_like(X)
    _fit_or_clear_error(est, X_const, y, r"constant|feature|variance|singular")


@per_package("cls", ESTIMATORS)
def test_string_and_object_X(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    X_str = X.astype(str).astype(object)
    X_str[0, 0] = "a"
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(clone(est), X_str, y)
    _assert_clear_error(excinfo, r"string|float|dtype|convert|numeric")
    # numbers in an object array are numbers
    est_obj = _fit(clone(est), X.astype(object), y)
    _assert_finite_outputs(est_obj, X)


@per_package("cls", ESTIMATORS)
def test_mismatched_lengths(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(est, X[:-3], y)
    _assert_clear_error(excinfo, r"inconsistent|number of samples|length|rows|shape")


@per_package("cls", ESTIMATORS)
def test_wrong_target_dtype(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    if is_classifier(est) and _package(est) == "skrobust":
        y_bad = np.asarray(y, float) + 0.5  # continuous labels for a classifier
        match = r"continuous|class|label|type"
    elif _package(est) == "skbandit":
        # a plain 1-d y of strings is valid (labels, full information); a
        # feedback array whose rewards are strings is not
        y_bad = np.empty(
            len(y), dtype=[("action", int), ("reward", "U3"), ("propensity", float)]
        )
        y_bad["action"], y_bad["reward"] = y["action"], "abc"
        y_bad["propensity"] = y["propensity"]
        match = r"reward|numeric|float|dtype|convert"
    else:
        y_bad = np.array(["x"] * len(y), dtype=object)
        match = r"string|float|numeric|dtype|convert"
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(est, X, y_bad)
    _assert_clear_error(excinfo, match)


ARRAY_MSG = {
    "nan": NAN_MSG,
    "inf": INF_MSG,
    "string": r"string|float|numeric|dtype|convert",
    "short": r"inconsistent|length|shape|rows|samples|same|must hold \d+",
}


WEIGHT_CASES = {
    "negative": (lambda n: np.r_[-1.0, np.ones(n - 1)], r"negative|positive"),
    "all_zero": (lambda n: np.zeros(n), r"zero|positive|sum"),
    "nan": (lambda n: np.r_[np.nan, np.ones(n - 1)], NAN_MSG),
    "inf": (lambda n: np.r_[np.inf, np.ones(n - 1)], INF_MSG),
    "wrong_length": (
        lambda n: np.ones(n - 1),
        r"shape|length|inconsistent|samples|must be \d+",
    ),
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
@per_package("cls", [c for c in ESTIMATORS if _accepts_weights(_make(c))])
def test_bad_sample_weight(cls, case):
    est = _make(cls)
    X, y = _valid_data(est)
    make, match = WEIGHT_CASES[case]
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(est, X, y, sample_weight=make(len(y)))
    _assert_clear_error(excinfo, match)


@per_package("cls", ESTIMATORS)
def test_predict_wrong_number_of_features(cls):
    est = _make(cls)
    if not hasattr(est, "predict"):
        return
    X, y = _valid_data(est)
    _fit(est, X, y)
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.predict(X[:, :2])
    _assert_clear_error(excinfo, r"features|shape")


# -- round trips, inputs untouched, determinism -------------------------------


def _assert_same_outputs(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert_array_equal(a[key], b[key], err_msg=key)


@per_package("cls", ESTIMATORS)
def test_pickle_and_joblib_round_trip(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    _fit(est, X, y)
    # randomized policies draw from a generator kept in the estimator: copy
    # the fitted state before any prediction, then compare the copies
    pickled = pickle.loads(pickle.dumps(est))
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    dumped = joblib.load(buffer)
    expected = _outputs(est, X)
    _assert_same_outputs(expected, _outputs(pickled, X))
    _assert_same_outputs(expected, _outputs(dumped, X))


@per_package("cls", ESTIMATORS)
def test_inputs_not_modified(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    X_copy, y_copy = X.copy(), y.copy()
    kwargs = {}
    if _accepts_weights(est):
        # integer counts: GenerativeThompsonSampling reads them as repeats
        kwargs["sample_weight"] = 1.0 + np.arange(len(y)) % 3
        w_copy = kwargs["sample_weight"].copy()
    _fit(est, X, y, **kwargs)
    _outputs(est, X)
    assert_array_equal(X, X_copy)
    assert_array_equal(y, y_copy)
    if kwargs:
        assert_array_equal(kwargs["sample_weight"], w_copy)


@per_package("cls", ESTIMATORS)
def test_same_random_state_same_results(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    first = _outputs(_fit(clone(est), X, y), X)
    second = _outputs(_fit(clone(est), X, y), X)
    _assert_same_outputs(first, second)


SCALES = [(1e12, 1.0), (1e-12, 1.0), (1.0, 1e12), (1.0, 1e-12)]


@pytest.mark.parametrize(
    "x_scale, y_scale", SCALES, ids=["X1e12", "X1e-12", "y1e12", "y1e-12"]
)
@per_package("cls", ESTIMATORS)
def test_features_and_targets_from_1e_minus_12_to_1e12(cls, x_scale, y_scale):
    est = _make(cls)
    X, y = _valid_data(est)
    package = _package(est)
    if y_scale != 1.0:
        if package == "skbandit":
            if cls.__name__ == "BernoulliThompsonSampling" and y_scale > 1:
                return  # rewards must lie in [0, 1] (tested as a clear error)
            y = _with_target(est, y, reward=y["reward"] * y_scale)
        elif package == "skcausal":
            y = _with_target(est, y, outcome=y[:, 0] * y_scale)
        elif is_classifier(est):
            return  # labels have no scale
        else:
            y = y * y_scale
    X = X * x_scale
    try:
        _fit(est, X, y)
    except (ConvergenceWarning, RuntimeError) as exc:
        # a solver that finds no solution says so, never a silent wrong number
        assert "solver" in str(exc) or "converge" in str(exc), exc
        return
    _assert_finite_outputs(est, X)


@per_package("cls", ESTIMATORS)
@HYPOTHESIS
@given(
    row=st.integers(0, N_SAMPLES - 1),
    col=st.integers(0, 2),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_any_nonfinite_entry_of_X_is_rejected(cls, row, col, bad):
    est = _make(cls)
    X, y = _valid_data(est)
    X = X.copy()
    X[row, col] = bad
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(est, X, y)
    _assert_clear_error(excinfo, NAN_MSG + "|" + INF_MSG)


# sklearn's accuracy_score casts the NaN label before rejecting it
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@per_package("cls", ESTIMATORS)
def test_score_rejects_malformed_targets(cls):
    est = _make(cls)
    if not hasattr(est, "score"):
        return
    X, y = _valid_data(est)
    _fit(est, X, y)
    package = _package(est)
    if package == "skbandit":
        bad = y.copy()
        bad["reward"][0] = np.nan
    elif package == "skcausal":
        bad = _with_target(est, y, outcome=np.r_[np.nan, y[1:, 0]])
    elif is_classifier(est):
        bad = np.r_[np.nan, np.asarray(y[1:], float)]
    else:
        bad = np.r_[np.nan, y[1:]]
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.score(X, bad)
    _assert_clear_error(excinfo, NAN_MSG)
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.score(X[:-2], y)
    _assert_clear_error(excinfo, ARRAY_MSG["short"] + r"|rounds")
