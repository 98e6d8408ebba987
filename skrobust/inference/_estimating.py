"""Empirical likelihood for estimating equations: the d-dimensional dual."""

import numpy as np
from scipy.stats import chi2
from sklearn.utils import check_array
from sklearn.utils._param_validation import validate_params

from skrobust.inference import _dual
from skrobust.inference._validation import check_frequency_weights

#: Newton iterations of the dual solve (read at each call)
MAX_ITER = _dual.MAX_ITER


@validate_params(
    {"G": ["array-like"], "sample_weight": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def el_moment_test(G, *, sample_weight=None):
    """Empirical likelihood ratio test of the moment condition ``E[g] = 0``.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    G : array-like of shape (n_samples, n_moments)
        Values :math:`g(X_i, \\theta_0)` of an estimating function at the
        hypothesized parameter. A 1-d array is one moment.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).

    Returns
    -------
    statistic : float
        :math:`-2 \\log R(\\theta_0)`; ``inf`` when the origin is outside the
        open convex hull of the rows of ``G``.
    pvalue : float
        Upper tail of the chi-square distribution with ``n_moments`` degrees
        of freedom.

    Warns
    -----
    ConvergenceWarning
        If Newton's method for the dual stops with its certificate, the
        squared Newton decrement (about twice the distance of the returned
        half-statistic to the maximum), above ``1e-10 max(1, |value|)``; the
        message gives it.

    See Also
    --------
    el_mean_test : The case ``g(x, mu) = x - mu`` with one moment.
    el_coef_test : Profiled test for one regression coefficient.

    Notes
    -----
    By convex duality (Qin and Lawless, 1994)

    .. math::

        -2 \\log R(\\theta_0) = \\max_{p \\in \\Delta,\\ \\sum_i p_i g_i = 0}
        -2 \\sum_i w_i \\log(n p_i / w_i)
        = 2 \\max_{\\lambda \\in \\mathbb{R}^d} \\sum_i w_i
        \\log_\\star(1 + \\lambda^\\top g_i),

    with Owen's pseudo-logarithm :math:`\\log_\\star`, equal to the logarithm
    above :math:`1/n` and quadratic below, which makes the right side
    concave and finite everywhere. It is maximized by Newton's method with a
    backtracking line search. When the origin lies outside the convex hull
    of the :math:`g_i` the exact statistic is infinite: this shows as a dual
    that grows without bound (past :math:`50 n`, where the p-value is below
    :math:`e^{-50 n}`) or a maximizer with some :math:`1 + \\lambda^\\top g_i`
    below the switch point of the pseudo-logarithm, and ``(inf, 0.0)`` is
    returned. The statistic is
    invariant under invertible linear maps of the moments; each moment is
    scaled to unit maximum before the solve.

    References
    ----------
    .. [1] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).
    .. [2] Owen, A. B. (2001). "Empirical Likelihood." Chapman & Hall/CRC,
       section 12.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import el_moment_test, el_mean_test
    >>> x = np.array([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    >>> # one moment x - mu is the test of a mean
    >>> bool(np.isclose(el_moment_test(x - 1.0)[0], el_mean_test(x, 1.0)[0]))
    True
    """
    G = check_array(G, ensure_2d=False, dtype=np.float64, input_name="G")
    if G.ndim == 1:
        G = G[:, None]
    w = check_frequency_weights(sample_weight, G.shape[0])
    if w is not None:
        keep = w > 0
        G, w = G[keep], w[keep]
    n = float(G.shape[0] if w is None else w.sum())
    # the statistic is invariant under G -> G A for invertible A: scale each
    # moment to max |G_j| = 1 so that squares neither underflow nor overflow
    scale = np.abs(G).max(axis=0)
    if np.any(scale == 0):
        raise ValueError(
            f"G has moment columns {np.flatnonzero(scale == 0).tolist()} that "
            "are identically zero; the moment conditions are degenerate."
        )
    G = G / scale
    eps = _dual.pseudo_eps(w, n)
    evaluate = _dual.dense_evaluate(G, w, eps)
    lam, value, _ = _dual.solve_dual(evaluate, n, None, G.shape[1], MAX_ITER)
    if not np.isfinite(value) or (1.0 + G @ lam).min() < eps * (1.0 - 1e-9):
        # the pseudo-logarithm is active at its maximizer: no reweighting of
        # the sample puts the origin inside, and the exact statistic is inf
        return np.inf, 0.0
    statistic = max(2.0 * value, 0.0)
    return float(statistic), float(chi2.sf(statistic, G.shape[1]))
