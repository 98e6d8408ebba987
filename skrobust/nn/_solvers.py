"""Exact worst-case weights of the ambiguity sets, computed with torch.

These solvers mirror the exact solves of :mod:`skrobust.ambiguity` on torch
tensors, so that a robust risk and its worst-case weights are computed on the
device that holds the losses (a GPU included) with no copy to the CPU. They
run in float64 whatever the dtype of the losses and agree with the numpy
solves to about 1e-12 (see ``tests/skrobust/test_nn_solvers.py``).

The robust risk is computed, as in :mod:`skrobust.ambiguity`, on losses
rescaled to [0, 1]: ``z = (loss - min) / (max - min)``.
"""

import math

import torch

from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR

#: points evaluated at once by the multisection root searches
_N_POINTS = 32
#: bracket of the KL search over log t, t = 1 / lambda in units of z
_LOG_T_RANGE = (-60.0, 60.0)


def _cressie_read_constants(ambiguity):
    k = 2.0 if isinstance(ambiguity, ChiSquare) else float(ambiguity.k)
    s = k / (k - 1.0)
    c = (1.0 + k * (k - 1.0) * float(ambiguity.radius)) ** (1.0 / k)
    return k, s, c


def check_ambiguity(ambiguity, *, name="ambiguity"):
    """Validate an ambiguity set and return it (a ``ChiSquare`` if ``None``)."""
    if ambiguity is None:
        return ChiSquare(radius=1.0)
    if not isinstance(ambiguity, ChiSquare | CressieRead | KL | CVaR):
        raise TypeError(
            f"{name} must be a skrobust.ambiguity set (ChiSquare, CressieRead, "
            f"KL or CVaR) or None; got {type(ambiguity).__name__}."
        )
    ambiguity._validate_params()
    return ambiguity


def check_batch_weight(sample_weight, n_samples, device, *, name="sample_weight"):
    """Validated float64 weights of a batch (detached), or ``None``.

    Raises a ValueError naming ``name`` when the weights have the wrong length,
    are not finite or are negative.
    """
    if sample_weight is None:
        return None
    w = torch.as_tensor(sample_weight, device=device)
    w = w.detach().to(torch.float64).reshape(-1)
    if w.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {w.shape[0]} entries, but {n_samples} losses were given."
        )
    # one host sync for both checks
    bad = torch.stack([~torch.isfinite(w).all(), (w < 0).any()]).tolist()
    if bad[0]:
        raise ValueError(f"{name} contains NaN or infinite values.")
    if bad[1]:
        raise ValueError(f"{name} must be nonnegative; got a negative weight.")
    return w


def _probabilities(losses, sample_weight):
    n = losses.shape[0]
    if sample_weight is None:
        return torch.full_like(losses, 1.0 / n)
    w = check_batch_weight(sample_weight, n, losses.device)
    total = w.sum()
    if not bool(total > 0):
        raise ValueError(
            "sample_weight sums to zero: the batch defines no distribution."
        )
    return w / total


def risk_and_weights(ambiguity, losses, sample_weight=None, *, return_dual=False):
    """Robust risk and worst-case weights of a loss vector, in torch.

    Parameters
    ----------
    ambiguity : AmbiguitySet
        A validated ``ChiSquare``, ``CressieRead``, ``KL`` or ``CVaR``.
    losses : torch.Tensor of shape (n_samples,)
        Per-sample losses, on any device; they are detached.
    sample_weight : torch.Tensor of shape (n_samples,), default=None
        Nonnegative weights of the nominal distribution; ``None`` is uniform.
    return_dual : bool, default=False
        Also return the optimal ``eta`` (in loss units) of the Cressie-Read and
        CVaR duals (NaN for KL and for trivial cases).

    Returns
    -------
    risk : torch.Tensor
        0-d float64 tensor on the device of ``losses``.
    q : torch.Tensor of shape (n_samples,)
        float64 worst-case weights summing to one.
    eta : torch.Tensor
        Only with ``return_dual=True``.
    """
    l = losses.detach().to(torch.float64).reshape(-1)
    if l.shape[0] == 0:
        raise ValueError("losses is empty; at least one sample is required.")
    p = _probabilities(l, sample_weight)
    mean = torch.dot(p, l)
    nan = torch.full((), math.nan, dtype=torch.float64, device=l.device)
    support = p > 0
    lo = torch.where(support, l, math.inf).min()
    hi = torch.where(support, l, -math.inf).max()
    scale = hi - lo
    # one scalar crosses to the host to branch; the data stay on the device
    if ambiguity.is_trivial() or not bool(scale > 0):
        return (mean, p, nan) if return_dual else (mean, p)
    z = torch.where(support, (l - lo) / scale, torch.zeros_like(l))
    if isinstance(ambiguity, CVaR):
        risk_z, q, eta_z = _cvar(z, p, float(ambiguity.alpha))
    elif isinstance(ambiguity, KL):
        risk_z, q = _kl(z, p, float(ambiguity.radius))
        eta_z = nan
    else:
        risk_z, q, eta_z = _cressie_read(z, p, *_cressie_read_constants(ambiguity))
    q = torch.where(support, q, torch.zeros_like(q))
    risk = torch.minimum(torch.maximum(lo + scale * risk_z, mean), hi)
    if return_dual:
        return risk, q, lo + scale * eta_z
    return risk, q


