"""The conventions layer: confidence levels, loss names, renamed parameters."""

import pickle
import warnings

import pytest

from skrobust.ambiguity import CVaR, Wasserstein, ambiguity_constraint, check_ambiguity
from skrobust.utils import (
    DEPRECATED,
    ConfidenceInterval,
    resolve_confidence_level,
    resolve_loss_name,
    resolve_renamed_param,
)


def test_confidence_level_and_the_old_alpha():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_confidence_level(0.9, owner="f") == 0.9
    with pytest.warns(FutureWarning, match="confidence_level=0.9"):
        assert resolve_confidence_level(0.95, 0.1, owner="f") == pytest.approx(0.9)
    for bad in (0.0, 1.0, 1.5, -0.1, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match="confidence_level"):
            resolve_confidence_level(bad, owner="f")
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="alpha"):
        resolve_confidence_level(0.95, 1.0, owner="f")


def test_loss_names():
    assert resolve_loss_name("log_loss", owner="m") == "log_loss"
    with pytest.warns(FutureWarning, match="'absolute_error'"):
        assert resolve_loss_name("absolute", owner="m") == "absolute_error"
    with pytest.raises(ValueError, match="loss must be one of"):
        resolve_loss_name("cubic", owner="m")
    with pytest.raises(ValueError, match="loss must be one of"):
        resolve_loss_name("hinge", owner="m", allowed={"squared_error"})


def test_renamed_parameter():
    class Model:
        def __init__(self, level=0.9, alpha=DEPRECATED):
            self.level, self.alpha = level, alpha

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_renamed_param(Model(level=0.8), "alpha", "level") == 0.8
    with pytest.warns(FutureWarning, match="use level=0.3"):
        assert resolve_renamed_param(Model(alpha=0.3), "alpha", "level") == 0.3
    assert repr(DEPRECATED) == "'deprecated'" and DEPRECATED == "deprecated"


def test_confidence_interval_is_a_named_pair():
    ci = ConfidenceInterval(low=-1.0, high=2.0)
    low, high = ci
    assert (low, high) == (ci.low, ci.high) == (-1.0, 2.0)
    assert pickle.loads(pickle.dumps(ci)) == ci


def test_one_ambiguity_constraint():
    from sklearn.utils._param_validation import make_constraint

    checks = [make_constraint(c) for c in ambiguity_constraint(feature_space=True)]
    for value in (CVaR(0.2), Wasserstein(), "chi2", "erm"):
        assert any(c.is_satisfied_by(value) for c in checks), value
    plain = [make_constraint(c) for c in ambiguity_constraint(shortcuts=())]
    assert not any(c.is_satisfied_by(Wasserstein()) for c in plain)
    assert not any(c.is_satisfied_by("chi2") for c in plain)
    with pytest.raises(ValueError, match="unknown ambiguity shortcuts"):
        ambiguity_constraint(shortcuts={"tv"})
    user = CVaR(0.2)
    checked = check_ambiguity(user)
    assert checked is not user and checked.get_params() == user.get_params()


def test_an_ambiguity_class_instead_of_an_object_is_named():
    # before: scikit-learn's clone raised its own TypeError about get_params
    from skrobust.ambiguity import ChiSquare

    with pytest.raises(TypeError, match="not the class ChiSquare"):
        check_ambiguity(ChiSquare)


def test_renamed_function_argument():
    from skrobust.utils import resolve_renamed_argument

    kwargs = dict(old="confidence", new="confidence_level", owner="f")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_renamed_argument(0.9, DEPRECATED, **kwargs) == 0.9
    with pytest.warns(FutureWarning, match="use confidence_level=0.8 instead"):
        assert resolve_renamed_argument(0.9, 0.8, **kwargs) == 0.8
