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
    BaseEnvironment,
    BernoulliArms,
    LinearContextualBandit,
    SupervisedBandit,
)

T, BATCH = int(os.environ.get("BENCH_T", 10_000)), 100


class ConstantContextArms(BaseEnvironment):
    """Gaussian arms seen by a linear policy through one constant feature.

    Linear TS on this problem is Gaussian Thompson sampling (the coefficient
    of the constant feature is the arm's mean), so contexts bring no
    exploration of their own and the posterior draws alone must explore.
    """

    def __init__(self, means, noise_std, n_features=1):
        self.means = np.asarray(means, dtype=float)
        self.noise_std = noise_std
        self.arms = np.arange(self.means.shape[0])
        self.n_features = n_features

    def sample(self, n, rng):
        # a constant feature, then columns of zeros
        X = np.zeros((n, self.n_features))
        X[:, 0] = 1.0
        return X, np.tile(self.means, (n, 1))


class SharedDrawLinTS(LinearThompsonSampling):
    """Our linear TS with one standard normal draw shared by all arms.

    Not part of skbandit: it reproduces MABWiser's sampling so that the regret
    difference can be attributed to the shared draw.
    """

    def _choose(self, X, rng):
        mean, quad = self._mean_and_var(X, single=True)
        z = rng.standard_normal((X.shape[0], 1))
        return np.argmax(mean + np.sqrt(self.noise_variance * quad) * z, axis=1)