def _on_max(z, p):
    q = torch.where(z >= 1.0, p, torch.zeros_like(p))
    return q / q.sum()


def _cressie_read(z, p, k, s, c):
    """Exact Cressie-Read solve on ``z`` in [0, 1] (``max z = 1``)."""
    mass_max = torch.where(z >= 1.0, p, torch.zeros_like(p)).sum()
    all_on_max = c**s * mass_max >= 1.0
    if k == 2.0:
        eta = _chi2_eta(z, p, c)
    else:
        eta = _cressie_read_eta(z, p, k, s, c)
    excess = torch.clamp(z - eta, min=0.0)
    moment = torch.dot(p, excess**s)
    risk = c * moment ** (1.0 / s) + eta
    q = p * excess ** (s - 1.0)
    q = q / q.sum()
    one = torch.ones((), dtype=z.dtype, device=z.device)
    return (
        torch.where(all_on_max, one, risk),
        torch.where(all_on_max, _on_max(z, p), q),
        torch.where(all_on_max, one, eta),
    )


def _chi2_eta(z, p, c):
    """Closed-form chi-square dual minimizer over the segments between losses.

    On the segment where the active set is the top ``m`` losses (mass ``P``,
    mean ``mu``, variance ``V``), the dual ``c sqrt(P (V + (mu - eta)^2)) +
    eta`` is minimized at ``mu - sqrt(V / (c^2 P - 1))``; the candidate is
    clipped to its segment, where the segment formula is the dual itself, and
    the best candidate is polished with moments computed directly.
    """
    values, order = torch.sort(z, descending=True, stable=True)
    mass = p[order]
    cum_mass = torch.cumsum(mass, 0)
    safe_mass = torch.clamp(cum_mass, min=torch.finfo(z.dtype).tiny)
    mean = torch.cumsum(mass * values, 0) / safe_mass
    second = torch.cumsum(mass * values * values, 0) / safe_mass
    var = torch.clamp(second - mean * mean, min=0.0)
    slope = c * c * cum_mass - 1.0
    positive = slope > 0
    shift = torch.where(
        positive,
        torch.sqrt(var / torch.where(positive, slope, torch.ones_like(slope))),
        torch.full_like(slope, math.inf),
    )
    lower = torch.cat([values[1:], values.new_full((1,), -math.inf)])
    candidate = torch.minimum(torch.maximum(mean - shift, lower), values)
    finite = torch.isfinite(candidate)
    dev = torch.where(finite, mean - candidate, torch.zeros_like(mean))
    objective = torch.where(
        finite,
        c * torch.sqrt(cum_mass * (var + dev * dev)) + candidate,
        torch.full_like(mean, math.inf),
    )
    best = torch.argmin(objective)
    low_b, up_b = lower[best], values[best]
    active = z > low_b
    pa = torch.where(active, p, torch.zeros_like(p))
    mass_a = pa.sum()
    mu = torch.dot(pa, z) / mass_a
    v = torch.dot(pa, (z - mu) ** 2) / mass_a
    slope_a = c * c * mass_a - 1.0
    safe_slope = torch.where(slope_a > 0, slope_a, torch.ones_like(slope_a))
    polished = torch.minimum(
        torch.maximum(mu - torch.sqrt(v / safe_slope), low_b), up_b
    )
    return torch.where(slope_a > 0, polished, candidate[best])


