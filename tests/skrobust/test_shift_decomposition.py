"""DISDE: quadrature references, pure covariate and pure label-mechanism shifts."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import expit
from scipy.stats import norm
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from skrobust.shift import ShiftDecomposition, decompose_performance_shift

N_SE = 4.0
RTOL = 1e-12


def _draw(n, loc, rng, intercept=0.0):
    X = rng.normal(loc=loc, size=(n, 1))
    y = X[:, 0] ** 2 + intercept + rng.normal(size=n)
    return X, y


def _fixed_model():
    rng = np.random.default_rng(100)
    X, y = _draw(5000, 0.0, rng)
    return LinearRegression().fit(X, y)


def _quadrature_terms(model, shift):
    """Exact DISDE terms for source N(0, 1), target N(shift, 1), same Y | X.

    mu(x) = E[(Y - a - b x)^2 | x] = (x^2 - a - b x)^2 + 1; the shared density
    is proportional to p q / (p + q).
    """
    a, b = model.intercept_, model.coef_[0]

    def mu(x):
        return (x**2 - a - b * x) ** 2 + 1.0

    def p(x):
        return norm.pdf(x)

    def q(x):
        return norm.pdf(x, loc=shift)

    def s(x):
        return p(x) * q(x) / (p(x) + q(x))

    lo, hi = -12.0, 12.0 + shift
    mass = quad(s, lo, hi)[0]
    e_s = quad(lambda x: s(x) * mu(x), lo, hi)[0] / mass
    e_p = quad(lambda x: p(x) * mu(x), lo, hi)[0]
    e_q = quad(lambda x: q(x) * mu(x), lo, hi)[0]
    return e_s - e_p, 0.0, e_q - e_s


def test_pure_covariate_shift_matches_quadrature():
    rng = np.random.default_rng(0)
    model = _fixed_model()
    X_s, y_s = _draw(6000, 0.0, rng)
    X_t, y_t = _draw(6000, 1.0, rng)
    result = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, loss="squared_error", random_state=0
    )
    assert isinstance(result, ShiftDecomposition)
    truth = _quadrature_terms(model, 1.0)
    for name, value in zip(
        ("x_shift_shared", "y_given_x_shift", "x_shift_unseen"), truth, strict=True
    ):
        estimate = getattr(result, name)
        assert abs(estimate - value) < N_SE * result.std_errors[name], name
    lo, hi = result.intervals["y_given_x_shift"]
    assert lo < 0.0 < hi
    assert result.total > 1.0  # the model degrades on the shifted X
    assert_allclose(
        result.total,
        result.x_shift_shared + result.y_given_x_shift + result.x_shift_unseen,
        rtol=RTOL,
    )


def test_pure_label_mechanism_shift_has_no_x_terms():
    rng = np.random.default_rng(1)
    model = _fixed_model()
    X_s, y_s = _draw(6000, 0.0, rng)
    X_t, y_t = _draw(6000, 0.0, rng, intercept=1.0)
    result = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, loss="squared_error", random_state=0
    )
    # E[(Y + 1 - f)^2 - (Y - f)^2] = 2 E[x^2 - a - b x] + 1, about 1
    assert result.total > 0.5
    assert abs(result.x_shift_shared) < 0.05 * result.total
    assert abs(result.x_shift_unseen) < 0.05 * result.total
    lo, hi = result.intervals["y_given_x_shift"]
    assert lo < result.total < hi


def test_overlap_weights_with_unequal_domain_sizes():
    # log q(x)/p(x) = x - 1/2 for N(0, 1) -> N(1, 1): pi(x) = expit(x - 1/2)
    rng = np.random.default_rng(2)
    model = _fixed_model()
    X_s, y_s = _draw(1000, 0.0, rng)
    X_t, y_t = _draw(4000, 1.0, rng)
    result = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, loss="squared_error", random_state=0
    )
    assert_allclose(result.source_shared_weights, expit(X_s[:, 0] - 0.5), atol=0.05)
    assert_allclose(result.target_shared_weights, 1 - expit(X_t[:, 0] - 0.5), atol=0.05)


def test_any_classifier_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    model = _fixed_model()
    X_s, y_s = _draw(1500, 0.0, rng)
    X_t, y_t = _draw(1500, 1.0, rng)
    result = decompose_performance_shift(
        model,
        X_s,
        y_s,
        X_t,
        y_t,
        loss="squared_error",
        domain_classifier=HistGradientBoostingClassifier(max_iter=30),
        cv=3,
        random_state=0,
    )
    fig, ax = plt.subplots()
    assert result.plot(ax=ax) is ax
    assert len(ax.patches) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="labels"):
        result.plot(labels=["a"])


def test_determinism():
    rng = np.random.default_rng(4)
    model = _fixed_model()
    # 200 samples a domain are enough to exercise the seeded default first
    # stage (boosting) and fold split; equal seeds give identical results
    X_s, y_s = _draw(200, 0.0, rng)
    X_t, y_t = _draw(200, 1.0, rng)
    a = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, random_state=1, loss="absolute_error"
    )
    b = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, random_state=1, loss="absolute_error"
    )
    assert a.intervals == b.intervals
    assert a.std_errors == b.std_errors
    assert_allclose(a.source_shared_weights, b.source_shared_weights, rtol=0)


def test_bad_input():
    rng = np.random.default_rng(5)
    model = _fixed_model()
    X_s, y_s = _draw(100, 0.0, rng)
    X_t, y_t = _draw(100, 1.0, rng)
    with pytest.raises(ValueError, match="y_source has 99"):
        decompose_performance_shift(model, X_s, y_s[:99], X_t, y_t)
    with pytest.raises(ValueError, match="y_target has 99"):
        decompose_performance_shift(model, X_s, y_s, X_t, y_t[:99])
    with pytest.raises(ValueError, match="features"):
        decompose_performance_shift(model, X_s, y_s, np.c_[X_t, X_t], y_t)
    with pytest.raises(ValueError, match="at least cv"):
        decompose_performance_shift(model, X_s[:3], y_s[:3], X_t, y_t)
    with pytest.raises(ValueError, match="domain_classifier"):
        decompose_performance_shift(
            model, X_s, y_s, X_t, y_t, domain_classifier=LinearRegression()
        )
    with pytest.raises(NotFittedError):
        decompose_performance_shift(LinearRegression(), X_s, y_s, X_t, y_t)


@pytest.mark.parametrize(
    "method, regressor",
    [("weighting", None), ("one_step", None), ("one_step", DummyRegressor())],
)
def test_methods_match_quadrature(method, regressor):
    # one-step with a constant (wrong) loss regression stays consistent: the
    # logistic domain classifier is well specified (log q/p = x - 1/2)
    rng = np.random.default_rng(6)
    model = _fixed_model()
    X_s, y_s = _draw(6000, 0.0, rng)
    X_t, y_t = _draw(6000, 1.0, rng)
    result = decompose_performance_shift(
        model,
        X_s,
        y_s,
        X_t,
        y_t,
        loss="squared_error",
        method=method,
        regressor=regressor,
        random_state=0,
    )
    truth = _quadrature_terms(model, 1.0)
    for name, value in zip(
        ("x_shift_shared", "y_given_x_shift", "x_shift_unseen"), truth, strict=True
    ):
        estimate = getattr(result, name)
        assert abs(estimate - value) < N_SE * result.std_errors[name], name


def test_weighting_is_the_overlap_weighted_mean():
    # reference: the weighted means written out from the returned weights
    rng = np.random.default_rng(7)
    model = _fixed_model()
    X_s, y_s = _draw(800, 0.0, rng)
    X_t, y_t = _draw(600, 1.0, rng)
    result = decompose_performance_shift(
        model, X_s, y_s, X_t, y_t, loss="squared_error", method="weighting"
    )
    loss_s = (y_s - model.predict(X_s)) ** 2
    loss_t = (y_t - model.predict(X_t)) ** 2
    w_s, w_t = result.source_shared_weights, result.target_shared_weights
    assert_allclose(result.shared_risk_source, np.sum(w_s * loss_s) / w_s.sum())
    assert_allclose(result.shared_risk_target, np.sum(w_t * loss_t) / w_t.sum())


def test_one_step_needs_a_regressor_with_predict():
    rng = np.random.default_rng(8)
    model = _fixed_model()
    X_s, y_s = _draw(100, 0.0, rng)
    X_t, y_t = _draw(100, 1.0, rng)
    with pytest.raises(ValueError, match="regressor"):
        decompose_performance_shift(model, X_s, y_s, X_t, y_t, regressor="tree")
    with pytest.raises(ValueError, match="method"):
        decompose_performance_shift(model, X_s, y_s, X_t, y_t, method="dr")
