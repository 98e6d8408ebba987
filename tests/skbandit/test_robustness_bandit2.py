"""Peak memory of the policies, off-policy estimates and batched designs.

Regression tests of issue 14, section 6 (peak memory at most 3x the input):
linear Thompson sampling and LinUCB decided a batch through an (n, K, d)
array (``predict`` 6.5x the bytes of X, ``predict_proba`` up to 27x, LinUCB
12.5x at n = 10^4, d = 20, K = 10), and a fit on plain labels (full
information) copied X once per arm (32x). Also bounded: the Box-Muller
draws, the doubly robust estimate, batch and top-two Thompson allocations and
TS-Gen's selection probabilities. The blocked computations must give
the same numbers as before: every value is checked against an independent
reference (a dense ridge solve per arm, the Gaussian closed form of the
selection probability, the fit on explicitly repeated rows) or against the
unblocked computation on the same random stream.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.utils import check_random_state

import skbandit._linear as linear_module
from skbandit import (
    BernoulliThompsonSampling,
    EpsilonGreedy,
    GaussianThompsonSampling,
    LinearThompsonSampling,
    LinUCB,
    Uniform,
    make_feedback,
)
from skbandit._random import standard_normal32
from skbandit.experiment import BatchThompsonSampling, TopTwoThompsonSampling
from skbandit.metrics import estimate_policy_value
from tests._memory import traced_peak as _peak

# the bound: peak memory at most 3x the input
MAX_RATIO = 3.0


def _log(n, d, n_arms, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    actions = rng.integers(n_arms, size=n)
    rewards = X[:, 0] * (actions - n_arms / 2) + rng.normal(size=n)
    return X, actions, rewards


def _ridge_reference(X, actions, rewards, n_arms, lam=1.0, intercept=True):
    """Per-arm ridge by dense solves: ``(A_k^{-1}, theta_k)`` for every arm."""
    Z = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
    invs, thetas = [], []
    for k in range(n_arms):
        Zk = Z[actions == k]
        A = lam * np.eye(Z.shape[1]) + Zk.T @ Zk
        invs.append(np.linalg.inv(A))
        thetas.append(np.linalg.solve(A, Zk.T @ rewards[actions == k]))
    return Z, np.array(invs), np.array(thetas)


@pytest.fixture
def single_block(monkeypatch):
    """Decide every batch in one block (the computation before blocking)."""
    monkeypatch.setattr(linear_module, "_SINGLE_BLOCK_ROWS", 10**9)


# -------------------------------------------------------------- peak memory
N, D, K = 10_000, 20, 10


@pytest.fixture(scope="module")
def fitted_linear():
    X, actions, rewards = _log(2000, D, K)
    y = make_feedback(actions, rewards)
    ts = LinearThompsonSampling(n_proba_draws=20, random_state=0).fit(X, y)
    ucb = LinUCB().fit(X, y)
    return ts, ucb, np.random.default_rng(1).normal(size=(N, D))


@pytest.mark.parametrize(
    "name, method",
    [
        ("ts", "predict"),
        ("ts", "predict_proba"),
        ("ucb", "predict"),
        ("ucb", "predict_proba"),
        ("ucb", "upper_bounds"),
    ],
)
def test_linear_policy_decisions_peak_within_3x_of_X(fitted_linear, name, method):
    # before the blocks: 6.5x (TS predict), 27x (TS predict_proba), 12.5x
    # (every LinUCB method) at n = 10^4, d = 20, K = 10; after: 0.5x - 2.1x
    ts, ucb, X = fitted_linear
    policy = ts if name == "ts" else ucb
    peak, out = _peak(lambda: getattr(policy, method)(X))
    assert out.shape[0] == N
    assert peak <= MAX_RATIO * X.nbytes, f"{method}: {peak / X.nbytes:.2f}x X"


@pytest.mark.parametrize(
    "cls", [LinearThompsonSampling, LinUCB, BernoulliThompsonSampling, EpsilonGreedy]
)
def test_fit_on_labels_peak_within_3x_of_X(cls):
    # full-information feedback repeated X once per arm: 32x X for the linear
    # policies, 12x for the multi-armed ones (K = 10, d = 20)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    labels = rng.integers(K, size=N)
    peak, policy = _peak(lambda: cls().fit(X, labels))
    assert policy.n_samples_seen_ == N
    assert peak <= MAX_RATIO * X.nbytes, f"{peak / X.nbytes:.2f}x X"


def test_box_muller_peak_is_twice_its_result():
    # the float64 radius buffer lived to the end: the peak was 3x the bytes of
    # the result; freed before the angles are drawn, it is 2x
    shape = (2**20,)
    peak, z = _peak(lambda: standard_normal32(np.random.default_rng(0), shape))
    assert peak <= 2.2 * z.nbytes
    # the draws themselves are unchanged: the transform written out in
    # float64 from the same uniforms (reference), to float32 rounding
    rng = np.random.default_rng(0)
    half = shape[0] // 2
    radius = np.sqrt(-2.0 * np.log1p(-rng.random(half)))
    angle = 2.0 * np.pi * rng.random(half, dtype=np.float32).astype(np.float64)
    ref = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
    assert_allclose(z, ref, rtol=1e-5, atol=1e-5)


def test_batch_thompson_allocation_peak_is_one_draw_array():
    # mean + sqrt(var) * z held three (n_samples, K) arrays; in place, one
    S, n_arms = 20_000, 50
    design = BatchThompsonSampling(
        n_arms=n_arms,
        prior_mean=np.linspace(0, 1, n_arms),
        n_samples=S,
        random_state=3,
    ).reset()
    peak, allocation = _peak(design.next_allocation)
    assert peak <= 1.3 * S * n_arms * 8
    # reference: the same draws from the same seed, written out
    rng = check_random_state(3)
    draws = np.linspace(0, 1, n_arms) + rng.standard_normal((S, n_arms))
    ref = np.bincount(draws.argmax(1), minlength=n_arms) / S
    assert_allclose(allocation, ref, rtol=1e-12)  # up to the renormalization


def test_top_two_with_a_certain_leader_masks_in_place():
    # a leader with estimated probability one copied all the draws to mask
    # its column: 2.7x the (n_samples, K) array (with the two int64 argmax
    # vectors, each a third of it at K = 3); masked in place, 1.7x
    S = 50_000
    mean = np.array([0.0, 0.1, 50.0])
    design = TopTwoThompsonSampling(
        prior_mean=mean, prior_var=1e-2, n_samples=S, beta=0.3, random_state=5
    ).reset()
    peak, allocation = _peak(design.next_allocation)
    assert peak <= 2.0 * S * 3 * 8
    # reference: arm 2 always leads; the challenger is the best of arms 0, 1
    # under the same draws (seed 5)
    draws = mean + 0.1 * check_random_state(5).standard_normal((S, 3))
    assert np.all(draws.argmax(1) == 2)
    runner_up = np.bincount(draws[:, :2].argmax(1), minlength=3) / S
    assert_allclose(allocation, 0.3 * np.array([0, 0, 1.0]) + 0.7 * runner_up)


@pytest.mark.parametrize("target", ["uniform", "linucb"])
def test_doubly_robust_estimate_peak_and_value(target):
    # the reward-model predictions were collected in a list before filling q,
    # and sum(pi * q) built an (n, K) product: 3.1x the bytes of X and y with
    # a uniform target (K = 5, d = 5), 5.8x with LinUCB (whose predict_proba
    # went through an (n, K, d) array); now 2.6x for both
    n, d, n_arms = 20_000, 5, 5
    X, actions, rewards = _log(n, d, n_arms, seed=2)
    y = make_feedback(actions, rewards, np.full(n, 1 / n_arms))
    if target == "uniform":
        policy = Uniform(arms=list(range(n_arms))).fit(X, y)
    else:
        policy = LinUCB().fit(X, y)
    peak, res = _peak(
        lambda: estimate_policy_value(policy, X, y, method="dr", random_state=0)
    )
    assert peak <= 2.75 * (X.nbytes + y.nbytes)
    # reference: the DR formula written out with per-arm sklearn Ridge models
    # on the same two folds
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    q = np.empty((n, n_arms))
    for train, test in KFold(2, shuffle=True, random_state=0).split(X):
        for k in range(n_arms):
            rows = train[actions[train] == k]
            q[test, k] = Ridge(1.0).fit(X[rows], rewards[rows]).predict(X[test])
    proba = policy.predict_proba(X)
    rows = np.arange(n)
    terms = (proba * q).sum(1) + proba[rows, actions] * n_arms * (
        rewards - q[rows, actions]
    )
    assert_allclose(res.value, terms.mean(), rtol=1e-10)


# ------------------------------------------- blocked decisions, same numbers
@pytest.mark.parametrize("intercept", [True, False])
def test_blocked_upper_bounds_match_dense_ridge(intercept):
    # n = 5000 > 2048 rows: decided in blocks; reference: x theta_k +
    # alpha sqrt(x A_k^{-1} x) from dense per-arm solves
    X, actions, rewards = _log(600, 6, 4)
    policy = LinUCB(exploration=0.7, fit_intercept=intercept)
    policy.fit(X, make_feedback(actions, rewards))
    _, inv, theta = _ridge_reference(X, actions, rewards, 4, intercept=intercept)
    Xt = np.random.default_rng(5).normal(size=(5000, 6))
    Zt = np.hstack([Xt, np.ones((5000, 1))]) if intercept else Xt
    quad = np.einsum("ni,kij,nj->nk", Zt, inv, Zt)
    ref = Zt @ theta.T + 0.7 * np.sqrt(quad)
    assert_allclose(policy.upper_bounds(Xt), ref, rtol=1e-9, atol=1e-12)
    assert_array_equal(policy.predict(Xt), ref.argmax(1))
    proba = policy.predict_proba(Xt)
    assert_array_equal(proba.argmax(1), ref.argmax(1))
    assert_array_equal(proba.sum(1), 1.0)


def test_blocked_thompson_draws_continue_the_same_stream(monkeypatch):
    # decisions in blocks use the same normal draws, in the same order, as
    # the one-block decision: same arms on consecutive calls of several sizes
    # (large ones bypass the draw stream's block, small ones use it)
    X, actions, rewards = _log(800, 8, 5)
    y = make_feedback(actions, rewards)
    blocked = LinearThompsonSampling(noise_variance=0.3, random_state=4).fit(X, y)
    reference = LinearThompsonSampling(noise_variance=0.3, random_state=4).fit(X, y)
    rng = np.random.default_rng(6)
    batches = [rng.normal(size=(m, 8)) for m in (5000, 37, 3001, 100)]
    out_blocked = [blocked.predict(b) for b in batches]
    monkeypatch.setattr(linear_module, "_SINGLE_BLOCK_ROWS", 10**9)
    out_reference = [reference.predict(b) for b in batches]
    for a, b in zip(out_blocked, out_reference, strict=True):
        assert_array_equal(a, b)


def test_blocked_thompson_decisions_follow_the_posterior():
    # independent reference of the first (blocked) call: x theta_k +
    # sqrt(sigma^2 x A_k^{-1} x) z_k in float64, with z the policy's first
    # normal draws (its generator seeded at fit); agreement up to float32
    # rounding at near-ties
    X, actions, rewards = _log(500, 4, 3)
    policy = LinearThompsonSampling(noise_variance=0.5, random_state=8)
    policy.fit(X, make_feedback(actions, rewards))
    Z, inv, theta = _ridge_reference(X, actions, rewards, 3)
    Xt = np.random.default_rng(9).normal(size=(6000, 4))
    Zt = np.hstack([Xt, np.ones((6000, 1))])
    sd = np.sqrt(0.5 * np.einsum("ni,kij,nj->nk", Zt, inv, Zt))
    z = standard_normal32(np.random.default_rng(policy._seed), (6000, 3))
    ref = (Zt @ theta.T + sd * z).argmax(1)
    assert np.mean(policy.predict(Xt) == ref) > 0.999


def test_blocked_thompson_proba_matches_gaussian_closed_form():
    # two arms: P(arm 1) = Phi((m_1 - m_0) / sqrt(s_0^2 + s_1^2)); Monte
    # Carlo with 400 draws per row, in blocks (n = 3000 rows)
    X, actions, rewards = _log(300, 3, 2)
    draws = 400
    policy = LinearThompsonSampling(n_proba_draws=draws, random_state=0)
    policy.fit(X, make_feedback(actions, rewards))
    _, inv, theta = _ridge_reference(X, actions, rewards, 2)
    Xt = np.random.default_rng(2).normal(size=(3000, 3))
    Zt = np.hstack([Xt, np.ones((3000, 1))])
    mean = Zt @ theta.T
    var = np.einsum("ni,kij,nj->nk", Zt, inv, Zt)
    p1 = stats.norm.cdf((mean[:, 1] - mean[:, 0]) / np.sqrt(var.sum(1)))
    proba = policy.predict_proba(Xt)
    assert_allclose(proba.sum(1), 1.0)
    se = np.sqrt(p1 * (1 - p1) / draws) + 1e-3
    assert np.all(np.abs(proba[:, 1] - p1) <= 6 * se)
    assert np.mean(np.abs(proba[:, 1] - p1)) < 0.5 / np.sqrt(draws)


def test_blocked_decisions_leave_X_unchanged(fitted_linear):
    ts, ucb, X = fitted_linear
    before = X.copy()
    ts.predict(X), ts.predict_proba(X[:3000]), ucb.predict(X), ucb.upper_bounds(X)
    assert_array_equal(X, before)


# ------------------------------------- full information without repeating X
def _repeated_feedback(labels, n_arms):
    """The full-information feedback written out: one row per (row, arm)."""
    n = labels.shape[0]
    arm = np.tile(np.arange(n_arms), n)
    return make_feedback(arm, (arm == np.repeat(labels, n_arms)).astype(float))


@pytest.mark.parametrize("n, d", [(2, 10), (5, 3), (50, 4), (3000, 5)])
@pytest.mark.parametrize("cls", [LinearThompsonSampling, LinUCB])
@pytest.mark.parametrize("intercept", [True, False])
def test_labels_equal_the_repeated_full_information_feedback(cls, n, d, intercept):
    # reference: the same rounds as explicit (row, arm) feedback, each row
    # repeated once per arm; covers the low-rank (Woodbury) update (n = 2 <
    # d / 2, then again in partial_fit), zero weights and the blocked Gram
    # matrix (n = 3000)
    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d))
    labels = rng.integers(3, size=n)
    w = rng.uniform(0.5, 2.0, n)
    w[::4] = 0.0
    ours = cls(fit_intercept=intercept, arms=[0, 1, 2]).fit(X, labels, sample_weight=w)
    ref = cls(fit_intercept=intercept, arms=[0, 1, 2]).fit(
        np.repeat(X, 3, axis=0),
        _repeated_feedback(labels, 3),
        sample_weight=np.repeat(w, 3),
    )
    ours.partial_fit(X[:2], labels[:2])
    ref.partial_fit(np.repeat(X[:2], 3, axis=0), _repeated_feedback(labels[:2], 3))
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-9, atol=1e-12)
    assert_allclose(ours._inv, ref._inv, rtol=1e-9, atol=1e-12)
    assert ours.n_samples_seen_ == pytest.approx(w.sum() + 2)
    assert ours.n_samples_seen_ == pytest.approx(ref.n_samples_seen_ / 3)
    # closed form: every arm has the Gram matrix lambda I + Z^T W Z of all
    # rows (dense inverse), and theta_k solves it with the indicator rewards
    Xall, wall = np.vstack([X, X[:2]]), np.concatenate([w, [1.0, 1.0]])
    lall = np.concatenate([labels, labels[:2]])
    Z = np.hstack([Xall, np.ones((n + 2, 1))]) if intercept else Xall
    A = np.eye(Z.shape[1]) + Z.T @ (wall[:, None] * Z)
    for k in range(3):
        theta = np.linalg.solve(A, Z.T @ (wall * (lall == k)))
        coef = (
            np.append(ours.coef_[k], ours.intercept_[k]) if intercept else ours.coef_[k]
        )
        assert_allclose(coef, theta, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "cls", [BernoulliThompsonSampling, GaussianThompsonSampling, EpsilonGreedy]
)
def test_multi_armed_labels_with_columns_equal_zero_columns(cls):
    # multi-armed policies ignore X's columns, so only its zero-column view is
    # repeated: the state equals the fit on zero columns (and the counts the
    # full-information closed form: every arm sees every row)
    rng = np.random.default_rng(0)
    labels = rng.integers(4, size=300)
    w = rng.uniform(size=300)
    a = cls().fit(rng.normal(size=(300, 7)), labels, sample_weight=w)
    b = cls().fit(np.empty((300, 0)), labels, sample_weight=w)
    for attr, value in vars(b).items():
        if attr.endswith("_") and isinstance(value, np.ndarray) and attr != "classes_":
            assert_allclose(getattr(a, attr), value, err_msg=attr)
    assert a.n_samples_seen_ == pytest.approx(w.sum())
    if cls is EpsilonGreedy:
        assert_allclose(a.counts_, np.full(4, w.sum()))
        assert_allclose(a.means_, np.bincount(labels, w, 4) / w.sum())


class _NormalGenerator:
    """A pretrained generator: outcomes N(x_0, 1), independent of the history."""

    n_features_in_ = 2

    def sample(self, X_history, y_history, X_target, *, n_draws=1, random_state=None):
        rng = np.random.default_rng(random_state)
        return X_target[:, 0] + rng.standard_normal((n_draws, X_target.shape[0]))


def test_generative_proba_without_an_n_draws_arms_array():
    # TS-Gen's predict_proba stacked every arm's fitted outcomes into an
    # (n, n_draws, K) array and compared it with every arm: peak 6.05x one
    # (n, n_draws) float64 array here; with a running maximum over the arms
    # the peak is that of the completed tables themselves, 5.2x
    from skbandit import GenerativeThompsonSampling

    rng = np.random.default_rng(0)
    actions = rng.integers(3, size=50)
    policy = GenerativeThompsonSampling(
        generator=_NormalGenerator(), n_future=20, random_state=0
    ).fit(rng.normal(size=(50, 2)), make_feedback(actions, rng.normal(size=50)))
    X = rng.normal(size=(300, 2))
    draws = policy.n_proba_draws
    peak, proba = _peak(lambda: policy.predict_proba(X))
    assert peak <= 5.6 * X.shape[0] * draws * 8
    # reference: the same completed tables (same seeds), every arm's fitted
    # outcome stacked and the winner counted per row
    fits = policy._oracle_fits(X, draws, np.random.default_rng([policy._seed, 1]))
    values = np.stack([(X - u) @ c + m for u, c, m in fits], axis=2)
    ref = (values.argmax(2)[..., None] == np.arange(3)).mean(axis=1)
    assert_array_equal(proba, ref)
