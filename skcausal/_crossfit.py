"""skcausal's cross-fitting: the engine of :mod:`skrobust._crossfit`.

Folds are stratified on the treatment and seeded by ``random_state``. For each
fold the nuisance models (propensity, outcome) are cloned, fit on the other
folds and evaluated on the held-out fold; the out-of-fold predictions are
stacked. The outcome step is a callable so that the C-Learner can fit a
constrained outcome model that sees the held-out fold's propensities.

The code lives in the engine; the old private names stay importable from here
(:mod:`skcausal._trimming` and :mod:`skcausal._worst_case` use them).
:class:`InSampleSplit`, skcausal's public splitter, lives here.
"""

import numpy as np

from skrobust import _crossfit as _engine

# the old private names of the engine's functions
_SEED_MAX = _engine.SEED_MAX
_SingleModel = _engine.SingleModel
_TwoModels = _engine.TwoModels
_arm_rows = _engine.arm_rows
_crossfit = _engine.crossfit_nuisances
_fit_fold = _engine.fit_fold
_fit_weighted = _engine.fit_weighted
_own_parameters = _engine.own_parameters
_plain_outcome_fitter = _engine.plain_outcome_fitter
_predict_outcome = _engine.predict_outcome
_predict_propensity = _engine.predict_propensity
_seed_random_states = _engine.seed_random_states
_train_part = _engine.train_part
_make_folds = _engine.treatment_folds
_weight_params = _engine.weight_params

__all__ = [
    "InSampleSplit",
    "_SEED_MAX",
    "_SingleModel",
    "_TwoModels",
    "_arm_rows",
    "_crossfit",
    "_fit_fold",
    "_fit_weighted",
    "_make_folds",
    "_own_parameters",
    "_plain_outcome_fitter",
    "_predict_outcome",
    "_predict_propensity",
    "_seed_random_states",
    "_train_part",
    "_weight_params",
]


class InSampleSplit:
    """Fit the nuisances on all units instead of cross-fitting them.

    A cross-validation object for the ``cv`` parameter of the skcausal
    estimators: every split trains on the whole sample and evaluates on one
    of ``n_splits`` interleaved parts, so each unit is evaluated once by a
    model that saw it. This is the classical (not cross-fitted) doubly
    robust estimator; it is valid for parametric nuisance models (linear or
    logistic regression) and is the variant behind the Kang and Schafer
    figures of Cai, Fonseca, Hou and Namkoong. With flexible nuisance
    models, keep cross-fitting.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    n_splits : int, default=2
        Number of evaluation parts (at least 2). Deterministic nuisance
        models give the same predictions whatever its value.

    See Also
    --------
    sklearn.model_selection.StratifiedKFold : The default cross-fitting
        splitter.

    Examples
    --------
    >>> from skcausal import AIPW, InSampleSplit
    >>> from skcausal.datasets import make_kang_schafer
    >>> X, y = make_kang_schafer(n_samples=200, random_state=0)
    >>> est = AIPW(cv=InSampleSplit()).fit(X, y)
    >>> round(float(est.potential_outcome_means_[1]) / 210, 1)
    1.0
    """

    def __init__(self, n_splits=2):
        self.n_splits = n_splits

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits.

        Parameters
        ----------
        X, y, groups : object
            Ignored.

        Returns
        -------
        n_splits : int
        """
        return int(self.n_splits)

    def split(self, X, y=None, groups=None):
        """Yield ``(all units, every n_splits-th unit)`` pairs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y, groups : object
            Ignored.

        Yields
        ------
        train : ndarray
            All indices.
        test : ndarray
            The indices ``k, k + n_splits, ...`` of part ``k``.
        """
        if not isinstance(self.n_splits, int | np.integer) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an int >= 2; got {self.n_splits!r}.")
        index = np.arange(len(X))
        for k in range(int(self.n_splits)):
            yield index, index[k :: int(self.n_splits)]
