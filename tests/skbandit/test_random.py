"""Normal draws of the Thompson sampling policies (skbandit/_random.py)."""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from skbandit import LinearThompsonSampling, make_feedback
from skbandit._random import _BOX_MULLER_MIN_SIZE, NormalStream, standard_normal32


@pytest.mark.parametrize("size", [_BOX_MULLER_MIN_SIZE - 1, 200_001])
def test_standard_normal32_is_standard_normal(size):
    # both paths (ziggurat below the threshold, Box-Muller above it);
    # reference: the N(0, 1) law itself (Kolmogorov-Smirnov), moments
    # mean 0, variance 1, excess kurtosis 0 within 5 standard errors
    z = standard_normal32(np.random.default_rng(0), (size,))
    assert z.dtype == np.float32 and z.shape == (size,)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    se = 1 / np.sqrt(size)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24) * se


def test_box_muller_pairs_are_independent():
    # z[:half] and z[half:] share their uniforms (r cos(phi), r sin(phi)):
    # independent N(0, 1) in exact arithmetic, so uncorrelated, and so are
    # their squares (a dependence through the shared radius would show there)
    n = 400_000
    z = standard_normal32(np.random.default_rng(1), (n,))
    first, second = z[: n // 2].astype(float), z[n // 2 :].astype(float)
    tol = 5 / np.sqrt(n // 2)
    assert abs(np.corrcoef(first, second)[0, 1]) < tol
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < tol
    # a 2-D shape gets the same draws, reshaped
    z2 = standard_normal32(np.random.default_rng(1), (n // 4, 4))
    assert_array_equal(z2.ravel(), z)


class _ExtremeUniforms:
    """A generator whose double-precision uniforms are all 1 - 2**-53."""

    def random(self, size, dtype=np.float64):
        if dtype == np.float64:
            return np.full(size, 1.0 - 2.0**-53)
        return np.zeros(size, dtype=dtype)


def test_box_muller_tail_reaches_double_precision_range():
    # the radius uses a float64 uniform: the largest draw is
    # sqrt(-2 log(2**-53)) = sqrt(106 log 2) = 8.572 (closed form), where a
    # float32 uniform would stop at sqrt(48 log 2) = 5.77
    z = standard_normal32(_ExtremeUniforms(), (_BOX_MULLER_MIN_SIZE,))
    half = _BOX_MULLER_MIN_SIZE // 2
    assert_allclose(z[:half], np.sqrt(106 * np.log(2)), rtol=1e-6)  # cos(0) = 1
    assert_allclose(z[half:], 0.0, atol=1e-6)  # sin(0) = 0


def test_normal_stream_serves_each_draw_once():
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    stream = NormalStream(rng_a, block_size=1000)
    block = standard_normal32(rng_b, (1000,))
    first = stream.draw((30, 10))
    second = stream.draw((2, 5))
    assert_array_equal(first.ravel(), block[:300])
    assert_array_equal(second.ravel(), block[300:310])
    first[:] = 0.0  # the caller's to overwrite: later draws are unaffected
    # 700 - 10 = 690 left: a request of 691 starts a fresh block
    third = stream.draw((691,))
    assert_array_equal(third, standard_normal32(rng_b, (1000,))[:691])
    # large requests bypass the block
    big = stream.draw((_BOX_MULLER_MIN_SIZE,))
    assert_array_equal(big, standard_normal32(rng_b, (_BOX_MULLER_MIN_SIZE,)))
    # ... and leave the block where it was
    assert_array_equal(stream.draw((5,)), stream._block[691:696])


def test_normal_stream_draws_are_standard_normal_across_blocks():
    stream = NormalStream(np.random.default_rng(3), block_size=4096)
    z = np.concatenate([stream.draw((100, 7)).ravel() for _ in range(300)])
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # consecutive slices are independent: lag-one correlation ~ 0
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 5 / np.sqrt(z.size)


@pytest.mark.parametrize("duplicate", ["pickle", "deepcopy"])
def test_fitted_policy_copies_continue_the_same_draws(duplicate):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3))
    actions = rng.integers(3, size=300)
    policy = LinearThompsonSampling(random_state=0).fit(
        X, make_feedback(actions, rng.normal(size=300))
    )
    policy.predict(X[:50])  # mid-block
    if duplicate == "pickle":
        other = pickle.loads(pickle.dumps(policy))
    else:
        other = copy.deepcopy(policy)
    for _ in range(3):
        assert_array_equal(other.predict(X), policy.predict(X))
