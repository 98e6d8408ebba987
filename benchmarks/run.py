"""Run every benchmark and assemble ``docs/benchmarks.md``.

Each ``benchmarks/bench_<topic>.py`` is a standalone script that times our
code side by side with its anchor library in one run (creating the anchor's
virtual environment under ``benchmarks/.venv-<anchor>`` when it needs one) and
writes a markdown section to ``benchmarks/results/<topic>.md``. This script
runs them (``python benchmarks/run.py``; ``--only linear`` for one,
``--assemble`` to skip running) and concatenates the sections.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = [
    "linear",
    "ensemble",
    "nn",
    "metrics",
    "inference",
    "causal",
    "bandit",
    "experiment",
]

HEADER = """# Benchmarks

Measured with `make bench` (`benchmarks/run.py`), each table side by side with the anchor
library in the same run and on the same data. The machine has 2 cores and is shared, so
absolute times are noisy: read the ratios and medians. Tests never assert times.
"""


def _scripts(only):
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem[len("bench_") :] in only]

    def rank(path):
        topic = path.stem[len("bench_") :]
        return (ORDER.index(topic) if topic in ORDER else len(ORDER), topic)

    return sorted(scripts, key=rank)


def assemble():
    sections = sorted((HERE / "results").glob("*.md"))

    def rank(path):
        return (ORDER.index(path.stem) if path.stem in ORDER else len(ORDER), path.stem)

    parts = [HEADER] + [
        p.read_text().strip() + "\n" for p in sorted(sections, key=rank)
    ]
    out = ROOT / "docs" / "benchmarks.md"
    out.write_text("\n".join(parts))
    print(f"wrote {out.relative_to(ROOT)} from {len(sections)} sections")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="topics to run")
    parser.add_argument("--assemble", action="store_true", help="only assemble")
    args = parser.parse_args()
    if not args.assemble:
        for script in _scripts(args.only):
            start = time.perf_counter()
            print(f"== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=True, cwd=ROOT)
            print(f"   done in {time.perf_counter() - start:.0f} s", flush=True)
    assemble()


if __name__ == "__main__":
    main()
