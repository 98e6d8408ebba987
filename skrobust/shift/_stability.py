"""Stability of a model under distribution shift: the smallest KL shift that
degrades its performance past a threshold.

Namkoong, Ma and Glynn, "Minimax optimal estimation of stability under
distribution shift" (2022).
"""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    validate_params,
)
from sklearn.utils.validation import _num_samples

from skrobust._crossfit import (
    crossfit_subsets,
    default_regressor,
    first_stage_r2,
    fit_size,
    fold_labels,
    normal_interval,
)
from skrobust.ambiguity._curves import kl_radius_at_risk
from skrobust.metrics._names import (
    _LEVEL,
    _OLD_LEVEL,
    _confidence_level,
    _deprecated_field,
)
from skrobust.utils._conventions import DEPRECATED, ConfidenceInterval
from skrobust.utils._validation import check_losses


@dataclass(frozen=True)
class StabilityResult:
    """Estimated stability of a model's performance under distribution shift.

    Returned by :func:`kl_stability`.

    Attributes
    ----------
    stability : float
        Estimated smallest KL divergence (nats) of a shifted distribution under
        which the expected loss reaches ``threshold``; ``inf`` when no
        reweighting of the observed values reaches it.
    lower, upper : float
        Two-sided normal confidence interval (``lower`` clipped at 0).
    std_error : float
        Standard error from the influence function.
    multiplier : float
        Optimal dual variable :math:`\\hat\\lambda` (the exponential tilt).
    plug_in_stability : float
        The dual plug-in value before the one-step correction of the
        conditional version (equal to ``stability`` without ``Z``).
    threshold : float
        The loss level the shift has to reach.
    confidence_level : float
        Level of the interval (``confidence`` before; the old name is an alias
        for one release, with a ``FutureWarning``).
    """

    stability: float
    lower: float
    upper: float
    std_error: float
    multiplier: float
    plug_in_stability: float
    threshold: float
    confidence_level: float

    @property
    def confidence_interval(self):
        """:class:`~skrobust.utils.ConfidenceInterval` ``(low, high)``."""
        return ConfidenceInterval(self.lower, self.upper)

    confidence = _deprecated_field("confidence", "confidence_level", "StabilityResult")


