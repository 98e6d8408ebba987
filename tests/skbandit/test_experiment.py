"""Tests of the batched best-arm identification designs (skbandit.experiment)."""

import pickle

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skbandit.experiment import (
    BatchThompsonSampling,
    ResidualHorizonOptimization,
    TopTwoThompsonSampling,
    UniformAllocation,
    simulate_best_arm,
)
from skbandit.experiment._allocation import _rho_objective

torch = pytest.importorskip("torch")

RTOL = 1e-10
FD_RTOL = 1e-5
DESIGNS = [
    UniformAllocation,
    BatchThompsonSampling,
    TopTwoThompsonSampling,
    ResidualHorizonOptimization,
]


def _fast(cls, **params):
    if cls is ResidualHorizonOptimization:
        params.setdefault("max_iter", 60)
        params.setdefault("n_samples", 64)
        # few steps keep the tests fast; the convergence check has its own test
        params.setdefault("tol", 5e-2)
    if cls in (BatchThompsonSampling, TopTwoThompsonSampling):
        params.setdefault("n_samples", 2000)
    return cls(**params)


@pytest.mark.parametrize("cls", DESIGNS)
def test_allocations_are_probability_vectors(cls):
    rng = np.random.default_rng(0)
    design = _fast(
        cls, prior_mean=rng.normal(size=6), n_batches=3, batch_size=40, random_state=0
    )
    for _ in range(3):
        p = design.next_allocation()
        assert p.shape == (6,)
        assert np.all(p >= 0)
        assert_allclose(p.sum(), 1.0, rtol=RTOL)
        arms = rng.integers(0, 6, size=40)
        design.update(arms, rng.normal(size=40))
    assert design.n_batches_seen_ == 3
    assert design.counts_.sum() == 120


def test_posterior_update_matches_conjugate_closed_form():
    # Reference: the Gaussian-Gaussian conjugate update written in its
    # "shrinkage" form m1 = m0 + v0 n / (s2 + v0 n) (ybar - m0),
    # v1 = v0 s2 / (s2 + n v0), a different algebraic route from the
    # precision form the code uses.
    rng = np.random.default_rng(1)
    m0 = np.array([0.5, -1.0, 2.0])
    v0 = np.array([1.0, 0.25, 4.0])
    s2 = np.array([1.0, 2.0, 0.5])
    design = UniformAllocation(prior_mean=m0, prior_var=v0, noise_var=s2)
    arms = np.array([0, 0, 1, 2, 2, 2, 0])
    rewards = rng.normal(size=arms.shape[0])
    arms_copy, rewards_copy = arms.copy(), rewards.copy()
    design.update(arms, rewards)
    assert_array_equal(arms, arms_copy)
    assert_array_equal(rewards, rewards_copy)
    n = np.bincount(arms, minlength=3)
    ybar = np.bincount(arms, weights=rewards, minlength=3) / n
    m1 = m0 + v0 * n / (s2 + v0 * n) * (ybar - m0)
    v1 = v0 * s2 / (s2 + n * v0)
    assert_allclose(design.posterior_mean_, m1, rtol=RTOL)
    assert_allclose(design.posterior_var_, v1, rtol=RTOL)

    # two batches give the same posterior as their union (conjugacy)
    split = UniformAllocation(prior_mean=m0, prior_var=v0, noise_var=s2)
    split.update(arms[:3], rewards[:3]).update(arms[3:], rewards[3:])
    assert_allclose(split.posterior_mean_, m1, rtol=RTOL)
    assert_allclose(split.posterior_var_, v1, rtol=RTOL)


def test_arm_without_data_keeps_its_prior():
    design = UniformAllocation(n_arms=3, prior_mean=0.3, prior_var=2.0)
    design.update([0, 0], [1.0, 2.0])
    assert_allclose(design.posterior_mean_[1:], 0.3, rtol=RTOL)
    assert_allclose(design.posterior_var_[1:], 2.0, rtol=RTOL)


def _expected_max_two(m, sigma):
    # E[max(X1, X2)] for independent normals (Clark, 1961):
    # m1 Phi(d / s) + m2 Phi(-d / s) + s phi(d / s), d = m1 - m2,
    # s^2 = sigma1^2 + sigma2^2.
    d = m[0] - m[1]
    s = np.sqrt(sigma[0] ** 2 + sigma[1] ** 2)
    return m[0] * norm.cdf(d / s) + m[1] * norm.cdf(-d / s) + s * norm.pdf(d / s)


