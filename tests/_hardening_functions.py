"""Hardening of the public functions: the cases and the generic checks.

Each public function gets valid keyword arguments (``FUNCTIONS``) and then
malformed per-sample arrays, empty and one-sample input, bad weights and
out-of-range parameters; see tests/_hardening.py for how the checks run per
package.
"""

import inspect
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from tests._hardening import (
    ARRAY_MSG,
    WEIGHT_CASES,
    _assert_clear_error,
    per_package,
)

# the generic checks: each package's test_hardening.py imports them with *
__all__ = [
    "test_function_malformed_array",
    "test_function_valid_and_empty_input",
    "test_function_one_sample",
    "test_function_bad_sample_weight",
    "test_function_out_of_range_parameter",
    "test_function_does_not_modify_inputs",
]


# -- malformed input to the public functions ----------------------------------


def _function_cases():
    """name -> (function, valid keyword arguments, per-sample array arguments)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from skbandit import EpsilonGreedy, make_feedback
    from skbandit.metrics import dr_value, estimate_policy_value, ips_value, snips_value
    from skcausal import make_target
    from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR, TotalVariation
    from skrobust.inference import (
        el_coef_interval,
        el_max_mean_interval,
        el_mean_interval,
        el_mean_test,
        el_moment_test,
        gel_model_risk_interval,
        gel_optimal_value_interval,
        gel_risk_interval,
    )
    from skrobust.linear_model import DROLinearRegression
    from skrobust.metrics import worst_subpopulation_risk
    from skrobust.shift import decompose_performance_shift, kl_stability

    rng = np.random.default_rng(0)
    n = 30
    losses = rng.exponential(size=n)
    X = rng.normal(size=(n, 2))
    y = X[:, 0] + rng.normal(size=n)
    yc = (y > 0).astype(int)
    p = np.full(n, 0.5)
    tp = rng.uniform(0.1, 0.9, size=n)
    feedback = make_feedback(np.arange(n) % 2, yc.astype(float), p)
    policy = EpsilonGreedy(random_state=0).fit(X, feedback)
    cases = {}
    for amb in (
        ChiSquare(1.0),
        CressieRead(1.0, k=3.0),
        KL(1.0),
        CVaR(0.2),
        TotalVariation(0.3),
    ):
        for method in ("risk", "worst_case_weights"):
            cases[f"{type(amb).__name__}.{method}"] = (
                getattr(amb, method),
                {"losses": losses},
                ["losses"],
            )
    cases.update(
        {
            "el_mean_interval": (el_mean_interval, {"x": losses}, ["x"]),
            "el_mean_test": (el_mean_test, {"x": losses, "mean": 1.0}, ["x"]),
            "gel_risk_interval": (gel_risk_interval, {"losses": losses}, ["losses"]),
            "el_moment_test": (el_moment_test, {"G": X}, ["G"]),
            "el_max_mean_interval": (
                el_max_mean_interval,
                {"Y": X, "n_bootstraps": 50, "random_state": 0},
                ["Y"],
            ),
            "el_coef_interval": (
                el_coef_interval,
                {"estimator": LinearRegression(), "X": X, "y": y},
                ["X", "y"],
            ),
            "gel_model_risk_interval": (
                gel_model_risk_interval,
                {"estimator": LinearRegression().fit(X, y), "X": X, "y": y},
                ["X", "y"],
            ),
            "gel_optimal_value_interval": (
                gel_optimal_value_interval,
                {"estimator": DROLinearRegression(), "X": X, "y": y},
                ["X", "y"],
            ),
            "worst_subpopulation_risk": (
                worst_subpopulation_risk,
                {
                    "y_true": y,
                    "y_pred": 0 * y,
                    "Z": X,
                    "subpopulation_size": 0.3,
                    "loss": "squared_error",
                    "cv": 2,
                },
                ["y_true", "y_pred", "Z"],
            ),
            "worst_subpopulation_risk_zero_one": (
                worst_subpopulation_risk,
                {
                    "y_true": yc,
                    "y_pred": 1 - yc,
                    "Z": X,
                    "subpopulation_size": 0.3,
                    "cv": 2,
                },
                ["y_true", "y_pred", "Z"],
            ),
            "kl_stability": (
                kl_stability,
                {"losses": losses, "threshold": 0.8, "Z": X, "cv": 2},
                ["losses", "Z"],
            ),
            "decompose_performance_shift": (
                decompose_performance_shift,
                {
                    "estimator": LogisticRegression().fit(X, yc),
                    "X_source": X,
                    "y_source": yc,
                    "X_target": X + 0.5,
                    "y_target": yc,
                    "cv": 2,
                },
                ["X_source", "y_source"],
            ),
            "ips_value": (
                ips_value,
                {"rewards": losses, "propensities": p, "target_propensities": tp},
                ["rewards", "propensities", "target_propensities"],
            ),
            "snips_value": (
                snips_value,
                {"rewards": losses, "propensities": p, "target_propensities": tp},
                ["rewards", "propensities", "target_propensities"],
            ),
            "dr_value": (
                dr_value,
                {
                    "rewards": losses,
                    "propensities": p,
                    "target_propensities": tp,
                    "reward_pred_logged": 0 * y,
                    "reward_pred_target": 0 * y,
                },
                [
                    "rewards",
                    "propensities",
                    "target_propensities",
                    "reward_pred_logged",
                    "reward_pred_target",
                ],
            ),
            "estimate_policy_value": (
                estimate_policy_value,
                {"policy": policy, "X": X, "y": feedback, "random_state": 0},
                ["X", "y"],
            ),
            "make_feedback": (
                make_feedback,
                {"actions": np.arange(n) % 3, "rewards": losses, "propensities": p},
                ["actions", "rewards", "propensities"],
            ),
            "make_target": (
                make_target,
                {"outcome": y, "treatment": yc},
                ["outcome", "treatment"],
            ),
        }
    )
    return cases


FUNCTIONS = _function_cases()
WEIGHTED = [
    name
    for name, (func, _, _) in FUNCTIONS.items()
    if "sample_weight" in inspect.signature(func).parameters
]


def _call(name, **changes):
    func, kwargs, _ = FUNCTIONS[name]
    kwargs = {**kwargs, **changes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(**kwargs)


def _assert_finite_result(result):
    """No silent NaN in whatever the function returns."""
    if isinstance(result, dict) or hasattr(result, "__dataclass_fields__"):
        values = (
            result.values()
            if isinstance(result, dict)
            else [getattr(result, f) for f in result.__dataclass_fields__]
        )
    elif isinstance(result, tuple):
        values = result
    else:
        values = [result]
    for value in values:
        arr = np.asarray(value)
        if arr.dtype.kind in "fc":
            assert not np.any(np.isnan(arr)), f"NaN in result: {result}"


def _corrupt(value, kind):
    arr = np.array(value, copy=True)
    if kind in ("nan", "inf"):
        arr = arr.astype(float)
        arr.flat[3] = np.nan if kind == "nan" else np.inf
    elif kind == "string":
        arr = arr.astype(object)
        arr.flat[3] = "abc"
    elif kind == "short":
        arr = arr[:-2]
    return arr


# class labels and actions may be strings
LABELS = {
    ("worst_subpopulation_risk_zero_one", "y_true"),
    ("worst_subpopulation_risk_zero_one", "y_pred"),
    ("decompose_performance_shift", "y_source"),
    ("make_feedback", "actions"),
}
# core variables go to a regressor that may handle missing values itself
# (the default, HistGradientBoostingRegressor, does): fine if finite results
NONFINITE_OK = {
    ("worst_subpopulation_risk", "Z"),
    ("worst_subpopulation_risk_zero_one", "Z"),
    ("kl_stability", "Z"),
}
# structured feedback: NaN/inf/strings are tested through its fields
SPECIAL = {("estimate_policy_value", "y")}
ARRAY_CASES = [
    (name, arg, kind)
    for name, (_, _, arrays) in FUNCTIONS.items()
    for arg in arrays
    for kind in ("nan", "inf", "string", "short")
    if not (kind == "short" and len(arrays) == 1)
    and not (kind == "string" and (name, arg) in LABELS)
    and not (kind != "short" and (name, arg) in SPECIAL)
]


@per_package("name, arg, kind", ARRAY_CASES, ids=["-".join(c) for c in ARRAY_CASES])
def test_function_malformed_array(name, arg, kind):
    bad = _corrupt(FUNCTIONS[name][1][arg], kind)
    if (name, arg) in NONFINITE_OK and kind in ("nan", "inf"):
        try:
            result = _call(name, **{arg: bad})
        except (ValueError, TypeError):
            pass
        else:
            _assert_finite_result(result)
            return
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _call(name, **{arg: bad})
    _assert_clear_error(excinfo, ARRAY_MSG[kind])


@per_package("name", list(FUNCTIONS))
def test_function_valid_and_empty_input(name):
    _assert_finite_result(_call(name))
    if name in ("make_feedback", "make_target"):
        return  # packers: empty feedback is valid (a policy's prior start)
    arrays = FUNCTIONS[name][2]
    empty = {arg: np.asarray(FUNCTIONS[name][1][arg])[:0] for arg in arrays}
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _call(name, **empty)
    _assert_clear_error(excinfo, r"0 sample|empty|at least|no sample|n_samples")


@per_package("name", list(FUNCTIONS))
def test_function_one_sample(name):
    arrays = FUNCTIONS[name][2]
    one = {arg: np.asarray(FUNCTIONS[name][1][arg])[:1] for arg in arrays}
    try:
        result = _call(name, **one)
    except (ValueError, TypeError):
        with pytest.raises((ValueError, TypeError)) as excinfo:
            _call(name, **one)
        _assert_clear_error(
            excinfo, r"sample|at least|class|fold|split|observation|variance"
        )
    else:
        _assert_finite_result(result)


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
@per_package("name", WEIGHTED)
def test_function_bad_sample_weight(name, case):
    make, match = WEIGHT_CASES[case]
    n = len(FUNCTIONS[name][1][FUNCTIONS[name][2][0]])
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _call(name, sample_weight=make(n))
    _assert_clear_error(excinfo, match)


def _invalid_parameter_cases():
    from sklearn.utils._param_validation import (
        generate_invalid_param_val,
        make_constraint,
    )

    cases = []
    for name, (func, _, arrays) in FUNCTIONS.items():
        constraints = getattr(func, "_skl_parameter_constraints", None)
        if constraints is None:
            continue
        for param, options in constraints.items():
            if param in arrays or options == "no_validation":
                continue
            options = [make_constraint(c) for c in options]
            for option in options:
                try:
                    bad = generate_invalid_param_val(option)
                except NotImplementedError:
                    continue
                if any(o.is_satisfied_by(bad) for o in options):
                    continue
                cases.append((name, param, bad))
    return cases


INVALID_PARAMS = _invalid_parameter_cases()


@per_package(
    "name, param, bad",
    INVALID_PARAMS,
    # ids must not depend on set order or object addresses: pytest-xdist
    # workers collect them separately and must agree
    ids=[f"{n}-{p}-{i}" for i, (n, p, _) in enumerate(INVALID_PARAMS)],
)
def test_function_out_of_range_parameter(name, param, bad):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _call(name, **{param: bad})
    _assert_clear_error(excinfo, re.escape(param))


@per_package("name", list(FUNCTIONS))
def test_function_does_not_modify_inputs(name):
    _, kwargs, arrays = FUNCTIONS[name]
    before = {arg: np.array(kwargs[arg], copy=True) for arg in arrays}
    _call(name)
    for arg in arrays:
        assert_array_equal(kwargs[arg], before[arg], err_msg=arg)
