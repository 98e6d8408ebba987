"""Benchmark skbandit policies side by side with MABWiser.

Run as a script: ``python benchmarks/bench_bandit.py [--seeds 5]``. It creates
``benchmarks/.venv-bandit`` (MABWiser 2.7.4 plus skbandit installed with
``--no-deps``) when missing and re-runs itself there, so both libraries run
in one process on the same data. Every seed draws the contexts, the expected
rewards and the reward noise once (common random numbers); both libraries
then play the same rounds, in batches of 100, after the same uniformly random
first batch. The results go to ``benchmarks/results/bandit.md``.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / ".venv-bandit"
VENV_PY = VENV / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results" / "bandit.md"
ANCHOR = "mabwiser==2.7.4"


def _ensure_venv():
    if not VENV_PY.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call(
            [str(VENV_PY), "-m", "pip", "install", "-q", ANCHOR, "scikit-learn"]
        )
    probe = subprocess.run(
        [str(VENV_PY), "-c", "import skbandit"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        subprocess.check_call(
            [str(VENV_PY), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)]
        )


try:  # inside the benchmark venv
    import mabwiser  # noqa: F401
except ImportError:  # pragma: no cover - re-run in the venv that has the anchor
    if __name__ == "__main__":
        _ensure_venv()
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        sys.exit(subprocess.call([str(VENV_PY), __file__, *sys.argv[1:]], env=env))
    raise

import numpy as np  # noqa: E402
from mabwiser.mab import MAB, LearningPolicy  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skbandit import (  # noqa: E402
    UCB1,
    BernoulliThompsonSampling,
    DistilledThompsonSampling,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    make_feedback,
)
from skbandit.environments import (  # noqa: E402
    BernoulliArms,
    LinearContextualBandit,
    SupervisedBandit,
)

T, BATCH = int(os.environ.get("BENCH_T", 10_000)), 100


def _problems():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return {
        "Bernoulli arms (K=10)": BernoulliArms(np.linspace(0.3, 0.6, 10)),
        "linear, noisy (K=10, d=20, sd=0.5)": LinearContextualBandit(
            n_arms=10, n_features=20, noise_std=0.5, random_state=0
        ),
        "digits, noiseless (K=10, d=64)": SupervisedBandit(X, y),
        "digits, noisy (sd=1)": SupervisedBandit(X, y, noise_std=1.0),
    }


def _families(contextual):
    """(name, our policy factory, MABWiser learning policy)."""
    if not contextual:
        return [
            (
                "Thompson sampling",
                lambda s: BernoulliThompsonSampling(random_state=s),
                LearningPolicy.ThompsonSampling(),
            ),
            ("UCB1", lambda s: UCB1(), LearningPolicy.UCB1(alpha=1.0)),
            (
                "epsilon-greedy 0.1",
                lambda s: EpsilonGreedy(0.1, random_state=s),
                LearningPolicy.EpsilonGreedy(epsilon=0.1),
            ),
        ]
    return [
        (
            "linear TS",
            lambda s: LinearThompsonSampling(
                noise_variance=1.0, fit_intercept=False, random_state=s
            ),
            LearningPolicy.LinTS(alpha=1.0, l2_lambda=1.0),
        ),
        (
            "LinUCB",
            lambda s: LinUCB(exploration=1.0, fit_intercept=False),
            LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0),
        ),
    ]


def _draw(env, seed):
    rng = np.random.default_rng(seed)
    X, mean = env.sample(T, rng)
    if env.bernoulli:
        u = rng.random(mean.shape)
        rewards = (u < mean).astype(float)
    else:
        rewards = mean + env.noise_std * rng.standard_normal(mean.shape)
    first = rng.integers(mean.shape[1], size=BATCH)
    return X, mean, rewards, first


def _run(lib, make, lp, env, data, seed):
    X, mean, rewards, first = data
    contextual = X.shape[1] > 0
    rows = np.arange(T)
    chosen = np.empty(T, dtype=int)
    chosen[:BATCH] = first
    arms = list(range(mean.shape[1]))
    decide = update = 0.0
    r0 = rewards[rows[:BATCH], first]
    if lib == "ours":
        policy = make(seed)
        policy.set_params(arms=arms)
        policy.partial_fit(X[:BATCH], make_feedback(first, r0))
    else:
        policy = MAB(arms, lp, seed=seed)
        policy.fit(first, r0, X[:BATCH] if contextual else None)
    for lo in range(BATCH, T, BATCH):
        Xb = X[lo : lo + BATCH]
        tic = time.perf_counter()
        if lib == "ours":
            a = policy.predict(Xb)
        else:
            # without context, MABWiser makes one decision per row it is given
            a = np.asarray(policy.predict(Xb if contextual else np.zeros((BATCH, 1))))
        decide += time.perf_counter() - tic
        chosen[lo : lo + BATCH] = a
        r = rewards[rows[lo : lo + BATCH], a]
        tic = time.perf_counter()
        if lib == "ours":
            policy.partial_fit(Xb, make_feedback(a, r))
        else:
            policy.partial_fit(a, r, Xb if contextual else None)
        update += time.perf_counter() - tic
    regret = float(np.sum(mean.max(axis=1) - mean[rows, chosen]))
    return regret, (T - BATCH) / decide, update, policy


def _draw_correlation(n_draws=20000):
    """Correlation across two arms of sampled rewards at one context."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    a = rng.integers(2, size=200)
    r = rng.normal(size=200)
    x = np.array([[0.3, -0.2]])
    mab = MAB([0, 1], LearningPolicy.LinTS(alpha=1.0), seed=1)
    mab.fit(a, r, X)
    e = mab.predict_expectations(np.repeat(x, n_draws, axis=0))
    theirs = np.corrcoef(np.array([[d[0], d[1]] for d in e]).T)[0, 1]
    ours = LinearThompsonSampling(fit_intercept=False).fit(X, make_feedback(a, r))
    draws = ours.sample_coef(n_draws, random_state=0) @ x[0]  # (n_draws, 2)
    return float(np.corrcoef(draws.T)[0, 1]), float(theirs)