def test_planning_objective_matches_closed_form_two_arms():
    m = np.array([0.3, 0.0])
    v = np.array([1.0, 0.5])
    s2 = np.array([1.0, 2.0])
    budget = 10.0
    p = np.array([0.3, 0.7])
    n = budget * p
    sigma = np.sqrt(v**2 * n / (s2 + v * n))
    gen = torch.Generator().manual_seed(0)
    n_draws = 400_000
    z = torch.randn(n_draws, 2, generator=gen, dtype=torch.float64)
    value = _rho_objective(
        torch.log(torch.as_tensor(p)),
        torch.as_tensor(m),
        torch.as_tensor(v),
        torch.as_tensor(s2),
        budget,
        z,
    )
    # Monte Carlo standard error of the mean of max(...) is below 1.2 / sqrt(n)
    assert abs(float(value) - _expected_max_two(m, sigma)) < 4 * 1.2 / np.sqrt(n_draws)


def test_planning_gradient_matches_finite_differences():
    # Autodiff gradient of the Monte Carlo objective (fixed draws) against
    # central finite differences of the same function: with finitely many
    # draws the max is attained by one arm per draw away from measure-zero
    # kinks, so the function is smooth at a generic point.
    rng = np.random.default_rng(3)
    m = torch.as_tensor(rng.normal(size=3))
    v = torch.as_tensor(rng.uniform(0.5, 2.0, size=3))
    s2 = torch.as_tensor(rng.uniform(0.5, 2.0, size=3))
    z = torch.randn(
        50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    logits = torch.as_tensor(rng.normal(size=3), dtype=torch.float64).requires_grad_()
    value = _rho_objective(logits, m, v, s2, 7.0, z)
    (grad,) = torch.autograd.grad(value, logits)
    eps = 1e-6
    fd = np.empty(3)
    for j in range(3):
        step = torch.zeros(3, dtype=torch.float64)
        step[j] = eps
        with torch.no_grad():
            up = _rho_objective(logits + step, m, v, s2, 7.0, z)
            down = _rho_objective(logits - step, m, v, s2, 7.0, z)
        fd[j] = float(up - down) / (2 * eps)
    assert_allclose(grad.numpy(), fd, rtol=FD_RTOL, atol=1e-9)
    assert np.abs(fd).max() > 1e-4  # a nontrivial gradient was compared


def test_two_arms_rho_matches_brute_force_optimum():
    # With two arms, E[max] only depends on sigma_1^2(p) + sigma_2^2(1 - p)
    # (closed form above, increasing in s), so the optimal allocation
    # maximizes that sum; we find it on a fine grid. Arm 0 is obviously
    # better in mean but already well measured, so RHO should spend most of
    # the budget on the uncertain arm 1.
    m = np.array([1.0, 0.0])
    v = np.array([0.05, 1.0])
    s2 = np.ones(2)
    budget = 2 * 20.0
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)

    def total(p0):
        n0, n1 = budget * p0, budget * (1 - p0)
        return v[0] ** 2 * n0 / (s2[0] + v[0] * n0) + v[1] ** 2 * n1 / (
            s2[1] + v[1] * n1
        )

    p0_star = grid[np.argmax(total(grid))]
    rho = ResidualHorizonOptimization(
        prior_mean=m, prior_var=v, n_batches=2, batch_size=20, random_state=0
    )
    p = rho.next_allocation()
    assert p[1] > 0.6
    assert abs(p[0] - p0_star) < 0.05


def test_rho_starves_an_obviously_bad_arm():
    rho = ResidualHorizonOptimization(
        prior_mean=[0.0, 0.1, -6.0], n_batches=3, batch_size=30, random_state=0
    )
    p = rho.next_allocation()
    assert p[2] < 0.01
    assert_allclose(p[:2].sum(), 1.0, atol=0.01)


def test_batch_thompson_matches_two_arm_closed_form():
    # P(mu_1 > mu_0) = Phi((m1 - m0) / sqrt(v0 + v1)) for independent normals.
    m = np.array([0.0, 0.4])
    v = np.array([1.0, 0.5])
    n_samples = 200_000
    design = BatchThompsonSampling(
        prior_mean=m, prior_var=v, n_samples=n_samples, random_state=0
    )
    p = design.next_allocation()
    q1 = norm.cdf((m[1] - m[0]) / np.sqrt(v.sum()))
    se = np.sqrt(q1 * (1 - q1) / n_samples)
    assert abs(p[1] - q1) < 4 * se


