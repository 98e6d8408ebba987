"""Logged bandit feedback carried inside ``y``.

A policy learns from logged decisions: the action that was taken, the reward
it earned and, for off-policy evaluation, the probability with which the
logging policy took it. These are per-sample quantities that are not features,
so they travel together inside ``y`` as a structured array (the way
scikit-survival carries event indicator and time). ``Pipeline`` transforms X
only, every cross-validation splitter indexes ``y`` row-wise, and
``GridSearchCV`` hands the same rows to ``fit`` and ``score``: no global
configuration is needed.
"""

import numbers

import numpy as np
from sklearn.utils._param_validation import validate_params

FEEDBACK_FIELDS = ("action", "reward", "propensity")


@validate_params(
    {
        "actions": ["array-like"],
        "rewards": ["array-like"],
        "propensities": ["array-like", numbers.Real, None],
    },
    prefer_skip_nested_validation=True,
)
def make_feedback(actions, rewards, propensities=None):
    """Pack logged actions, rewards and propensities into one target ``y``.

    The result is a 1-d structured array with fields ``"action"``,
    ``"reward"`` and ``"propensity"``. Pass it as ``y`` to a policy's
    ``fit``/``partial_fit``/``score``, to :mod:`skbandit.metrics` scorers,
    and through ``GridSearchCV``, ``cross_validate`` or ``Pipeline``.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    actions : array-like of shape (n_samples,)
        The arm taken in each logged round. Any hashable labels (integers,
        strings) are accepted; a policy maps them to its ``classes_``.
    rewards : array-like of shape (n_samples,)
        The reward observed for the action taken. Must be finite.
    propensities : array-like of shape (n_samples,), float or None, default=None
        The probability with which the logging policy chose the logged
        action, needed by off-policy estimators. Each must lie in (0, 1].
        ``None`` means unknown (stored as NaN): policies can still learn from
        the feedback, but inverse-propensity estimators will refuse it.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        Structured array with fields ``action`` (the dtype of ``actions``),
        ``reward`` (float64) and ``propensity`` (float64, NaN if unknown).

    Raises
    ------
    ValueError
        If the inputs have different lengths, are not 1-d, rewards are not
        finite, or a propensity is outside (0, 1].

    See Also
    --------
    skbandit.metrics.ips_value : Value estimate that uses the propensities.

    Examples
    --------
    >>> from skbandit import make_feedback
    >>> y = make_feedback(["a", "b", "a"], [1.0, 0.0, 1.0], [0.5, 0.5, 0.5])
    >>> y["action"]
    array(['a', 'b', 'a'], dtype='<U1')
    >>> y["reward"].mean()
    np.float64(0.66...)
    """
    actions = np.asarray(actions)
    if actions.ndim != 1:
        raise ValueError(f"actions must be 1-dimensional; got shape {actions.shape}.")
    n = actions.shape[0]
    if actions.dtype.kind in "fc":
        missing = ~np.isfinite(actions)
    elif actions.dtype.kind == "O":
        missing = actions != actions  # NaN is the only value unequal to itself
    else:
        missing = np.zeros(n, dtype=bool)
    if np.any(missing):
        raise ValueError(
            "actions contains NaN or infinite values; every logged round needs "
            "the arm that was taken."
        )
    try:
        rewards = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rewards must be numbers; got {exc}") from exc
    if rewards.shape != (n,):
        raise ValueError(
            f"rewards has shape {rewards.shape}, but {n} actions were given."
        )
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards contains NaN or infinite values.")
    if propensities is None:
        prop = np.full(n, np.nan)
    else:
        try:
            prop = np.asarray(propensities, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"propensities must be numbers; got {exc}") from exc
        if prop.ndim == 0:
            prop = np.full(n, float(prop))
        if prop.shape != (n,):
            raise ValueError(
                f"propensities has shape {prop.shape}, but {n} actions were given."
            )
        if not np.all(np.isfinite(prop)):
            raise ValueError("propensities contains NaN or infinite values.")
        if np.any(prop <= 0) or np.any(prop > 1):
            bad = prop[(prop <= 0) | (prop > 1)][0]
            raise ValueError(
                "propensities must lie in (0, 1]: a logged action had probability "
                f"{bad}; off-policy estimates are undefined for actions the logging "
                "policy could not take."
            )
    if actions.dtype.kind == "O":
        action_dtype = object
    else:
        action_dtype = actions.dtype
    y = np.empty(
        n,
        dtype=[("action", action_dtype), ("reward", "f8"), ("propensity", "f8")],
    )
    y["action"] = actions
    y["reward"] = rewards
    y["propensity"] = prop
    return y


