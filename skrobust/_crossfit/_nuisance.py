"""Treatment-effect nuisances: propensity and outcome models, cross-fitted."""

import warnings

import numpy as np
from sklearn.base import clone, is_classifier

from skrobust._crossfit._fitting import fit_weighted, seed_random_states
from skrobust._crossfit._folds import SEED_MAX, arm_rows, train_part, treatment_folds
from skrobust._crossfit._loop import map_folds


def predict_outcome(model, X):
    """Mean outcome: ``predict_proba[:, 1]`` for classifiers, else ``predict``."""
    if is_classifier(model):
        classes = list(model.classes_)
        proba = model.predict_proba(X)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))
    return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)


def predict_propensity(model, X):
    classes = [float(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return proba[:, classes.index(1.0)]


class TwoModels:
    """T-learner: one outcome model per arm."""

    def __init__(self, model0, model1):
        self.models = (model0, model1)

    def predict_both(self, X):
        return np.column_stack([predict_outcome(m, X) for m in self.models])


class SingleModel:
    """S-learner: one outcome model with the treatment as last feature."""

    def __init__(self, model):
        self.model = model

    def predict_both(self, X):
        n = X.shape[0]
        cols = []
        for arm in (0.0, 1.0):
            Xa = np.column_stack([X, np.full(n, arm)])
            cols.append(predict_outcome(self.model, Xa))
        return np.column_stack(cols)


def outcome_step(fit_part, combine, *, pooled=False):
    """An outcome step of :func:`crossfit_nuisances` from a fit of one part.

    The step fits the outcome model(s) of one fold: one part per arm (the
    arm's training units), or with ``pooled`` one part of all training
    units with the treatment appended as the last feature.

    Parameters
    ----------
    fit_part : callable
        ``fit_part(model, arm, X_part, y_part, sw_part, held_out) -> (fitted,
        info)``: ``arm`` is 0 or 1 (``None`` when pooled), ``sw_part`` the
        part's weights or ``None``, ``held_out`` the tuple ``(X_ev, y_ev,
        t_ev, e_ev, sw_ev)`` of the fold's held-out units (for a constrained
        fit such as the C-Learner's); ``info`` is kept under ``arm`` unless
        it is ``None``.
    combine : callable
        ``combine(list of fitted) -> model with predict_both(X)``.
    pooled : bool, default=False
        One pooled part instead of one part per arm.

    Returns
    -------
    step : callable
        ``step(model, X_tr, y_tr, t_tr, X_ev, y_ev, t_ev, e_ev, sw_tr=None,
        sw_ev=None, train=None) -> (model with predict_both, info)``. With
        ``train`` (mask or indices), ``X_tr``, ``y_tr``, ``t_tr`` and
        ``sw_tr`` are the full arrays and each part's rows are gathered once.
    """

    def step(
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
        held_out = (X_ev, y_ev, t_ev, e_ev, sw_ev)
        fitted, info = [], {}
        for arm in (None,) if pooled else (0, 1):
            if arm is None:
                rows = slice(None) if train is None else train
                X_part = np.column_stack([X_tr[rows], t_tr[rows]])
            else:
                rows = t_tr == arm if train is None else arm_rows(t_tr, train, arm)
                X_part = X_tr[rows]
            sw = None if sw_tr is None else sw_tr[rows]
            y_part = y_tr[rows]
            del rows
            part, part_info = fit_part(model, arm, X_part, y_part, sw, held_out)
            del X_part, y_part, sw
            fitted.append(part)
            if part_info is not None:
                info[arm] = part_info
        return combine(fitted), info

    return step


def _fit_plain_part(model, arm, X_part, y_part, sw_part, held_out):
    """The unconstrained fit of one part: the model, cloned, with weights."""
    return fit_weighted(clone(model), X_part, y_part, sw_part), None


def plain_outcome_fitter(learner):
    """Return the unconstrained T- or S-learner outcome step."""
    if learner == "S":
        return outcome_step(
            _fit_plain_part, lambda fitted: SingleModel(fitted[0]), pooled=True
        )
    return outcome_step(_fit_plain_part, lambda fitted: TwoModels(*fitted))


def fit_fold(X, y, t, sw, train, test, propensity_model, outcome_model, fitter, clip):
    """Fit the nuisances on ``train`` and predict them on ``test``."""
    out = {"test": test}
    e_ev = None
    sw_tr = None if sw is None else sw[train]
    sw_ev = None if sw is None else sw[test]
    if propensity_model is not None:
        pm = fit_weighted(clone(propensity_model), X[train], t[train], sw_tr)
        e_raw = predict_propensity(pm, X[test])
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


def crossfit_nuisances(
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
    folds = treatment_folds(t, cv, random_state, sample_weight)
    seed = random_state.randint(SEED_MAX)
    if propensity_model is not None:
        propensity_model = seed_random_states(propensity_model, seed)
    if outcome_model is not None:
        outcome_model = seed_random_states(outcome_model, seed)
    draws = map_folds(
        fit_fold,
        (
            (
                X,
                y,
                t,
                sample_weight,
                train_part(test, n) if train is None else train,
                test,
                propensity_model,
                outcome_model,
                fitter,
                clip,
            )
            for train, test in folds
        ),
        n_jobs=n_jobs,
        verbose=verbose,
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