@pytest.mark.parametrize("beta", [0.5, 0.8])
def test_top_two_matches_two_arm_closed_form(beta):
    # With two arms the challenger is always the other arm:
    # p_0 = beta q_0 + (1 - beta) q_1.
    m = np.array([0.0, 0.4])
    v = np.array([1.0, 0.5])
    n_samples = 200_000
    design = TopTwoThompsonSampling(
        prior_mean=m, prior_var=v, beta=beta, n_samples=n_samples, random_state=0
    )
    p = design.next_allocation()
    q1 = norm.cdf((m[1] - m[0]) / np.sqrt(v.sum()))
    expected = beta * (1 - q1) + (1 - beta) * q1
    assert abs(p[0] - expected) < 4 * np.sqrt(0.25 / n_samples)


def test_top_two_matches_brute_force_sampling_three_arms():
    # Reference: Russo's procedure run unit by unit: draw a leader; with
    # probability 1 - beta redraw posterior samples until the best arm
    # differs from the leader and take it instead.
    m = np.array([0.0, 0.3, -0.2])
    v = np.array([0.5, 0.4, 1.0])
    beta = 0.5
    rng = np.random.default_rng(0)
    n_units = 20_000
    chosen = np.empty(n_units, dtype=int)
    for i in range(n_units):
        leader = np.argmax(m + np.sqrt(v) * rng.standard_normal(3))
        if rng.random() < beta:
            chosen[i] = leader
            continue
        while True:
            challenger = np.argmax(m + np.sqrt(v) * rng.standard_normal(3))
            if challenger != leader:
                chosen[i] = challenger
                break
    reference = np.bincount(chosen, minlength=3) / n_units
    design = TopTwoThompsonSampling(
        prior_mean=m, prior_var=v, beta=beta, n_samples=200_000, random_state=0
    )
    assert_allclose(design.next_allocation(), reference, atol=0.015)


def test_top_two_with_a_certain_leader_uses_the_runner_up():
    design = TopTwoThompsonSampling(
        prior_mean=[10.0, 0.0, -1.0], prior_var=0.01, n_samples=1000, random_state=0
    )
    p = design.next_allocation()
    assert_allclose(p, [0.5, 0.5, 0.0], atol=1e-12)


@pytest.mark.parametrize("cls", [BatchThompsonSampling, ResidualHorizonOptimization])
def test_deterministic_for_fixed_random_state(cls):
    def run(seed):
        design = _fast(cls, n_arms=5, n_batches=2, batch_size=20, random_state=seed)
        first = design.next_allocation()
        design.update([0, 1, 2, 3, 4], [0.1, 0.5, -0.2, 0.3, 0.0])
        return np.concatenate([first, design.next_allocation()])

    assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_simulate_best_arm_is_deterministic_across_n_jobs():
    design = _fast(ResidualHorizonOptimization, n_arms=3, n_batches=2, batch_size=20)
    a = simulate_best_arm(design, n_repeats=4, random_state=0, n_jobs=1)
    # threads rather than processes keep the test fast; the seeds per repeat
    # make the result independent of the backend
    with parallel_config(backend="threading"):
        b = simulate_best_arm(design, n_repeats=4, random_state=0, n_jobs=2)
    assert_array_equal(a.simple_regret, b.simple_regret)
    assert_array_equal(a.allocations, b.allocations)
    assert a.allocations.shape == (4, 2, 3)
    assert not hasattr(design, "posterior_mean_")  # the design was cloned


def test_simulate_best_arm_regret_and_correct_selection():
    # Known truth: regret is max(mu) - mu[selected], zero exactly when correct.
    result = simulate_best_arm(
        UniformAllocation(n_arms=4, n_batches=2, batch_size=40),
        n_repeats=50,
        random_state=0,
    )
    rows = np.arange(50)
    assert_allclose(
        result.simple_regret,
        result.means.max(axis=1) - result.means[rows, result.selected_arm],
        rtol=RTOL,
    )
    assert_array_equal(result.correct_selection, result.simple_regret == 0)
    assert np.all(result.simple_regret >= 0)
    # an arm 3 noise standard deviations better is found by 40 units per arm
    easy = simulate_best_arm(
        UniformAllocation(n_arms=4, n_batches=2, batch_size=40),
        means=[0.0, 0.0, 3.0, 0.0],
        n_repeats=20,
        random_state=0,
    )
    assert easy.correct_selection.all()


