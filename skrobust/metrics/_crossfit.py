"""Cross-fitted regression of per-sample performance on core variables."""

from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import has_fit_parameter

# smallest leaf of the default first stage: a twentieth of the samples of one
# fit, between these bounds (see default_regressor)
_MIN_LEAF = 5
_MAX_LEAF = 100
_LEAF_FRACTION = 20
# below this many samples per fit the default first stage holds out no
# early-stopping set (a tenth of them would be one sample)
_EARLY_STOPPING_MIN = 20


def default_regressor(n_fit=None):
    """First stage used when the user gives none: regularized boosting.

    Gradient boosting with large leaves: flexible enough for interactions of
    the core variables, but with a small variance, which is what the
    second-order bias of the debiased estimators depends on.

    Parameters
    ----------
    n_fit : int, default=None
        Number of samples each fit of the first stage sees (a training fold,
        or half of it). The smallest leaf holds ``n_fit // 20`` samples,
        clipped to [5, 100]: a fixed 100 leaves no split at all below 200
        samples a fit, so the fitted conditional risks are the training
        folds' means and ignore ``Z`` (the worst-case estimate then falls
        below the mean risk). A twentieth lets a tail of mass 5% of the
        samples be separated; with fewer than 20 samples a fit, there is no
        early-stopping hold-out and 100 boosting rounds are used. ``None``
        means a large sample (leaves of 100 samples, early stopping).

    Returns
    -------
    regressor : HistGradientBoostingRegressor
    """
    if n_fit is None:
        leaf, early_stopping = _MAX_LEAF, True
    else:
        leaf = int(np.clip(n_fit // _LEAF_FRACTION, _MIN_LEAF, _MAX_LEAF))
        early_stopping = n_fit >= _EARLY_STOPPING_MIN
    return HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_leaf_nodes=8,
        min_samples_leaf=leaf,
        l2_regularization=1.0,
        max_iter=100,
        early_stopping=early_stopping,
        random_state=0,
    )


def fit_size(n_samples, cv, halves):
    """Samples seen by the smallest fit of a ``cv``-fold cross-fit."""
    n_train = n_samples - -(-n_samples // cv)
    return n_train // 2 if halves else n_train


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


def _early_stopping_split(model, n_rows):
    """The training / validation rows a histogram boosting fit would split off.

    :class:`~sklearn.ensemble.HistGradientBoostingRegressor` with early
    stopping on a validation set copies its training data into the two parts
    (``train_test_split``), on top of the training rows the cross-fit has
    already gathered. Drawing the same split here, from the seed the model
    draws itself, and passing the validation rows as ``X_val`` lets the
    cross-fit gather each part once from the full data: the fitted model is
    the same (the same rows in the same order) without the second copy.

    ``model`` is the clone about to be fitted: with ``early_stopping="auto"``
    on more than 10000 rows it is set to ``early_stopping=True``, the value
    that rule takes on those rows (the model only sees the fitting part).

    Returns ``(fit_positions, validation_positions)`` into the ``n_rows``
    training rows, or ``None`` when the model is not a plain
    ``HistGradientBoostingRegressor`` with an integer ``random_state`` that
    holds out a validation set (the model then splits as it always does).
    """
    if type(model) is not HistGradientBoostingRegressor:
        return None
    params = model.get_params(deep=False)
    stopping = params["early_stopping"]
    if stopping == "auto":
        # HistGradientBoosting's own rule, on all the rows it is given; the
        # clone is then told so, as it will only see the fitting part
        stopping = n_rows > 10_000
        if stopping:
            model.set_params(early_stopping=True)
    if (
        stopping is not True
        or params["validation_fraction"] is None
        or params["warm_start"]
        or not isinstance(params["random_state"], Integral)
        or not has_fit_parameter(model, "X_val")
    ):
        return None
    # the seed HistGradientBoosting*.fit draws first from its random_state
    # and hands to train_test_split
    seed = check_random_state(params["random_state"]).randint(
        np.iinfo(np.uint32).max, dtype="u8"
    )
    fit_rows, validation_rows = train_test_split(
        np.arange(n_rows),
        test_size=params["validation_fraction"],
        random_state=seed,
    )
    return fit_rows, validation_rows


def fit_first_stage(regressor, rows_of, train, target, sample_weight=None):
    """Clone and fit ``regressor`` on the rows ``train``.

    ``train`` is an index array or a boolean mask of the samples;
    ``rows_of(train)`` returns those feature rows (one copy of them);
    ``target`` and ``sample_weight`` are indexed here. A histogram boosting
    first stage with early stopping gets its validation rows as ``X_val``
    (see :func:`_early_stopping_split`): the same model, one copy of the
    training rows fewer.
    """
    model = clone(regressor)
    mask = train.dtype == bool
    n_rows = int(np.count_nonzero(train)) if mask else train.shape[0]
    split = _early_stopping_split(model, n_rows)
    if split is not None and mask:
        train = np.flatnonzero(train).astype(index_dtype(train.shape[0]))
    if sample_weight is not None:
        fit_rows = train if split is None else train[split[0]]
        if not np.sum(sample_weight[fit_rows]) > 0:
            raise ValueError(
                "sample_weight is zero on every training sample of a "
                f"cross-fitting fit ({n_rows} samples): the first "
                "stage cannot be fitted. Use more samples, a smaller cv or "
                "bias_correction=False, or fewer zero weights."
            )
        del fit_rows
    if split is None:
        fit_params = {}
        if sample_weight is not None:
            fit_params["sample_weight"] = sample_weight[train]
        return model.fit(rows_of(train), target[train], **fit_params)
    fit_rows, validation_rows = train[split[0]], train[split[1]]
    del split
    fit_params = {}
    if sample_weight is not None:
        fit_params["sample_weight"] = sample_weight[fit_rows]
        fit_params["sample_weight_val"] = sample_weight[validation_rows]
    return model.fit(
        rows_of(fit_rows),
        target[fit_rows],
        X_val=rows_of(validation_rows),
        y_val=target[validation_rows],
        **fit_params,
    )


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


def index_dtype(n_samples):
    """Smallest of int32 / int64 that indexes ``n_samples`` rows (the index
    arrays of a cross-fit are then half the size of float vectors)."""
    return np.int32 if n_samples < np.iinfo(np.int32).max else np.int64


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
    folds = np.empty((n_repeats, n_samples), dtype=np.min_scalar_type(cv))
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
    results = Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator")(
        delayed(_fit_predict)(
            regressor, Z, target, subset, labels, k, part, sample_weight
        )
        for _, _, _, subset, labels, k, part in tasks()
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
