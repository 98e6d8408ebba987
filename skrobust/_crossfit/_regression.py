"""Out-of-fold predictions of a regression on label folds (repeated, halved)."""

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from skrobust._crossfit._fitting import fit_first_stage, fit_weighted
from skrobust._crossfit._folds import fold_labels, index_dtype, train_part
from skrobust._crossfit._loop import map_folds


def first_stage_r2(target, prediction, folds, weights=None):
    """Cross-fitted R^2 of a first stage against the cross-fitted constant.

    The reference is the held-out mean squared error of the training folds'
    (weighted) means, with the same fold labels: ``1 - mse(prediction) /
    mse(constant)``, so a value <= 0 means the first stage predicts the
    held-out target no better than a constant. ``nan`` when the target is
    constant (nothing to explain).

    Parameters
    ----------
    target : ndarray of shape (n_samples,)
    prediction : ndarray of shape (n_samples,)
        Out-of-fold predictions.
    folds : ndarray of shape (n_repeats, n_samples)
        Fold labels of the cross-fit.
    weights : ndarray of shape (n_samples,), default=None
        Frequency weights; ``None`` means ones.

    Returns
    -------
    r2 : float
    """
    w = np.ones_like(target) if weights is None else weights
    mse_constant = 0.0
    for labels in folds:
        fold_mass = np.bincount(labels, weights=w)
        fold_sum = np.bincount(labels, weights=w * target)
        train_mass = fold_mass.sum() - fold_mass
        with np.errstate(invalid="ignore", divide="ignore"):
            constant = (fold_sum.sum() - fold_sum) / train_mass
        constant = np.where(train_mass > 0, constant, 0.0)
        mse_constant += np.dot(w, (target - constant[labels]) ** 2)
    mse_constant /= folds.shape[0]
    if not mse_constant > 0:
        return float("nan")
    return float(1.0 - np.dot(w, (target - prediction) ** 2) / mse_constant)


def _fit_predict(regressor, Z, target, subset, labels, k, part, sample_weight=None):
    """Fit on the training folds of ``subset`` (one half of them) and predict
    its fold ``k``; the index arrays are built here, one fit at a time, so the
    cross-fit never holds them for every fit at once."""
    test = labels == k
    train = ~test
    if part is not None:
        train &= part
    if subset is not None:  # else a mask of every sample's rows
        train = subset[train]
    position = np.flatnonzero(test).astype(index_dtype(labels.shape[0]))
    del test
    if not np.any(train):
        raise ValueError(
            "a cross-fitting fold (or half of it) holds every sample; use more "
            "samples or a smaller cv."
        )
    model = fit_first_stage(
        regressor, lambda rows: _safe_indexing(Z, rows), train, target, sample_weight
    )
    del train
    rows = position if subset is None else subset[position]
    prediction = model.predict(_safe_indexing(Z, rows))
    return position, np.asarray(prediction, dtype=float).reshape(-1)


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
    subsets : list of ndarray of int or None
        Sample indices of each subset; ``None`` means every sample (no index
        array is held for it).
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

    def tasks():
        for s, subset in enumerate(subsets):
            for r in range(n_repeats):
                labels = folds[r] if subset is None else folds[r, subset]
                for k in np.unique(labels):
                    for h in range(n_parts):
                        part = None
                        if halves is not None:
                            own = halves[r] if subset is None else halves[r, subset]
                            part = own == h
                        yield s, r, h, subset, labels, k, part

    keys = [(s, r, h) for s, r, h, *_ in tasks()]
    # results are consumed as they come, so they are never all held at once
    results = map_folds(
        _fit_predict,
        (
            (regressor, Z, target, subset, labels, k, part, sample_weight)
            for _, _, _, subset, labels, k, part in tasks()
        ),
        n_jobs=n_jobs,
        verbose=verbose,
    )
    n = folds.shape[1]
    out = [
        np.zeros((n_repeats, n_parts, n if subset is None else subset.shape[0]))
        for subset in subsets
    ]
    for (s, r, h), (position, values) in zip(keys, results, strict=True):
        out[s][r, h, position] = values
    return out


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
        regressor,
        Z,
        target,
        folds,
        [None],
        n_jobs=n_jobs,
        verbose=verbose,
    )[0]
    return predictions.mean(axis=(0, 1))


def _fit_predict_fold(model, X, target, train, test, sample_weight, predict):
    """Fit a clone of ``model`` on ``train`` and predict ``test``."""
    fitted = fit_weighted(
        clone(model),
        X[train],
        target[train],
        None if sample_weight is None else sample_weight[train],
    )
    values = (
        predict(fitted, X[test]) if predict is not None else fitted.predict(X[test])
    )
    return test, np.asarray(values, dtype=np.float64).reshape(-1), fitted


def cross_predict(
    model, X, target, folds, *, sample_weight=None, predict=None, n_jobs=None, verbose=0
):
    """Out-of-fold predictions of ``target`` from ``X`` on given folds.

    Parameters
    ----------
    model : estimator
        Cloned and fitted on the training part of every fold with
        :func:`~skrobust._crossfit.fit_weighted` (weights passed to ``fit``,
        or integer weights as repeated rows).
    X : ndarray of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
    folds : list of (train, test)
        Index pairs as :func:`~skrobust._crossfit.treatment_folds` returns
        them: ``train`` is an index array, a boolean mask, or ``None`` for
        the complement of ``test``; the ``test`` parts partition the samples.
    sample_weight : ndarray of shape (n_samples,), default=None
        Frequency weights; ``None`` means ones.
    predict : callable, default=None
        ``predict(fitted, X_test)``; ``None`` means ``fitted.predict``.
    n_jobs : int, default=None
        Parallel jobs over the folds.
    verbose : int, default=0
        Verbosity of joblib.

    Returns
    -------
    predictions : ndarray of shape (n_samples,)
        Each sample predicted by the model of the fold that held it out.
    models : list of estimators
        The fitted model of each fold, in the order of ``folds``.
    """
    n = target.shape[0]
    results = map_folds(
        _fit_predict_fold,
        (
            (
                model,
                X,
                target,
                train_part(test, n) if train is None else train,
                test,
                sample_weight,
                predict,
            )
            for train, test in folds
        ),
        n_jobs=n_jobs,
        verbose=verbose,
    )
    predictions = np.empty(n)
    models = []
    for test, values, fitted in results:
        predictions[test] = values
        models.append(fitted)
    return predictions, models
