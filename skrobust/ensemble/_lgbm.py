"""Distributionally robust gradient boosting on a LightGBM backbone."""

import warnings
from numbers import Integral, Real

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, log_expit, log_softmax, logsumexp, softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from skrobust.ambiguity import check_ambiguity
from skrobust.utils import check_nonnegative_sample_weight

_AMBIGUITY_SHORTCUTS = {"chi2", "kl", "cvar"}

# LightGBM's aliases of the number of boosting rounds (``lightgbm.train`` reads
# them from the parameters before ``num_boost_round``)
_ROUND_ALIASES = (
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
)
# parameters of the estimator forwarded to LightGBM under the same name, as
# ``lightgbm.LGBMModel`` does (LightGBM resolves them as aliases)
_FORWARDED = (
    "boosting_type",
    "num_leaves",
    "max_depth",
    "learning_rate",
    "subsample_for_bin",
    "min_split_gain",
    "min_child_weight",
    "min_child_samples",
    "subsample",
    "subsample_freq",
    "colsample_bytree",
    "reg_alpha",
    "reg_lambda",
)

# LightGBM parameters set by the estimator itself; ``lgbm_params`` may not hold them
_RESERVED = {
    "objective",
    "num_class",
    "num_iterations",
    "num_boost_round",
    "n_estimators",
    "boost_from_average",
    "metric",
}


def _all_constant(X):
    """Whether every column of ``X`` (dense or sparse) holds a single value."""
    if hasattr(X, "columns"):  # a DataFrame kept for its categorical columns
        return bool(np.all(X.nunique(dropna=False).to_numpy() <= 1))
    if sp.issparse(X):
        X = X.tocsc()
        high = X.max(axis=0).toarray().astype(np.float64)
        low = X.min(axis=0).toarray().astype(np.float64)
    else:
        # max - min, not np.ptp: np.ptp refuses boolean arrays
        high = np.max(X, axis=0).astype(np.float64)
        low = np.min(X, axis=0).astype(np.float64)
    return bool(np.all(high == low))


def _has_categorical(X):
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return False
    return any(str(dtype) == "category" for dtype in dtypes)


def _codes(X):
    """A float copy of a DataFrame with category columns replaced by codes."""
    out = X.copy()
    for column in X.columns:
        if str(X[column].dtype) == "category":
            codes = X[column].cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan  # a missing category
            out[column] = codes
    return out


# losses closer than this (relative to their scale) count as tied when the
# boosting weights are computed
_TIE_TOL = 1e-6


def _snap_ties(losses):
    """Round losses to a grid of ``_TIE_TOL`` times their scale.

    At the robust starting constant of a classifier the per-class losses are
    equal up to the solver's precision; without snapping, a set whose worst
    case sits on the largest losses (CVaR, a large chi-square radius) would
    put all its weight on one class, where no split has any gain. Tied losses
    share the worst-case mass in proportion to their nominal weights.
    """
    step = _TIE_TOL * max(1.0, float(np.max(np.abs(losses))))
    return np.round(losses / step) * step


# softplus temperature, relative to the spread of the losses, of the dual of
# sets whose dual has a kink (CVaR)
_SMOOTHING = 0.3


def _boosting_weights(ambiguity, losses, weight):
    """Robust risk and the weights that multiply the gradients of a round.

    Smooth sets give their exact worst-case weights. For a set with a kinked
    dual (CVaR) the exact weights jump between ``1/alpha`` and 0 as a loss
    crosses the value at risk, and Newton steps on them oscillate; we use the
    gradient of the set's softplus-smoothed dual
    (:meth:`~skrobust.ambiguity.AmbiguitySet.dual_objective` with
    ``smoothing``), minimized over its dual variable, at a temperature of
    ``_SMOOTHING`` times the standard deviation of the losses.
    """
    risk, q = ambiguity.risk_and_weights(losses, weight)
    if not ambiguity.needs_smoothing or ambiguity.is_trivial():
        return risk, q
    p = weight / weight.sum()
    tau = _SMOOTHING * float(np.sqrt(p @ (losses - p @ losses) ** 2))
    if tau <= 0:
        return risk, q
    start = ambiguity.dual_init(losses, weight)

    def dual(eta):
        value, _, grad = ambiguity.dual_objective(eta, losses, p, smoothing=tau)
        return value, grad

    result = minimize(dual, start, jac=True, method="L-BFGS-B")
    _, smooth_q, _ = ambiguity.dual_objective(result.x, losses, p, smoothing=tau)
    return risk, smooth_q / smooth_q.sum()


