"""Torch backend of the ambiguity sets: the same objects on torch tensors.

:meth:`AmbiguitySet.torch_risk` and :meth:`AmbiguitySet.torch_risk_and_weights`
evaluate a set on a tensor of losses on any device; this module holds their
machinery and the torch kernels of the exact solves. Nothing else in the
library re-derives a dual on tensors: the nets (:mod:`skrobust.nn`) call the
sets.

Two kernels compute the same exact solve:

- ``"numpy"``: the numpy solve of the set itself (:meth:`AmbiguitySet._exact`)
  on a zero-copy view of a CPU tensor. It is the fastest for the batches of
  network training on the CPU.
- ``"torch"``: torch kernels (this module) that run on the device holding the
  losses, a GPU included, with no copy to the host. Each set names its kernel
  in ``_torch_solve_unit``; they agree with the numpy solves to about 1e-12
  (``tests/skrobust/test_nn_solvers.py``, ``test_robustness_ambiguity_torch.py``).

``kernel="auto"`` (the default) takes the numpy kernel on the CPU and the
torch kernel elsewhere. Both run in float64 whatever the dtype of the losses,
on losses rescaled to [0, 1], ``z = (loss - min) / (max - min)``.

The risk returned by :func:`robust_risk` is ``sum_i q_i l_i`` with the
worst-case weights ``q`` detached: by Danskin's theorem its gradient with
respect to the losses is ``q``, the gradient of the robust risk.

torch is imported only when this module is, which happens only when a torch
method of a set is called: ``skrobust.ambiguity`` does not need torch.
"""

import math

import numpy as np
import torch

from skrobust.utils._validation import check_probability_weights

#: points evaluated at once by the multisection root searches
_N_POINTS = 32
#: bracket of the KL search over log t, t = 1 / lambda in units of z
_LOG_T_RANGE = (-60.0, 60.0)
_KERNELS = ("auto", "numpy", "torch")


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


def _float64(losses):
    l = losses.detach().reshape(-1)
    if l.shape[0] == 0:
        raise ValueError("losses is empty; at least one sample is required.")
    return l if l.dtype == torch.float64 else l.to(torch.float64)


def risk_and_weights(
    ambiguity, losses, sample_weight=None, *, return_dual=False, kernel="auto"
):
    """Robust risk and worst-case weights of a loss vector, in torch.

    Parameters
    ----------
    ambiguity : AmbiguitySet
        A validated ambiguity set with a torch kernel (``ChiSquare``,
        ``CressieRead``, ``KL``, ``CVaR``, ``TotalVariation``).
    losses : torch.Tensor of shape (n_samples,)
        Per-sample losses, on any device; they are detached.
    sample_weight : torch.Tensor of shape (n_samples,), default=None
        Nonnegative weights of the nominal distribution; ``None`` is uniform.
    return_dual : bool, default=False
        Also return the optimal threshold ``eta`` (in loss units) of the sets
        whose dual has one (Cressie-Read, CVaR, total variation); NaN for KL,
        for a trivial set and for tied losses.
    kernel : {"auto", "numpy", "torch"}, default="auto"
        Which exact solve runs (see the module notes); ``"auto"`` is numpy on
        the CPU and torch elsewhere (numpy through the host for a set without
        a torch kernel).

    Returns
    -------
    risk : torch.Tensor
        0-d float64 tensor on the device of ``losses``.
    q : torch.Tensor of shape (n_samples,)
        float64 worst-case weights summing to one.
    eta : torch.Tensor
        Only with ``return_dual=True``.
    """
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}; got {kernel!r}.")
    has_kernel = ambiguity._torch_solve_unit is not None
    if kernel == "torch" and not has_kernel:
        raise ValueError(
            f"kernel='torch': {type(ambiguity).__name__} has no torch kernel; use "
            "kernel='auto' or 'numpy' (its numpy solve, through the host)."
        )
    l = _float64(losses)
    if (
        kernel == "numpy"
        or not has_kernel
        or l.device.type == "cpu"
        and kernel == "auto"
    ):
        return _numpy_kernel(ambiguity, l, sample_weight, return_dual)
    return _torch_kernel(ambiguity, l, sample_weight, return_dual)


