"""Every DRO formulation shared with the ``dro`` package: time and objective.

Total variation, Wasserstein (Lipschitz losses), group DRO, marginal DRO and
conditional CVaR DRO, ours against ``dro``'s ``TVDRO``, ``WassersteinDRO``,
``GroupDRO``, ``MarginalCVaRDRO`` and ``ConditionalCVaRDRO`` on the same data in
the same process. Runs in ``benchmarks/.venv-dro`` (created on first use:
``pip install dro`` plus this repository). Writes
``benchmarks/results/dro_formulations.md``. (Chi-square, KL and CVaR are in
``bench_linear.py``.)

Conventions (read from ``dro``'s source, version 0.4.2): its labels are in
{-1, +1}; it has no penalty, so ours are fitted without one; its ``ols`` loss
is ``(y - f)^2`` and ours ``(y - f)^2 / 2`` (the minimizers agree for the
positively homogeneous risks below; objectives are reported on ours). Every
solution is scored with our exact robust risk of its training losses (lower
is better); where the two sets differ, the table says so and the ``dro``
objective column scores both solutions on ``dro``'s own set too.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _measure import MEMORY_NOTE, memory_call

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


def _timed(fn, repeats):
    import numpy as np

    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


_LAST_MEMORY = []


def _timed_ours(fn, repeats):
    """Like _timed, then the peak memory of one more call of each measure."""
    out = _timed(fn, repeats)

    def quiet():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    _LAST_MEMORY[:] = [memory_call(quiet)]
    return out


def _timed_dro(fn, repeats):
    """Like _timed; the anchor's failure is returned in place of the time."""
    try:
        return _timed(fn, repeats)
    except Exception as exc:
        return exc, None


def _dro_fit(make, config, X, y, **fit_kwargs):
    def fit():
        model = make()
        if config:
            model.update(config)
        model.fit(X, y, **fit_kwargs)
        return model

    return fit


def _sahoo_risk(losses, controls, alpha):
    """``dro``'s ConditionalCVaRDRO objective of fixed losses (cvxpy LP).

    min over beta of mean(alpha l + (1/alpha - alpha)(l - C beta)_+
    + (1 - alpha) C beta): the two-sided biased-sampling set (likelihood
    ratio of Y given X in [alpha, 1/alpha]) with a threshold linear in the
    controls, without intercept.
    """
    import cvxpy as cp

    beta = cp.Variable(controls.shape[1])
    eta = controls @ beta
    value = (
        cp.sum(
            alpha * losses
            + (1 / alpha - alpha) * cp.pos(losses - eta)
            + (1 - alpha) * eta
        )
        / losses.shape[0]
    )
    problem = cp.Problem(cp.Minimize(value))
    problem.solve(solver=cp.CLARABEL)
    return float(problem.value)


