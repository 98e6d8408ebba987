"""Benchmark of skcausal: simulations with known truth and anchor libraries.

Run as a script from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_causal.py [--reps 200] [--quick]

It creates ``benchmarks/.venv-causal`` on first use (DoubleML, EconML and
skcausal installed with ``--no-deps``), re-runs itself there, and writes
``benchmarks/results/causal.md``:

1. Kang-Schafer, misspecified linear nuisances, E[Y(1)] at n = 200: bias,
   RMSE and coverage of 95% intervals of AIPW, TMLE and C-Learner (the
   headline comparison of Cai, Fonseca, Hou and Namkoong).
2. An easy-overlap and a limited-overlap design (propensities reaching 0.01
   and 0.99): bias, RMSE and coverage of the ATE estimators and of the
   bias-aware trimming interval; bias and coverage of the worst-case
   (lower CVaR) treatment effect.
3. Side by side on the same data with the same LightGBM nuisances: our AIPW
   and C-Learner against DoubleML's IRM and EconML's DRLearner (estimate,
   95% interval, median time over repeats, ratio ours/anchor, peak memory).
4. Time and peak memory of every skcausal estimator's ``fit`` with the default
   (linear / logistic) nuisances at n = 10^4 and 10^5, as multiples of the
   input (X, outcome and treatment), beside the memory of the bare nuisance
   fits (what the user's models take, not ours).

Peak memory comes from ``benchmarks/_measure.py`` (tracemalloc's peak and the
peak resident-set growth in a forked child), each measured on its own call
after the timed ones. ``--quick`` runs the memory section only, at n = 2000,
and prints it without writing the results file (to check that it runs).
"""

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _measure import MEMORY_NOTE, memory_call, time_call

ROOT = Path(__file__).resolve().parents[1]
LGBM_PARAMS = dict(
    n_estimators=200,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=40,
    n_jobs=1,
    verbose=-1,
    random_state=0,
)
VENV = ROOT / "benchmarks" / ".venv-causal"
RESULTS = ROOT / "benchmarks" / "results" / "causal.md"
PACKAGES = [
    "scikit-learn==1.9.1",
    "numpy",
    "scipy",
    "pandas",
    "lightgbm",
    "joblib",
    "cvxpy",
    "clarabel",
    "doubleml",
    "econml",
]


def _ensure_venv():
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(python), "-m", "pip", "install", "-q", *PACKAGES])
        subprocess.check_call(
            [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), "--no-deps"]
        )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    sys.exit(subprocess.call([str(python), __file__, *sys.argv[1:]], env=env))


def _interval_stats(estimates, lowers, uppers, truth):
    import numpy as np

    est = np.asarray(estimates)
    err = est - truth
    cover = (np.asarray(lowers) <= truth) & (truth <= np.asarray(uppers))
    return {
        "bias": float(err.mean()),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "median_abs_error": float(np.median(np.abs(err))),
        "coverage": float(cover.mean()),
        "mean_width": float(np.mean(np.asarray(uppers) - np.asarray(lowers))),
    }


