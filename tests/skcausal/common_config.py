"""Settings of the common scikit-learn checks for the skcausal estimators.

FAST_PARAMS
    Class name -> constructor parameters that keep the checks fast (fewer
    epochs, fewer trees). They must not change what is being checked.
EXPECTED_FAILED
    Class name -> {check name: the real reason it fails}. Keep it short.

Every skcausal estimator needs the treatment, carried in a 2-column ``y``
made by ``skcausal.make_target`` (or ``fit(..., treatment=t)``). The common
checks pass a 1-d ``y`` and no treatment, which the estimators reject with a
ValueError, so every check that fits on such a ``y`` fails for that one
reason. ``tests/skcausal/test_sklearn_checks.py`` runs all of these checks on
test-only adapters that attach a treatment to ``y``; they pass there.
"""

_NEEDS_TREATMENT = (
    "the check passes a 1-d y with no treatment; a causal estimator needs the "
    "(outcome, treatment) target of make_target, and these checks pass in "
    "tests/skcausal/test_sklearn_checks.py once a treatment is attached"
)

_FITTING_CHECKS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_estimators_pickle(readonly_memmap=True)",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_sample_weights_pandas_series",
    "check_sample_weights_not_an_array",
    "check_sample_weights_list",
    "check_all_zero_sample_weights_error",
    "check_sample_weights_shape",
    "check_sample_weights_not_overwritten",
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weights_invariance(kind=ones)",
    "check_sample_weights_invariance(kind=zeros)",
)

_CAUSAL = (
    "PlugIn",
    "IPW",
    "AIPW",
    "TMLE",
    "CLearner",
    "TrimmingSensitivity",
    "WorstCaseTreatmentEffect",
)

FAST_PARAMS = {name: {"cv": 2} for name in _CAUSAL}

EXPECTED_FAILED = {
    name: dict.fromkeys(_FITTING_CHECKS, _NEEDS_TREATMENT) for name in _CAUSAL
}
