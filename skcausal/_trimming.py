"""Trimming sensitivity under limited overlap (Ma and Namkoong)."""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import optimize, stats
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skcausal._base import _BaseCausalEstimator, _check_alpha, _influence_stderr
from skcausal._crossfit import (
    _fit_fold,
    _seed_random_states,
    _train_part,
)
from skcausal._estimators import _aipw_pseudo_outcomes

# the breakdown search gives up (inf) beyond this many outcome-scale units
_L_MAX = 1e12
# distances are computed in blocks of at most this many (outside, anchor) pairs
_CHUNK_PAIRS = 2**21
# and of at least this many in all (smaller blocks cost more in numpy calls)
_MIN_PAIRS = 2**14
# geometric bisection steps for the smallest consistent Lipschitz constant
_CROSSING_STEPS = 40


def _outcome_unit(values):
    """``max |values|`` (1 when all are zero): the unit of the outcome.

    It scales exactly with the outcome (the rounding of ``c * y`` is
    monotone, so ``max |c y|`` is the rounded ``c max |y|``), so every
    quantity computed in this unit and multiplied back by it is equivariant
    to rounding: a fixed sequence of trial Lipschitz constants, bisection
    brackets and float32 draws in this unit are the same at any scale.
    """
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if not top > 0 or not np.isfinite(top):
        return 1.0
    return top


def _check_lipschitz(lipschitz):
    arr = np.asarray(lipschitz, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"lipschitz must be a finite number or 1-d array; got {lipschitz!r}."
        )
    if np.any(arr < 0):
        raise ValueError(f"lipschitz must be >= 0; got {lipschitz!r}.")
    return arr