def robust_risk(ambiguity, losses, sample_weight=None, *, kernel="auto"):
    """Differentiable robust risk ``sum_i q_i l_i`` (``q`` detached), and ``q``.

    Its gradient with respect to ``losses`` is the worst-case weights
    (Danskin). Returned in the dtype of ``losses``.
    """
    _, q = risk_and_weights(ambiguity, losses, sample_weight, kernel=kernel)
    flat = losses.reshape(-1)
    return torch.dot(q.to(flat.dtype), flat), q


def _numpy_kernel(ambiguity, l, sample_weight, return_dual):
    device = l.device
    l_np = (l if device.type == "cpu" else l.cpu()).numpy()
    w_np = None
    if sample_weight is not None:
        w = check_batch_weight(sample_weight, l.shape[0], device)
        w_np = (w if device.type == "cpu" else w.cpu()).numpy()
    risk, q, dual = ambiguity._exact(l_np, w_np, validate=False)
    q_t = torch.from_numpy(q).to(device)
    risk_t = torch.tensor(risk, dtype=torch.float64, device=device)
    if not return_dual:
        return risk_t, q_t
    eta = math.nan
    if ambiguity._dual_is_threshold and not ambiguity.is_trivial():
        p = (
            np.broadcast_to(1.0, l_np.shape)
            if w_np is None
            else check_probability_weights(w_np, l_np.shape[0])
        )
        support = l_np[p > 0]
        if support.max() > support.min():
            eta = float(dual[0])
    return risk_t, q_t, torch.tensor(eta, dtype=torch.float64, device=device)


def _torch_kernel(ambiguity, l, sample_weight, return_dual):
    p = _probabilities(l, sample_weight)
    mean = torch.dot(p, l)
    nan = torch.full((), math.nan, dtype=torch.float64, device=l.device)
    if sample_weight is None:
        support = None
        lo, hi = torch.aminmax(l)
    else:
        support = p > 0
        lo = torch.where(support, l, math.inf).min()
        hi = torch.where(support, l, -math.inf).max()
    scale = hi - lo
    # one scalar crosses to the host to branch; the data stay on the device
    if ambiguity.is_trivial() or not bool(scale > 0):
        return (mean, p, nan) if return_dual else (mean, p)
    z = (l - lo) / scale
    if support is not None:
        z = torch.where(support, z, torch.zeros_like(l))
    risk_z, q, eta_z = ambiguity._torch_solve_unit(z, p)
    if support is not None:
        q = torch.where(support, q, torch.zeros_like(q))
    risk = torch.minimum(torch.maximum(lo + scale * risk_z, mean), hi)
    if return_dual:
        return risk, q, lo + scale * eta_z
    return risk, q


# -- torch kernels of the exact solves on z in [0, 1] with max z = 1 --------
def _on_max(z, p):
    q = torch.where(z >= 1.0, p, torch.zeros_like(p))
    return q / q.sum()


def cressie_read_unit(z, p, k, s, c):
    """Exact Cressie-Read solve on ``z``: ``(risk, q, eta)`` in units of ``z``."""
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


def kl_unit(z, p, rho):
    """Exact KL solve: the tilt ``t`` with ``KL(q_t || p) = rho``; eta is NaN."""
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
    nan = torch.full((), math.nan, dtype=z.dtype, device=z.device)
    return (
        torch.where(all_on_max, one, risk),
        torch.where(all_on_max, _on_max(z, p), q),
        nan,
    )


def cvar_unit(z, p, alpha):
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


def total_variation_unit(z, p, delta):
    """Exact total variation: ``(1 - delta) CVaR_{1 - delta} + delta max``."""
    if delta >= 1.0:
        one = torch.ones((), dtype=z.dtype, device=z.device)
        return one, _on_max(z, p), one
    cvar_risk, cvar_q, var = cvar_unit(z, p, 1.0 - delta)
    risk = (1.0 - delta) * cvar_risk + delta
    q = (1.0 - delta) * cvar_q + delta * _on_max(z, p)
    return risk, q, var


