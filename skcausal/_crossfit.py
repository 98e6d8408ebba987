"""The one cross-fitting engine shared by every skcausal estimator.

Folds are stratified on the treatment and seeded by ``random_state``. For each
fold the nuisance models (propensity, outcome) are cloned, fit on the other
folds and evaluated on the held-out fold; the out-of-fold predictions are
stacked. The outcome step is a callable so that the C-Learner can fit a
constrained outcome model that sees the held-out fold's propensities.
"""

import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

_SEED_MAX = np.iinfo(np.int32).max


_ARM_NAMES = ("control", "treated")


def _make_folds(t, cv, rng, sample_weight=None):
    """Return a list of ``(train, test)`` index pairs, checked for both arms.

    A unit of weight zero counts as absent: every arm must hold a unit of
    positive ``sample_weight`` overall and in both parts of every fold. The
    default folds stratify on the treatment and, when some weights are zero,
    on whether the weight is positive, so that zero-weight units do not
    crowd the positive ones out of a fold.
    """
    n = t.shape[0]
    present = np.unique(t)
    if present.size < 2:
        raise ValueError(
            f"treatment has one class only (all {n} units in arm "
            f"{int(present[0])}); both arms are needed to estimate an effect."
        )
    # int8 labels (the values 0..3): StratifiedKFold's sorts then run on n bytes
    arm = t.astype(np.int8)
    positive = np.ones(n, dtype=bool) if sample_weight is None else sample_weight > 0
    for a in (0, 1):
        if not np.any(positive[arm == a]):
            raise ValueError(
                f"sample_weight has no positive weight in treatment arm {a} "
                f"({_ARM_NAMES[a]}): all {int(np.sum(arm == a))} {_ARM_NAMES[a]} "
                "units have weight 0, so that arm's mean cannot be estimated. "
                "Both arms need units of positive weight."
            )
    if cv is None:
        cv = 5
    if isinstance(cv, int | np.integer):
        counts = np.bincount(arm[positive], minlength=2)
        for a, count in enumerate(counts):
            if count < cv:
                weighted = (
                    " of positive sample_weight"
                    if sample_weight is not None and not positive.all()
                    else ""
                )
                raise ValueError(
                    f"treatment arm {a} has {count} unit(s){weighted}, fewer "
                    f"than the cv={cv} folds: every fold needs units of both "
                    "arms. Use fewer folds or more data."
                )
        labels = arm.copy()
        if not positive.all():
            # zero-weight units form their own strata (merged back into
            # their arm's stratum when too few to spread over the folds)
            for a in (0, 1):
                zero = (~positive) & (arm == a)
                if zero.sum() >= cv:
                    labels[zero] = 2 + a
        splitter = StratifiedKFold(
            n_splits=int(cv), shuffle=True, random_state=rng.randint(_SEED_MAX)
        )
        # each training part is the complement of its held-out part: only the
        # held-out parts are kept (train is None), the training parts are made
        # one fold at a time by _train_part
        # a 0-column X: the splitter reads only its length
        folds = [(None, test) for _, test in splitter.split(np.empty((n, 0)), labels)]
    elif hasattr(cv, "split"):
        folds = list(cv.split(np.zeros((n, 1)), t))
    else:
        folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    if len(folds) < 2:
        raise ValueError(f"cv must give at least 2 folds; got {len(folds)}.")
    covered = np.zeros(n, dtype=int)
    for k, (train, test) in enumerate(folds):
        covered[test] += 1
        for part, idx in (("training", train), ("held-out", test)):
            if idx is None:
                idx = _train_part(test, n)
            arms = np.bincount(arm[idx], minlength=2)
            if np.any(arms == 0):
                missing = int(np.flatnonzero(arms == 0)[0])
                raise ValueError(
                    f"cv: fold {k} has no units of treatment arm {missing} in "
                    f"its {part} part; cross-fitting needs both arms in every "
                    "fold. Use fewer folds or more data."
                )
            arms = np.bincount(arm[idx][positive[idx]], minlength=2)
            if np.any(arms == 0):
                missing = int(np.flatnonzero(arms == 0)[0])
                raise ValueError(
                    f"sample_weight is 0 for every unit of treatment arm "
                    f"{missing} ({_ARM_NAMES[missing]}) in the {part} part of "
                    f"cv fold {k}; cross-fitting needs units of positive weight "
                    "in both arms of every fold. Choose folds (cv) that spread "
                    "the positive-weight units, or fewer folds."
                )
    if np.any(covered != 1):
        raise ValueError(
            "cv must partition the samples: each sample must be held out in "
            "exactly one fold."
        )
    return folds


