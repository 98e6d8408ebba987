"""One set of conventions for the three packages: names, results, deprecations.

- Interval levels are ``confidence_level`` (as in SciPy), in (0, 1); the old
  ``alpha = 1 - confidence_level`` keeps working for one release with a
  ``FutureWarning`` (:func:`resolve_confidence_level`).
- Intervals are returned as :class:`ConfidenceInterval` (``low``, ``high``),
  the shape of SciPy's ``ConfidenceInterval``; it unpacks as a 2-tuple.
- Losses carry scikit-learn's names (:data:`LOSS_NAMES`); the old short names
  map to them with a ``FutureWarning`` (:func:`resolve_loss_name`).
- A renamed estimator parameter keeps its old name in ``__init__`` for one
  release, with the default :data:`DEPRECATED`; :func:`resolve_renamed_param`
  reads whichever the user set, in ``fit``.
"""

import warnings
from collections import namedtuple
from numbers import Real

import numpy as np

__all__ = [
    "DEPRECATED",
    "LOSS_NAMES",
    "ConfidenceInterval",
    "resolve_confidence_level",
    "resolve_loss_name",
    "resolve_renamed_argument",
    "resolve_renamed_param",
]


#: Default of a parameter kept for one release under its old name (a plain
#: string: scikit-learn's common checks require defaults of basic types).
DEPRECATED = "deprecated"

#: scikit-learn's loss names, and the old short names that map to them.
LOSS_NAMES = {
    "squared_error": "squared_error",
    "absolute_error": "absolute_error",
    "huber": "huber",
    "log_loss": "log_loss",
    "hinge": "hinge",
    # old names (one release, FutureWarning)
    "squared": "squared_error",
    "absolute": "absolute_error",
    "logistic": "log_loss",
    "log": "log_loss",
}

ConfidenceInterval = namedtuple("ConfidenceInterval", ["low", "high"])
ConfidenceInterval.__doc__ = """Bounds ``(low, high)`` of a confidence interval.

The shape of SciPy's ``ConfidenceInterval``: a 2-tuple with named fields, so
``low, high = ci`` and ``ci.low`` both work.

Examples
--------
>>> from skrobust.utils import ConfidenceInterval
>>> ci = ConfidenceInterval(0.1, 0.4)
>>> ci.high - ci.low
0.30000000000000004
"""


def _is_set(value):
    return not (isinstance(value, str) and value == DEPRECATED)


def resolve_confidence_level(confidence_level, alpha=DEPRECATED, *, owner):
    """The confidence level to use, from ``confidence_level`` or the old ``alpha``.

    Parameters
    ----------
    confidence_level : float
        The level in (0, 1), e.g. 0.95.
    alpha : float or DEPRECATED, default=DEPRECATED
        The old name, ``1 - confidence_level``; when given it wins, with a
        ``FutureWarning``.
    owner : str
        What the parameter belongs to, for the messages (e.g.
        ``"AIPW.conf_int"``).

    Returns
    -------
    confidence_level : float

    Raises
    ------
    ValueError
        If the level is not a real number in (0, 1).

    Examples
    --------
    >>> from skrobust.utils import resolve_confidence_level
    >>> resolve_confidence_level(0.9, owner="f")
    0.9
    """
    if _is_set(alpha):
        warnings.warn(
            f"{owner}: alpha is deprecated and will be removed in the next "
            f"release; use confidence_level={1 - alpha!r} (= 1 - alpha) instead.",
            FutureWarning,
            stacklevel=3,
        )
        if not isinstance(alpha, Real) or not 0.0 < alpha < 1.0:
            raise ValueError(f"{owner}: alpha must be in (0, 1); got {alpha!r}.")
        confidence_level = 1.0 - alpha
    if (
        isinstance(confidence_level, bool)
        or not isinstance(confidence_level, Real)
        or not np.isfinite(confidence_level)
        or not 0.0 < confidence_level < 1.0
    ):
        raise ValueError(
            f"{owner}: confidence_level must be a number in (0, 1); got "
            f"{confidence_level!r}."
        )
    return float(confidence_level)


