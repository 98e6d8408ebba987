"""Coverage and bias over repeated draws (run with ``pytest -m slow``)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from skcausal import (
    AIPW,
    TMLE,
    CLearner,
    TrimmingSensitivity,
    WorstCaseTreatmentEffect,
)
from skcausal.datasets import make_kang_schafer, make_limited_overlap

pytestmark = pytest.mark.slow

N_DRAWS = 100
# a 95% interval over 100 draws covers between 0.88 and 0.99 with
# probability about 0.99 (binomial(100, 0.95) quantiles)
COVERAGE_RANGE = (0.88, 1.0)


def _spline_models():
    return dict(
        outcome_model=make_pipeline(SplineTransformer(n_knots=5), LinearRegression()),
        propensity_model=make_pipeline(
            SplineTransformer(n_knots=5), LogisticRegression()
        ),
    )


@pytest.mark.parametrize("Est", [AIPW, TMLE, CLearner])
def test_coverage_easy_overlap(Est):
    # make_limited_overlap: ATE = 1 exactly; well-specified spline nuisances
    hits, errors = [], []
    for r in range(N_DRAWS):
        X, y = make_limited_overlap(1000, overlap=0.1, random_state=r)
        est = Est(**_spline_models(), random_state=r).fit(X, y)
        lower, upper = est.conf_int()
        hits.append(lower <= 1.0 <= upper)
        errors.append(est.estimate_ - 1.0)
    assert COVERAGE_RANGE[0] <= np.mean(hits) <= COVERAGE_RANGE[1]
    assert abs(np.mean(errors)) < 0.03


def test_trimming_interval_covers_under_limited_overlap():
    # L = 2 per standard deviation bounds the true outcome gradients (1.83)
    hits = []
    for r in range(N_DRAWS):
        X, y = make_limited_overlap(1000, overlap=0.01, random_state=r)
        est = TrimmingSensitivity(
            **_spline_models(), threshold=0.05, n_bootstrap=30, random_state=r
        ).fit(X, y)
        lower, upper = est.conf_int(lipschitz=2.0)
        hits.append(lower <= 1.0 <= upper)
    assert np.mean(hits) >= COVERAGE_RANGE[0]


def test_kang_schafer_clearner_rmse_below_aipw():
    # Cai, Fonseca, Hou, Namkoong: with misspecified linear models at n = 200,
    # C-Learner's RMSE for E[Y(1)] = 210 is far below AIPW's and TMLE's.
    prop = make_pipeline(StandardScaler(), LogisticRegression(C=1e6, max_iter=1000))
    err = {"aipw": [], "clearner": []}
    cover = []
    for r in range(N_DRAWS):
        X, y = make_kang_schafer(200, random_state=r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            a = AIPW(propensity_model=prop, clip=1e-6, random_state=r).fit(X, y)
            c = CLearner(propensity_model=prop, clip=1e-6, random_state=r).fit(X, y)
        err["aipw"].append(a.potential_outcome_means_[1] - 210)
        err["clearner"].append(c.potential_outcome_means_[1] - 210)
        row = c.summary().loc["E[Y(1)]"]
        cover.append(row.ci_lower <= 210 <= row.ci_upper)
    rmse = {k: np.sqrt(np.mean(np.square(v))) for k, v in err.items()}
    assert rmse["clearner"] < 8.0
    assert rmse["clearner"] < rmse["aipw"] / 2
    assert np.mean(cover) >= 0.85


def test_worst_case_effect_coverage():
    # tau(Z) = 1 + X_1, X_1 ~ U[-1, 1]: the lower CVaR at mass 0.5 is 0.5
    # (closed form). Measured: coverage 0.91, bias 0.006 over 100 draws.
    hits, errors = [], []
    for r in range(N_DRAWS):
        X, y = make_limited_overlap(2000, overlap=0.1, random_state=r)
        est = WorstCaseTreatmentEffect(
            **_spline_models(),
            effect_model=make_pipeline(
                SplineTransformer(n_knots=5), LinearRegression()
            ),
            subgroup_features=[0],
            mass=0.5,
            random_state=r,
        ).fit(X, y)
        lower, upper = est.conf_int()
        hits.append(lower <= 0.5 <= upper)
        errors.append(est.estimate_ - 0.5)
    assert np.mean(hits) >= 0.85
    assert abs(np.mean(errors)) < 0.05


def _trimmed_draws(threshold, models):
    # Y(1) - Y(0) = 1 + X_1 exactly in make_limited_overlap, so the sample
    # effect over the estimated region is known per draw; the effect over the
    # true region {eps <= e(x) <= 1 - eps} is 1 (symmetric in X_1).
    rows = []
    for r in range(N_DRAWS):
        X, y, po, _ = make_limited_overlap(
            1000, return_potential_outcomes=True, random_state=1000 + r
        )
        est = TrimmingSensitivity(
            **models, threshold=threshold, extension="knn", random_state=r
        ).fit(X, y)
        lower, upper = est.conf_int()
        target = np.mean(po[est.overlap_mask_, 1] - po[est.overlap_mask_, 0])
        rows.append((est.estimate_, est.stderr_, target, lower, upper))
    return np.array(rows).T


def test_trimmed_interval_coverage_default_models():
    # docs/user_guide/overlap.rst, 400 draws: coverage 0.90-0.92 of the
    # sample effect over the estimated region, SE / sd(error) 0.90
    estimate, stderr, target, lower, upper = _trimmed_draws(0.1, {})
    assert np.mean((lower <= target) & (target <= upper)) >= 0.83
    assert 0.75 < stderr.mean() / np.std(estimate - target, ddof=1) < 1.2


def test_trimmed_interval_undercovers_on_propensity_plateau():
    # The documented limitation (overlap.rst table, 300 draws): with spline
    # nuisances and threshold 0.05 on the propensity's flat floor, the region
    # is noisy and SE 0.107 < sd(error) 0.153; coverage of the true-region
    # effect 0.75. If this test fails the SE has changed: update the docs.
    estimate, stderr, target, lower, upper = _trimmed_draws(0.05, _spline_models())
    assert stderr.mean() / np.std(estimate - target, ddof=1) < 0.85
    assert np.mean((lower <= 1.0) & (1.0 <= upper)) < 0.88
    assert np.std(target, ddof=1) > 0.05


def test_trimmed_bootstrap_stderr_coverage_on_plateau():
    # overlap.rst, 100 draws, n_bootstrap=30: estimate_ -/+ 1.96
    # bootstrap_stderr_ covers the true region's effect (1) in 0.90 of draws
    hits, ratio = [], []
    for r in range(60):
        X, y = make_limited_overlap(1000, random_state=1000 + r)
        est = TrimmingSensitivity(
            **_spline_models(), threshold=0.05, n_bootstrap=30, random_state=r
        ).fit(X, y)
        hits.append(abs(est.estimate_ - 1.0) <= 1.96 * est.bootstrap_stderr_)
        ratio.append(est.bootstrap_stderr_ / est.stderr_)
    assert np.mean(hits) >= 0.8
    assert np.mean(ratio) > 1.3
