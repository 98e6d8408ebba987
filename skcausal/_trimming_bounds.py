"""Bounds on the full-population effect under trimming, and their intervals.

For each Lipschitz constant L: the bounds of the ``"lipschitz"`` extension
(exact McShane-Whitney extensions, bootstrap standard errors linearized at the
active anchors, Imbens-Manski interval) or of the ``"knn"`` extension
(nearest overlap units, Armstrong-Kolesar bias-aware critical value), and the
breakdown constant. :class:`_BoundsMixin` holds the estimator's side.
"""

import numpy as np
from scipy import optimize, stats
from sklearn.neighbors import NearestNeighbors

from skcausal._base import _influence_stderr
from skcausal._trimming_extension import (
    _active_anchors,
    _crossing,
    _extension,
    _pair_budget,
)
from skrobust._crossfit import index_dtype

# the breakdown search gives up (inf) beyond this many outcome-scale units
_L_MAX = 1e12


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

    if gap(z_one) >= 0:
        crit = z_one
    elif gap(z_two) <= 0:
        # a point (width 0, or below rounding of se): gap(z_two) is 0 up to
        # rounding, and the two-sided critical value is the root
        crit = z_two
    else:
        crit = optimize.brentq(gap, z_one, z_two)
    return lower - crit * se_lower, upper + crit * se_upper


class _BoundsMixin:
    """Bounds, intervals and breakdown of :class:`~skcausal.TrimmingSensitivity`."""

    def _lipschitz_fit(self, X, work, groups, distance):
        """Active anchors and crossings of the Lipschitz extensions.

        ``work`` is a list ``[anchors, group_Z, margin]``: the overlap
        units' and the outside groups' standardized covariates, and the band
        (n_inside, 2) around each overlap unit's outcome prediction
        (``anchor_margin`` bootstrap standard errors, from
        :meth:`_bootstrap`). It is emptied here, so that what is not kept
        goes once the active anchors are chosen (before the bootstrap refits
        of the deviations). Only the anchors that some outside unit's
        extension can use at some L (:func:`_active_anchors`) are kept, with
        their bootstrap deviations: every later L is evaluated on them alone.
        """
        anchors, group_Z, margin = work
        work.clear()
        inside = self.overlap_mask_
        outside = np.flatnonzero(~inside)
        self._pairs = _pair_budget(*X.shape)
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
                    "outside": np.searchsorted(outside, rows).astype(
                        index_dtype(outside.shape[0])
                    ),
                }
            )
        del anchors, group_Z, margin
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

    def _knn_fit(self, anchors, group_Z, groups, distance):
        """Nearest-overlap-unit matching of the outside units, done once.

        An outside unit's missing-arm mean is the average of the AIPW
        pseudo-outcomes of its nearest overlap units (``anchors`` holds the
        overlap units' standardized covariates, ``group_Z`` the outside
        groups'); each pseudo-outcome is credited to its overlap unit in the
        influence function (as for matching estimators), so the variance is
        that of a linear statistic. None of it depends on L: the half-width
        of an outside unit's bracket is L times its mean distance to those
        units, so the bias bound is L times their weighted mean. Returns the
        estimate, its standard error and that mean; fills ``distance`` with
        the distance to the nearest overlap unit. The overlap units'
        pseudo-outcomes are ``psi + overlap_fraction_ * influence`` (the
        influence function of :meth:`_estimate`), not a stored copy.
        """
        sw = self._sample_weight
        inside_idx = np.flatnonzero(self.overlap_mask_)
        infl = self.potential_outcome_influence_
        psi = self.potential_outcome_means_
        fraction = self.overlap_fraction_
        n = infl.shape[0]
        k = min(int(self.n_neighbors), inside_idx.size)
        nn = NearestNeighbors(n_neighbors=k).fit(anchors)
        # the credits of the overlap units, then (in place) the contributions
        credit = np.zeros(n)
        spread = 0.0  # sum of the weighted mean distances
        # the (rows, k) neighbour arrays are made a block of rows at a time,
        # each about an eighth of n
        step = max(16, n // (8 * k))
        for (rows, arm), Z_rows in zip(groups, group_Z, strict=True):
            sign = 1.0 if arm == 1 else -1.0
            for start in range(0, rows.size, step):
                part = rows[start : start + step]
                dist, ind = nn.kneighbors(Z_rows[start : start + step])
                distance[part] = dist[:, 0]
                spread += float(sw[part] @ dist.mean(axis=1))
                neighbors = inside_idx[ind].ravel()
                reused = infl[neighbors, arm] * fraction
                reused += psi[arm]
                reused *= np.repeat(sw[part], k)
                np.add.at(credit, neighbors, sign * reused / k)
        # unit contributions, each weighted unit scaled back to one unit
        # (in place: credit / sw, plus the own term, then centred)
        total = np.divide(credit, sw, out=credit, where=sw > 0)
        np.copyto(total, 0.0, where=sw <= 0)
        total += self._known
        weight = float(sw.sum())
        estimate = float(sw @ total / weight)
        total -= estimate
        return estimate, float(_influence_stderr(total, sw)), spread / weight

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
            free = ext["crossing"] <= float(lipschitz)
            lower = ext["point"].copy()
            upper = ext["point"].copy()
            j0, k0 = ext["anchors0"]
            # each bound's change is the mean of the draws' changes at two
            # anchors: the two that meet at the crossing, or twice the
            # extension's active anchor (int32 positions: half the memory)
            lower_at = [j0.astype(np.int32), k0.astype(np.int32)]
            upper_at = [at.copy() for at in lower_at]
            if np.any(free):
                lo, up, j, k = _extension(
                    ext["Z"][free],
                    ext["anchors"],
                    ext["values"],
                    np.full(int(np.count_nonzero(free)), float(lipschitz)),
                    ext["margin"],
                    self._pairs,
                )
                lower[free], upper[free] = lo, up
                del lo, up
                for at in lower_at:
                    at[free] = j
                for at in upper_at:
                    at[free] = k
                del j, k
            w = sw[rows]
            # the missing arm enters with sign +1 (treated) or -1 (control)
            if arm == 1:
                sides = ((0, lower, lower_at, 1.0), (1, upper, upper_at, 1.0))
            else:
                sides = (
                    (0, np.negative(upper, out=upper), upper_at, -1.0),
                    (1, np.negative(lower, out=lower), lower_at, -1.0),
                )
            for side, value, at, sign in sides:
                bounds[side] += w @ value / n
                pieces.append(
                    (side, ext["deviation"], ext["outside"], w, value, at, sign)
                )
        unit = float(self._dev_scale)
        boot_bounds = np.tile(boot["known"][:, None], (1, 2))
        for b, counts in enumerate(self._draws(boot["outside"])):
            for side, deviation, outside, w, value, (first, second), sign in pieces:
                weighted = counts[outside]
                weighted *= w
                dev = deviation[b]
                change = dev[first].astype(np.float64)
                change += dev[second]
                change *= 0.5 * unit
                shift = float(weighted @ value) + sign * float(weighted @ change)
                boot_bounds[b, side] += shift / n
                del weighted, change
        se = boot_bounds.std(axis=0, ddof=1)
        return bounds, se

    def _curve(self, lipschitz, alpha):
        rows = []
        for value in lipschitz:
            value = float(value)
            if self.extension == "knn":
                est, se, bias = self._knn_curve(value)
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

    def _knn_curve(self, lipschitz):
        """Estimate, its standard error and the bias bound at one constant L."""
        estimate, se, mean_distance = self._knn
        return estimate, se, lipschitz * mean_distance

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