def _problems():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return {
        "Bernoulli arms (K=10)": BernoulliArms(np.linspace(0.3, 0.6, 10)),
        "linear, noisy (K=10, d=20, sd=0.5)": LinearContextualBandit(
            n_arms=10, n_features=20, noise_std=0.5, random_state=0
        ),
        "Gaussian arms, context = [1] (K=10, sd=1)": ConstantContextArms(
            np.linspace(0.0, 0.5, 10), 1.0
        ),
        "Gaussian arms, context = [1, 0] (K=10, sd=1)": ConstantContextArms(
            np.linspace(0.0, 0.5, 10), 1.0, n_features=2
        ),
        "Gaussian arms, context = [1, 0] (K=50, sd=1)": ConstantContextArms(
            np.random.default_rng(50).normal(0.0, 0.5, 50), 1.0, n_features=2
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
    decide, update = [], 0.0
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
        decide.append(time.perf_counter() - tic)
        chosen[lo : lo + BATCH] = a
        r = rewards[rows[lo : lo + BATCH], a]
        tic = time.perf_counter()
        if lib == "ours":
            policy.partial_fit(Xb, make_feedback(a, r))
        else:
            policy.partial_fit(a, r, Xb if contextual else None)
        update += time.perf_counter() - tic
    regret = float(np.sum(mean.max(axis=1) - mean[rows, chosen]))
    # decisions per second from the median batch: robust to load spikes
    return regret, BATCH / np.median(decide), update, policy


def _interleaved_throughput(env, n_calls=300):
    """Decisions/s of linear TS, both libraries timed alternately.

    Both are fitted on the same 10,000 uniformly logged rounds; then one
    ``predict`` call on a batch of 100 contexts is timed for each library in
    turn, so that load on the shared machine hits both alike.
    """
    X, mean, rewards, first = _draw(env, 0)
    rng = np.random.default_rng(0)
    a = rng.integers(mean.shape[1], size=T)
    r = rewards[np.arange(T), a]
    arms = list(range(mean.shape[1]))
    ours = LinearThompsonSampling(fit_intercept=False, arms=arms, random_state=0)
    ours.fit(X, make_feedback(a, r))
    theirs = MAB(arms, LearningPolicy.LinTS(alpha=1.0, l2_lambda=1.0), seed=0)
    theirs.fit(a, r, X)
    times = {"ours": [], "mabwiser": []}
    for i in range(n_calls):
        Xb = X[(i * BATCH) % (T - BATCH) :][:BATCH]
        for lib, pol in (("ours", ours), ("mabwiser", theirs)):
            tic = time.perf_counter()
            pol.predict(Xb)
            times[lib].append(time.perf_counter() - tic)
    return {lib: BATCH / np.median(t) for lib, t in times.items()}


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


def _latency(env, n_calls=200):
    """Per-call decision latency of linear TS and its distilled version."""
    X, mean, rewards, first = _draw(env, 0)
    rng = np.random.default_rng(0)
    a = rng.integers(mean.shape[1], size=T)
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


def _regret_cell(regret):
    return f"{regret.mean():.0f} ± {regret.std():.0f} (max {regret.max():.0f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    lines = [
        "## skbandit vs MABWiser 2.7.4",
        "",
        "Machine: 2 shared CPU cores, heavily loaded by other jobs (load average "
        "about 10), OMP_NUM_THREADS=1: absolute times are inflated and noisy, "
        "ratios from the same run are what to read. "
        f"T = {T} rounds in batches of {BATCH}, after the same uniformly random "
        f"first batch; {len(seeds)} seeds with common random numbers (both "
        "libraries see the same contexts and reward noise). Regret: cumulative "
        "pseudo-regret at T, mean ± sd over seeds (worst seed). Decisions/s: "
        "batch size over "
        "the median time of one `predict` call on a batch, median over seeds; "
        "ratio = ours / MABWiser. Same exploration settings: Beta(1, 1) priors; "
        "UCB width 1; linear TS noise variance 1 (= MABWiser `alpha=1`), ridge "
        "1, no intercept. *Shared draw*: our linear TS changed to use one "
        "normal draw for all arms, as MABWiser does (benchmark-only subclass).",
        "",
        "| problem | policy | regret ours | regret MABWiser | regret ours, "
        "shared draw | decisions/s ours | decisions/s MABWiser | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for pname, env in _problems().items():
        contextual = env.n_features > 0
        data = {s: _draw(env, 1000 + s) for s in seeds}
        for fname, make, lp in _families(contextual):
            libs = ["ours", "mabwiser"] + (["shared"] if fname == "linear TS" else [])
            res = {lib: [] for lib in libs}
            for s in seeds:
                for lib in libs:
                    if lib == "shared":
                        shared = lambda s: SharedDrawLinTS(  # noqa: E731
                            noise_variance=1.0, fit_intercept=False, random_state=s
                        )
                        out = _run("ours", shared, lp, env, data[s], s)
                    else:
                        out = _run(lib, make, lp, env, data[s], s)
                    res[lib].append(out[:2])
            ours, theirs = np.array(res["ours"]), np.array(res["mabwiser"])
            shared_txt = "–"
            if "shared" in res:
                shared_txt = _regret_cell(np.array(res["shared"])[:, 0])
            ratio = np.median(ours[:, 1]) / np.median(theirs[:, 1])
            lines.append(
                f"| {pname} | {fname} | {_regret_cell(ours[:, 0])} | "
                f"{_regret_cell(theirs[:, 0])} | {shared_txt} | "
                f"{np.median(ours[:, 1]):,.0f} | {np.median(theirs[:, 1]):,.0f} | "
                f"{ratio:.1f}x |"
            )
            print(lines[-1], flush=True)
    ours_corr, their_corr = _draw_correlation()
    lines += [
        "",
        "**Linear TS decision throughput, timed alternately** (both fitted on "
        "the same 10,000 uniformly logged rounds, then 300 `predict` calls on "
        "batches of 100 contexts, one call of each library in turn; decisions/s "
        "from the median call):",
        "",
        "| problem | decisions/s ours | decisions/s MABWiser | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for pname in (
        "digits, noiseless (K=10, d=64)",
        "linear, noisy (K=10, d=20, sd=0.5)",
    ):
        tp = _interleaved_throughput(_problems()[pname])
        lines.append(
            f"| {pname} | {tp['ours']:,.0f} | {tp['mabwiser']:,.0f} | "
            f"{tp['ours'] / tp['mabwiser']:.1f}x |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "Both libraries do O(n K d^2) work per batch of n contexts (MABWiser: "
        "per arm, a Cholesky factor and n multivariate normal draws; ours: one "
        "matrix product for all arms and n K scalar draws), so the ratio comes "
        "from fixed costs and moves with the machine's load: in the runs made "
        "while developing it ranged from about 4x to 11x at d = 64. About half "
        "of our call is scikit-learn's input validation (`validate_data`).",
    ]
    lines += [
        "",
        "**Reading the regret.** Policies of the same family agree where they "
        "are the same algorithm: UCB1 and LinUCB are deterministic and give the "
        "same regret to the unit; Beta-Bernoulli TS and epsilon-greedy agree "
        "within the spread over seeds. Linear TS differs: MABWiser's regret is "
        "lower on the rows with varied contexts and on the 10-arm [1, 0] row. "
        "On those rows our own linear TS with one draw shared by all arms "
        "(column *shared draw*) closes the gap or goes below MABWiser, so the "
        "gap comes from the shared draw, not from the posterior. One draw "
        "moves every arm's "
        "sample the same way, so the samples' ranking is nearly the ranking of "
        "the means: the policy explores less than Thompson sampling does. Where "
        "contexts vary (linear and digits rows) that earns less regret within "
        "10,000 rounds, on the noiseless and the noisy problems alike: varied "
        "contexts explore for free, and a noise variance of 1 over-explores. "
        "Where they do not, with many noisy arms (the 50-arm row, every "
        "context [1, 0]), independent draws have the lowest mean regret and "
        "the best worst seed; both shared-draw versions have heavier tails, "
        "because a shared draw can leave a good arm untried for long. Its "
        "other cost is correctness. Its action probabilities are not the "
        "posterior probabilities of being best, so propensities derived from "
        "Thompson sampling are wrong for off-policy evaluation, and an arm "
        "whose line m + s z never tops the others is "
        "never tried. For less exploration with correct TS, lower "
        "`noise_variance`.",
        "",
        "**MABWiser with one context feature.** With a single feature "
        "(context = [1]), MABWiser's LinTS squeezes the (n, 1) coefficient "
        "draws to shape (n,), and `x * beta` broadcasts to (n, n): every "
        "context of a batch gets the sum of all n draws, the same decision and "
        "n times the variance. It then locks onto a suboptimal arm in some "
        "seeds (the spread of its regret on that row). The same arms with a "
        "zero column added (context = [1, 0]) avoid the bug.",
        "",
        "**Independent draws.** Correlation across two arms of the sampled "
        "expected reward at one context (20,000 draws, 2 arms fitted on the same "
        f"200 logged rounds): skbandit {ours_corr:+.3f}, MABWiser "
        f"{their_corr:+.3f}. MABWiser deep-copies one random generator into "
        "every arm's model when fitting, so all arms replay the same standard "
        "normal draws.",
        "",
        "**Distilled Thompson sampling, decision latency.** Teacher: linear TS "
        "(noise variance 0.05) fitted on 10,000 uniformly logged rounds; "
        "imitation: LogisticRegression on the teacher's draws at 2,000 "
        "contexts; median over 200 `predict` calls. TV: mean total-variation "
        "distance between the imitation and the teacher's action distributions "
        "on 500 contexts.",
        "",
        "| problem | contexts per call | linear TS | distilled TS | speed-up | TV |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    latency_problems = {
        "digits (K=10, d=64)": _problems()["digits, noiseless (K=10, d=64)"],
        "linear (K=10, d=400)": LinearContextualBandit(
            n_arms=10, n_features=400, noise_std=0.5, random_state=0
        ),
    }
    for pname, env in latency_problems.items():
        lat, tv = _latency(env)
        for size in (1, 100):
            a, b = lat[("linear TS", size)], lat[("distilled TS", size)]
            lines.append(
                f"| {pname} | {size} | {a * 1e6:,.0f} µs | {b * 1e6:,.0f} µs | "
                f"{a / b:.1f}x | {tv:.3f} |"
            )
            print(lines[-1], flush=True)
    lines.append("")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
