"""Off-policy value estimates from logged bandit feedback."""

import numbers

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.utils import Bunch
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import check_array, has_fit_parameter

from skbandit._feedback import check_feedback
from skrobust.utils import ConfidenceInterval, check_probability_weights

_METHODS = ("ips", "snips", "dr")


def _check_arrays(rewards, propensities, target_propensities, sample_weight):
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    prop = np.asarray(propensities, dtype=np.float64).reshape(-1)
    target = np.asarray(target_propensities, dtype=np.float64).reshape(-1)
    n = rewards.shape[0]
    if n == 0:
        raise ValueError("rewards is empty; at least one logged round is required.")
    for name, arr in (("propensities", prop), ("target_propensities", target)):
        if arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}; expected ({n},).")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards contains NaN or infinite values.")
    if np.any(prop <= 0) or np.any(prop > 1):
        raise ValueError(
            "propensities must lie in (0, 1]; a logged action with propensity 0 "
            "could not have been taken by the logging policy."
        )
    if np.any(target < 0) or np.any(target > 1 + 1e-12):
        raise ValueError("target_propensities must lie in [0, 1].")
    with np.errstate(over="ignore"):
        bound = n * np.max(target / prop) * max(1.0, np.max(np.abs(rewards)))
    if not np.isfinite(bound):
        raise ValueError(
            "the importance weights target_propensities / propensities times "
            f"the rewards overflow float64 (smallest propensity {prop.min():.3g}); "
            "the off-policy estimate is not representable."
        )
    if sample_weight is not None:
        sample_weight = np.reshape(sample_weight, -1)
    w = check_probability_weights(sample_weight, n)
    return rewards, prop, target, w


_ARRAY_PARAMS = {
    "rewards": ["array-like"],
    "propensities": ["array-like"],
    "target_propensities": ["array-like"],
    "sample_weight": ["array-like", None],
}


def _ips_terms(r, p, t):
    return t / p * r


def _snips(r, p, t, w):
    rho = t / p
    total = np.sum(w * rho)
    if total <= 0:
        return 0.0, np.zeros_like(r)
    value = np.sum(w * rho * r) / total
    return float(value), rho * (r - value) / total


@validate_params(_ARRAY_PARAMS, prefer_skip_nested_validation=True)
def ips_value(rewards, propensities, target_propensities, sample_weight=None):
    """Inverse propensity score (IPS) estimate of a target policy's value.

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    rewards : array-like of shape (n_samples,)
        Logged rewards.
    propensities : array-like of shape (n_samples,)
        Probabilities :math:`\\mu(a_i \\mid x_i)` with which the logging
        policy took the logged actions, in (0, 1].
    target_propensities : array-like of shape (n_samples,)
        Probabilities :math:`\\pi(a_i \\mid x_i)` with which the target policy
        takes the logged actions.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logged rounds.

    Returns
    -------
    value : float
        :math:`\\frac{1}{n}\\sum_i \\frac{\\pi(a_i|x_i)}{\\mu(a_i|x_i)} r_i`
        (weighted mean with ``sample_weight``). Unbiased when every action the
        target policy may take has positive logging probability.

    See Also
    --------
    snips_value : Self-normalized, lower variance, slightly biased.
    dr_value : Doubly robust, with a reward model.
    estimate_policy_value : Estimate with a confidence interval.

    References
    ----------
    .. [1] D. G. Horvitz and D. J. Thompson, "A generalization of sampling
       without replacement from a finite universe", JASA, 1952.

    Examples
    --------
    >>> from skbandit.metrics import ips_value
    >>> ips_value([1.0, 0.0], [0.5, 0.5], [1.0, 0.0])
    1.0
    """
    r, p, t, w = _check_arrays(
        rewards, propensities, target_propensities, sample_weight
    )
    return float(np.sum(w * _ips_terms(r, p, t)))


@validate_params(_ARRAY_PARAMS, prefer_skip_nested_validation=True)
def snips_value(rewards, propensities, target_propensities, sample_weight=None):
    """Self-normalized inverse propensity score (SNIPS) of a target policy.

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    rewards : array-like of shape (n_samples,)
        Logged rewards.
    propensities : array-like of shape (n_samples,)
        Probabilities with which the logging policy took the logged actions.
    target_propensities : array-like of shape (n_samples,)
        Probabilities with which the target policy takes the logged actions.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logged rounds.

    Returns
    -------
    value : float
        :math:`\\sum_i w_i \\rho_i r_i / \\sum_i w_i \\rho_i` with
        :math:`\\rho_i = \\pi(a_i|x_i)/\\mu(a_i|x_i)`; 0 if every ratio is 0.

    See Also
    --------
    ips_value : The unnormalized estimate.
    estimate_policy_value : Estimate with a confidence interval.

    References
    ----------
    .. [1] A. Swaminathan and T. Joachims, "The Self-Normalized Estimator for
       Counterfactual Learning", NeurIPS, 2015.

    Examples
    --------
    >>> from skbandit.metrics import snips_value
    >>> snips_value([1.0, 0.0], [0.5, 0.5], [1.0, 0.0])
    1.0
    """
    r, p, t, w = _check_arrays(
        rewards, propensities, target_propensities, sample_weight
    )
    return _snips(r, p, t, w)[0]


