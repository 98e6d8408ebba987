"""Shared machinery of the DRO nets: validation, seeding, the skorch net,
the robust criterion, classification encoding."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    validate_data,
)
from torch import nn

from skrobust.ambiguity import ambiguity_constraint
from skrobust.nn._loss import DROLoss, DualDROLoss, net_ambiguity
from skrobust.nn._net import (
    _ACTIVATIONS,
    WeightedNet,
    build_module,
    check_finite_output,
    resolve_device,
    rng_devices,
    to_float32,
)

#: rows per forward pass in predictions
_PREDICT_CHUNK = 4096

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def _check_device_spec(device):
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from exc


def _training_data(X, weight):
    """What the skorch net trains on: weights travel with X only when needed."""
    if np.all(weight == 1.0):
        # unit weights: skip the per-sample weight lookup of every batch
        return X
    return {"X": X, "sample_weight": weight}


class _BaseNeuralNet(BaseEstimator):
    """Shared fitting logic: validation, seeding, the skorch net."""

    _parameter_constraints = {
        "module": [None, type, nn.Module],
        "module_kwargs": [None, dict],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _validate_hidden(self):
        hidden = tuple(np.atleast_1d(np.asarray(self.hidden_layer_sizes)).tolist())
        if any(not isinstance(h, Integral) or h < 1 for h in hidden):
            raise ValueError(
                "hidden_layer_sizes must hold positive integers; got "
                f"{self.hidden_layer_sizes!r}."
            )
        return hidden

    def _optimizer_class(self):
        if isinstance(self.optimizer, str):
            return _OPTIMIZERS[self.optimizer]
        return self.optimizer

    def _make_net(self, net_class, module, criterion, n_samples, device, **extra):
        return net_class(
            module=module,
            criterion=criterion,
            optimizer=self._optimizer_class(),
            optimizer__weight_decay=float(self.weight_decay),
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size)
            if n_samples is None
            else min(int(self.batch_size), n_samples),
            iterator_train__shuffle=True,
            train_split=None,
            device=device,
            verbose=int(self.verbose),
            **extra,
        )

    def _prepare(self, X, y, sample_weight, *, multi_output, y_numeric):
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=multi_output,
            y_numeric=y_numeric,
        )
        # a private float32 copy: the input is never modified nor shared
        X = to_float32(X)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        # mean one over the data set: batch means of weighted terms are unbiased
        weight = (sample_weight / sample_weight.mean()).astype(np.float32)
        device, seed = self._device_and_seed()
        return X, y, weight, device, seed

    def _device_and_seed(self):
        _check_device_spec(self.device)
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # seeds of the successive partial_fit calls (their shuffling)
        self._partial_rng = np.random.default_rng(seed)
        return device, seed

    def _prepare_partial(self, X, y, sample_weight, *, multi_output, y_numeric):
        """Validation of a partial_fit chunk; weights are used as given."""
        first_call = not hasattr(self, "_net")
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=multi_output,
            y_numeric=y_numeric,
            reset=first_call,
        )
        X = to_float32(X)
        # not normalized: the mean weight of the whole stream is unknown here
        weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        ).astype(np.float32)
        return X, y, weight, first_call

    def _predict_raw(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = to_float32(X)
        self.module_.eval()
        device = self._net.device
        outputs = []
        # direct batched inference: a DataLoader would draw from torch's
        # global generator, which predictions must leave untouched
        with torch.no_grad():
            for start in range(0, X.shape[0], _PREDICT_CHUNK):
                chunk = torch.tensor(X[start : start + _PREDICT_CHUNK], device=device)
                out = self.module_(chunk)
                check_finite_output(out)
                outputs.append(out.to("cpu", torch.float64))
        return torch.cat(outputs).reshape(X.shape[0], -1).numpy()

    def _per_sample_losses(self, X, y):
        """Per-sample base losses of the fitted model, as a float64 array."""
        raw = torch.as_tensor(self._predict_raw(X), dtype=torch.float64)
        target = torch.as_tensor(self._encode_for_loss(y))
        with torch.no_grad():
            losses = self._base_criterion()(raw, target)
        if losses.dim() > 1:
            losses = losses.reshape(losses.shape[0], -1).mean(dim=1)
        return losses.numpy()


class _DRONetMixin:
    """Fitting on a robust risk and its exact evaluation."""

    _parameter_constraints = {
        **_BaseNeuralNet._parameter_constraints,
        "ambiguity": [None, *ambiguity_constraint(shortcuts=())],
        "minibatch": [StrOptions({"exact", "dual"})],
    }

    def __init__(
        self,
        module=None,
        *,
        module_kwargs=None,
        hidden_layer_sizes=(64,),
        activation="relu",
        ambiguity=None,
        minibatch="exact",
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.module = module
        self.module_kwargs = module_kwargs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.ambiguity = ambiguity
        self.minibatch = minibatch
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def robust_risk(self, X, y, sample_weight=None):
        """Exact robust risk of the fitted model's losses on ``(X, y)``.

        Computed with :meth:`skrobust.ambiguity.ReweightingAmbiguitySet.risk` on the
        per-sample losses of the whole data set (not mini-batches).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the nominal distribution.

        Returns
        -------
        risk : float
            The worst-case expected loss over the ambiguity set.
        """
        losses = self._per_sample_losses(X, y)
        return net_ambiguity(self.ambiguity).risk(losses, sample_weight)

    def _criterion(self):
        ambiguity = net_ambiguity(self.ambiguity)
        if self.minibatch == "dual" and not ambiguity._expectation_dual:
            raise ValueError(
                "minibatch='dual' supports the ChiSquare, CressieRead and CVaR "
                "sets; use minibatch='exact' with KL and TotalVariation."
            )
        criterion = DROLoss if self.minibatch == "exact" else DualDROLoss
        return criterion, ambiguity

    def _new_net(self, n_features, n_outputs, n_samples, device):
        """The skorch net with a freshly built module (under the caller's seed)."""
        criterion, ambiguity = self._criterion()
        hidden = self._validate_hidden()
        module = build_module(
            self.module,
            self.module_kwargs,
            n_features,
            n_outputs,
            hidden,
            self.activation,
        )
        return self._make_net(
            WeightedNet,
            module,
            criterion,
            n_samples,
            device,
            criterion__base_criterion=self._base_criterion(),
            criterion__ambiguity=ambiguity,
        )

    def _store_net(self, net):
        self._net = net
        self.module_ = net.module_
        self.criterion_ = net.criterion_
        self.loss_curve_ = np.asarray(net.history[:, "train_loss"], dtype=float)
        self.n_iter_ = len(net.history)
        return self

    def _fit_net(self, X, y_enc, weight, device, seed, n_outputs):
        self._criterion()  # bad settings fail before anything is built
        with torch.random.fork_rng(devices=rng_devices(device)):
            torch.manual_seed(seed)
            net = self._new_net(X.shape[1], n_outputs, X.shape[0], device)
            net.fit(_training_data(X, weight), y_enc)
        self._n_outputs = n_outputs
        return self._store_net(net)

    def _partial_fit_net(self, X, y_enc, weight, n_outputs, first_call):
        """One pass over a chunk, building the net on the first call."""
        if first_call:
            self._criterion()
            device, seed = self._device_and_seed()
            ambiguity = net_ambiguity(self.ambiguity)
            if self.minibatch == "exact" and not ambiguity.is_trivial():
                warnings.warn(
                    "partial_fit with minibatch='exact' minimizes the robust risk "
                    "of each mini-batch, a biased (too optimistic) estimate of the "
                    "robust risk of the whole data stream; use minibatch='dual', "
                    "whose mini-batch gradients are unbiased, for out-of-core "
                    "training.",
                    UserWarning,
                    stacklevel=4,
                )
            with torch.random.fork_rng(devices=rng_devices(device)):
                torch.manual_seed(seed)
                net = self._new_net(X.shape[1], n_outputs, None, device)
                net.initialize()
            self._n_outputs = n_outputs
        else:
            net = self._net
            if n_outputs != self._n_outputs:
                raise ValueError(
                    f"y has {n_outputs} outputs, but the estimator was fitted "
                    f"with {self._n_outputs}."
                )
        call_seed = int(self._partial_rng.integers(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=rng_devices(net.device)):
            torch.manual_seed(call_seed)
            net.partial_fit(_training_data(X, weight), y_enc, epochs=1)
        return self._store_net(net)


class _NeuralNetClassifierBase(ClassifierMixin, _BaseNeuralNet):
    """Label encoding, cross-entropy and probabilities of the classifiers."""

    def _base_criterion(self):
        return nn.CrossEntropyLoss(reduction="none")

    def _encode_for_loss(self, y):
        y = np.asarray(y)
        if not np.all(np.isin(y, self.classes_)):
            raise ValueError("y contains labels not seen during fit.")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _encode_classes(self, y):
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "The classifier needs samples of at least 2 classes in y; got 1 class."
            )
        return encoder.transform(y).astype(np.int64)

    def _encode_partial(self, y, classes, first_call):
        """Encode the labels of a partial_fit chunk against ``classes_``."""
        check_classification_targets(y)
        if first_call:
            if classes is None:
                raise ValueError(
                    "classes must be given on the first call to partial_fit: all "
                    "the labels of the data set, since a chunk may miss some."
                )
            classes = np.unique(np.asarray(classes))
            if classes.shape[0] < 2:
                raise ValueError(
                    "The classifier needs at least 2 classes; classes holds "
                    f"{classes.shape[0]}."
                )
        else:
            if classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_
            ):
                raise ValueError(
                    f"classes={np.unique(np.asarray(classes)).tolist()} differs "
                    f"from the classes {self.classes_.tolist()} of the first call."
                )
            classes = self.classes_
        unknown = ~np.isin(y, classes)
        if np.any(unknown):
            raise ValueError(
                f"y contains labels {np.unique(y[unknown])[:5].tolist()} that are "
                f"not in classes {classes.tolist()}."
            )
        # classes_ is set by the caller once the chunk has been trained on
        return np.searchsorted(classes, y).astype(np.int64), classes

    def predict_proba(self, X):
        """Class probabilities: the softmax of the network's logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        logits = self._predict_raw(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        raw = self._predict_raw(X)
        return self.classes_[np.argmax(raw, axis=1)]