# -- expectation forms of the duals, for mini-batch training ----------------
def cvar_dual_terms(losses, eta, alpha):
    """Per-sample terms ``eta + (l - eta)_+ / alpha`` (Rockafellar-Uryasev)."""
    return eta + torch.clamp(losses - eta, min=0.0) / alpha


def cressie_read_dual_terms(losses, eta, log_lambda, s, c):
    """Per-sample terms of the Cressie-Read dual in expectation form.

    ``c (l - eta)_+^s / (s lambda^(s-1)) + c (s - 1) lambda / s + eta`` with
    ``lambda = exp(log_lambda)``; their mean minimized over ``(eta, lambda)``
    is the robust risk.
    """
    excess = torch.clamp(losses - eta, min=0.0)
    scaled = excess**s * (c / s * torch.exp(-(s - 1.0) * log_lambda))
    return scaled + (c * (s - 1.0) / s * torch.exp(log_lambda) + eta)


def cressie_read_log_lambda(losses, p, eta, s):
    """The optimal ``log lambda`` at ``eta``: ``log E_p[(l - eta)_+^s]^(1/s)``."""
    excess = torch.clamp(losses - eta, min=0.0)
    moment = torch.dot(p, excess**s).item() ** (1.0 / s)
    return math.log(max(moment, 1e-8))


class _CVaRDualMean(torch.autograd.Function):
    """``mean_i w_i (eta + (l_i - eta)_+ / alpha)`` with an analytic backward.

    One autograd node instead of five: the mini-batch criterion's cost.
    """

    @staticmethod
    def forward(ctx, losses, eta, weight, alpha):
        n = losses.shape[0]
        excess = torch.clamp(losses - eta, min=0.0)
        if weight is None:
            value = eta + excess.sum() / (alpha * n)
        else:
            value = (torch.dot(weight, excess) / alpha + eta * weight.sum()) / n
        ctx.save_for_backward(excess, weight)
        ctx.alpha = alpha
        return value

    @staticmethod
    def backward(ctx, grad):
        excess, weight = ctx.saved_tensors
        n = excess.shape[0]
        active = (excess > 0).to(excess.dtype)
        if weight is not None:
            active = active * weight
        grad_losses = active * (grad / (ctx.alpha * n))
        mass = 1.0 if weight is None else weight.sum() / n
        return grad_losses, grad * mass - grad_losses.sum(), None, None


class _CressieReadDualMean(torch.autograd.Function):
    """Mean of :func:`cressie_read_dual_terms` with an analytic backward."""

    @staticmethod
    def forward(ctx, losses, eta, log_lambda, weight, s, c):
        n = losses.shape[0]
        excess = torch.clamp(losses - eta, min=0.0)
        a = c / s * torch.exp(-(s - 1.0) * log_lambda)
        b = c * (s - 1.0) / s * torch.exp(log_lambda)
        powered = excess ** (s - 1.0)
        top = powered * excess
        if weight is None:
            mass = torch.ones((), dtype=losses.dtype, device=losses.device)
            moment = top.sum() / n
        else:
            mass = weight.sum() / n
            moment = torch.dot(weight, top) / n
        ctx.save_for_backward(powered, weight, a, b, moment, mass)
        ctx.s = s
        return a * moment + (b + eta) * mass

    @staticmethod
    def backward(ctx, grad):
        powered, weight, a, b, moment, mass = ctx.saved_tensors
        s = ctx.s
        n = powered.shape[0]
        slope = powered * (grad * a * s / n)
        if weight is not None:
            slope = slope * weight
        grad_eta = grad * mass - slope.sum()
        grad_log_lambda = grad * (b * mass - (s - 1.0) * a * moment)
        return slope, grad_eta, grad_log_lambda, None, None, None


def cvar_dual_mean(losses, eta, weight, alpha):
    """Mean of :func:`cvar_dual_terms` times ``weight`` (``None``: ones)."""
    return _CVaRDualMean.apply(losses, eta, weight, float(alpha))


def cressie_read_dual_mean(losses, eta, log_lambda, weight, s, c):
    """Mean of :func:`cressie_read_dual_terms` times ``weight`` (``None``: ones)."""
    return _CressieReadDualMean.apply(losses, eta, log_lambda, weight, s, c)
