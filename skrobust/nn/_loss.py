"""Robust risks of per-sample losses as torch criteria."""

import torch
from torch import nn

from skrobust.ambiguity import ChiSquare, check_ambiguity
from skrobust.ambiguity._torch import check_batch_weight, risk_and_weights


def net_ambiguity(ambiguity, *, name="ambiguity"):
    """The validated set of a criterion or net; ``None`` is ``ChiSquare(1.0)``.

    Feature-space sets are refused (a TypeError naming ``name``): the nets
    train on the worst case of a loss vector.
    """
    if ambiguity is None:
        return ChiSquare(radius=1.0)
    if isinstance(ambiguity, str):
        raise TypeError(
            f"{name} must be an ambiguity-set object (e.g. ChiSquare) or None; "
            f"got the string {ambiguity!r}."
        )
    return check_ambiguity(ambiguity, name=name, feature_space=False)


def _check_base_criterion(base_criterion):
    if not callable(base_criterion):
        raise TypeError(
            "base_criterion must be a callable returning per-sample losses, such "
            f"as torch.nn.CrossEntropyLoss(reduction='none'); got {base_criterion!r}."
        )
    reduction = getattr(base_criterion, "reduction", "none")
    if reduction != "none":
        raise ValueError(
            "base_criterion must return unreduced per-sample losses; construct it "
            f"with reduction='none' (got reduction={reduction!r})."
        )
    return base_criterion


def _check_finite_losses(losses):
    # one float64 sum is finite exactly when every loss is, unless finite
    # losses near 1e308 overflow it: only then the elementwise check runs
    total = losses.detach().sum(dtype=torch.float64)
    if bool(torch.isfinite(total)):
        return
    if not bool(torch.isfinite(losses.detach()).all()):
        raise ValueError(
            "losses contain NaN or infinite values: the base criterion "
            "overflowed (in float32 training this happens when X or y holds "
            "huge values; rescale them, e.g. with "
            "sklearn.preprocessing.StandardScaler)."
        )


def _per_sample(losses):
    """Check the base criterion's output and average any non-batch dimension."""
    if losses.dim() == 0:
        raise ValueError(
            "base_criterion returned a scalar; it must return one loss per "
            "sample (use reduction='none')."
        )
    if losses.dim() > 1:
        losses = losses.reshape(losses.shape[0], -1).mean(dim=1)
    return losses


class DROLoss(nn.Module):
    """Robust risk of a batch: the worst-case expectation of per-sample losses.

    Wraps a criterion that returns one loss per sample
    (``reduction='none'``) and returns the robust risk of the batch,

    .. math::

        R(\\ell) = \\sup_{Q \\in \\mathcal{U}(P_B)} E_Q[\\ell]
                 = \\sum_{i \\in B} q_i^\\star \\ell_i,

    where :math:`P_B` is the (weighted) empirical distribution of the batch and
    :math:`q^\\star` its worst-case weights, computed exactly by the ambiguity
    set's torch backend (:meth:`skrobust.ambiguity.ReweightingAmbiguitySet.torch_risk`)
    on the device that holds the losses (a GPU included), in float64. The returned
    value is :math:`\\sum_i q_i^\\star \\ell_i` with :math:`q^\\star` detached, so
    by Danskin's theorem its gradient is the worst-case-weighted gradient
    :math:`\\sum_i q_i^\\star \\nabla \\ell_i`, the gradient of the robust risk.

    It is a drop-in criterion for a plain torch loop and for skorch
    (``criterion=DROLoss``, ``criterion__base_criterion=...``).

    Read more in the :ref:`User Guide <neural_dro>`.

    Parameters
    ----------
    base_criterion : callable
        Returns per-sample losses of shape ``(batch,)`` (or ``(batch, ...)``,
        averaged over the trailing dimensions) from ``(input, target)``, e.g.
        ``torch.nn.CrossEntropyLoss(reduction='none')``.
    ambiguity : ReweightingAmbiguitySet, default=None
        ``ChiSquare``, ``CressieRead``, ``KL``, ``CVaR`` or ``TotalVariation``
        from :mod:`skrobust.ambiguity`; ``None`` means
        ``ChiSquare(radius=1.0)``.

    Attributes
    ----------
    last_weights : torch.Tensor or None
        Worst-case weights of the last batch (float64, detached).

    See Also
    --------
    DualDROLoss : The dual form, whose mini-batch gradients are unbiased.
    skrobust.ambiguity.ChiSquare : The default ambiguity set.

    Notes
    -----
    The robust risk of a mini-batch is a biased estimate of the robust risk of
    the data set: the robust risk is concave in the nominal distribution (the
    divergence is jointly convex), so by Jensen's inequality
    :math:`E[R(\\ell_B)] \\le R(\\ell)`, and the bias grows as the batch
    shrinks (a batch of one has robust risk equal to its loss). Large batches reduce
    it; :class:`DualDROLoss` removes it for the Cressie-Read and CVaR sets.

    References
    ----------
    .. [1] Levy, D., Carmon, Y., Duchi, J. C. and Sidford, A. (2020).
       "Large-scale methods for distributionally robust optimization." NeurIPS.
    .. [2] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> import torch
    >>> from skrobust.ambiguity import CVaR
    >>> from skrobust.nn import DROLoss
    >>> criterion = DROLoss(torch.nn.MSELoss(reduction="none"), CVaR(alpha=0.5))
    >>> pred = torch.tensor([0.0, 0.0, 0.0, 0.0], requires_grad=True)
    >>> target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    >>> risk = criterion(pred, target)  # mean of the two largest losses
    >>> round(risk.item(), 6)
    12.5
    >>> risk.backward()  # gradient: worst-case weights (0, 0, 1/2, 1/2)
    >>> pred.grad.tolist()
    [0.0, 0.0, -3.0, -4.0]
    """

    def __init__(self, base_criterion, ambiguity=None):
        super().__init__()
        self.base_criterion = _check_base_criterion(base_criterion)
        self.ambiguity = net_ambiguity(ambiguity)
        self.last_weights = None

    def robust_risk(self, losses, sample_weight=None):
        """Robust risk of given per-sample losses (differentiable).

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution of the batch. A
            batch whose weights are all zero contributes nothing: its risk is
            0 with a zero gradient.

        Returns
        -------
        risk : torch.Tensor
            0-d tensor in the dtype of ``losses``.
        """
        losses = _per_sample(losses)
        _check_finite_losses(losses)
        weight = check_batch_weight(sample_weight, losses.shape[0], losses.device)
        if weight is not None and not bool(weight.sum() > 0):
            # a batch of zero total weight contributes nothing: loss 0, no gradient
            self.last_weights = torch.zeros_like(weight)
            return torch.sum(losses * 0.0)
        _, q = risk_and_weights(self.ambiguity, losses, weight)
        self.last_weights = q
        return torch.sum(q.to(losses.dtype) * losses)

    def forward(self, input, target, sample_weight=None):
        """Robust risk of the batch's per-sample losses.

        Parameters
        ----------
        input : torch.Tensor
            Model output, passed to ``base_criterion``.
        target : torch.Tensor
            Targets, passed to ``base_criterion``.
        sample_weight : torch.Tensor of shape (batch,), default=None
            Nonnegative weights of the nominal distribution of the batch.

        Returns
        -------
        risk : torch.Tensor
            0-d tensor.
        """
        return self.robust_risk(self.base_criterion(input, target), sample_weight)