@validate_params(
    {
        **_ARRAY_PARAMS,
        "reward_pred_logged": ["array-like"],
        "reward_pred_target": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def dr_value(
    rewards,
    propensities,
    target_propensities,
    reward_pred_logged,
    reward_pred_target,
    sample_weight=None,
):
    """Doubly robust (DR) estimate of a target policy's value.

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    rewards : array-like of shape (n_samples,)
        Logged rewards.
    propensities : array-like of shape (n_samples,)
        Probabilities with which the logging policy took the logged actions.
    target_propensities : array-like of shape (n_samples,)
        Probabilities with which the target policy takes the logged actions.
    reward_pred_logged : array-like of shape (n_samples,)
        Reward model prediction :math:`\\hat q(x_i, a_i)` for the logged action.
    reward_pred_target : array-like of shape (n_samples,)
        :math:`\\sum_a \\pi(a|x_i)\\hat q(x_i, a)`, the model's value of the
        target policy in each context.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logged rounds.

    Returns
    -------
    value : float
        :math:`\\frac{1}{n}\\sum_i \\big[\\sum_a \\pi(a|x_i)\\hat q(x_i,a) +
        \\rho_i (r_i - \\hat q(x_i,a_i))\\big]`; unbiased when either the
        propensities or the reward model are correct.

    See Also
    --------
    estimate_policy_value : Fits a per-arm reward model and adds an interval.

    References
    ----------
    .. [1] M. Dudik, J. Langford and L. Li, "Doubly Robust Policy Evaluation
       and Learning", ICML, 2011.

    Examples
    --------
    >>> from skbandit.metrics import dr_value
    >>> dr_value([1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.8, 0.1], [0.8, 0.7])
    0.95
    """
    r, p, t, w = _check_arrays(
        rewards, propensities, target_propensities, sample_weight
    )
    q_log = np.asarray(reward_pred_logged, dtype=np.float64).reshape(-1)
    q_tgt = np.asarray(reward_pred_target, dtype=np.float64).reshape(-1)
    for name, arr in (("reward_pred_logged", q_log), ("reward_pred_target", q_tgt)):
        if arr.shape != r.shape or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must hold {r.shape[0]} finite numbers.")
    return float(np.sum(w * (q_tgt + t / p * (r - q_log))))


def _weighted_mean(values, weights, default):
    total = weights.sum()
    return float(values @ weights / total) if total > 0 else default


def _fit_predict_arm(reward_model, X, reward, weight, rows, test):
    """Fit a clone of the reward model on one arm's rows; predict ``X[test]``."""
    model = clone(reward_model)
    if has_fit_parameter(model, "sample_weight"):
        model.fit(X[rows], reward[rows], sample_weight=weight[rows])
    else:
        model.fit(X[rows], reward[rows])
    return np.asarray(model.predict(X[test]), dtype=np.float64).reshape(-1)


def _fit_reward_model(
    reward_model, X, arm, reward, weight, n_arms, splits, n_jobs=None, verbose=0
):
    """Cross-fitted per-arm reward predictions, shape (n_samples, n_arms).

    The fits (one per fold and arm) are independent tasks run through
    :class:`joblib.Parallel`; they draw no random numbers, so the result does
    not depend on ``n_jobs`` or the backend.
    """
    n = X.shape[0]
    q = np.empty((n, n_arms))
    tasks = []
    for train, test in splits:
        overall = _weighted_mean(reward[train], weight[train], 0.0)
        for k in range(n_arms):
            # rows of weight zero carry no information (and a reward model
            # given only zero weights cannot be fit): an arm logged only with
            # zero weight is treated as an arm never logged
            rows = train[(arm[train] == k) & (weight[train] > 0)]
            if X.shape[1] == 0 or rows.shape[0] < 2:
                # no context (or too few rows): the arm's mean reward
                q[test, k] = _weighted_mean(reward[rows], weight[rows], overall)
            else:
                tasks.append((test, k, rows))
    # consumed as they come (not collected in a list first), so that the
    # predictions take no memory beyond q itself
    predictions = Parallel(
        n_jobs=n_jobs, verbose=max(0, 10 * int(verbose)), return_as="generator"
    )(
        delayed(_fit_predict_arm)(reward_model, X, reward, weight, rows, test)
        for test, _, rows in tasks
    )
    for (test, k, _), pred in zip(tasks, predictions, strict=True):
        q[test, k] = pred
    return q


@validate_params(
    {
        "policy": [HasMethods(["predict_proba"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "method": [StrOptions(set(_METHODS))],
        "reward_model": [HasMethods(["fit", "predict"]), None],
        "n_splits": [Interval(numbers.Integral, 1, None, closed="left")],
        "confidence_level": [Interval(numbers.Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def estimate_policy_value(
    policy,
    X,
    y,
    *,
    method="dr",
    reward_model=None,
    n_splits=2,
    confidence_level=0.95,
    sample_weight=None,
    random_state=None,
    n_jobs=None,
    verbose=0,
):
    """Off-policy value of a fitted policy with a confidence interval.

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    policy : fitted policy
        Any object with ``predict_proba`` and ``classes_`` (a skbandit policy
        or a ``Pipeline`` ending in one): the target policy.
    X : array-like of shape (n_samples, n_features)
        Logged contexts.
    y : structured ndarray of shape (n_samples,)
        Logged feedback from :func:`skbandit.make_feedback`, with
        propensities.
    method : {"ips", "snips", "dr"}, default="dr"
        Estimator: inverse propensity scoring, self-normalized IPS, or doubly
        robust.
    reward_model : regressor, default=None
        For ``"dr"``: the model of the expected reward, fit separately for
        each arm (so that each arm has its own response to the context; a
        single model on context plus a one-hot action could only shift the
        arms by constants). ``None`` means ``Ridge(alpha=1.0)``. With X of
        zero columns, each arm's weighted mean reward is used.
    n_splits : int, default=2
        Folds of cross-fitting for the reward model (each row's prediction
        comes from models that did not see it); ``1`` fits on all rows.
    confidence_level : float, default=0.95
        Level of the two-sided normal interval.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logged rounds.
    random_state : int, RandomState instance or None, default=None
        Shuffles the cross-fitting folds.
    n_jobs : int or None, default=None
        Parallel jobs over the reward-model fits of ``"dr"`` (one per fold
        and arm), through :class:`joblib.Parallel`, so a joblib backend such
        as Dask or Ray distributes them. ``None`` means 1 unless in a
        :func:`joblib.parallel_backend` context; ``-1`` uses all processors.
        The result does not depend on it.
    verbose : int, default=0
        Progress messages of the parallel fits when positive.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``value``, ``std_error``, ``confidence_interval`` (a
        :class:`~skrobust.utils.ConfidenceInterval` with ``low`` and
        ``high``, the shape of SciPy's), ``ci_low`` and ``ci_high`` (the same
        bounds, kept for compatibility) and ``method``.

    See Also
    --------
    make_policy_scorer : The same estimates as a ``GridSearchCV`` scorer.

    Notes
    -----
    IPS and DR are weighted means of per-round terms :math:`t_i`; their
    standard error is :math:`\\sqrt{\\sum_i p_i^2 (t_i - \\hat V)^2}` with
    :math:`p_i` the normalized weights. SNIPS uses the delta method, with
    influence :math:`\\rho_i (r_i - \\hat V)/\\sum_j p_j \\rho_j`.

    References
    ----------
    .. [1] M. Dudik, J. Langford and L. Li, "Doubly Robust Policy Evaluation
       and Learning", ICML, 2011.
    .. [2] V. Chernozhukov et al., "Double/debiased machine learning for
       treatment and structural parameters", Econometrics Journal, 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import Uniform, make_feedback
    >>> from skbandit.metrics import estimate_policy_value
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 2))
    >>> actions = rng.integers(2, size=1000)
    >>> y = make_feedback(actions, X[:, 0] * actions + 1.0, 0.5)
    >>> policy = Uniform(arms=[0, 1]).fit(X, y)
    >>> result = estimate_policy_value(policy, X, y, random_state=0)
    >>> bool(result.ci_low < 1.0 < result.ci_high)
    True
    """
    X = check_array(X, ensure_min_features=0, dtype=np.float64)
    n = X.shape[0]
    actions, r, p = check_feedback(y, n, require_propensities=True)
    classes = np.asarray(policy.classes_)
    proba = np.asarray(policy.predict_proba(X), dtype=np.float64)
    if proba.shape != (n, classes.shape[0]):
        raise ValueError(
            f"policy.predict_proba returned shape {proba.shape}; expected "
            f"({n}, {classes.shape[0]})."
        )
    pos = np.clip(np.searchsorted(classes, actions), 0, classes.shape[0] - 1)
    if not np.all(classes[pos] == actions):
        unknown = np.unique(actions[classes[pos] != actions])[:5]
        raise ValueError(
            f"logged actions {unknown.tolist()} are not among the policy's arms "
            f"{classes.tolist()}."
        )
    t = proba[np.arange(n), pos]
    r, p, t, w = _check_arrays(r, p, t, sample_weight)
    if method == "ips":
        terms = _ips_terms(r, p, t)
        value = float(np.sum(w * terms))
        influence = terms - value
    elif method == "snips":
        value, influence = _snips(r, p, t, w)
    else:
        model = Ridge(alpha=1.0) if reward_model is None else reward_model
        # the reward model sees the weights as given (weight 2 = a repeated
        # row), not rescaled by the number of rows: rows of weight zero then
        # change nothing, as if they were not logged
        if sample_weight is None:
            model_weight = np.ones(n)
        else:
            model_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if n_splits == 1:
            splits = [(np.arange(n), np.arange(n))]
        else:
            if n_splits > n:
                raise ValueError(f"n_splits={n_splits} exceeds the {n} logged rounds.")
            splits = KFold(n_splits, shuffle=True, random_state=random_state).split(X)
        q = _fit_reward_model(
            model,
            X,
            pos,
            r,
            model_weight,
            classes.shape[0],
            splits,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        # the model's value of the target policy, without an (n, K) product
        terms = np.einsum("ij,ij->i", proba, q) + t / p * (r - q[np.arange(n), pos])
        value = float(np.sum(w * terms))
        influence = terms - value
    # sqrt(sum (w_i u_i)^2) computed on u / max|u| so that squares of
    # rewards near 1e155 and above do not overflow
    scale = float(np.max(np.abs(w * influence)))
    if scale > 0:
        std_error = scale * float(np.sqrt(np.sum((w * influence / scale) ** 2)))
    else:
        std_error = 0.0
    z = stats.norm.ppf(0.5 + confidence_level / 2)
    low, high = value - z * std_error, value + z * std_error
    return Bunch(
        value=value,
        std_error=std_error,
        confidence_interval=ConfidenceInterval(low, high),
        ci_low=low,
        ci_high=high,
        method=method,
    )


@validate_params(
    {
        "method": [StrOptions(set(_METHODS))],
        "reward_model": [HasMethods(["fit", "predict"]), None],
        "n_splits": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def make_policy_scorer(
    method="snips", *, reward_model=None, n_splits=2, random_state=0, n_jobs=None
):
    """Scorer for ``GridSearchCV``: a policy's off-policy value on held-out logs.

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    method : {"ips", "snips", "dr"}, default="snips"
        Value estimator, see :func:`estimate_policy_value`.
    reward_model : regressor, default=None
        Per-arm reward model for ``"dr"``.
    n_splits : int, default=2
        Cross-fitting folds for ``"dr"``.
    random_state : int, RandomState instance or None, default=0
        Shuffles the cross-fitting folds.
    n_jobs : int or None, default=None
        Parallel jobs over the reward-model fits of ``"dr"``, see
        :func:`estimate_policy_value`. Inside ``GridSearchCV(n_jobs=...)``
        the candidates are already parallel; leave it at ``None`` there.

    Returns
    -------
    scorer : callable
        ``scorer(policy, X, y, sample_weight=None)`` returning the estimated
        value (greater is better).

    See Also
    --------
    make_simulation_scorer : Values exploration by simulation instead.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbandit import EpsilonGreedy, make_feedback
    >>> from skbandit.metrics import make_policy_scorer
    >>> rng = np.random.default_rng(0)
    >>> actions = rng.integers(3, size=600)
    >>> y = make_feedback(actions, (actions == 2) * 1.0, 1 / 3)
    >>> search = GridSearchCV(EpsilonGreedy(), {"epsilon": [0.05, 0.5]},
    ...                       scoring=make_policy_scorer("dr"))
    >>> search.fit(np.empty((600, 0)), y).best_params_
    {'epsilon': 0.05}
    """

    def scorer(policy, X, y, sample_weight=None):
        return estimate_policy_value(
            policy,
            X,
            y,
            method=method,
            reward_model=reward_model,
            n_splits=n_splits,
            sample_weight=sample_weight,
            random_state=random_state,
            n_jobs=n_jobs,
        ).value

    scorer.__name__ = f"{method}_policy_scorer"
    return scorer
