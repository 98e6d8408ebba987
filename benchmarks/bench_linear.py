"""DRO logistic regression: skrobust vs scikit-learn's ERM and the ``dro`` package.

Runs in ``benchmarks/.venv-dro`` (created on first use: ``pip install dro`` plus
this repository), so that ours, scikit-learn's and the ``dro`` package's
solvers run in one process on the same data. Writes
``benchmarks/results/linear.md``.

Conventions: the ``dro`` package's chi-square ``eps`` is ``2 * radius`` here
(its divergence is (t - 1)^2, ours (t - 1)^2 / 2), its KL ``eps`` and CVaR
``alpha`` are ours, its labels are in {-1, +1}, and it has no penalty, so every
model here is fitted without one (``alpha=0``, ``penalty=None``). Every
solution is scored with our exact ``risk`` of its logistic losses.

Peak memory (``_measure.py``) is measured on separate calls after the timed
ones: tracemalloc's peak and the peak resident-set growth in a forked child.

A last table, "kinked objectives", compares our solver with an independent
cvxpy primal of the same objective (same intercept and penalty ``alpha``, the
robust risks written out below, Clarabel at a 1e-10 tolerance) on the kinked
cases of issue 14: CVaR and total-variation heads with absolute and Huber
losses, and a chi-square ball of radius 1e3 for the logistic loss.

Run: ``python benchmarks/bench_linear.py [--quick]``.
"""

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path

from _measure import MEMORY_NOTE, memory_call, time_call
from sklearn.exceptions import ConvergenceWarning

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-dro"


def _ensure_venv():
    try:
        import dro  # noqa: F401

        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "dro"], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True
        )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def _cvxpy_reference(X, y, loss, head, alpha):
    """Independent cvxpy primal of ``head(loss(X w + b)) + alpha / 2 ||w||^2``.

    Written out here rather than taken from ``skrobust``, so that it checks
    our formulations too: ``head`` is ``("cvar", a)`` (Rockafellar-Uryasev:
    min_eta eta + E(l - eta)_+ / a), ``("tv", delta)`` ((1 - delta)
    CVaR_{1 - delta} + delta max) or ``("chi2", rho)`` (min_eta eta +
    sqrt(1 + 2 rho) E[(l - eta)_+^2]^{1/2}, f(t) = (t - 1)^2 / 2); ``loss``
    is ``"absolute"``, ``("huber", epsilon)`` (r^2 / 2 inside epsilon) or
    ``"logistic"`` (y in {0, 1}). Unpenalized intercept, uniform weights.
    Returns ``(coef, intercept, cvxpy's optimal value)``.
    """
    import cvxpy as cp
    import numpy as np

    n, d = X.shape
    w, b = cp.Variable(d), cp.Variable()
    z = X @ w + b
    if loss == "absolute":
        losses = cp.abs(z - y)
    elif loss == "logistic":
        losses = cp.logistic(-cp.multiply(2.0 * y - 1.0, z))
    else:
        losses = 0.5 * cp.huber(z - y, loss[1])
    kind, size = head

    def cvar(a):
        eta = cp.Variable()
        return eta + cp.sum(cp.pos(losses - eta)) / (n * a)

    if kind == "cvar":
        risk = cvar(size)
    elif kind == "tv":
        risk = (1.0 - size) * cvar(1.0 - size) + size * cp.max(losses)
    else:
        eta = cp.Variable()
        risk = eta + np.sqrt(1.0 + 2.0 * size) * cp.norm(
            cp.pos(losses - eta), 2
        ) / np.sqrt(n)
    problem = cp.Problem(cp.Minimize(risk + 0.5 * alpha * cp.sum_squares(w)))
    problem.solve(
        solver=cp.CLARABEL,
        tol_gap_abs=1e-10,
        tol_gap_rel=1e-10,
        tol_feas=1e-10,
        max_iter=500,
    )
    return np.asarray(w.value), float(b.value), float(problem.value)


