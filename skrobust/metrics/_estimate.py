"""First stage of the worst-subpopulation risk: the cross-fitted conditional risk.

Shared by :func:`worst_subpopulation_risk`, :class:`WorstSubpopulationEvaluator`
and the scorer: validation of the core variables and of the frequency
weights, the scale of the losses, and :func:`_evaluate`, which cross-fits the
conditional risk (with the halves of the bias correction and the jackknife's
left-out groups) and tabulates the second stage
(:mod:`skrobust.metrics._second_stage`).
"""

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _num_samples, has_fit_parameter

from skrobust._crossfit import (
    crossfit_subsets,
    default_regressor,
    first_stage_r2,
    fit_size,
    fold_labels,
    index_dtype,
)
from skrobust.metrics._losses import LOSSES
from skrobust.metrics._names import _LEVEL, _OLD_LEVEL
from skrobust.metrics._second_stage import _curve_table
from skrobust.utils._validation import check_nonnegative_sample_weight

_COMMON_CONSTRAINTS = {
    "loss": [StrOptions(set(LOSSES)), callable],
    "regressor": [HasMethods(["fit", "predict"]), None],
    "cv": [Interval(Integral, 2, None, closed="left")],
    "n_repeats": [Interval(Integral, 1, None, closed="left")],
    "bias_correction": ["boolean"],
    "variance": [StrOptions({"influence", "jackknife"})],
    "jackknife_groups": [Interval(Integral, 2, None, closed="left")],
    "confidence_level": [_LEVEL],
    "confidence": _OLD_LEVEL,
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


def _as_core(Z, n_samples):
    if not hasattr(Z, "iloc") and np.ndim(Z) == 1:
        Z = np.asarray(Z).reshape(-1, 1)
    if np.ndim(Z) != 2:
        raise ValueError(f"Z must be 2-dimensional; got {np.ndim(Z)} dimensions.")
    if _num_samples(Z) != n_samples:
        raise ValueError(
            f"Z has {_num_samples(Z)} rows but y_true has {n_samples} samples."
        )
    return Z


def _loss_scale(losses):
    """Largest absolute loss (1 for all-zero losses).

    The first and second stages run on ``losses / scale``, in [-1, 1], and
    every output is multiplied back: the worst-case risk is positively
    homogeneous, and a first stage that works in float32 (histogram boosting)
    or has absolute tolerances then behaves the same at any scale of the
    losses (1e-150 or 1e150 included).
    """
    scale = float(np.max(np.abs(losses)))
    return scale if scale > 0 else 1.0


def _scaled(losses, scale):
    """``losses / scale``; the losses themselves (no copy) when the scale is
    1, e.g. zero-one losses (they are only read)."""
    return losses if scale == 1.0 else losses / scale


@dataclass
class _Fit:
    """What :func:`_evaluate` computes: everything in units of ``scale``."""

    scaled_losses: np.ndarray
    scale: float
    predictions: np.ndarray
    jackknife: list
    table: np.ndarray
    r2: float

    @property
    def conditional_risk(self):
        return self.predictions.mean(axis=(0, 1)) * self.scale


def _evaluate(
    losses,
    Z,
    alphas,
    regressor,
    cv,
    n_repeats,
    confidence,
    n_jobs,
    random_state,
    variance="influence",
    jackknife_groups=10,
    verbose=0,
    sample_weight=None,
    bias_correction=True,
    keep_jackknife=False,
):
    """Cross-fit the conditional risk and tabulate the debiased CVaR.

    With ``bias_correction`` each training fold is split into two random
    halves and one first stage is fitted on each. With
    ``variance="jackknife"`` the samples are also split into
    ``jackknife_groups`` random groups and the whole procedure (first stage
    included, with the same fold and half labels) is rerun without each group,
    one group at a time: each group's predictions are dropped once its
    leave-out estimate is computed, unless ``keep_jackknife`` (the evaluator,
    whose :meth:`risk_curve` reuses them).
    The default first stage is sized to the samples of one fit
    (:func:`~skrobust.metrics._crossfit.default_regressor`); a warning says
    when the cross-fitted first stage predicts the losses no better than the
    training folds' means.

    Returns a :class:`_Fit` (the table in the losses' units).
    """
    n = losses.shape[0]
    if regressor is None:
        regressor = default_regressor(fit_size(n, cv, bias_correction))
    scale = _loss_scale(losses)
    scaled = _scaled(losses, scale)
    rng = check_random_state(random_state)
    folds = fold_labels(n, cv, n_repeats, rng)
    halves = None
    if bias_correction:
        halves = np.array(
            [rng.permutation(n) % 2 for _ in range(n_repeats)], dtype=np.int8
        )
        for labels, half in zip(folds, halves, strict=True):
            # samples of each (fold, half); a training half is the other folds'
            counts = np.bincount(labels * 2 + half, minlength=2 * cv).reshape(cv, 2)
            if np.any(counts.sum(axis=0) - counts == 0):
                raise ValueError(
                    f"cv={cv} cross-fitting of n_samples={n} with "
                    "bias_correction=True leaves a training half without "
                    "samples; use more samples, a smaller cv or "
                    "bias_correction=False."
                )
    group = None
    if variance == "jackknife":
        if jackknife_groups > n:
            raise ValueError(
                f"jackknife_groups={jackknife_groups} exceeds n_samples={n}."
            )
        group = rng.permutation(n) % jackknife_groups

    def crossfit(subset):
        return crossfit_subsets(
            regressor,
            Z,
            scaled,
            folds,
            [subset],
            halves=halves,
            sample_weight=sample_weight,
            n_jobs=n_jobs,
            verbose=verbose,
        )[0]

    def leave_one_group_out():
        # one subset at a time: its predictions are dropped once its
        # leave-out estimate is computed, unless they are kept
        for g in range(jackknife_groups):
            subset = np.flatnonzero(group != g).astype(index_dtype(n))
            yield subset, crossfit(subset)

    predictions = crossfit(None)
    r2 = first_stage_r2(scaled, predictions.mean(axis=(0, 1)), folds, sample_weight)
    if r2 <= 0:
        warnings.warn(
            "the first stage explains none of the variation of the losses "
            f"given Z: its cross-fitted R^2 is {r2:.3g} (held-out squared error "
            "against that of the training folds' mean loss) at "
            f"n_samples={n}. The fitted conditional risks are then noise, the "
            "estimate is at most the mean loss plus noise (it is clipped at the "
            "mean) and its interval can miss the worst case. Use more samples, "
            "fewer core variables or a simpler regressor.",
            UserWarning,
            stacklevel=3,
        )
    jackknife = []
    if group is not None:
        jackknife = leave_one_group_out()
        if keep_jackknife:
            jackknife = list(jackknife)
    table = _curve_table(
        predictions, losses, sample_weight, alphas, confidence, jackknife, scale
    )
    if not keep_jackknife:
        jackknife = []
    return _Fit(scaled, scale, predictions, jackknife, table * scale, r2)


def _weights(sample_weight, losses, regressor):
    """Validated frequency weights, or ``None`` for unit weights."""
    if sample_weight is None:
        return None
    try:
        sample_weight = check_nonnegative_sample_weight(sample_weight, losses)
    except ValueError as exc:
        raise ValueError(f"sample_weight is invalid: {exc}") from exc
    regressor = default_regressor() if regressor is None else regressor
    if not has_fit_parameter(regressor, "sample_weight"):
        raise ValueError(
            f"sample_weight needs a regressor whose fit accepts sample_weight; "
            f"{type(regressor).__name__}.fit does not."
        )
    return sample_weight


def _select_core(X, core_features):
    if core_features is None:
        return X
    return _safe_indexing(X, core_features, axis=1)
