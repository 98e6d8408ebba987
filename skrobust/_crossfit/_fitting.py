"""Nuisance fitting of the cross-fitting engine: seeds, weights, early stopping."""

from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import has_fit_parameter

from skrobust._crossfit._folds import index_dtype

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


def seed_random_states(model, seed):
    """Clone ``model`` and give every unset nested ``random_state`` a seed."""
    model = clone(model)
    params = model.get_params(deep=True)
    unset = {
        key: seed
        for key, value in params.items()
        if key.endswith("random_state") and value is None
    }
    if unset:
        model.set_params(**unset)
    return model


def weight_params(model):
    """Fit keywords that carry ``sample_weight`` into ``model``, or ``None``.

    A :class:`~sklearn.pipeline.Pipeline` gets the weights in every step whose
    ``fit`` accepts them, provided its final step does.
    """
    if isinstance(model, Pipeline):
        steps = [
            (name, step)
            for name, step in model.steps
            if step is not None and step != "passthrough"
        ]
        if not steps or not has_fit_parameter(steps[-1][1], "sample_weight"):
            return None
        return [
            f"{name}__sample_weight"
            for name, step in steps
            if has_fit_parameter(step, "sample_weight")
        ]
    if has_fit_parameter(model, "sample_weight"):
        return ["sample_weight"]
    return None


_PARAMETER_ATTRIBUTES = ("coef_", "intercept_")


def own_parameters(model):
    """Give a fitted model's ``coef_`` / ``intercept_`` their own small buffers.

    :class:`~sklearn.linear_model.LinearRegression` keeps ``coef_`` as a view
    of the ``n_train``-long least-squares solution buffer, which holds about
    ``8 * n_train`` bytes for the estimator's life. The copy has the same
    values (predictions are unchanged bit for bit); the model and the steps
    of a pipeline are handled in place, and any other model is left alone.
    """
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else []
    for est in (model, *steps):
        for name in _PARAMETER_ATTRIBUTES:
            value = getattr(est, name, None)
            if isinstance(value, np.ndarray) and value.base is not None:
                setattr(est, name, np.array(value, copy=True))
    return model


def fit_weighted(model, X, y, sample_weight=None):
    """Fit ``model`` with frequency weights.

    The weights go to the model when its ``fit`` accepts them; otherwise
    integer weights become repeated rows, and other weights raise.
    """
    if sample_weight is None:
        return own_parameters(model.fit(X, y))
    keys = weight_params(model)
    if keys is not None:
        return own_parameters(model.fit(X, y, **dict.fromkeys(keys, sample_weight)))
    counts = np.rint(sample_weight)
    if not np.allclose(counts, sample_weight):
        raise TypeError(
            f"{type(model).__name__}.fit does not accept sample_weight and the "
            "weights are not integers (integer weights are passed as repeated "
            "rows); use a model that accepts sample_weight."
        )
    rows = np.repeat(np.arange(X.shape[0]), counts.astype(np.intp))
    return own_parameters(model.fit(X[rows], y[rows]))


def early_stopping_split(model, n_rows):
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
    (see :func:`early_stopping_split`): the same model, one copy of the
    training rows fewer.
    """
    model = clone(regressor)
    mask = train.dtype == bool
    n_rows = int(np.count_nonzero(train)) if mask else train.shape[0]
    split = early_stopping_split(model, n_rows)
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
