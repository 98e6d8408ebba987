"""Tests of TrimmingSensitivity and WorstCaseTreatmentEffect."""

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from skcausal import AIPW, TrimmingSensitivity, WorstCaseTreatmentEffect
from skcausal.datasets import make_limited_overlap
from skrobust.ambiguity import CVaR

matplotlib.use("Agg")

RTOL = 1e-10


def _spline_models():
    return (
        make_pipeline(SplineTransformer(n_knots=5), LinearRegression()),
        make_pipeline(SplineTransformer(n_knots=5), LogisticRegression()),
    )


def _overlap_data():
    return make_limited_overlap(n_samples=800, random_state=0)


@pytest.fixture(scope="module")
def overlap_data():
    return _overlap_data()


@pytest.fixture(scope="module")
def fitted_trimming(overlap_data):
    X, y = overlap_data
    return TrimmingSensitivity(
        threshold=0.05, extension="knn", n_neighbors=5, random_state=0
    ).fit(X, y)


@pytest.fixture(scope="module")
def fitted_lipschitz(overlap_data):
    X, y = overlap_data
    return TrimmingSensitivity(threshold=0.05, n_bootstrap=30, random_state=0).fit(X, y)


def test_lipschitz_extension_matches_brute_force(overlap_data):
    """Loop over outside units: max / min over every overlap unit explicitly."""
    X, y = overlap_data
    est = TrimmingSensitivity(
        threshold=0.05, n_bootstrap=10, anchor_margin=0.0, random_state=0
    ).fit(X, y)
    outcome, t = y[:, 0], y[:, 1]
    e, mu = est.propensity_, est.outcome_predictions_
    Z = (X - X.mean(0)) / X.std(0)
    inside = (e >= 0.05) & (e <= 0.95)
    phi1 = mu[:, 1] + t / e * (outcome - mu[:, 1])
    phi0 = mu[:, 0] + (1 - t) / (1 - e) * (outcome - mu[:, 0])
    # L large enough that every bracket is nonempty (a linear outcome model
    # has slope far below 50 per standard deviation on this design)
    L = 50.0
    lo, hi = (phi1 - phi0).copy(), (phi1 - phi0).copy()
    for i in np.flatnonzero(~inside):
        arm = 1 if e[i] < 0.05 else 0
        d = np.sqrt(((Z[inside] - Z[i]) ** 2).sum(1))
        lower = np.max(mu[inside, arm] - L * d)
        upper = np.min(mu[inside, arm] + L * d)
        assert lower <= upper
        if arm == 1:
            lo[i], hi[i] = lower - phi0[i], upper - phi0[i]
        else:
            lo[i], hi[i] = phi1[i] - upper, phi1[i] - lower
    row = est.sensitivity_curve([L]).iloc[0]
    assert_allclose(row.lower_bound, lo.mean(), rtol=1e-9)
    assert_allclose(row.upper_bound, hi.mean(), rtol=1e-9)
    assert_allclose(est.bias_bound(L), (hi.mean() - lo.mean()) / 2, rtol=1e-9)
    # Imbens-Manski: Phi(c + width / se) - Phi(-c) = 0.95, se the larger one
    se = max(row.lower_std_error, row.upper_std_error)
    c = optimize.brentq(
        lambda c: (
            stats.norm.cdf(c + (hi.mean() - lo.mean()) / se) - stats.norm.cdf(-c) - 0.95
        ),
        0.0,
        5.0,
    )
    assert_allclose(
        est.conf_int(lipschitz=L),
        (lo.mean() - c * row.lower_std_error, hi.mean() + c * row.upper_std_error),
        rtol=1e-7,
    )