@pytest.mark.slow
def test_rho_beats_uniform_bayes_simple_regret():
    # Simulation with known truth (means drawn from the prior): RHO's Bayes
    # simple regret is below uniform allocation's (Che & Namkoong, Fig. 1).
    params = dict(n_arms=20, n_batches=4, batch_size=40)
    uniform = simulate_best_arm(
        UniformAllocation(**params), n_repeats=200, random_state=0
    )
    rho = simulate_best_arm(
        ResidualHorizonOptimization(**params), n_repeats=200, random_state=0
    )
    assert rho.simple_regret.mean() < uniform.simple_regret.mean()


def test_clone_and_pickle_round_trip():
    design = _fast(ResidualHorizonOptimization, n_arms=3, batch_size=10, random_state=0)
    design.update([0, 1, 2], [1.0, 0.0, -1.0])
    assert not hasattr(clone(design), "posterior_mean_")
    restored = pickle.loads(pickle.dumps(design))
    assert_array_equal(restored.next_allocation(), design.next_allocation())
    design.reset()
    assert design.n_batches_seen_ == 0
    assert_allclose(design.posterior_var_, 1.0, rtol=RTOL)


def test_recommend_is_the_largest_posterior_mean():
    design = UniformAllocation(prior_mean=[0.0, 1.0, 0.5])
    assert design.recommend() == 1
    design.update([2, 2, 2, 2], [5.0, 5.0, 5.0, 5.0])
    assert design.recommend() == 2


def test_flexible_batch_sizes_set_the_planning_budget():
    rho = _fast(
        ResidualHorizonOptimization, n_arms=2, n_batches=3, batch_size=[5, 10, 20]
    )
    rho.next_allocation()
    assert rho._remaining_budget() == 35
    rho.update([0, 1], [0.0, 0.0])
    assert rho._remaining_budget() == 30


def test_verbose_prints_progress(capsys):
    _fast(
        ResidualHorizonOptimization, n_arms=2, verbose=1, random_state=0
    ).next_allocation()
    assert "[RHO]" in capsys.readouterr().out


def test_convergence_warning_when_still_improving():
    # a one-batch experiment of 5 units: the allocation matters a lot, and 40
    # small steps from the uniform start are not enough (the objective rose
    # by about 6e-3 over the last 10 steps in a run with this seed)
    rho = ResidualHorizonOptimization(
        prior_mean=[0.0, 0.0, -3.0, -3.0],
        n_batches=1,
        batch_size=5,
        learning_rate=0.02,
        max_iter=40,
        tol=1e-3,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="still improving"):
        rho.next_allocation()


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_arms=None), "n_arms is None"),
        (dict(n_arms=3, prior_var=[1.0, 2.0]), "prior_var must be a scalar"),
        (dict(n_arms=3, prior_mean=[0.0, np.nan, 1.0]), "prior_mean contains NaN"),
        (dict(n_arms=2, noise_var=[1.0, -1.0]), "noise_var must be positive"),
        (dict(n_arms=2, prior_var=-1.0), "prior_var"),
        (dict(n_arms=2, n_batches=3, batch_size=[1, 2]), "batch_size must be"),
        (dict(n_arms=1), "n_arms"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        UniformAllocation(**params).next_allocation()


@pytest.mark.parametrize(
    "arms, rewards, match",
    [
        ([0, 3], [1.0, 1.0], "arms must lie in 0, ..., 2"),
        ([0, -1], [1.0, 1.0], "arms must lie in"),
        ([0, 1], [1.0], "different lengths"),
        ([0, 1], [1.0, np.nan], "rewards contains NaN"),
        ([0.5, 1], [1.0, 1.0], "integer arm indices"),
        ([[0, 1]], [[1.0, 1.0]], "1-dimensional"),
    ],
)
def test_bad_update(arms, rewards, match):
    with pytest.raises(ValueError, match=match):
        UniformAllocation(n_arms=3).update(arms, rewards)


def test_rho_refuses_to_plan_past_the_horizon():
    rho = _fast(ResidualHorizonOptimization, n_arms=2, n_batches=1, batch_size=4)
    rho.update([0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="All n_batches=1 batches"):
        rho.next_allocation()


def test_simulate_bad_input():
    with pytest.raises(ValueError, match="means must have shape"):
        simulate_best_arm(UniformAllocation(n_arms=3), means=[0.0, 1.0], n_repeats=2)
    with pytest.raises(ValueError, match="noise_std"):
        simulate_best_arm(
            UniformAllocation(n_arms=2), noise_std=[1.0, 1.0, 1.0], n_repeats=2
        )
    with pytest.raises(ValueError, match="n_repeats"):
        simulate_best_arm(UniformAllocation(n_arms=2), n_repeats=0)