def _block_rows(n_anchors, temps, budget):
    """Rows per distance block of ``n_anchors`` columns.

    A block holds ``temps`` float64 arrays of ``rows x n_anchors`` (the
    distances and its caller's work arrays); together they take at most
    ``budget`` pairs (and at most ``_CHUNK_PAIRS`` each), so the distances
    never take more than ``8 * budget`` bytes at a time.
    """
    pairs = min(_CHUNK_PAIRS, max(1, budget // max(1, temps)))
    return max(1, pairs // max(1, n_anchors))


def _pair_budget(n_samples, n_features):
    """Pairs of distance blocks: an eighth of the fit's input (X, y, t)."""
    return max(_MIN_PAIRS, n_samples * (n_features + 2) // 8)


def _distance_blocks(rows, anchors, temps=3, budget=_MIN_PAIRS):
    """Yield ``(start, distances)`` blocks of the rows-by-anchors distances.

    Each block is a fresh array that the caller may overwrite; ``temps``
    counts the block's arrays alive at once (three while it is computed).
    """
    step = _block_rows(anchors.shape[0], max(3, temps), budget)
    anchor_sq = np.einsum("ij,ij->i", anchors, anchors)
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        sq = np.add(np.einsum("ij,ij->i", block, block)[:, None], anchor_sq)
        gram = block @ anchors.T
        gram *= 2.0
        sq -= gram
        del gram
        np.maximum(sq, 0.0, out=sq)
        yield start, np.sqrt(sq, out=sq)


def _hull_walk(dist, values, gain, run):
    """Anchors that attain ``max_j values_j - L dist_ij`` for some ``L >= 0``.

    ``values`` must be sorted in increasing order (and ``dist``'s columns
    with them). For each row, the maximizers over ``L >= 0`` are the
    vertices of the upper convex hull of the points ``(dist_ij, values_j)``
    to the left of the highest value: the walk starts at the nearest anchor
    (the maximizer as ``L`` grows without bound; the highest value among
    equally near ones) and moves, as ``L`` decreases, to the anchor whose
    line overtakes the current one first (the largest slope ``(values_j -
    values_c) / (dist_ij - dist_ic)``; the farthest of those tied), until no
    anchor has a higher value. Only anchors of higher value than the current
    ones can come next, so each step works on the columns past the lowest
    current one. ``gain`` and ``run`` are work arrays of ``dist``'s shape.
    Each step is vectorized over the block's rows; the loop runs over hull
    vertices (a few per row), not over units. Returns the column indices of
    the vertices met and each row's nearest distance.
    """
    index = np.arange(dist.shape[0])
    nearest = dist.min(axis=1)
    gain[...] = -np.inf
    np.copyto(gain, np.broadcast_to(values, gain.shape), where=dist == nearest[:, None])
    current = np.argmax(gain, axis=1)
    active = np.ones(dist.shape[0], dtype=bool)
    met = [current]
    while True:
        start = int(current[active].min()) + 1
        if start >= values.size:
            return np.concatenate(met), nearest
        g, r, d = gain[:, start:], run[:, start:], dist[:, start:]
        np.subtract(values[start:], values[current][:, None], out=g)
        np.subtract(d, dist[index, current][:, None], out=r)
        ahead = (g > 0) & (r > 0)
        np.divide(g, r, out=g, where=ahead)
        np.copyto(g, -np.inf, where=~ahead)
        del ahead
        best = g.max(axis=1)
        active &= best > -np.inf
        if not np.any(active):
            return np.concatenate(met), nearest
        np.copyto(r, -np.inf, where=g != best[:, None])
        current = np.where(active, start + np.argmax(r, axis=1), current)
        met.append(current[active])


def _active_anchors(rows, anchors, low_values, high_values, budget=_MIN_PAIRS):
    """Anchors that can be active in either extension, and nearest distances.

    Returns a boolean mask over ``anchors``: every anchor that attains the
    lower extension ``max_j low_j - L d(x, x_j)`` or the upper extension
    ``min_j high_j + L d(x, x_j)`` at some row ``x`` for some ``L >= 0``
    (ties to rounding may be represented by one of the tied anchors), and
    each row's distance to its nearest anchor. Both extensions, their
    crossing and the anchors they are linearized at are then the same over
    this subset as over all anchors, at every ``L``.
    """
    mark = np.zeros(anchors.shape[0], dtype=bool)
    nearest = np.empty(rows.shape[0])
    orders = [
        (np.argsort(low_values, kind="stable"), low_values),
        (np.argsort(-high_values, kind="stable"), -high_values),
    ]
    orders = [(order, values[order]) for order, values in orders]
    for start, dist in _distance_blocks(rows, anchors, 5, budget):
        gain, run = np.empty_like(dist), np.empty_like(dist)
        for order, values in orders:
            met, near = _hull_walk(dist[:, order], values, gain, run)
            mark[order[met]] = True
        nearest[start : start + dist.shape[0]] = near
    return mark, nearest


def _block_extension(dist, low_values, high_values, lipschitz, cand, with_args):
    """Lower / upper extensions of one block; ``dist`` is left unchanged."""
    index = np.arange(dist.shape[0])
    np.multiply(dist, lipschitz[:, None], out=cand)
    np.subtract(low_values, cand, out=cand)
    arg_lower = np.argmax(cand, axis=1)
    lower = cand[index, arg_lower]
    np.multiply(dist, lipschitz[:, None], out=cand)
    np.add(high_values, cand, out=cand)
    arg_upper = np.argmin(cand, axis=1)
    upper = cand[index, arg_upper]
    if with_args:
        return lower, upper, arg_lower, arg_upper
    return lower, upper


def _extension(rows, anchors, values, lipschitz, margin=0.0, budget=_MIN_PAIRS):
    """McShane-Whitney lower and upper Lipschitz extensions at ``rows``.

    ``lipschitz`` holds one constant per row. Returns the lower extension
    ``max_j (values_j - margin_j) - L d(x, x_j)``, the upper extension
    ``min_j (values_j + margin_j) + L d(x, x_j)`` and their arg-max / arg-min
    anchors.
    """
    low_values, high_values = values - margin, values + margin
    n = rows.shape[0]
    lower, upper = np.empty(n), np.empty(n)
    arg_lower, arg_upper = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        part = slice(start, start + dist.shape[0])
        lower[part], upper[part], arg_lower[part], arg_upper[part] = _block_extension(
            dist,
            low_values,
            high_values,
            lipschitz[part],
            np.empty_like(dist),
            True,
        )
    return lower, upper, arg_lower, arg_upper


def _crossing(rows, anchors, values, margin=0.0, budget=_MIN_PAIRS):
    """Smallest L at which each row's extension bracket is nonempty.

    Below it the anchors' values are not L-Lipschitz around the row; the
    bracket is then collapsed to the midpoint at the crossing. Returns the
    crossing constant, that midpoint, the two anchors that attain it and
    each row's distance to its nearest anchor. Each row's bisection is its
    own, so it runs block by block on distances computed once per block.
    """
    n = rows.shape[0]
    spread = float(values.max() - values.min())
    low_values, high_values = values - margin, values + margin
    nearest = np.full(n, np.inf)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        nearest[start : start + dist.shape[0]] = dist.min(axis=1)
    scale = max(float(np.median(nearest)), 1e-12)
    crossing = np.empty(n)
    point = np.empty(n)
    arg_lower, arg_upper = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        part = slice(start, start + dist.shape[0])
        cand = np.empty_like(dist)
        hi = np.maximum(
            spread / (2.0 * np.maximum(nearest[part], 1e-9 * scale)) + 1e-300,
            np.finfo(np.float64).tiny,
        )
        lower, upper = _block_extension(
            dist, low_values, high_values, np.zeros(hi.size), cand, False
        )
        done = lower <= upper
        log_hi = np.log(hi)
        log_lo = log_hi - np.log(1e12)
        for _ in range(_CROSSING_STEPS):
            mid = 0.5 * (log_lo + log_hi)
            lower, upper = _block_extension(
                dist, low_values, high_values, np.exp(mid), cand, False
            )
            ok = lower <= upper
            log_hi = np.where(ok, mid, log_hi)
            log_lo = np.where(ok, log_lo, mid)
        crossing[part] = np.where(done, 0.0, np.exp(log_hi))
        lower, upper, arg_lower[part], arg_upper[part] = _block_extension(
            dist, low_values, high_values, crossing[part], cand, True
        )
        point[part] = 0.5 * (lower + upper)
    return crossing, point, arg_lower, arg_upper, nearest


def _imbens_manski(lower, upper, se_lower, se_upper, alpha):
    """Imbens-Manski interval covering a point in ``[lower, upper]``.

    The critical value ``c`` solves ``Phi(c + width / se) - Phi(-c) = 1 -
    alpha`` with ``se`` the larger endpoint standard error: two-sided
    ``z_{1 - alpha/2}`` for a point, one-sided ``z_{1 - alpha}`` for a wide
    identified set.
    """
    se = max(se_lower, se_upper)
    if se <= 0:
        return lower, upper
    width = max(upper - lower, 0.0)
    z_one, z_two = stats.norm.ppf(1 - alpha), stats.norm.ppf(1 - alpha / 2)

    def gap(c):
        return stats.norm.cdf(c + width / se) - stats.norm.cdf(-c) - (1 - alpha)

    crit = z_one if gap(z_one) >= 0 else optimize.brentq(gap, z_one, z_two)
    return lower - crit * se_lower, upper + crit * se_upper


def _strata_order(strata):
    """Units grouped by stratum, for :func:`_stratified_counts`.

    Returns the units sorted by stratum (stably, so each stratum's units are
    in increasing order) as int32 and the sizes of the strata; units of a
    negative stratum (weight zero, i.e. absent) come first and are never
    drawn.
    """
    order = np.argsort(strata, kind="stable").astype(np.int32)
    values, sizes = np.unique(strata, return_counts=True)
    return order, sizes, values < 0


def _stratified_counts(grouping, rng):
    """Bootstrap counts that resample units within each stratum.

    ``grouping`` is :func:`_strata_order`'s output. Units of a negative
    stratum (weight zero, i.e. absent) are never drawn.
    """
    order, sizes, absent = grouping
    counts = np.zeros(order.shape[0])
    start = 0
    for size, skip in zip(sizes, absent, strict=True):
        if not skip:
            counts[order[start : start + size]] = rng.multinomial(
                size, np.full(size, 1.0 / size)
            )
        start += size
    return counts


def _refit_nuisances(fitter, model, propensity, clip, X, y, t, folds, weights):
    """Cross-fitted nuisance predictions with the rows weighted by ``weights``.

    ``folds`` holds the held-out parts; each training part is their
    complement. Returns the outcome predictions (n, 2) and the propensities
    (n,), fold by fold through the cross-fitting engine's ``_fit_fold``.
    """
    n = X.shape[0]
    mu = np.empty((n, 2))
    e = np.empty(n)
    for test in folds:
        train = _train_part(test, n)
        fold = _fit_fold(X, y, t, weights, train, test, propensity, model, fitter, clip)
        mu[test], e[test] = fold["mu"], fold["e"]
        # the fold's models (and their buffers) go before the next fold's fit
        del fold, train
    return mu, e


def _bootstrap_draw(refit, weights, masks, mu_inside, threshold, total):
    """Refit one bootstrap draw and reduce it to what the bounds need.

    ``masks`` holds the fixed overlap region and the units below and above
    it. Returns the weighted mean of the identified pseudo-outcomes, the
    change of the outcome predictions at the overlap units (n_inside, 2) and
    the trimmed estimate with the overlap region re-chosen by this draw's
    propensities (the region itself is estimated).
    """
    fitter, model, propensity, clip, X, y, t, folds = refit
    inside, low, high = masks
    mu_b, e_b = _refit_nuisances(
        fitter, model, propensity, clip, X, y, t, folds, weights
    )
    phi = _aipw_pseudo_outcomes(y, t, e_b, mu_b)
    effect = phi[:, 1] - phi[:, 0]
    region = weights * ((e_b >= threshold) & (e_b <= 1 - threshold))
    del e_b
    trimmed = region @ effect / max(region.sum(), 1e-300)
    effect[low] = -phi[low, 0]
    effect[high] = phi[high, 1]
    del phi
    return weights @ effect / total, mu_b[inside] - mu_inside, trimmed


def _refit_outcomes(fitter, model, X, y, t, folds, weights, keep):
    """The outcome predictions of one draw at the ``keep`` units, (keep, 2).

    The outcome models are refit on each fold's training part with the
    draw's ``weights`` (the same fits as in :func:`_bootstrap_draw`) and
    predict only at the kept units of the held-out part.
    """
    out = np.empty((keep.size, 2))
    for test in folds:
        rows = np.flatnonzero(np.isin(keep, test))
        if rows.size == 0:
            continue
        train = _train_part(test, X.shape[0])
        at = keep[rows]
        # the fitter indexes each arm's training rows once (train=)
        outcome, _ = fitter(
            model,
            X,
            y,
            t,
            X[at],
            y[at],
            t[at],
            None,
            sw_tr=weights,
            sw_ev=weights[at],
            train=train,
        )
        out[rows] = outcome.predict_both(X[at])
        del outcome, train
    return out


class TrimmingSensitivity(_BaseCausalEstimator):
    """Trimmed AIPW with worst-case bounds on the bias that trimming causes.

    Units whose estimated propensity lies outside the overlap region
    :math:`\\mathcal O = \\{\\epsilon \\le \\hat e(x) \\le 1 - \\epsilon\\}` lack
    comparable units in one arm. The estimator reports the AIPW effect on
    :math:`\\mathcal O`, and, for the full-population average treatment
    effect, bounds and a bias-aware confidence interval valid when both
    outcome functions are :math:`L`-Lipschitz in the Euclidean distance of the
    (standardized) covariates. At a unit outside :math:`\\mathcal O` the
    missing arm's mean is bracketed by the lower and upper Lipschitz
    (McShane-Whitney) extensions of the outcome model from all overlap
    units; the bracket's half-width averages to the worst-case bias bound
    :math:`B(L)`. The breakdown value :math:`L^\\star` is the smallest
    :math:`L` at which the interval contains zero.

    Read more in the :ref:`User Guide <overlap>`.

    Parameters
    ----------
    outcome_model : regressor or classifier, default=None
        Model of :math:`E[Y | X, A]`, cloned per fold and arm. ``None`` means
        :class:`~sklearn.linear_model.LinearRegression`.
    propensity_model : classifier, default=None
        Model of :math:`P(A = 1 | X)` with ``predict_proba``. ``None`` means
        :class:`~sklearn.linear_model.LogisticRegression`.
    threshold : float in (0, 0.5), default=0.1
        Trimming level :math:`\\epsilon`.
    extension : {"lipschitz", "knn"}, default="lipschitz"
        ``"lipschitz"``: the exact lower/upper Lipschitz extensions of the
        cross-fitted outcome model from every overlap unit, with standard
        errors from a bootstrap that refits the outcome models.
        ``"knn"``: the average AIPW pseudo-outcome of the ``n_neighbors``
        nearest overlap units, bracketed by :math:`L` times their mean
        distance, with a matching-style influence function and Armstrong
        and Kolesar's bias-aware critical value (cheaper, no refits, a wider
        bound, and a standard error that can be too small when a few
        boundary units are reused by many outside units).
    n_neighbors : int, default=40
        Number :math:`K` of nearest overlap units of ``extension="knn"``.
    n_bootstrap : int, default=100
        Bootstrap draws of ``extension="lipschitz"``: units are resampled
        within each (fold, arm) cell and the propensity and outcome models
        refit on the training folds (the overlap region is held fixed).
    anchor_margin : float, default=1.0
        With ``extension="lipschitz"``, each overlap unit's outcome
        prediction enters the extensions as the band ``mu_hat -/+
        anchor_margin`` times its bootstrap standard error, so that the
        noise of the fitted model does not narrow the brackets (the max of
        noisy values is biased upwards); ``0`` uses the predictions as they
        are.
    scale : bool, default=True
        Standardize the covariates before measuring distances; the Lipschitz
        constant is then per standard deviation.
    alpha : float in (0, 1), default=0.05
        One minus the confidence level used for ``breakdown_lipschitz_``.
    learner : {"T", "S"}, default="T"
        One outcome model per arm, or one with the treatment as a feature.
    clip : float in [0, 0.5), default=1e-3
        Estimated propensities are clipped into ``[clip, 1 - clip]`` with a
        warning; ``clip=0`` raises on a propensity of exactly 0 or 1.
    cv : int, cross-validation generator or iterable, default=5
        Cross-fitting folds (stratified on the treatment, seeded by
        ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, the bootstrap and every unset ``random_state`` of
        the nuisances.
    n_jobs : int, default=None
        Folds and bootstrap draws fit in parallel with joblib.
    verbose : int, default=0
        Progress messages of the joblib loops.

    Attributes
    ----------
    estimate_ : float
        AIPW estimate of the effect on the *estimated* overlap region,
        the mean of :math:`\\hat\\varphi^{(1)}_i - \\hat\\varphi^{(0)}_i` over
        the units with :math:`\\epsilon \\le \\hat e(X_i) \\le 1 - \\epsilon`
        (out-of-fold :math:`\\hat e`).
    stderr_ : float
        Its standard error, from the influence function with the estimated
        region and the cross-fitted nuisances held fixed: it omits the
        variability of the region and the nuisances' estimation error (see
        Notes).
    bootstrap_stderr_ : float or None
        Standard error of ``estimate_`` over the ``n_bootstrap`` draws of
        ``extension="lipschitz"``, each of which refits the nuisances and
        re-chooses the overlap region from its own propensities, so it
        includes the region's variability; ``None`` with ``extension="knn"``.
    influence_function_ : ndarray of shape (n_samples,)
        Influence function of ``estimate_`` (zero outside the overlap region).
    potential_outcome_means_ : ndarray of shape (2,)
        AIPW estimates of :math:`E[Y(a) | X \\in \\mathcal O]`.
    potential_outcome_stderr_ : ndarray of shape (2,)
        Their standard errors.
    potential_outcome_influence_ : ndarray of shape (n_samples, 2)
        Their influence functions.
    overlap_mask_ : ndarray of shape (n_samples,) of bool
        Units inside the overlap region.
    overlap_fraction_ : float
        Fraction of units inside the overlap region.
    extrapolation_distance_ : ndarray of shape (n_samples,)
        Distance from each unit to its nearest overlap unit (zero inside).
    breakdown_lipschitz_ : float
        Smallest :math:`L` at which the bias-aware ``1 - alpha`` interval of
        the full-population effect contains zero (``0`` if it already does at
        ``L = 0``; ``inf`` if it never does).
    propensity_ : ndarray of shape (n_samples,)
        Out-of-fold (clipped) propensities.
    outcome_predictions_ : ndarray of shape (n_samples, 2)
        Out-of-fold predictions of both potential outcomes.
    propensity_models_ : list of estimators
        The propensity model fitted on each fold's training part.
    fold_indices_ : list of ndarray
        Held-out indices of each fold.
    diagnostics_ : dict
        As :class:`AIPW`, plus ``n_trimmed``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string names).

    See Also
    --------
    AIPW : The untrimmed estimator.

    Notes
    -----
    Write :math:`\\hat\\varphi^{(a)}_i` for the AIPW pseudo-outcomes and
    :math:`\\hat\\mu_a` for the cross-fitted outcome model. For a unit with
    :math:`\\hat e(X_i) < \\epsilon` the treated mean lies in
    :math:`[\\ell_i(L), u_i(L)]` with

    .. math::

        \\ell_i(L) = \\max_{j \\in \\mathcal O} \\hat\\mu_1(X_j) - L\\,d(X_i,
        X_j), \\qquad
        u_i(L) = \\min_{j \\in \\mathcal O} \\hat\\mu_1(X_j) + L\\,d(X_i, X_j),

    the McShane-Whitney extensions (with ``anchor_margin`` :math:`\\kappa > 0`
    each :math:`\\hat\\mu_1(X_j)` is first lowered, respectively raised, by
    :math:`\\kappa` bootstrap standard errors); it contributes :math:`[\\ell_i, u_i] -
    \\hat\\varphi^{(0)}_i` (units with :math:`\\hat e > 1 - \\epsilon` are
    symmetric, units in :math:`\\mathcal O` contribute
    :math:`\\hat\\varphi^{(1)}_i - \\hat\\varphi^{(0)}_i`). Averaging gives
    bounds :math:`[\\hat\\theta_-(L), \\hat\\theta_+(L)]`; ``estimate`` is
    their midpoint and :math:`B(L)` their half-width. Where
    :math:`\\ell_i > u_i` (the fitted model is not :math:`L`-Lipschitz
    around unit :math:`i`) the bracket is the point where the two
    extensions meet. The standard errors of the two bounds come from the
    bootstrap, linearized at the extensions' active anchors, so they include
    the estimation error of :math:`\\hat\\mu_a` at those anchors; the
    interval is Imbens and Manski's :math:`[\\hat\\theta_- - c\\,
    \\hat\\sigma_-, \\hat\\theta_+ + c\\,\\hat\\sigma_+]` with
    :math:`\\Phi(c + 2B/\\max\\hat\\sigma) - \\Phi(-c) = 1 - \\alpha`.
    Only the overlap units that some outside unit's extension uses at some
    :math:`L \\ge 0` (the vertices of the convex hulls, per outside unit, of
    the points :math:`(d(X_i, X_j), \\hat\\mu(X_j) \\mp \\kappa\\,\\mathrm{se}_j)`) are
    kept as anchors: both extensions equal those over every overlap unit at
    every :math:`L`. Cost: :math:`O(n_{out}\\, n_{in})` to find them, then
    :math:`O(n_{out}\\, n_{anchors})` per :math:`L`, in distance blocks of
    about an eighth of the input's memory. The fit keeps each bootstrap
    draw's change of the outcome predictions at those anchors only (float32,
    :math:`4\\, n_{bootstrap}\\, n_{anchors}` bytes: on
    ``make_limited_overlap`` a fifth of the overlap units with 2 covariates,
    nine tenths with 5), and replays the draws' counts from the random
    stream instead of storing them; the outcome models are therefore refit
    twice per draw (once for the margins, once for the kept anchors).

    ``conf_int()`` (no ``lipschitz``) is the normal interval
    ``estimate_ -/+ z stderr_``. Its target is the effect on the region
    selected by the estimated propensity, and ``stderr_`` treats that region
    as fixed. It is close to nominal when :math:`\\hat e` is accurate near
    :math:`\\epsilon`, and it undercovers when the propensity is flat near
    :math:`\\epsilon` (the region then swings with the fit and takes in
    units whose true propensity is far below :math:`\\epsilon`). On
    ``make_limited_overlap(1000)`` the coverage of the sample effect over the
    estimated region was 0.90 to 0.92 with the default models, and with
    spline nuisances it was 0.92 at ``threshold=0.1`` and 0.81 at
    ``threshold=0.05``, where ``stderr_`` averaged 0.107 against a spread of
    0.153 (:ref:`User Guide <overlap_interval>`). ``bootstrap_stderr_``
    re-estimates the region in every draw. In the same design (100 draws,
    ``n_bootstrap=30``) it averaged 0.170 against a spread of 0.185 around
    the true region's effect and covered it in 0.90 of the draws, where
    ``stderr_`` covered it in 0.73 (default models, ``threshold=0.1``: 0.95
    and 0.92).

    References
    ----------
    .. [1] Ma, Y. and Namkoong, H. "A Sensitivity Approach to Causal
       Inference Under Limited Overlap."
    .. [2] McShane, E. J. (1934). "Extension of range of functions." Bulletin
       of the AMS 40(12).
    .. [3] Imbens, G. W. and Manski, C. F. (2004). "Confidence intervals for
       partially identified parameters." Econometrica 72(6).

    Examples
    --------
    >>> from skcausal import TrimmingSensitivity
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=500, random_state=0)
    >>> est = TrimmingSensitivity(threshold=0.05, n_bootstrap=20,
    ...                           random_state=0).fit(X, y)
    >>> lower, upper = est.conf_int(lipschitz=1.0)
    >>> bool(lower < upper)
    True
    >>> est.breakdown_lipschitz_ > 0
    True
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "threshold": [Interval(Real, 0, 0.5, closed="neither")],
        "extension": [StrOptions({"lipschitz", "knn"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_bootstrap": [Interval(Integral, 2, None, closed="left")],
        "anchor_margin": [Interval(Real, 0, None, closed="left")],
        "scale": ["boolean"],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        threshold=0.1,
        extension="lipschitz",
        n_neighbors=40,
        n_bootstrap=100,
        anchor_margin=1.0,
        scale=True,
        alpha=0.05,
        learner="T",
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.threshold = threshold
        self.extension = extension
        self.n_neighbors = n_neighbors
        self.n_bootstrap = n_bootstrap
        self.anchor_margin = anchor_margin
        self.scale = scale
        self.alpha = alpha
        self.learner = learner
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, treatment=None, sample_weight=None):
        """Cross-fit the nuisances, trim, and prepare the Lipschitz extensions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        y : array-like of shape (n_samples, 2) or (n_samples,)
            Target made by :func:`make_target`, or the outcome with
            ``treatment``.
        treatment : array-like of shape (n_samples,), default=None
            Binary treatment when ``y`` is the 1-d outcome.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the units, passed to the nuisance models
            that accept them and used in every average.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        super().fit(X, y, treatment, sample_weight=sample_weight)
        X = validate_data(self, X, reset=False)
        sw = self._sample_weight
        if sw is None:
            sw = self._sample_weight = np.ones(X.shape[0])
        if self.scale:
            mean = np.average(X, axis=0, weights=sw)
            Z = X - mean
            sd = np.sqrt(np.einsum("i,ij,ij->j", sw, Z, Z) / sw.sum())
            sd[sd == 0] = 1.0
            Z /= sd
        else:
            Z = X
        e = self.propensity_
        groups = (
            (np.flatnonzero(e < self.threshold), 1),
            (np.flatnonzero(e > 1 - self.threshold), 0),
        )
        distance = np.zeros(len(e))
        self._extensions = []
        self.bootstrap_stderr_ = None
        if self.extension == "knn":
            self._knn = self._knn_fit(Z, groups, distance)
            del self._phi
        else:
            # the standardized covariates of the anchors and of the outside
            # units are all that is kept of them
            anchors = Z[self.overlap_mask_]
            group_Z = [Z[rows] for rows, _ in groups]
            del Z
            self._lipschitz_fit(X, anchors, group_Z, groups, distance)
        del self._fit_data
        self.extrapolation_distance_ = distance
        self.breakdown_lipschitz_ = self._breakdown(float(self.alpha))
        return self

    def _lipschitz_fit(self, X, anchors, group_Z, groups, distance):
        """Bootstrap, active anchors and crossings of the Lipschitz extensions.

        Only the anchors that some outside unit's extension can use at some
        L (:func:`_active_anchors`) are kept, with their bootstrap
        deviations: every later L is evaluated on them alone.
        """
        inside = self.overlap_mask_
        outside = np.flatnonzero(~inside)
        self._pairs = _pair_budget(*X.shape)
        rng = check_random_state(self.random_state)
        # each anchor's value is known up to anchor_margin bootstrap
        # standard errors: the extensions start from that band
        margin = float(self.anchor_margin) * self._bootstrap(X, inside, rng)
        mu = self.outcome_predictions_
        used = np.zeros(anchors.shape[0], dtype=bool)
        for (rows, arm), Z_rows in zip(groups, group_Z, strict=True):
            if rows.size == 0:
                continue
            values = mu[inside, arm]
            mark, nearest = _active_anchors(
                Z_rows,
                anchors,
                values - margin[:, arm],
                values + margin[:, arm],
                self._pairs,
            )
            distance[rows] = nearest
            slots = np.flatnonzero(mark)
            used[slots] = True
            # the bisection runs in outcome units: the same steps at any scale
            unit = self._outcome_scale
            crossing, point, j0, k0, _ = _crossing(
                Z_rows,
                anchors[slots],
                values[slots] / unit,
                margin[slots, arm] / unit,
                self._pairs,
            )
            crossing *= unit
            point *= unit
            self._extensions.append(
                {
                    "rows": rows,
                    "arm": arm,
                    "Z": Z_rows,
                    "anchors": anchors[slots],
                    "values": values[slots],
                    "margin": margin[slots, arm],
                    "slots": slots,
                    "crossing": crossing,
                    "point": point,
                    "anchors0": (j0, k0),
                    "outside": np.searchsorted(outside, rows),
                }
            )
        keep = np.flatnonzero(used)
        targets = [
            (np.searchsorted(keep, ext["slots"]), ext["arm"])
            for ext in self._extensions
        ]
        deviations = self._bootstrap_deviation(
            X, np.flatnonzero(inside)[keep], mu[inside][keep], targets
        )
        for ext, deviation in zip(self._extensions, deviations, strict=True):
            # the draws' changes at this extension's anchors, for its arm
            ext["deviation"] = deviation
            del ext["slots"]
        self._boot["outside"] = outside

    def _knn_fit(self, Z, groups, distance):
        """Nearest-overlap-unit matching of the outside units, done once.

        An outside unit's missing-arm mean is the average of the AIPW
        pseudo-outcomes of its nearest overlap units; each pseudo-outcome is
        credited to its overlap unit in the influence function (as for
        matching estimators), so the variance is that of a linear statistic.
        None of it depends on L: the half-width of an outside unit's bracket
        is L times its mean distance to those units. Returns the estimate,
        its influence function and the mean distances (zero inside); fills
        ``distance`` with the distance to the nearest overlap unit.
        """
        phi, sw = self._phi, self._sample_weight
        inside = self.overlap_mask_
        inside_idx = np.flatnonzero(inside)
        n = phi.shape[0]
        k = min(int(self.n_neighbors), inside_idx.size)
        nn = NearestNeighbors(n_neighbors=k).fit(Z[inside])
        own = phi[:, 1] - phi[:, 0]
        mean_distance = np.zeros(n)
        credit = np.zeros(n)
        # the (rows, k) neighbour arrays are made a block of rows at a time,
        # each about an eighth of n
        step = max(16, n // (8 * k))
        for rows, arm in groups:
            sign = 1.0 if arm == 1 else -1.0
            own[rows] = -phi[rows, 0] if arm == 1 else phi[rows, 1]
            for start in range(0, rows.size, step):
                part = rows[start : start + step]
                dist, ind = nn.kneighbors(Z[part])
                distance[part] = dist[:, 0]
                mean_distance[part] = dist.mean(axis=1)
                neighbors = inside_idx[ind].ravel()
                reused = np.repeat(sw[part], k) * phi[neighbors, arm]
                np.add.at(credit, neighbors, sign * reused / k)
        # unit contributions, each weighted unit scaled back to one unit
        # (in place: credit / sw, plus own, then centred)
        total = np.divide(credit, sw, out=np.zeros(n), where=sw > 0)
        del credit
        total += own
        del own
        estimate = float(sw @ total / sw.sum())
        total -= estimate
        return estimate, total, mean_distance

    def _bootstrap(self, X, inside, rng):
        """Refit the nuisance models on stratified bootstrap draws.

        Keeps the folds and the overlap region; stores per draw the weighted
        mean of the identified pseudo-outcomes and ``bootstrap_stderr_``,
        and returns the bootstrap standard deviation of the outcome
        predictions at the overlap units (n_inside, 2). The draws are refit
        and reduced one at a time and their counts are not stored: the
        random stream is kept and replayed (:meth:`_draws`) whenever the
        counts are needed again.
        """
        (y, t), e = self._fit_data, self.propensity_
        sw = self._sample_weight
        n = y.shape[0]
        n_boot = int(self.n_bootstrap)
        fold_of = np.empty(n, dtype=np.intp)
        for k, test in enumerate(self.fold_indices_):
            fold_of[test] = k
        strata = 2 * fold_of + t.astype(np.intp)
        # a unit of weight zero counts as absent: it is never drawn
        strata[sw == 0] = -1
        grouping = _strata_order(strata)
        del strata
        state = rng.get_state()
        # the counts of all draws come first in the random stream
        for _ in range(n_boot):
            _stratified_counts(grouping, rng)
        del fold_of
        folds = self.fold_indices_
        model = _seed_random_states(self._outcome_model(), rng.randint(2**31 - 1))
        fitter = self._outcome_fitter()
        seed = rng.randint(2**31 - 1)
        propensity = _seed_random_states(self._propensity_model(), seed)
        clip = max(float(self.clip), 1e-12)
        refit = (fitter, model, propensity, clip, X, y, t, folds)
        masks = (inside, e < self.threshold, e > 1 - self.threshold)
        mu_inside = self.outcome_predictions_[inside]
        total = sw.sum()
        self._boot = {"state": state, "grouping": grouping}
        self._refit = (fitter, model, y, t, folds)
        draws = Parallel(
            n_jobs=self.n_jobs, verbose=self.verbose, return_as="generator"
        )(
            delayed(_bootstrap_draw)(
                refit, weights, masks, mu_inside, self.threshold, total
            )
            for weights in self._draws()
        )
        sums = np.empty(n_boot)
        trimmed = np.empty(n_boot)
        # Welford's running mean and sum of squares of the changes
        mean = np.zeros_like(mu_inside)
        square = np.zeros_like(mu_inside)
        for b, (known_mean, change, trimmed_b) in enumerate(draws):
            sums[b] = known_mean
            trimmed[b] = trimmed_b
            delta = change - mean
            mean += delta / (b + 1)
            change -= mean
            square += delta * change
            del delta, change
        self.bootstrap_stderr_ = float(trimmed.std(ddof=1))
        self._boot["known"] = sums
        return np.sqrt(square / (n_boot - 1))

    def _draws(self, outside=None):
        """Replay the bootstrap draws: each one's weights ``counts * sw``.

        With ``outside`` (indices), only the counts at those units.
        """
        rng = np.random.RandomState()
        rng.set_state(self._boot["state"])
        sw = self._sample_weight
        for _ in range(int(self.n_bootstrap)):
            counts = _stratified_counts(self._boot["grouping"], rng)
            if outside is None:
                counts *= sw
                yield counts
            else:
                yield counts[outside]

    def _bootstrap_deviation(self, X, keep, mu_keep, targets):
        """Change of the outcome predictions at the ``keep`` units per draw.

        ``targets`` lists ``(positions in keep, arm)`` pairs; returns for
        each a float32 array of shape (n_bootstrap, positions.size) in units
        of ``_dev_scale`` (the outcome's unit, so the float32 draws are
        the same at any outcome scale). The outcome models of every draw are
        refit (the same fits as in :meth:`_bootstrap`, whose predictions were
        reduced before the kept units were known).
        """
        fitter, model, y, t, folds = self._refit
        del self._refit
        self._dev_scale = np.float64(self._outcome_scale)
        unit = self._dev_scale
        n_boot = int(self.n_bootstrap)
        out = [np.empty((n_boot, slots.size), np.float32) for slots, _ in targets]
        if keep.size == 0:
            return out
        draws = Parallel(
            n_jobs=self.n_jobs, verbose=self.verbose, return_as="generator"
        )(
            delayed(_refit_outcomes)(fitter, model, X, y, t, folds, w, keep)
            for w in self._draws()
        )
        for b, pred in enumerate(draws):
            pred -= mu_keep
            pred /= unit
            for deviation, (slots, arm) in zip(out, targets, strict=True):
                deviation[b] = pred[slots, arm]
        return out

    def _lipschitz_row(self, lipschitz):
        """Bounds of the full-population effect and their standard errors.

        The bootstrap draws are linearized in the outcome predictions at the
        extension's active anchors (the envelope theorem), so one pass over
        the distances serves every draw. The draws' counts at the outside
        units are replayed one draw at a time.
        """
        sw = self._sample_weight
        n = sw.sum()
        bounds = np.array([self._known_mean, self._known_mean])
        boot = self._boot
        pieces = []
        for ext in self._extensions:
            rows, arm = ext["rows"], ext["arm"]
            level = np.full(rows.size, float(lipschitz))
            free = level >= ext["crossing"]
            lower = ext["point"].copy()
            upper = ext["point"].copy()
            j0, k0 = ext["anchors0"]
            # each bound's change is the mean of the draws' changes at two
            # anchors: the two that meet at the crossing, or twice the
            # extension's active anchor
            lower_at = [j0.copy(), k0.copy()]
            upper_at = [j0.copy(), k0.copy()]
            if np.any(free):
                lo, up, j, k = _extension(
                    ext["Z"][free],
                    ext["anchors"],
                    ext["values"],
                    level[free],
                    ext["margin"],
                    self._pairs,
                )
                lower[free], upper[free] = lo, up
                for at in lower_at:
                    at[free] = j
                for at in upper_at:
                    at[free] = k
            w = sw[rows]
            # the missing arm enters with sign +1 (treated) or -1 (control)
            if arm == 1:
                sides = ((0, lower, lower_at, 1.0), (1, upper, upper_at, 1.0))
            else:
                sides = ((0, -upper, upper_at, -1.0), (1, -lower, lower_at, -1.0))
            for side, value, at, sign in sides:
                bounds[side] += w @ value / n
                pieces.append(
                    (side, ext["deviation"], ext["outside"], w * value, at, sign * w)
                )
        unit = float(self._dev_scale)
        boot_bounds = np.tile(boot["known"][:, None], (1, 2))
        for b, counts in enumerate(self._draws(boot["outside"])):
            for side, deviation, outside, weighted, (first, second), signed in pieces:
                c = counts[outside]
                dev = deviation[b]
                change = dev[first].astype(np.float64)
                change += dev[second]
                change *= 0.5 * unit
                boot_bounds[b, side] += (c @ weighted + (c * signed) @ change) / n
        se = boot_bounds.std(axis=0, ddof=1)
        return bounds, se

    def _curve(self, lipschitz, alpha):
        rows = []
        sw = self._sample_weight
        n = sw.sum()
        for value in lipschitz:
            value = float(value)
            if self.extension == "knn":
                est, infl, half = self._knn_curve(value)
                se = float(_influence_stderr(infl, sw))
                bias = float(sw @ half / n)
                if se > 0:
                    crit = stats.foldnorm.ppf(1 - alpha, bias / se) * se
                else:
                    crit = bias
                rows.append(
                    (
                        value,
                        est,
                        bias,
                        se,
                        est - bias,
                        est + bias,
                        se,
                        se,
                        est - crit,
                        est + crit,
                    )
                )
                continue
            (lower, upper), (se_lower, se_upper) = self._lipschitz_row(value)
            ci = _imbens_manski(lower, upper, se_lower, se_upper, alpha)
            rows.append(
                (
                    value,
                    0.5 * (lower + upper),
                    0.5 * (upper - lower),
                    float(max(se_lower, se_upper)),
                    lower,
                    upper,
                    float(se_lower),
                    float(se_upper),
                    float(ci[0]),
                    float(ci[1]),
                )
            )
        return rows

    def _estimate(self, y, t, nuisance, sw):
        e, mu = nuisance["e"], nuisance["mu"]
        inside = (e >= self.threshold) & (e <= 1 - self.threshold)
        if not np.any(inside):
            raise ValueError(
                f"No unit has an estimated propensity in [threshold, 1 - "
                f"threshold] = [{self.threshold}, {1 - self.threshold}]; "
                "lower threshold."
            )
        weight = np.ones_like(y) if sw is None else sw
        self.overlap_mask_ = inside
        self.overlap_fraction_ = float(weight @ inside / weight.sum())
        phi = _aipw_pseudo_outcomes(y, t, e, mu)
        self._fit_data = (y, t)
        # the unit of the outcome: Lipschitz constants are searched, and the
        # bootstrap draws stored, relative to it
        self._outcome_scale = _outcome_unit(y)
        psi = np.average(phi[inside], axis=0, weights=weight[inside])
        # the identified part of the full-population effect: the observed
        # arm's pseudo-outcome outside the overlap region
        known = phi[:, 1] - phi[:, 0]
        low, high = e < self.threshold, e > 1 - self.threshold
        known[low] = -phi[low, 0]
        known[high] = phi[high, 1]
        self._known_mean = float(weight @ known / weight.sum())
        del known
        if self.extension == "knn":
            self._phi = phi.copy()
        infl = phi
        infl -= psi
        infl[~inside] = 0.0
        infl /= self.overlap_fraction_
        return psi, infl

    def _diagnostics(self, y, t, nuisance):
        diag = super()._diagnostics(y, t, nuisance)
        diag["n_trimmed"] = int((~self.overlap_mask_).sum())
        return diag

    # -- sensitivity ---------------------------------------------------------
    def _knn_curve(self, lipschitz):
        """Estimate, influence function and half-widths at one constant L."""
        estimate, infl, mean_distance = self._knn
        return estimate, infl, lipschitz * mean_distance

    def bias_bound(self, lipschitz):
        """Worst-case trimming bias :math:`B(L)` of the full-population effect.

        Parameters
        ----------
        lipschitz : float or array-like of shape (n_values,)
            Lipschitz constant(s) :math:`L \\ge 0`.

        Returns
        -------
        bound : float or ndarray of shape (n_values,)
        """
        check_is_fitted(self)
        arr = _check_lipschitz(lipschitz)
        bounds = np.array([r[2] for r in self._curve(arr.reshape(-1), 0.05)])
        return float(bounds[0]) if arr.ndim == 0 else bounds

    def sensitivity_curve(self, lipschitz, alpha=0.05):
        """Estimate, bias bound and bias-aware interval over a grid of L.

        Parameters
        ----------
        lipschitz : array-like of shape (n_values,)
            Lipschitz constants :math:`L \\ge 0`.
        alpha : float, default=0.05
            One minus the confidence level.

        Returns
        -------
        curve : pandas.DataFrame
            Columns ``lipschitz``, ``estimate`` (midpoint of the bounds),
            ``bias_bound`` (their half-width :math:`B(L)`), ``std_error``
            (the larger of the bounds' standard errors), ``lower_bound``,
            ``upper_bound``, ``lower_std_error``, ``upper_std_error``,
            ``ci_lower``, ``ci_upper``. With ``extension="knn"`` the bounds
            are ``estimate -/+ bias_bound`` and both standard errors are the
            one of ``estimate``.
        """
        check_is_fitted(self)
        arr = _check_lipschitz(lipschitz).reshape(-1)
        rows = self._curve(arr, _check_alpha(alpha))
        return pd.DataFrame(
            rows,
            columns=[
                "lipschitz",
                "estimate",
                "bias_bound",
                "std_error",
                "lower_bound",
                "upper_bound",
                "lower_std_error",
                "upper_std_error",
                "ci_lower",
                "ci_upper",
            ],
        )

    def conf_int(self, alpha=0.05, lipschitz=None):
        """Confidence interval of the overlap or the full-population effect.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level.
        lipschitz : float, default=None
            ``None`` gives the normal interval ``estimate_ -/+ z stderr_`` of
            the effect on the estimated overlap region, which is held fixed
            (it can undercover when the region is noisy; see Notes); a value
            :math:`L \\ge 0` gives the bias-aware interval of the
            full-population effect.

        Returns
        -------
        lower, upper : float
        """
        if lipschitz is None:
            return self._normal_conf_int(1.0 - _check_alpha(alpha))
        check_is_fitted(self)
        value = float(_check_lipschitz(lipschitz).reshape(-1)[0])
        row = self._curve([value], _check_alpha(alpha))[0]
        return row[8], row[9]

    def _breakdown(self, alpha):
        """Smallest L whose interval covers zero, relative to the outcome scale.

        The search starts at one outcome unit (``_outcome_scale`` per unit
        of covariate distance), brackets L* by factors of 4 and bisects to a
        relative width of 1e-6, so the answer scales with the outcome.
        """

        def covers_zero(value):
            row = self._curve([value], alpha)[0]
            return row[8] <= 0.0 <= row[9]

        if covers_zero(0.0):
            return 0.0
        unit = float(self._outcome_scale)
        hi = unit
        if covers_zero(hi):
            lo = hi / 4.0
            # L* below one unit: shrink the bracket (at most 4**-200 units)
            for _ in range(200):
                if not covers_zero(lo):
                    break
                hi, lo = lo, lo / 4.0
            else:
                return hi
        else:
            lo = hi
            while not covers_zero(hi):
                lo, hi = hi, 4.0 * hi
                if hi > _L_MAX * unit:
                    return float("inf")
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if covers_zero(mid) else (mid, hi)
            if hi - lo <= 1e-6 * hi:
                break
        return hi

    def plot(self, lipschitz=None, alpha=0.05, ax=None):
        """Plot the bias-aware interval of the full-population effect against L.

        Parameters
        ----------
        lipschitz : array-like, default=None
            Grid of :math:`L`; ``None`` spans ``[0, 2 L*]`` (or ``[0, 1]``).
        alpha : float, default=0.05
            One minus the confidence level.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        check_is_fitted(self)
        if lipschitz is None:
            top = self.breakdown_lipschitz_
            top = 2 * top if np.isfinite(top) and top > 0 else 1.0
            lipschitz = np.linspace(0.0, top, 60)
        curve = self.sensitivity_curve(lipschitz, alpha)
        if ax is None:
            _, ax = plt.subplots()
        ax.fill_between(
            curve["lipschitz"],
            curve["ci_lower"],
            curve["ci_upper"],
            alpha=0.3,
            label=f"{1 - alpha:.0%} bias-aware interval",
        )
        ax.plot(curve["lipschitz"], curve["estimate"], label="estimate")
        ax.axhline(0.0, color="black", linewidth=0.8)
        if np.isfinite(self.breakdown_lipschitz_):
            ax.axvline(
                self.breakdown_lipschitz_,
                linestyle="--",
                color="gray",
                label="breakdown L*",
            )
        ax.set_xlabel("Lipschitz constant L")
        ax.set_ylabel("average treatment effect")
        ax.legend()
        return ax