def _train_part(test, n):
    """Boolean mask of the ``n`` units outside ``test`` (a fold's training part).

    A mask (``n`` bytes) selects the same rows in the same order as their
    indices (``8 n`` bytes).
    """
    keep = np.ones(n, dtype=bool)
    keep[test] = False
    return keep


def _arm_rows(t, train, arm):
    """Indices of the training units (``train``: mask or indices) in ``arm``.

    The rows come in the order of ``X[train][t[train] == arm]``, so that one
    fancy index gives the arm's training rows without the intermediate copy.
    """
    if train.dtype == bool:
        return np.flatnonzero(train & (t == arm))
    train = np.asarray(train)
    return train[t[train] == arm]


def _seed_random_states(model, seed):
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


def _weight_params(model):
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


def _own_parameters(model):
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


def _fit_weighted(model, X, y, sample_weight=None):
    """Fit ``model`` with frequency weights.

    The weights go to the model when its ``fit`` accepts them; otherwise
    integer weights become repeated rows, and other weights raise.
    """
    if sample_weight is None:
        return _own_parameters(model.fit(X, y))
    keys = _weight_params(model)
    if keys is not None:
        return _own_parameters(model.fit(X, y, **dict.fromkeys(keys, sample_weight)))
    counts = np.rint(sample_weight)
    if not np.allclose(counts, sample_weight):
        raise TypeError(
            f"{type(model).__name__}.fit does not accept sample_weight and the "
            "weights are not integers (integer weights are passed as repeated "
            "rows); use a model that accepts sample_weight."
        )
    rows = np.repeat(np.arange(X.shape[0]), counts.astype(np.intp))
    return _own_parameters(model.fit(X[rows], y[rows]))


def _predict_outcome(model, X):
    """Mean outcome: ``predict_proba[:, 1]`` for classifiers, else ``predict``."""
    if is_classifier(model):
        classes = list(model.classes_)
        proba = model.predict_proba(X)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))
    return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)


