"""Settings of the common scikit-learn checks for the skbandit estimators.

FAST_PARAMS
    Class name -> constructor parameters that keep the checks fast (fewer
    epochs, fewer trees). They must not change what is being checked.
EXPECTED_FAILED
    Class name -> {check name: the real reason it fails}. Keep it short.

The common checks pass a plain 1-d ``y``, which a policy reads as
full-information feedback (see ``skbandit.BasePolicy``); they run as for any
other estimator.
"""

from skbandit import NeuralSequenceGenerator

# A multi-armed policy has no context: X with zero columns is valid input.
_NO_CONTEXT = {
    "check_estimators_empty_data_messages": (
        "multi-armed policies accept X with zero columns (no context) by design"
    ),
}

# A randomized policy draws one arm per row from a seeded stream, so the arm
# of a row depends on its position in the batch.
_RANDOMIZED = {
    "check_methods_sample_order_invariance": (
        "predict draws each row's arm from one random stream; reordering rows "
        "reassigns the draws"
    ),
    "check_methods_subset_invariance": (
        "predict draws each row's arm from one random stream; a subset "
        "receives different draws"
    ),
}

FAST_PARAMS = {}

# GenerativeThompsonSampling pretrains its generator in every fit: a tiny one
# (2 epochs on 16 simulated tasks) and a small imputed table keep checks fast.
FAST_PARAMS["GenerativeThompsonSampling"] = {
    "generator": NeuralSequenceGenerator(n_epochs=2, hidden_size=8),
    "n_pretrain_tasks": 16,
    "n_future": 5,
    "n_proba_draws": 10,
}

EXPECTED_FAILED = {
    "BernoulliThompsonSampling": {**_NO_CONTEXT, **_RANDOMIZED},
    "GaussianThompsonSampling": {**_NO_CONTEXT, **_RANDOMIZED},
    "EpsilonGreedy": {**_NO_CONTEXT, **_RANDOMIZED},
    "Uniform": {**_NO_CONTEXT, **_RANDOMIZED},
    "UCB1": {**_NO_CONTEXT},
    "LinearThompsonSampling": {**_RANDOMIZED},
    "GenerativeThompsonSampling": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the check shuffles the repeated rows, which reorders the imputed "
            "table: Monte Carlo draws differ (same distribution; the test suite "
            "checks weights == repeats in arrival order)"
        ),
    },
    "DistilledThompsonSampling": {
        **_RANDOMIZED,
        "check_sample_weight_equivalence_on_dense_data": (
            "the imitation targets are random draws of the teacher; a repeated "
            "row gets draws of its own, a weighted row does not"
        ),
    },
}
