"""Settings of the common scikit-learn checks for the skrobust estimators.

FAST_PARAMS
    Class name -> constructor parameters that keep the checks fast (fewer
    epochs, fewer trees). They must not change what is being checked.
EXPECTED_FAILED
    Class name -> {check name: the real reason it fails}. Keep it short.
"""

from sklearn.dummy import DummyRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression

FAST_PARAMS = {
    # the evaluator wraps an already fitted model (frozen, so that clone keeps
    # it fitted); a fitted DummyRegressor predicts for any number of features,
    # and a linear first stage is fast
    "WorstSubpopulationEvaluator": {
        "estimator": FrozenEstimator(DummyRegressor().fit([[0.0]], [0.0])),
        "loss": "squared_error",
        "regressor": LinearRegression(),
        "cv": 2,
    },
}

_FLAT_OPTIMUM = (
    "on the check's tiny data the default chi-square robust risk (radius 1) "
    "concentrates on a few samples and is flat near its minimum, so weighted and "
    "repeated fits stop at points 1e-6 apart with equal objectives; "
    "tests/skrobust/test_linear_model.py checks weighted == repeated on a "
    "well-posed problem"
)

EXPECTED_FAILED = {
    "DROLinearRegression": {
        "check_sample_weight_equivalence_on_dense_data": _FLAT_OPTIMUM
    },
    "DROLogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": _FLAT_OPTIMUM
    },
}
