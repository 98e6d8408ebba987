"""Simulation designs with known potential outcomes."""

from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from skcausal._target import make_target


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "misspecified": ["boolean"],
        "ate": [Real],
        "return_potential_outcomes": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_kang_schafer(
    n_samples=200,
    *,
    misspecified=True,
    ate=10.0,
    return_potential_outcomes=False,
    random_state=None,
):
    """The Kang and Schafer (2007) design, a stress test for doubly robust methods.

    Latent covariates :math:`Z \\sim N(0, I_4)`, treatment
    :math:`A \\sim \\mathrm{Bernoulli}(\\mathrm{expit}(-Z_1 + 0.5 Z_2 - 0.25
    Z_3 - 0.1 Z_4))` and treated outcome :math:`Y(1) = 210 + 27.4 Z_1 + 13.7
    (Z_2 + Z_3 + Z_4) + \\varepsilon`, :math:`\\varepsilon \\sim N(0, 1)`, so
    :math:`E[Y(1)] = 210`. The control outcome is :math:`Y(0) = Y(1) -`
    ``ate``. With ``misspecified=True`` only the nonlinear transforms
    :math:`X_1 = e^{Z_1/2}`, :math:`X_2 = Z_2 / (1 + e^{Z_1}) + 10`,
    :math:`X_3 = (Z_1 Z_3 / 25 + 0.6)^3`, :math:`X_4 = (Z_2 + Z_4 + 20)^2`
    are observed, so linear outcome and logistic propensity models are both
    misspecified and a few units get very large inverse weights.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    n_samples : int, default=200
        Number of units.
    misspecified : bool, default=True
        Return the transformed covariates ``X`` (``True``) or ``Z``.
    ate : float, default=10.0
        The constant treatment effect :math:`Y(1) - Y(0)`.
    return_potential_outcomes : bool, default=False
        Also return the potential outcomes and the true propensities.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    X : ndarray of shape (n_samples, 4)
        Observed covariates.
    y : ndarray of shape (n_samples, 2)
        :func:`~skcausal.make_target` of the observed outcome and treatment.
    potential_outcomes : ndarray of shape (n_samples, 2)
        :math:`(Y(0), Y(1))`; only when ``return_potential_outcomes=True``.
    propensity : ndarray of shape (n_samples,)
        True :math:`P(A = 1 | Z)`; only when ``return_potential_outcomes=True``.

    References
    ----------
    .. [1] Kang, J. D. Y. and Schafer, J. L. (2007). "Demystifying double
       robustness: a comparison of alternative strategies for estimating a
       population mean from incomplete data." Statistical Science 22(4).

    Examples
    --------
    >>> from skcausal.datasets import make_kang_schafer
    >>> X, y = make_kang_schafer(n_samples=200, random_state=0)
    >>> X.shape, y.shape
    ((200, 4), (200, 2))
    """
    rng = check_random_state(random_state)
    z = rng.standard_normal((n_samples, 4))
    propensity = expit(-z[:, 0] + 0.5 * z[:, 1] - 0.25 * z[:, 2] - 0.1 * z[:, 3])
    t = (rng.uniform(size=n_samples) < propensity).astype(float)
    y1 = (
        210.0
        + 27.4 * z[:, 0]
        + 13.7 * (z[:, 1] + z[:, 2] + z[:, 3])
        + rng.standard_normal(n_samples)
    )
    y0 = y1 - ate
    if misspecified:
        X = np.column_stack(
            [
                np.exp(z[:, 0] / 2.0),
                z[:, 1] / (1.0 + np.exp(z[:, 0])) + 10.0,
                (z[:, 0] * z[:, 2] / 25.0 + 0.6) ** 3,
                (z[:, 1] + z[:, 3] + 20.0) ** 2,
            ]
        )
    else:
        X = z
    y = make_target(np.where(t == 1, y1, y0), t)
    if return_potential_outcomes:
        return X, y, np.column_stack([y0, y1]), propensity
    return X, y


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "overlap": [Interval(Real, 0, 0.5, closed="neither")],
        "sharpness": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "return_potential_outcomes": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_limited_overlap(
    n_samples=1000,
    *,
    n_features=2,
    overlap=0.01,
    sharpness=6.0,
    noise=1.0,
    return_potential_outcomes=False,
    random_state=None,
):
    """A design whose propensities reach ``overlap`` and ``1 - overlap``.

    Covariates :math:`X \\sim U[-1, 1]^d`, propensity
    :math:`e(X) = \\epsilon + (1 - 2\\epsilon)\\,\\mathrm{expit}(s X_1)` with
    :math:`\\epsilon` = ``overlap`` and :math:`s` = ``sharpness``, and
    Lipschitz outcome surfaces

    .. math::

        \\mu_0(X) = \\sin(2 X_1) + X_2, \\qquad
        \\mu_1(X) = \\mu_0(X) + 1 + X_1,

    (:math:`X_2` is dropped when ``n_features=1``), with Gaussian noise of
    standard deviation ``noise``. The average treatment effect is exactly 1
    and the conditional effect :math:`1 + X_1` ranges over [0, 2].

    Read more in the :ref:`User Guide <overlap>`.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of units.
    n_features : int, default=2
        Number of covariates :math:`d`; only the first two enter the outcome.
    overlap : float in (0, 0.5), default=0.01
        The propensity's infimum :math:`\\epsilon`.
    sharpness : float, default=6.0
        Slope :math:`s` of the propensity in :math:`X_1`; larger values push
        more units close to ``overlap`` and ``1 - overlap``.
    noise : float, default=1.0
        Standard deviation of the outcome noise.
    return_potential_outcomes : bool, default=False
        Also return the potential outcomes and the true propensities.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Covariates.
    y : ndarray of shape (n_samples, 2)
        :func:`~skcausal.make_target` of the observed outcome and treatment.
    potential_outcomes : ndarray of shape (n_samples, 2)
        :math:`(Y(0), Y(1))`; only when ``return_potential_outcomes=True``.
    propensity : ndarray of shape (n_samples,)
        True propensities; only when ``return_potential_outcomes=True``.

    Examples
    --------
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y, po, e = make_limited_overlap(
    ...     n_samples=500, return_potential_outcomes=True, random_state=0)
    >>> bool(e.min() < 0.02 and e.max() > 0.98)
    True
    """
    rng = check_random_state(random_state)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, n_features))
    propensity = overlap + (1.0 - 2.0 * overlap) * expit(sharpness * X[:, 0])
    t = (rng.uniform(size=n_samples) < propensity).astype(float)
    mu0 = np.sin(2.0 * X[:, 0]) + (X[:, 1] if n_features > 1 else 0.0)
    mu1 = mu0 + 1.0 + X[:, 0]
    eps = noise * rng.standard_normal(n_samples)
    y0, y1 = mu0 + eps, mu1 + eps
    y = make_target(np.where(t == 1, y1, y0), t)
    if return_potential_outcomes:
        return X, y, np.column_stack([y0, y1]), propensity
    return X, y
