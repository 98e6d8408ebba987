"""Conditional CVaR: the worst case over reweightings that hold the controls' means.

The set of Sahoo, Lei and Wager's biased-sampling model with the threshold of
the CVaR affine in chosen control covariates :math:`c`: weights
:math:`0 \\le q_i \\le p_i / \\alpha` summing to one with
:math:`\\sum_i q_i c_i = \\sum_i p_i c_i`. Its worst case is a linear program
(HiGHS), solved in one piece for small samples and on a working set around
the threshold for large ones; its dual is the Rockafellar-Uryasev problem
with the threshold :math:`\\eta(c) = \\beta_0 + \\beta^\\top c`.
"""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import ReweightingAmbiguitySet
from skrobust.ambiguity._conditional_lp import (  # noqa: F401 (re-exported)
    _LP_FULL,
    _conditional_lp,
    _conditional_lp_coef,
    _Controls,
    _feasible_weights,
)
from skrobust.ambiguity._cvar import CVaR
from skrobust.utils._validation import check_losses, check_probability_weights


class ConditionalCVaR(ReweightingAmbiguitySet):
    """CVaR of the loss given control covariates, with an affine threshold.

    The set holds the weights :math:`q` with :math:`0 \\le q_i \\le p_i /
    \\alpha`, :math:`\\sum_i q_i = 1` and :math:`\\sum_i q_i c_i = \\sum_i
    p_i c_i` for the controls :math:`c_i` (a row of ``controls``): the
    reweightings of the sample by likelihood ratios at most :math:`1 /
    \\alpha` that keep the means of the controls. Its robust risk is the
    linear program :math:`\\max_q \\sum_i q_i \\ell_i`, whose dual is the
    Rockafellar-Uryasev problem with a threshold affine in the controls,

    .. math::

        R(\\ell) = \\inf_{\\beta_0, \\beta} E_{P_n}\\Big[\\eta_i +
        \\frac{(\\ell_i - \\eta_i)_+}{\\alpha}\\Big], \\quad
        \\eta_i = \\beta_0 + \\beta^\\top c_i,

    an upper bound of the average conditional CVaR of the loss given the
    controls (Sahoo, Lei and Wager). With no controls it is :class:`CVaR`;
    with ``alpha=1`` the mean.

    The linear program is solved by HiGHS, in one piece up to 1024 samples
    and above that on a working set around the threshold (every sample
    clearly above or below it has its weight fixed at the cap or at zero),
    which keeps the memory O(n) beyond ``controls``. Controls constant under
    the nominal weights, or in the span of the others, constrain nothing and
    are dropped (their coefficients in the dual are zero). The dual value is
    the reported risk, an upper bound for any accuracy of the LP; the LP's
    own duality gap is reported by :meth:`certificate`.

    Parameters
    ----------
    alpha : float, default=0.2
        Largest likelihood ratio is ``1 / alpha``, in (0, 1].
    controls : array-like of shape (n_samples, n_columns) or None, default=None
        The control covariates, one row per loss. ``None`` means none (the
        ordinary CVaR). Read, never copied, when ``columns`` selects some of
        its columns.
    columns : array-like of int or None, default=None
        The columns of ``controls`` that are controls; ``None`` means all.

    See Also
    --------
    CVaR : The same set without controls.

    References
    ----------
    .. [1] Sahoo, R., Lei, L. and Wager, S. (2022). "Learning from a biased
       sample." arXiv:2209.01754.
    .. [2] Rockafellar, R. T. and Uryasev, S. (2000). "Optimization of
       conditional value-at-risk." Journal of Risk 2.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity._conditional_cvar import ConditionalCVaR
    >>> c = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> losses = np.array([0.0, 1.0, 0.0, 3.0])
    >>> # each half keeps its mass 1/2: the worst case within each half
    >>> float(ConditionalCVaR(alpha=0.5, controls=c).risk(losses))
    2.0
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "controls": ["array-like", None],
        "columns": ["array-like", None],
    }

    def __init__(self, alpha=0.2, controls=None, columns=None):
        self.alpha = alpha
        self.controls = controls
        self.columns = columns

    # -- the controls --------------------------------------------------------
    def _matrix_and_columns(self):
        if self.controls is None:
            return np.zeros((0, 0)), np.zeros(0, dtype=np.intp)
        A = np.asarray(self.controls, dtype=np.float64)
        if A.ndim == 1:
            A = A.reshape(-1, 1)
        if A.ndim != 2:
            raise ValueError(
                f"ConditionalCVaR: controls must be 2-dimensional; got shape {A.shape}."
            )
        if self.columns is None:
            columns = np.arange(A.shape[1], dtype=np.intp)
        else:
            columns = np.asarray(self.columns, dtype=np.intp).reshape(-1)
            if columns.size and (columns.min() < 0 or columns.max() >= A.shape[1]):
                raise ValueError(
                    "ConditionalCVaR: columns must index the columns of controls "
                    f"(0 to {A.shape[1] - 1}); got {columns.tolist()}."
                )
        return A, columns

    @property
    def n_dual(self):
        """Number of dual variables: the intercept and one per control column."""
        return 1 + int(self._matrix_and_columns()[1].size)

    def controls_for(self, p):
        """The controls centered and scaled under ``p`` (cached for this ``p``).

        Parameters
        ----------
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        controls : object
            The standardized controls (products ``C @ v``, ``C.T @ u``, row
            blocks), with constant and collinear columns dropped; its
            ``shape`` is ``(n_samples, n_kept)``.
        """
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is p:
            return cached[1]
        A, columns = self._matrix_and_columns()
        if columns.size and A.shape[0] != p.shape[0]:
            raise ValueError(
                f"ConditionalCVaR: controls has {A.shape[0]} rows for "
                f"{p.shape[0]} losses."
            )
        if columns.size == 0:
            A = np.zeros((p.shape[0], 0))
        C = _Controls(A, columns, p)
        self._cache = (p, C)
        return C

    def _cvar(self):
        return CVaR(alpha=float(self.alpha))

    # -- the protocol: the kink and its smoothing are CVaR's ------------------
    @property
    def needs_smoothing(self):
        return self._cvar().needs_smoothing

    def is_trivial(self):
        return self._cvar().is_trivial()

    def smoothing_error(self, smoothing, p=None):
        return self._cvar().smoothing_error(smoothing, p)

    def _prepare(self, losses, sample_weight):
        self._validate_params()
        losses = check_losses(losses)
        p = check_probability_weights(sample_weight, losses.shape[0])
        return losses, p

    def solve(self, losses, sample_weight=None, threshold=None):
        """The linear program's solution: ``(risk, q, dual, gap)``.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution.
        threshold : ndarray of shape (n_samples,), default=None
            A guess of the optimal threshold :math:`\\eta_i` (large samples
            start their working set from it).

        Returns
        -------
        risk : float
            The dual value at the LP's threshold: an upper bound on the
            worst case, within ``gap`` of it.
        q : ndarray of shape (n_samples,)
            Worst-case weights.
        dual : ndarray of shape (n_dual,)
            :math:`(\\beta_0, \\beta)` in the units of ``controls``.
        gap : float
            ``risk - q @ losses``: the LP's duality gap.
        """
        losses, p = self._prepare(losses, sample_weight)
        return self._solve(losses, p, threshold)

    def _solve(self, losses, p, threshold=None):
        n_dual = self.n_dual
        if self.is_trivial():
            dual = np.zeros(n_dual)
            dual[0] = float(np.min(losses[p > 0]))
            return float(p @ losses), p.copy(), dual, 0.0
        C = self.controls_for(p)
        risk, q, _, gap, y = _conditional_lp_coef(
            losses, C, p, float(self.alpha), threshold
        )
        return float(risk), q, self.to_control_units(y, p), float(gap)

    def to_control_units(self, y, p):
        """``(beta_0, beta)`` of the threshold ``y_0 + C y`` (standardized ``C``).

        Parameters
        ----------
        y : ndarray of shape (n_kept + 1,)
            Intercept and coefficients of the standardized kept controls.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        """
        C = self.controls_for(p)
        _, columns = self._matrix_and_columns()
        beta = np.zeros(columns.size)
        beta[C.keep] = np.asarray(y[1:], dtype=np.float64) / C.scale
        dual = np.empty(1 + columns.size)
        dual[0] = float(y[0]) - float(C.center @ beta[C.keep])
        dual[1:] = beta
        return dual

    def risk_and_weights(self, losses, sample_weight=None):
        """Return ``(risk, worst_case_weights)`` from one linear program.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`.

        Returns
        -------
        risk : float
        q : ndarray of shape (n_samples,)
        """
        risk, q, _, _ = self.solve(losses, sample_weight)
        return risk, q

    def dual_init(self, losses, sample_weight=None):
        """Optimal :math:`(\\beta_0, \\beta)` for fixed ``losses``.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        """
        return self.solve(losses, sample_weight)[2]

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        """The exact minimizer of the dual (the LP's threshold).

        The smoothed dual is minimized only over the intercept
        (:meth:`profile_intercept`); the full minimizer is the LP's.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
            Ignored: the exact minimizer is returned.
        start : ndarray of shape (n_dual,), default=None
            Ignored.

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        """
        return self._solve(np.asarray(losses, dtype=np.float64), p)[2]

    def certificate(self, losses, sample_weight=None):
        """The LP's own certificate: ``(risk, lower, gap)``.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        risk : float
            The dual value (an upper bound on the worst case).
        lower : float
            ``q @ losses`` for the LP's weights (a lower bound, up to the
            LP's feasibility tolerance 1e-10).
        gap : float
            ``risk - lower``.
        """
        risk, _, _, gap = self.solve(losses, sample_weight)
        return risk, risk - gap, gap

    def threshold(self, dual, n_samples):
        """The threshold :math:`\\eta_i = \\beta_0 + \\beta^\\top c_i`.

        Parameters
        ----------
        dual : ndarray of shape (n_dual,)
        n_samples : int

        Returns
        -------
        eta : ndarray of shape (n_samples,)
        """
        dual = np.asarray(dual, dtype=np.float64)
        A, columns = self._matrix_and_columns()
        if columns.size == 0:
            return np.full(n_samples, float(dual[0]))
        full = np.zeros(A.shape[1])
        np.add.at(full, columns, dual[1:])
        return A @ full + float(dual[0])

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """Dual objective :math:`E_p[\\eta + (\\ell - \\eta)_+ / \\alpha]`.

        Parameters
        ----------
        dual : ndarray of shape (n_dual,)
            :math:`(\\beta_0, \\beta)` in the units of ``controls``.
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
            Softplus temperature (see :class:`CVaR`).

        Returns
        -------
        value : float
        grad_losses : ndarray of shape (n_samples,)
        grad_dual : ndarray of shape (n_dual,)
        """
        eta = self.threshold(dual, losses.shape[0])
        value, g, _ = self._cvar().dual_objective(
            np.zeros(1), losses - eta, p, smoothing=smoothing
        )
        value += float(p @ eta)
        A, columns = self._matrix_and_columns()
        grad = np.empty(1 + columns.size)
        resid = p - g
        grad[0] = float(resid.sum())
        if columns.size:
            grad[1:] = (A.T @ resid)[columns]
        return float(value), g, grad

    def profile_intercept(self, beta, losses, p, smoothing=0.0, start=None):
        """The (smoothed) dual minimized over the intercept, for a slope ``beta``.

        ``beta`` holds the coefficients of the standardized kept controls
        (:meth:`controls_for`); the intercept of a centered threshold is
        CVaR's own dual variable, solved exactly (warm-started at
        ``start``).

        Parameters
        ----------
        beta : ndarray of shape (n_kept,)
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
        start : ndarray of shape (1,), default=None

        Returns
        -------
        intercept : ndarray of shape (1,)
        value : float
        grad_losses : ndarray of shape (n_samples,)
        grad_beta : ndarray of shape (n_kept,)
        """
        C = self.controls_for(p)
        shifted = losses - C @ beta if C.shape[1] else losses
        cvar = self._cvar()
        if smoothing > 0 and start is not None:
            # CVaR's warm-started profile (the same numbers, fewer passes)
            eta, value, g = cvar._profiled(shifted, p, smoothing, start=start)
        else:
            eta = cvar.dual_argmin(shifted, p, smoothing=smoothing, start=start)
            value, g, _ = cvar.dual_objective(eta, shifted, p, smoothing=smoothing)
        grad_beta = -(C.T @ g) if C.shape[1] else np.zeros(0)
        return eta, float(value), g, grad_beta

    def feasible_weights(self, q, p):
        """Map weights near the set into it, or ``None`` when that fails.

        The equality residual (total mass, means of the controls) is removed
        by the least change in the metric :math:`\\sum \\delta^2 / room`,
        and what that leaves outside the box by mixing with ``p``.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)

        Returns
        -------
        q : ndarray of shape (n_samples,) or None
        """
        if self.is_trivial():
            return p.copy()
        return _feasible_weights(q, p, self.controls_for(p), float(self.alpha))

    def cvxpy_parts(self, loss_expr, p):
        """The LP's dual as cvxpy: ``(risk, constraints, intercept, beta)``.

        ``beta`` (``None`` without kept controls) multiplies the
        standardized kept controls; the dual value of ``constraints[0]`` is
        the worst-case weights.

        Parameters
        ----------
        loss_expr : cvxpy.Expression of shape (n_samples,)
        p : ndarray of shape (n_samples,)

        Returns
        -------
        risk, constraints, intercept, beta
        """
        import cvxpy as cp

        C = self.controls_for(p)
        intercept = cp.Variable()
        beta = cp.Variable(C.shape[1]) if C.shape[1] else None
        if self.is_trivial():
            return p @ loss_expr, [], intercept, beta
        eta = intercept + C.dense() @ beta if beta is not None else intercept
        slack = cp.Variable(p.shape[0], nonneg=True)
        # the controls are centered under p, so E_p[eta] is the intercept
        risk = intercept + (p / float(self.alpha)) @ slack
        return risk, [loss_expr - eta <= slack], intercept, beta

    def cvxpy_risk(self, loss_expr, p):
        risk, constraints, _, _ = self.cvxpy_parts(loss_expr, p)
        return risk, constraints

    def _solve_unit(self, z, p):
        risk, q, dual, _ = self._solve(z, np.asarray(p, dtype=np.float64))
        return risk, q, dual

    def _dual_to_loss_units(self, dual_z, lo, scale):
        dual = np.asarray(dual_z, dtype=np.float64) * scale
        dual[0] += lo
        return dual


def _conditional_cvar(losses, controls, alpha, sample_weight=None):
    """Robust risk and worst-case weights of fixed losses (see ConditionalCVaR).

    Used for the fitted attributes, to evaluate a model on new data, and by
    the benchmarks.

    Returns
    -------
    risk : float
    weights : ndarray of shape (n_samples,)
    """
    losses = np.asarray(losses, dtype=np.float64)
    controls = np.asarray(controls, dtype=np.float64).reshape(losses.shape[0], -1)
    return ConditionalCVaR(alpha=float(alpha), controls=controls).risk_and_weights(
        losses, sample_weight
    )
