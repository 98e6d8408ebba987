"""The one cross-fitting engine (private; skcausal and skrobust.metrics use it).

Every cross-fitted estimator of the distribution (skcausal's plug-in, IPW,
AIPW, TMLE, C-Learner, trimming sensitivity and worst-case effect;
skrobust's worst-subpopulation evaluator, stability and DISDE) is built from
the pieces below. A new estimator that needs out-of-fold nuisances takes
them from here instead of writing a fold loop of its own. ``skcausal`` may
import this package; nothing here imports ``skcausal``.

Folds (``_folds.py``)
---------------------
``treatment_folds(t, cv, rng, sample_weight=None) -> list of (train, test)``
    Folds for a binary treatment ``t`` (float 0/1 array). ``cv``: None
    (5), an int (shuffled ``StratifiedKFold`` on the treatment and, with
    zero weights, on ``weight > 0``; seeded by ``rng.randint(SEED_MAX)``,
    ``rng`` a ``RandomState``), a splitter with ``split`` or an iterable of
    pairs. Checks both arms (of positive weight) in both parts of every fold
    and that the test parts partition the samples; ValueError naming ``cv``
    or ``sample_weight`` otherwise. ``train`` is ``None`` for an int ``cv``
    (the complement of ``test``: use ``train_part``).
``train_part(test, n) -> bool mask``
    The complement of ``test`` (``n`` bytes instead of ``8 n``).
``arm_rows(t, train, arm) -> int index``
    The training units (mask or indices) of one arm, in ``X[train]`` order.
``fold_labels(n_samples, cv, n_repeats, random_state) -> (n_repeats, n) labels``
    Repeated shuffled K-fold labels (``folds[r, i]`` = fold of ``i``).
``index_dtype(n)``, ``fit_size(n_samples, cv, halves)``, ``SEED_MAX``.

Nuisance fitting (``_fitting.py``)
----------------------------------
``seed_random_states(model, seed) -> clone``
    Clone with every unset nested ``random_state`` set to ``seed``.
``fit_weighted(model, X, y, sample_weight=None) -> fitted model``
    Fit with frequency weights: passed to ``fit`` (to every pipeline step
    that accepts them), else integer weights as repeated rows, else
    TypeError. ``weight_params(model)``: the fit keywords it uses.
``default_regressor(n_fit=None)``
    The regularized histogram-boosting first stage of the evaluators.
``fit_first_stage(regressor, rows_of, train, target, sample_weight=None)``
    Clone and fit on the rows ``train`` (mask or indices; ``rows_of(train)``
    returns the feature rows); a histogram-boosting model with early stopping
    gets its validation rows as ``X_val`` (one copy of the rows fewer).

The loop (``_loop.py``)
-----------------------
``map_folds(function, tasks, *, n_jobs=None, verbose=0) -> generator``
    ``function(*args)`` for each ``args`` in ``tasks`` under joblib
    (``n_jobs``; ``verbose`` is joblib's progress), results in task order,
    as a generator (stack them as they come). The only joblib loop.

Out-of-fold predictions
-----------------------
``cross_predict(model, X, target, folds, *, sample_weight=None, predict=None,
n_jobs=None, verbose=0) -> (predictions (n,), models)``
    One model per ``(train, test)`` fold (``train`` None = complement),
    e.g. the effect model of the worst-case effect on pseudo-outcomes.
``crossfit_nuisances(X, y, t, *, propensity_model, outcome_model, fitter, cv,
clip, random_state, n_jobs, verbose, sample_weight=None) -> dict``
    The treatment-effect nuisances (``_nuisance.py``): keys ``folds``,
    ``fold_results`` (per fold: ``test``, ``propensity_model``,
    ``outcome_model``, ``n_clipped``, ``n_extreme``, ``info``), ``e`` (n,)
    clipped propensities and ``n_clipped`` (when ``propensity_model``),
    ``mu`` (n, 2) outcome predictions of both arms (when ``fitter``).
    ``fitter`` is ``plain_outcome_fitter("T" | "S")`` or another outcome
    step made by ``outcome_step(fit_part, combine, *, pooled=False)`` from a
    fit of one arm's training part (the C-Learner's constrained fit sees the
    fold's held-out units); its signature is ``step(model, X_tr, y_tr, t_tr,
    X_ev, y_ev, t_ev, e_ev, sw_tr=None, sw_ev=None, train=None) -> (model
    with predict_both, info)``. ``fit_fold(...)`` is one fold
    of it (for callers that run their own tasks through ``map_folds``).
    ``predict_outcome(model, X)``, ``predict_propensity(model, X)``.
``crossfit_subsets(regressor, Z, target, folds, subsets, *, halves=None,
sample_weight=None, n_jobs=None, verbose=0) -> list of (n_repeats, n_parts, m)``
    Out-of-fold regressions on label folds (``fold_labels``), for several
    subsets of the samples at once, optionally on two disjoint halves.
``crossfit_predict(regressor, Z, target, *, cv=5, n_repeats=1, n_jobs=None,
verbose=0, random_state=None) -> (n,)``
    The same for all samples, averaged over repeats.
``first_stage_r2(target, prediction, folds, weights=None) -> float``
    Cross-fitted R^2 against the cross-fitted constant.

Influence functions (``_influence.py``)
---------------------------------------
``influence_stderr(infl, sample_weight=None, axis=None)``
    ``sqrt(sum w infl^2) / sum w``, safe at scales 1e+-150.
``normal_interval(estimate, stderr, confidence_level) -> ConfidenceInterval``
``weighted_mean(values, sample_weight)``, ``mean_and_influence(phi, sw=None,
overwrite=False) -> (means, centred phi)``.

The debiased CVaR step (``_cvar.py``)
-------------------------------------
``debiased_cvar(rank_by, values, alpha, *, sample_weight=None, tail="upper")
-> (estimate, influence, plug_in, value_at_risk, weights)``
    One level, through :class:`skrobust.ambiguity.CVaR` (its worst-case
    weights, risk and ``dual_init`` value at risk; nothing re-derived);
    ``tail="lower"`` is the worst-case (smallest) effect of
    :class:`skcausal.WorstCaseTreatmentEffect`. Many levels at once from one
    sort: the ambiguity protocol's CVaR level sums, which the
    worst-subpopulation evaluator's second stage uses.
"""

