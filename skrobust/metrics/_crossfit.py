"""Cross-fitted regression of per-sample performance on core variables."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing, check_random_state


def default_regressor():
    """First stage used when the user gives none: regularized boosting.

    Gradient boosting with early stopping and large leaves: flexible enough for
    interactions of the core variables, but with a small variance, which is
    what the second-order bias of the debiased estimators depends on.
    """
    return HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_leaf_nodes=8,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=True,
        random_state=0,
    )


def _fit_predict(regressor, Z, target, train, test):
    model = clone(regressor).fit(_safe_indexing(Z, train), target[train])
    prediction = model.predict(_safe_indexing(Z, test))
    return test, np.asarray(prediction, dtype=float).reshape(-1)


def crossfit_predict(
    regressor, Z, target, *, cv=5, n_repeats=1, n_jobs=None, random_state=None
):
    """Out-of-fold predictions of ``target`` from ``Z``, averaged over repeats.

    Each sample's prediction comes only from models that never saw it. With
    ``n_repeats > 1`` the K-fold split is redrawn and the out-of-fold
    predictions of the repeats are averaged (a bagged first stage).

    Parameters
    ----------
    regressor : regressor
        Cloned for every fold.
    Z : ndarray of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
    cv : int, default=5
        Number of folds.
    n_repeats : int, default=1
        Number of independent K-fold splits whose predictions are averaged.
    n_jobs : int, default=None
        Parallel jobs over (repeat, fold) pairs.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits.

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
    """
    rng = check_random_state(random_state)
    n = target.shape[0]
    if cv > n:
        raise ValueError(
            f"cv={cv} cross-fitting folds need at least {cv} samples; "
            f"got n_samples={n}."
        )
    tasks = []
    for _ in range(n_repeats):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        for train, test in KFold(cv, shuffle=True, random_state=seed).split(Z):
            tasks.append((train, test))
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(regressor, Z, target, train, test)
        for train, test in tasks
    )
    prediction = np.zeros(n)
    for test, values in results:
        prediction[test] += values
    return prediction / n_repeats
