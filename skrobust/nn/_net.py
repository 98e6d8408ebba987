"""The skorch net and default module the estimators build inside ``fit``."""

import copy
from collections.abc import Mapping

import numpy as np
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

    def train_step(self, batch, **fit_params):
        """One optimizer step, skipped for a batch whose weights are all zero.

        Such a batch contributes nothing to the weighted objective; skipping
        it (rather than stepping on a zero gradient) also keeps momentum
        optimizers such as Adam from moving the parameters.
        """
        Xi = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(Xi, Mapping):
            weight = torch.as_tensor(Xi["sample_weight"])
            if not bool((weight > 0).any()):
                loss = torch.zeros((), device=self.device)
                return {"loss": loss, "y_pred": None}
        return super().train_step(batch, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        check_finite_output(y_pred.detach())
        y_true = to_tensor(y_true, device=self.device)
        weight = None
        if isinstance(X, Mapping):
            weight = to_tensor(X["sample_weight"], device=self.device)
        return self.criterion_(y_pred, y_true, sample_weight=weight)


def to_float32(X, *, name="X"):
    """A private float32 copy of a validated float array, checked for overflow.

    Raises a ValueError naming ``name`` when a finite value lies beyond the
    float32 range (about 3.4e38), where the cast would give inf.
    """
    with np.errstate(over="ignore"):
        X32 = np.array(X, dtype=np.float32)
    if not np.isfinite(X32).all():
        big = float(np.max(np.abs(np.asarray(X, dtype=np.float64))))
        raise ValueError(
            f"{name} has values beyond the float32 range (max |{name}| = {big:.3g} "
            f"> {float(np.finfo(np.float32).max):.3g}) that the network, trained "
            f"in float32, cannot represent; rescale {name} (e.g. with "
            "sklearn.preprocessing.StandardScaler)."
        )
    return X32


def check_finite_output(output, *, name="X"):
    """Raise a ValueError naming ``name`` when a forward pass overflowed."""
    if not bool(torch.isfinite(output).all()):
        raise ValueError(
            "The network's float32 forward pass overflowed (its output holds NaN "
            f"or inf): {name} has values too large for the network; rescale "
            f"{name} (e.g. with sklearn.preprocessing.StandardScaler)."
        )


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
