"""Input handling of the DRO LightGBM estimators: constant and categorical data."""

import numpy as np
import scipy.sparse as sp


def _all_constant(X):
    """Whether every column of ``X`` (dense or sparse) holds a single value."""
    if hasattr(X, "columns"):  # a DataFrame kept for its categorical columns
        return bool(np.all(X.nunique(dropna=False).to_numpy() <= 1))
    if sp.issparse(X):
        X = X.tocsc()
        high = X.max(axis=0).toarray().astype(np.float64)
        low = X.min(axis=0).toarray().astype(np.float64)
    else:
        # max - min, not np.ptp: np.ptp refuses boolean arrays
        high = np.max(X, axis=0).astype(np.float64)
        low = np.min(X, axis=0).astype(np.float64)
    return bool(np.all(high == low))


def _has_categorical(X):
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return False
    return any(str(dtype) == "category" for dtype in dtypes)


def _codes(X):
    """A float copy of a DataFrame with category columns replaced by codes."""
    out = X.copy()
    for column in X.columns:
        if str(X[column].dtype) == "category":
            codes = X[column].cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan  # a missing category
            out[column] = codes
    return out


# losses closer than this (relative to their scale) count as tied when the
# boosting weights are computed
_TIE_TOL = 1e-6
