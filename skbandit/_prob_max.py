"""Probability that each arm has the largest mean under independent posteriors.

Thompson sampling plays arm ``a`` with this probability; the multi-armed
policies' ``predict_proba`` returns it, by one-dimensional quadrature.
"""

import numpy as np
from scipy import special, stats
from scipy.integrate import quad_vec

# Absolute tolerance of the quadrature behind the exact ``predict_proba``.
_QUAD_EPSABS = 1e-10


def _prob_max_independent(dist, centers):
    """P(arm k has the largest draw) for independent continuous posteriors.

    ``dist`` is a frozen scipy distribution with array parameters of shape
    (n_arms,). The probability is the one-dimensional integral

        P_k = int f_k(t) prod_{j != k} F_j(t) dt,

    computed for all arms at once by adaptive vector quadrature, with the
    posterior centers as break points so that narrow posteriors are not missed.
    """
    lo = float(np.min(dist.ppf(1e-13)))
    hi = float(np.max(dist.ppf(1 - 1e-13)))
    n_arms = centers.shape[0]
    if not hi > lo:
        return np.full(n_arms, 1.0 / n_arms)

    def integrand(t):
        pdf = dist.pdf(t)
        log_cdf = dist.logcdf(t)
        total = log_cdf.sum()
        # product over the other arms, guarding arms with a zero cdf
        others = np.exp(total - log_cdf) if np.all(np.isfinite(log_cdf)) else None
        if others is None:
            cdf = np.exp(log_cdf)
            others = np.array(
                [np.prod(np.delete(cdf, k)) for k in range(n_arms)], dtype=float
            )
        return pdf * others

    points = np.unique(np.clip(centers, lo, hi))
    points = points[(points > lo) & (points < hi)]
    proba, _ = quad_vec(
        integrand, lo, hi, epsabs=_QUAD_EPSABS, points=points, limit=2000
    )
    proba = np.clip(proba, 0.0, None)
    return proba / proba.sum()


# standard normal mass beyond this many standard deviations is below 1e-16
_Z_RANGE = 8.3
# above this many arms the selection probabilities use the direct integral
_MAX_PAIRWISE_ARMS = 50


def _prob_max_gaussian(means, sds):
    """P(arm k has the largest draw) for independent normal posteriors.

    With the substitution :math:`t = \\mu_k + \\sigma_k z`,

        P_k = E_z[ prod_{j != k} Phi((mu_k - mu_j + sigma_k z) / sigma_j) ],

    a standard-normal expectation of a function of the *differences* of the
    means and the *ratios* of the standard deviations. It is therefore exactly
    invariant to a common shift of the means and a common scaling (nothing of
    the size of the means enters a floating-point subtraction), and it is
    computed for all arms at once by adaptive vector quadrature over
    ``|z| <= 8.3``, with a break point wherever a factor switches from 0 to 1.
    """
    means = np.asarray(means, dtype=np.float64)
    sds = np.asarray(sds, dtype=np.float64)
    n_arms = means.shape[0]
    if n_arms == 1:
        return np.ones(1)
    if n_arms > _MAX_PAIRWISE_ARMS:
        # the pairwise form costs n_arms^2 per evaluation; with many arms the
        # direct integral over t (n_arms per evaluation) is used, on the means
        # as given (relative to the prior mean, so still shift-invariant)
        return _prob_max_independent(stats.norm(means, sds), means)
    diff = means[:, None] - means[None, :]  # mu_k - mu_j
    ratio = sds[:, None] / sds[None, :]  # sigma_k / sigma_j
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        shift = diff / sds[None, :]  # (mu_k - mu_j) / sigma_j
        # z at which the factor (k, j) crosses one half
        knots = -diff / sds[:, None]
    off = ~np.eye(n_arms, dtype=bool)

    def integrand(z):
        with np.errstate(over="ignore", invalid="ignore"):
            arg = shift + ratio * z
        arg = np.where(off, arg, np.inf)  # Phi(inf) = 1 for j == k
        log_prod = special.log_ndtr(arg).sum(axis=1)
        return np.exp(log_prod - 0.5 * z * z) / np.sqrt(2.0 * np.pi)

    points = knots[off & np.isfinite(knots) & (np.abs(knots) < _Z_RANGE)]
    points = np.unique(points)
    proba, _ = quad_vec(
        integrand,
        -_Z_RANGE,
        _Z_RANGE,
        epsabs=_QUAD_EPSABS,
        points=points if points.size else None,
        limit=2000,
    )
    proba = np.clip(proba, 0.0, None)
    total = proba.sum()
    if not total > 0:  # pragma: no cover - the arm of largest mean has mass
        raise FloatingPointError("selection probabilities vanished.")
    return proba / total


def _tile(row, n_samples):
    return np.tile(row, (n_samples, 1))