def kinked_table(repeats):
    """Our objective against the cvxpy primal on the kinked cases of issue 14."""
    import numpy as np
    from sklearn.datasets import make_classification

    from skrobust.ambiguity import ChiSquare, CVaR, TotalVariation
    from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

    def regression(n, d=5):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d))
        return X, X @ np.linspace(1.0, -1.0, d) + rng.standard_t(3, size=n)

    def classification(n):
        return make_classification(
            n_samples=n, n_features=5, n_informative=3, flip_y=0.1, random_state=0
        )

    cases = []
    for n in (50, 200):
        cases += [
            (
                "DROLinearRegression(CVaR(0.1), loss='absolute_error')",
                n,
                regression,
                lambda: DROLinearRegression(CVaR(0.1), loss="absolute_error"),
                "absolute",
                ("cvar", 0.1),
            ),
            (
                "DROLinearRegression(CVaR(0.1), loss='huber')",
                n,
                regression,
                lambda: DROLinearRegression(CVaR(0.1), loss="huber", epsilon=1.0),
                ("huber", 1.0),
                ("cvar", 0.1),
            ),
            (
                "DROLinearRegression(TotalVariation(0.2), loss='absolute_error')",
                n,
                regression,
                lambda: DROLinearRegression(TotalVariation(0.2), loss="absolute_error"),
                "absolute",
                ("tv", 0.2),
            ),
            (
                "DROLogisticRegression(ChiSquare(radius=1e3))",
                n,
                classification,
                lambda: DROLogisticRegression(ChiSquare(radius=1e3)),
                "logistic",
                ("chi2", 1e3),
            ),
        ]
    lines = [
        "",
        "### Kinked objectives against a cvxpy primal (issue 14, section 2)",
        "",
        "Regression: X ~ N(0, 1)^5, y = X (1, 0.5, 0, -0.5, -1) + Student t(3) "
        "noise; classification: `make_classification` (d = 5, 3 informative, "
        "10% label noise). Estimators at their defaults (penalty `alpha` 0 for "
        "regression, 1e-4 for logistic; unpenalized intercept). Reference: an "
        "independent cvxpy primal of the same objective (written out in the "
        "script, not taken from `skrobust`), Clarabel with gap and feasibility "
        "tolerances 1e-10. Both solutions are scored by our exact `risk` of "
        "their training losses plus the penalty; relative gap = (ours - "
        "cvxpy) / |cvxpy|. 'warned': whether our fit raised a "
        f"ConvergenceWarning. Times: medians of {repeats} fits.",
        "",
        "| case | n | our objective | cvxpy objective | relative gap | warned "
        "| ours (s) | cvxpy (s) | ours: peak traced / X | ours: peak RSS / X |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, n, data, make, loss, head in cases:
        X, y = data(n)
        amb = {"cvar": CVaR, "tv": TotalVariation, "chi2": ChiSquare}[head[0]](head[1])
        alpha = make().get_params()["alpha"]

        def objective(coef, intercept, X=X, y=y, loss=loss, amb=amb, alpha=alpha):
            z = X @ np.ravel(coef) + float(np.ravel(intercept)[0])
            if loss == "absolute":
                losses = np.abs(y - z)
            elif loss == "logistic":
                losses = np.logaddexp(0.0, -(2.0 * y - 1.0) * z)
            else:
                r, eps = np.abs(y - z), loss[1]
                losses = np.where(r <= eps, 0.5 * r**2, eps * r - 0.5 * eps**2)
            return amb.risk(losses) + 0.5 * alpha * float(np.sum(np.ravel(coef) ** 2))

        ref_t, (ref_coef, ref_b, _) = time_call(
            lambda X=X, y=y, loss=loss, head=head, alpha=alpha: _cvxpy_reference(
                X, y, loss, head, alpha
            ),
            repeats,
        )
        ref_obj = objective(ref_coef, ref_b)

        def fit(make=make, X=X, y=y):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = make().fit(X, y)
            warned = any(issubclass(c.category, ConvergenceWarning) for c in caught)
            return est, warned

        try:
            ours_t, (est, warned) = time_call(fit, repeats)
        except Exception as exc:  # a crash is a result
            msg = str(exc).splitlines()[0][:60] if str(exc) else ""
            lines.append(
                f"| {name} | {n} | failed: {type(exc).__name__} {msg} "
                f"| {ref_obj:.8g} | - | - | - | {ref_t:.3f} | - | - |"
            )
            print(lines[-1], flush=True)
            continue
        ours_obj = objective(est.coef_, est.intercept_)
        gap = (ours_obj - ref_obj) / abs(ref_obj)
        mem = memory_call(fit)
        traced, rss = mem.cells(X.nbytes)
        lines.append(
            f"| {name} | {n} | {ours_obj:.8g} | {ref_obj:.8g} | {gap:.2e} "
            f"| {'yes' if warned else 'no'} | {ours_t:.3f} | {ref_t:.3f} "
            f"| {traced} | {rss} |"
        )
        print(lines[-1], flush=True)
    return lines


def main():
    _ensure_venv()
    import numpy as np
    from dro.linear_model.chi2_dro import Chi2DRO
    from dro.linear_model.cvar_dro import CVaRDRO
    from dro.linear_model.kl_dro import KLDRO
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from skrobust.ambiguity import KL, ChiSquare, CVaR
    from skrobust.linear_model import DROLogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--dro-sizes", type=int, nargs="*", default=[2000, 20000])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one repeat, to check that the script runs",
    )
    args = parser.parse_args()
    if args.quick:
        args.dro_sizes, args.sizes, args.repeats = [500], [2000], 1

    d = 50
    sets = {
        "chi2 (radius 0.5)": (
            ChiSquare(0.5),
            lambda: Chi2DRO(d, "logistic"),
            {"eps": 1.0},
        ),
        "KL (radius 0.1)": (KL(0.1), lambda: KLDRO(d, "logistic"), {"eps": 0.1}),
        "CVaR (alpha 0.3)": (CVaR(0.3), lambda: CVaRDRO(d, "logistic"), {"alpha": 0.3}),
    }

    def data(n):
        X, y = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=10,
            flip_y=0.01,
            class_sep=2.0,
            random_state=0,
        )
        return X, y

    def logistic_losses(X, y, coef, intercept):
        margin = (2 * y - 1) * (X @ coef + intercept)
        return np.logaddexp(0, -margin)

    lines = [
        "## DRO logistic regression (`skrobust.linear_model`)",
        "",
        "Synthetic classification (`make_classification`, d = 50, 10 informative, "
        "class_sep 2, 1% label noise), no penalty. Objective = our exact robust risk of each "
        "solution's training losses (lower is better). Medians over "
        f"{args.repeats} runs (1 run at n = 10^6 and for the `dro` package at "
        "n = 2 x 10^4). 2 shared cores.",
        "",
        MEMORY_NOTE + " Input size: X's bytes. The `dro` package's memory is "
        "measured up to n = 5,000 (each measure is one more of its slow solves).",
        "",
        "### Against the `dro` package (cvxpy interior point)",
        "",
        "| set | n | ours (s) | dro (s) | dro / ours | our objective | dro objective "
        "| ours: peak traced / X | ours: peak RSS / X | dro: peak RSS / X |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in args.dro_sizes:
        X, y = data(n)
        y_pm = 2 * y - 1
        for name, (amb, make_dro, cfg) in sets.items():

            def fit_ours(amb=amb):
                return DROLogisticRegression(amb, alpha=0.0).fit(X, y)

            ours_t, ours = time_call(fit_ours, args.repeats)
            ours_obj = amb.risk(
                logistic_losses(X, y, ours.coef_[0], ours.intercept_[0])
            )
            ours_mem = memory_call(fit_ours)

            def fit_dro(make_dro=make_dro, cfg=cfg):
                model = make_dro()
                model.update(cfg)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X, y_pm)
                return model

            dro_rss = "-"
            try:
                dro_t, model = time_call(fit_dro, 1 if n > 5000 else args.repeats)
                dro_obj = amb.risk(
                    logistic_losses(X, y, np.asarray(model.theta), float(model.b))
                )
                dro_cells = f"{dro_t:.2f} | {dro_t / ours_t:.2g}x | {ours_obj:.6f} | {dro_obj:.6f}"
                if n <= 5000:
                    dro_rss = memory_call(fit_dro, traced=False).cells(X.nbytes)[1]
            except Exception as exc:  # the anchor's failures are part of the result
                msg = str(exc).splitlines()[0][:60]
                dro_cells = f"failed | - | {ours_obj:.6f} | {type(exc).__name__}: {msg}"
            traced, rss = ours_mem.cells(X.nbytes)
            lines.append(
                f"| {name} | {n:,} | {ours_t:.3f} | {dro_cells} | {traced} | {rss} "
                f"| {dro_rss} |"
            )
            print(lines[-1], flush=True)

    lines += [
        "",
        "### Against scikit-learn's ERM `LogisticRegression` (lbfgs, no penalty)",
        "",
        "Both at the same gradient tolerance, `tol=1e-6` (our default; "
        "scikit-learn's default is 1e-4). Our time includes the exact robust risk "
        "and worst-case weights computed at the end. Our solver runs BLAS on one "
        "thread (numpy's and scipy's OpenBLAS pools contend inside L-BFGS); "
        "scikit-learn is timed both as users run it and with BLAS limited to one "
        "thread, so the last ratio compares like with like. Memory: our fit, and "
        "scikit-learn's (as users run it) in the same row.",
        "",
        "| set | n | ours (s) | sklearn ERM (s) | ours / sklearn | "
        "sklearn ERM, 1 BLAS thread (s) | ours / that | iterations | "
        "ours: peak traced / X | ours: peak RSS / X | sklearn: peak traced / X "
        "| sklearn: peak RSS / X |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for n in args.sizes:
        X, y = data(n)
        repeats = 1 if n >= 1_000_000 else args.repeats

        def fit_sklearn():
            return LogisticRegression(C=np.inf, tol=1e-6, max_iter=1000).fit(X, y)

        sk_t, _ = time_call(fit_sklearn, repeats)
        with threadpool_limits(limits=1, user_api="blas"):
            sk1_t, _ = time_call(fit_sklearn, repeats)
        sk_traced, sk_rss = memory_call(fit_sklearn).cells(X.nbytes)
        for name, (amb, _, _) in sets.items():

            def fit_ours(amb=amb):
                return DROLogisticRegression(amb, alpha=0.0).fit(X, y)

            ours_t, ours = time_call(fit_ours, repeats)
            traced, rss = memory_call(fit_ours).cells(X.nbytes)
            lines.append(
                f"| {name} | {n:,} | {ours_t:.2f} | {sk_t:.2f} | {ours_t / sk_t:.2f} | "
                f"{sk1_t:.2f} | {ours_t / sk1_t:.2f} | "
                f"{ours.n_iter_} | {traced} | {rss} | {sk_traced} | {sk_rss} |"
            )
            print(lines[-1], flush=True)
    lines += kinked_table(args.repeats)
    out = HERE / "results" / "linear.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
