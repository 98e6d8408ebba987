"""Discovery of the public estimators of the three packages."""

import importlib
import inspect

from sklearn.base import BaseEstimator

PACKAGES = ("skrobust", "skcausal", "skbandit")


def _public_modules(package):
    """Yield the package and the public submodules it exposes in ``__all__``."""
    module = importlib.import_module(package)
    yield module
    for name in getattr(module, "__all__", []):
        attr = getattr(module, name, None)
        if inspect.ismodule(attr):
            yield attr
    for sub in getattr(module, "_PUBLIC_SUBMODULES", ()):
        try:
            yield importlib.import_module(f"{package}.{sub}")
        except ImportError:  # optional dependency (e.g. torch) not installed
            continue


def all_estimators(packages=PACKAGES):
    """Return every public estimator class of the given packages.

    An estimator is a public (exported in ``__all__``), concrete subclass of
    :class:`sklearn.base.BaseEstimator` that has a ``fit`` method. Ambiguity
    sets derive from ``BaseEstimator`` for their ``get_params`` but have no
    ``fit``, so they are not listed.

    Parameters
    ----------
    packages : tuple of str, default=("skrobust", "skcausal", "skbandit")
        Import names of the packages to search.

    Returns
    -------
    estimators : list of (str, type)
        ``(qualified_name, class)`` pairs, sorted by name, without duplicates.

    Examples
    --------
    >>> from skrobust.utils import all_estimators
    >>> names = [name for name, _ in all_estimators(packages=("skrobust",))]
    >>> isinstance(names, list)
    True
    """
    found = {}
    for package in packages:
        for module in _public_modules(package):
            for name in getattr(module, "__all__", []):
                obj = getattr(module, name, None)
                if not inspect.isclass(obj) or inspect.isabstract(obj):
                    continue
                if not issubclass(obj, BaseEstimator) or not hasattr(obj, "fit"):
                    continue
                if name.startswith("_"):
                    continue
                qualified = f"{module.__name__}.{name}"
                # keep the shortest public path of each class
                key = obj
                if key not in found or len(qualified) < len(found[key]):
                    found[key] = qualified
    return sorted(((q, c) for c, q in found.items()), key=lambda item: item[0])