def _predict_propensity(model, X):
    classes = [float(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return proba[:, classes.index(1.0)]


class _TwoModels:
    """T-learner: one outcome model per arm."""

    def __init__(self, model0, model1):
        self.models = (model0, model1)

    def predict_both(self, X):
        return np.column_stack([_predict_outcome(m, X) for m in self.models])


class _SingleModel:
    """S-learner: one outcome model with the treatment as last feature."""

    def __init__(self, model):
        self.model = model

    def predict_both(self, X):
        n = X.shape[0]
        cols = []
        for arm in (0.0, 1.0):
            Xa = np.column_stack([X, np.full(n, arm)])
            cols.append(_predict_outcome(self.model, Xa))
        return np.column_stack(cols)


def _plain_outcome_fitter(learner):
    """Return the unconstrained T- or S-learner outcome step."""

    def fit(
        model,
        X_tr,
        y_tr,
        t_tr,
        X_ev,
        y_ev,
        t_ev,
        e_ev,
        sw_tr=None,
        sw_ev=None,
        train=None,
    ):
        # train given: X_tr, y_tr, t_tr, sw_tr are the full arrays and train
        # selects the training part (indexed once, with each arm's rows)
        if learner == "S":
            if train is not None:
                X_tr, y_tr, t_tr = X_tr[train], y_tr[train], t_tr[train]
                sw_tr = None if sw_tr is None else sw_tr[train]
            Xa = np.column_stack([X_tr, t_tr])
            return _SingleModel(_fit_weighted(clone(model), Xa, y_tr, sw_tr)), {}
        fitted = []
        for arm in (0.0, 1.0):
            rows = t_tr == arm if train is None else _arm_rows(t_tr, train, arm)
            sw = None if sw_tr is None else sw_tr[rows]
            fitted.append(_fit_weighted(clone(model), X_tr[rows], y_tr[rows], sw))
            del rows
        return _TwoModels(*fitted), {}

    return fit


def _fit_fold(X, y, t, sw, train, test, propensity_model, outcome_model, fitter, clip):
    """Fit the nuisances on ``train`` and predict them on ``test``."""
    out = {"test": test}
    e_ev = None
    sw_tr = None if sw is None else sw[train]
    sw_ev = None if sw is None else sw[test]
    if propensity_model is not None:
        pm = _fit_weighted(clone(propensity_model), X[train], t[train], sw_tr)
        e_raw = _predict_propensity(pm, X[test])
        if not np.all(np.isfinite(e_raw)):
            raise ValueError("propensity_model returned NaN or infinite probabilities.")
        extreme = (e_raw <= 0.0) | (e_raw >= 1.0)
        if clip == 0 and np.any(extreme):
            raise ValueError(
                f"propensity_model predicted a propensity of exactly 0 or 1 for "
                f"{int(extreme.sum())} held-out unit(s), which makes the inverse "
                "weights infinite. Set clip > 0 (e.g. clip=1e-3) to clip them "
                "into [clip, 1 - clip], or use a smoother propensity model."
            )
        e_ev = np.clip(e_raw, clip, 1.0 - clip)
        out["propensity_model"] = pm
        out["e"] = e_ev
        out["n_clipped"] = int(np.sum(e_ev != e_raw))
        out["n_extreme"] = int(extreme.sum())
    if fitter is not None:
        # the fitter indexes the training rows itself (once per arm)
        del sw_tr
        X_ev = X[test]
        outcome, info = fitter(
            outcome_model,
            X,
            y,
            t,
            X_ev,
            y[test],
            t[test],
            e_ev,
            sw_tr=sw,
            sw_ev=sw_ev,
            train=train,
        )
        mu = outcome.predict_both(X_ev)
        del X_ev
        if not np.all(np.isfinite(mu)):
            raise ValueError("outcome_model predicted NaN or infinite outcomes.")
        out["outcome_model"] = outcome
        out["mu"] = mu
        out["info"] = info
    return out


def _crossfit(
    X,
    y,
    t,
    *,
    propensity_model,
    outcome_model,
    fitter,
    cv,
    clip,
    random_state,
    n_jobs,
    verbose,
    sample_weight=None,
):
    """Cross-fit the nuisances; return stacked out-of-fold predictions.

    Returns a dict with ``folds`` (``(train, test)`` pairs, ``train`` None
    where it is the complement of ``test``), ``e`` (n,), ``mu`` (n, 2), the
    per-fold fitted models, ``n_clipped`` and the per-fold ``info`` of the
    outcome step.
    """
    n = X.shape[0]
    folds = _make_folds(t, cv, random_state, sample_weight)
    seed = random_state.randint(_SEED_MAX)
    if propensity_model is not None:
        propensity_model = _seed_random_states(propensity_model, seed)
    if outcome_model is not None:
        outcome_model = _seed_random_states(outcome_model, seed)
    draws = Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator")(
        delayed(_fit_fold)(
            X,
            y,
            t,
            sample_weight,
            _train_part(test, n) if train is None else train,
            test,
            propensity_model,
            outcome_model,
            fitter,
            clip,
        )
        for train, test in folds
    )
    # the out-of-fold predictions are stacked as the folds come in
    e = np.empty(n) if propensity_model is not None else None
    mu = np.empty((n, 2)) if fitter is not None else None
    results = []
    for res in draws:
        if e is not None:
            e[res["test"]] = res.pop("e")
        if mu is not None:
            mu[res["test"]] = res.pop("mu")
        results.append(res)
    nuisance = {"folds": folds, "fold_results": results}
    if propensity_model is not None:
        nuisance["e"] = e
        n_clipped = sum(res["n_clipped"] for res in results)
        nuisance["n_clipped"] = n_clipped
        if n_clipped:
            warnings.warn(
                f"{n_clipped} estimated propensities fell outside "
                f"[clip, 1 - clip] = [{clip:g}, {1 - clip:g}] and were clipped "
                "(see diagnostics_['n_clipped']). Limited overlap: consider "
                "TrimmingSensitivity.",
                UserWarning,
                stacklevel=3,
            )
    if fitter is not None:
        nuisance["mu"] = mu
    return nuisance


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
