"""scikit-learn estimators that train a skorch net on a robust risk."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from torch import nn

from skrobust.nn._base_net import (
    _BaseNeuralNet,
    _DRONetMixin,
    _NeuralNetClassifierBase,
)

_COMMON_PARAMS_DOC = """
    module : torch.nn.Module subclass or instance, default=None
        The network. ``None`` builds a fully connected network with
        ``hidden_layer_sizes`` and ``activation``. A class is instantiated with
        ``module_kwargs``; an instance is deep-copied (never trained in place)
        and its parameters are reset through ``reset_parameters`` under the
        seeded generator. It maps a float32 batch of shape
        ``(batch, n_features)`` to the raw outputs described above.
    module_kwargs : dict, default=None
        Keyword arguments of ``module`` when it is a class.
    hidden_layer_sizes : array-like of int, default=(64,)
        Widths of the hidden layers of the default network.
    activation : {"relu", "elu", "tanh", "gelu", "softplus"}, default="relu"
        Activation of the default network.
    ambiguity : ReweightingAmbiguitySet, default=None
        ``ChiSquare``, ``CressieRead``, ``KL``, ``CVaR`` or ``TotalVariation``
        from :mod:`skrobust.ambiguity`; ``None`` means
        ``ChiSquare(radius=1.0)``.
    minibatch : {"exact", "dual"}, default="exact"
        ``"exact"`` minimizes the exact robust risk of each mini-batch
        (:class:`DROLoss`), a biased estimate of the robust risk of the data
        set; ``"dual"`` minimizes the dual objective with learned dual
        variables (:class:`DualDROLoss`), whose mini-batch gradients are
        unbiased (ChiSquare, CressieRead and CVaR only).
    max_epochs : int, default=100
        Passes over the training data in ``fit``. Each call of
        ``partial_fit`` makes one pass over its chunk instead.
    batch_size : int, default=128
        Mini-batch size (capped at the number of samples in ``fit``).
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        The optimizer.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    device : str or torch.device, default="cpu"
        Where to train, e.g. ``"cuda"``. The robust risk is computed on that
        device too.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization and the shuffling (through a forked torch
        generator, leaving the global torch state unchanged). A sequence of
        ``partial_fit`` calls on the same chunks is reproducible too.
    verbose : int, default=0
        Print skorch's epoch log when positive.
"""

_COMMON_ATTRS_DOC = """
    module_ : torch.nn.Module
        The trained network.
    criterion_ : DROLoss or DualDROLoss
        The trained criterion (with the dual variables when
        ``minibatch="dual"``; they carry over between ``partial_fit`` calls).
    loss_curve_ : ndarray of shape (`n_iter_`,)
        Mean training objective of each epoch (of each ``partial_fit`` call).
    n_iter_ : int
        Number of epochs run, counting one per ``partial_fit`` call.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""