def test_lipschitz_bounds_nested_and_breakdown(fitted_lipschitz):
    est = fitted_lipschitz
    grid = np.linspace(0, 10, 21)
    curve = est.sensitivity_curve(grid)
    # once no bracket is collapsed (L >= 2 here), the anchor margin only
    # widens the bounds
    narrow = clone(est).set_params(anchor_margin=0.0).fit(*_overlap_data())
    plain = narrow.sensitivity_curve(grid)
    free = grid >= 2
    assert np.all(curve.lower_bound[free] <= plain.lower_bound[free] + 1e-12)
    assert np.all(curve.upper_bound[free] >= plain.upper_bound[free] - 1e-12)
    assert curve.bias_bound.iloc[0] == 0.0
    assert np.all(np.diff(curve.lower_bound) <= 1e-12)
    assert np.all(np.diff(curve.upper_bound) >= -1e-12)
    assert np.all(curve.lower_std_error > 0)
    L_star = est.breakdown_lipschitz_
    assert 0 < L_star < np.inf
    lower, upper = est.conf_int(confidence_level=0.95, lipschitz=L_star)
    assert lower <= 1e-6 and upper >= 0
    lower, _ = est.conf_int(confidence_level=0.95, lipschitz=0.9 * L_star)
    assert lower > 0
    ax = est.plot()
    assert ax.get_xlabel() == "Lipschitz constant L"


def test_trimming_matches_brute_force(overlap_data, fitted_trimming):
    """Loop over outside units: 5 nearest overlap units by explicit distances."""
    X, y = overlap_data
    est = fitted_trimming
    outcome, t = y[:, 0], y[:, 1]
    e, mu = est.propensity_, est.outcome_predictions_
    Z = (X - X.mean(0)) / X.std(0)
    inside = (e >= 0.05) & (e <= 0.95)
    assert_allclose(est.overlap_mask_, inside)
    phi1 = mu[:, 1] + t / e * (outcome - mu[:, 1])
    phi0 = mu[:, 0] + (1 - t) / (1 - e) * (outcome - mu[:, 0])
    phi = np.column_stack([phi0, phi1])
    # trimmed AIPW on the overlap population
    assert_allclose(est.estimate_, np.mean((phi1 - phi0)[inside]), rtol=RTOL)
    L, K, n = 1.5, 5, len(t)
    inside_idx = np.flatnonzero(inside)
    own, credit, half = phi1 - phi0, np.zeros(n), np.zeros(n)
    for i in np.flatnonzero(~inside):
        arm = 1 if e[i] < 0.05 else 0
        d = np.sqrt(((Z[inside] - Z[i]) ** 2).sum(1))
        nearest = np.argsort(d)[:K]
        half[i] = L * d[nearest].mean()
        own[i] = -phi0[i] if arm == 1 else phi1[i]
        for j in inside_idx[nearest]:
            credit[j] += (1 if arm == 1 else -1) * phi[j, arm] / K
    total = own + credit
    assert_allclose(est.bias_bound(L), half.sum() / n, rtol=1e-9)
    se = np.sqrt(np.mean((total - total.mean()) ** 2) / n)
    # bias-aware critical value: 0.95 quantile of |N(B/se, 1)| (Armstrong-Kolesar)
    crit = stats.foldnorm.ppf(0.95, half.sum() / n / se) * se
    assert_allclose(
        est.conf_int(lipschitz=L),
        (total.mean() - crit, total.mean() + crit),
        rtol=1e-9,
    )


def test_trimming_bound_monotone_and_breakdown(fitted_trimming):
    est = fitted_trimming
    grid = np.linspace(0, 5, 11)
    bounds = est.bias_bound(grid)
    assert bounds[0] == 0.0
    assert np.all(np.diff(bounds) >= -1e-12)
    L_star = est.breakdown_lipschitz_
    assert 0 < L_star < np.inf
    lower, upper = est.conf_int(confidence_level=0.95, lipschitz=L_star)
    assert lower <= 1e-6 and upper >= 0
    lower, _ = est.conf_int(confidence_level=0.95, lipschitz=0.9 * L_star)
    assert lower > 0
    curve = est.sensitivity_curve(grid)
    assert list(curve.columns)[:3] == ["lipschitz", "estimate", "bias_bound"]
    ax = est.plot()
    assert ax.get_xlabel() == "Lipschitz constant L"


