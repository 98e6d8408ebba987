"""Residual Horizon Optimization: allocation by planning over the remaining horizon."""

import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval

from skbandit.experiment._allocation_base import _BaseAllocation, _design_doc


def _rho_objective(logits, mean, var, noise_var, budget, z):
    """Expected best posterior mean after spending ``budget`` units at softmax(logits).

    All arguments are torch tensors; ``z`` holds standard normal draws of shape
    (n_samples, n_arms). Returns the Monte Carlo average of
    ``max_a (m_a + sigma_a(p) z_a)``, where ``sigma_a(p)^2`` is the variance
    of the change of arm a's posterior mean after ``budget * p_a`` rewards.
    """
    import torch

    allocation = torch.softmax(logits, dim=-1)
    n = budget * allocation
    reduction = var * var * n / (noise_var + var * n)
    scale = torch.sqrt(torch.clamp(reduction, min=1e-300))
    return torch.max(mean + scale * z, dim=-1).values.mean()


class ResidualHorizonOptimization(_BaseAllocation):
    __doc__ = _design_doc(
        """Residual Horizon Optimization (RHO) for batched best-arm identification.

    Before each batch, RHO solves a planning problem over the remaining
    horizon: it picks the allocation ``p`` that maximizes the expected
    largest posterior mean at the end of the experiment, assuming that every
    remaining unit (this batch and all later ones) is allocated by ``p``.
    The objective is estimated with reparametrized Gaussian draws and
    maximized by stochastic gradient ascent (Adam) on a softmax
    parametrization of ``p`` with torch autodiff. Only the first batch is
    sent with ``p``; the plan is redone once its results are in.

    Read more in the :ref:`User Guide <adaptive_experiments>`.

    Parameters
    ----------
%(design_params)s
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch; the planning budget at batch ``t`` is
        the sum of the sizes of batches ``t, ..., n_batches - 1``.
    n_samples : int, default=128
        Number of Gaussian draws per stochastic gradient step.
    max_iter : int, default=150
        Number of gradient steps per planning problem.
    learning_rate : float, default=0.1
        Step size of Adam on the allocation logits.
    tol : float, default=1e-2
        Convergence check: if the planning objective at the average iterate
        of the last quarter of the steps exceeds the one at the average
        iterate of the third quarter by more than ``tol`` times the largest
        posterior standard deviation, the ascent was still improving and a
        :class:`~sklearn.exceptions.ConvergenceWarning` is raised.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian draws (one torch seed per planning problem).
    verbose : int, default=0
        Print the planning objective every ``max_iter // 10`` steps when
        positive.

    Attributes
    ----------
%(design_attributes)s
    objective_ : float
        Monte Carlo estimate of the planning objective at ``allocation_``.

    See Also
    --------
    UniformAllocation : The non-adaptive baseline.
    BatchThompsonSampling : Allocation by the probability of being best.
    TopTwoThompsonSampling : Thompson sampling with challengers.
    simulate_best_arm : Compare designs on simulated experiments.

    Notes
    -----
    With posterior :math:`\\mu_a \\sim N(m_a, v_a)`, noise variances
    :math:`s_a^2` and :math:`N` remaining units, spending :math:`N p_a` of them
    on arm :math:`a` moves its posterior mean to
    :math:`m_a + \\sigma_a(p) Z_a` with :math:`Z_a` standard normal and

    .. math::

        \\sigma_a^2(p) = v_a - \\left(\\frac{1}{v_a} +
        \\frac{N p_a}{s_a^2}\\right)^{-1} = \\frac{v_a^2 N p_a}{s_a^2 + v_a N p_a}.

    RHO solves

    .. math::

        \\max_{p \\in \\Delta_K} \\; E\\left[\\max_a \\, m_a + \\sigma_a(p) Z_a
        \\right],

    which is the Bayes simple regret of recommending the arm with the largest
    posterior mean, up to a constant. The allocation returned is the average
    of the iterates of the second half of the optimization.

    References
    ----------
    .. [1] E. Che and H. Namkoong, "Adaptive Experimentation at Scale: A
       Computational Framework for Flexible Batches", 2023.
       arXiv:2303.11582.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.experiment import ResidualHorizonOptimization
    >>> rho = ResidualHorizonOptimization(
    ...     prior_mean=[0.0, 0.0, -5.0], n_batches=2, random_state=0
    ... )
    >>> p = rho.next_allocation()
    >>> bool(p[2] < 0.01), bool(np.isclose(p.sum(), 1.0))
    (True, True)
    >>> arms = np.repeat(np.arange(3), np.round(100 * p).astype(int))
    >>> rewards = np.where(arms == 0, 1.0, 0.0)
    >>> rho.update(arms, rewards).recommend()
    0
    """
    )

    _parameter_constraints: dict = {
        **_BaseAllocation._parameter_constraints,
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_arms=None,
        *,
        prior_mean=0.0,
        prior_var=1.0,
        noise_var=1.0,
        n_batches=10,
        batch_size=100,
        n_samples=128,
        max_iter=150,
        learning_rate=0.1,
        tol=1e-2,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_arms,
            prior_mean=prior_mean,
            prior_var=prior_var,
            noise_var=noise_var,
            n_batches=n_batches,
            batch_size=batch_size,
            random_state=random_state,
        )
        self.n_samples = n_samples
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.tol = tol
        self.verbose = verbose

    def _allocate(self, mean, var, rng):
        import torch

        budget = self._remaining_budget()
        seed = int(rng.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        dtype = torch.float64
        mean_t = torch.as_tensor(mean, dtype=dtype)
        var_t = torch.as_tensor(var, dtype=dtype)
        noise_t = torch.as_tensor(self.noise_var_, dtype=dtype)
        n_arms = mean.shape[0]
        logits = torch.zeros(n_arms, dtype=dtype, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=self.learning_rate)
        history = np.empty((self.max_iter, n_arms))
        report_every = max(self.max_iter // 10, 1)
        for it in range(self.max_iter):
            z = torch.randn(self.n_samples, n_arms, generator=generator, dtype=dtype)
            optimizer.zero_grad()
            value = _rho_objective(logits, mean_t, var_t, noise_t, budget, z)
            (-value).backward()
            optimizer.step()
            with torch.no_grad():
                history[it] = torch.softmax(logits, dim=-1).numpy()
            if self.verbose and (it % report_every == 0 or it == self.max_iter - 1):
                print(
                    f"[RHO] batch {self.n_batches_seen_} iter {it:4d} "
                    f"objective {value.item():.5f}"
                )
        half = self.max_iter // 2
        allocation = history[half:].mean(axis=0)
        quarter = self.max_iter // 4
        with torch.no_grad():
            # common random numbers to compare the averaged iterates
            z = torch.randn(
                4 * self.n_samples, n_arms, generator=generator, dtype=dtype
            )

            def objective(p):
                logit = torch.log(torch.as_tensor(p, dtype=dtype))
                return float(_rho_objective(logit, mean_t, var_t, noise_t, budget, z))

            self.objective_ = objective(allocation)
            if quarter >= 1:
                third = history[half : half + quarter].mean(axis=0)
                fourth = history[half + quarter :].mean(axis=0)
                gain = objective(fourth) - objective(third)
                scale = float(np.sqrt(var.max()))
                if gain > self.tol * scale:
                    warnings.warn(
                        "RHO's stochastic gradient ascent was still improving "
                        f"after max_iter={self.max_iter} steps (the planning "
                        f"objective rose by {gain:.3g} over the last quarter, "
                        f"more than tol={self.tol} times the largest posterior "
                        "standard deviation); increase max_iter or learning_rate.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
        return allocation
