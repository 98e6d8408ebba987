"""Regression tests of issue 14 for skcausal (zero-weight arms and folds)."""

import numpy as np
import pytest

from skcausal import (
    AIPW,
    IPW,
    TMLE,
    CLearner,
    PlugIn,
    TrimmingSensitivity,
    WorstCaseTreatmentEffect,
)
from skcausal.datasets import make_limited_overlap

ESTIMATORS = [
    PlugIn,
    IPW,
    AIPW,
    TMLE,
    CLearner,
    TrimmingSensitivity,
    WorstCaseTreatmentEffect,
]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("arm", [0, 1])
def test_zero_weight_arm_raises(cls, arm):
    # before: IPW returned NaN, CLearner raised ZeroDivisionError, the others
    # a scikit-learn error that did not name the arm
    X, y = make_limited_overlap(n_samples=120, overlap=0.1, random_state=0)
    sw = np.where(y[:, 1] == arm, 0.0, 1.0)
    with pytest.raises(ValueError, match=f"sample_weight.*treatment arm {arm}"):
        cls(cv=2).fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_zero_weight_treated_in_one_fold_raises(cls):
    X, y = make_limited_overlap(n_samples=120, overlap=0.1, random_state=0)
    fold_of = np.arange(120) % 2
    folds = [
        (np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in (0, 1)
    ]
    sw = np.where((y[:, 1] == 1) & (fold_of == 0), 0.0, 1.0)
    with pytest.raises(ValueError, match="sample_weight.*cv fold"):
        cls(cv=folds).fit(X, y, sample_weight=sw)
