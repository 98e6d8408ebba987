"""Tests of make_target, the cross-fitting engine and the ATE estimators."""

import pickle
import warnings

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skcausal import AIPW, IPW, TMLE, CLearner, PlugIn, make_target
from skcausal.datasets import make_kang_schafer, make_limited_overlap

ESTIMATORS = [PlugIn, IPW, AIPW, TMLE, CLearner]
RTOL = 1e-8
ATOL_CONSTRAINT = 1e-8
# truth of make_limited_overlap: E[Y(1) - Y(0)] = E[1 + X_1] = 1 exactly
TRUE_ATE = 1.0


@pytest.fixture(scope="module")
def easy_data():
    return make_limited_overlap(n_samples=600, overlap=0.1, random_state=0)


def _manual_folds(t, n_splits=3, seed=0):
    """Deterministic folds, each with both arms."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(t.shape[0])
    fold_of = np.empty(t.shape[0], dtype=int)
    fold_of[order] = np.arange(t.shape[0]) % n_splits
    return [
        (np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
        for k in range(n_splits)
    ]


# -- make_target ------------------------------------------------------------
def test_make_target_packs_columns():
    y = make_target([1.0, 2.0, 3.0], [True, False, True])
    assert_allclose(y, [[1, 1], [2, 0], [3, 1]])


@pytest.mark.parametrize(
    "outcome, treatment, match",
    [
        ([1.0, 2.0], [0, 2], "binary"),
        ([1.0, np.nan], [0, 1], "NaN"),
        ([1.0, 2.0, 3.0], [0, 1], "inconsistent"),
        ([1.0, 2.0], [0.5, 1], "binary"),
    ],
)
def test_make_target_bad_input(outcome, treatment, match):
    with pytest.raises(ValueError, match=match):
        make_target(outcome, treatment)


# -- recovery of a known effect ---------------------------------------------
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_recovers_known_ate(Est):
    X, y = make_limited_overlap(n_samples=3000, overlap=0.1, random_state=2)
    est = Est(random_state=0).fit(X, y)
    if Est is PlugIn:
        # no first-order correction: only a loose check of the linear fit
        assert abs(est.estimate_ - TRUE_ATE) < 0.2
    else:
        assert abs(est.estimate_ - TRUE_ATE) < 4 * est.stderr_
        lower, upper = est.conf_int(confidence_level=0.99)
        assert lower < TRUE_ATE < upper


def test_kang_schafer_clearner_beats_aipw():
    # Cai et al. (C-Learner), Kang-Schafer, misspecified linear models, n=200:
    # C-Learner's error on E[Y(1)] = 210 is far below AIPW's on this draw.
    X, y = make_kang_schafer(n_samples=200, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        aipw = AIPW(random_state=0).fit(X, y)
        clearner = CLearner(random_state=0).fit(X, y)
    err_aipw = abs(aipw.potential_outcome_means_[1] - 210.0)
    err_c = abs(clearner.potential_outcome_means_[1] - 210.0)
    assert err_c < err_aipw


# -- independent references -------------------------------------------------
def test_aipw_matches_manual_computation(easy_data):
    X, y = easy_data
    outcome, t = y[:, 0], y[:, 1]
    folds = _manual_folds(t)
    est = AIPW(cv=folds).fit(X, y)
    phi = np.empty(len(t))
    for train, test in folds:
        e = LogisticRegression().fit(X[train], t[train]).predict_proba(X[test])[:, 1]
        mu = [
            LinearRegression()
            .fit(X[train][t[train] == a], outcome[train][t[train] == a])
            .predict(X[test])
            for a in (0, 1)
        ]
        tt, yy = t[test], outcome[test]
        phi[test] = (
            mu[1] - mu[0] + tt / e * (yy - mu[1]) - (1 - tt) / (1 - e) * (yy - mu[0])
        )
    assert_allclose(est.estimate_, phi.mean(), rtol=RTOL)
    assert_allclose(est.stderr_, phi.std() / np.sqrt(len(t)), rtol=RTOL)
    assert_allclose(est.influence_function_, phi - phi.mean(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("normalize", [True, False])
def test_ipw_matches_manual_computation(easy_data, normalize):
    X, y = easy_data
    outcome, t = y[:, 0], y[:, 1]
    est = IPW(normalize=normalize, random_state=0).fit(X, y)
    e = est.propensity_
    w1, w0 = t / e, (1 - t) / (1 - e)
    if normalize:
        ref = np.sum(w1 * outcome) / w1.sum() - np.sum(w0 * outcome) / w0.sum()
    else:
        ref = np.mean(w1 * outcome - w0 * outcome)
    assert_allclose(est.estimate_, ref, rtol=RTOL)


def test_clearner_linear_matches_cvxpy_primal(easy_data):
    X, y = easy_data
    outcome, t = y[:, 0], y[:, 1]
    folds = _manual_folds(t)
    est = CLearner(cv=folds).fit(X, y)
    e = est.propensity_
    for train, test in folds:
        for arm in (0, 1):
            mask = train[t[train] == arm]
            w = (t[test] == arm) / (e[test] if arm else 1 - e[test])
            beta, b0 = cp.Variable(X.shape[1]), cp.Variable()
            constraint = w @ (outcome[test] - X[test] @ beta - b0) == 0
            cp.Problem(
                cp.Minimize(cp.sum_squares(outcome[mask] - X[mask] @ beta - b0)),
                [constraint],
            ).solve()
            ref = X[test] @ beta.value + b0.value
            assert_allclose(
                est.outcome_predictions_[test, arm], ref, rtol=1e-5, atol=1e-6
            )


def test_clearner_ridge_matches_cvxpy_primal(easy_data):
    X, y = easy_data
    outcome, t = y[:, 0], y[:, 1]
    folds = _manual_folds(t, n_splits=2)
    alpha = 5.0
    est = CLearner(Ridge(alpha=alpha), cv=folds).fit(X, y)
    train, test = folds[0]
    mask = train[t[train] == 1]
    w = t[test] / est.propensity_[test]
    beta, b0 = cp.Variable(X.shape[1]), cp.Variable()
    objective = cp.sum_squares(outcome[mask] - X[mask] @ beta - b0)
    objective += alpha * cp.sum_squares(beta)
    cp.Problem(
        cp.Minimize(objective), [w @ (outcome[test] - X[test] @ beta - b0) == 0]
    ).solve()
    assert_allclose(
        est.outcome_predictions_[test, 1],
        X[test] @ beta.value + b0.value,
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "model",
    [
        None,
        LGBMRegressor(n_estimators=20, n_jobs=1, verbose=-1),
        RandomForestRegressor(n_estimators=10),
    ],
    ids=["linear", "lightgbm", "generic"],
)
def test_clearner_constraint_is_exact(easy_data, model):
    X, y = easy_data
    est = CLearner(model, random_state=0).fit(X, y)
    outcome, t, e, mu = y[:, 0], y[:, 1], est.propensity_, est.outcome_predictions_
    for test in est.fold_indices_:
        corr1 = np.mean(t[test] / e[test] * (outcome[test] - mu[test, 1]))
        corr0 = np.mean((1 - t[test]) / (1 - e[test]) * (outcome[test] - mu[test, 0]))
        assert_allclose([corr0, corr1], 0.0, atol=ATOL_CONSTRAINT)
    assert est.diagnostics_["constraint_residual"] < ATOL_CONSTRAINT
    # with a zero correction, the plug-in equals the one-step estimate
    phi_mean = est.potential_outcome_means_[1] - est.potential_outcome_means_[0]
    assert_allclose(est.estimate_, phi_mean, rtol=RTOL)


def test_clearner_skorch_backbone(easy_data):
    torch = pytest.importorskip("torch")
    skorch = pytest.importorskip("skorch")

    class MLP(torch.nn.Module):
        def __init__(self, hidden=8):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def forward(self, X):
            return self.net(X)

    net = skorch.NeuralNetRegressor(
        MLP, max_epochs=5, lr=0.05, batch_size=128, train_split=None, verbose=0
    )
    X, y = easy_data
    est = CLearner(net, random_state=0, cv=2).fit(X, y)
    assert est.diagnostics_["constraint_residual"] < ATOL_CONSTRAINT
    # the bias shift after each epoch keeps the float32 net on the constraint
    assert est.diagnostics_["constraint_violation_before_shift"] < 1e-4
    assert abs(est.estimate_ - TRUE_ATE) < 0.4
    again = CLearner(net, random_state=0, cv=2).fit(X, y)
    assert_allclose(again.estimate_, est.estimate_, rtol=1e-6)


@pytest.mark.parametrize("fluctuation", ["logistic", "linear"])
def test_tmle_solves_efficient_score(easy_data, fluctuation):
    X, y = easy_data
    est = TMLE(fluctuation=fluctuation, random_state=0).fit(X, y)
    assert est.diagnostics_["first_order_residual"] < 1e-8
    outcome, t, e = y[:, 0], y[:, 1], est.propensity_
    if fluctuation == "linear":
        # closed-form least-squares fluctuation of the treated arm
        h = 1 / e[t == 1]
        r = outcome[t == 1] - est.outcome_predictions_[t == 1, 1]
        assert_allclose(est.fluctuation_[1], h @ r / (h @ h), rtol=RTOL)


def test_plugin_s_learner_matches_treatment_coefficient(easy_data):
    # S-learner with a linear model: mu_1 - mu_0 is the treatment coefficient
    # of the fold's regression, so the estimate is their fold-size average.
    X, y = easy_data
    outcome, t = y[:, 0], y[:, 1]
    folds = _manual_folds(t)
    est = PlugIn(learner="S", cv=folds).fit(X, y)
    ref = 0.0
    for train, test in folds:
        fit = LinearRegression().fit(
            np.column_stack([X[train], t[train]]), outcome[train]
        )
        ref += fit.coef_[-1] * len(test) / len(t)
    assert_allclose(est.estimate_, ref, rtol=RTOL)
    mu = est.predict_potential_outcomes(X)
    assert mu.shape == (len(t), 2)


# -- scikit-learn integration -------------------------------------------------
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_treatment_keyword_equals_target(easy_data, Est):
    X, y = easy_data
    a = Est(random_state=0).fit(X, y)
    b = Est(random_state=0).fit(X, y[:, 0], treatment=y[:, 1])
    assert_allclose(a.estimate_, b.estimate_, rtol=RTOL)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_deterministic_clone_pickle(easy_data, Est):
    X, y = easy_data
    est = Est(random_state=3).fit(X, y)
    again = clone(est).fit(X, y)
    assert_allclose(est.estimate_, again.estimate_, rtol=0)
    restored = pickle.loads(pickle.dumps(est))
    assert_allclose(restored.score(X, y), est.score(X, y), rtol=RTOL)
    table = est.summary()
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["ATE", "E[Y(1)]", "E[Y(0)]"]
    assert_allclose(table.loc["ATE", "estimate"], est.estimate_)
    assert_allclose(table.loc["ATE", ["ci_lower", "ci_upper"]], est.conf_int())


def test_cross_validate_pipeline_gridsearch(easy_data):
    X, y = easy_data
    pipe = make_pipeline(StandardScaler(), AIPW(random_state=0))
    res = cross_validate(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert np.all(np.isfinite(res["test_score"]))
    pipe.fit(X, y)
    assert np.isfinite(pipe.score(X, y))
    search = GridSearchCV(
        AIPW(
            DecisionTreeRegressor(random_state=0), LogisticRegression(), random_state=0
        ),
        {"outcome_model__max_depth": [1, 3], "propensity_model__C": [0.01, 1.0]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    # depth 3 fits the sin/linear surfaces far better than a stump
    assert search.best_params_["outcome_model__max_depth"] == 3
    assert np.isfinite(search.best_estimator_.estimate_)


def test_score_is_minus_heldout_nuisance_loss(easy_data):
    X, y = easy_data
    est = AIPW(random_state=0).fit(X[:400], y[:400])
    Xt, yt = X[400:], y[400:]
    mu = est.predict_potential_outcomes(Xt)
    mse = np.mean((yt[:, 0] - np.where(yt[:, 1] == 1, mu[:, 1], mu[:, 0])) ** 2)
    e = np.mean([m.predict_proba(Xt)[:, 1] for m in est.propensity_models_], 0)
    logloss = -np.mean(yt[:, 1] * np.log(e) + (1 - yt[:, 1]) * np.log(1 - e))
    assert_allclose(est.score(Xt, yt), -(mse + logloss), rtol=RTOL)


# -- bad input ----------------------------------------------------------------
def test_bad_inputs(easy_data):
    X, y = easy_data
    bad = y.copy()
    bad[:, 1] = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="binary"):
        AIPW().fit(X, bad)
    with pytest.raises(ValueError, match="make_target"):
        AIPW().fit(X, y[:, 0])
    nan_y = y.copy()
    nan_y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AIPW().fit(X, nan_y)
    few = y.copy()
    few[:, 1] = 0
    few[:3, 1] = 1
    with pytest.raises(ValueError, match="arm 1 has 3 unit"):
        AIPW(cv=5).fit(X, few)
    t = y[:, 1]
    only_control = np.flatnonzero(t == 0)
    folds = [
        (np.setdiff1d(np.arange(len(t)), only_control), only_control),
        (only_control, np.setdiff1d(np.arange(len(t)), only_control)),
    ]
    with pytest.raises(ValueError, match="no units of treatment arm"):
        AIPW(cv=folds).fit(X, y)
    with pytest.raises(ValueError, match="confidence_level"):
        AIPW().fit(X, y).conf_int(confidence_level=1.5)


def test_extreme_propensities_clip_or_raise():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(300, 1))
    t = (X[:, 0] > 0).astype(float)  # perfectly separated: e(x) in {0, 1}
    t[:5] = 1 - t[:5]  # both arms on both sides, but trees still give 0/1
    y = make_target(X[:, 0] + t, t)
    tree = DecisionTreeClassifier(random_state=0)
    with pytest.raises(ValueError, match="exactly 0 or 1"):
        AIPW(propensity_model=tree, clip=0.0, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="clipped"):
        est = AIPW(propensity_model=tree, clip=0.01, random_state=0).fit(X, y)
    assert np.isfinite(est.estimate_) and np.isfinite(est.stderr_)
    assert est.diagnostics_["n_clipped"] > 0
    assert est.propensity_.min() >= 0.01


@pytest.mark.parametrize("Est", [AIPW, CLearner])
def test_n_jobs_gives_same_result(easy_data, Est):
    X, y = easy_data
    one = Est(random_state=0, n_jobs=1).fit(X, y)
    two = Est(random_state=0, n_jobs=2).fit(X, y)
    assert_allclose(one.estimate_, two.estimate_, rtol=RTOL)
    assert_allclose(one.influence_function_, two.influence_function_, atol=1e-12)


def test_dataframe_input_and_feature_names(easy_data):
    X, y = easy_data
    frame = pd.DataFrame(X, columns=["age", "dose"])
    est = AIPW(random_state=0).fit(frame, y)
    assert list(est.feature_names_in_) == ["age", "dose"]
    assert est.predict_potential_outcomes(frame).shape == (len(y), 2)


def test_tmle_warns_when_fluctuation_does_not_converge(easy_data):
    from sklearn.exceptions import ConvergenceWarning

    X, y = easy_data
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        TMLE(max_iter=1, tol=1e-300, random_state=0).fit(X, y)


def test_in_sample_split_is_full_sample_aipw():
    # manual full-sample (not cross-fitted) AIPW of E[Y(1)]: the classical
    # doubly robust estimator of Kang and Schafer's study
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from skcausal import AIPW, InSampleSplit
    from skcausal.datasets import make_kang_schafer

    X, y = make_kang_schafer(n_samples=200, random_state=3)
    outcome, t = y[:, 0], y[:, 1]
    est = AIPW(cv=InSampleSplit(n_splits=3), clip=1e-8).fit(X, y)
    e = LogisticRegression().fit(X, t).predict_proba(X)[:, 1]
    mu1 = LinearRegression().fit(X[t == 1], outcome[t == 1]).predict(X)
    phi1 = mu1 + t / e * (outcome - mu1)
    assert_allclose(est.potential_outcome_means_[1], phi1.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="n_splits"):
        AIPW(cv=InSampleSplit(n_splits=1)).fit(X, y)
