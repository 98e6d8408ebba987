"""Tests of the DRO LightGBM estimators (skrobust.ensemble)."""

import pickle

import lightgbm as lgb
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from skrobust.ambiguity import KL, ChiSquare, CVaR
from skrobust.ensemble import DROLGBMClassifier, DROLGBMRegressor

# LightGBM's own objective and our custom one take the same Newton steps; the
# classification scores agree to rounding, the regression ones to LightGBM's
# float32 storage of the labels (its boost_from_average mean).
RTOL_CLF = 1e-10
RTOL_REG = 1e-5
N_ROUNDS = 15


def _plain_params():
    return {"n_estimators": N_ROUNDS, "random_state": 0, "verbose": -1, "n_jobs": 1}


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, flip_y=0.05, random_state=0)


@pytest.fixture(scope="module")
def multiclass():
    return make_classification(
        n_samples=300, n_classes=3, n_informative=4, flip_y=0.05, random_state=1
    )


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=300, n_features=5, noise=10.0, random_state=0)
    # a minority region with a shifted target: the average fit ignores it
    return X, y + 30.0 * (X[:, 0] > 1.2)


@pytest.mark.parametrize("data", ["binary", "multiclass"])
def test_radius_zero_is_lightgbm_classifier(data, request):
    # reference: lightgbm.LGBMClassifier with its built-in binary / multiclass
    # objective and boost_from_average, same trees parameters
    X, y = request.getfixturevalue(data)
    ours = DROLGBMClassifier(ChiSquare(radius=0.0), n_estimators=N_ROUNDS)
    ours.set_params(random_state=0).fit(X, y)
    plain = lgb.LGBMClassifier(**_plain_params()).fit(X, y)
    assert_allclose(ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF)
    assert_allclose(ours.robust_risk_, ours.train_loss_, rtol=RTOL_CLF)


def test_radius_zero_is_lightgbm_with_sample_weight(binary):
    # reference: LightGBM multiplies gradients and hessians by the weights
    X, y = binary
    weight = np.random.default_rng(0).uniform(0.2, 3.0, size=y.shape[0])
    ours = DROLGBMClassifier(CVaR(alpha=1.0), n_estimators=N_ROUNDS, random_state=0)
    ours.fit(X, y, sample_weight=weight)
    plain = lgb.LGBMClassifier(**_plain_params()).fit(X, y, sample_weight=weight)
    # LightGBM stores the weights in float32
    assert_allclose(ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_REG)


def test_radius_zero_is_lightgbm_regressor(regression):
    X, y = regression
    ours = DROLGBMRegressor(KL(radius=0.0), n_estimators=N_ROUNDS, random_state=0)
    plain = lgb.LGBMRegressor(**_plain_params()).fit(X, y)
    assert_allclose(ours.fit(X, y).predict(X), plain.predict(X), rtol=RTOL_REG)


@pytest.mark.parametrize(
    "data, ambiguity",
    [
        ("binary", ChiSquare(radius=0.3)),
        ("binary", CVaR(alpha=0.2)),
        ("multiclass", CVaR(alpha=0.1)),
        ("multiclass", KL(radius=0.3)),
        ("multiclass", ChiSquare(radius=0.5)),
    ],
)
def test_robust_risk_below_plain_lightgbm_classifier(data, ambiguity, request):
    # the robust training risk of the DRO boosting beats plain LightGBM's
    # robust risk after the same number of rounds
    X, y = request.getfixturevalue(data)
    ours = DROLGBMClassifier(ambiguity, n_estimators=N_ROUNDS, random_state=0)
    ours.fit(X, y)
    plain = lgb.LGBMClassifier(**_plain_params()).fit(X, y)
    losses = -np.log(plain.predict_proba(X)[np.arange(y.shape[0]), y])
    assert ours.robust_risk_ < ambiguity.risk(losses)
    # our reported risk is the risk of our predictions
    ours_losses = -ours.predict_log_proba(X)[np.arange(y.shape[0]), y]
    assert_allclose(ours.robust_risk_, ambiguity.risk(ours_losses), rtol=1e-12)