def _multisection(sign_positive, lower, upper, n_iter):
    """Shrink ``[lower, upper]`` around the sign change of a monotone function.

    ``sign_positive(points)`` returns, for a 1-d tensor of points, whether the
    nondecreasing function is positive there. The function is assumed
    nonpositive at ``lower`` and positive at ``upper``.
    """
    frac = torch.linspace(
        0.0, 1.0, _N_POINTS + 2, dtype=lower.dtype, device=lower.device
    )
    frac = frac[1:-1]
    for _ in range(n_iter):
        points = lower + (upper - lower) * frac
        positive = sign_positive(points)
        # index of the first positive point (N_POINTS if none)
        first = torch.sum(~positive)
        padded = torch.cat([lower.reshape(1), points, upper.reshape(1)])
        lower, upper = padded[first], padded[first + 1]
    return lower, upper


def _cressie_read_eta(z, p, k, s, c):
    """Root of the Cressie-Read dual's derivative by multisection on the device.

    The derivative ``1 - c E[(z-eta)_+^(s-1)] / E[(z-eta)_+^s]^((s-1)/s)`` is
    nondecreasing in ``eta``; it is positive just below 1 (unless the worst
    case is the maximum) and nonpositive at ``-r / (1 - r)``, ``r =
    c^-(k-1)``, because ``z - eta`` lies in ``[-eta, 1 - eta]`` there.
    """
    r = c ** (-(k - 1.0))
    low = -r / (1.0 - r)
    width = 1.0 - low
    n_iter = int(math.ceil(math.log(width / 1e-17) / math.log(_N_POINTS + 1))) + 1

    def positive(points):
        excess = torch.clamp(z[:, None] - points[None, :], min=0.0)
        powered = excess ** (s - 1.0)
        lower_moment = p @ powered
        upper_moment = p @ (powered * excess)
        ratio = lower_moment / torch.clamp(
            upper_moment, min=torch.finfo(z.dtype).tiny
        ) ** ((s - 1.0) / s)
        return (
            torch.where(upper_moment > 0, 1.0 - c * ratio, torch.ones_like(ratio)) > 0
        )

    lower = torch.tensor(low, dtype=z.dtype, device=z.device)
    upper = torch.tensor(1.0, dtype=z.dtype, device=z.device)
    lower, upper = _multisection(positive, lower, upper, n_iter)
    return 0.5 * (lower + upper)


def _kl(z, p, rho):
    """Exact KL solve: the tilt ``t`` with ``KL(q_t || p) = rho``."""
    mass_max = torch.where(z >= 1.0, p, torch.zeros_like(p)).sum()
    all_on_max = rho >= -torch.log(mass_max)

    def positive(log_t):
        t = torch.exp(log_t)
        w = p[:, None] * torch.exp(t[None, :] * (z[:, None] - 1.0))
        total = w.sum(0)
        divergence = t * ((z @ w) / total - 1.0) - torch.log(total)
        return divergence - rho > 0

    lo, hi = _LOG_T_RANGE
    lower = torch.tensor(lo, dtype=z.dtype, device=z.device)
    upper = torch.tensor(hi, dtype=z.dtype, device=z.device)
    n_iter = int(math.ceil(math.log((hi - lo) / 1e-17) / math.log(_N_POINTS + 1))) + 1
    lower, upper = _multisection(positive, lower, upper, n_iter)
    t = torch.exp(0.5 * (lower + upper))
    w = p * torch.exp(t * (z - 1.0))
    total = w.sum()
    risk = 1.0 + (rho + torch.log(total)) / t
    q = w / total
    one = torch.ones((), dtype=z.dtype, device=z.device)
    return torch.where(all_on_max, one, risk), torch.where(all_on_max, _on_max(z, p), q)


def _cvar(z, p, alpha):
    """Exact CVaR: fill ``p / alpha`` on the largest losses, ties shared."""
    values, inverse = torch.unique(z, sorted=True, return_inverse=True)
    mass = torch.zeros_like(values).scatter_add_(0, inverse, p)
    values = values.flip(0)
    mass = mass.flip(0)
    inverse = values.shape[0] - 1 - inverse
    cap = mass / alpha
    cum_cap = torch.cumsum(cap, 0)
    group_q = torch.minimum(torch.clamp(1.0 - (cum_cap - cap), min=0.0), cap)
    safe_mass = torch.clamp(mass, min=torch.finfo(z.dtype).tiny)
    q = group_q[inverse] * (p / safe_mass[inverse])
    risk = torch.dot(group_q, values)
    var_index = torch.clamp(torch.sum(cum_cap < 1.0 - 1e-12), max=values.shape[0] - 1)
    return risk, q, values[var_index]