from skrobust._crossfit._cvar import debiased_cvar
from skrobust._crossfit._fitting import (
    default_regressor,
    early_stopping_split,
    fit_first_stage,
    fit_weighted,
    own_parameters,
    seed_random_states,
    weight_params,
)
from skrobust._crossfit._folds import (
    SEED_MAX,
    arm_rows,
    fit_size,
    fold_labels,
    index_dtype,
    train_part,
    treatment_folds,
)
from skrobust._crossfit._influence import (
    influence_stderr,
    mean_and_influence,
    normal_interval,
    weighted_mean,
)
from skrobust._crossfit._loop import map_folds
from skrobust._crossfit._nuisance import (
    SingleModel,
    TwoModels,
    crossfit_nuisances,
    fit_fold,
    outcome_step,
    plain_outcome_fitter,
    predict_outcome,
    predict_propensity,
)
from skrobust._crossfit._regression import (
    cross_predict,
    crossfit_predict,
    crossfit_subsets,
    first_stage_r2,
)

__all__ = [
    "SEED_MAX",
    "SingleModel",
    "TwoModels",
    "arm_rows",
    "cross_predict",
    "crossfit_nuisances",
    "crossfit_predict",
    "crossfit_subsets",
    "debiased_cvar",
    "default_regressor",
    "early_stopping_split",
    "fit_first_stage",
    "fit_fold",
    "fit_size",
    "fit_weighted",
    "first_stage_r2",
    "fold_labels",
    "index_dtype",
    "influence_stderr",
    "map_folds",
    "mean_and_influence",
    "normal_interval",
    "outcome_step",
    "own_parameters",
    "plain_outcome_fitter",
    "predict_outcome",
    "predict_propensity",
    "seed_random_states",
    "train_part",
    "treatment_folds",
    "weight_params",
    "weighted_mean",
]
