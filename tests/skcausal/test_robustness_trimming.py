"""Issue 15 for TrimmingSensitivity and WorstCaseTreatmentEffect.

- Conventions: interval levels are ``confidence_level`` (the old ``alpha``,
  keyword or first positional argument, keeps working with a FutureWarning),
  intervals come back as ``ConfidenceInterval`` (``low`` / ``high``), and
  ``TrimmingSensitivity(alpha=)`` is renamed ``confidence_level``.
- The worst-case effect through the engine's debiased CVaR step, checked
  against a brute-force sort of the predicted effects (ties, zero weights).
- The knn extension with frequency weights (zero weights included) against a
  brute-force loop over the outside units.
- Issue 14 memory: tracemalloc peak of ``fit`` as a multiple of the input
  (X, outcome and treatment).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from skcausal import TrimmingSensitivity, WorstCaseTreatmentEffect
from skcausal.datasets import make_limited_overlap
from skrobust.utils import ConfidenceInterval
from tests._memory import peak_bytes


def _quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y, **kw)


@pytest.fixture(scope="module")
def data():
    return make_limited_overlap(n_samples=400, random_state=0)


@pytest.fixture(scope="module")
def knn(data):
    return _quiet_fit(
        TrimmingSensitivity(threshold=0.05, extension="knn", random_state=0), *data
    )


@pytest.fixture(scope="module")
def lipschitz(data):
    return _quiet_fit(
        TrimmingSensitivity(threshold=0.05, n_bootstrap=6, cv=3, random_state=0),
        *data,
    )


@pytest.fixture(scope="module")
def worst(data):
    return _quiet_fit(WorstCaseTreatmentEffect(random_state=0), *data)


# -------------------------------------------------------------- conventions
def test_conf_int_takes_confidence_level_and_returns_named_interval(knn, worst):
    # reference: the closed-form normal interval estimate -/+ z * stderr
    for est in (knn, worst):
        for level in (0.8, 0.95, 0.99):
            ci = est.conf_int(confidence_level=level)
            assert isinstance(ci, ConfidenceInterval)
            z = stats.norm.ppf(0.5 + level / 2)
            assert_allclose(
                (ci.low, ci.high),
                (est.estimate_ - z * est.stderr_, est.estimate_ + z * est.stderr_),
                rtol=1e-12,
            )
    ci = knn.conf_int(0.9, lipschitz=1.0)
    assert isinstance(ci, ConfidenceInterval) and ci.low < ci.high


@pytest.mark.parametrize("which", ["knn", "lipschitz", "worst"])
def test_old_alpha_still_works_and_warns(request, which):
    est = request.getfixturevalue(which)
    new = est.conf_int(confidence_level=0.9)
    with pytest.warns(FutureWarning, match="confidence_level=0.9"):
        assert est.conf_int(alpha=0.1) == pytest.approx(new, rel=1e-12)
    # the old first positional argument was alpha: 0.1 still means 90%
    with pytest.warns(FutureWarning, match="old alpha"):
        assert est.conf_int(0.1) == pytest.approx(new, rel=1e-12)
    if isinstance(est, TrimmingSensitivity):
        grid = [0.0, 1.0]
        ref = est.sensitivity_curve(grid, confidence_level=0.9)
        with pytest.warns(FutureWarning):
            old = est.sensitivity_curve(grid, alpha=0.1)
        assert_allclose(old.to_numpy(), ref.to_numpy(), rtol=1e-12)
        with pytest.warns(FutureWarning):
            old_ci = est.conf_int(0.1, 1.0)
        assert old_ci == pytest.approx(est.conf_int(0.9, 1.0), rel=1e-12)
    else:
        ref = est.worst_case_curve([0.2, 1.0], confidence_level=0.9)
        with pytest.warns(FutureWarning):
            old = est.worst_case_curve([0.2, 1.0], alpha=0.1)
        assert_allclose(old.to_numpy(), ref.to_numpy(), rtol=1e-12)
        with pytest.warns(FutureWarning):
            old_table = est.summary(alpha=0.1)
        table = est.summary(confidence_level=0.9)
        assert_allclose(old_table.to_numpy(), table.to_numpy(), rtol=1e-12)
        assert_allclose(
            table.loc["worst-case effect", ["ci_lower", "ci_upper"]].to_numpy(float),
            est.conf_int(0.9),
            rtol=1e-12,
        )


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, float("nan"), "0.9"])
def test_bad_confidence_level_is_rejected(knn, bad):
    with pytest.raises(ValueError, match="confidence_level"):
        knn.conf_int(confidence_level=bad)
    with pytest.raises(ValueError, match="confidence_level"):
        knn.sensitivity_curve([1.0], confidence_level=bad)


def test_trimming_parameter_alpha_renamed_confidence_level(data):
    X, y = data
    kw = dict(threshold=0.05, extension="knn", random_state=0)
    new = _quiet_fit(TrimmingSensitivity(confidence_level=0.8, **kw), X, y)
    with pytest.warns(FutureWarning, match="confidence_level=0.8"):
        old = _quiet_fit(TrimmingSensitivity(alpha=0.2, **kw), X, y)
    assert old.breakdown_lipschitz_ == pytest.approx(
        new.breakdown_lipschitz_, rel=1e-12
    )
    # the level changes the breakdown constant: a wider interval covers zero
    # at a smaller L
    wide = _quiet_fit(TrimmingSensitivity(confidence_level=0.99, **kw), X, y)
    assert wide.breakdown_lipschitz_ < new.breakdown_lipschitz_
    # at L*, the interval at that level just reaches zero (the bisection's
    # own relative tolerance is 1e-6)
    ci = new.conf_int(0.8, lipschitz=new.breakdown_lipschitz_)
    assert ci.low <= 0.0 <= ci.high
    below = new.conf_int(0.8, lipschitz=new.breakdown_lipschitz_ * (1 - 1e-4))
    assert not below.low <= 0.0 <= below.high
    assert TrimmingSensitivity().get_params()["alpha"] == "deprecated"
    with pytest.raises(ValueError, match="alpha"):
        TrimmingSensitivity(alpha=1.5).fit(X, y)


# ------------------------------------------------- worst case: brute force
def _brute_force_lower_cvar(tau, phi, mass, w):
    """Debiased lower CVaR by sorting: the smallest ``mass`` of weight.

    Independent of skrobust.ambiguity: the units sorted by predicted effect,
    whole weights taken until the mass is reached and the value at risk's
    tied group sharing the rest in proportion to the weights.
    """
    p = w / w.sum()
    order = np.argsort(tau, kind="stable")
    values = np.unique(tau[p > 0])
    taken = 0.0
    q = np.zeros_like(tau)
    for v in values:
        group = (tau == v) & (p > 0)
        mass_v = p[group].sum()
        if taken + mass_v >= mass * (1 - 1e-12):
            share = (mass - taken) / mass_v
            q[group] = p[group] * share / mass
            eta = v
            break
        q[group] = p[group] / mass
        taken += mass_v
    del order
    psi = np.where(
        p > 0,
        eta + np.divide(q, p, where=p > 0, out=np.zeros_like(q)) * (phi - eta),
        eta,
    )
    value = float(p @ psi)
    plug_in = float(q @ tau)
    return value, psi - value, plug_in, eta, q


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=8, max_value=40),
    st.floats(min_value=0.05, max_value=1.0),
    st.integers(min_value=0, max_value=2**16),
    st.booleans(),
)
def test_worst_case_matches_brute_force(n, mass, seed, tied):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    t = np.r_[0.0, 1.0, 0.0, 1.0, rng.integers(0, 2, n - 4).astype(float)]
    outcome = X[:, 0] * t + rng.normal(size=n)
    y = np.column_stack([outcome, t])
    w = rng.integers(0, 4, n).astype(float)
    w[:4] = 1.0
    if tied:
        # a constant effect model: every predicted effect ties per fold
        from sklearn.dummy import DummyRegressor

        effect_model = DummyRegressor()
    else:
        effect_model = None
    est = _quiet_fit(
        WorstCaseTreatmentEffect(
            effect_model=effect_model, mass=mass, cv=2, random_state=seed
        ),
        X,
        y,
        sample_weight=w,
    )
    tau, phi = est.effect_predictions_, est.pseudo_outcomes_
    value, infl, plug_in, eta, q = _brute_force_lower_cvar(tau, phi, mass, w)
    scale = max(1.0, np.max(np.abs(phi)))
    assert_allclose(est.estimate_, value, rtol=1e-9, atol=1e-12 * scale)
    assert_allclose(est.plugin_estimate_, plug_in, rtol=1e-9, atol=1e-12 * scale)
    assert_allclose(est.value_at_risk_, eta, rtol=1e-12, atol=1e-15 * scale)
    assert_allclose(est.worst_case_weights_, q, rtol=1e-9, atol=1e-12)
    keep = w > 0
    assert_allclose(
        est.influence_function_[keep], infl[keep], rtol=1e-9, atol=1e-9 * scale
    )


def test_worst_case_effect_models_are_plain_linear_regressions(worst, data):
    # the default effect model is fitted without a second copy of the rows,
    # and handed back as LinearRegression(): a refit copies the user's input
    X, y = data
    for model in worst.effect_models_:
        assert model.get_params()["copy_X"] is True
    before = X.copy()
    worst.effect_models_[0].fit(X, y[:, 0])
    np.testing.assert_array_equal(X, before)


# ----------------------------------------------------- knn: brute force
def test_knn_with_weights_matches_brute_force(data):
    """Loop over outside units, frequency weights with zeros (own reference)."""
    X, y = data
    n = X.shape[0]
    w = np.random.default_rng(3).integers(0, 3, n).astype(float)
    K, L = 7, 0.8
    est = _quiet_fit(
        TrimmingSensitivity(
            threshold=0.05, extension="knn", n_neighbors=K, random_state=0
        ),
        X,
        y,
        sample_weight=w,
    )
    outcome, t = y[:, 0], y[:, 1]
    e, mu = est.propensity_, est.outcome_predictions_
    mean = np.average(X, axis=0, weights=w)
    sd = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))
    Z = (X - mean) / sd
    inside = (e >= 0.05) & (e <= 0.95)
    phi1 = mu[:, 1] + t / e * (outcome - mu[:, 1])
    phi0 = mu[:, 0] + (1 - t) / (1 - e) * (outcome - mu[:, 0])
    phi = np.column_stack([phi0, phi1])
    inside_idx = np.flatnonzero(inside)
    own, credit, half = phi1 - phi0, np.zeros(n), np.zeros(n)
    nearest_distance = np.zeros(n)
    for i in np.flatnonzero(~inside):
        arm = 1 if e[i] < 0.05 else 0
        d = np.sqrt(((Z[inside] - Z[i]) ** 2).sum(1))
        nearest = np.argsort(d, kind="stable")[:K]
        nearest_distance[i] = d[nearest[0]]
        half[i] = L * d[nearest].mean()
        own[i] = -phi0[i] if arm == 1 else phi1[i]
        for j in inside_idx[nearest]:
            credit[j] += (1 if arm == 1 else -1) * w[i] * phi[j, arm] / K
    total = own + np.divide(credit, w, out=np.zeros(n), where=w > 0)
    estimate = w @ total / w.sum()
    se = np.sqrt(w @ (total - estimate) ** 2) / w.sum()
    bias = w @ half / w.sum()
    row = est.sensitivity_curve([L]).iloc[0]
    assert_allclose(row.estimate, estimate, rtol=1e-9)
    assert_allclose(row.std_error, se, rtol=1e-9)
    assert_allclose(row.bias_bound, bias, rtol=1e-9)
    crit = stats.foldnorm.ppf(0.95, bias / se) * se
    assert_allclose(est.conf_int(lipschitz=L), (estimate - crit, estimate + crit))
    assert_allclose(est.extrapolation_distance_, nearest_distance, atol=1e-12)


# --------------------------------------------------------------- memory
# tracemalloc peak of fit / input (X, outcome, treatment) on
# make_limited_overlap(n, n_features=2), default nuisance models, after a
# warm-up fit (imports): (before, bound now), measured before -> after
# this change: WorstCase 4.19x -> 3.48x (n=2e4; 4.30 -> 3.58 at 1e4, 4.10 ->
# 3.38 at 1e5), knn 6.12x -> 4.71x (n=8000; 5.97 -> 4.66 at 1e4, 5.11 -> 3.77
# at 1e5). The public per-unit attributes alone hold 2.5x (WorstCase) and
# 2.1x (knn) of this input at d=2, and the default nuisance and effect
# models' own fits add their rows and buffers, so 3x is out of reach at d=2.
MEMORY = [
    ("WorstCase", 20000, lambda: WorstCaseTreatmentEffect(random_state=0), 4.19, 3.65),
    (
        "TrimmingKnn",
        8000,
        lambda: TrimmingSensitivity(extension="knn", random_state=0),
        6.12,
        5.1,
    ),
    # the bootstrap refits run before the standardized covariates exist and
    # each draw is reduced fold by fold; the bounds' rows per L keep no
    # per-side copies: 11.58x -> 10.5x here (n=1500, 4 draws; 8.53x ->
    # 7.25x at n=3000 with 8 draws, 9.55x -> 7.97x at n=1e4 with 100). Its
    # float32 deviations at the active anchors (4 n_bootstrap n_anchors
    # bytes) stay, as the bootstrap's design.
    (
        "TrimmingLipschitz",
        1500,
        lambda: TrimmingSensitivity(
            n_bootstrap=4, threshold=0.05, cv=3, random_state=0
        ),
        11.58,
        11.1,
    ),
]


@pytest.fixture(scope="module")
def warmed():
    X, y = make_limited_overlap(n_samples=300, random_state=1)
    for est in (
        WorstCaseTreatmentEffect(random_state=0),
        TrimmingSensitivity(extension="knn", random_state=0),
        TrimmingSensitivity(n_bootstrap=3, random_state=0),
    ):
        _quiet_fit(est, X, y)


@pytest.mark.parametrize(
    "n, make, before, bound", [m[1:] for m in MEMORY], ids=[m[0] for m in MEMORY]
)
def test_fit_peak_memory(warmed, n, make, before, bound):
    X, y = make_limited_overlap(n_samples=n, random_state=0)
    size = X.nbytes + y.nbytes
    est = make()
    assert peak_bytes(lambda: _quiet_fit(est, X, y)) < bound * size < before * size


def test_trimming_fit_holds_no_array_of_unit_weights(knn, lipschitz):
    # unit weights are a broadcast view (before: an array of n ones, kept for
    # the estimator's life)
    for est in (knn, lipschitz):
        assert est._sample_weight.strides == (0,)
    # the knn state is three numbers (before: two arrays of n floats)
    assert len(knn._knn) == 3 and all(np.isscalar(v) for v in knn._knn)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99])
def test_imbens_manski_point_identified(level):
    # width 0: the interval is the two-sided normal one. Before: at level 0.9
    # gap(z_two) rounded to -1e-16, and brentq raised "f(a) and f(b) must
    # have different signs" (seen on sensitivity_curve([0.0, ...]) at 0.9).
    from skcausal._trimming_bounds import _imbens_manski

    z = stats.norm.ppf(0.5 + level / 2)
    assert_allclose(
        _imbens_manski(1.0, 1.0, 0.3, 0.3, 1 - level),
        (1.0 - z * 0.3, 1.0 + z * 0.3),
        rtol=1e-9,
    )
    # a wide identified set: the one-sided value (Imbens-Manski's limit)
    z_one = stats.norm.ppf(level)
    assert_allclose(
        _imbens_manski(0.0, 100.0, 0.3, 0.2, 1 - level),
        (-z_one * 0.3, 100.0 + z_one * 0.2),
        rtol=1e-9,
    )


@pytest.mark.parametrize(
    "make, before",
    [
        (lambda: WorstCaseTreatmentEffect(random_state=0), 3.04),
        (lambda: TrimmingSensitivity(extension="knn", random_state=0), 2.94),
    ],
    ids=["WorstCase", "TrimmingKnn"],
)
def test_fit_peak_memory_at_most_3x_with_ten_features(warmed, make, before):
    # issue 14's target, peak <= 3x the input, where the input is not
    # dwarfed by the per-unit attributes (d=10, n=1e4): measured 3.04x ->
    # 2.27x (WorstCase; 2.97x -> 2.19x at n=1e5) and 2.94x -> 2.41x (knn)
    X, y = make_limited_overlap(n_samples=10000, n_features=10, random_state=0)
    size = X.nbytes + y.nbytes
    est = make()
    assert peak_bytes(lambda: _quiet_fit(est, X, y)) < 2.7 * size < before * size
