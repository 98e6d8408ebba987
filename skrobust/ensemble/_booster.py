"""The boosting loop of the DRO LightGBM estimators and their shared parameters."""

import warnings
from numbers import Integral, Real

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skrobust.ambiguity import ambiguity_constraint, check_ambiguity
from skrobust.ensemble._data import _all_constant, _codes, _has_categorical
from skrobust.ensemble._robust import _boosting_weights, _robust_constant, _snap_ties

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
        "ambiguity": ambiguity_constraint(shortcuts=_AMBIGUITY_SHORTCUTS),
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
        """The constant raw score minimizing the robust risk.

        Starting the trees there, rather than at the average-risk constant,
        avoids a first round whose worst case sits on one label only (then no
        split has any gain and LightGBM stops). It is the intercept of an
        intercept-only linear model under the same loss and ambiguity set,
        solved and certified by the linear engine (see
        :func:`~skrobust.ensemble._robust._robust_constant`).
        """
        start = self._init_score(target, weight)
        if ambiguity.is_trivial():
            return start
        loss, encoded, mass = self._engine_loss(target, weight)
        return _robust_constant(ambiguity, loss, encoded, mass, start)

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
