"""Settings of the common scikit-learn checks for the skrobust estimators.

FAST_PARAMS
    Class name -> constructor parameters that keep the checks fast (fewer
    epochs, fewer trees). They must not change what is being checked.
EXPECTED_FAILED
    Class name -> {check name: the real reason it fails}. Keep it short.
"""

FAST_PARAMS = {
    "DROLGBMClassifier": {"n_estimators": 5, "random_state": 0},
    "DROLGBMRegressor": {"n_estimators": 5, "random_state": 0},
}

EXPECTED_FAILED = {}
