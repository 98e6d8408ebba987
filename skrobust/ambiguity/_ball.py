"""Balls of a convex distance around P_n: f-divergences and total variation."""

from abc import abstractmethod

import numpy as np

from skrobust.ambiguity._base import ReweightingAmbiguitySet


def _shrink_toward_nominal(q, p, radius, distance):
    """``p + t (q - p)`` with ``t = min(1, radius / distance(q, p))``.

    ``q`` is first made a distribution on the support of ``p``. For a
    distance that is convex in ``q`` and zero at ``p`` (an f-divergence, the
    total variation), the result lies in the ball of that radius.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.where(p > 0, np.maximum(q, 0.0), 0.0)
    q = q / q.sum()
    d = distance(q, p)
    t = 1.0 if d <= radius else radius / d
    return p + t * (q - p)


class _RadiusBall(ReweightingAmbiguitySet):
    """A ball ``{Q : distance(Q, P_n) <= radius}`` of a convex distance.

    The f-divergence balls and the total-variation ball: their feasible
    weights shrink ``q`` toward ``p`` until inside (the distance is convex and
    zero at ``p``). Subclasses implement :meth:`divergence`.
    """

    @abstractmethod
    def divergence(self, q, p):
        """The set's distance of the distribution ``q`` from ``p``.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Weights of a distribution (zero where ``p`` is zero).
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        divergence : float
        """

    def feasible_weights(self, q, p):
        """``p + t (q - p)`` with ``t = min(1, radius / divergence(q, p))``.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Nonnegative weights (normalized here on the support of ``p``).
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        q : ndarray of shape (n_samples,)
            Weights of a distribution in the ball.
        """
        return _shrink_toward_nominal(q, p, float(self.radius), self.divergence)
