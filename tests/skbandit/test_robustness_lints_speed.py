"""Linear TS on large batches: quadratic forms by triangular products (issue 15 F).

Batches of at least ``_TRIANGULAR_ROWS`` contexts compute
``x^T A_k^{-1} x`` as ``|R_k^{-1} x|^2`` (``A_k = R_k R_k^T``) in float32.
Reference values: the float64 dense solve ``x^T solve(A_k, x)`` with ``A_k``
rebuilt from the logged rows (independent of the policy's state).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skbandit._linear as linear_module
from skbandit import LinearThompsonSampling, make_feedback


def _augment(X, intercept):
    return np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X


def _gram_reference(X, actions, weight, n_arms, lam, intercept):
    Z = _augment(X, intercept)
    return np.array(
        [
            lam * np.eye(Z.shape[1])
            + Z[actions == k].T @ (weight[actions == k, None] * Z[actions == k])
            for k in range(n_arms)
        ]
    )


def _quad_reference(Zt, grams):
    return np.stack(
        [np.einsum("nd,dn->n", Zt, np.linalg.solve(A, Zt.T)) for A in grams], axis=1
    )


@pytest.mark.parametrize("n_log", [3, 40, 400])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("collinear", [False, True])
def test_triangular_quadratic_forms_match_dense_solve(
    n_log, scale, intercept, collinear
):
    rng = np.random.default_rng(n_log)
    d, n_arms = 6, 3
    X = scale * rng.normal(size=(n_log, d))
    if collinear:
        X[:, 1] = 2.0 * X[:, 0]
    actions = np.arange(n_log) % n_arms
    rewards = rng.normal(size=n_log)
    weight = rng.uniform(0.0, 2.0, n_log)
    policy = LinearThompsonSampling(regularization=0.5, fit_intercept=intercept)
    policy.fit(X, make_feedback(actions, rewards), sample_weight=weight)
    Xt = scale * rng.normal(size=(3000, d))
    Zt = _augment(Xt, intercept)
    grams = _gram_reference(X, actions, weight, n_arms, 0.5, intercept)
    reference = _quad_reference(Zt, grams)
    factors = policy._triangular_factors()
    assert factors is not None
    mean, quad = policy._mean_and_var_triangular(Xt, factors)
    # float32: relative error of a few ulps times the condition of R_k
    assert_allclose(quad, reference, rtol=2e-4)
    assert np.all(quad >= 0)
    assert_allclose(mean, Zt @ policy._theta.T, rtol=1e-4, atol=1e-5 * scale)


def test_factors_follow_every_update():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    actions = rng.integers(0, 2, 50)
    y = make_feedback(actions, rng.normal(size=50))
    policy = LinearThompsonSampling(random_state=0).fit(X[:20], y[:20])
    Xt = rng.normal(size=(2500, 4))
    assert policy._triangular_factors() is not None  # cached for this posterior
    # one row: a low-rank (Woodbury) update of one arm
    for rows in (slice(20, 21), slice(21, 50)):
        policy.partial_fit(X[rows], y[rows])
        seen = slice(0, rows.stop)
        Zt = _augment(Xt, True)
        grams = _gram_reference(
            X[seen], actions[seen], np.ones(rows.stop), 2, 1.0, True
        )
        _, quad = policy._mean_and_var_triangular(Xt, policy._triangular_factors())
        assert_allclose(quad, _quad_reference(Zt, grams), rtol=2e-4)


def test_large_batch_decisions_same_as_dense_path(monkeypatch):
    # the same normal draws: the triangular and the dense float32 paths
    # choose the same arms except at float32 near-ties
    rng = np.random.default_rng(1)
    d = linear_module._TRIANGULAR_MIN_DIM  # with the intercept: above it
    X = rng.normal(size=(300, d))
    actions = rng.integers(0, 4, 300)
    y = make_feedback(actions, X[:, 0] * actions + rng.normal(size=300))
    Xt = rng.normal(size=(4000, d))
    tri = LinearThompsonSampling(random_state=3).fit(X, y).predict(Xt)
    monkeypatch.setattr(linear_module, "_TRIANGULAR_ROWS", 10**9)
    dense = LinearThompsonSampling(random_state=3).fit(X, y).predict(Xt)
    assert np.mean(tri != dense) < 1e-3


def test_unfactorable_gram_falls_back_to_dense(monkeypatch):
    rng = np.random.default_rng(2)
    d = linear_module._TRIANGULAR_MIN_DIM
    X = rng.normal(size=(30, d))
    y = make_feedback(rng.integers(0, 2, 30), rng.normal(size=30))
    policy = LinearThompsonSampling(random_state=5).fit(X, y)
    reference = LinearThompsonSampling(random_state=5).fit(X, y)
    policy._gram = policy._gram.copy()
    policy._gram[0, 0, 0] = np.inf  # the factor is not computable
    assert policy._triangular_factors() is None
    Xt = rng.normal(size=(3000, d))
    fallback = policy.predict(Xt)  # a large batch: falls back to dense
    monkeypatch.setattr(linear_module, "_TRIANGULAR_ROWS", 10**9)
    assert_array_equal(fallback, reference.predict(Xt))
