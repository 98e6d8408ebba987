"""Validation of ``ambiguity`` parameters: one constraint, one check.

Every estimator and function that takes an ambiguity set declares it with
:func:`ambiguity_constraint` in its ``_parameter_constraints`` and turns it
into a fresh, validated object with :func:`check_ambiguity` in ``fit``. This
module imports the sets; the sets import only ``_base``, so there is no
import circle.
"""

from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, StrOptions

from skrobust.ambiguity._base import AmbiguitySet
from skrobust.ambiguity._cressie_read import ChiSquare
from skrobust.ambiguity._cvar import CVaR
from skrobust.ambiguity._kl import KL

#: The string shortcuts :func:`check_ambiguity` accepts.
AMBIGUITY_SHORTCUTS = frozenset({"chi2", "kl", "cvar", "erm"})


def ambiguity_constraint(*, shortcuts=AMBIGUITY_SHORTCUTS, feature_space=False):
    """The ``_parameter_constraints`` entry of an ``ambiguity`` parameter.

    Parameters
    ----------
    shortcuts : collection of str, default=AMBIGUITY_SHORTCUTS
        The string shortcuts the owner accepts (a subset of
        :data:`AMBIGUITY_SHORTCUTS`); empty for none.
    feature_space : bool, default=False
        Whether feature-space sets (e.g. ``Wasserstein``) are accepted too.

    Returns
    -------
    constraints : list
        For scikit-learn's parameter validation.

    Examples
    --------
    >>> from skrobust.ambiguity import ambiguity_constraint
    >>> len(ambiguity_constraint())
    2
    """
    unknown = set(shortcuts) - AMBIGUITY_SHORTCUTS
    if unknown:
        raise ValueError(f"unknown ambiguity shortcuts {sorted(unknown)}")
    constraints = [HasMethods(["risk_and_weights", "get_params"])]
    if feature_space:
        constraints.append(HasMethods(["penalty", "robust_risk"]))
    if shortcuts:
        constraints.append(StrOptions(set(shortcuts)))
    return constraints


def check_ambiguity(ambiguity, *, name="ambiguity", feature_space=True):
    """Return a validated, fresh ambiguity set from an object or a shortcut.

    Estimators call this in ``fit`` so that they never modify the object the
    user passed.

    Parameters
    ----------
    ambiguity : AmbiguitySet or {"chi2", "kl", "cvar", "erm"}
        An ambiguity-set object, or a shortcut: ``"chi2"`` is
        ``ChiSquare()``, ``"kl"`` is ``KL()``, ``"cvar"`` is ``CVaR()`` (each
        with its default size) and ``"erm"`` is ``ChiSquare(radius=0)``, the
        plain average.
    name : str, default="ambiguity"
        Parameter name used in error messages.
    feature_space : bool, default=True
        Whether feature-space sets (:class:`FeatureAmbiguitySet`, e.g.
        ``Wasserstein``) are accepted; with ``False`` only sets of the
        loss-vector protocol (:class:`ReweightingAmbiguitySet` or objects
        with its methods) are, and anything else raises a TypeError.

    Returns
    -------
    ambiguity : AmbiguitySet
        A clone of the given object, with its parameters validated.

    Examples
    --------
    >>> from skrobust.ambiguity import check_ambiguity
    >>> check_ambiguity("cvar")
    CVaR()
    """
    shortcuts = {
        "chi2": ChiSquare,
        "kl": KL,
        "cvar": CVaR,
        "erm": lambda: ChiSquare(radius=0.0),
    }
    if isinstance(ambiguity, type):
        raise TypeError(
            f"{name} must be an ambiguity-set object, not the class "
            f"{ambiguity.__name__}: write {ambiguity.__name__}(...) with its size."
        )
    if isinstance(ambiguity, str):
        if ambiguity not in shortcuts:
            raise ValueError(
                f"{name}={ambiguity!r} is not a known shortcut; use one of "
                f"{sorted(shortcuts)} or an ambiguity-set object."
            )
        result = shortcuts[ambiguity]()
    elif _is_reweighting(ambiguity) or (feature_space and _is_feature_space(ambiguity)):
        result = clone(ambiguity)
    else:
        kinds = "an ambiguity set (e.g. skrobust.ambiguity.ChiSquare)"
        if not feature_space and _is_feature_space(ambiguity):
            kinds = (
                "a set of reweightings of the samples (ChiSquare, CressieRead, "
                "KL, CVaR, TotalVariation); feature-space sets are not "
                "supported here"
            )
        raise TypeError(
            f"{name} must be {kinds} or a shortcut string; got "
            f"{type(ambiguity).__name__}."
        )
    if hasattr(result, "_validate_params"):
        result._validate_params()
    return result


def _is_reweighting(ambiguity):
    """Whether ``ambiguity`` follows the loss-vector protocol."""
    if isinstance(ambiguity, AmbiguitySet):
        return not ambiguity.feature_space
    return all(
        hasattr(ambiguity, m) for m in ("risk", "worst_case_weights", "get_params")
    )


def _is_feature_space(ambiguity):
    """Whether ``ambiguity`` follows the feature-space protocol."""
    if isinstance(ambiguity, AmbiguitySet):
        return bool(ambiguity.feature_space)
    return all(hasattr(ambiguity, m) for m in ("penalty", "robust_risk", "get_params"))
