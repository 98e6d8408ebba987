"""Coverage of the stability and DISDE intervals over repeated draws (slow)."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from skrobust.shift import decompose_performance_shift, kl_stability


@pytest.mark.slow
def test_stability_coverage_below_phase_shift():
    # X ~ Exp(1), y = 1.5: I = 0.5 - log 1.5, E exp(2 lambda* X) < inf
    truth = 0.5 - np.log(1.5)
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(300):
        r = kl_stability(rng.exponential(size=10000), 1.5)
        hits.append(r.lower <= truth <= r.upper)
    assert np.mean(hits) >= 0.9


@pytest.mark.slow
def test_disde_y_given_x_interval_under_covariate_shift():
    # same Y | X in both domains: the Y-given-X term is zero
    rng = np.random.default_rng(1)
    X0 = rng.normal(size=(5000, 1))
    model = LinearRegression().fit(X0, X0[:, 0] ** 2 + rng.normal(size=5000))
    hits = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        Xs = rng.normal(size=(2000, 1))
        Xt = rng.normal(loc=1.0, size=(2000, 1))
        ys = Xs[:, 0] ** 2 + rng.normal(size=2000)
        yt = Xt[:, 0] ** 2 + rng.normal(size=2000)
        r = decompose_performance_shift(
            model, Xs, ys, Xt, yt, loss="squared_error", random_state=seed
        )
        low, high = r.intervals["y_given_x_shift"]
        hits.append(low <= 0.0 <= high)
    assert np.mean(hits) >= 0.88
