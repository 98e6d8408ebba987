"""Settings of the common scikit-learn checks for the skrobust estimators.

FAST_PARAMS
    Class name -> constructor parameters that keep the checks fast (fewer
    epochs, fewer trees). They must not change what is being checked.
EXPECTED_FAILED
    Class name -> {check name: the real reason it fails}. Keep it short.
"""

# small networks trained long enough to pass the accuracy / R^2 checks
_NN_FAST = {
    "hidden_layer_sizes": (16,),
    "max_epochs": 20,
    "lr": 0.05,
    "batch_size": 64,
}

FAST_PARAMS = {
    "DRONeuralNetClassifier": dict(_NN_FAST),
    "DRONeuralNetRegressor": dict(_NN_FAST),
    "WassersteinRobustNeuralNetClassifier": {**_NN_FAST, "inner_steps": 3},
}

_MINIBATCH_WEIGHTS = (
    "mini-batch SGD: repeated rows change the batches, so weighted and "
    "repeated fits follow different trajectories"
)

_FLOAT32_BATCHES = (
    "float32 networks: outputs depend on the batch composition at the 1e-7 "
    "level (BLAS blocking), above the check's float64 tolerance"
)

_NN_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": _MINIBATCH_WEIGHTS,
    "check_methods_subset_invariance": _FLOAT32_BATCHES,
    "check_methods_sample_order_invariance": _FLOAT32_BATCHES,
}

EXPECTED_FAILED = {
    "DRONeuralNetClassifier": dict(_NN_FAILED),
    "DRONeuralNetRegressor": dict(_NN_FAILED),
    "WassersteinRobustNeuralNetClassifier": dict(_NN_FAILED),
}