@pytest.mark.slow
def test_trimming_covers_truth_at_true_lipschitz():
    # make_limited_overlap: ATE = 1; |grad mu_1| <= sqrt(9 + 1) in raw units,
    # so L = 2 per standard deviation (sd of U[-1, 1] is 0.577) is valid.
    X, y = make_limited_overlap(n_samples=2000, random_state=1)
    om, pm = _spline_models()
    est = TrimmingSensitivity(om, pm, threshold=0.05, random_state=0).fit(X, y)
    lower, upper = est.conf_int(lipschitz=2.0)
    assert lower < 1.0 < upper


def test_trimming_covers_truth_at_true_lipschitz_small():
    # the fast version of the test above: n = 600, 20 bootstrap draws
    X, y = make_limited_overlap(n_samples=600, random_state=1)
    om, pm = _spline_models()
    est = TrimmingSensitivity(
        om, pm, threshold=0.05, n_bootstrap=20, random_state=0
    ).fit(X, y)
    lower, upper = est.conf_int(lipschitz=2.0)
    assert lower < 1.0 < upper


def _overlap_interval_draws(n_draws, threshold, models):
    """Trimmed estimate, its SE and its target over simulated draws.

    make_limited_overlap draws Y(1) - Y(0) = 1 + X_1 exactly, so the sample
    effect over the estimated region is the mean of 1 + X_1 over
    ``overlap_mask_`` (known truth per draw).
    """
    rows = []
    for r in range(n_draws):
        X, y, po, _ = make_limited_overlap(
            n_samples=1000, return_potential_outcomes=True, random_state=1000 + r
        )
        est = TrimmingSensitivity(
            *models(), threshold=threshold, extension="knn", random_state=r
        ).fit(X, y)
        target = np.mean(po[est.overlap_mask_, 1] - po[est.overlap_mask_, 0])
        rows.append((est.estimate_, est.stderr_, target))
    return np.array(rows).T


@pytest.mark.slow
def test_trimming_stderr_matches_spread_of_error():
    # Default nuisances, threshold 0.1 (docs/user_guide/overlap.rst table,
    # 400 draws: SE 0.111, sd of the error 0.122, bias +0.035). Over 60
    # draws the sd of the error is known to about +-10%.
    estimate, stderr, target = _overlap_interval_draws(60, 0.1, lambda: (None, None))
    error = estimate - target
    ratio = stderr.mean() / error.std(ddof=1)
    assert 0.7 < ratio < 1.25
    assert abs(error.mean()) < 0.08


def test_trimming_stderr_matches_spread_of_error_few_draws():
    # the fast version of the test above: over 15 draws the sd of the error
    # is known to about +-20%, its mean to about +-0.035
    estimate, stderr, target = _overlap_interval_draws(15, 0.1, lambda: (None, None))
    error = estimate - target
    ratio = stderr.mean() / error.std(ddof=1)
    assert 0.6 < ratio < 1.5
    assert abs(error.mean()) < 0.12


def test_trimming_bootstrap_stderr(overlap_data, fitted_trimming, fitted_lipschitz):
    # knn has no bootstrap; the lipschitz bootstrap re-chooses the region, so
    # on this limited-overlap draw its SE is finite and reproducible
    assert fitted_trimming.bootstrap_stderr_ is None
    se = fitted_lipschitz.bootstrap_stderr_
    assert np.isfinite(se) and se > 0
    X, y = overlap_data
    again = TrimmingSensitivity(threshold=0.05, n_bootstrap=30, random_state=0)
    assert again.fit(X, y).bootstrap_stderr_ == se


def _bootstrap_and_fixed_region_se(n_draws, n_bootstrap):
    rows = []
    for r in range(n_draws):
        X, y = make_limited_overlap(n_samples=1000, random_state=1000 + r)
        est = TrimmingSensitivity(
            *_spline_models(), threshold=0.05, n_bootstrap=n_bootstrap, random_state=r
        ).fit(X, y)
        rows.append((est.stderr_, est.bootstrap_stderr_))
    return np.array(rows).T


def test_trimming_bootstrap_stderr_exceeds_fixed_region_se_few_draws():
    # the fast version of the test below: 2 draws of 6 bootstrap refits
    stderr, boot = _bootstrap_and_fixed_region_se(2, 6)
    assert boot.mean() > 1.2 * stderr.mean()


