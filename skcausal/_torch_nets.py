"""C-Learner backbone for skorch neural nets (imported only when used)."""

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback


class _ConstrainedNet(NeuralNetRegressor):
    """Squared loss on the training rows plus ``penalty * n * g^2``.

    ``g = sum w (y - f) / sum w`` is the held-out constraint, recomputed on
    the whole held-out fold at every training batch.
    """

    def __init__(self, *args, constraint_penalty=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.constraint_penalty = constraint_penalty

    def set_constraint(self, X_ev, y_ev, w):
        self.constraint_data_ = (
            torch.as_tensor(X_ev, dtype=torch.float32),
            torch.as_tensor(y_ev, dtype=torch.float32),
            torch.as_tensor(w / w.sum(), dtype=torch.float32),
        )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training or self.constraint_penalty == 0:
            return loss
        X_ev, y_ev, w = (a.to(self.device) for a in self.constraint_data_)
        f_ev = self.infer(X_ev).reshape(-1)
        g = torch.sum(w * (y_ev - f_ev))
        return loss + self.constraint_penalty * g**2

    def constraint_violation(self):
        X_ev, y_ev, w = self.constraint_data_
        f_ev = self.predict(X_ev.numpy()).reshape(-1).astype(np.float64)
        return float(np.dot(w.numpy().astype(np.float64), y_ev.numpy() - f_ev))


def _output_bias(module):
    """The bias of the last linear layer with one output, or None."""
    last = None
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            last = layer
    if last is None or last.bias is None or last.out_features != 1:
        return None
    return last.bias


class _ExactConstraint(Callback):
    """After each epoch, shift the output bias so the constraint holds."""

    def on_epoch_end(self, net, **kwargs):
        bias = _output_bias(net.module_)
        if bias is None:
            return
        with torch.no_grad():
            bias += net.constraint_violation()


class _NetArm:
    """A fitted constrained net plus a float64 shift (rounding of float32)."""

    def __init__(self, net, shift):
        self.net = net
        self.shift = shift

    def predict(self, X):
        pred = self.net.predict(np.asarray(X, dtype=np.float32))
        return pred.reshape(-1).astype(np.float64) + self.shift


def _constrained_skorch(model, X_tr, y_tr, X_ev, y_ev, w, penalty, seed, sw_tr=None):
    if sw_tr is not None:
        # skorch's fit takes no weights: integer weights become repeated rows
        counts = np.rint(sw_tr)
        if not np.allclose(counts, sw_tr):
            raise TypeError(
                "A skorch backbone of CLearner takes integer sample_weight only "
                "(passed as repeated rows)."
            )
        rows = np.repeat(np.arange(X_tr.shape[0]), counts.astype(np.intp))
        X_tr, y_tr = X_tr[rows], y_tr[rows]
    params = model.get_params(deep=False)
    callbacks = list(params.pop("callbacks", None) or [])
    callbacks.append(("exact_constraint", _ExactConstraint()))
    params["train_split"] = None
    net = _ConstrainedNet(callbacks=callbacks, constraint_penalty=penalty, **params)
    net.set_constraint(X_ev, y_ev, w)
    torch.manual_seed(seed)
    net.fit(
        np.asarray(X_tr, dtype=np.float32),
        np.asarray(y_tr, dtype=np.float32).reshape(-1, 1),
    )
    f_ev = net.predict(np.asarray(X_ev, dtype=np.float32)).reshape(-1)
    violation_before = float(np.dot(w, y_ev - f_ev) / w.sum())
    shift = violation_before
    return _NetArm(net, shift), {"violation_before_shift": violation_before}
