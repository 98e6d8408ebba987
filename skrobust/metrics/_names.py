"""Renamed parameters of the evaluation tools (issue 15, one set of conventions).

The old names keep working for one release with a ``FutureWarning``, through
the conventions layer (:mod:`skrobust.utils._conventions`): function
arguments by :func:`_renamed_argument` (``resolve_renamed_param`` on the
arguments), result fields by :func:`_deprecated_field`.
"""

import warnings
from numbers import Real

from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from skrobust.utils._conventions import DEPRECATED, resolve_renamed_argument

#: default of a deprecated estimator parameter: a plain str equal to
#: DEPRECATED (the sentinel is a str subclass, whose type scikit-learn's
#: check_parameters_default_constructible rejects)
_DEPRECATED_DEFAULT = str(DEPRECATED)

#: constraints of the subpopulation mass (and of its deprecated name alpha)
_SIZE = Interval(Real, 0, 1, closed="right")
_OLD_SIZE = [_SIZE, Hidden(StrOptions({DEPRECATED}))]
#: constraints of the confidence level (and of its deprecated name)
_LEVEL = Interval(Real, 0, 1, closed="neither")
_OLD_LEVEL = [_LEVEL, Hidden(StrOptions({DEPRECATED}))]


def _renamed_argument(owner, old, new, old_value, new_value):
    """The value of a renamed argument of a function (FutureWarning if old)."""
    return resolve_renamed_argument(
        new_value, old_value, old=old, new=new, owner=owner, stacklevel=4
    )


def _subpopulation_size(owner, subpopulation_size, alpha):
    """``subpopulation_size``, from the old ``alpha`` if given (FutureWarning)."""
    size = _renamed_argument(
        owner, "alpha", "subpopulation_size", alpha, subpopulation_size
    )
    if size is None:
        raise TypeError(f"{owner}() missing the argument 'subpopulation_size'.")
    return float(size)


def _confidence_level(owner, confidence_level, confidence):
    """``confidence_level``, from the old ``confidence`` if given (FutureWarning)."""
    return float(
        _renamed_argument(
            owner, "confidence", "confidence_level", confidence, confidence_level
        )
    )


def _deprecated_field(old, new, owner):
    """A read-only property ``old`` returning ``new`` with a FutureWarning."""

    def getter(self):
        warnings.warn(
            f"{owner}.{old} is deprecated and will be removed in the next "
            f"release; use {owner}.{new} instead.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(self, new)

    getter.__doc__ = f"Deprecated alias of ``{new}`` (one release)."
    return property(getter)
