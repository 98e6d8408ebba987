"""scikit-learn's common estimator checks on every public estimator.

Estimators are discovered by :func:`skrobust.utils.all_estimators`, so a new
public estimator is checked without anyone listing it here. Per-package fast
parameters and expected failures (each with its reason) live in
``tests/<package>/common_config.py``.
"""

import importlib

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrobust.utils import all_estimators
from skrobust.utils._discovery import PACKAGES


def _merged_config():
    fast, failed = {}, {}
    for package in PACKAGES:
        config = importlib.import_module(f"tests.{package}.common_config")
        fast.update(config.FAST_PARAMS)
        failed.update(config.EXPECTED_FAILED)
    return fast, failed


FAST_PARAMS, EXPECTED_FAILED = _merged_config()


def _instances():
    for _, cls in all_estimators():
        yield cls(**FAST_PARAMS.get(cls.__name__, {}))


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_expected_failures_name_real_estimators():
    names = {cls.__name__ for _, cls in all_estimators()}
    unknown = set(EXPECTED_FAILED) - names
    assert not unknown, f"expected failures listed for unknown estimators: {unknown}"
    for name, checks in EXPECTED_FAILED.items():
        for check, reason in checks.items():
            assert len(reason) > 15, f"{name}.{check}: give the real reason"
