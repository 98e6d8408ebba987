"""The generative sequence model of TS-Gen and its simulated pretraining tasks.

:class:`NeuralSequenceGenerator` predicts an arm's next outcome from the
outcomes seen so far (a permutation-invariant encoder of the history and a
Gaussian predictive head), pretrained on tasks such as those of
:func:`make_linear_tasks`; :class:`~skbandit.GenerativeThompsonSampling`
draws the missing outcomes from it.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

# ----------------------------------------------------------------------------
# simulated pretraining tasks


@validate_params(
    {
        "n_tasks": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_features": [Interval(numbers.Integral, 0, None, closed="left")],
        "coef_std": [Interval(numbers.Real, 0, None, closed="left")],
        "noise_std": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_linear_tasks(
    n_tasks, n_rounds, n_features, *, coef_std=1.0, noise_std=0.5, random_state=None
):
    """Simulate outcome sequences of linear tasks to pretrain a generator.

    Each task draws an intercept and coefficients
    :math:`b, \\theta_j \\sim N(0, \\text{coef\\_std}^2 / (1 + d))` (so that the
    signal has variance ``coef_std ** 2`` for standard normal contexts), then
    ``n_rounds`` standard normal contexts :math:`x` and outcomes
    :math:`y = b + x^\\top\\theta + \\varepsilon`,
    :math:`\\varepsilon \\sim N(0, \\text{noise\\_std}^2)`. A task stands for one
    arm of one past experiment.

    Read more in the :ref:`User Guide <generative_ts>`.

    Parameters
    ----------
    n_tasks : int
        Number of tasks (sequences).
    n_rounds : int
        Length of each sequence.
    n_features : int
        Number of context features (0 for multi-armed bandits).
    coef_std : float, default=1.0
        Standard deviation of the expected outcome across contexts and tasks.
    noise_std : float, default=0.5
        Standard deviation of the outcome noise.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_tasks, n_rounds, n_features)
        Contexts.
    y : ndarray of shape (n_tasks, n_rounds)
        Outcomes.

    See Also
    --------
    NeuralSequenceGenerator : The generator these tasks pretrain.

    Examples
    --------
    >>> from skbandit import make_linear_tasks
    >>> X, y = make_linear_tasks(5, 20, 3, random_state=0)
    >>> X.shape, y.shape
    ((5, 20, 3), (5, 20))
    """
    rng = check_random_state(random_state)
    scale = coef_std / np.sqrt(1 + n_features)
    coef = rng.normal(scale=scale, size=(n_tasks, n_features))
    intercept = rng.normal(scale=scale, size=(n_tasks, 1))
    X = rng.standard_normal((n_tasks, n_rounds, n_features))
    noise = rng.normal(scale=noise_std, size=(n_tasks, n_rounds))
    y = intercept + np.einsum("trd,td->tr", X, coef) + noise
    return X, y


# ----------------------------------------------------------------------------
# the default generator: a small exchangeable sequence model in torch


def _build_network(n_features, hidden_size):
    """Encoder of (x, y) pairs and predictive head, as plain torch modules."""
    from torch import nn

    return nn.ModuleDict(
        {
            "encoder": nn.Sequential(
                nn.Linear(2 * n_features + 2 + _n_outer(n_features), hidden_size),
                nn.Tanh(),
                nn.Linear(hidden_size, hidden_size),
            ),
            "head": nn.Sequential(
                nn.Linear(hidden_size + n_features + 1, hidden_size),
                nn.Tanh(),
                nn.Linear(hidden_size, hidden_size),
                nn.Tanh(),
                nn.Linear(hidden_size, 2),
            ),
        }
    )


def _n_outer(n_features):
    """Number of distinct products x_j x_l (j <= l) fed to the encoder."""
    return n_features * (n_features + 1) // 2


def _encode(net, x, y):
    import torch

    d = x.shape[-1]
    rows, cols = torch.triu_indices(d, d)
    outer = x[..., rows] * x[..., cols]
    y = y.unsqueeze(-1)
    # the terms of the sufficient statistics of Bayesian linear regression
    # (x x^T, x y, y, y^2, with x itself for the intercept's cross terms) are
    # inputs, so that sums of encodings can carry them; the network learns
    # the rest
    return net["encoder"](torch.cat([x, y, x * y, y * y, outer], dim=-1))


def _predict(net, summary, count, x):
    """Predictive mean and standard deviation of the next outcome.

    ``summary`` is the sum of the encodings of the outcomes seen, ``count``
    their number (a tensor broadcastable to ``summary[..., 0]``).
    """
    import torch

    count = count.unsqueeze(-1)
    features = torch.cat(
        [
            summary / (count + 1.0),
            torch.log1p(count).expand(*summary.shape[:-1], 1),
            x.expand(*summary.shape[:-1], x.shape[-1]),
        ],
        dim=-1,
    )
    out = net["head"](features)
    mean = out[..., 0]
    std = torch.nn.functional.softplus(out[..., 1]) + 1e-3
    return mean, std


class NeuralSequenceGenerator(BaseEstimator):
    """Small torch sequence model that generates an arm's missing outcomes.

    The model predicts the next outcome :math:`y_{n+1}` of an arm from its
    context :math:`x_{n+1}` and the pairs :math:`(x_i, y_i)_{i \\le n}` seen
    so far, with a Gaussian whose mean and standard deviation come from a
    network fed with the average encoding of the pairs (so the prediction
    does not depend on their order, as a posterior predictive should not),
    the log count and :math:`x_{n+1}`. It is pretrained by maximum likelihood
    on the sequences of many tasks (:meth:`pretrain`), and then generates
    missing outcomes autoregressively (:meth:`sample`): each generated
    outcome is appended to the pairs that the next prediction conditions on.

    This is the default generator of :class:`GenerativeThompsonSampling`;
    any object with the same :meth:`sample` method can replace it.

    Read more in the :ref:`User Guide <generative_ts>`.

    Parameters
    ----------
    hidden_size : int, default=32
        Width of the encoder and of the predictive head.
    n_epochs : int, default=60
        Passes over the pretraining tasks.
    batch_size : int, default=32
        Tasks per gradient step.
    learning_rate : float, default=1e-2
        Step size of Adam.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization, the order of the tasks and the draws of
        :meth:`sample` when it is given no ``random_state``.
    verbose : int, default=0
        Print the training loss every tenth of the epochs when positive.

    Attributes
    ----------
    n_features_in_ : int
        Number of context features of the pretraining tasks.
    network_ : torch.nn.ModuleDict
        The trained encoder and head.
    loss_curve_ : list of float
        Average negative log-likelihood per outcome after each epoch.

    See Also
    --------
    make_linear_tasks : Simulated pretraining tasks.
    GenerativeThompsonSampling : The policy that uses the generator.

    Notes
    -----
    With encodings :math:`e_i = f(x_i, y_i, x_i y_i, y_i^2, x_i x_i^\\top)`
    (the distinct products :math:`x_{ij} x_{il}`, :math:`j \\le l`) and
    :math:`s_n = \\sum_{i\\le n} e_i`, the model is
    :math:`y_{n+1} \\mid x_{n+1}, s_n \\sim N(\\mu, \\sigma^2)` with
    :math:`(\\mu, \\sigma) = g(s_n / (n + 1), \\log(1 + n), x_{n+1})`.
    Pretraining minimizes
    :math:`-\\sum_{\\text{tasks}} \\sum_{n} \\log p(y_{n+1} \\mid x_{n+1},
    s_n)`, computed for all positions at once from prefix sums. The
    encoder's input holds every term of the sufficient statistics
    :math:`\\sum x_i x_i^\\top, \\sum x_i y_i, \\sum y_i, \\sum y_i^2` of
    Bayesian linear regression, whose posterior predictive is the optimum on
    linear tasks, so that the sums of encodings can carry them (without the
    :math:`x_i x_i^\\top` terms the network has to build them from ``tanh``
    units, and its predictive mean stayed further from the exact one after
    the same pretraining).

    References
    ----------
    .. [1] K. W. Zhang, T. Cai, H. Namkoong and D. Russo, "Contextual
       Thompson Sampling via Generation of Missing Data", 2025.
       arXiv:2502.07064.
    .. [2] T. Cai, H. Namkoong, D. Russo and K. W. Zhang, "Active
       Exploration via Autoregressive Generation of Missing Data", 2024.
       arXiv:2405.19466.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import NeuralSequenceGenerator, make_linear_tasks
    >>> X, y = make_linear_tasks(64, 30, 1, random_state=0)
    >>> gen = NeuralSequenceGenerator(n_epochs=5, random_state=0).pretrain(X, y)
    >>> draws = gen.sample(X[0, :10], y[0, :10], X[0, 10:], n_draws=3,
    ...                    random_state=0)
    >>> draws.shape
    (3, 20)
    """

    _parameter_constraints: dict = {
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_size=32,
        n_epochs=60,
        batch_size=32,
        learning_rate=1e-2,
        random_state=None,
        verbose=0,
    ):
        self.hidden_size = hidden_size
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def pretrain(self, X, y):
        """Pretrain the model on the outcome sequences of many tasks.

        Parameters
        ----------
        X : array-like of shape (n_tasks, n_rounds, n_features)
            Contexts of each task (``n_features`` may be 0).
        y : array-like of shape (n_tasks, n_rounds)
            Outcomes of each task.

        Returns
        -------
        self : object
            The pretrained generator.
        """
        import torch

        self._validate_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 3 or y.ndim != 2 or X.shape[:2] != y.shape:
            raise ValueError(
                "pretrain expects X of shape (n_tasks, n_rounds, n_features) and y "
                f"of shape (n_tasks, n_rounds); got {X.shape} and {y.shape}."
            )
        if y.shape[1] < 2:
            raise ValueError("Each pretraining task needs at least 2 rounds.")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("pretraining tasks contain NaN or infinite values.")
        rng = check_random_state(self.random_state)
        torch_seed = int(rng.randint(np.iinfo(np.int32).max))
        self._sample_seed = int(rng.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(torch_seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            net = _build_network(X.shape[2], self.hidden_size)
        Xt = torch.as_tensor(X, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        n_tasks, n_rounds = y.shape
        counts = torch.arange(n_rounds, dtype=torch.float32)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        self.loss_curve_ = []
        for epoch in range(self.n_epochs):
            order = torch.randperm(n_tasks, generator=generator)
            total = 0.0
            for lo in range(0, n_tasks, self.batch_size):
                idx = order[lo : lo + self.batch_size]
                xb, yb = Xt[idx], yt[idx]
                enc = _encode(net, xb, yb)
                # s_n: sum of the encodings strictly before position n
                prefix = torch.cumsum(enc, dim=1) - enc
                mean, std = _predict(
                    net, prefix, counts.expand(idx.shape[0], n_rounds), xb
                )
                nll = (torch.log(std) + 0.5 * ((yb - mean) / std) ** 2).mean()
                optimizer.zero_grad()
                nll.backward()
                optimizer.step()
                total += float(nll.detach()) * idx.shape[0]
            self.loss_curve_.append(total / n_tasks + 0.5 * np.log(2 * np.pi))
            if self.verbose and (
                epoch % max(self.n_epochs // 10, 1) == 0 or epoch == self.n_epochs - 1
            ):
                print(
                    f"[NeuralSequenceGenerator] epoch {epoch:4d} "
                    f"nll {self.loss_curve_[-1]:.4f}"
                )
        net.eval()
        for param in net.parameters():
            param.requires_grad_(False)
        self.network_ = net
        self.n_features_in_ = X.shape[2]
        return self

    def _check_pretrained(self):
        if not hasattr(self, "network_"):
            raise ValueError(
                "This NeuralSequenceGenerator is not pretrained yet; call "
                "pretrain(X_tasks, y_tasks) first (see make_linear_tasks)."
            )

    def predictive(self, X_history, y_history, X_target):
        """Mean and standard deviation of each target's next-outcome prediction.

        Every target is predicted from the history alone (no generated
        outcome is appended), which is the one-step posterior predictive.

        Parameters
        ----------
        X_history : array-like of shape (n_history, n_features)
            Contexts of the observed outcomes.
        y_history : array-like of shape (n_history,)
            Observed outcomes.
        X_target : array-like of shape (n_target, n_features)
            Contexts to predict.

        Returns
        -------
        mean, std : ndarray of shape (n_target,)
        """
        import torch

        self._check_pretrained()
        Xh, yh, Xt = self._check_sample_input(X_history, y_history, X_target)
        with torch.no_grad():
            summary = _encode(self.network_, Xh, yh).sum(dim=0)
            count = torch.full((Xt.shape[0],), float(Xh.shape[0]))
            mean, std = _predict(
                self.network_, summary.expand(Xt.shape[0], -1), count, Xt
            )
        return mean.double().numpy(), std.double().numpy()

    def _check_sample_input(self, X_history, y_history, X_target):
        import torch

        d = self.n_features_in_
        Xh = np.asarray(X_history, dtype=np.float64).reshape(-1, d)
        yh = np.asarray(y_history, dtype=np.float64).reshape(-1)
        Xt = np.asarray(X_target, dtype=np.float64).reshape(-1, d)
        if Xh.shape[0] != yh.shape[0]:
            raise ValueError(
                f"X_history has {Xh.shape[0]} rows but y_history has {yh.shape[0]}."
            )
        return (
            torch.as_tensor(Xh, dtype=torch.float32),
            torch.as_tensor(yh, dtype=torch.float32),
            torch.as_tensor(Xt, dtype=torch.float32),
        )

    def sample(self, X_history, y_history, X_target, *, n_draws=1, random_state=None):
        """Draw the missing outcomes of the targets jointly, one after another.

        Parameters
        ----------
        X_history : array-like of shape (n_history, n_features)
            Contexts of the observed outcomes of the arm.
        y_history : array-like of shape (n_history,)
            The observed outcomes.
        X_target : array-like of shape (n_target, n_features)
            Contexts whose outcomes are missing, generated in this order.
        n_draws : int, default=1
            Independent joint draws.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; ``None`` uses a stream seeded at
            :meth:`pretrain`.

        Returns
        -------
        y_target : ndarray of shape (n_draws, n_target)
            Generated outcomes.
        """
        import torch

        self._check_pretrained()
        Xh, yh, Xt = self._check_sample_input(X_history, y_history, X_target)
        if random_state is None:
            seed = self._sample_seed
            self._sample_seed = (self._sample_seed * 1103515245 + 12345) % (2**31)
        else:
            seed = int(check_random_state(random_state).randint(2**31 - 1))
        generator = torch.Generator().manual_seed(seed)
        net = self.network_
        n_target = Xt.shape[0]
        out = torch.empty(n_draws, n_target)
        with torch.no_grad():
            summary = _encode(net, Xh, yh).sum(dim=0).expand(n_draws, -1).clone()
            count = torch.full((n_draws,), float(Xh.shape[0]))
            noise = torch.randn(n_target, n_draws, generator=generator)
            for j in range(n_target):
                x = Xt[j].expand(n_draws, -1)
                mean, std = _predict(net, summary, count, x)
                y = mean + std * noise[j]
                out[:, j] = y
                summary += _encode(net, x, y)
                count += 1.0
        return out.double().numpy()
