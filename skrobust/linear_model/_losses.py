"""Per-sample losses of linear predictions, with gradients and cvxpy forms.

Each loss maps the linear predictions ``Z`` (shape ``(n, K)``) and encoded
targets to per-sample losses and their gradient with respect to ``Z``. Losses
with a kink (absolute error) accept a smoothing temperature ``tau``: the
smoothed loss is within ``tau * log(2)`` of the exact one for every sample.
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax


class _BinaryLogistic:
    """log(1 + exp(-y z)) with y in {-1, +1}."""

    n_outputs = 1
    smooth_bound = 0.0
    lipschitz = 1.0

    def encode(self, y_index):
        return np.where(y_index == 1, 1.0, -1.0)

    def value_grad(self, Z, target, tau=0.0):
        margin = target * Z[:, 0]
        loss = np.logaddexp(0.0, -margin)
        grad = (-target * expit(-margin))[:, None]
        return loss, grad

    def value(self, Z, target):
        return np.logaddexp(0.0, -target * Z[:, 0])

    def curvature(self, Z, target, tau=0.0):
        """Second derivative of each loss in its linear prediction."""
        prob = expit(target * Z[:, 0])
        return prob * (1.0 - prob)

    def cvxpy(self, Z, target):
        import cvxpy as cp

        return cp.logistic(-cp.multiply(target, Z[:, 0]))


class _Multinomial:
    """Cross-entropy of the softmax of K linear predictions."""

    smooth_bound = 0.0
    lipschitz = None  # no exact Wasserstein reformulation implemented

    def __init__(self, n_classes):
        self.n_outputs = n_classes

    def encode(self, y_index):
        return y_index.astype(np.intp)

    def value_grad(self, Z, target, tau=0.0):
        rows = np.arange(Z.shape[0])
        log_prob = log_softmax(Z, axis=1)
        loss = -log_prob[rows, target]
        grad = np.exp(log_prob)
        grad[rows, target] -= 1.0
        return loss, grad

    def value(self, Z, target):
        return -log_softmax(Z, axis=1)[np.arange(Z.shape[0]), target]

    def cvxpy(self, Z, target):
        import cvxpy as cp

        onehot = np.zeros(Z.shape)
        onehot[np.arange(Z.shape[0]), target] = 1.0
        return cp.log_sum_exp(Z, axis=1) - cp.sum(cp.multiply(onehot, Z), axis=1)


class _Squared:
    """(z - y)^2 / 2."""

    n_outputs = 1
    smooth_bound = 0.0
    lipschitz = None  # not Lipschitz

    def encode(self, y):
        return y

    def value_grad(self, Z, target, tau=0.0):
        resid = Z[:, 0] - target
        return 0.5 * resid * resid, resid[:, None]

    def value(self, Z, target):
        return 0.5 * (Z[:, 0] - target) ** 2

    def curvature(self, Z, target, tau=0.0):
        return np.ones(Z.shape[0])

    def cvxpy(self, Z, target):
        import cvxpy as cp

        return 0.5 * cp.square(Z[:, 0] - target)


class _Absolute:
    """|z - y|, smoothed as tau * log(cosh(r / tau)) when tau > 0."""

    n_outputs = 1
    smooth_bound = np.log(2.0)
    lipschitz = 1.0

    def encode(self, y):
        return y

    def value_grad(self, Z, target, tau=0.0):
        resid = Z[:, 0] - target
        if tau <= 0:
            return np.abs(resid), np.sign(resid)[:, None]
        scaled = np.abs(resid) / tau
        # log cosh(x) = |x| + log1p(exp(-2|x|)) - log 2, stable for large |x|
        loss = tau * (scaled + np.log1p(np.exp(-2.0 * scaled)) - np.log(2.0))
        return loss, np.tanh(resid / tau)[:, None]

    def value(self, Z, target):
        return np.abs(Z[:, 0] - target)

    def curvature(self, Z, target, tau=0.0):
        if tau <= 0:
            return np.zeros(Z.shape[0])
        slope = np.tanh((Z[:, 0] - target) / tau)
        return (1.0 - slope * slope) / tau

    def cvxpy(self, Z, target):
        import cvxpy as cp

        return cp.abs(Z[:, 0] - target)


class _Huber:
    """r^2 / 2 for |r| <= epsilon, else epsilon |r| - epsilon^2 / 2."""

    n_outputs = 1
    smooth_bound = 0.0

    def __init__(self, epsilon):
        self.epsilon = float(epsilon)
        self.lipschitz = self.epsilon

    def encode(self, y):
        return y

    def value_grad(self, Z, target, tau=0.0):
        resid = Z[:, 0] - target
        eps = self.epsilon
        small = np.abs(resid) <= eps
        loss = np.where(small, 0.5 * resid**2, eps * np.abs(resid) - 0.5 * eps**2)
        grad = np.where(small, resid, eps * np.sign(resid))
        return loss, grad[:, None]

    def value(self, Z, target):
        return self.value_grad(Z, target)[0]

    def curvature(self, Z, target, tau=0.0):
        return (np.abs(Z[:, 0] - target) <= self.epsilon).astype(float)

    def cvxpy(self, Z, target):
        import cvxpy as cp

        return 0.5 * cp.huber(Z[:, 0] - target, self.epsilon)


def softmax_proba(Z):
    """Class probabilities from linear predictions of shape (n, K)."""
    return softmax(Z, axis=1)
