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

_FLAT_DUAL = (
    "the check's data are fit almost exactly (losses near 1e-12), where the "
    "chi-square dual is flat and L-BFGS stops within 1e-6 of the optimum; on "
    "noisy data weighted and repeated fits agree to 1e-15 (test_group_variance)"
)

EXPECTED_FAILED = {
    "VarianceRegularizedLinearRegression": {
        "check_sample_weight_equivalence_on_dense_data": _FLAT_DUAL,
    },
    "VarianceRegularizedLogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": _FLAT_DUAL,
    },
    "MarginalDROLogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the interior-point solve (Clarabel, default tolerances) agrees "
            "between weighted and repeated rows to about 1e-6, not the 1e-7 "
            "the check asks; the problems are the same (a repeated row is a "
            "zero-distance pair whose likelihood ratios must be equal)"
        ),
    },
}
