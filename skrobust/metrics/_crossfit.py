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


def _fit_predict(regressor, Z, target, train, test, sample_weight=None):
    fit_params = {}
    if sample_weight is not None:
        fit_params["sample_weight"] = sample_weight[train]
    model = clone(regressor).fit(_safe_indexing(Z, train), target[train], **fit_params)
    prediction = model.predict(_safe_indexing(Z, test))
    return test, np.asarray(prediction, dtype=float).reshape(-1)


def fold_labels(n_samples, cv, n_repeats, random_state):
    """Fold labels of ``n_repeats`` independent shuffled K-fold splits.

    Parameters
    ----------
    n_samples : int
    cv : int
        Number of folds.
    n_repeats : int
        Number of independent splits.
    random_state : int, RandomState instance or None
        Seeds the splits.

    Returns
    -------
    folds : ndarray of shape (n_repeats, n_samples)
        ``folds[r, i]`` is the fold of sample ``i`` in split ``r``.
    """
    if cv > n_samples:
        raise ValueError(
            f"cv={cv} cross-fitting folds need at least {cv} samples; "
            f"got n_samples={n_samples}."
        )
    n_train = n_samples - -(-n_samples // cv)  # smallest training fold of KFold
    if n_train < 2:
        raise ValueError(
            f"cv={cv} cross-fitting of n_samples={n_samples} leaves {n_train} "
            "training sample(s) in a fold; at least 2 are needed. Use more samples."
        )
    rng = check_random_state(random_state)
    folds = np.empty((n_repeats, n_samples), dtype=int)
    for r in range(n_repeats):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        splitter = KFold(cv, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(splitter.split(np.zeros((n_samples, 1)))):
            folds[r, test] = k
    return folds


def crossfit_subsets(
    regressor,
    Z,
    target,
    folds,
    subsets,
    *,
    halves=None,
    sample_weight=None,
    n_jobs=None,
    verbose=0,
):
    """Out-of-fold predictions on several subsets of the samples.

    For each subset, each of its samples is predicted by models fitted on the
    other folds *of that subset* (the fold labels are shared by all subsets,
    so a subset's cross-fitting differs from the full one only by the samples
    it leaves out). With ``halves``, the training folds are split further by
    the half labels and one model is fitted on each half: every sample then
    gets two predictions from models fitted on disjoint data.

    Parameters
    ----------
    regressor : regressor
        Cloned for every fold.
    Z : array-like of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
    folds : ndarray of shape (n_repeats, n_samples)
        Fold labels from :func:`fold_labels`.
    subsets : list of ndarray of int
        Sample indices of each subset.
    halves : ndarray of shape (n_repeats, n_samples) of {0, 1}, default=None
        Half labels of each repeat; ``None`` fits one model per fold.
    sample_weight : ndarray of shape (n_samples,), default=None
        Passed to the regressor's ``fit``.
    n_jobs : int, default=None
        Parallel jobs over the fits.
    verbose : int, default=0
        Verbosity of joblib.

    Returns
    -------
    predictions : list of ndarray of shape (n_repeats, n_parts, n_subset)
        Out-of-fold predictions for the samples of each subset, in its order,
        per repeat and per half (``n_parts`` is 2 with ``halves``, else 1).
    """
    n_repeats = folds.shape[0]
    n_parts = 1 if halves is None else 2
    tasks = []
    for s, subset in enumerate(subsets):
        for r in range(n_repeats):
            labels = folds[r, subset]
            for k in np.unique(labels):
                test = subset[labels == k]
                for h in range(n_parts):
                    train = labels != k
                    if halves is not None:
                        train &= halves[r, subset] == h
                    train = subset[train]
                    if train.size == 0:
                        raise ValueError(
                            "a cross-fitting fold (or half of it) holds every "
                            "sample; use more samples or fewer folds."
                        )
                    tasks.append((s, r, h, train, test))
    results = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_fit_predict)(regressor, Z, target, train, test, sample_weight)
        for _, _, _, train, test in tasks
    )
    n = target.shape[0]
    out = [np.zeros((n_repeats, n_parts, n)) for _ in subsets]
    for (s, r, h, _, _), (test, values) in zip(tasks, results, strict=True):
        out[s][r, h, test] = values
    return [table[:, :, subset] for table, subset in zip(out, subsets, strict=True)]


def crossfit_predict(
    regressor,
    Z,
    target,
    *,
    cv=5,
    n_repeats=1,
    n_jobs=None,
    verbose=0,
    random_state=None,
):
    """Out-of-fold predictions of ``target`` from ``Z``, averaged over repeats.

    Each sample's prediction comes only from models that never saw it. With
    ``n_repeats > 1`` the K-fold split is redrawn and the out-of-fold
    predictions of the repeats are averaged (a bagged first stage).

    Parameters
    ----------
    regressor : regressor
        Cloned for every fold.
    Z : array-like of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
    cv : int, default=5
        Number of folds.
    n_repeats : int, default=1
        Number of independent K-fold splits whose predictions are averaged.
    n_jobs : int, default=None
        Parallel jobs over (repeat, fold) pairs.
    verbose : int, default=0
        Verbosity of joblib.
    random_state : int, RandomState instance or None, default=None
        Seeds the splits.

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
    """
    n = target.shape[0]
    folds = fold_labels(n, cv, n_repeats, random_state)
    predictions = crossfit_subsets(
        regressor, Z, target, folds, [np.arange(n)], n_jobs=n_jobs, verbose=verbose
    )[0]
    return predictions.mean(axis=(0, 1))
