"""DRO LightGBM with feature subsampling equals LightGBM at radius 0 (issue 14).

Before: with ``colsample_bytree`` (or its alias ``feature_fraction``) below 1
the predictions of ``DROLGBMClassifier(ChiSquare(radius=0))`` differed from
``lightgbm.LGBMClassifier``'s with the same seed by up to 0.08 in probability.
The cause is in LightGBM's custom-objective path: ``Booster.update(fobj=...)``
resets the objective to ``"none"`` on its first call, and that reset draws one
feature subset that no tree uses, so every tree got the columns LightGBM's
built-in objective draws for the next tree. The estimator now skips that
redundant reset (the booster is built with the objective ``"none"``).

Reference values: ``lightgbm.LGBMClassifier`` / ``LGBMRegressor`` fitted on
the same data with the same parameters. At radius 0 our custom objective
hands LightGBM exactly the gradients and hessians of its own binary /
multiclass / L2 objective, so the trees are the same; class probabilities
agree to rounding (1e-10). Regression predictions agree to LightGBM's float32
storage of the labels, from which it takes its starting mean
(``boost_from_average``), against our float64 mean: a relative 1e-6 of the
labels' scale.
"""

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import make_classification

from skrobust.ambiguity import ChiSquare
from skrobust.ensemble import DROLGBMClassifier, DROLGBMRegressor

RTOL_CLF = 1e-10
ATOL_CLF = 1e-12
RTOL_REG = 1e-6  # float32 labels in LightGBM's starting mean (see above)
BASE = {"n_estimators": 8, "random_state": 0, "n_jobs": 1}

SUBSAMPLING = [
    {"colsample_bytree": 0.5},
    {"feature_fraction": 0.5},
    {"colsample_bytree": 0.3, "random_state": 7},
    {"feature_fraction": 0.6, "feature_fraction_seed": 11},
    {"feature_fraction_bynode": 0.5},
    {"colsample_bytree": 0.5, "subsample": 0.7, "subsample_freq": 1},
    {"colsample_bytree": 0.5, "boosting_type": "dart"},
    {"colsample_bytree": 0.5, "extra_trees": True},
]


def _ids(params):
    return ",".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, flip_y=0.05, random_state=0)


@pytest.fixture(scope="module")
def multiclass():
    return make_classification(
        n_samples=300, n_classes=3, n_informative=5, random_state=0
    )


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = X[:, 0] + X[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    return X, y


def _classifier_pair(X, y, params):
    params = {**BASE, **params}
    ours = clone(DROLGBMClassifier(ChiSquare(radius=0.0), **params)).fit(X, y)
    plain = lgb.LGBMClassifier(**{**params, "verbose": -1}).fit(X, y)
    return ours, plain


def _same_trees(ours, plain):
    # the same columns in every tree: the draws of the feature subsets match
    a = ours.booster_.trees_to_dataframe()
    b = plain.booster_.trees_to_dataframe()
    assert ours.booster_.num_trees() == plain.booster_.num_trees()
    assert (
        a["split_feature"].fillna("").tolist() == b["split_feature"].fillna("").tolist()
    )


@pytest.mark.parametrize("params", SUBSAMPLING, ids=_ids)
def test_binary_with_feature_subsampling_equals_lgbm(binary, params):
    # before: max |p_ours - p_lgbm| = 0.079 for colsample_bytree=0.5
    X, y = binary
    ours, plain = _classifier_pair(X, y, params)
    _same_trees(ours, plain)
    assert_allclose(
        ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF, atol=ATOL_CLF
    )


@pytest.mark.parametrize("params", SUBSAMPLING[:4], ids=_ids)
def test_multiclass_with_feature_subsampling_equals_lgbm(multiclass, params):
    X, y = multiclass
    ours, plain = _classifier_pair(X, y, params)
    _same_trees(ours, plain)
    assert_allclose(
        ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF, atol=ATOL_CLF
    )


@pytest.mark.parametrize("params", SUBSAMPLING[:4], ids=_ids)
def test_regressor_with_feature_subsampling_equals_lgbm(regression, params):
    X, y = regression
    params = {**BASE, **params}
    ours = clone(DROLGBMRegressor(ChiSquare(radius=0.0), **params)).fit(X, y)
    plain = lgb.LGBMRegressor(**{**params, "verbose": -1}).fit(X, y)
    _same_trees(ours, plain)
    scale = np.max(np.abs(y))
    assert_allclose(ours.predict(X), plain.predict(X), rtol=0, atol=RTOL_REG * scale)


@settings(max_examples=10, deadline=None)
@given(
    fraction=st.sampled_from([0.2, 0.4, 0.75, 0.9]),
    seed=st.integers(0, 2**20),
)
def test_any_fraction_and_seed_equals_lgbm(binary, fraction, seed):
    X, y = binary
    ours, plain = _classifier_pair(
        X, y, {"colsample_bytree": fraction, "random_state": seed}
    )
    assert_allclose(
        ours.predict_proba(X), plain.predict_proba(X), rtol=RTOL_CLF, atol=ATOL_CLF
    )


def test_robust_fit_uses_the_same_column_draws(binary):
    # with a positive radius the gradients differ from LightGBM's, but the
    # column draws do not depend on them: the first tree's root split may
    # only use the columns LightGBM's own first tree may use, i.e. with one
    # column per tree both first trees split on the same column
    X, y = binary
    params = {**BASE, "colsample_bytree": 1.0 / X.shape[1]}
    ours = DROLGBMClassifier(ChiSquare(radius=0.5), **params).fit(X, y)
    plain = lgb.LGBMClassifier(**{**params, "verbose": -1}).fit(X, y)
    a = ours.booster_.trees_to_dataframe()
    b = plain.booster_.trees_to_dataframe()
    for tree in range(BASE["n_estimators"]):
        used_ours = set(a.loc[a.tree_index == tree, "split_feature"].dropna())
        used_plain = set(b.loc[b.tree_index == tree, "split_feature"].dropna())
        assert used_ours == used_plain and len(used_ours) == 1


def test_init_is_one_helper_and_keeps_the_signatures():
    # the two estimators store their parameters through one helper; every
    # argument of the explicit signatures (and LightGBM keywords) is kept
    clf = DROLGBMClassifier("kl", n_estimators=3, colsample_bytree=0.5, eta=0.2)
    reg = DROLGBMRegressor("kl", loss="huber", huber_delta=2.0, feature_fraction=0.4)
    assert clf.get_params()["colsample_bytree"] == 0.5
    assert clf.get_params()["eta"] == 0.2
    assert reg.get_params()["loss"] == "huber"
    assert reg.get_params()["huber_delta"] == 2.0
    assert reg.get_params()["feature_fraction"] == 0.4
    assert clone(reg).get_params() == reg.get_params()
    for estimator in (clf, reg):
        names = type(estimator)._get_param_names()
        assert {"ambiguity", "n_estimators", "colsample_bytree"} <= set(names)