class DRONeuralNetClassifier(_DRONetMixin, _NeuralNetClassifierBase):
    __doc__ = (
        """Neural network classifier trained on a distributionally robust risk.

    Trains a torch network by mini-batch gradient descent (through an internal
    skorch net) on the robust risk of the cross-entropy losses,

    .. math::

        \\min_\\theta \\sup_{Q \\in \\mathcal{U}(P_n)}
        E_Q\\big[-\\log p_\\theta(y \\mid x)\\big],

    where the ambiguity set :math:`\\mathcal{U}(P_n)` is a ball of
    distributions around the (weighted) empirical one. The network outputs
    one logit per class; probabilities are their softmax.

    Read more in the :ref:`User Guide <neural_dro>`.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels."""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    DRONeuralNetRegressor : The regression counterpart.
    DROLoss : The criterion used with ``minibatch="exact"``.
    DualDROLoss : The criterion used with ``minibatch="dual"``.

    Notes
    -----
    With ``minibatch="exact"`` each step minimizes the robust risk of the
    batch, which underestimates the robust risk of the data set (the
    worst case over a small batch is less extreme); use large batches or
    ``minibatch="dual"``. :meth:`robust_risk` reports the exact robust risk of
    the fitted model on any data.

    For data larger than memory, :meth:`partial_fit` trains on one chunk at a
    time (one pass per call), keeping the network, the optimizer state and
    the dual variables between calls. With ``minibatch="dual"`` the
    objective is an expectation over samples, so chunks read in turn from
    disk minimize the robust risk of the whole data set, as ``fit`` does on
    it in memory.

    ``score`` is the accuracy (from :class:`~sklearn.base.ClassifierMixin`);
    use :meth:`robust_risk` or a worst-group metric to compare robustness.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Levy, D., Carmon, Y., Duchi, J. C. and Sidford, A. (2020).
       "Large-scale methods for distributionally robust optimization." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.ambiguity import CVaR
    >>> from skrobust.nn import DRONeuralNetClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = DRONeuralNetClassifier(
    ...     hidden_layer_sizes=(16,), ambiguity=CVaR(alpha=0.5), max_epochs=20,
    ...     lr=0.01, random_state=0,
    ... ).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.score(X, y) > 0.8)
    True
    """
    )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network on the robust risk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (cast to float32).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the nominal distribution (the center of the ball).

        Returns
        -------
        self : DRONeuralNetClassifier
            The fitted estimator.
        """
        X, y, weight, device, seed = self._prepare(
            X, y, sample_weight, multi_output=False, y_numeric=False
        )
        y_enc = self._encode_classes(y)
        return self._fit_net(X, y_enc, weight, device, seed, self.classes_.shape[0])

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Continue training on a chunk of data: one pass in mini-batches.

        The first call builds the network and the optimizer (and, with
        ``minibatch="dual"``, initializes the dual variables on its first
        mini-batch); later calls continue from there, keeping the optimizer
        state and the dual variables. Calling ``partial_fit`` once per chunk
        of a data set, for several passes over the chunks, trains on the
        whole data set without holding it in memory.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the chunk (cast to float32), e.g. a slice of a
            ``numpy.memmap``.
        y : array-like of shape (n_samples,)
            Class labels of the chunk.
        classes : array-like of shape (n_classes,), default=None
            All the class labels of the data set. Required on the first call
            (a chunk may miss some); later calls may omit it.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's samples, used as given (not normalized,
            since the rest of the data set is not seen); scale them to mean
            about one over the data set.

        Returns
        -------
        self : DRONeuralNetClassifier
            The updated estimator.

        Warns
        -----
        UserWarning
            On the first call with ``minibatch="exact"`` and a non-trivial
            ambiguity set: batch robust risks are biased estimates of the
            robust risk of the data set; ``minibatch="dual"`` is not.
        """
        X, y, weight, first_call = self._prepare_partial(
            X, y, sample_weight, multi_output=False, y_numeric=False
        )
        y_enc, classes = self._encode_partial(y, classes, first_call)
        self._partial_fit_net(X, y_enc, weight, classes.shape[0], first_call)
        self.classes_ = classes
        return self


class DRONeuralNetRegressor(_DRONetMixin, RegressorMixin, _BaseNeuralNet):
    __doc__ = (
        """Neural network regressor trained on a distributionally robust risk.

    Trains a torch network by mini-batch gradient descent (through an internal
    skorch net) on the robust risk of the squared errors (averaged over the
    outputs),

    .. math::

        \\min_\\theta \\sup_{Q \\in \\mathcal{U}(P_n)}
        E_Q\\big[\\|y - f_\\theta(x)\\|^2 / d\\big].

    The network outputs ``n_outputs`` values.

    Read more in the :ref:`User Guide <neural_dro>`.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC
        + """
    Attributes
    ----------"""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    DRONeuralNetClassifier : The classification counterpart.
    DROLoss : The criterion used with ``minibatch="exact"``.

    Notes
    -----
    See :class:`DRONeuralNetClassifier` on the bias of mini-batch robust
    risks. Targets are used as given: scale them (for instance with
    :class:`~sklearn.compose.TransformedTargetRegressor`) for a well
    conditioned fit; the worst-case distribution does not depend on the scale
    of the losses. ``score`` is the :math:`R^2` (from
    :class:`~sklearn.base.RegressorMixin`).

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skrobust.ambiguity import ChiSquare
    >>> from skrobust.nn import DRONeuralNetRegressor
    >>> X, y = make_regression(n_samples=200, n_features=4, noise=1.0,
    ...                        random_state=0)
    >>> reg = DRONeuralNetRegressor(
    ...     hidden_layer_sizes=(16,), ambiguity=ChiSquare(radius=0.1),
    ...     max_epochs=50, lr=0.05, random_state=0,
    ... ).fit(X, y / y.std())
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> bool(reg.score(X, y / y.std()) > 0.9)
    True
    """
    )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _base_criterion(self):
        return nn.MSELoss(reduction="none")

    def _encode_for_loss(self, y):
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(y.shape[0], -1)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network on the robust risk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (cast to float32).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (cast to float32).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the nominal distribution (the center of the ball).

        Returns
        -------
        self : DRONeuralNetRegressor
            The fitted estimator.
        """
        X, y, weight, device, seed = self._prepare(
            X, y, sample_weight, multi_output=True, y_numeric=True
        )
        self._y_ndim = np.ndim(y)
        y2 = np.array(y, dtype=np.float32).reshape(X.shape[0], -1)
        return self._fit_net(X, y2, weight, device, seed, y2.shape[1])

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Continue training on a chunk of data: one pass in mini-batches.

        The first call builds the network and the optimizer (and, with
        ``minibatch="dual"``, initializes the dual variables on its first
        mini-batch); later calls continue from there, keeping the optimizer
        state and the dual variables. See
        :meth:`DRONeuralNetClassifier.partial_fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the chunk (cast to float32).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets of the chunk (cast to float32), with the same number of
            outputs in every call.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's samples, used as given (not normalized);
            scale them to mean about one over the data set.

        Returns
        -------
        self : DRONeuralNetRegressor
            The updated estimator.

        Warns
        -----
        UserWarning
            On the first call with ``minibatch="exact"`` and a non-trivial
            ambiguity set, as in :meth:`DRONeuralNetClassifier.partial_fit`.
        """
        X, y, weight, first_call = self._prepare_partial(
            X, y, sample_weight, multi_output=True, y_numeric=True
        )
        y2 = np.array(y, dtype=np.float32).reshape(X.shape[0], -1)
        self._partial_fit_net(X, y2, weight, y2.shape[1], first_call)
        if first_call:
            self._y_ndim = np.ndim(y)
        return self

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions, 1-d when the training target was.
        """
        out = self._predict_raw(X)
        return out.ravel() if self._y_ndim == 1 else out