@pytest.mark.parametrize(
    "ambiguity", [ChiSquare(radius=0.5), KL(radius=0.5), CVaR(alpha=0.1)]
)
def test_robust_risk_below_plain_lightgbm_regressor(ambiguity, regression):
    X, y = regression
    ours = DROLGBMRegressor(ambiguity, n_estimators=N_ROUNDS, random_state=0)
    ours.fit(X, y)
    plain = lgb.LGBMRegressor(**_plain_params()).fit(X, y)
    assert ours.robust_risk_ < ambiguity.risk(0.5 * (plain.predict(X) - y) ** 2)
    assert_allclose(ours.robust_risk_, ambiguity.risk(0.5 * (ours.predict(X) - y) ** 2))


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_other_regression_losses_lower_their_robust_risk(loss, regression):
    X, y = regression
    ambiguity = ChiSquare(radius=0.5)
    short = DROLGBMRegressor(ambiguity, loss=loss, n_estimators=2, random_state=0)
    long = clone(short).set_params(n_estimators=30)
    assert long.fit(X, y).robust_risk_ < short.fit(X, y).robust_risk_
    residual = np.abs(long.predict(X) - y)
    if loss == "absolute_error":
        losses = residual
    else:  # Huber with delta = 1
        losses = np.where(residual <= 1, 0.5 * residual**2, residual - 0.5)
    assert_allclose(long.robust_risk_, ambiguity.risk(losses))


def test_absolute_error_starts_at_weighted_median():
    X = np.arange(5.0).reshape(-1, 1)
    y = np.array([0.0, 1.0, 2.0, 10.0, 20.0])
    reg = DROLGBMRegressor(CVaR(alpha=1.0), loss="absolute_error", n_estimators=1)
    reg.fit(X, y, sample_weight=[1, 1, 1, 1, 1])
    assert_allclose(reg.init_score_, [2.0])
    reg.fit(X, y, sample_weight=[1, 1, 1, 1, 10])
    assert_allclose(reg.init_score_, [20.0])


@pytest.mark.parametrize("ambiguity", [ChiSquare(radius=2.0), CVaR(alpha=0.3)])
def test_constant_features_give_the_robust_constant(ambiguity):
    # reference: the minimax constant of the squared loss on y in {0, 1, 5}
    # under a set whose worst case is the max loss is the midrange 2.5
    X = np.zeros((3, 2))
    y = np.array([0.0, 1.0, 5.0])
    reg = DROLGBMRegressor(ambiguity, n_estimators=3).fit(X, y)
    assert reg.n_estimators_ == 0
    losses = 0.5 * (reg.predict(X) - y) ** 2
    assert_allclose(reg.robust_risk_, ambiguity.risk(losses))
    if isinstance(ambiguity, ChiSquare):
        assert_allclose(reg.predict(X), 2.5, rtol=1e-4)


# CVaR(alpha=0.1) can stall on these balanced labels (see test_stall_warns)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_string_shortcuts_and_string_labels(binary):
    X, y = binary
    labels = np.array(["no", "yes"])[y]
    for name, cls in [("chi2", ChiSquare), ("kl", KL), ("cvar", CVaR)]:
        clf = DROLGBMClassifier(name, n_estimators=3, random_state=0).fit(X, labels)
        assert isinstance(clf.ambiguity_, cls)
        assert set(clf.predict(X)) <= {"no", "yes"}
        assert clf.ambiguity == name  # the parameter is not modified


def test_deterministic_clone_and_pickle(multiclass):
    X, y = multiclass
    params = {"subsample": 0.7, "subsample_freq": 1, "colsample_bytree": 0.8}
    clf = DROLGBMClassifier(n_estimators=5, random_state=3, **params).fit(X, y)
    again = clone(clf).fit(X, y)
    assert_allclose(clf.predict_proba(X), again.predict_proba(X))
    restored = pickle.loads(pickle.dumps(clf))
    assert_allclose(clf.predict_proba(X), restored.predict_proba(X))


def test_lgbm_params_pass_through(regression):
    X, y = regression
    reg = DROLGBMRegressor(n_estimators=3, lgbm_params={"max_bin": 7})
    reg.fit(X, y)
    assert reg.booster_.params["max_bin"] == 7
    assert reg.get_params()["lgbm_params"] == {"max_bin": 7}


def test_bad_input(binary):
    X, y = binary
    with pytest.raises(ValueError, match="lgbm_params may not set"):
        DROLGBMClassifier(lgbm_params={"objective": "binary"}).fit(X, y)
    with pytest.raises(ValueError, match="ambiguity"):
        DROLGBMClassifier(ambiguity="wasserstein").fit(X, y)
    with pytest.raises(ValueError, match="radius"):
        DROLGBMClassifier(ambiguity=ChiSquare(radius=-1.0)).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DROLGBMClassifier().fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="n_estimators"):
        DROLGBMRegressor(n_estimators=0).fit(X, y)


def test_stall_warns():
    # a radius so large that the worst case is the single largest loss: one
    # sample cannot be split (min_child_samples=20), LightGBM stops; we say so
    X, y = make_classification(n_samples=500, random_state=0)
    clf = DROLGBMClassifier(ChiSquare(radius=1e3), n_estimators=10, random_state=0)
    with pytest.warns(ConvergenceWarning, match="stopped after"):
        clf.fit(X, y)
