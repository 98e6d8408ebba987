"""Epoch time of DRO criteria versus ERM for torch networks (CPU).

Two comparisons on the same simulated data, in the same run:

1. A plain torch training loop (MLP, Adam, mini-batches): ERM with the mean
   cross-entropy (the anchor) against :class:`skrobust.nn.DROLoss` with each
   ambiguity set and :class:`skrobust.nn.DualDROLoss`. This isolates the cost
   of the exact worst-case solve per batch.
2. skorch's ``NeuralNetClassifier`` (ERM, the anchor a user would otherwise
   pick) against :class:`skrobust.nn.DRONeuralNetClassifier`, whole fits.

Quality numbers: the exact chi-square robust risk (radius 0.2) of the training
losses, the test accuracy and the worst-group test loss of each fit.

The ``dro`` package (the DRO library anchor) is not timed: its wheel pins a
CUDA torch 2.14 that cannot be imported beside the CPU torch 2.13 of this
environment (see ANCHORS.md), and its neural models are not scikit-learn
estimators.

Run: ``python benchmarks/bench_nn.py`` (writes ``benchmarks/results/nn.md``).
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _measure import MEMORY_NOTE, memory_call
from skorch import NeuralNetClassifier

from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR, TotalVariation
from skrobust.nn import DROLoss, DRONeuralNetClassifier, DualDROLoss

torch.set_num_threads(1)

N_TRAIN, N_TEST, N_FEATURES = 20_000, 20_000, 20
HIDDEN, BATCH, LR = 64, 256, 1e-3
EPOCHS_LOOP = 5  # timed epochs per criterion in the plain loop (median)
EPOCHS_FIT = 5  # epochs of each whole fit
REPEATS_FIT = 3
RESULTS = Path(__file__).parent / "results" / "nn.md"


def simulate(n, rng):
    """Two latent groups (10% minority) whose labels follow different rules."""
    group = (rng.uniform(size=n) < 0.1).astype(int)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    score = np.where(group == 0, X[:, 0] + 0.5 * X[:, 2], X[:, 1] - 0.5 * X[:, 3])
    y = (score + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y, group


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 2)
    )


def per_sample_loss(model, X, y):
    with torch.no_grad():
        logits = model(torch.as_tensor(X))
        return torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(y), reduction="none"
        ).numpy()


def quality(losses_train, losses_test, group_test):
    return {
        "chi2_risk": ChiSquare(0.2).risk(losses_train),
        "worst_group": max(losses_test[group_test == g].mean() for g in (0, 1)),
    }


def plain_loops(criteria, X, y, seed=0):
    """Train one model per criterion, interleaving their epochs.

    Each round runs one epoch of every criterion in turn, so the load of the
    shared machine drifts equally over all of them.
    """
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    runs = {}
    for name, criterion in criteria.items():
        torch.manual_seed(seed)
        model = mlp()
        params = list(model.parameters()) + list(criterion.parameters())
        runs[name] = (model, criterion, torch.optim.Adam(params, lr=LR), [])
    for epoch in range(EPOCHS_LOOP):
        order = torch.randperm(len(yt), generator=torch.Generator().manual_seed(epoch))
        for model, criterion, optimizer, times in runs.values():
            start = time.perf_counter()
            for idx in order.split(BATCH):
                optimizer.zero_grad()
                criterion(model(Xt[idx]), yt[idx]).backward()
                optimizer.step()
            times.append(time.perf_counter() - start)
    return {name: (run[0], float(np.median(run[3]))) for name, run in runs.items()}


def main():
    global N_TRAIN, N_TEST, EPOCHS_LOOP, EPOCHS_FIT, REPEATS_FIT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small data, few epochs, one fit"
    )
    if parser.parse_args().quick:
        N_TRAIN, N_TEST, EPOCHS_LOOP, EPOCHS_FIT, REPEATS_FIT = 2000, 2000, 2, 1, 1
    rng = np.random.default_rng(0)
    X, y, _ = simulate(N_TRAIN, rng)
    X_test, y_test, group_test = simulate(N_TEST, rng)
    ce = torch.nn.CrossEntropyLoss(reduction="none")

    criteria = {
        "ERM (mean cross-entropy, anchor)": torch.nn.CrossEntropyLoss(),
        "DROLoss ChiSquare(0.2)": DROLoss(ce, ChiSquare(0.2)),
        "DROLoss CressieRead(0.2, k=3)": DROLoss(ce, CressieRead(0.2, k=3.0)),
        "DROLoss KL(0.1)": DROLoss(ce, KL(0.1)),
        "DROLoss CVaR(0.5)": DROLoss(ce, CVaR(0.5)),
        "DROLoss TotalVariation(0.2)": DROLoss(ce, TotalVariation(0.2)),
        "DualDROLoss ChiSquare(0.2)": DualDROLoss(ce, ChiSquare(0.2)),
        "DualDROLoss CVaR(0.5)": DualDROLoss(ce, CVaR(0.5)),
        "DualDROLoss CressieRead(0.2, k=3)": DualDROLoss(ce, CressieRead(0.2, k=3.0)),
    }
    loop_rows = []
    base_time = None
    for name, (model, epoch_time) in plain_loops(criteria, X, y).items():
        base_time = epoch_time if base_time is None else base_time
        q = quality(
            per_sample_loss(model, X, y),
            per_sample_loss(model, X_test, y_test),
            group_test,
        )
        loop_rows.append((name, epoch_time, epoch_time / base_time, q))
        print(f"{name:36s} {epoch_time:.3f} s/epoch  {q}")

    common = {"max_epochs": EPOCHS_FIT, "batch_size": BATCH, "lr": LR}
    fits = {
        "skorch NeuralNetClassifier (ERM, anchor)": lambda: NeuralNetClassifier(
            mlp,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            train_split=None,
            verbose=0,
            iterator_train__shuffle=True,
            **common,
        ),
        "DRONeuralNetClassifier ChiSquare(0) (ERM)": lambda: DRONeuralNetClassifier(
            hidden_layer_sizes=(HIDDEN,),
            ambiguity=ChiSquare(0.0),
            random_state=0,
            **common,
        ),
        "DRONeuralNetClassifier ChiSquare(0.2)": lambda: DRONeuralNetClassifier(
            hidden_layer_sizes=(HIDDEN,),
            ambiguity=ChiSquare(0.2),
            random_state=0,
            **common,
        ),
        "DRONeuralNetClassifier ChiSquare(0.2), dual": lambda: DRONeuralNetClassifier(
            hidden_layer_sizes=(HIDDEN,),
            ambiguity=ChiSquare(0.2),
            minibatch="dual",
            random_state=0,
            **common,
        ),
    }
    times = {name: [] for name in fits}
    fitted = {}
    for _ in range(REPEATS_FIT):  # round robin over the estimators
        for name, make in fits.items():
            torch.manual_seed(0)
            est = make()
            start = time.perf_counter()
            est.fit(X, y)
            times[name].append(time.perf_counter() - start)
            fitted[name] = est
    fit_rows = []
    base_fit = None
    for name, est in fitted.items():
        fit_time = float(np.median(times[name]))
        base_fit = fit_time if base_fit is None else base_fit
        q = quality(
            per_sample_loss(est.module_, X, y),
            per_sample_loss(est.module_, X_test, y_test),
            group_test,
        )
        q["accuracy"] = float((est.predict(X_test) == y_test).mean())

        def refit(make=fits[name]):
            torch.manual_seed(0)
            return make().fit(X, y)

        q["memory"] = memory_call(refit).cells(X.nbytes)
        fit_rows.append((name, fit_time, fit_time / base_fit, q))
        print(f"{name:44s} {fit_time:.2f} s  {q}")

    write(loop_rows, fit_rows)


def write(loop_rows, fit_rows):
    lines = [
        "## Neural nets: DRO criteria versus ERM (`skrobust.nn`)",
        "",
        f"Machine: 2 shared CPU cores (load from other jobs), "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        "one torch thread. No GPU was available; GPU runs are covered by tests "
        "marked `gpu` only.",
        f"Data: simulated, n = {N_TRAIN} train / {N_TEST} test, d = {N_FEATURES}, "
        "two latent groups (10% minority with a different labeling rule). "
        f"MLP {N_FEATURES}-{HIDDEN}-2 (ReLU), Adam lr {LR}, batch {BATCH}.",
        "Quality: exact chi-square (radius 0.2) robust risk of the training "
        "losses (lower is more robust), worst-group mean test log loss.",
        "",
        f"### Plain torch loop, median seconds per epoch over {EPOCHS_LOOP} "
        "interleaved epochs",
        "",
        "| criterion | s / epoch | ratio to ERM | chi2 robust risk (train) "
        "| worst-group test loss |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, t, ratio, q in loop_rows:
        lines.append(
            f"| {name} | {t:.3f} | {ratio:.2f} | {q['chi2_risk']:.4f} "
            f"| {q['worst_group']:.4f} |"
        )
    lines += [
        "",
        f"### Whole fits ({EPOCHS_FIT} epochs), median seconds over {REPEATS_FIT} fits",
        "",
        MEMORY_NOTE + " Input size: X's bytes (float32); torch's tensors are "
        "only in the RSS column.",
        "",
        "| estimator | fit s | ratio to skorch ERM | chi2 robust risk (train) "
        "| worst-group test loss | test accuracy | fit: peak traced / X "
        "| fit: peak RSS / X |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, t, ratio, q in fit_rows:
        lines.append(
            f"| {name} | {t:.2f} | {ratio:.2f} | {q['chi2_risk']:.4f} "
            f"| {q['worst_group']:.4f} | {q['accuracy']:.4f} "
            f"| {q['memory'][0]} | {q['memory'][1]} |"
        )
    lines += [
        "",
        "The exact solve is the ambiguity set's own (its torch backend, "
        "skrobust/ambiguity/_torch.py): on the CPU the numpy exact solve on a "
        "zero-copy view of the batch's losses, on other devices torch kernels "
        "(one sort for chi-square and CVaR, multisection passes for "
        "Cressie-Read k != 2 and KL) with no copy to the host. Its cost per "
        "batch is fixed Python/numpy overhead that does not grow with the "
        "network; the slowest are Cressie-Read k != 2 and KL, whose numpy "
        "solves iterate. The dual form adds one fused autograd node "
        "(elementwise work). In the whole fits about half of the time is "
        "skorch's per-sample dataset indexing and collation (profiled), paid "
        "equally by the ERM anchor. The DRO-trained models have a lower robust "
        "risk and a much lower worst-group loss at a small cost in accuracy.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
