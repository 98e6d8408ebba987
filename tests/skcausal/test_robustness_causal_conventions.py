"""Conventions of the skcausal estimators (issue 15 D): confidence_level and
ConfidenceInterval, the old alpha kept one release with a FutureWarning, the
one sample-weight checker."""

import warnings

import numpy as np
import pytest
from scipy import stats

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
from skrobust.utils import ConfidenceInterval


@pytest.fixture(scope="module")
def data():
    return make_limited_overlap(n_samples=300, overlap=0.1, random_state=0)


@pytest.fixture(scope="module")
def aipw(data):
    return AIPW(random_state=0).fit(*data)


@pytest.mark.parametrize("Est", [PlugIn, IPW, AIPW, TMLE, CLearner])
def test_conf_int_is_a_confidence_interval_at_the_level(Est, data):
    est = Est(random_state=0).fit(*data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name warns about nothing
        ci = est.conf_int(confidence_level=0.9)
    assert isinstance(ci, ConfidenceInterval)
    # reference: scipy's normal quantile at (1 + 0.9) / 2
    z = stats.norm.ppf(0.95)
    assert ci.low == pytest.approx(est.estimate_ - z * est.stderr_, rel=1e-12)
    assert ci.high == pytest.approx(est.estimate_ + z * est.stderr_, rel=1e-12)
    low, high = ci  # unpacks as before
    assert (low, high) == (ci.low, ci.high)
    assert type(ci.low) is float


def test_old_alpha_keyword_warns_and_keeps_its_meaning(aipw):
    with pytest.warns(FutureWarning, match="alpha is deprecated"):
        old = aipw.conf_int(alpha=0.1)
    assert old == pytest.approx(aipw.conf_int(confidence_level=0.9), rel=1e-12)
    with pytest.warns(FutureWarning, match="alpha is deprecated"):
        table = aipw.summary(alpha=0.1)
    new = aipw.summary(confidence_level=0.9)
    np.testing.assert_allclose(table.to_numpy(), new.to_numpy(), rtol=1e-12)


def test_old_positional_alpha_warns_and_keeps_its_meaning(aipw):
    # conf_int(0.05) meant a 95% interval: a value below 0.5 keeps that
    # meaning for one release, with a warning (never a silent 5% interval)
    with pytest.warns(FutureWarning, match=r"confidence_level=0\.95"):
        old = aipw.conf_int(0.05)
    assert old == pytest.approx(aipw.conf_int(0.95), rel=1e-12)
    with pytest.warns(FutureWarning, match="old alpha"):
        table = aipw.summary(0.05)
    np.testing.assert_allclose(table.to_numpy(), aipw.summary().to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.2, np.nan, "0.9", True])
def test_bad_confidence_level_raises_naming_it(aipw, level):
    with pytest.raises(ValueError, match="confidence_level"):
        aipw.conf_int(confidence_level=level)
    with pytest.raises(ValueError, match="confidence_level"):
        aipw.summary(confidence_level=level)


def test_bad_old_alpha_raises_naming_it(aipw):
    with pytest.warns(FutureWarning):
        with pytest.raises(ValueError, match="alpha"):
            aipw.conf_int(alpha=1.5)


def test_level_near_one_is_wider(aipw):
    narrow = aipw.conf_int(confidence_level=0.5)
    wide = aipw.conf_int(confidence_level=1 - 1e-12)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert np.isfinite(wide.low) and np.isfinite(wide.high)


@pytest.mark.parametrize(
    "Est", [WorstCaseTreatmentEffect, TrimmingSensitivity], ids=["worst", "trim"]
)
def test_subclasses_keep_their_interval_without_warning(Est, data):
    est = Est(random_state=0).fit(*data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        low, high = est.conf_int()
        est.summary()
    z = stats.norm.ppf(0.975)
    assert low == pytest.approx(est.estimate_ - z * est.stderr_, rel=1e-12)
    assert high == pytest.approx(est.estimate_ + z * est.stderr_, rel=1e-12)


def test_sample_weight_checked_by_the_one_checker(data):
    X, y = data
    n = X.shape[0]
    with pytest.raises(ValueError, match="non-zero|sums to zero"):
        AIPW().fit(X, y, sample_weight=np.zeros(n))
    with pytest.raises(ValueError, match="[Nn]egative"):
        AIPW().fit(X, y, sample_weight=np.r_[-1.0, np.ones(n - 1)])
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        AIPW().fit(X, y, sample_weight=np.r_[np.nan, np.ones(n - 1)])
    w = np.ones(n, dtype=np.float32)
    w_in = w.copy()
    est = AIPW(random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, w_in)  # not modified in place
    assert est._sample_weight.dtype == np.float64
    # unit weights: the unweighted fit (same folds: no zero weights)
    ref = AIPW(random_state=0).fit(X, y)
    assert est.estimate_ == pytest.approx(ref.estimate_, rel=1e-10)


def test_old_alpha_keyword_wins_over_a_positional_value(aipw):
    # with alpha given, the positional value is not read as an alpha too
    with pytest.warns(FutureWarning) as record:
        got = aipw.conf_int(0.3, alpha=0.1)
    assert len(record) == 1 and "alpha is deprecated" in str(record[0].message)
    assert got == pytest.approx(aipw.conf_int(confidence_level=0.9), rel=1e-12)
