"""Benchmark of skrobust.metrics and skrobust.shift.

No library that users would otherwise pick implements these estimators (the
worst-subpopulation risk of Li, Namkoong and Xia; the KL stability of
Namkoong, Ma and Glynn; DISDE of Cai, Namkoong and Yadlowsky), so there is no
anchor to time against. What this script measures, in one run:

1. Coverage of the 95% interval of ``worst_subpopulation_risk`` over repeated
   draws with a known truth, for linear and gradient-boosting first stages at
   n = 2000 and 8000, with and without the bias correction, next to the naive
   estimators (and, in a second table, an unregularized boosting first stage).
2. Coverage of the DISDE intervals under a pure covariate shift, with the
   weights treated as known and with their influence function (one-step).
3. Influence-function against jackknife standard errors.
4. Convergence of ``kl_stability`` for X ~ Exp(1) below (y = 1.5) and at
   (y = 2) the phase shift.
5. Times: the CVaR curve over 50 levels from one sort against 50 separate
   calls, and DISDE against the cost of its domain classifier.

Run: ``python benchmarks/bench_metrics.py [--sections ...] [--n-jobs 2]``; it
writes ``benchmarks/results/metrics.md``, keeping the sections not rerun.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _measure import MEMORY_NOTE, memory_call
from joblib import Parallel, delayed
from scipy.integrate import quad
from scipy.stats import norm
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from skrobust.ambiguity import CVaR
from skrobust.metrics import WorstSubpopulationEvaluator, worst_subpopulation_risk
from skrobust.shift import decompose_performance_shift, kl_stability

ALPHA = 0.2
TRUTH = 1 - ALPHA / 2  # E[Z_1 | Z_1 > 1 - alpha] for Z_1 ~ U(0, 1)
D = 5  # Z_1 drives the errors, Z_2..Z_5 are noise
DISDE_TERMS = ("x_shift_shared", "y_given_x_shift", "x_shift_unseen")

# name -> (first stage, bias_correction); None is the default regularized
# boosting of worst_subpopulation_risk
FIRST_STAGES = {
    "linear (correct)": (LinearRegression(), True),
    "linear (correct), no correction": (LinearRegression(), False),
    "boosting, regularized (default)": (None, True),
    "boosting, regularized, no correction": (None, False),
}
EXTRA_STAGES = {
    "boosting, sklearn defaults": (HistGradientBoostingRegressor(), True),
    "boosting, sklearn defaults, no correction": (
        HistGradientBoostingRegressor(),
        False,
    ),
}


def _draw(n, rng):
    Z = rng.uniform(size=(n, D))
    errors = (rng.uniform(size=n) < Z[:, 0]).astype(float)
    return Z, errors


def _one_replicate(n, seed, stages):
    rng = np.random.default_rng(seed)
    Z, errors = _draw(n, rng)
    y_true = np.zeros(n)
    row = {}
    for name, (regressor, correction) in stages.items():
        r = worst_subpopulation_risk(
            y_true,
            errors,
            Z,
            ALPHA,
            regressor=regressor,
            bias_correction=correction,
            random_state=seed,
        )
        row[name] = (r.risk, r.lower, r.upper, r.std_error)
    # naive 1: CVaR of the raw per-sample losses
    row["naive: CVaR of raw losses"] = (CVaR(alpha=ALPHA).risk(errors),) + (np.nan,) * 3
    # naive 2: worst predefined group (Z_1 above its median, a coarse group)
    group = Z[:, 0] > 0.5
    row["naive: worst predefined group (Z_1 > 1/2)"] = (errors[group].mean(),) + (
        np.nan,
    ) * 3
    return row


def coverage_study(
    reps,
    n_jobs,
    sizes=(2000, 8000),
    stages=None,
    naive=True,
    title="Coverage of the 95% interval of `worst_subpopulation_risk`",
):
    stages = FIRST_STAGES if stages is None else stages
    lines = [
        "",
        f"### {title}",
        "",
        f"Z ~ U(0, 1)^{D}, the model errs with probability Z_1, alpha = {ALPHA}: "
        f"the worst-case error rate is 1 - alpha/2 = {TRUTH}. Five-fold "
        f"cross-fitting, {reps} independent draws per row, influence-function "
        "standard errors. With the correction (`bias_correction=True`, the "
        "default) each training fold is split into two random halves, one "
        "first stage is fitted on each, the conditional risk is their average "
        "and <q1 - q2, mu1 - mu2> / 8 is added (the misranking bias); without "
        "it, one first stage per fold (the previous default). 'lower ok' / "
        "'upper ok': how often each end is on its side of the truth (nominal "
        "0.975 each).",
        "",
        "| n | first stage | coverage | lower ok | upper ok | bias "
        "| sd of estimate | mean std. error | mean width | wall s per draw, all rows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in sizes:
        start = time.perf_counter()
        rows = Parallel(n_jobs=n_jobs)(
            delayed(_one_replicate)(n, 1000 * n + r, stages) for r in range(reps)
        )
        elapsed = time.perf_counter() - start
        for name in rows[0]:
            v = np.array([row[name] for row in rows])
            bias = v[:, 0].mean() - TRUTH
            sd = v[:, 0].std(ddof=1)
            if np.isnan(v[0, 1]):
                if not naive:
                    continue
                lines.append(
                    f"| {n} | {name} | - | - | - | {bias:+.4f} | {sd:.4f} | - | - | - |"
                )
                continue
            cover = np.mean((v[:, 1] <= TRUTH) & (TRUTH <= v[:, 2]))
            lower_ok = np.mean(v[:, 1] <= TRUTH)
            upper_ok = np.mean(v[:, 2] >= TRUTH)
            width = np.mean(v[:, 2] - v[:, 1])
            lines.append(
                f"| {n} | {name} | {cover:.3f} | {lower_ok:.3f} | {upper_ok:.3f} "
                f"| {bias:+.4f} | {sd:.4f} | {v[:, 3].mean():.4f} | {width:.4f} "
                "| |"
            )
        lines[-1] = lines[-1].rsplit("|", 2)[0] + f"| {elapsed / reps:.2f} |"
        print("\n".join(lines[-len(rows[0]) :]), flush=True)
    return lines


def _disde_replicate(n, seed, model):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, 1))
    Xt = rng.normal(loc=1.0, size=(n, 1))
    ys = Xs[:, 0] ** 2 + rng.normal(size=n)
    yt = Xt[:, 0] ** 2 + rng.normal(size=n)
    out = {}
    for method in ("weighting", "one_step"):
        r = decompose_performance_shift(
            model,
            Xs,
            ys,
            Xt,
            yt,
            loss="squared_error",
            method=method,
            random_state=seed,
        )
        out[method] = [
            (getattr(r, t), *r.intervals[t], r.std_errors[t]) for t in DISDE_TERMS
        ]
    return out


def _disde_truth(model, shift=1.0):
    """Exact terms for source N(0, 1), target N(shift, 1), the same Y | X.

    mu(x) = (x^2 - a - b x)^2 + 1; the shared density is proportional to
    p q / (p + q); one-dimensional quadrature.
    """
    a, b = model.intercept_, model.coef_[0]

    def mu(x):
        return (x**2 - a - b * x) ** 2 + 1.0

    def s(x):
        p, q = norm.pdf(x), norm.pdf(x, loc=shift)
        return p * q / (p + q)

    lo, hi = -12.0, 12.0 + shift
    e_s = quad(lambda x: s(x) * mu(x), lo, hi)[0] / quad(s, lo, hi)[0]
    e_p = quad(lambda x: norm.pdf(x) * mu(x), lo, hi)[0]
    e_q = quad(lambda x: norm.pdf(x, loc=shift) * mu(x), lo, hi)[0]
    return e_s - e_p, 0.0, e_q - e_s


def disde_study(reps, n_jobs, n=2000):
    rng = np.random.default_rng(100)
    X0 = rng.normal(size=(5000, 1))
    model = LinearRegression().fit(X0, X0[:, 0] ** 2 + rng.normal(size=5000))
    truth = _disde_truth(model)
    lines = [
        "",
        "### Coverage of the DISDE intervals",
        "",
        f"Source X ~ N(0, 1), target X ~ N(1, 1), Y = X^2 + N(0, 1) in both "
        f"(a pure covariate shift), a fixed linear model, squared error; "
        f"n = {n} per domain, {reps} draws, logistic domain classifier (well "
        "specified), five folds. Truth by quadrature: "
        + ", ".join(f"{t} = {v:.4f}" for t, v in zip(DISDE_TERMS, truth, strict=True))
        + ". `weighting`: overlap-weighted means, weights treated as known; "
        "`one_step` (default): adds the influence function of the estimated "
        "weights, with cross-fitted boosting regressions of the loss.",
        "",
        "| method | term | coverage | bias | sd of estimate | mean std. error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = Parallel(n_jobs=n_jobs)(
        delayed(_disde_replicate)(n, 9000 + r, model) for r in range(reps)
    )
    for method in ("weighting", "one_step"):
        v = np.array([row[method] for row in rows])
        for i, term in enumerate(DISDE_TERMS):
            est, lo, hi, se = v[:, i].T
            cover = np.mean((lo <= truth[i]) & (truth[i] <= hi))
            lines.append(
                f"| {method} | {term} | {cover:.3f} | {est.mean() - truth[i]:+.4f} "
                f"| {est.std(ddof=1):.4f} | {se.mean():.4f} |"
            )
    print("\n".join(lines[-6:]), flush=True)
    return lines


def _jackknife_replicate(n, seed):
    rng = np.random.default_rng(seed)
    Z, errors = _draw(n, rng)
    y_true = np.zeros(n)
    out = []
    for variance in ("influence", "jackknife"):
        r = worst_subpopulation_risk(
            y_true,
            errors,
            Z,
            ALPHA,
            variance=variance,
            bias_correction=False,
            random_state=seed,
        )
        out.append((r.risk, r.lower, r.upper, r.std_error))
    return out


def jackknife_study(reps_by_n, n_jobs):
    lines = [
        "",
        "### Influence-function against jackknife standard errors",
        "",
        "Same design, regularized boosting first stage without the bias "
        "correction (`bias_correction=False`), the same estimate with the two "
        "variance options of `worst_subpopulation_risk`: "
        "the influence function, and a delete-a-group jackknife of the whole "
        "procedure (10 groups, first stage refitted with the same fold labels, "
        "t quantile with 9 degrees of freedom).",
        "",
        "| n | draws | variance | coverage | lower ok | bias | sd of estimate "
        "| mean std. error | mean width |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, reps in reps_by_n.items():
        rows = Parallel(n_jobs=n_jobs)(
            delayed(_jackknife_replicate)(n, 7000 * n + r) for r in range(reps)
        )
        v = np.array(rows)  # (reps, 2, 4)
        for k, name in enumerate(("influence", "jackknife")):
            w = v[:, k]
            cover = np.mean((w[:, 1] <= TRUTH) & (TRUTH <= w[:, 2]))
            lines.append(
                f"| {n} | {reps} | {name} | {cover:.3f} "
                f"| {np.mean(w[:, 1] <= TRUTH):.3f} | {w[:, 0].mean() - TRUTH:+.4f} "
                f"| {w[:, 0].std(ddof=1):.4f} | {w[:, 3].mean():.4f} "
                f"| {np.mean(w[:, 2] - w[:, 1]):.4f} |"
            )
        print("\n".join(lines[-2:]), flush=True)
    return lines


def stability_study(reps):
    lines = [
        "",
        "### Convergence of `kl_stability` for X ~ Exp(1)",
        "",
        "I(y) = y - 1 - log y; lambda* = 1 - 1/y. At y = 1.5, E exp(2 lambda* X)"
        " is finite and the normal interval applies; at y = 2 it is infinite"
        " (the boundary of the phase shift of Namkoong, Ma and Glynn).",
        f"{reps} draws per row.",
        "",
        "| y | n | truth | bias | sd of estimate | mean std. error | coverage |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rng = np.random.default_rng(0)
    for y in (1.5, 2.0):
        truth = y - 1 - np.log(y)
        for n in (1000, 10000, 100000):
            v = []
            for _ in range(reps):
                r = kl_stability(rng.exponential(size=n), y)
                v.append((r.stability, r.lower, r.upper, r.std_error))
            v = np.array(v)
            cover = np.mean((v[:, 1] <= truth) & (truth <= v[:, 2]))
            lines.append(
                f"| {y} | {n} | {truth:.4f} | {v[:, 0].mean() - truth:+.4f} "
                f"| {v[:, 0].std(ddof=1):.4f} | {v[:, 3].mean():.4f} | {cover:.3f} |"
            )
            print(lines[-1], flush=True)
    return lines


def _median_time(func, *args, repeats=5, **kwargs):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _separate_levels(mu, losses, alphas):
    """The curve by one CVaR solve per level on the raw conditional risks."""
    n = losses.shape[0]
    for a in alphas:
        _, q = CVaR(alpha=a).risk_and_weights(mu)
        eta = mu[q > 0].min()
        psi = eta + n * q * (losses - eta)
        psi.std(ddof=1)


def _fit_domain_classifiers(X, d, times=5):
    for _ in range(times):
        LogisticRegression().fit(X, d)


def timing_study():
    rng = np.random.default_rng(0)
    lines = [
        "",
        "### Times (median of 5)",
        "",
        MEMORY_NOTE + " Input size: the conditional-risk vector's bytes (curves) "
        "or the two domains' X bytes (DISDE).",
        "",
        "| task | n | ours (s) | reference (s) | ratio | ours: peak traced / input "
        "| ours: peak RSS / input |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    alphas = np.linspace(0.02, 1.0, 50)
    for n in (10_000, 100_000):
        Z, errors = _draw(n, rng)
        y = errors.astype(int)
        model = DummyClassifier(strategy="constant", constant=0).fit(Z, y)
        evaluator = WorstSubpopulationEvaluator(
            model,
            subpopulation_size=0.2,
            regressor=LinearRegression(),
            bias_correction=False,
            random_state=0,
        ).fit(Z, y)
        mu = evaluator.conditional_risk_
        ours = _median_time(CVaR().risk_curve, mu, alphas)
        ref = _median_time(lambda: [CVaR(alpha=a).risk(mu) for a in alphas])
        mem = memory_call(lambda mu=mu: CVaR().risk_curve(mu, alphas)).cells(mu.nbytes)
        lines.append(
            f"| CVaR.risk_curve over 50 levels vs CVaR(alpha).risk per level "
            f"| {n} | {ours:.4f} | {ref:.4f} | {ours / ref:.3g} | {mem[0]} | {mem[1]} |"
        )
        print(lines[-1], flush=True)
        ours = _median_time(evaluator.risk_curve, alphas)
        ref = _median_time(
            _separate_levels, evaluator.conditional_risk_, evaluator.losses_, alphas
        )
        mem = memory_call(lambda ev=evaluator: ev.risk_curve(alphas)).cells(mu.nbytes)
        lines.append(
            f"| evaluator curve over 50 levels (no correction) vs a CVaR solve "
            "and influence values per level "
            f"| {n} | {ours:.4f} | {ref:.4f} | {ours / ref:.3g} | {mem[0]} | {mem[1]} |"
        )
        print(lines[-1], flush=True)
    for n in (5000, 50000):
        Xs = rng.normal(size=(n, 5))
        Xt = rng.normal(loc=0.5, size=(n, 5))
        ys = Xs[:, 0] + rng.normal(size=n)
        yt = Xt[:, 0] + rng.normal(size=n)
        model = LinearRegression().fit(Xs, ys)
        ours = _median_time(
            decompose_performance_shift,
            model,
            Xs,
            ys,
            Xt,
            yt,
            loss="squared_error",
            random_state=0,
        )
        ref = _median_time(
            _fit_domain_classifiers, np.r_[Xs, Xt], np.r_[np.zeros(n), np.ones(n)]
        )
        mem = memory_call(
            lambda: decompose_performance_shift(
                model, Xs, ys, Xt, yt, loss="squared_error", random_state=0
            )
        ).cells(Xs.nbytes + Xt.nbytes)
        lines.append(
            f"| DISDE, default one-step (classifier and two boosting regressions "
            f"per fold) vs its 5 domain-classifier fits alone | {n} + {n} "
            f"| {ours:.4f} | {ref:.4f} | {ours / ref:.3g} | {mem[0]} | {mem[1]} |"
        )
        print(lines[-1], flush=True)
    return lines


SECTIONS = ("coverage", "unregularized", "disde", "jackknife", "stability", "timing")


def _blocks(text):
    """Split a results file into its header and its ``###`` sections."""
    header, blocks, title = [], {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line
            blocks[title] = [line]
        elif title is None:
            header.append(line)
        else:
            blocks[title].append(line)
    return header, blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--unregularized-reps", type=int, default=100)
    parser.add_argument("--disde-reps", type=int, default=200)
    parser.add_argument("--stability-reps", type=int, default=300)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--jackknife-reps",
        type=int,
        nargs=2,
        default=(80, 40),
        metavar=("N2000", "N8000"),
        help="draws of the jackknife study at n = 2000 and n = 8000",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="sections to run; the others are kept from the existing output",
    )
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent / "results" / "metrics.md"),
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few draws per study, to check it runs"
    )
    args = parser.parse_args()
    if args.quick:
        args.reps = args.unregularized_reps = args.disde_reps = 4
        args.stability_reps, args.jackknife_reps = 4, (2, 2)
    reps_by_n = dict(zip((2000, 8000), args.jackknife_reps, strict=True))
    runs = {
        "coverage": lambda: coverage_study(args.reps, args.n_jobs),
        "unregularized": lambda: coverage_study(
            args.unregularized_reps,
            args.n_jobs,
            stages=EXTRA_STAGES,
            naive=False,
            title="Coverage with an unregularized boosting first stage",
        ),
        "disde": lambda: disde_study(args.disde_reps, args.n_jobs),
        "jackknife": lambda: jackknife_study(reps_by_n, args.n_jobs),
        "stability": lambda: stability_study(args.stability_reps),
        "timing": timing_study,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    header = [
        "## Evaluation: worst-subpopulation risk, stability, DISDE",
        "",
        f"Machine: 2 shared cores (busy with other jobs), {platform.python_version()}"
        " Python, OMP_NUM_THREADS=1. Produced by `benchmarks/bench_metrics.py` "
        "(each section says how; `--sections` reruns some and keeps the others). "
        "No anchor library implements these estimators; quality is checked "
        "against known truths instead.",
    ]
    command = " ".join(["benchmarks/bench_metrics.py"] + sys.argv[1:])
    fresh = {}
    for name in args.sections:
        lines = runs[name]()
        lines.append(f"\n(Section produced by `{command}`.)")
        fresh[name] = next(iter(_blocks("\n".join(lines))[1].values()))
    # read the existing sections only now, so that runs in parallel keep
    # each other's sections
    _, old = _blocks(output.read_text()) if output.exists() else ([], {})
    body = []
    for name in SECTIONS:
        if name in fresh:
            body += ["", *fresh[name]]
        else:
            title = next((t for t in old if _SECTION_TITLES[name] in t), None)
            if title is not None:
                body += ["", *old[title]]
    output.write_text("\n".join(header + body).rstrip() + "\n")
    print(f"wrote {output}")


_SECTION_TITLES = {
    "coverage": "Coverage of the 95% interval",
    "unregularized": "Coverage with an unregularized",
    "disde": "Coverage of the DISDE",
    "jackknife": "Influence-function against jackknife",
    "stability": "Convergence of `kl_stability`",
    "timing": "Times (median",
}


if __name__ == "__main__":
    main()
