"""Stratified bootstrap of the trimming bounds: draws, refits and replays.

Units are resampled within each (fold, arm) cell and the nuisance models are
refit on the training folds with the draw's counts as weights; the draws are
reduced one at a time and their counts are replayed from the random stream
instead of being stored. :class:`_BootstrapMixin` holds the estimator's side.
"""

import numpy as np

from skcausal._estimators import _aipw_pseudo_outcomes
from skrobust._crossfit import (
    SEED_MAX,
    fit_fold,
    map_folds,
    seed_random_states,
    train_part,
)


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


def _bootstrap_draw(refit, weights, masks, mu_fit, threshold, total):
    """Refit one bootstrap draw and reduce it to what the bounds need.

    ``masks`` holds the fixed overlap region (its mask and indices) and the
    units below and above it. The nuisances are refit on each fold's
    training part with the rows weighted by ``weights`` (through the
    cross-fitting engine's ``fit_fold``) and reduced fold by fold, so no
    array of the draw's predictions over all units is made. Returns the
    weighted mean of the identified pseudo-outcomes, the change of the
    outcome predictions at the overlap units (n_inside, 2) and the trimmed
    estimate with the overlap region re-chosen by this draw's propensities
    (the region itself is estimated).
    """
    fitter, model, propensity, clip, X, y, t, folds = refit
    inside, inside_idx, low, high = masks
    n = X.shape[0]
    # mu_fit: the fit's own outcome predictions over all units (no copy)
    change = np.empty((inside_idx.shape[0], 2))
    known = region_sum = region_total = 0.0
    for test in folds:
        train = train_part(test, n)
        fold = fit_fold(X, y, t, weights, train, test, propensity, model, fitter, clip)
        # the fold's models (and their buffers) go before the next fold's fit
        mu, e = fold["mu"], fold["e"]
        del fold, train
        phi = _aipw_pseudo_outcomes(y[test], t[test], e, mu)
        w = weights[test]
        effect = phi[:, 1] - phi[:, 0]
        region = w * ((e >= threshold) & (e <= 1 - threshold))
        region_sum += float(region @ effect)
        region_total += float(region.sum())
        del region, e
        below, above = low[test], high[test]
        effect[below] = -phi[below, 0]
        effect[above] = phi[above, 1]
        del phi
        known += float(w @ effect)
        kept = inside[test]
        slots = np.searchsorted(inside_idx, test[kept])
        change[slots] = mu[kept] - mu_fit[test[kept]]
    trimmed = region_sum / max(region_total, 1e-300)
    return known / total, change, trimmed


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
        train = train_part(test, X.shape[0])
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


class _BootstrapMixin:
    """The bootstrap of :class:`~skcausal.TrimmingSensitivity`'s Lipschitz bounds."""

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
        model = seed_random_states(self._outcome_model(), rng.randint(SEED_MAX))
        fitter = self._outcome_fitter()
        seed = rng.randint(SEED_MAX)
        propensity = seed_random_states(self._propensity_model(), seed)
        clip = max(float(self.clip), 1e-12)
        refit = (fitter, model, propensity, clip, X, y, t, folds)
        masks = (
            inside,
            np.flatnonzero(inside),
            e < self.threshold,
            e > 1 - self.threshold,
        )
        total = sw.sum()
        self._boot = {"state": state, "grouping": grouping}
        self._refit = (fitter, model, y, t, folds)
        # the draws through the engine's loop, reduced as they come
        draws = map_folds(
            _bootstrap_draw,
            (
                (
                    refit,
                    weights,
                    masks,
                    self.outcome_predictions_,
                    self.threshold,
                    total,
                )
                for weights in self._draws()
            ),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        sums = np.empty(n_boot)
        trimmed = np.empty(n_boot)
        # Welford's running mean and sum of squares of the changes
        mean = np.zeros((masks[1].shape[0], 2))
        square = np.zeros_like(mean)
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
        draws = map_folds(
            _refit_outcomes,
            ((fitter, model, X, y, t, folds, w, keep) for w in self._draws()),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        for b, pred in enumerate(draws):
            pred -= mu_keep
            pred /= unit
            for deviation, (slots, arm) in zip(out, targets, strict=True):
                deviation[b] = pred[slots, arm]
        return out
