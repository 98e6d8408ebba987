"""Off-policy value estimates from logged bandit feedback."""

import numpy as np
from sklearn.utils._param_validation import validate_params


def _check_arrays(rewards, propensities, target_propensities, sample_weight):
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    prop = np.asarray(propensities, dtype=np.float64).reshape(-1)
    target = np.asarray(target_propensities, dtype=np.float64).reshape(-1)
    n = rewards.shape[0]
    if n == 0:
        raise ValueError("rewards is empty; at least one logged round is required.")
    for name, arr in (("propensities", prop), ("target_propensities", target)):
        if arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}; expected ({n},).")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards contains NaN or infinite values.")
    if np.any(prop <= 0) or np.any(prop > 1):
        raise ValueError(
            "propensities must lie in (0, 1]; a logged action with propensity 0 "
            "could not have been taken by the logging policy."
        )
    if np.any(target < 0) or np.any(target > 1):
        raise ValueError("target_propensities must lie in [0, 1].")
    if sample_weight is None:
        w = np.ones(n)
    else:
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"sample_weight must be {n} finite non-negative numbers.")
        if w.sum() <= 0:
            raise ValueError("sample_weight sums to zero.")
    return rewards, prop, target, w


@validate_params(
    {
        "rewards": ["array-like"],
        "propensities": ["array-like"],
        "target_propensities": ["array-like"],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def snips_value(rewards, propensities, target_propensities, sample_weight=None):
    """Self-normalized inverse propensity score (SNIPS) of a target policy.

    Parameters
    ----------
    rewards : array-like of shape (n_samples,)
        Logged rewards.
    propensities : array-like of shape (n_samples,)
        Probabilities with which the logging policy took the logged actions.
    target_propensities : array-like of shape (n_samples,)
        Probabilities with which the target policy takes the logged actions.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logged rounds.

    Returns
    -------
    value : float
        :math:`\\sum_i w_i \\rho_i r_i / \\sum_i w_i \\rho_i` with
        :math:`\\rho_i = \\pi(a_i|x_i)/\\mu(a_i|x_i)`; 0 if every ratio is 0.

    Examples
    --------
    >>> from skbandit.metrics import snips_value
    >>> snips_value([1.0, 0.0], [0.5, 0.5], [1.0, 0.0])
    1.0
    """
    r, p, t, w = _check_arrays(
        rewards, propensities, target_propensities, sample_weight
    )
    rho = w * t / p
    total = rho.sum()
    return float((rho * r).sum() / total) if total > 0 else 0.0