def resolve_loss_name(loss, *, owner, allowed=None):
    """scikit-learn's name of ``loss``, warning once for an old short name.

    Parameters
    ----------
    loss : str
        A name of :data:`LOSS_NAMES`.
    owner : str
        The estimator or function, for the messages.
    allowed : collection of str, default=None
        The canonical names this owner accepts; ``None`` means all.

    Returns
    -------
    loss : str
        The canonical name.

    Raises
    ------
    ValueError
        If the name is unknown or not allowed.

    Examples
    --------
    >>> import warnings
    >>> from skrobust.utils import resolve_loss_name
    >>> resolve_loss_name("huber", owner="m")
    'huber'
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     resolve_loss_name("squared", owner="m")
    'squared_error'
    """
    canonical = LOSS_NAMES.get(loss) if isinstance(loss, str) else None
    if canonical is None or (allowed is not None and canonical not in allowed):
        names = sorted(allowed if allowed is not None else set(LOSS_NAMES.values()))
        raise ValueError(f"{owner}: loss must be one of {names}; got {loss!r}.")
    if canonical != loss:
        warnings.warn(
            f"{owner}: loss={loss!r} is deprecated and will be removed in the "
            f"next release; use loss={canonical!r} (scikit-learn's name).",
            FutureWarning,
            stacklevel=3,
        )
    return canonical


def resolve_renamed_argument(new_value, old_value, *, old, new, owner, stacklevel=3):
    """The value of a renamed argument: the old one if the caller set it, else the new.

    The old name stays in the signature with the default :data:`DEPRECATED`
    for one release; setting it warns (``FutureWarning``). For a rename that
    also changes the meaning (``alpha`` -> ``confidence_level``) use
    :func:`resolve_confidence_level`.

    Parameters
    ----------
    new_value, old_value : object
        What the caller passed under the new and the old name.
    old, new : str
        The two names.
    owner : str
        The function or estimator, for the message.
    stacklevel : int, default=3
        Of the warning: 3 points at the caller of the function that calls
        this one.

    Returns
    -------
    value : object

    Examples
    --------
    >>> import warnings
    >>> from skrobust.utils import DEPRECATED, resolve_renamed_argument
    >>> resolve_renamed_argument(0.9, DEPRECATED, old="alpha", new="level", owner="f")
    0.9
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     resolve_renamed_argument(0.9, 0.5, old="alpha", new="level", owner="f")
    0.5
    """
    if not _is_set(old_value):
        return new_value
    warnings.warn(
        f"{owner}: the parameter {old!r} is deprecated and will be removed in "
        f"the next release; use {new}={old_value!r} instead.",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return old_value


def resolve_renamed_param(estimator, old, new):
    """The value of a renamed estimator parameter (see resolve_renamed_argument).

    The old name stays in ``__init__`` with the default :data:`DEPRECATED`
    for one release; setting it warns (``FutureWarning``) in ``fit``.

    Parameters
    ----------
    estimator : object
        Holds both attributes.
    old, new : str
        The parameter's old and new names.

    Returns
    -------
    value : object

    Examples
    --------
    >>> import warnings
    >>> from skrobust.utils import DEPRECATED, resolve_renamed_param
    >>> class M:
    ...     def __init__(self, level=0.9, alpha=DEPRECATED):
    ...         self.level, self.alpha = level, alpha
    >>> resolve_renamed_param(M(), "alpha", "level")
    0.9
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     resolve_renamed_param(M(alpha=0.5), "alpha", "level")
    0.5
    """
    return resolve_renamed_argument(
        getattr(estimator, new),
        getattr(estimator, old),
        old=old,
        new=new,
        owner=type(estimator).__name__,
        stacklevel=4,
    )