def main():
    _ensure_venv()
    import numpy as np
    from dro.linear_model import (
        TVDRO,
        ConditionalCVaRDRO,
        GroupDRO,
        MarginalCVaRDRO,
        WassersteinDRO,
    )
    from sklearn.datasets import make_classification

    from skrobust.ambiguity import TotalVariation, Wasserstein
    from skrobust.linear_model import DROLinearRegression, DROLogisticRegression
    from skrobust.subpopulation import (
        ConditionalCVaRLinearRegression,
        ConditionalCVaRLogisticRegression,
        GroupDROLogisticRegression,
        MarginalDROLogisticRegression,
    )
    from skrobust.subpopulation._conditional import _conditional_cvar
    from skrobust.subpopulation._marginal import _marginal_risk

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--marginal-sizes", type=int, nargs="*", default=[100, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and one repeat"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.marginal_sizes, args.repeats = [300], [40], 1

    d = 10

    def classification(n):
        X, y = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=5,
            flip_y=0.05,
            class_sep=1.0,
            random_state=0,
        )
        # column 0 becomes a categorical group feature with 3 values
        X[:, 0] = np.digitize(X[:, 0], [-0.5, 0.5])
        return X, y, 2 * y - 1

    def regression(n):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d))
        noise = (0.3 + (X[:, 0] > 0)) * (rng.exponential(size=n) - 1)
        return X, X @ np.linspace(1, -1, d) + noise

    def logistic_losses(X, y_pm, coef, intercept):
        return np.logaddexp(0, -y_pm * (X @ np.ravel(coef) + float(intercept)))

    def half_squared(X, y, coef, intercept):
        return 0.5 * (y - X @ np.ravel(coef) - float(intercept)) ** 2

    def absolute(X, y, coef, intercept):
        return np.abs(y - X @ np.ravel(coef) - float(intercept))

    def group_risk(losses, groups):
        return max(losses[groups == g].mean() for g in np.unique(groups))

    rows = []

    def record(name, n, ours_t, dro_t, ours_obj, dro_obj, note, extra=None):
        """One row; ``dro_obj`` and ``extra`` are callables of the dro model."""
        extra_cells = ("", "")
        if isinstance(dro_t, Exception):  # the anchor's failures are results too
            msg = str(dro_t).splitlines()[0][:70]
            dro_cells = f"failed | - | {ours_obj:.6f} | {type(dro_t).__name__}: {msg}"
            if extra is not None:
                extra_cells = (f"{extra[0]():.6f}", "-")
        else:
            dro_cells = (
                f"{dro_t:.3f} | {dro_t / ours_t:.2g}x | {ours_obj:.6f} "
                f"| {dro_obj():.6f}"
            )
            if extra is not None:
                extra_cells = (f"{extra[0]():.6f}", f"{extra[1]():.6f}")
        extra = extra_cells
        traced, rss = _LAST_MEMORY[0].cells(n * d * 8)  # X is (n, d) float64
        rows.append(
            f"| {name} | {n:,} | {ours_t:.3f} | {dro_cells} "
            f"| {extra[0]} | {extra[1]} | {traced} | {rss} | {note} |"
        )
        print(rows[-1], flush=True)

    for n in args.sizes:
        X, y, y_pm = classification(n)
        Xr, yr = regression(n)
        dro_repeats = 1 if n > 5000 else args.repeats

        # -- total variation ---------------------------------------------------
        tv = TotalVariation(radius=0.2)
        ours_t, ours = _timed_ours(
            lambda tv=tv: DROLogisticRegression(tv, alpha=0.0).fit(X, y), args.repeats
        )
        dro_t, model = _timed_dro(
            _dro_fit(lambda: TVDRO(d, "logistic", eps=0.2), None, X, y_pm),
            dro_repeats,
        )
        record(
            "TV (radius 0.2), logistic",
            n,
            ours_t,
            dro_t,
            tv.risk(logistic_losses(X, y_pm, ours.coef_, ours.intercept_[0])),
            lambda: tv.risk(logistic_losses(X, y_pm, model.theta, model.b)),
            "same set: `eps` = radius, (1-eps) CVaR_{1-eps} + eps max",
        )

        # -- Wasserstein, features transported, labels fixed -------------------
        for label, loss_name, norm in [
            ("logistic", "logistic", 2),
            ("logistic", "logistic", 1),
            ("absolute (LAD)", "lad", 2),
        ]:
            ball = Wasserstein(radius=0.05, norm=norm)
            if loss_name == "logistic":
                ours_t, ours = _timed_ours(
                    lambda ball=ball: DROLogisticRegression(ball, alpha=0.0).fit(X, y),
                    args.repeats,
                )
                dro_t, model = _timed_dro(
                    _dro_fit(
                        lambda: WassersteinDRO(d, "logistic"),
                        {"eps": 0.05, "p": norm, "kappa": "inf"},
                        X,
                        y_pm,
                    ),
                    dro_repeats,
                )
                ours_loss = logistic_losses(X, y_pm, ours.coef_, ours.intercept_[0])
                dro_loss = logistic_losses
                data_xy = (X, y_pm)
                ours_coef = ours.coef_[0]
            else:
                ours_t, ours = _timed_ours(
                    lambda ball=ball: DROLinearRegression(
                        ball, alpha=0.0, loss="absolute_error"
                    ).fit(Xr, yr),
                    args.repeats,
                )
                dro_t, model = _timed_dro(
                    _dro_fit(
                        lambda: WassersteinDRO(d, "lad"),
                        {"eps": 0.05, "p": norm, "kappa": "inf"},
                        Xr,
                        yr,
                    ),
                    dro_repeats,
                )
                ours_loss = absolute(Xr, yr, ours.coef_, ours.intercept_)
                dro_loss = absolute
                data_xy = (Xr, yr)
                ours_coef = ours.coef_
            record(
                f"Wasserstein (radius 0.05, {norm}-norm), {label}",
                n,
                ours_t,
                dro_t,
                ball.robust_risk(ours_loss, ours_coef, 1.0),
                lambda ball=ball, loss=dro_loss, xy=data_xy, model=model: (
                    ball.robust_risk(
                        loss(*xy, model.theta, model.b), np.asarray(model.theta), 1.0
                    )
                ),
                "same set: `eps` = radius, `p` = norm, `kappa='inf'`",
            )

        # -- group DRO -----------------------------------------------------------
        groups = X[:, 0]
        ours_t, ours = _timed_ours(
            lambda: GroupDROLogisticRegression(l2_reg=0.0).fit(X, y, groups=groups),
            args.repeats,
        )
        dro_t, model = _timed_dro(
            _dro_fit(
                lambda: GroupDRO(d, group_idx=0, model_type="logistic"), None, X, y_pm
            ),
            dro_repeats,
        )
        record(
            "group DRO (3 groups), logistic",
            n,
            ours_t,
            dro_t,
            group_risk(
                logistic_losses(X, y_pm, ours.coef_, ours.intercept_[0]), groups
            ),
            lambda: group_risk(logistic_losses(X, y_pm, model.theta, model.b), groups),
            "same problem: max of group mean losses (`group_adjustment=0`)",
        )

        # -- conditional CVaR ------------------------------------------------------
        alpha, controls = 0.5, [1, 2]
        ours_t, ours = _timed_ours(
            lambda: ConditionalCVaRLogisticRegression(
                subpopulation_size=alpha, control_features=controls, l2_reg=0.0
            ).fit(X, y),
            args.repeats,
        )
        dro_t, model = _timed_dro(
            _dro_fit(
                lambda: ConditionalCVaRDRO(d, "logistic"),
                {"alpha": alpha, "control_name": controls},
                X,
                y_pm,
            ),
            dro_repeats,
        )
        C = X[:, controls]
        ours_loss = logistic_losses(X, y_pm, ours.coef_, ours.intercept_[0])

        def dro_loss(model=model):
            return logistic_losses(X, y_pm, model.theta, model.b)

        record(
            "conditional CVaR (alpha 0.5, 2 controls), logistic",
            n,
            ours_t,
            dro_t,
            _conditional_cvar(ours_loss, C, alpha)[0],
            lambda: _conditional_cvar(dro_loss(), C, alpha)[0],
            "different sets: ours ratio <= 1/alpha, eta affine in the controls; "
            "dro's ratio in [alpha, 1/alpha] (Sahoo et al.'s two-sided model), eta "
            "linear in the controls without intercept",
            (
                lambda: _sahoo_risk(ours_loss, C, alpha),
                lambda: _sahoo_risk(dro_loss(), C, alpha),
            ),
        )
        Cr = Xr[:, [0]]
        ours_t, ours = _timed_ours(
            lambda: ConditionalCVaRLinearRegression(
                subpopulation_size=alpha, control_features=[0]
            ).fit(Xr, yr),
            args.repeats,
        )
        dro_t, model = _timed_dro(
            _dro_fit(
                lambda: ConditionalCVaRDRO(d, "ols"),
                {"alpha": alpha, "control_name": [0]},
                Xr,
                yr,
            ),
            dro_repeats,
        )
        ours_loss = half_squared(Xr, yr, ours.coef_, ours.intercept_)

        def dro_loss(model=model):
            return half_squared(Xr, yr, model.theta, model.b)

        record(
            "conditional CVaR (alpha 0.5, 1 control), squared",
            n,
            ours_t,
            dro_t,
            _conditional_cvar(ours_loss, Cr, alpha)[0],
            lambda: _conditional_cvar(dro_loss(), Cr, alpha)[0],
            "as above; losses (y - f)^2 / 2",
            (
                lambda: _sahoo_risk(ours_loss, Cr, alpha),
                lambda: _sahoo_risk(dro_loss(), Cr, alpha),
            ),
        )

    # -- marginal DRO (all pairs: small n) ------------------------------------------
    for n in args.marginal_sizes:
        X, y, y_pm = classification(n)
        alpha, lipschitz = 0.2, 10.0
        ours_t, ours = _timed_ours(
            lambda: MarginalDROLogisticRegression(
                subpopulation_size=alpha,
                covariates=[1],
                lipschitz=lipschitz,
                l2_reg=0.0,
            ).fit(X, y),
            args.repeats,
        )
        Z, p = X[:, [1]], np.full(n, 1.0 / n)
        dro_t, model = _timed_dro(
            _dro_fit(
                lambda: MarginalCVaRDRO(d, "logistic", alpha=alpha, L=lipschitz, p=2),
                {"control_name": [1]},
                X,
                y_pm,
                accelerate=False,
            ),
            args.repeats,
        )

        def dro_obj(model=model, Z=Z, p=p):
            losses = logistic_losses(X, y_pm, model.theta, model.b)
            return _marginal_risk(losses, Z, p, alpha, lipschitz)

        record(
            "marginal (alpha 0.2, L 10, 1 covariate), logistic",
            n,
            ours_t,
            dro_t,
            _marginal_risk(
                logistic_losses(X, y_pm, ours.coef_, ours.intercept_[0]),
                Z,
                p,
                alpha,
                lipschitz,
            ),
            dro_obj,
            "different sets: ours caps E[w^2] <= 1/alpha (the paper's chi-square "
            "bound), dro's caps w <= 1/alpha (CVaR); same L, `p=2` = our "
            "`holder_exponent=1`, all pairs (`accelerate=False`)",
        )

    lines = [
        "## DRO formulations shared with the `dro` package",
        "",
        "Same data, same process, no penalty. Classification: `make_classification` "
        "(d = 10, 5 informative, 5% label noise), column 0 cut into 3 groups. "
        "Regression: Gaussian X (d = 10), skewed noise 4 times larger for x_0 > 0. "
        "Objective: our exact robust risk of each solution's training losses (lower "
        "is better); where the sets differ, the last two columns score both solutions "
        "on `dro`'s set. Times are medians over "
        f"{args.repeats} fits (1 for `dro` at n > 5000); ours use L-BFGS (marginal "
        "DRO: Clarabel), `dro` cvxpy with Clarabel. `dro` 0.4.2. 2 shared cores.",
        "",
        MEMORY_NOTE + " Input size: X's bytes; ours only (each measure of the "
        "anchor would be one more of its cvxpy solves).",
        "",
        "| formulation | n | ours (s) | dro (s) | dro / ours | our objective "
        "| dro objective | ours on dro's set | dro on dro's set "
        "| ours: peak traced / X | ours: peak RSS / X | convention |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | --- |",
        *rows,
        "",
    ]
    out = HERE / "results" / "dro_formulations.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
