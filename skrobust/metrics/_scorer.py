"""A scorer that ranks models by their worst-subpopulation risk."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import validate_params

from skrobust.metrics._estimate import (
    _COMMON_CONSTRAINTS,
    _as_core,
    _evaluate,
    _select_core,
    _weights,
)
from skrobust.metrics._losses import model_losses
from skrobust.metrics._names import _OLD_SIZE, _SIZE, _subpopulation_size
from skrobust.utils._conventions import DEPRECATED


class _WorstSubpopulationScorer:
    """Callable ``scorer(estimator, X, y)``: minus the worst-case risk."""

    def __init__(
        self,
        subpopulation_size,
        loss,
        core_features,
        regressor,
        cv,
        n_repeats,
        bias_correction,
        seed,
    ):
        self.subpopulation_size = subpopulation_size
        self.loss = loss
        self.core_features = core_features
        self.regressor = regressor
        self.cv = cv
        self.n_repeats = n_repeats
        self.bias_correction = bias_correction
        self.random_state = seed

    def __call__(self, estimator, X, y, sample_weight=None):
        losses = model_losses(estimator, X, np.asarray(y), self.loss)
        Z = _as_core(_select_core(X, self.core_features), losses.shape[0])
        sample_weight = _weights(sample_weight, losses, self.regressor)
        alphas = np.array([float(self.subpopulation_size)])
        fit = _evaluate(
            losses,
            Z,
            alphas,
            self.regressor,
            self.cv,
            self.n_repeats,
            0.95,
            None,
            self.random_state,
            sample_weight=sample_weight,
            bias_correction=self.bias_correction,
        )
        return -float(fit.table[0, 0])

    def __repr__(self):
        return (
            "make_worst_subpopulation_scorer("
            f"subpopulation_size={self.subpopulation_size!r}, loss={self.loss!r})"
        )


@validate_params(
    {
        "subpopulation_size": [_SIZE, None],
        "core_features": ["array-like", None],
        "loss": _COMMON_CONSTRAINTS["loss"],
        "regressor": _COMMON_CONSTRAINTS["regressor"],
        "cv": _COMMON_CONSTRAINTS["cv"],
        "n_repeats": _COMMON_CONSTRAINTS["n_repeats"],
        "bias_correction": ["boolean"],
        "random_state": [Integral, None],
        "alpha": _OLD_SIZE,
    },
    prefer_skip_nested_validation=True,
)
def make_worst_subpopulation_scorer(
    subpopulation_size=None,
    *,
    loss="zero_one",
    core_features=None,
    regressor=None,
    cv=5,
    n_repeats=1,
    bias_correction=True,
    random_state=0,
    alpha=DEPRECATED,
):
    """Scorer that ranks models by their worst-subpopulation risk.

    The score of a model on held-out data is minus its debiased worst-case
    risk over subpopulations of mass >= ``subpopulation_size`` defined by
    ``core_features`` (greater is better), so ``GridSearchCV(...,
    scoring=scorer)`` selects the model whose worst subpopulation fares best.

    Read more in the :ref:`User Guide <worst_subpopulation>`.

    Parameters
    ----------
    subpopulation_size : float
        Smallest subpopulation mass, in (0, 1] (``alpha`` before). Required
        (its default only lets the deprecated ``alpha`` stand in for it).
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        Per-sample loss.
    core_features : array-like of int, str or bool, default=None
        Columns of ``X`` defining subpopulations; ``None`` means all.
    regressor : regressor, default=None
        First stage; ``None`` uses regularized gradient boosting.
    cv : int, default=5
        Cross-fitting folds inside each scored split.
    n_repeats : int, default=1
        Cross-fitting splits.
    bias_correction : bool, default=True
        Correct the misranking bias with two first stages per fold (see
        :func:`worst_subpopulation_risk`).
    random_state : int or None, default=0
        Seeds the cross-fitting; an int keeps scores reproducible and equal
        across the models compared.
    alpha : float, default="deprecated"
        Deprecated name of ``subpopulation_size``, kept for one release
        (setting it warns with a ``FutureWarning``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``; the weights
        are frequency weights (see :func:`worst_subpopulation_risk`).

    See Also
    --------
    worst_subpopulation_risk : The estimate the scorer computes.

    References
    ----------
    .. [1] Li, M., Mittal, D., Namkoong, H. and Xia, S. "Evaluating model
       performance under worst-case subpopulations." arXiv:2407.01316; first
       version by Li, Namkoong and Xia in Advances in Neural Information
       Processing Systems 34 (2021).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrobust.metrics import make_worst_subpopulation_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3))
    >>> y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    >>> scorer = make_worst_subpopulation_scorer(
    ...     0.2, core_features=[1, 2], regressor=LinearRegression())
    >>> search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1.0]},
    ...                       scoring=scorer, cv=3).fit(X, y)
    >>> search.best_params_
    {'C': 1.0}
    """
    size = _subpopulation_size(
        "make_worst_subpopulation_scorer", subpopulation_size, alpha
    )
    return _WorstSubpopulationScorer(
        size,
        loss,
        core_features,
        regressor,
        cv,
        n_repeats,
        bias_correction,
        random_state,
    )
