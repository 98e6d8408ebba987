"""Distilled Thompson sampling imitates its teacher and serves without it."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.ensemble import RandomForestClassifier

from skbandit import DistilledThompsonSampling, LinearThompsonSampling, make_feedback

# mean total-variation distance allowed between teacher and imitation
TV_TOL = 0.08


def _log(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    actions = rng.integers(3, size=n)
    theta = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    rewards = np.einsum("nd,nd->n", X, theta[actions]) + rng.normal(size=n)
    return X, make_feedback(actions, rewards)


def test_imitation_matches_teacher_distribution():
    X, y = _log()
    teacher = LinearThompsonSampling(noise_variance=4.0, n_proba_draws=4000)
    policy = DistilledThompsonSampling(teacher, n_imitation_draws=20, random_state=0)
    policy.fit(X, y)
    X_test = np.random.default_rng(1).normal(size=(200, 2))
    # reference: the teacher's own (Monte Carlo) action distribution
    ref = policy.policy_.predict_proba(X_test)
    tv = 0.5 * np.abs(policy.predict_proba(X_test) - ref).sum(axis=1).mean()
    assert tv < TV_TOL
    # the teacher is not trivially greedy here, so the check has teeth
    assert 0.05 < ref.max(axis=1).mean() < 0.95


def test_serving_uses_only_the_imitation_model():
    X, y = _log()
    policy = DistilledThompsonSampling(random_state=0).fit(X, y)
    proba = policy.predict_proba(X[:50])
    policy.policy_ = None  # the teacher is not needed to decide
    assert_allclose(policy.predict_proba(X[:50]), proba)
    n = 40_000
    x = np.repeat(X[:1], n, axis=0)
    freq = np.bincount(policy.predict(x), minlength=3) / n
    assert_allclose(freq, proba[0], atol=4 * 0.5 / np.sqrt(n))


def test_partial_fit_any_classifier_and_single_arm_draws():
    X, y = _log(n=90)
    policy = DistilledThompsonSampling(
        imitation_model=RandomForestClassifier(n_estimators=5, random_state=0),
        arms=[0, 1, 2],
        random_state=0,
    )
    for lo in range(0, 90, 30):
        policy.partial_fit(X[lo : lo + 30], y[lo : lo + 30])
    assert policy.n_batches_seen_ == 3
    assert policy.policy_.n_samples_seen_ == 90
    assert_allclose(policy.predict_proba(X[:5]).sum(axis=1), 1.0)
    # a teacher that always picks one arm: the imitation serves that arm
    sure = make_feedback(np.zeros(200, dtype=int), np.full(200, 50.0))
    Xs = np.random.default_rng(0).normal(size=(200, 2))
    distilled = DistilledThompsonSampling(
        LinearThompsonSampling(noise_variance=1e-6), arms=[0, 1], random_state=0
    ).fit(Xs, sure)
    assert distilled.imitation_model_ is None
    assert (distilled.predict(Xs[:10]) == 0).all()


def test_skorch_imitation_model():
    torch = pytest.importorskip("torch")
    skorch = pytest.importorskip("skorch")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )
    net = skorch.NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=5,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    # skorch nets take float32 features and the classifier outputs logits
    imitation = make_pipeline(FunctionTransformer(np.float32), net)
    X, y = _log(n=150)
    policy = DistilledThompsonSampling(imitation_model=imitation, random_state=0)
    policy.fit(X, y)
    proba = policy.predict_proba(X[:10])
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(policy.predict(X[:10])) <= {0, 1, 2}