def _latency(env, seed, n_calls=200):
    """Per-call decision latency of linear TS and its distilled version."""
    X, mean, rewards, first = _draw(env, seed)
    rng = np.random.default_rng(seed)
    a = rng.integers(10, size=T)
    fb = make_feedback(a, rewards[np.arange(T), a])
    teacher = LinearThompsonSampling(noise_variance=0.05, random_state=0).fit(X, fb)
    distilled = DistilledThompsonSampling(
        LinearThompsonSampling(noise_variance=0.05),
        max_contexts=2000,
        random_state=0,
    ).fit(X, fb)
    out = {}
    for size in (1, 100):
        for name, pol in (("linear TS", teacher), ("distilled TS", distilled)):
            times = []
            for i in range(n_calls):
                Xb = X[(i * size) % (T - size) :][:size]
                tic = time.perf_counter()
                pol.predict(Xb)
                times.append(time.perf_counter() - tic)
            out[(name, size)] = float(np.median(times))
    held = X[:500]
    tv = (
        0.5
        * np.abs(distilled.predict_proba(held) - teacher.predict_proba(held))
        .sum(axis=1)
        .mean()
    )
    return out, float(tv)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    lines = [
        "## skbandit vs MABWiser 2.7.4",
        "",
        f"Machine: 2 shared CPU cores (other jobs running), OMP_NUM_THREADS=1. "
        f"T = {T} rounds in batches of {BATCH}, after the same uniformly random "
        f"first batch; {len(seeds)} seeds with common random numbers (both "
        "libraries see the same contexts and reward noise). Regret is the "
        "cumulative pseudo-regret at T (mean ± sd over seeds); decisions/s is "
        "the median over seeds of decisions per second spent in `predict`; "
        "ratio = ours / MABWiser. Same exploration settings: TS priors "
        "Beta(1, 1); UCB width 1; linear TS noise variance 1 = MABWiser "
        "`alpha=1`, ridge 1, no intercept.",
        "",
        "| problem | policy | regret ours | regret MABWiser | decisions/s ours "
        "| decisions/s MABWiser | ratio | update s/run ours | update s/run "
        "MABWiser |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for pname, env in _problems().items():
        contextual = env.n_features > 0
        data = {s: _draw(env, 1000 + s) for s in seeds}
        for fname, make, lp in _families(contextual):
            res = {"ours": [], "mabwiser": []}
            for s in seeds:
                for lib in res:
                    res[lib].append(_run(lib, make, lp, env, data[s], s)[:3])
            ours, theirs = np.array(res["ours"]), np.array(res["mabwiser"])
            ratio = np.median(ours[:, 1]) / np.median(theirs[:, 1])
            lines.append(
                f"| {pname} | {fname} | {ours[:, 0].mean():.0f} ± "
                f"{ours[:, 0].std():.0f} | {theirs[:, 0].mean():.0f} ± "
                f"{theirs[:, 0].std():.0f} | {np.median(ours[:, 1]):,.0f} | "
                f"{np.median(theirs[:, 1]):,.0f} | {ratio:.1f}x | "
                f"{np.median(ours[:, 2]):.2f} | {np.median(theirs[:, 2]):.2f} |"
            )
            print(lines[-1], flush=True)
    ours_corr, their_corr = _draw_correlation()
    lat, tv = _latency(_problems()["digits, noiseless (K=10, d=64)"], 0)
    lines += [
        "",
        "**Independent draws.** Correlation across two arms of the sampled "
        "expected reward at one context (20,000 draws, 2 arms fitted on the same "
        f"200 logged rounds): skbandit {ours_corr:+.3f}, MABWiser "
        f"{their_corr:+.3f}. MABWiser deep-copies one random generator into "
        "every arm's model when fitting, so all arms replay the same standard "
        "normal draws.",
        "",
        "**Distilled Thompson sampling, decision latency** (digits, teacher = "
        "linear TS fitted on 10,000 logged rounds, imitation = "
        "LogisticRegression; median over 200 `predict` calls):",
        "",
        "| contexts per call | linear TS | distilled TS | ratio TS / distilled |",
        "| --- | --- | --- | --- |",
    ]
    for size in (1, 100):
        a, b = lat[("linear TS", size)], lat[("distilled TS", size)]
        lines.append(
            f"| {size} | {a * 1e6:,.0f} µs | {b * 1e6:,.0f} µs | {a / b:.1f}x |"
        )
    lines += [
        "",
        f"Mean total-variation distance between the imitation policy and the "
        f"teacher's action distribution on 500 contexts: {tv:.3f}.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines[-14:]))


if __name__ == "__main__":
    main()