def _keep_column_draws(env):
    """Before the first round: skip LightGBM's reset to the ``"none"`` objective.

    ``lightgbm.train`` builds the booster with the objective ``"none"`` when
    it is given a callable, and ``Booster.update(fobj=...)`` then resets the
    objective to ``"none"`` once more on its first call. That reset re-reads
    the training data in the tree learner, which draws a feature subset
    (``feature_fraction`` / ``colsample_bytree`` < 1) that no tree uses: each
    tree of a custom objective then gets the columns that LightGBM's built-in
    objective draws for the next tree, and the predictions differ from
    ``LGBMClassifier`` / ``LGBMRegressor`` with the same seed (by up to 0.08
    in probability at radius 0). The booster already has the objective
    ``"none"``, so the reset is redundant; marking it done keeps LightGBM's
    own sequence of column draws. (A LightGBM without this attribute ignores
    it and keeps the reset.)
    """
    if env.iteration == env.begin_iteration:
        env.model._Booster__set_objective_to_none = True


_keep_column_draws.before_iteration = True
_keep_column_draws.order = 0


class _BaseDROLGBM(BaseEstimator):
    """Shared fitting loop: LightGBM boosting on worst-case-weighted gradients."""

    _parameter_constraints = {
        "ambiguity": [
            StrOptions(_AMBIGUITY_SHORTCUTS),
            HasMethods(["risk_and_weights"]),
        ],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "max_depth": [Interval(Integral, None, None, closed="neither")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "subsample_freq": [Interval(Integral, 0, None, closed="left")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "reg_alpha": [Interval(Real, 0, None, closed="left")],
        "boosting_type": [str],
        "subsample_for_bin": [Interval(Integral, 1, None, closed="left")],
        "objective": [None],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "min_split_gain": [Interval(Real, 0, None, closed="left")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "importance_type": [StrOptions({"split", "gain"})],
        "lgbm_params": [dict, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        # LightGBM's convention: negative is silent, 0 warnings, > 0 info
        "verbose": [Integral],
    }

    def _store_params(self, arguments):
        """``__init__``'s only step: store every argument unchanged.

        ``arguments`` is the ``locals()`` of the subclass's ``__init__``, whose
        explicit signature names the parameters (scikit-learn reads them
        from it); the keywords outside it are LightGBM parameters.
        """
        for name in self._get_param_names():
            setattr(self, name, arguments[name])
        self._store_kwargs(arguments["kwargs"])

    def _store_kwargs(self, kwargs):
        """Keep LightGBM parameters given as keywords, as ``LGBMModel`` does."""
        self._other_params = dict(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_params(self, deep=True):
        """Get parameters, including LightGBM parameters given as keywords.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(getattr(self, "_other_params", {}))
        return params

    def set_params(self, **params):
        """Set parameters; names that are not in the signature go to LightGBM.

        Parameters
        ----------
        **params : dict
            Estimator parameters, or any LightGBM parameter or alias.

        Returns
        -------
        self : estimator
            This estimator.
        """
        own = set(self._get_param_names())
        known = {k: v for k, v in params.items() if k in own or "__" in k}
        if known:
            super().set_params(**known)
        if not hasattr(self, "_other_params"):
            self._other_params = {}
        for key, value in params.items():
            if key not in known:
                setattr(self, key, value)
                self._other_params[key] = value
        return self

    @property
    def feature_importances_(self):
        """Feature importances of the booster (``importance_type``).

        Returns
        -------
        importances : ndarray of shape (n_features_in_,)
            Number of splits (``"split"``) or total gain (``"gain"``) per
            feature, zeros for a model without trees.
        """
        check_is_fitted(self)
        if self.booster_ is None:
            return np.zeros(self.n_features_in_)
        return self.booster_.feature_importance(importance_type=self.importance_type)

    def _n_rounds(self):
        """``n_estimators``, or a LightGBM alias of it given as a keyword."""
        extra = getattr(self, "_other_params", {})
        for alias in _ROUND_ALIASES:
            if alias in extra:
                return int(extra[alias])
        return int(self.n_estimators)

    def _lgbm_params(self, seed):
        extra = dict(self.lgbm_params or {})
        clash = sorted(_RESERVED.intersection(extra))
        if clash:
            raise ValueError(
                f"lgbm_params may not set {clash}: the estimator sets the objective "
                "and the number of rounds (use n_estimators)."
            )
        kwargs = dict(getattr(self, "_other_params", {}))
        clash = sorted((_RESERVED - set(_ROUND_ALIASES)).intersection(kwargs))
        if clash:
            raise ValueError(
                f"{clash} may not be set: the estimator sets the objective from "
                "its loss and its ambiguity set."
            )
        # forwarded under their own names, as LGBMModel does; LightGBM reads
        # the names of the signature as aliases and resolves them against any
        # alias given as a keyword (num_leaf, eta, lambda_l1, ...)
        params = {name: getattr(self, name) for name in _FORWARDED}
        params.update(
            {
                "seed": int(seed),
                "deterministic": True,
                # LightGBM's own convention; our default 0 stays silent
                "verbose": -1 if int(self.verbose) == 0 else int(self.verbose),
                "num_threads": 0 if self.n_jobs is None else int(self.n_jobs),
            }
        )
        if params["num_threads"] < 0:
            # LightGBM reads a negative count as "all but"; joblib style -1 = all
            params["num_threads"] = 0
        params.update({k: v for k, v in kwargs.items() if k not in _ROUND_ALIASES})
        params.update(extra)
        return params

    def _boost(self, X, target, sample_weight):
        """Run the boosting loop; ``target`` is the encoded target."""
        ambiguity = check_ambiguity(self.ambiguity)
        if isinstance(self.random_state, Integral):
            seed = int(self.random_state)  # unchanged, as LGBMModel passes it
        else:
            rng = check_random_state(self.random_state)
            seed = int(rng.randint(np.iinfo(np.int32).max))
        weight = np.asarray(sample_weight, dtype=np.float64)
        total = weight.sum()
        n_outputs = self._n_outputs()
        init = self._robust_init(ambiguity, target, weight)
        init_matrix = np.broadcast_to(init, (X.shape[0], n_outputs))
        history = []

        def objective(preds, dataset):
            raw = np.asarray(preds, dtype=np.float64).reshape(X.shape[0], -1)
            raw = raw + init_matrix
            losses, grad, hess = self._loss_grad_hess(raw, target)
            risk, q = _boosting_weights(ambiguity, _snap_ties(losses), weight)
            history.append(risk)
            if self.verbose > 0 and len(history) % 10 == 1:
                name = type(self).__name__
                print(f"[{name}] round {len(history)}: robust risk {risk:.6g}")
            scale = (total * q)[:, None]
            grad = grad * scale
            hess = hess * scale
            if n_outputs == 1:
                return grad.ravel(), hess.ravel()
            return grad, hess

        if _all_constant(X):
            # no split exists: the best model is the robust constant itself
            # (LightGBM refuses a custom objective on data without features)
            booster = None
        else:
            booster = self._train_booster(X, objective, seed, n_outputs)
        raw = self._raw_predict_booster(booster, X, init)
        losses, _, _ = self._loss_grad_hess(raw, target)
        self.booster_ = booster
        self.init_score_ = init
        self.robust_risk_ = float(ambiguity.risk(losses, weight))
        self.train_loss_ = float(np.dot(weight, losses) / total)
        self.ambiguity_ = ambiguity
        self.n_estimators_ = 0 if booster is None else booster.current_iteration()
        if booster is not None and self.n_estimators_ < self._n_rounds():
            warnings.warn(
                f"LightGBM stopped after {self.n_estimators_} of "
                f"{self._n_rounds()} rounds: no split of the worst-case-weighted "
                "gradients had a positive gain. This happens when the worst case "
                "sits on samples with identical Newton targets (a radius so large "
                "that the robust risk is the maximum loss, or CVaR with a small "
                "alpha); use a smaller radius or a larger alpha.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _train_booster(self, X, objective, seed, n_outputs):
        """Boost ``n_estimators`` rounds of the custom objective."""
        params = self._lgbm_params(seed)
        params["objective"] = objective
        if n_outputs > 1:
            params["num_class"] = n_outputs
        train = lgb.Dataset(
            X,
            label=np.zeros(X.shape[0]),
            init_score=None,
            params={
                "verbosity": params["verbose"],
                "feature_pre_filter": False,
                **{k: params[k] for k in ("max_bin", "min_data_in_bin") if k in params},
            },
            free_raw_data=True,
        )
        return lgb.train(
            params,
            train,
            num_boost_round=self._n_rounds(),
            callbacks=[_keep_column_draws],
        )

    def _robust_init(self, ambiguity, target, weight):
        """The constant raw score minimizing the robust risk (Danskin gradient).

        Starting the trees there, rather than at the average-risk constant,
        avoids a first round whose worst case sits on one label only (then no
        split has any gain and LightGBM stops).
        """
        start = self._init_score(target, weight)
        if ambiguity.is_trivial():
            return start
        n = target.shape[0]

        def robust(c):
            raw = np.broadcast_to(c, (n, c.shape[0]))
            losses, grad, _ = self._loss_grad_hess(raw, target)
            risk, q = ambiguity.risk_and_weights(losses, weight)
            return risk, q @ grad

        result = minimize(robust, start, jac=True, method="L-BFGS-B")
        return np.asarray(result.x, dtype=np.float64)

    @staticmethod
    def _raw_predict_booster(booster, X, init):
        if booster is None:
            return np.tile(init, (X.shape[0], 1))
        raw = booster.predict(X, raw_score=True)
        raw = np.asarray(raw, dtype=np.float64).reshape(X.shape[0], -1)
        return raw + init

    def _validate_fit_data(self, X, y, **kwargs):
        """``validate_data``, keeping a DataFrame with categorical columns.

        LightGBM reads pandas ``category`` columns as categorical features
        (their codes, split by category sets) and remaps new data to the
        categories seen in ``fit``. Such a frame is validated through its
        codes and handed to LightGBM as it is, so that the trees are the
        ones LightGBM grows on the same data.
        """
        self._categorical = _has_categorical(X)
        if not self._categorical:
            return validate_data(self, X, y, accept_sparse=["csr", "csc"], **kwargs)
        _, y = validate_data(self, _codes(X), y, **kwargs)
        return X, y

    def _raw_predict(self, X):
        check_is_fitted(self)
        if getattr(self, "_categorical", False):
            if not _has_categorical(X):
                raise TypeError(
                    "X must be a DataFrame with the categorical columns seen in "
                    "fit (LightGBM maps them to the categories of fit)."
                )
            validate_data(self, _codes(X), reset=False)
        else:
            X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"])
        return self._raw_predict_booster(self.booster_, X, self.init_score_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_SHARED_PARAMS_DOC = """
    ambiguity : {"chi2", "kl", "cvar"} or ambiguity set, default="chi2"
        The set of distributions whose worst-case expected loss is minimized:
        an object from :mod:`skrobust.ambiguity` (``ChiSquare(radius=0.5)``,
        ``CVaR(alpha=0.1)``, ...) or a string for the default-radius
        ``ChiSquare``, ``KL`` or ``CVaR``. A radius of zero (``alpha=1`` for
        CVaR) gives plain LightGBM boosting.
    n_estimators : int, default=100
        Number of boosting rounds.
    learning_rate : float, default=0.1
        Shrinkage of each tree.
    num_leaves : int, default=31
        Maximum number of leaves per tree.
    max_depth : int, default=-1
        Maximum tree depth; ``-1`` means no limit.
    min_child_samples : int, default=20
        Minimum number of samples in a leaf.
    subsample : float, default=1.0
        Fraction of rows used per tree (LightGBM ``bagging_fraction``); only
        active when ``subsample_freq > 0``.
    subsample_freq : int, default=0
        Bagging frequency (LightGBM ``bagging_freq``).
    colsample_bytree : float, default=1.0
        Fraction of features used per tree.
    reg_lambda : float, default=0.0
        L2 penalty on leaf values.
    reg_alpha : float, default=0.0
        L1 penalty on leaf values.
    lgbm_params : dict, default=None
        Any further LightGBM parameters (``{"min_sum_hessian_in_leaf": 1e-3,
        "max_bin": 63}``), passed to :func:`lightgbm.train`. They override the
        parameters above; the objective and number of rounds are set by the
        estimator and may not appear here.
    random_state : int, RandomState instance or None, default=None
        Seeds LightGBM (bagging, feature subsampling).
    n_jobs : int, default=None
        Number of threads of LightGBM *inside one fit* (its ``num_threads``,
        OpenMP threads on one machine), as in LightGBM's own scikit-learn
        estimators. ``None`` or any negative value uses LightGBM's default,
        the OpenMP default (all cores unless ``OMP_NUM_THREADS`` says
        otherwise). It does not start joblib workers; to run many fits in
        parallel (a grid search, cross-validation), parallelize across fits
        with joblib and keep few threads per fit, e.g.
        ``GridSearchCV(DROLGBMClassifier(n_jobs=1), grid, n_jobs=-1)``, which
        a Dask or Ray joblib backend distributes across machines. Asking for
        all cores at both levels oversubscribes them. See
        :ref:`User Guide <scaling>`.
    verbose : int, default=0
        If positive, print the robust training risk every 10 rounds."""


def _doc(text):
    return text.replace("%(shared_params)s", _SHARED_PARAMS_DOC.strip("\n"))


class DROLGBMClassifier(ClassifierMixin, _BaseDROLGBM):
    __doc__ = _doc(
        """Gradient boosting that minimizes a worst-case (robust) log-loss.

    Each boosting round computes the per-sample log-losses :math:`\\ell_i` of
    the current model, the worst-case weights :math:`q` of the ambiguity set
    (:meth:`~skrobust.ambiguity.AmbiguitySet.worst_case_weights`), and hands
    LightGBM the gradients and hessians of the plain loss multiplied by
    :math:`W q_i` (:math:`W` the total sample weight, so that unit weights and
    a radius of zero give exactly LightGBM's own binary / multiclass
    objective). By Danskin's theorem :math:`q_i \\partial \\ell_i / \\partial
    f(x_i)` is the functional gradient of the robust risk
    :math:`R(f) = \\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell(f(X), Y)]`, so the
    trees descend the robust risk while the weights follow the hardest
    samples.

    Two classes use the logistic loss on one raw score; more classes use the
    softmax cross-entropy on one score per class, with LightGBM's multiclass
    hessian :math:`\\tfrac{K}{K-1} p_k (1 - p_k)`.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
%(shared_params)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    booster_ : lightgbm.Booster
        The fitted trees (raw scores exclude :attr:`init_score_`).
    init_score_ : ndarray of shape (1,) or (n_classes,)
        Starting raw score: the log-odds (log class frequencies for several
        classes) of the weighted training labels, as LightGBM's
        ``boost_from_average``.
    ambiguity_ : AmbiguitySet
        The ambiguity set used (the string shortcut resolved).
    robust_risk_ : float
        Robust log-loss of the final model on the training data.
    train_loss_ : float
        Average (sample-weighted) log-loss on the training data.
    n_estimators_ : int
        Number of boosting rounds run.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    DROLGBMRegressor : The regression counterpart.
    lightgbm.LGBMClassifier : Plain (average-risk) boosting.

    Notes
    -----
    The weights make each round a Newton step on the robust risk with the
    weights held fixed, the boosting analogue of the joint primal-dual solve
    of the DRO linear models. The trees start from the constant that
    minimizes the robust risk; losses equal to a relative :math:`10^{-6}`
    count as tied. For CVaR, whose exact weights jump between
    :math:`1/\\alpha` and 0 and make the Newton steps oscillate, the weights
    are the gradient of CVaR's softplus-smoothed dual at a temperature of 0.3
    times the standard deviation of the current losses (the reported
    ``robust_risk_`` is the exact CVaR). If the worst case concentrates on
    samples that no split can separate (e.g. the single largest loss under a
    huge radius), LightGBM stops early and a ``ConvergenceWarning`` says so.

    ``min_child_samples`` counts rows, not weight, so a ``sample_weight`` of 2
    is not the same as a repeated row, exactly as in LightGBM.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Ke, G. et al. (2017). "LightGBM: A highly efficient gradient
       boosting decision tree." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.ambiguity import ChiSquare
    >>> from skrobust.ensemble import DROLGBMClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = DROLGBMClassifier(ChiSquare(radius=0.5), n_estimators=20,
    ...                         random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.robust_risk_ >= clf.train_loss_)
    True
    """
    )

    def __init__(
        self,
        ambiguity="chi2",
        *,
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=31,
        max_depth=-1,
        min_child_samples=20,
        subsample=1.0,
        subsample_freq=0,
        colsample_bytree=1.0,
        reg_lambda=0.0,
        reg_alpha=0.0,
        lgbm_params=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
        boosting_type="gbdt",
        subsample_for_bin=200000,
        objective=None,
        class_weight=None,
        min_split_gain=0.0,
        min_child_weight=1e-3,
        importance_type="split",
        **kwargs,
    ):
        self._store_params(locals())

    def _n_outputs(self):
        n_classes = self.classes_.shape[0]
        return 1 if n_classes == 2 else n_classes

    def _init_score(self, target, weight):
        freq = np.bincount(target, weights=weight, minlength=self.classes_.shape[0])
        freq = np.clip(freq / weight.sum(), 1e-15, 1.0)
        if self.classes_.shape[0] == 2:
            return np.array([np.log(freq[1]) - np.log(freq[0])])
        return np.log(freq)

    def _loss_grad_hess(self, raw, target):
        if raw.shape[1] == 1:
            f = raw[:, 0]
            sign = 2.0 * target - 1.0
            losses = -log_expit(sign * f)
            prob = expit(f)
            grad = (prob - target)[:, None]
            hess = (prob * (1.0 - prob))[:, None]
            return losses, grad, hess
        n_classes = raw.shape[1]
        rows = np.arange(raw.shape[0])
        losses = -log_softmax(raw, axis=1)[rows, target]
        prob = softmax(raw, axis=1)
        grad = prob.copy()
        grad[rows, target] -= 1.0
        hess = (n_classes / (n_classes - 1.0)) * prob * (1.0 - prob)
        return losses, grad, hess

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the boosted trees on the robust log-loss.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (any values; at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining the nominal distribution :math:`P_n`.

        Returns
        -------
        self : DROLGBMClassifier
            The fitted estimator.
        """
        X, y = self._validate_fit_data(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        target = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "y has only one class; the classifier needs at least 2 classes, "
                f"got {self.classes_.tolist()}."
            )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        if self.class_weight is not None:
            # as LightGBM: the class weights multiply the sample weights
            sample_weight = sample_weight * compute_sample_weight(self.class_weight, y)
        return self._boost(X, target, sample_weight)

    def decision_function(self, X):
        """Raw scores: log-odds for two classes, one score per class otherwise.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            pos = expit(raw[:, 0])
            return np.column_stack([1.0 - pos, pos])
        return softmax(raw, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            return np.column_stack([log_expit(-raw[:, 0]), log_expit(raw[:, 0])])
        return raw - logsumexp(raw, axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            index = (raw[:, 0] > 0).astype(int)
        else:
            index = np.argmax(raw, axis=1)
        return self.classes_[index]


class DROLGBMRegressor(RegressorMixin, _BaseDROLGBM):
    __doc__ = _doc(
        """Gradient boosting that minimizes a worst-case (robust) regression loss.

    Each boosting round computes the per-sample losses :math:`\\ell_i` of the
    current model, the worst-case weights :math:`q` of the ambiguity set, and
    hands LightGBM the loss's gradients and hessians multiplied by
    :math:`W q_i` (:math:`W` the total sample weight): the functional gradient
    of the robust risk :math:`\\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell]`
    (Danskin). With a radius of zero and the squared loss this is LightGBM's
    own ``regression`` objective.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        Per-sample loss: :math:`\\tfrac12 (y - f)^2`, :math:`|y - f|`, or the
        Huber loss with threshold ``huber_delta``. The absolute and Huber
        losses use a unit hessian (LightGBM does the same, but it also
        re-fits the leaf values of ``regression_l1`` to residual medians,
        which a custom objective cannot do).
    huber_delta : float, default=1.0
        Threshold of the Huber loss (LightGBM's ``alpha``).
%(shared_params)s

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The fitted trees (raw scores exclude :attr:`init_score_`).
    init_score_ : ndarray of shape (1,)
        Starting prediction: the weighted mean of ``y`` for the squared and
        Huber losses, the weighted median for the absolute loss.
    ambiguity_ : AmbiguitySet
        The ambiguity set used (the string shortcut resolved).
    robust_risk_ : float
        Robust loss of the final model on the training data.
    train_loss_ : float
        Average (sample-weighted) loss on the training data.
    n_estimators_ : int
        Number of boosting rounds run.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    DROLGBMClassifier : The classification counterpart.
    lightgbm.LGBMRegressor : Plain (average-risk) boosting.

    Notes
    -----
    ``min_child_samples`` counts rows, not weight, so a ``sample_weight`` of 2
    is not the same as a repeated row, exactly as in LightGBM.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Ke, G. et al. (2017). "LightGBM: A highly efficient gradient
       boosting decision tree." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skrobust.ensemble import DROLGBMRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=5.0,
    ...                        random_state=0)
    >>> reg = DROLGBMRegressor("cvar", n_estimators=20, random_state=0)
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> bool(reg.robust_risk_ >= reg.train_loss_)
    True
    """
    )

    _parameter_constraints = {
        **_BaseDROLGBM._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        ambiguity="chi2",
        *,
        loss="squared_error",
        huber_delta=1.0,
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=31,
        max_depth=-1,
        min_child_samples=20,
        subsample=1.0,
        subsample_freq=0,
        colsample_bytree=1.0,
        reg_lambda=0.0,
        reg_alpha=0.0,
        lgbm_params=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
        boosting_type="gbdt",
        subsample_for_bin=200000,
        objective=None,
        class_weight=None,
        min_split_gain=0.0,
        min_child_weight=1e-3,
        importance_type="split",
        **kwargs,
    ):
        self._store_params(locals())

    def _n_outputs(self):
        return 1

    def _init_score(self, target, weight):
        if self.loss == "absolute_error":
            order = np.argsort(target, kind="stable")
            cum = np.cumsum(weight[order])
            index = int(np.searchsorted(cum, 0.5 * cum[-1]))
            return np.array([target[order][index]])
        return np.array([np.dot(weight, target) / weight.sum()])

    def _loss_grad_hess(self, raw, target):
        residual = raw[:, 0] - target
        if self.loss == "squared_error":
            losses = 0.5 * residual**2
            grad = residual
            hess = np.ones_like(residual)
        elif self.loss == "absolute_error":
            losses = np.abs(residual)
            grad = np.sign(residual)
            hess = np.ones_like(residual)
        else:
            delta = float(self.huber_delta)
            small = np.abs(residual) <= delta
            losses = np.where(
                small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta)
            )
            grad = np.clip(residual, -delta, delta)
            hess = np.ones_like(residual)
        return losses, grad[:, None], hess[:, None]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the boosted trees on the robust loss.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining the nominal distribution :math:`P_n`.

        Returns
        -------
        self : DROLGBMRegressor
            The fitted estimator.
        """
        if self.class_weight is not None:
            raise ValueError(
                "class_weight applies to classification; DROLGBMRegressor needs "
                f"class_weight=None, got {self.class_weight!r}."
            )
        X, y = self._validate_fit_data(X, y, y_numeric=True)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        return self._boost(X, np.asarray(y, dtype=np.float64), sample_weight)

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._raw_predict(X)[:, 0]
