"""Cross-fitted regression of per-sample performance on core variables.

The code lives in the cross-fitting engine, :mod:`skrobust._crossfit`; these
names stay importable from here.
"""

from skrobust._crossfit import (
    crossfit_predict,
    crossfit_subsets,
    default_regressor,
    first_stage_r2,
    fit_first_stage,
    fit_size,
    fold_labels,
    index_dtype,
)
from skrobust._crossfit import early_stopping_split as _early_stopping_split
from skrobust._crossfit._fitting import (
    _EARLY_STOPPING_MIN,
    _LEAF_FRACTION,
    _MAX_LEAF,
    _MIN_LEAF,
)
from skrobust._crossfit._regression import _fit_predict

__all__ = [
    "_EARLY_STOPPING_MIN",
    "_LEAF_FRACTION",
    "_MAX_LEAF",
    "_MIN_LEAF",
    "_early_stopping_split",
    "_fit_predict",
    "crossfit_predict",
    "crossfit_subsets",
    "default_regressor",
    "first_stage_r2",
    "fit_first_stage",
    "fit_size",
    "fold_labels",
    "index_dtype",
]
