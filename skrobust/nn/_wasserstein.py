"""Wasserstein robust training by principled adversarial training (WRM)."""

import copy
import warnings
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn

from skrobust.ambiguity._torch import check_batch_weight
from skrobust.nn._base_net import (
    _BaseNeuralNet,
    _NeuralNetClassifierBase,
    _training_data,
)
from skrobust.nn._estimators import _COMMON_ATTRS_DOC
from skrobust.nn._loss import _check_finite_losses
from skrobust.nn._net import (
    WeightedNet,
    build_module,
    check_finite_output,
    rng_devices,
)

#: rows perturbed at once by ``perturb`` and ``certificate``
_CHUNK = 4096


class _WeightedMeanLoss(nn.Module):
    """Weighted mean of per-sample losses (weights have mean one overall)."""

    def __init__(self, base_criterion):
        super().__init__()
        self.base_criterion = base_criterion

    def forward(self, input, target, sample_weight=None):
        losses = self.base_criterion(input, target)
        _check_finite_losses(losses)
        if sample_weight is None:
            return losses.mean()
        weight = check_batch_weight(sample_weight, losses.shape[0], losses.device)
        return (weight.to(losses.dtype) * losses).mean()


def _ascend(module, loss_fn, x, y, gamma, step_size, n_steps, tol=None):
    """Gradient ascent on ``loss(x') - gamma ||x' - x||^2`` from ``x' = x``.

    Returns the final point and the largest first-order residual
    ``||grad loss(x') - 2 gamma (x' - x)|| / (2 gamma)`` (in input units) of
    the last step. With ``tol`` the loop stops once the residual is below it.
    """
    x0 = x.detach()
    z = x0.clone()
    residual = torch.full((), float("inf"), device=x.device)
    for _ in range(n_steps):
        z.requires_grad_(True)
        loss = loss_fn(module(z), y).sum()
        (grad,) = torch.autograd.grad(loss, z)
        ascent = grad - 2.0 * gamma * (z - x0)
        z = (z + step_size * ascent).detach()
        if tol is not None:
            residual = ascent.reshape(ascent.shape[0], -1).norm(dim=1).max()
            residual = residual / (2.0 * gamma)
            if bool(residual <= tol):
                break
    return z, residual


class _WRMNet(WeightedNet):
    """skorch net that trains on the inner maximizers of each batch."""

    def train_step_single(self, batch, **fit_params):
        # the ascent runs in eval mode: deterministic (no dropout) and without
        # updating batch-norm statistics with the perturbed points' passes
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        weight = Xi["sample_weight"] if isinstance(Xi, Mapping) else None
        x = to_tensor(Xi["X"] if isinstance(Xi, Mapping) else Xi, device=self.device)
        target = to_tensor(yi, device=self.device)
        adversary = self.adversary_settings
        x_adv, _ = _ascend(
            self.module_,
            adversary["loss"],
            x,
            target,
            adversary["gamma"],
            adversary["step_size"],
            adversary["n_steps"],
        )
        check_finite_output(x_adv)  # the ascent overflowed on huge inputs
        Xi = x_adv if weight is None else {"X": x_adv, "sample_weight": weight}
        self._set_training(True)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


