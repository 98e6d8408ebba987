"""scikit-learn's common checks on a causal target.

The shared ``tests/test_common.py`` hands every estimator a 1-d ``y`` with no
treatment, which a causal estimator must reject, so most checks are listed as
expected failures there. Here the same checks run on thin test-only adapters
whose ``fit``/``score`` attach a deterministic alternating treatment to a 1-d
``y``; everything else (validation, fitted attributes, pickling, idempotence,
subset invariance, ...) is the real estimator's code.
"""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcausal import (
    AIPW,
    IPW,
    TMLE,
    CLearner,
    PlugIn,
    TrimmingSensitivity,
    WorstCaseTreatmentEffect,
)


def _with_treatment(y, treatment):
    if y is None:
        return y, treatment
    y = np.asarray(y)
    if treatment is None and (y.ndim == 1 or y.shape[1] == 1):
        treatment = np.arange(y.shape[0]) % 2
    return y, treatment


class _AdaptMixin:
    def fit(self, X, y, treatment=None, sample_weight=None):
        y, treatment = _with_treatment(y, treatment)
        return super().fit(X, y, treatment=treatment, sample_weight=sample_weight)

    def score(self, X, y, treatment=None):
        y, treatment = _with_treatment(y, treatment)
        return super().score(X, y, treatment=treatment)


class AdaptedPlugIn(_AdaptMixin, PlugIn):
    pass


class AdaptedIPW(_AdaptMixin, IPW):
    pass


class AdaptedAIPW(_AdaptMixin, AIPW):
    pass


class AdaptedTMLE(_AdaptMixin, TMLE):
    pass


class AdaptedCLearner(_AdaptMixin, CLearner):
    pass


class AdaptedTrimmingSensitivity(_AdaptMixin, TrimmingSensitivity):
    pass


class AdaptedWorstCaseTreatmentEffect(_AdaptMixin, WorstCaseTreatmentEffect):
    pass


@parametrize_with_checks(
    [
        AdaptedPlugIn(cv=2),
        AdaptedIPW(cv=2),
        AdaptedAIPW(cv=2),
        AdaptedTMLE(cv=2),
        AdaptedCLearner(cv=2),
        AdaptedTrimmingSensitivity(cv=2, threshold=0.01, n_bootstrap=10),
        AdaptedWorstCaseTreatmentEffect(cv=2),
    ],
)
def test_checks_with_treatment(estimator, check):
    check(estimator)