def _table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kang_schafer(reps):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skcausal import AIPW, IPW, TMLE, CLearner, InSampleSplit
    from skcausal.datasets import make_kang_schafer

    unpenalized = make_pipeline(
        StandardScaler(), LogisticRegression(C=1e6, max_iter=1000)
    )
    configs = {
        "nuisances fit on the full sample (`cv=InSampleSplit()`, no "
        "cross-fitting), unpenalized logistic, clip 1e-8: the paper's "
        "setting": dict(propensity_model=unpenalized, clip=1e-8, cv=InSampleSplit()),
        "5-fold cross-fitting, unpenalized logistic, clip 1e-6": dict(
            propensity_model=make_pipeline(
                StandardScaler(), LogisticRegression(C=1e6, max_iter=1000)
            ),
            clip=1e-6,
        ),
        "5-fold cross-fitting, default LogisticRegression() (L2, C=1, "
        "unscaled covariates), clip 1e-3": dict(),
    }
    sections = []
    for name, kw in configs.items():
        ests = {
            "IPW (Hajek)": IPW(**kw),
            "AIPW": AIPW(**kw),
            "TMLE (logistic fluctuation)": TMLE(**kw),
            "TMLE (linear fluctuation)": TMLE(fluctuation="linear", **kw),
            "C-Learner (linear)": CLearner(**kw),
        }
        out = {k: ([], [], []) for k in ests}
        for r in range(reps):
            X, y = make_kang_schafer(200, random_state=r)
            for k, est in ests.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.set_params(random_state=r).fit(X, y)
                row = est.summary().loc["E[Y(1)]"]
                out[k][0].append(row.estimate)
                out[k][1].append(row.ci_lower)
                out[k][2].append(row.ci_upper)
        rows = []
        for k, (e, lo, hi) in out.items():
            s = _interval_stats(e, lo, hi, 210.0)
            rows.append((k, s["bias"], s["rmse"], s["median_abs_error"], s["coverage"]))
        sections.append(
            f"{name[0].upper() + name[1:]}.\n\n"
            + _table(
                rows, ["estimator", "bias", "RMSE", "median abs. error", "coverage"]
            )
        )
    return (
        f"### Kang-Schafer, E[Y(1)] = 210, n = 200, {reps} draws\n\n"
        "Misspecified design (only the transformed covariates are observed), "
        "linear outcome models (`LinearRegression`). "
        "Paper (Cai, Fonseca, Hou, Namkoong, Table 1 shape): RMSE about 4.5 "
        "C-Learner, 16 AIPW, over 1000 TMLE; coverage 0.91 / 0.88 / 0.84. "
        "The paper's ordering appears with full-sample nuisances and the "
        "linear (least-squares, unbounded) TMLE fluctuation: a few units get "
        "propensities near 0, their inverse weights 1/e multiply the clever "
        "covariate, and an unbounded fluctuation moves every prediction by "
        "eps/e(X). The logistic fluctuation on the outcome's observed range "
        "(our default, Gruber and van der Laan 2010) cannot leave that range, "
        "which is why our default TMLE is stable. With cross-fitting, the "
        "held-out propensities of the 40 units of a fold come from a logistic "
        "fit that never saw them and extrapolate to e near 0 more often, so "
        "AIPW's correction term (not the TMLE fluctuation) has the heavy "
        "tail.\n\n" + "\n\n".join(sections)
    )


def overlap_designs(reps):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    from skcausal import AIPW, IPW, TMLE, CLearner, TrimmingSensitivity
    from skcausal.datasets import make_limited_overlap

    def models():
        return dict(
            outcome_model=make_pipeline(
                SplineTransformer(n_knots=5), LinearRegression()
            ),
            propensity_model=make_pipeline(
                SplineTransformer(n_knots=5), LogisticRegression()
            ),
        )

    blocks = []
    for label, overlap in (
        ("easy overlap (e in [0.1, 0.9])", 0.1),
        ("limited overlap (e in [0.01, 0.99])", 0.01),
    ):
        ests = {
            "IPW (Hajek)": IPW(propensity_model=models()["propensity_model"]),
            "AIPW": AIPW(**models()),
            "TMLE": TMLE(**models()),
            "C-Learner (spline backbone, constant shift)": CLearner(**models()),
            "Trimming 0.05, knn extension, bias-aware at L=2": TrimmingSensitivity(
                threshold=0.05, extension="knn", **models()
            ),
        }
        out = {k: ([], [], []) for k in ests}
        for r in range(reps):
            X, y = make_limited_overlap(2000, overlap=overlap, random_state=r)
            for k, est in ests.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.set_params(random_state=r).fit(X, y)
                if isinstance(est, TrimmingSensitivity):
                    lo, hi = est.conf_int(lipschitz=2.0)
                    curve = est.sensitivity_curve([2.0])
                    e = float(curve["estimate"].iloc[0])
                else:
                    e = est.estimate_
                    lo, hi = est.conf_int()
                out[k][0].append(e)
                out[k][1].append(lo)
                out[k][2].append(hi)
        rows = []
        for k, (e, lo, hi) in out.items():
            s = _interval_stats(e, lo, hi, 1.0)
            rows.append((k, s["bias"], s["rmse"], s["coverage"], s["mean_width"]))
        blocks.append(
            f"{label}:\n\n"
            + _table(rows, ["estimator", "bias", "RMSE", "coverage", "mean width"])
        )
    return (
        f"### ATE = 1, `make_limited_overlap`, n = 2000, {reps} draws\n\n"
        "Spline outcome and propensity models (`SplineTransformer(n_knots=5)` + "
        "linear / logistic regression), 5-fold cross-fitting. The true outcome "
        "functions are 1.83-Lipschitz per standard deviation, so L = 2 is a "
        "valid bound for the trimming interval.\n\n" + "\n\n".join(blocks)
    )