class DualDROLoss(nn.Module):
    """Dual form of the robust risk, an expectation with learned dual variables.

    The robust risk of the Cressie-Read (chi-square) and CVaR sets is an
    infimum over dual variables of an expectation over samples; this module
    holds those dual variables as learnable parameters and returns the sample
    mean of the per-sample dual terms, so the gradients of a mini-batch are
    unbiased for the gradient of the full-data objective. Minimizing jointly
    over the model and the dual variables minimizes the robust risk of the
    whole data set, not of each batch.

    For CVaR (Rockafellar-Uryasev), with the parameter :math:`\\eta`:

    .. math::

        \\mathrm{CVaR}_\\alpha(\\ell) = \\inf_{\\eta} E\\big[\\eta +
        (\\ell - \\eta)_+ / \\alpha\\big].

    For Cressie-Read with exponent :math:`k` (chi-square: :math:`k = 2`),
    :math:`s = k/(k-1)` and :math:`c = (1 + k(k-1)\\rho)^{1/k}`, the dual
    :math:`\\inf_\\eta c\\,E[(\\ell-\\eta)_+^s]^{1/s} + \\eta` is not an
    expectation, but with :math:`x^{1/s} = \\inf_{\\lambda > 0} x / (s
    \\lambda^{s-1}) + (s-1)\\lambda / s` it becomes one:

    .. math::

        R_\\rho(\\ell) = \\inf_{\\eta, \\lambda > 0} E\\Big[
        \\frac{c\\,(\\ell - \\eta)_+^s}{s \\lambda^{s-1}}
        + \\frac{c (s-1)}{s} \\lambda + \\eta \\Big],

    jointly convex in :math:`(\\eta, \\lambda, \\ell)`. The parameters are
    ``eta`` and ``log_lambda`` (:math:`\\lambda = e^{\\text{log\\_lambda}}`),
    both in loss units. They are initialized on the first training batch from
    its exact solve.

    Read more in the :ref:`User Guide <neural_dro>`.

    Parameters
    ----------
    base_criterion : callable
        Returns per-sample losses from ``(input, target)``, e.g.
        ``torch.nn.CrossEntropyLoss(reduction='none')``.
    ambiguity : AmbiguitySet, default=None
        ``ChiSquare``, ``CressieRead`` or ``CVaR``; ``None`` means
        ``ChiSquare(radius=1.0)``. KL is not supported: its dual needs an
        exponential of the losses that overflows in float32 training.

    Attributes
    ----------
    eta : torch.nn.Parameter
        The dual variable :math:`\\eta`, in loss units.
    log_lambda : torch.nn.Parameter or None
        :math:`\\log \\lambda` for Cressie-Read sets; ``None`` for CVaR.

    See Also
    --------
    DROLoss : The exact robust risk of each batch (biased across batches).

    Notes
    -----
    ``sample_weight`` multiplies the per-sample terms before the mean; for
    an unbiased objective pass weights normalized to mean one over the whole
    data set (the estimators of this module do).

    References
    ----------
    .. [1] Levy, D., Carmon, Y., Duchi, J. C. and Sidford, A. (2020).
       "Large-scale methods for distributionally robust optimization." NeurIPS.
    .. [2] Rockafellar, R. T. and Uryasev, S. (2000). "Optimization of
       conditional value-at-risk." Journal of Risk 2.

    Examples
    --------
    >>> import torch
    >>> from skrobust.ambiguity import ChiSquare
    >>> from skrobust.nn import DualDROLoss
    >>> criterion = DualDROLoss(torch.nn.MSELoss(reduction="none"), ChiSquare(0.5))
    >>> pred, target = torch.zeros(4), torch.tensor([1.0, 2.0, 3.0, 4.0])
    >>> value = criterion(pred, target)  # initialized at the exact optimum
    >>> exact = ChiSquare(0.5).risk([1.0, 4.0, 9.0, 16.0])
    >>> bool(abs(value.item() - exact) < 1e-4)
    True
    """

    def __init__(self, base_criterion, ambiguity=None):
        super().__init__()
        self.base_criterion = _check_base_criterion(base_criterion)
        ambiguity = net_ambiguity(ambiguity)
        names = getattr(ambiguity, "_expectation_dual", ())
        if not names:
            raise ValueError(
                "DualDROLoss supports the ChiSquare, CressieRead and CVaR sets, "
                f"whose dual is an expectation; for {type(ambiguity).__name__} "
                "(KL, TotalVariation) use DROLoss (the exact robust risk of "
                "each batch)."
            )
        self.ambiguity = ambiguity
        self.eta = nn.Parameter(torch.zeros(()))
        if "log_lambda" in names:
            self.log_lambda = nn.Parameter(torch.zeros(()))
        else:
            self.log_lambda = None
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize_dual(self, losses, sample_weight=None):
        """Set the dual variables to their exact optimum for ``losses``.

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Nonnegative weights.

        Returns
        -------
        self : DualDROLoss
        """
        losses = _per_sample(losses).detach().to(torch.float64)
        sample_weight = check_batch_weight(
            sample_weight, losses.shape[0], losses.device
        )
        _, q, eta = risk_and_weights(
            self.ambiguity, losses, sample_weight, return_dual=True
        )
        if not bool(torch.isfinite(eta)):
            # trivial set or tied losses: start below the mean
            eta = torch.dot(q, losses) - 1.0
        p = torch.ones_like(losses) if sample_weight is None else sample_weight
        start = self.ambiguity._torch_dual_start(losses, p / p.sum(), eta)
        for param, value in zip(self._dual_parameters(), start, strict=True):
            param.fill_(value)
        self.initialized.fill_(True)
        return self

    def dual_terms(self, losses):
        """Per-sample terms whose mean is the dual objective.

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses.

        Returns
        -------
        terms : torch.Tensor of shape (n_samples,)
        """
        losses = _per_sample(losses)
        dual = [param.to(losses.dtype) for param in self._dual_parameters()]
        return self.ambiguity._torch_dual_terms(losses, dual)

    def _dual_parameters(self):
        if self.log_lambda is None:
            return [self.eta]
        return [self.eta, self.log_lambda]

    def dual_objective(self, losses, sample_weight=None):
        """Dual objective at the current dual variables (an upper bound).

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Weights multiplying each term before the mean.

        Returns
        -------
        value : torch.Tensor
            0-d tensor; at least the robust risk of ``losses`` under the
            (normalized) weights, with equality at the optimal dual variables.
        """
        losses = _per_sample(losses)
        w = check_batch_weight(sample_weight, losses.shape[0], losses.device)
        if w is not None:
            w = w.to(losses.dtype)
        dual = [param.to(losses.dtype) for param in self._dual_parameters()]
        # the set's fused mean of the dual terms: one autograd node
        return self.ambiguity._torch_dual_mean(losses, dual, w)

    def forward(self, input, target, sample_weight=None):
        """Mean of the per-sample dual terms of the batch.

        Parameters
        ----------
        input : torch.Tensor
            Model output, passed to ``base_criterion``.
        target : torch.Tensor
            Targets, passed to ``base_criterion``.
        sample_weight : torch.Tensor of shape (batch,), default=None
            Weights multiplying each term (normalize them to mean one over the
            data set).

        Returns
        -------
        value : torch.Tensor
            0-d tensor.
        """
        losses = _per_sample(self.base_criterion(input, target))
        _check_finite_losses(losses)
        weight = check_batch_weight(sample_weight, losses.shape[0], losses.device)
        # a batch of zero total weight cannot initialize the dual (it defines
        # no distribution); its objective is 0 with no gradient
        if not bool(self.initialized) and (weight is None or bool(weight.sum() > 0)):
            self.initialize_dual(losses, weight)
        return self.dual_objective(losses, weight)
