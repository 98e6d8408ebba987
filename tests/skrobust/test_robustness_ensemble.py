"""DRO LightGBM with LightGBM users' conventions (issue 14, section 5).

Every constructor parameter and alias of LGBMClassifier / LGBMRegressor is
accepted, survives clone / get_params, and is forwarded: with a trivial
ambiguity set the predictions equal LightGBM's own with the same parameters.
Pandas categorical and boolean X are read exactly as LightGBM reads them.
"""

import inspect

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import make_classification

from skrobust.ambiguity import ChiSquare
from skrobust.ensemble import DROLGBMClassifier, DROLGBMRegressor

# reference: lightgbm.LGBMClassifier / LGBMRegressor on the same data with the
# same parameters; our custom objective takes the same Newton steps, so the
# class probabilities agree to rounding and regression predictions to
# LightGBM's float32 storage of the labels (its boost_from_average mean)
RTOL_CLF = 1e-10
ATOL_CLF = 1e-12
RTOL_REG = 1e-6
# LightGBM stores sample weights in float32: "balanced" class weights (not
# exact in binary) then agree to float32 precision only
RTOL_WEIGHTED = 1e-6
N_ROUNDS = 8
BASE = {"n_estimators": N_ROUNDS, "random_state": 0, "n_jobs": 1}

# (parameter, value) pairs: every name of LGBMClassifier's signature that can
# be forwarded, and LightGBM's common aliases
PARAMS = [
    ("boosting_type", "dart"),
    ("num_leaves", 5),
    ("max_depth", 3),
    ("learning_rate", 0.3),
    ("subsample_for_bin", 100),
    ("class_weight", "balanced"),
    ("class_weight", {0: 1.0, 1: 3.0}),
    ("min_split_gain", 0.5),
    ("min_child_weight", 5.0),
    ("min_child_samples", 7),
    ("reg_alpha", 1.0),
    ("reg_lambda", 3.0),
    ("importance_type", "gain"),
    ("verbose", -1),
    ("num_iterations", 5),
    ("num_boost_round", 4),
    ("eta", 0.3),
    ("num_leaf", 4),
    ("min_data_in_leaf", 5),
    ("lambda_l1", 1.0),
    ("lambda_l2", 3.0),
    ("verbosity", -1),
    ("max_bin", 15),
    ("extra_trees", True),
]
# bagging / feature subsampling, forwarded and checked through the booster
SAMPLING = [
    {"subsample": 0.6, "subsample_freq": 1},
    {"bagging_fraction": 0.6, "bagging_freq": 1},
    {"colsample_bytree": 0.5},
    {"feature_fraction": 0.5},
]


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, flip_y=0.05, random_state=0)


def _same_params(a, b):
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    pa.pop("ambiguity"), pb.pop("ambiguity")
    return pa == pb


def test_every_lgbm_signature_parameter_is_accepted():
    ours = set(inspect.signature(DROLGBMClassifier).parameters)
    theirs = set(inspect.signature(lgb.LGBMClassifier).parameters) - {"kwargs"}
    assert theirs <= ours
    assert theirs - {"class_weight"} <= set(
        inspect.signature(DROLGBMRegressor).parameters
    )


@pytest.mark.parametrize("name, value", PARAMS, ids=[p[0] for p in PARAMS])
def test_parameter_forwarded_like_lgbm_classifier(binary, name, value):
    # before: verbose=-1 failed validation and no alias could be passed
    X, y = binary
    ours = DROLGBMClassifier(ChiSquare(radius=0.0), **BASE, **{name: value})
    copy = clone(ours)
    assert copy.get_params()[name] == value
    assert _same_params(copy, ours)
    copy.set_params(**{name: value})
    assert _same_params(copy, ours)
    copy.fit(X, y)
    plain = lgb.LGBMClassifier(**{**BASE, "verbose": -1, name: value}).fit(X, y)
    assert copy.n_estimators_ == plain.booster_.current_iteration()
    rtol = RTOL_WEIGHTED if value == "balanced" else RTOL_CLF
    assert_allclose(
        copy.predict_proba(X), plain.predict_proba(X), rtol=rtol, atol=ATOL_CLF
    )
    assert_allclose(copy.feature_importances_, plain.feature_importances_)


