"""Tests of generative Thompson sampling (TS-Gen) and its sequence model."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from skbandit import (
    GenerativeThompsonSampling,
    LinearThompsonSampling,
    NeuralSequenceGenerator,
    Uniform,
    make_feedback,
    make_linear_tasks,
)
from skbandit.environments import LinearContextualBandit, simulate

pytest.importorskip("torch")

RTOL = 1e-12
NOISE_STD = 0.5  # make_linear_tasks' default


@pytest.fixture(scope="module")
def generator_2d():
    # tiny pretraining (a few seconds): 256 tasks of 48 rounds, 2 features
    X, y = make_linear_tasks(256, 48, 2, random_state=0)
    return NeuralSequenceGenerator(n_epochs=25, random_state=0).pretrain(X, y)


class ExactLinearGenerator:
    """Exact posterior predictive of Bayesian linear regression with intercept.

    Prior coef, intercept ~ N(0, prior_var), noise N(0, noise_var); a joint
    draw of the targets is a posterior draw of the coefficients plus fresh
    noise, which equals generating the targets one by one. It has the
    documented generator interface: ``n_features_in_`` and ``sample``.
    """

    def __init__(self, n_features, prior_var, noise_var):
        self.n_features_in_ = n_features
        self.prior_var = prior_var
        self.noise_var = noise_var

    def sample(self, X_history, y_history, X_target, *, n_draws=1, random_state=None):
        rng = np.random.default_rng(random_state)
        Z = np.hstack([X_history, np.ones((X_history.shape[0], 1))])
        Zt = np.hstack([X_target, np.ones((X_target.shape[0], 1))])
        precision = Z.T @ Z / self.noise_var + np.eye(Z.shape[1]) / self.prior_var
        cov = np.linalg.inv(precision)
        mean = cov @ Z.T @ y_history / self.noise_var
        theta = rng.multivariate_normal(mean, cov, size=n_draws)
        noise = rng.normal(scale=np.sqrt(self.noise_var), size=(n_draws, Zt.shape[0]))
        return theta @ Zt.T + noise


def test_make_linear_tasks_moments_and_determinism():
    # Known truth: Var(y) = coef_std^2 + noise_std^2 for standard normal x.
    X, y = make_linear_tasks(4000, 20, 3, coef_std=1.5, noise_std=0.5, random_state=0)
    assert X.shape == (4000, 20, 3) and y.shape == (4000, 20)
    assert_allclose(y.var(), 1.5**2 + 0.5**2, rtol=0.05)
    X2, y2 = make_linear_tasks(4000, 20, 3, coef_std=1.5, noise_std=0.5, random_state=0)
    assert_array_equal(y, y2)
    X0, y0 = make_linear_tasks(10, 5, 0, random_state=0)
    assert X0.shape == (10, 5, 0)


def _exact_predictive(Xh, yh, Xt, prior_var, noise_var):
    Z = np.hstack([Xh, np.ones((Xh.shape[0], 1))])
    Zt = np.hstack([Xt, np.ones((Xt.shape[0], 1))])
    cov = np.linalg.inv(Z.T @ Z / noise_var + np.eye(Z.shape[1]) / prior_var)
    mean = Zt @ cov @ Z.T @ yh / noise_var
    std = np.sqrt(noise_var + np.einsum("ij,jk,ik->i", Zt, cov, Zt))
    return mean, std


def _nll(y, mean, std):
    return np.mean(np.log(std) + 0.5 * ((y - mean) / std) ** 2)


def test_pretrained_generator_learns_the_posterior_predictive(generator_2d):
    # Reference: on held-out linear tasks, the exact Bayesian posterior
    # predictive (prior variance coef_std^2 / (1 + d) = 1/3 per coefficient)
    # is the best possible predictor and the prior predictive N(0, 1 + 0.25)
    # ignores the data. The pretrained model must recover most of the gap.
    X, y = make_linear_tasks(100, 30, 2, random_state=1)
    nll_model, nll_exact, nll_prior = [], [], []
    prior_std = np.sqrt(1.0 + NOISE_STD**2)
    for i in range(100):
        Xh, yh, Xt, yt = X[i, :20], y[i, :20], X[i, 20:], y[i, 20:]
        mean, std = generator_2d.predictive(Xh, yh, Xt)
        nll_model.append(_nll(yt, mean, std))
        nll_exact.append(_nll(yt, *_exact_predictive(Xh, yh, Xt, 1 / 3, 0.25)))
        nll_prior.append(_nll(yt, 0.0, prior_std))
    model, exact, prior = map(np.mean, (nll_model, nll_exact, nll_prior))
    assert model < prior - 0.6 * (prior - exact)


def test_first_generated_outcome_follows_the_one_step_predictive(generator_2d):
    # The first target is drawn from the one-step predictive N(mean, std^2)
    # returned by ``predictive``: check its Monte Carlo mean and std.
    X, y = make_linear_tasks(1, 30, 2, random_state=2)
    Xh, yh, Xt = X[0, :10], y[0, :10], X[0, 10:13]
    n_draws = 20_000
    draws = generator_2d.sample(Xh, yh, Xt, n_draws=n_draws, random_state=0)
    assert draws.shape == (n_draws, 3)
    mean, std = generator_2d.predictive(Xh, yh, Xt)
    assert abs(draws[:, 0].mean() - mean[0]) < 4 * std[0] / np.sqrt(n_draws)
    assert_allclose(draws[:, 0].std(), std[0], rtol=0.03)


def test_generation_is_autoregressive(generator_2d):
    # Later targets condition on earlier generated outcomes. With no history,
    # two outcomes at the same x share the unknown mean: under the task prior
    # their correlation is v / (v + 0.25) with v = (1 + |x|^2) / 3 (exact
    # value computed below); the model's draws must be clearly correlated.
    x = np.array([[0.5, -0.5]])
    v = (1 + (x**2).sum()) / 3
    exact_corr = v / (v + NOISE_STD**2)
    draws = generator_2d.sample(
        np.empty((0, 2)), [], np.vstack([x, x]), n_draws=4000, random_state=0
    )
    corr = np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]
    assert corr > 0.5 * exact_corr


def test_sample_is_deterministic_for_fixed_random_state(generator_2d):
    X, y = make_linear_tasks(1, 20, 2, random_state=4)
    a = generator_2d.sample(X[0, :5], y[0, :5], X[0, 5:], n_draws=3, random_state=7)
    b = generator_2d.sample(X[0, :5], y[0, :5], X[0, 5:], n_draws=3, random_state=7)
    assert_array_equal(a, b)


def test_with_exact_generator_it_is_linear_thompson_sampling():
    # With the exact posterior predictive of the linear model as generator and
    # a large imputed table, the oracle of a completed table is (nearly) a
    # posterior draw of the coefficients, so TS-Gen's action probabilities
    # are those of LinearThompsonSampling with the same prior:
    # coefficients ~ N(0, noise_var / regularization).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 1))
    actions = rng.integers(2, size=30)
    rewards = np.where(actions == 1, 0.3 * X[:, 0], -0.3 * X[:, 0]) + rng.normal(
        scale=0.5, size=30
    )
    y = make_feedback(actions, rewards)
    generator = ExactLinearGenerator(1, prior_var=1.0, noise_var=0.25)
    gen_ts = GenerativeThompsonSampling(
        generator=generator,
        n_future=3000,
        oracle_alpha=1e-6,
        n_proba_draws=400,
        random_state=0,
    ).fit(X, y)
    lin_ts = LinearThompsonSampling(
        regularization=0.25, noise_variance=0.25, n_proba_draws=20_000, random_state=0
    ).fit(X, y)
    X_eval = np.array([[-2.0], [-0.5], [0.0], [0.5], [2.0]])
    # Monte Carlo error of 400 draws is at most 0.025 per probability
    assert_allclose(
        gen_ts.predict_proba(X_eval), lin_ts.predict_proba(X_eval), atol=0.1
    )
    assert gen_ts.generator_ is generator  # a pretrained generator is used as is


def test_beats_uniform_on_a_linear_contextual_bandit(generator_2d):
    # Known best policy: argmax_k x @ coef[k]; regret is measured against it.
    env = LinearContextualBandit(n_arms=3, n_features=2, noise_std=0.5, random_state=0)
    common = dict(n_rounds=120, batch_size=15, n_repeats=2, random_state=0)
    gen_ts = simulate(
        GenerativeThompsonSampling(generator=generator_2d, n_future=20), env, **common
    )
    uniform = simulate(Uniform(), env, **common)
    assert (
        gen_ts.cumulative_regret[:, -1].mean()
        < 0.6 * uniform.cumulative_regret[:, -1].mean()
    )


def _small_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    actions = rng.integers(3, size=20)
    rewards = X[:, 0] * (actions - 1) + rng.normal(scale=0.1, size=20)
    return X, actions, rewards


def test_predictions_are_valid_and_deterministic(generator_2d):
    X, actions, rewards = _small_problem()
    y = make_feedback(actions, rewards)

    def run():
        policy = GenerativeThompsonSampling(
            generator=generator_2d, n_future=10, n_proba_draws=20, random_state=0
        ).fit(X, y)
        return policy.predict(X[:5]), policy.predict_proba(X[:5])

    (arms_a, proba_a), (arms_b, proba_b) = run(), run()
    assert_array_equal(arms_a, arms_b)
    assert_array_equal(proba_a, proba_b)
    assert set(arms_a) <= {0, 1, 2}
    assert_allclose(proba_a.sum(axis=1), 1.0, rtol=RTOL)


def test_integer_weights_equal_repeated_rows(generator_2d):
    X, actions, rewards = _small_problem()
    weights = np.arange(20) % 3
    params = dict(generator=generator_2d, n_future=10, n_proba_draws=20, random_state=0)
    weighted = GenerativeThompsonSampling(**params).fit(
        X, make_feedback(actions, rewards), sample_weight=weights
    )
    repeated = GenerativeThompsonSampling(**params).fit(
        np.repeat(X, weights, axis=0),
        make_feedback(np.repeat(actions, weights), np.repeat(rewards, weights)),
    )
    # the history is kept in arrival order, so the two tables coincide
    assert_array_equal(weighted.predict_proba(X[:4]), repeated.predict_proba(X[:4]))


def test_partial_fit_equals_fit_on_the_union(generator_2d):
    X, actions, rewards = _small_problem()
    params = dict(generator=generator_2d, n_future=10, n_proba_draws=20, random_state=0)
    full = GenerativeThompsonSampling(**params).fit(X, make_feedback(actions, rewards))
    online = GenerativeThompsonSampling(**params)
    online.partial_fit(X[:8], make_feedback(actions[:8], rewards[:8]))
    online.partial_fit(X[8:], make_feedback(actions[8:], rewards[8:]))
    assert_array_equal(full.predict_proba(X[:4]), online.predict_proba(X[:4]))


def test_default_generator_is_pretrained_in_fit():
    X, actions, rewards = _small_problem()
    policy = GenerativeThompsonSampling(
        generator=NeuralSequenceGenerator(n_epochs=2, hidden_size=8),
        n_pretrain_tasks=16,
        n_future=5,
        random_state=0,
    ).fit(X, make_feedback(actions, rewards))
    assert policy.generator_.n_features_in_ == 2
    assert not hasattr(policy.generator, "network_")  # the parameter is cloned


def test_frozen_generator_survives_clone(generator_2d):
    # clone (simulate, GridSearchCV) would reset a bare pretrained generator;
    # a FrozenEstimator keeps it, so no clone pretrains again
    from sklearn.frozen import FrozenEstimator

    X, actions, rewards = _small_problem()
    frozen = FrozenEstimator(generator_2d)
    policy = GenerativeThompsonSampling(generator=frozen, n_future=5)
    fitted = clone(policy).fit(X, make_feedback(actions, rewards))
    assert fitted.generator_ is frozen
    assert fitted.generator_.estimator.network_ is generator_2d.network_
    bare = clone(GenerativeThompsonSampling(generator=generator_2d))
    assert not hasattr(bare.generator, "network_")


def test_pickle_round_trip(generator_2d):
    X, actions, rewards = _small_problem()
    policy = GenerativeThompsonSampling(
        generator=generator_2d, n_future=10, n_proba_draws=20, random_state=0
    ).fit(X, make_feedback(actions, rewards))
    restored = pickle.loads(pickle.dumps(policy))
    assert_array_equal(restored.predict_proba(X[:3]), policy.predict_proba(X[:3]))
    assert clone(policy).get_params()["generator"] is not None


def test_bad_generators(generator_2d):
    X, actions, rewards = _small_problem()
    y = make_feedback(actions, rewards)
    with pytest.raises(ValueError, match="generator"):
        GenerativeThompsonSampling(generator=object()).fit(X, y)

    class NoPretrain:
        def sample(self, X_history, y_history, X_target, *, n_draws, random_state):
            return np.zeros((n_draws, len(X_target)))

    policy = GenerativeThompsonSampling(generator=NoPretrain())
    with pytest.raises(TypeError, match="not pretrained"):
        policy.fit(X, y)
    assert not hasattr(policy, "classes_")  # a failed fit leaves it unfitted
    with pytest.raises(ValueError, match="pretrained on 2 features but X has 3"):
        GenerativeThompsonSampling(generator=generator_2d).fit(
            np.hstack([X, X[:, :1]]), y
        )

    class WrongShape(NoPretrain):
        n_features_in_ = 2

        def sample(self, X_history, y_history, X_target, *, n_draws, random_state):
            return np.zeros((n_draws, 1))

    policy = GenerativeThompsonSampling(generator=WrongShape()).fit(X, y)
    with pytest.raises(ValueError, match="must return an array of shape"):
        policy.predict(X[:2])


def test_non_integer_weights_are_refused(generator_2d):
    X, actions, rewards = _small_problem()
    y = make_feedback(actions, rewards)
    policy = GenerativeThompsonSampling(generator=generator_2d, n_future=5)
    with pytest.raises(ValueError, match="repeat counts"):
        policy.fit(X, y, sample_weight=np.full(20, 0.5))
    assert not hasattr(policy, "classes_")
    policy.fit(X, y)
    with pytest.raises(ValueError, match="repeat counts"):
        policy.partial_fit(X, y, sample_weight=np.full(20, 0.5))
    assert policy.n_batches_seen_ == 1  # the failed batch left no trace


def test_generator_bad_input():
    with pytest.raises(ValueError, match="not pretrained"):
        NeuralSequenceGenerator().sample(np.zeros((1, 1)), [0.0], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="pretrain expects X of shape"):
        NeuralSequenceGenerator().pretrain(np.zeros((4, 3)), np.zeros((4, 3)))
    X, y = make_linear_tasks(4, 3, 1, random_state=0)
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuralSequenceGenerator().pretrain(X, y)
    with pytest.raises(ValueError, match="n_tasks"):
        make_linear_tasks(0, 3, 1)