def trimming(reps, n_bootstrap=30):
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    from skcausal import TrimmingSensitivity
    from skcausal.datasets import make_limited_overlap

    grid = [1.83, 2.0, 3.0]
    columns = [
        "lower_bound",
        "upper_bound",
        "lower_std_error",
        "upper_std_error",
        "ci_lower",
        "ci_upper",
    ]
    out = {"lipschitz": [], "knn": []}
    for r in range(reps):
        X, y = make_limited_overlap(1000, overlap=0.01, random_state=r)
        for ext in out:
            est = TrimmingSensitivity(
                make_pipeline(SplineTransformer(n_knots=5), LinearRegression()),
                make_pipeline(SplineTransformer(n_knots=5), LogisticRegression()),
                threshold=0.05,
                extension=ext,
                n_bootstrap=n_bootstrap,
                random_state=r,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            out[ext].append(est.sensitivity_curve(grid)[columns].to_numpy())
    rows = []
    for ext, recs in out.items():
        rec = np.array(recs)
        for k, L in enumerate(grid):
            lo, hi, se_lo, se_hi, ci_lo, ci_hi = rec[:, k].T
            rows.append(
                (
                    ext,
                    L,
                    float(np.mean((ci_lo <= 1.0) & (1.0 <= ci_hi))),
                    float(np.mean(ci_hi - ci_lo)),
                    float(np.mean(lo)),
                    float(np.mean(hi)),
                    float(lo.std()),
                    float(se_lo.mean()),
                    float(hi.std()),
                    float(se_hi.mean()),
                )
            )
    return (
        f"### Trimming sensitivity: bias-aware interval, n = 1000, {reps} draws\n\n"
        "`make_limited_overlap(overlap=0.01)` (ATE = 1, outcome functions "
        "1.83-Lipschitz per standard deviation), threshold 0.05, spline "
        "nuisances, 5-fold cross-fitting. `lipschitz`: exact McShane-Whitney "
        f"extension, bootstrap standard errors ({n_bootstrap} refits), "
        "Imbens-Manski interval. `knn`: 40-nearest-neighbour extension with "
        "the matching-style influence function. The standard-error columns "
        "compare the Monte Carlo spread of each bound (sd) with the mean "
        "reported standard error (se).\n\n"
        + _table(
            rows,
            [
                "extension",
                "L",
                "coverage of ATE",
                "mean width",
                "mean lower",
                "mean upper",
                "sd lower",
                "se lower",
                "sd upper",
                "se upper",
            ],
        )
    )


def worst_case(reps):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    from skcausal import WorstCaseTreatmentEffect
    from skcausal.datasets import make_limited_overlap

    def spline(model):
        return make_pipeline(SplineTransformer(n_knots=5), model)

    masses = [0.2, 0.5, 1.0]
    out = {m: ([], [], [], []) for m in masses}
    for r in range(reps):
        X, y = make_limited_overlap(2000, overlap=0.1, random_state=r)
        est = WorstCaseTreatmentEffect(
            spline(LinearRegression()),
            spline(LogisticRegression()),
            spline(LinearRegression()),
            subgroup_features=[0],
            random_state=r,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            curve = est.fit(X, y).worst_case_curve(masses)
        for _, row in curve.iterrows():
            cols = out[row["mass"]]
            cols[0].append(row.estimate)
            cols[1].append(row.ci_lower)
            cols[2].append(row.ci_upper)
            cols[3].append(row.plugin_estimate)
    rows = []
    for m, (e, lo, hi, plug) in out.items():
        s = _interval_stats(e, lo, hi, m)
        p = _interval_stats(plug, plug, plug, m)
        rows.append((m, m, s["bias"], s["rmse"], s["coverage"], p["bias"], p["rmse"]))
    return (
        f"### Worst-case treatment effect, n = 2000, {reps} draws\n\n"
        "`make_limited_overlap(overlap=0.1)`: the conditional effect given "
        "Z = X_1 is 1 + X_1 with X_1 uniform on [-1, 1], so the lower CVaR at "
        "mass a is exactly a. Spline nuisance and effect models.\n\n"
        + _table(
            rows,
            [
                "mass",
                "truth",
                "debiased bias",
                "debiased RMSE",
                "coverage",
                "plug-in bias",
                "plug-in RMSE",
            ],
        )
    )


def anchors(sizes, repeats):
    import doubleml
    import econml
    import numpy as np
    from doubleml import DoubleMLData, DoubleMLIRM
    from econml.dr import DRLearner
    from lightgbm import LGBMClassifier, LGBMRegressor

    from skcausal import AIPW, CLearner
    from skcausal.datasets import make_limited_overlap

    def reg():
        return LGBMRegressor(**LGBM_PARAMS)

    def clf():
        return LGBMClassifier(**LGBM_PARAMS)

    def run_ours(est, X, y):
        est.fit(X, y)
        return est.estimate_, *est.conf_int()

    def run_doubleml(X, y):
        # DoubleML draws its folds from numpy's global RNG
        np.random.seed(0)  # noqa: NPY002
        data = DoubleMLData.from_arrays(X, y[:, 0], y[:, 1])
        model = DoubleMLIRM(data, reg(), clf(), n_folds=5, trimming_threshold=1e-3)
        model.fit()
        ci = model.confint(level=0.95).to_numpy()[0]
        return float(model.coef[0]), float(ci[0]), float(ci[1])

    def run_econml(X, y):
        model = DRLearner(
            model_propensity=clf(),
            model_regression=reg(),
            cv=5,
            min_propensity=1e-3,
            random_state=0,
        )
        model.fit(y[:, 0], y[:, 1], X=None, W=X)
        inf = model.ate_inference()
        lo, hi = inf.conf_int_mean(alpha=0.05)
        return float(model.ate()), float(np.ravel(lo)[0]), float(np.ravel(hi)[0])

    runners = {
        "skcausal AIPW (T-learner)": lambda X, y: run_ours(
            AIPW(reg(), clf(), random_state=0), X, y
        ),
        "skcausal CLearner (LightGBM)": lambda X, y: run_ours(
            CLearner(reg(), clf(), random_state=0), X, y
        ),
        f"DoubleML {doubleml.__version__} IRM": run_doubleml,
        f"EconML {econml.__version__} DRLearner": run_econml,
    }
    rows = []
    for n in sizes:
        X, y = make_limited_overlap(
            n, n_features=5, overlap=0.1, sharpness=3.0, random_state=0
        )
        times = {}
        for name, run in runners.items():

            def call(run=run):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return run(X, y)

            times[name], (est, lo, hi) = time_call(call, repeats)
            traced, rss = memory_call(call).cells(X.nbytes + y.nbytes)
            rows.append([n, name, est, lo, hi, times[name], traced, rss])
        ours = times["skcausal AIPW (T-learner)"]
        for row in rows[-len(runners) :]:
            row.insert(6, ours / row[5] if row[5] > 0 else float("nan"))
    rows = [
        (r[0], r[1], r[2], f"[{r[3]:.3f}, {r[4]:.3f}]", r[5], r[6], r[7], r[8])
        for r in rows
    ]
    return (
        "### Side by side with DoubleML and EconML\n\n"
        "Same data (`make_limited_overlap(n, n_features=5, overlap=0.1, "
        "sharpness=3)`, true ATE = 1), same nuisances (LightGBM "
        f"`{LGBM_PARAMS}`), 5 folds, propensities clipped / trimmed at 1e-3, "
        f"`OMP_NUM_THREADS=1`; time is the median of {repeats} runs. EconML's "
        "DRLearner regresses the outcome on (X, T) (an S-learner); ours and "
        "DoubleML fit one model per arm. The last column is the time of our "
        "AIPW divided by the row's time (below 1: ours is faster). "
        + MEMORY_NOTE
        + " Input size: X, outcome and treatment. LightGBM allocates its "
        "histograms and trees in C++, which only the RSS column sees.\n\n"
        + _table(
            rows,
            [
                "n",
                "estimator",
                "ATE",
                "95% interval",
                "time (s)",
                "ours AIPW / this",
                "peak traced",
                "peak RSS",
            ],
        )
    )


def memory(sizes, repeats, lipschitz_max):
    """Time and peak memory of each estimator's fit, default nuisances."""
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from skcausal import (
        AIPW,
        IPW,
        TMLE,
        CLearner,
        PlugIn,
        TrimmingSensitivity,
        WorstCaseTreatmentEffect,
    )
    from skcausal.datasets import make_limited_overlap

    makers = {
        "PlugIn": lambda: PlugIn(random_state=0),
        "IPW": lambda: IPW(random_state=0),
        "AIPW": lambda: AIPW(random_state=0),
        "TMLE": lambda: TMLE(random_state=0),
        "CLearner": lambda: CLearner(random_state=0),
        "WorstCaseTreatmentEffect": lambda: WorstCaseTreatmentEffect(random_state=0),
        "TrimmingSensitivity (knn)": lambda: TrimmingSensitivity(
            extension="knn", random_state=0
        ),
        "TrimmingSensitivity (lipschitz, 100 draws)": lambda: TrimmingSensitivity(
            random_state=0
        ),
    }
    rows = []
    for d in (2, 10):
        for n in sizes:
            X, y = make_limited_overlap(n, n_features=d, random_state=0)
            size = X.nbytes + y.nbytes
            for name, make in makers.items():
                if "lipschitz" in name and n > lipschitz_max:
                    continue

                def fit(make=make):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return make().fit(X, y)

                elapsed, _ = time_call(fit, 1 if "lipschitz" in name else repeats)
                traced, rss = memory_call(fit).cells(size)
                rows.append((d, n, name, elapsed, traced, rss))
            # the nuisance models alone (the user's share of the peaks): one
            # fold's propensity fit (80% of the units) and one arm's outcome
            # fit (40%)
            train = np.arange(int(0.8 * n))
            arm = np.arange(int(0.4 * n))
            bare = {
                "nuisance only: LogisticRegression().fit, 80% of the units": (
                    lambda: LogisticRegression().fit(X[train], y[train, 1])
                ),
                "nuisance only: LinearRegression().fit, 40% of the units": (
                    lambda: LinearRegression().fit(X[arm], y[arm, 0])
                ),
            }
            for name, fit in bare.items():
                elapsed, _ = time_call(fit, repeats)
                traced, rss = memory_call(fit).cells(size)
                rows.append((d, n, name, elapsed, traced, rss))
    return (
        "### Time and peak memory of fit\n\n"
        "`make_limited_overlap(n, n_features=d)`, default nuisances "
        "(`LinearRegression`, `LogisticRegression`), 5 folds, one process; "
        f"time is the median of {repeats} fits (one for the Lipschitz "
        "extension, which is O(n_outside x n_overlap) per L and runs only up "
        f"to n = {lipschitz_max}). "
        + MEMORY_NOTE
        + " Input size: X, outcome and treatment (n (d + 2) float64). The "
        "peaks include the nuisance models' own allocations; the `nuisance "
        "only` rows measure those fits alone, as multiples of the same input "
        "(LinearRegression also keeps a view of its n_train-long "
        "least-squares buffer as `coef_`, one per fold and arm).\n\n"
        + _table(
            rows,
            ["d", "n", "estimator", "time (s)", "peak traced", "peak RSS"],
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--overlap-reps", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trimming-reps", type=int, default=60)
    parser.add_argument(
        "--memory-sizes", type=int, nargs="+", default=[10_000, 100_000]
    )
    parser.add_argument("--lipschitz-max", type=int, default=10_000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the memory section at n = 2000 only, printed, results file untouched",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=list(SECTIONS),
        default=list(SECTIONS),
        help="rerun only these sections; the others are kept from the results file",
    )
    args = parser.parse_args()
    if args.quick:
        print(memory([2000], 1, 2000), flush=True)
        return
    if "anchors" in args.sections:
        _ensure_venv()
    t0 = time.time()
    parts = [
        "## skcausal\n",
        f"Machine: 2 shared cores (other jobs running), {platform.machine()}, "
        f"Python {platform.python_version()}, OMP_NUM_THREADS=1. Produced by "
        "`benchmarks/bench_causal.py`.\n",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    runs = {
        "kang_schafer": lambda: kang_schafer(args.reps),
        "overlap": lambda: overlap_designs(args.overlap_reps),
        "trimming": lambda: trimming(args.trimming_reps),
        "worst_case": lambda: worst_case(args.overlap_reps),
        "anchors": lambda: anchors(args.sizes, args.repeats),
        "memory": lambda: memory(args.memory_sizes, args.repeats, args.lipschitz_max),
    }
    old = _old_sections()
    for name in SECTIONS:
        if name in args.sections:
            parts.append(runs[name]())
            print(parts[-1], flush=True)
        elif name in old:
            parts.append(old[name])
        RESULTS.write_text("\n\n".join(parts) + "\n")
    if set(args.sections) == set(SECTIONS):
        parts.append(f"\nTotal benchmark time: {time.time() - t0:.0f} s.\n")
    else:
        parts.append(
            f"\nSections {', '.join(args.sections)} rerun in "
            f"{time.time() - t0:.0f} s; the others are from the previous run.\n"
        )
    RESULTS.write_text("\n\n".join(parts))
    print(f"wrote {RESULTS}")


# section name -> the start of its "### " title in the results file
SECTIONS = {
    "kang_schafer": "### Kang-Schafer",
    "overlap": "### ATE = 1",
    "trimming": "### Trimming sensitivity",
    "worst_case": "### Worst-case",
    "anchors": "### Side by side",
    "memory": "### Time and peak memory",
}


def _old_sections():
    """Sections of the existing results file, keyed as in ``SECTIONS``."""
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text()
    chunks = ["### " + c for c in text.split("\n### ")[1:]]
    found = {}
    for chunk in chunks:
        chunk = chunk.split("\n\nTotal benchmark time")[0]
        chunk = chunk.split("\n\nSections ")[0].rstrip()
        for name, title in SECTIONS.items():
            if chunk.startswith(title):
                found[name] = chunk
    return found


if __name__ == "__main__":
    main()