@pytest.mark.parametrize("params", SAMPLING, ids=lambda p: ",".join(p))
def test_sampling_parameters_reach_the_booster(binary, params):
    X, y = binary
    ours = clone(DROLGBMClassifier(ChiSquare(radius=0.0), **BASE, **params)).fit(X, y)
    for key, value in params.items():
        assert ours.booster_.params[key] == value
    if "subsample" in params or "bagging_fraction" in params:
        # bagging draws the same rows as LightGBM's own estimator
        plain = lgb.LGBMClassifier(**BASE, verbose=-1, **params).fit(X, y)
        assert_allclose(ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF)


@pytest.mark.parametrize("name, value", [("verbose", -1), ("num_iterations", 5)])
def test_regressor_accepts_lgbm_parameters(name, value):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    ours = clone(DROLGBMRegressor(ChiSquare(radius=0.0), **BASE, **{name: value}))
    ours.fit(X, y)
    plain = lgb.LGBMRegressor(**{**BASE, "verbose": -1, name: value}).fit(X, y)
    assert_allclose(ours.predict(X), plain.predict(X), rtol=RTOL_REG)


def test_objective_and_class_weight_limits(binary):
    X, y = binary
    with pytest.raises(ValueError, match="objective"):
        DROLGBMClassifier(objective="binary").fit(X, y)
    with pytest.raises(ValueError, match="may not be set"):
        DROLGBMClassifier(metric="auc").fit(X, y)
    with pytest.raises(ValueError, match="class_weight applies to classification"):
        DROLGBMRegressor(class_weight="balanced").fit(X, y.astype(float))


def test_pandas_categorical_columns_like_lightgbm():
    # before: validate_data turned the frame into numbers or failed; LightGBM
    # splits category columns by category sets and remaps new frames
    rng = np.random.default_rng(0)
    n = 400
    cat = rng.choice(["a", "b", "c", "d"], size=n)
    num = rng.normal(size=n)
    X = pd.DataFrame({"c": pd.Categorical(cat), "x": num})
    y = ((cat == "b") | (num > 1)).astype(int)
    params = {**BASE, "min_data_per_group": 5, "cat_smooth": 1.0}
    ours = DROLGBMClassifier(ChiSquare(radius=0.0), **params).fit(X, y)
    plain = lgb.LGBMClassifier(**params, verbose=-1).fit(X, y)
    assert ours.booster_.pandas_categorical == [["a", "b", "c", "d"]]
    shuffled = X.iloc[rng.permutation(n)]
    assert_allclose(
        ours.predict_proba(shuffled), plain.predict_proba(shuffled), rtol=RTOL_CLF
    )
    # a new frame whose categories are listed in another order is remapped
    other = pd.DataFrame(
        {"c": pd.Categorical(cat, categories=["d", "c", "b", "a"]), "x": num}
    )
    assert_allclose(ours.predict_proba(other), plain.predict_proba(X), rtol=RTOL_CLF)
    reg = DROLGBMRegressor(ChiSquare(radius=0.0), **BASE).fit(X, num + (cat == "c"))
    ref = lgb.LGBMRegressor(**BASE, verbose=-1).fit(X, num + (cat == "c"))
    assert_allclose(reg.predict(X), ref.predict(X), rtol=RTOL_REG)
    with pytest.raises(TypeError, match="categorical columns"):
        ours.predict(X.to_numpy()[:, 1:].astype(float).repeat(2, axis=1))


def test_boolean_X_like_lightgbm():
    # before: np.ptp raised TypeError on a boolean array
    rng = np.random.default_rng(0)
    X = rng.random((200, 3)) > 0.5
    y = (X[:, 0] ^ X[:, 1]).astype(int)
    params = {**BASE, "min_child_samples": 5}
    ours = DROLGBMClassifier(ChiSquare(radius=0.0), **params).fit(X, y)
    plain = lgb.LGBMClassifier(**params, verbose=-1).fit(X, y)
    assert_allclose(ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF)
    # all-constant boolean X: the robust constant, no trees
    const = DROLGBMClassifier(n_estimators=3).fit(np.ones((40, 2), bool), y[:40])
    assert const.n_estimators_ == 0
    assert_allclose(const.predict_proba(np.ones((1, 2), bool)).sum(), 1.0)


@pytest.mark.parametrize("n", [2, 5, 21])
def test_tiny_n(n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    y = np.arange(n) % 2
    clf = DROLGBMClassifier("chi2", n_estimators=3, verbose=-1).fit(X, y)
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0)
