"""Feature-space ambiguity sets: distributions that move the samples."""

from abc import abstractmethod

from skrobust.ambiguity._base import AmbiguitySet


class FeatureAmbiguitySet(AmbiguitySet):
    """Ambiguity sets that perturb the features (and possibly the labels).

    Unlike a :class:`ReweightingAmbiguitySet`, whose distributions reweight
    the samples and whose worst case is a function of the loss vector alone,
    the distributions of a feature-space set (a Wasserstein ball, say) move
    the samples. Their worst case depends on the model: for a linear
    prediction :math:`w^\\top x + b` and a loss that is :math:`L`-Lipschitz in
    it, on :math:`L` and the dual norm of :math:`w`. The protocol:

    - :meth:`robust_risk`: the worst-case expected loss of a model, from its
      per-sample losses at the observed samples, its coefficients and its
      Lipschitz constant;
    - :meth:`penalty`: the term the worst case adds to the nominal risk, with
      its (optionally smoothed) gradient in the coefficients, for solvers;
    - :meth:`smoothing_error`: how much the smoothing can overstate it;
    - :meth:`cvxpy_penalty`: the same term as a cvxpy expression (the exact
      reference);
    - :meth:`is_trivial`.

    All of these are abstract and enforced. The two kinds share the root
    :class:`AmbiguitySet` (a scikit-learn parameter object with
    ``is_trivial``); estimators accept a feature-space set where
    ``ambiguity_constraint(feature_space=True)`` says so.
    """

    feature_space = True

    @abstractmethod
    def robust_risk(self, losses, coef, lipschitz, sample_weight=None):
        """Worst-case expected loss of a model over the set.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses of the model at the observed samples.
        coef : array-like
            The model's coefficients (the intercept excluded).
        lipschitz : float
            Lipschitz constant of the loss in the linear prediction.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution.

        Returns
        -------
        risk : float
        """

    @abstractmethod
    def penalty(self, coef, lipschitz, smoothing=0.0):
        """The worst case minus the nominal risk, and its gradient in ``coef``.

        Parameters
        ----------
        coef : array-like
            Coefficients.
        lipschitz : float
            Lipschitz constant of the loss.
        smoothing : float, default=0.0
            Smoothing temperature of a nonsmooth penalty.

        Returns
        -------
        value : float
        grad : ndarray of the shape of ``coef``
        """

    @abstractmethod
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

    @abstractmethod
    def cvxpy_penalty(self, coef_var, lipschitz):
        """:meth:`penalty` as a cvxpy expression of the coefficients.

        Parameters
        ----------
        coef_var : cvxpy.Variable
        lipschitz : float

        Returns
        -------
        expr : cvxpy.Expression
        """