@validate_params(
    {
        "losses": ["array-like"],
        "threshold": [Real],
        "Z": ["array-like", None],
        "regressor": [HasMethods(["fit", "predict"]), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "n_repeats": [Interval(Integral, 1, None, closed="left")],
        "confidence_level": [_LEVEL],
        "confidence": _OLD_LEVEL,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def kl_stability(
    losses,
    threshold,
    *,
    Z=None,
    regressor=None,
    cv=5,
    n_repeats=1,
    confidence_level=0.95,
    n_jobs=None,
    verbose=0,
    random_state=None,
    confidence=DEPRECATED,
):
    """Smallest KL shift that raises the expected loss to ``threshold``.

    The stability of a model is how far (in KL divergence) the data
    distribution can move before its expected loss reaches a level the user
    cannot accept:

    .. math::

        I(y) = \\inf\\{ D_{KL}(Q \\| P) : E_Q[X] \\ge y \\}
             = \\sup_{\\lambda \\ge 0}\\ \\lambda y - \\log E_P e^{\\lambda X},

    with :math:`X` the per-sample loss. A larger value means a more stable
    model. With core variables ``Z``, only the distribution of ``Z`` shifts
    (the loss given ``Z`` stays put) and :math:`X` is the conditional risk
    :math:`\\mu(Z) = E[\\text{loss} \\mid Z]`, cross-fitted by ``regressor``.

    Read more in the :ref:`User Guide <shift_stability>`.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses of the model (larger is worse). For a reward, pass
        its negative and a negated threshold.
    threshold : float
        The expected loss the shift has to reach.
    Z : array-like of shape (n_samples, n_core), default=None
        Core variables whose distribution may shift. ``None`` lets the whole
        joint distribution shift.
    regressor : regressor, default=None
        First stage regressing the losses on ``Z`` (cloned for each fold);
        ``None`` uses regularized gradient boosting sized to the training
        folds (see Notes). Ignored without ``Z``.
    cv : int, default=5
        Cross-fitting folds (with ``Z``).
    n_repeats : int, default=1
        Cross-fitting splits whose conditional risks are averaged.
    confidence_level : float, default=0.95
        Level of the two-sided interval.
    n_jobs : int, default=None
        Jobs fitting the first stage in parallel (joblib).
    verbose : int, default=0
        Verbosity of the parallel fits (joblib).
    random_state : int, RandomState instance or None, default=None
        Seeds the cross-fitting splits.
    confidence : float, default="deprecated"
        Deprecated name of ``confidence_level``, kept for one release
        (setting it warns with a ``FutureWarning``).

    Returns
    -------
    result : StabilityResult
        ``stability``, ``lower``, ``upper``, ``std_error``, ``multiplier``,
        ``plug_in_stability``, ``threshold`` and ``confidence_level``;
        ``confidence_interval`` gives ``(low, high)``.

    Warns
    -----
    UserWarning
        When ``threshold`` exceeds every observed (conditional) loss: the
        estimate is then infinite. When it equals the largest one: the
        estimate is finite but ``std_error`` is NaN and ``upper`` infinite.
        With ``Z``, when the cross-fitted first stage explains none of the
        variation of the losses (its :math:`R^2` against the training folds'
        mean loss is at most 0).

    Raises
    ------
    ValueError
        With ``Z``, when ``threshold`` exceeds every cross-fitted conditional
        risk but not every loss: the first stage is then too smooth to tell
        whether a shift of ``Z`` reaches the threshold.

    See Also
    --------
    skrobust.ambiguity.KL : Worst-case expected loss over a KL ball; its
        radius at which the worst case equals ``threshold`` is the stability.
    skrobust.metrics.worst_subpopulation_risk : Worst case over
        subpopulations of a given mass.

    Notes
    -----
    The estimator is the plug-in dual
    :math:`\\hat I(y) = \\sup_{\\lambda \\ge 0} \\lambda y - \\log P_n
    e^{\\lambda X}`, solved exactly in one dimension: it is the radius at
    which the worst case of :class:`~skrobust.ambiguity.KL` reaches the
    threshold (:func:`skrobust.ambiguity._curves.kl_radius_at_risk`, Brent's
    method on the tilted mean). The optimal distribution
    is the exponential tilt :math:`q_i \\propto e^{\\hat\\lambda X_i}`, and
    the influence values are :math:`-(w_i - 1)` with :math:`w_i = n q_i`,
    which give the normal interval. With ``Z``, the plug-in value on the
    cross-fitted :math:`\\hat\\mu` receives the one-step correction
    :math:`-\\hat\\lambda \\frac1n\\sum_i w_i (\\ell_i - \\hat\\mu_i)`, and
    the influence values gain the same term.

    With ``Z``, the default first stage is sized to the training folds
    (leaves of a twentieth of their samples, clipped to [5, 100]; see
    :func:`~skrobust.metrics.worst_subpopulation_risk`). With leaves of 100
    samples at any size, it made no split below about 280 samples (cv=5), so the
    cross-fitted conditional risks were the training folds' means and any
    threshold above them gave an infinite stability (every draw at n = 100
    and 200 for 0/1 losses with error probability :math:`Z_1` and
    threshold 0.7, truth 0.253); it is now finite in every draw from
    n = 50 on. The losses are divided by their largest absolute value for
    the first stage, so its numerics do not depend on their scale.

    The normal interval needs :math:`E e^{2\\lambda^\\star X} < \\infty`. When
    this fails (large thresholds relative to a heavy right tail), the
    estimator converges more slowly than :math:`n^{-1/2}`, the phase shift
    of Namkoong, Ma and Glynn (2022): for :math:`X` exponential(1) and
    :math:`y = 2` (:math:`\\lambda^\\star = 1/2`, exactly at the boundary),
    the estimate approaches :math:`1 - \\log 2` slowly and the interval
    under-covers; see the user guide for measured figures.

    Peak memory (tracemalloc) without ``Z`` is two vectors of the sample
    size (2.0x the losses). With ``Z`` (5 columns; input: ``Z`` and the
    losses) it is 3.0x at n = 10000 and 2.1x at n = 100000 with the default
    first stage (3.8x and 3.0x before), 2.9x at both sizes with
    :class:`~sklearn.linear_model.LinearRegression` (3.1x and 3.0x before).
    Most of it is the first stage's fit on one training fold: gathering its
    rows and fitting the default boosting take 2.5x at n = 10000 (1.7x at
    n = 100000), its buffers of fixed size (histograms of 256 bins per
    feature and node) dominating at small n; ``LinearRegression`` alone
    copies the rows twice more (its centring copy and LAPACK's), 2.4x with
    the gathered rows. The early-stopping validation rows of a boosting
    first stage are passed as ``X_val`` (the split it draws itself, so the
    same model) rather than copied a second time.

    References
    ----------
    .. [1] Namkoong, H., Ma, Y. and Glynn, P. W. (2022). "Minimax optimal
       estimation of stability under distribution shift." Operations Research;
       arXiv:2212.06338.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.shift import kl_stability
    >>> # 0/1 losses with error rate 0.1: I(y) is the Bernoulli KL divergence
    >>> losses = np.r_[np.ones(100), np.zeros(900)]
    >>> result = kl_stability(losses, threshold=0.3)
    >>> exact = 0.3 * np.log(0.3 / 0.1) + 0.7 * np.log(0.7 / 0.9)
    >>> bool(np.isclose(result.stability, exact))
    True
    """
    # a copy owned here: the computation below works in place on it
    losses = check_losses(losses).copy()
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite; got {threshold}.")
    n = losses.shape[0]
    if n < 2:
        raise ValueError("kl_stability needs at least 2 samples.")
    confidence = _confidence_level("kl_stability", confidence_level, confidence)
    if Z is None:
        values = losses
    else:
        if not hasattr(Z, "iloc") and np.ndim(Z) == 1:
            Z = np.asarray(Z).reshape(-1, 1)
        if _num_samples(Z) != n:
            raise ValueError(f"Z has {_num_samples(Z)} rows but losses has {n}.")
        if regressor is None:
            regressor = default_regressor(fit_size(n, cv, halves=False))
        # the first stage sees the losses divided by the largest one; they
        # are scaled back in place once it is fitted
        scale = float(np.max(np.abs(losses))) or 1.0
        losses /= scale
        folds = fold_labels(n, cv, n_repeats, random_state)
        values = crossfit_subsets(
            regressor,
            Z,
            losses,
            folds,
            [None],
            n_jobs=n_jobs,
            verbose=verbose,
        )[0].mean(axis=(0, 1))
        r2 = first_stage_r2(losses, values, folds)
        del folds
        losses *= scale
        values *= scale
        if r2 <= 0:
            warnings.warn(
                "the first stage explains none of the variation of the losses "
                f"given Z: its cross-fitted R^2 is {r2:.3g} (held-out squared "
                "error against that of the training folds' mean loss) at "
                f"n_samples={n}. The fitted conditional risks are then noise "
                "around the mean loss and the stability estimate is unreliable. "
                "Use more samples, fewer core variables or a simpler regressor.",
                UserWarning,
                stacklevel=3,
            )
        top = float(values.max())
        if top < threshold <= float(losses.max()):
            raise ValueError(
                f"threshold={threshold} exceeds every cross-fitted conditional "
                f"risk (largest {top:.6g}) but not every loss (largest "
                f"{float(losses.max()):.6g}): the first stage, fitted on "
                f"n_samples={n}, is too smooth to tell whether a shift of Z "
                "reaches the threshold, so the stability cannot be estimated "
                "(its plug-in value would be infinite). Lower the threshold, "
                "use more samples or a more flexible regressor."
            )
    if Z is not None:
        # the residuals overwrite the losses (a copy owned here)
        residual = np.subtract(losses, values, out=losses)
    top = float(values.max())
    # the KL ball's worst case at the radius where it reaches the threshold
    # (values are ours: the solve rescales them in place); w = n q
    plug_in, lam, w = kl_radius_at_risk(
        values, threshold, overwrite=True, check_input=False, q_sum=n
    )
    if not np.isfinite(plug_in) or not np.isfinite(lam):
        if not np.isfinite(plug_in):
            warnings.warn(
                f"threshold={threshold} exceeds every observed "
                f"{'conditional risk' if Z is not None else 'loss'} "
                f"(max {top:.6g}); the estimated stability is infinite.",
                UserWarning,
                stacklevel=3,
            )
        else:
            warnings.warn(
                f"threshold={threshold} equals the largest observed "
                f"{'conditional risk' if Z is not None else 'loss'}: the "
                "stability sits on the boundary (infinite multiplier), where its "
                "influence function is undefined; std_error is NaN and the "
                "upper bound infinite.",
                UserWarning,
                stacklevel=3,
            )
        return StabilityResult(
            plug_in, plug_in, np.inf, np.nan, lam, plug_in, threshold, confidence
        )
    # influence values: -(w_i - 1), minus lambda w_i residual_i with Z; their
    # spread is that of w (+ lambda w residual), computed in place
    estimate = plug_in
    if Z is not None:
        residual *= w
        residual *= lam
        estimate = plug_in - float(residual.mean())
        w += residual
        del residual
    w -= w.mean()
    std_error = float(np.sqrt(np.dot(w, w) / (n - 1)) / np.sqrt(n))
    interval = normal_interval(estimate, std_error, confidence)
    return StabilityResult(
        stability=float(estimate),
        lower=float(max(interval.low, 0.0)),
        upper=float(interval.high),
        std_error=std_error,
        multiplier=float(lam),
        plug_in_stability=float(plug_in),
        threshold=threshold,
        confidence_level=float(confidence),
    )