def _check_propensity_values(prop, where):
    """Raise unless every known (non-NaN) propensity lies in (0, 1]."""
    known = ~np.isnan(prop)
    bad = known & ~((prop > 0) & (prop <= 1))
    if np.any(bad):
        value = prop[bad][0]
        raise ValueError(
            f"propensity {float(value)!r} in {where} is outside (0, 1]: every logged "
            "action needs the positive probability (at most 1) with which the "
            "logging policy took it; NaN marks an unknown propensity."
        )


def _pack(actions, rewards, propensities):
    """Feedback from columns; NaN propensities (unknown) are kept."""
    y = make_feedback(np.asarray(actions), np.asarray(rewards))
    if propensities is not None:
        try:
            prop = np.asarray(propensities, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"propensity values in y must be numbers; {exc}") from exc
        _check_propensity_values(prop, "y")
        y["propensity"] = prop
    return y


def coerce_feedback(y):
    """Return ``y`` as a plain feedback array, or unchanged when it holds labels.

    Structured arrays (record arrays included) and DataFrames whose fields or
    columns name feedback are read by field name: ``action`` and ``reward``
    are required and a missing ``propensity`` field means unknown propensities
    (NaN). A structured ``y`` missing ``action`` or ``reward``, or a 2-d ``y``
    with several columns, raises, so that feedback is never misread as labels.
    """
    columns = getattr(y, "columns", None)
    names = getattr(getattr(y, "dtype", None), "names", None)
    if columns is not None and getattr(y, "ndim", 1) == 2:
        names = [str(c) for c in columns]
        if set(FEEDBACK_FIELDS).intersection(names):
            missing = [f for f in FEEDBACK_FIELDS[:2] if f not in names]
            if missing:
                raise ValueError(
                    f"y has columns {names} but no {missing} column: bandit "
                    "feedback needs the logged action and its reward; build it "
                    "with skbandit.make_feedback(actions, rewards, propensities)."
                )
            prop = y["propensity"] if "propensity" in names else None
            return _pack(y["action"], y["reward"], prop)
    if names is not None:
        missing = [f for f in FEEDBACK_FIELDS[:2] if f not in names]
        if missing:
            raise ValueError(
                f"y is a structured array with fields {list(names)} but no "
                f"{missing} field: bandit feedback needs the logged action and "
                "its reward; build it with skbandit.make_feedback(actions, "
                "rewards, propensities)."
            )
        if (
            type(y) is np.ndarray
            and y.dtype.type is np.void
            and all(f in names for f in FEEDBACK_FIELDS)
        ):
            return y  # already feedback: no copy
        y = np.asarray(y).reshape(-1)
        prop = y["propensity"] if "propensity" in names else None
        return _pack(y["action"], y["reward"], prop)
    shape = y.shape if hasattr(y, "shape") else np.asarray(y).shape
    if len(shape) == 2 and shape[1] > 1:
        raise ValueError(
            f"y has shape {shape}: a 2-d y is not read as bandit feedback (which "
            "column is the action, which the reward?). Build y with "
            "skbandit.make_feedback(actions, rewards, propensities), or pass a "
            "1-d array of labels for full-information feedback."
        )
    return y


def is_feedback(y):
    """Return True when ``y`` is a structured feedback array."""
    names = getattr(getattr(y, "dtype", None), "names", None)
    return names is not None and all(f in names for f in FEEDBACK_FIELDS)


def check_feedback(y, n_samples=None, *, require_propensities=False):
    """Split ``y`` into actions, rewards and propensities.

    Parameters
    ----------
    y : structured ndarray or DataFrame
        Output of :func:`make_feedback` (possibly indexed by a CV splitter),
        or any structured array or DataFrame with ``action`` and ``reward``
        fields (and optionally ``propensity``).
    n_samples : int or None, default=None
        Expected length.
    require_propensities : bool, default=False
        Raise if any propensity is unknown.

    Returns
    -------
    actions, rewards, propensities : ndarray of shape (n_samples,)
    """
    y = coerce_feedback(y)
    if not is_feedback(y):
        raise ValueError(
            "y must be logged feedback built by skbandit.make_feedback(actions, "
            f"rewards, propensities); got an array of dtype {np.asarray(y).dtype}."
        )
    y = np.asarray(y).reshape(-1)
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(
            f"y holds {y.shape[0]} logged rounds, but X has {n_samples} rows."
        )
    actions = np.asarray(y["action"])
    rewards = np.asarray(y["reward"], dtype=np.float64)
    prop = np.asarray(y["propensity"], dtype=np.float64)
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards in y contain NaN or infinite values.")
    # a known propensity must be a probability, whether or not it is used
    _check_propensity_values(prop, "y")
    if require_propensities and np.any(np.isnan(prop)):
        raise ValueError(
            "y has no logging propensities; build it with "
            "make_feedback(actions, rewards, propensities) for off-policy "
            "evaluation."
        )
    return actions, rewards, prop