class WassersteinRobustNeuralNetClassifier(_NeuralNetClassifierBase):
    __doc__ = (
        """Neural network classifier robust to Wasserstein shifts of the inputs.

    Principled adversarial training (WRM, Sinha, Namkoong and Duchi, 2018)
    minimizes the Lagrangian relaxation of the worst-case risk over a
    Wasserstein ball with transport cost :math:`c(z, z') = \\|x - x'\\|_2^2`
    (labels are not moved):

    .. math::

        \\min_\\theta E_{P_n}\\big[\\phi_\\gamma(\\theta; x, y)\\big], \\qquad
        \\phi_\\gamma(\\theta; x, y) = \\sup_{x'} \\big\\{ \\ell(\\theta; x', y)
        - \\gamma \\|x' - x\\|_2^2 \\big\\}.

    Each training step solves the inner maximization for the batch by
    ``inner_steps`` steps of gradient ascent from :math:`x` and takes a
    gradient step on the loss at the maximizers (Danskin). When
    :math:`\\gamma` exceeds half the smoothness constant of the loss in
    :math:`x` the inner problem is strongly concave and the ascent converges
    to its unique solution. Then for every radius :math:`\\rho`,

    .. math::

        \\sup_{P : W_c(P, P_n) \\le \\rho} E_P[\\ell(\\theta; Z)] \\le
        \\gamma \\rho + E_{P_n}[\\phi_\\gamma(\\theta; Z)],

    the certificate returned by :meth:`certificate`. Use a smooth activation
    (the default ELU): the smoothness of the loss in :math:`x` is what makes
    the inner problem tractable.

    With ``method="ada"`` the estimator instead performs adversarial data
    augmentation (Volpi et al., 2018): it trains on the data by ERM, then
    ``n_phases`` times appends to the training set the inner maximizers of all
    its current points (so the set doubles each phase) and trains again.

    Read more in the :ref:`User Guide <wasserstein>`.

    Parameters
    ----------
    module : torch.nn.Module subclass or instance, default=None
        The network, mapping ``(batch, n_features)`` float32 inputs to one
        logit per class. ``None`` builds a fully connected network; a class is
        instantiated with ``module_kwargs``; an instance is deep-copied and
        its parameters reset.
    module_kwargs : dict, default=None
        Keyword arguments of ``module`` when it is a class.
    hidden_layer_sizes : array-like of int, default=(64,)
        Widths of the hidden layers of the default network.
    activation : {"elu", "relu", "tanh", "gelu", "softplus"}, default="elu"
        Activation of the default network (smooth ones suit WRM).
    gamma : float, default=2.0
        Lagrange multiplier :math:`\\gamma > 0` of the transport cost; larger
        values mean smaller perturbations (a smaller implied radius).
    inner_steps : int, default=15
        Gradient ascent steps of the inner maximization per training batch
        (and per augmentation phase with ``method="ada"``).
    inner_step_size : float, default=None
        Ascent step size; ``None`` uses :math:`1 / (2\\gamma)`, for which the
        ascent is the fixed-point iteration :math:`x' \\leftarrow x + \\nabla_x
        \\ell(\\theta; x', y) / (2\\gamma)`, a contraction under strong
        concavity.
    method : {"wrm", "ada"}, default="wrm"
        ``"wrm"``: train on the inner maximizers of every batch.
        ``"ada"``: adversarial data augmentation in phases.
    n_phases : int, default=2
        Augmentation phases of ``method="ada"`` (ignored by ``"wrm"``).
    max_epochs : int, default=100
        Passes over the training data in ``fit`` (per phase with
        ``method="ada"``). Each ``partial_fit`` call makes one pass over its
        chunk instead.
    batch_size : int, default=128
        Mini-batch size (capped at the number of samples in ``fit``).
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        The optimizer.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    device : str or torch.device, default="cpu"
        Where to train, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization and the shuffling (through a forked torch
        generator).
    verbose : int, default=0
        Print skorch's epoch log when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels."""
        + _COMMON_ATTRS_DOC.replace(
            """    criterion_ : DROLoss or DualDROLoss
        The trained criterion (with the dual variables when
        ``minibatch="dual"``; they carry over between ``partial_fit`` calls).
""",
            """    criterion_ : torch.nn.Module
        The (weighted mean cross-entropy) training criterion.
    n_augmented_ : int
        Number of adversarial points appended (``method="ada"``; 0 for WRM).
""",
        )
        + """
    See Also
    --------
    DRONeuralNetClassifier : Robustness to reweighting (f-divergence balls)
        instead of input perturbations.

    Notes
    -----
    The certificate holds for the distribution the loss is averaged over
    (the data passed to :meth:`certificate`) and requires the inner
    maximization to be solved globally, which strong concavity guarantees;
    :meth:`certificate` runs the ascent to convergence in float64 and warns
    (``ConvergenceWarning``) when it does not converge. Sinha et al. also give
    a generalization bound from the training certificate to the population
    one, not computed here. The ADA option measures the transport cost in
    input space, whereas Volpi et al. measure it in the representation space
    of the network's last hidden layer.

    References
    ----------
    .. [1] Sinha, A., Namkoong, H. and Duchi, J. C. (2018). "Certifying some
       distributional robustness with principled adversarial training."
       ICLR.
    .. [2] Volpi, R., Namkoong, H., Sener, O., Duchi, J. C., Murino, V. and
       Savarese, S. (2018). "Generalizing to unseen domains via adversarial
       data augmentation." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.nn import WassersteinRobustNeuralNetClassifier
    >>> X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    >>> clf = WassersteinRobustNeuralNetClassifier(
    ...     hidden_layer_sizes=(8,), gamma=2.0, max_epochs=10, lr=0.02,
    ...     random_state=0,
    ... ).fit(X, y)
    >>> bool(clf.score(X, y) > 0.8)
    True
    >>> # the worst-case loss within transport budget 0.1 is at most:
    >>> bound = clf.certificate(X, y, radius=0.1)
    >>> bool(bound > 0)
    True
    """
    )

    _parameter_constraints = {
        **_BaseNeuralNet._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "inner_steps": [Interval(Integral, 0, None, closed="left")],
        "inner_step_size": [None, Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"wrm", "ada"})],
        "n_phases": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        module=None,
        *,
        module_kwargs=None,
        hidden_layer_sizes=(64,),
        activation="elu",
        gamma=2.0,
        inner_steps=15,
        inner_step_size=None,
        method="wrm",
        n_phases=2,
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.module = module
        self.module_kwargs = module_kwargs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.gamma = gamma
        self.inner_steps = inner_steps
        self.inner_step_size = inner_step_size
        self.method = method
        self.n_phases = n_phases
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _step_size(self):
        if self.inner_step_size is None:
            return 1.0 / (2.0 * float(self.gamma))
        return float(self.inner_step_size)

    def _adversary_settings(self):
        return {
            "loss": self._base_criterion(),
            "gamma": float(self.gamma),
            "step_size": self._step_size(),
            "n_steps": int(self.inner_steps),
        }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit by principled adversarial training (or adversarial augmentation).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (cast to float32).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the training objective.

        Returns
        -------
        self : WassersteinRobustNeuralNetClassifier
            The fitted estimator.
        """
        X, y, weight, device, seed = self._prepare(
            X, y, sample_weight, multi_output=False, y_numeric=False
        )
        y_enc = self._encode_classes(y)
        hidden = self._validate_hidden()
        criterion = _WeightedMeanLoss
        net_class = _WRMNet if self.method == "wrm" else WeightedNet
        with torch.random.fork_rng(devices=rng_devices(device)):
            torch.manual_seed(seed)
            module = build_module(
                self.module,
                self.module_kwargs,
                X.shape[1],
                self.classes_.shape[0],
                hidden,
                self.activation,
            )
            net = self._make_net(
                net_class,
                module,
                criterion,
                X.shape[0],
                device,
                criterion__base_criterion=self._base_criterion(),
            )
            net.adversary_settings = self._adversary_settings()
            net.fit(_training_data(X, weight), y_enc)
            self.n_augmented_ = 0
            if self.method == "ada":
                X_all, y_all, w_all = X, y_enc, weight
                for _ in range(int(self.n_phases)):
                    X_new = self._augment(net, X_all, y_all, device)
                    self.n_augmented_ += X_new.shape[0]
                    X_all = np.concatenate([X_all, X_new])
                    y_all = np.concatenate([y_all, y_all])
                    w_all = np.concatenate([w_all, w_all])
                    net.partial_fit(_training_data(X_all, w_all), y_all)
        return self._store_net(net)

    def _store_net(self, net):
        self._net = net
        self.module_ = net.module_
        self.criterion_ = net.criterion_
        self.loss_curve_ = np.asarray(net.history[:, "train_loss"], dtype=float)
        self.n_iter_ = len(net.history)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Continue principled adversarial training on a chunk: one pass.

        Each mini-batch of the chunk is perturbed by the inner maximization
        and the network takes a step on the perturbed points, exactly as in
        ``fit``; the objective :math:`E[\\phi_\\gamma]` is an average over
        samples, so chunks read in turn from disk train on the whole data set.
        The first call builds the network and the optimizer; later calls keep
        the optimizer state. Only ``method="wrm"``: the augmentation phases of
        ``"ada"`` perturb the whole training set at once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the chunk (cast to float32).
        y : array-like of shape (n_samples,)
            Class labels of the chunk.
        classes : array-like of shape (n_classes,), default=None
            All the class labels of the data set. Required on the first call
            (a chunk may miss some); later calls may omit it.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's samples, used as given (not normalized);
            scale them to mean about one over the data set.

        Returns
        -------
        self : WassersteinRobustNeuralNetClassifier
            The updated estimator.
        """
        if self.method != "wrm":
            raise ValueError(
                "partial_fit supports method='wrm' only; method='ada' augments "
                "the whole training set in phases, use fit."
            )
        X, y, weight, first_call = self._prepare_partial(
            X, y, sample_weight, multi_output=False, y_numeric=False
        )
        y_enc, classes = self._encode_partial(y, classes, first_call)
        if first_call:
            hidden = self._validate_hidden()
            device, seed = self._device_and_seed()
            with torch.random.fork_rng(devices=rng_devices(device)):
                torch.manual_seed(seed)
                module = build_module(
                    self.module,
                    self.module_kwargs,
                    X.shape[1],
                    classes.shape[0],
                    hidden,
                    self.activation,
                )
                net = self._make_net(
                    _WRMNet,
                    module,
                    _WeightedMeanLoss,
                    None,
                    device,
                    criterion__base_criterion=self._base_criterion(),
                )
                net.adversary_settings = self._adversary_settings()
                net.initialize()
        else:
            net = self._net
        call_seed = int(self._partial_rng.integers(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=rng_devices(net.device)):
            torch.manual_seed(call_seed)
            net.partial_fit(_training_data(X, weight), y_enc, epochs=1)
        self.classes_ = classes
        self.n_augmented_ = 0
        return self._store_net(net)

    def _augment(self, net, X, y_enc, device):
        """Inner maximizers of every point of the current training set."""
        settings = net.adversary_settings
        net.module_.eval()
        out = []
        for start in range(0, X.shape[0], _CHUNK):
            x = torch.as_tensor(X[start : start + _CHUNK], device=device)
            t = torch.as_tensor(y_enc[start : start + _CHUNK], device=device)
            z, _ = _ascend(
                net.module_,
                settings["loss"],
                x,
                t,
                settings["gamma"],
                settings["step_size"],
                settings["n_steps"],
            )
            check_finite_output(z)
            out.append(z.cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def _solve_inner(self, X, y, max_iter, tol, gamma):
        """Inner maximizers in float64 and the per-sample surrogate values."""
        check_is_fitted(self)
        gamma = float(self.gamma if gamma is None else gamma)
        if not np.isfinite(gamma) or gamma <= 0:
            raise ValueError(f"gamma must be a finite number > 0; got {gamma}.")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = np.array(X, dtype=np.float64)
        y_enc = self._encode_for_loss(y)
        if y_enc.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y_enc.shape[0]}.")
        module = copy.deepcopy(self.module_).double().eval()
        for param in module.parameters():
            param.requires_grad_(False)
        device = next(module.parameters()).device
        loss_fn = self._base_criterion()
        step_size = (
            1.0 / (2.0 * gamma) if self.inner_step_size is None else self._step_size()
        )
        points, values = [], []
        worst = 0.0
        for start in range(0, X.shape[0], _CHUNK):
            x = torch.as_tensor(X[start : start + _CHUNK], device=device)
            t = torch.as_tensor(y_enc[start : start + _CHUNK], device=device)
            z, residual = _ascend(
                module, loss_fn, x, t, gamma, step_size, max_iter, tol
            )
            with torch.no_grad():
                cost = ((z - x) ** 2).reshape(z.shape[0], -1).sum(dim=1)
                phi = loss_fn(module(z), t) - gamma * cost
            check_finite_output(phi)
            worst = max(worst, float(residual.detach()))
            points.append(z.cpu().numpy())
            values.append(phi.cpu().numpy())
        if not worst <= tol:
            warnings.warn(
                f"The inner maximization did not converge in {max_iter} "
                f"iterations (first-order residual {worst:.2e} > {tol:.0e}); "
                "increase gamma (strong concavity needs gamma above half the "
                "smoothness constant of the loss) or max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return np.concatenate(points), np.concatenate(values), gamma

    def perturb(self, X, y, *, gamma=None, max_iter=1000, tol=1e-9):
        """Solutions of the inner maximization, the worst-case inputs.

        Runs gradient ascent on :math:`\\ell(\\theta; x', y) - \\gamma
        \\|x' - x\\|_2^2` in float64 until the first-order residual
        :math:`\\|\\nabla_{x'} \\ell - 2\\gamma(x' - x)\\| / (2\\gamma)` is below
        ``tol`` for every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Labels (seen during fit).
        gamma : float, default=None
            Penalty of the inner problem; ``None`` uses the fitted ``gamma``.
            Smaller values give larger perturbations (a stronger attack).
        max_iter : int, default=1000
            Maximum ascent steps.
        tol : float, default=1e-9
            Tolerance on the first-order residual, in input units.

        Returns
        -------
        X_adv : ndarray of shape (n_samples, n_features)
            The maximizers :math:`x^\\star`.
        """
        return self._solve_inner(X, y, max_iter, tol, gamma)[0]

    def certificate(
        self, X, y, radius, *, gamma=None, sample_weight=None, max_iter=1000, tol=1e-9
    ):
        """Upper bound on the worst-case loss over a Wasserstein ball.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the nominal distribution.
        y : array-like of shape (n_samples,)
            Labels (seen during fit).
        radius : float
            Transport budget :math:`\\rho \\ge 0`, in squared input units
            (mean squared Euclidean displacement).
        gamma : float, default=None
            Multiplier of the bound; ``None`` uses the fitted ``gamma``. The
            bound holds for every ``gamma`` at which the inner problem is
            solved globally; the smallest over ``gamma`` is the tightest.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the nominal distribution.
        max_iter : int, default=1000
            Maximum ascent steps of the inner maximization.
        tol : float, default=1e-9
            Tolerance on its first-order residual.

        Returns
        -------
        bound : float
            :math:`\\gamma \\rho + E_{P_n}[\\phi_\\gamma(\\theta; Z)]`, an upper
            bound on :math:`\\sup_{W_c(P, P_n) \\le \\rho} E_P[\\ell(\\theta;
            Z)]` when the inner problem is solved globally.
        """
        radius = float(radius)
        if not np.isfinite(radius) or radius < 0:
            raise ValueError(f"radius must be a finite number >= 0; got {radius}.")
        _, phi, gamma = self._solve_inner(X, y, max_iter, tol, gamma)
        weight = None if sample_weight is None else np.asarray(sample_weight, float)
        return gamma * radius + float(np.average(phi, weights=weight))