@pytest.mark.slow
def test_trimming_bootstrap_stderr_exceeds_fixed_region_se():
    # Spline nuisances, threshold 0.05 on the propensity's flat floor: the
    # estimated region swings between draws, which the bootstrap sees and the
    # influence function does not (overlap.rst, 100 draws: bootstrap SE
    # 0.170, influence SE 0.104, sd of the error 0.185). The coverage check is
    # in test_coverage_slow.py.
    stderr, boot = _bootstrap_and_fixed_region_se(5, 15)
    assert boot.mean() > 1.2 * stderr.mean()


def test_trimming_bad_input(overlap_data):
    X, y = overlap_data
    est = TrimmingSensitivity(threshold=0.05, n_bootstrap=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="lipschitz must be >= 0"):
        est.conf_int(lipschitz=-1.0)
    with pytest.raises(ValueError, match="threshold"):
        TrimmingSensitivity(threshold=0.7).fit(X, y)


def test_worst_case_matches_cvar_definition():
    X, y = make_limited_overlap(n_samples=1000, overlap=0.1, random_state=0)
    est = WorstCaseTreatmentEffect(subgroup_features=[0], mass=0.2, random_state=0).fit(
        X, y
    )
    tau, phi = est.effect_predictions_, est.pseudo_outcomes_
    # plug-in: mean of the smallest 20% of the predicted effects (n*0.2 = 200)
    assert_allclose(est.plugin_estimate_, np.sort(tau)[:200].mean(), rtol=RTOL)
    # debiased: the same units, their pseudo-outcomes instead of predictions
    tail = np.argsort(tau)[:200]
    assert_allclose(est.estimate_, phi[tail].mean(), rtol=1e-9)
    assert_allclose(
        est.worst_case_weights_, CVaR(alpha=0.2).worst_case_weights(-tau), rtol=RTOL
    )
    # mass = 1 is the AIPW average effect
    curve = est.worst_case_curve([1.0])
    aipw = AIPW(random_state=0).fit(X, y)
    assert_allclose(curve["estimate"].iloc[0], aipw.estimate_, rtol=1e-9)


def test_worst_case_recovers_truth():
    # tau(Z) = 1 + X_1 with X_1 ~ U[-1, 1]: lower CVaR at mass a is a (closed
    # form: 1 + E[X_1 | X_1 < 2a - 1] = a).
    X, y = make_limited_overlap(n_samples=3000, overlap=0.1, random_state=2)
    om, pm = _spline_models()
    est = WorstCaseTreatmentEffect(
        om, pm, subgroup_features=[0], mass=0.5, random_state=0
    ).fit(X, y)
    lower, upper = est.conf_int(confidence_level=0.99)
    assert lower < 0.5 < upper
    assert abs(est.estimate_ - 0.5) < 4 * est.stderr_
    table = est.summary()
    assert table.index[0] == "worst-case effect"


def test_worst_case_bad_input():
    X, y = make_limited_overlap(n_samples=200, overlap=0.1, random_state=0)
    with pytest.raises(ValueError, match="subgroup_features"):
        WorstCaseTreatmentEffect(subgroup_features=[5]).fit(X, y)
    with pytest.raises(ValueError, match="mass"):
        WorstCaseTreatmentEffect(mass=0.0).fit(X, y)
    est = WorstCaseTreatmentEffect(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="masses"):
        est.worst_case_curve([1.5])


def test_worst_case_subgroup_by_name():
    import pandas as pd

    X, y = make_limited_overlap(n_samples=300, overlap=0.1, random_state=0)
    frame = pd.DataFrame(X, columns=["x1", "x2"])
    by_name = WorstCaseTreatmentEffect(subgroup_features=["x1"], random_state=0)
    by_index = WorstCaseTreatmentEffect(subgroup_features=[0], random_state=0)
    assert_allclose(
        by_name.fit(frame, y).estimate_, by_index.fit(X, y).estimate_, rtol=RTOL
    )
