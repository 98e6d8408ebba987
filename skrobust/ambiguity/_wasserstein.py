"""Type-1 Wasserstein balls on the features, for Lipschitz losses of linear models."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from skrobust.ambiguity._feature import FeatureAmbiguitySet

_DUAL_NORM = {2: 2, 1: np.inf, np.inf: 1}


class Wasserstein(FeatureAmbiguitySet):
    """Type-1 Wasserstein ball around P_n with transport cost on the features.

    The set is :math:`\\{Q : W_c(Q, P_n) \\le \\rho\\}` with transport cost
    :math:`c((x, y), (x', y')) = \\|x - x'\\|` when :math:`y = y'` and
    :math:`+\\infty` otherwise (labels are not perturbed). For a linear model
    :math:`z = w^\\top x + b` and a loss :math:`\\ell(z, y)` that is convex and
    :math:`L`-Lipschitz in :math:`z` with :math:`L` attained as
    :math:`|z| \\to \\infty` (logistic: :math:`L = 1`; absolute error:
    :math:`L = 1`; Huber: :math:`L = \\epsilon`), the worst case is exactly

    .. math::

        \\sup_{W_c(Q, P_n) \\le \\rho} E_Q[\\ell(w^\\top x + b, y)]
        = E_{P_n}[\\ell(w^\\top x + b, y)] + \\rho L \\|w\\|_*,

    where :math:`\\|\\cdot\\|_*` is the dual norm of the transport norm (the
    adversary moves a vanishing mass of one sample far along the direction that
    increases its loss fastest). This is the case covered: binary logistic
    regression and Lipschitz regression losses; the squared loss is not
    Lipschitz and its worst case over this ball is infinite.

    Unlike the f-divergence sets, the worst case moves samples instead of
    reweighting them: this is a :class:`FeatureAmbiguitySet`, used by the
    linear models through :meth:`penalty` rather than through a risk of a
    loss vector.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    radius : float, default=0.1
        Radius :math:`\\rho \\ge 0` in the units of the features.
    norm : {2, 1, inf}, default=2
        Norm of the transport cost on the features. Its dual norm penalizes the
        coefficients: 2 -> 2, 1 -> inf, inf -> 1.

    See Also
    --------
    skrobust.linear_model.DROLogisticRegression : Accepts this set.

    References
    ----------
    .. [1] Shafieezadeh-Abadeh, S., Mohajerin Esfahani, P. and Kuhn, D. (2015).
       "Distributionally robust logistic regression." NeurIPS.
    .. [2] Blanchet, J., Kang, Y. and Murthy, K. (2019). "Robust Wasserstein
       profile inference and applications to machine learning." Journal of
       Applied Probability 56(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import Wasserstein
    >>> ball = Wasserstein(radius=0.5, norm=1)
    >>> losses = np.array([0.2, 0.4])
    >>> coef = np.array([1.0, -3.0])
    >>> # mean loss + radius * Lipschitz constant * ||coef||_inf
    >>> round(ball.robust_risk(losses, coef, lipschitz=1.0), 10)
    1.8
    """

    _parameter_constraints = {
        "radius": [Interval(Real, 0, None, closed="left")],
        "norm": [StrOptions({"inf"}), Interval(Real, 1, None, closed="left")],
    }

    def __init__(self, radius=0.1, norm=2):
        self.radius = radius
        self.norm = norm

    def _dual_order(self):
        norm = np.inf if self.norm in ("inf", np.inf) else float(self.norm)
        if norm not in _DUAL_NORM:
            raise ValueError(f"norm must be 1, 2 or inf; got {self.norm!r}.")
        return _DUAL_NORM[norm]

    def _radius(self):
        """The radius as a float, checked (the solvers call ``penalty`` directly)."""
        try:
            radius = float(self.radius)
        except (TypeError, ValueError):
            raise TypeError(
                f"radius must be a real number >= 0; got {self.radius!r}."
            ) from None
        if not np.isfinite(radius) or radius < 0:
            raise ValueError(f"radius must be a finite number >= 0; got {radius!r}.")
        return radius

    def is_trivial(self):
        """Whether the radius is zero (the set is P_n alone)."""
        return self._radius() == 0.0

    def robust_risk(self, losses, coef, lipschitz, sample_weight=None):
        """Worst-case expected loss: weighted mean + radius * L * ||coef||_*.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses of the linear model.
        coef : array-like
            Coefficients (the intercept excluded).
        lipschitz : float
            Lipschitz constant of the loss in the linear prediction.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution.

        Returns
        -------
        risk : float
        """
        self._validate_params()
        losses = np.asarray(losses, dtype=float)
        mean = np.average(losses, weights=sample_weight)
        return float(mean + self.penalty(coef, lipschitz)[0])

    def penalty(self, coef, lipschitz, smoothing=0.0):
        """The term ``radius * L * ||coef||_*`` and its (smoothed) gradient.

        With ``smoothing=tau > 0`` the dual norm is replaced by a smooth upper
        approximation within :meth:`smoothing_error` of it: ``sqrt(||w||^2 +
        tau^2)`` (2-norm), ``sum sqrt(w_j^2 + tau^2)`` (1-norm), and ``tau *
        logsumexp(+-w / tau)`` (inf-norm).

        Parameters
        ----------
        coef : array-like
            Coefficients.
        lipschitz : float
            Lipschitz constant of the loss.
        smoothing : float, default=0.0
            Smoothing temperature.

        Returns
        -------
        value : float
        grad : ndarray of the shape of ``coef``
        """
        w = np.asarray(coef, dtype=float)
        scale = self._radius() * float(lipschitz)
        order = self._dual_order()
        tau = float(smoothing)
        if order == 2:
            norm = np.sqrt(np.sum(w * w) + tau * tau)
            grad = w / norm if norm > 0 else np.zeros_like(w)
            value = norm
        elif order == 1:
            root = np.sqrt(w * w + tau * tau)
            value = float(root.sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                grad = np.where(root > 0, w / np.where(root > 0, root, 1.0), 0.0)
        else:
            flat = np.concatenate([w.ravel(), -w.ravel()])
            if tau > 0:
                top = flat.max()
                expo = np.exp((flat - top) / tau)
                value = top + tau * np.log(expo.sum())
                soft = expo / expo.sum()
            else:
                value = flat.max()
                soft = (flat == value).astype(float)
                soft /= soft.sum()
            half = w.size
            grad = (soft[:half] - soft[half:]).reshape(w.shape)
        return scale * float(value), scale * grad

    def smoothing_error(self, smoothing, n_coef, lipschitz):
        """Largest overstatement of :meth:`penalty` caused by ``smoothing``.

        Parameters
        ----------
        smoothing : float
        n_coef : int
            Number of coefficients.
        lipschitz : float

        Returns
        -------
        bound : float
        """
        tau = float(smoothing)
        order = self._dual_order()
        per = {2: tau, 1: n_coef * tau, np.inf: tau * np.log(2 * n_coef)}[order]
        return self._radius() * float(lipschitz) * per

    def cvxpy_penalty(self, coef_var, lipschitz):
        """``radius * L * ||coef||_*`` as a cvxpy expression.

        Parameters
        ----------
        coef_var : cvxpy.Variable
        lipschitz : float

        Returns
        -------
        expr : cvxpy.Expression
        """
        import cvxpy as cp

        order = self._dual_order()
        flat = coef_var if coef_var.ndim <= 1 else cp.vec(coef_var, order="C")
        return self._radius() * float(lipschitz) * cp.norm(flat, order)
