"""``n_jobs`` loops run under joblib, so a Dask cluster distributes them.

A cross-fitted estimator, a bandit simulation, a best-arm experiment and the
cross-fitted worst-subpopulation risk run once sequentially (``n_jobs=1``)
and once with ``n_jobs=2`` under ``joblib.parallel_backend("dask")`` on a
two-worker ``dask.distributed.LocalCluster``; for the same ``random_state`` the results
must be equal (the folds, seeds and models do not depend on where they run).
"""

import numpy as np
import pytest
from joblib import parallel_backend
from numpy.testing import assert_allclose

distributed = pytest.importorskip("dask.distributed")

from skbandit import BernoulliThompsonSampling, LinearThompsonSampling  # noqa: E402
from skbandit.environments import (  # noqa: E402
    BernoulliArms,
    LinearContextualBandit,
    simulate,
)
from skbandit.experiment import TopTwoThompsonSampling, simulate_best_arm  # noqa: E402
from skcausal import AIPW  # noqa: E402
from skcausal.datasets import make_kang_schafer  # noqa: E402
from skrobust.metrics import worst_subpopulation_risk  # noqa: E402

# the same computation on the same seeds: equal up to float summation order
RTOL = 1e-12


@pytest.fixture(scope="module")
def client():
    # threads, not processes: starts in a fraction of a second and still
    # sends every task through the Dask scheduler
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _on_dask(func):
    with parallel_backend("dask"):
        return func()


def _n_scheduler_transitions(client):
    return client.run_on_scheduler(
        lambda dask_scheduler: len(dask_scheduler.transition_log)
    )


def test_dask_backend_is_used(client):
    # joblib really hands the folds to the cluster: the scheduler records
    # task transitions that a sequential run would not produce
    X, y = make_kang_schafer(n_samples=200, random_state=0)
    before = _n_scheduler_transitions(client)
    AIPW(cv=2, n_jobs=1, random_state=0).fit(X, y)
    assert _n_scheduler_transitions(client) == before
    _on_dask(lambda: AIPW(cv=2, n_jobs=2, random_state=0).fit(X, y))
    assert _n_scheduler_transitions(client) > before


def test_crossfit_estimator_on_dask(client):
    X, target = make_kang_schafer(n_samples=300, random_state=0)

    def fit(n_jobs):
        return AIPW(cv=3, n_jobs=n_jobs, random_state=7).fit(X, target)

    seq = fit(1)
    dist = _on_dask(lambda: fit(2))
    assert_allclose(dist.estimate_, seq.estimate_, rtol=RTOL)
    assert_allclose(dist.stderr_, seq.stderr_, rtol=RTOL)
    assert_allclose(dist.propensity_, seq.propensity_, rtol=RTOL)
    assert_allclose(dist.outcome_predictions_, seq.outcome_predictions_, rtol=RTOL)
    for a, b in zip(dist.fold_indices_, seq.fold_indices_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bandit_simulation_on_dask(client):
    def run(n_jobs):
        return simulate(
            BernoulliThompsonSampling(),
            BernoulliArms([0.2, 0.5, 0.6]),
            n_rounds=200,
            batch_size=10,
            n_repeats=4,
            random_state=3,
            n_jobs=n_jobs,
        )

    seq = run(1)
    dist = _on_dask(lambda: run(2))
    np.testing.assert_array_equal(dist.cumulative_regret, seq.cumulative_regret)
    np.testing.assert_array_equal(dist.cumulative_reward, seq.cumulative_reward)


def test_contextual_simulation_on_dask(client):
    env = LinearContextualBandit(n_arms=3, n_features=2, random_state=0)

    def run(n_jobs):
        return simulate(
            LinearThompsonSampling(),
            env,
            n_rounds=100,
            batch_size=10,
            n_repeats=2,
            random_state=1,
            n_jobs=n_jobs,
        )

    seq = run(1)
    dist = _on_dask(lambda: run(2))
    assert_allclose(dist.cumulative_regret, seq.cumulative_regret, rtol=RTOL)


def test_best_arm_experiment_on_dask(client):
    def run(n_jobs):
        return simulate_best_arm(
            TopTwoThompsonSampling(n_arms=3, n_batches=3, batch_size=20),
            means=[0.0, 0.2, 0.5],
            n_repeats=4,
            random_state=0,
            n_jobs=n_jobs,
        )

    seq = run(1)
    dist = _on_dask(lambda: run(2))
    for key in seq:
        a, b = np.asarray(seq[key]), np.asarray(dist[key])
        if a.dtype.kind in "fiub":
            assert_allclose(b, a, rtol=RTOL)


def test_worst_subpopulation_on_dask(client):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(200, 2))
    y_true = (Z[:, 0] > 0) + rng.normal(size=200)
    y_pred = np.zeros(200)

    def run(n_jobs):
        return worst_subpopulation_risk(
            y_true,
            y_pred,
            Z,
            subpopulation_size=0.2,
            loss="squared_error",
            cv=2,
            n_jobs=n_jobs,
            random_state=0,
        )

    seq = run(1)
    dist = _on_dask(lambda: run(2))
    assert_allclose(dist.risk, seq.risk, rtol=RTOL)
