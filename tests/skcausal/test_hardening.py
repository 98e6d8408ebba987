"""Hardening of skcausal: generic checks on its estimators and functions, and its own.

The generic checks (malformed input, round trips, inputs untouched,
determinism, scales) are written once in ``tests/_hardening.py`` and run here
on skcausal's estimators and functions; this module adds the skcausal-specific
cases: propensities near 0 and 1, binary treatments.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from tests._hardening import *  # noqa: F403  (the generic checks, collected here)
from tests._hardening import (
    ESTIMATORS,
    NAN_MSG,
    _assert_clear_error,
    _fit,
    _make,
    _package,
    _valid_data,
    _with_target,
)

# skcausal has no weighted or parameter-validated public function
from tests._hardening_functions import (  # noqa: F401  (collected here)
    test_function_does_not_modify_inputs,
    test_function_malformed_array,
    test_function_one_sample,
    test_function_valid_and_empty_input,
)

PACKAGE = "skcausal"


class _FixedPropensity(ClassifierMixin, BaseEstimator):
    """Propensity model that predicts eps where X[:, 0] < 0 and 1 - eps else."""

    def __init__(self, eps=1e-9):
        self.eps = eps

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        e = np.where(np.asarray(X)[:, 0] < 0, self.eps, 1 - self.eps)
        return np.column_stack([1 - e, e])


def _near_deterministic_treatment(n=80, seed=0):
    from skcausal import make_target

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    t = (X[:, 0] >= 0).astype(int)
    t[[0, 1]] = 1 - t[[0, 1]]  # two units against the odds: weights ~1e9
    return X, make_target(X[:, 1] + t + rng.normal(size=n), t)


@pytest.mark.parametrize("name", ["IPW", "AIPW", "TMLE", "TrimmingSensitivity"])
def test_propensities_within_1e_minus_9_of_0_and_1(name):
    import skcausal

    X, y = _near_deterministic_treatment()
    est = getattr(skcausal, name)(propensity_model=_FixedPropensity(), cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            est.fit(X, y)
        except ValueError as exc:
            assert re.search(r"propensit|overlap|clip", str(exc)), exc
            return
    assert np.isfinite(est.estimate_)
    assert np.isfinite(est.stderr_)
    assert est.diagnostics_["propensity_min"] >= 1e-9 * (1 - 1e-6)


def test_clip_bounds_extreme_propensities():
    from skcausal import IPW

    X, y = _near_deterministic_treatment()
    with pytest.warns(UserWarning, match="clipped"):
        est = IPW(propensity_model=_FixedPropensity(), clip=1e-3, cv=2).fit(X, y)
    assert est.diagnostics_["propensity_min"] >= 1e-3
    assert est.diagnostics_["propensity_max"] <= 1 - 1e-3
    assert np.isfinite(est.estimate_)


CAUSAL = [cls for cls in ESTIMATORS if _package(_make(cls)) == "skcausal"]


@pytest.mark.parametrize("cls", CAUSAL, ids=[c.__name__ for c in CAUSAL])
def test_treatment_must_be_binary(cls):
    est = _make(cls)
    X, y = _valid_data(est)
    for treatment, match in (
        (2 * (np.arange(len(y)) % 2), r"binary|0 and 1|0/1|treatment"),
        (np.r_[np.nan, np.arange(len(y) - 1) % 2], NAN_MSG),
        (np.r_[0.5, np.arange(len(y) - 1) % 2], r"binary|0 and 1|0/1|treatment"),
    ):
        y_bad = _with_target(est, y, treatment=treatment)
        with pytest.raises((ValueError, TypeError)) as excinfo:
            _fit(clone(est), X, y_bad)
        _assert_clear_error(excinfo, match)
    # the treatment= convenience argument is validated the same way
    with pytest.raises((ValueError, TypeError)) as excinfo:
        _fit(clone(est), X, y[:, 0], treatment=np.full(len(y), 3))
    _assert_clear_error(excinfo, r"binary|0 and 1|0/1|treatment")
