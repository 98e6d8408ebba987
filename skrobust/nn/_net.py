"""The skorch net and default module the estimators build inside ``fit``."""

import copy
from collections.abc import Mapping

import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}


class MLP(nn.Module):
    """Fully connected network: ``Linear -> activation`` blocks, then ``Linear``."""

    def __init__(
        self, n_features, n_outputs, hidden_layer_sizes=(64,), activation="relu"
    ):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


class WeightedNet(NeuralNet):
    """skorch net whose batches carry ``sample_weight`` to the criterion.

    ``X`` is passed as ``{"X": features, "sample_weight": weights}``; the
    module sees the features only and the criterion gets the weights.
    """

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):
            x = x["X"]
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        weight = None
        if isinstance(X, Mapping):
            weight = to_tensor(X["sample_weight"], device=self.device)
        return self.criterion_(y_pred, y_true, sample_weight=weight)


def build_module(module, module_kwargs, n_features, n_outputs, hidden, activation):
    """Instantiate the user's module (class or instance) or the default MLP.

    An instance is deep-copied and its parameters are reset (with the seeded
    torch generator) through each submodule's ``reset_parameters``, so the
    user's object is never trained and fits are reproducible.
    """
    kwargs = dict(module_kwargs or {})
    if module is None:
        return MLP(n_features, n_outputs, tuple(hidden), activation)
    if isinstance(module, nn.Module):
        if kwargs:
            raise ValueError(
                "module_kwargs can only be used when module is a class, not an "
                "instance."
            )
        built = copy.deepcopy(module)
        for sub in built.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
        return built
    if isinstance(module, type) and issubclass(module, nn.Module):
        return module(**kwargs)
    raise TypeError(
        f"module must be None, a torch.nn.Module subclass or instance; got {module!r}."
    )


def resolve_device(device):
    """Check that the requested device exists and return its name."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested, but torch.cuda.is_available() is False."
        )
    return str(dev)


def rng_devices(device):
    """CUDA devices whose generator ``torch.random.fork_rng`` saves and restores."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return [dev.index if dev.index is not None else torch.cuda.current_device()]
    return []
