"""Three seeds must not triple the wait: the default study with one seed, then with three,
timed back to back on this machine.

    python benchmarks/seeds.py [--env ENV] [--seeds 42,43,44]

- baseline: `kedro run --params study.seeds=[42]`, one job at a time on every core: how the
  single-seed study ran before seeds existed;
- replicated: `make run`'s command, `kedro run --runner=ParallelRunner` with one thread per
  job (one job per core), every seed of study.seeds.

Both write under the env's data_root (the replicated run last, so its outputs are the
study's). Prints the times and their ratio (target: <= 2.2) and writes
benchmarks/results/seeds.json. Takes about an hour on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def run(args: list[str], threads: int | None = None) -> float:
    """Wall seconds of one `kedro run` (its output goes to a log beside the results)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log = PROJECT / "benchmarks" / "results" / "seeds.log"
    log.parent.mkdir(exist_ok=True)
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ kedro run {' '.join(args)}\n")
        out.flush()
        subprocess.run(
            [KEDRO, "run", *args], cwd=PROJECT, env=env, stdout=out, stderr=out, check=True
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro env (default: base + local)")
    parser.add_argument("--first-seed", type=int, default=42)
    args = parser.parse_args()
    env = [f"--env={args.env}"] if args.env else []
    single = run([*env, f"--params=study.seeds=[{args.first_seed}]"])
    replicated = run([*env, "--runner=ParallelRunner"], threads=1)
    ratio = replicated / single
    rows = [
        ("run", "seconds", "minutes", "ratio"),
        ("1 seed, one job at a time", f"{single:.0f}", f"{single / 60:.1f}", "1.00"),
        (
            "all seeds, one job per core",
            f"{replicated:.0f}",
            f"{replicated / 60:.1f}",
            f"{ratio:.2f}",
        ),
    ]
    report(
        "seeds",
        rows,
        {
            "env": args.env or "local",
            "cores": os.cpu_count(),
            "single_seed_seconds": round(single, 1),
            "replicated_seconds": round(replicated, 1),
            "ratio": round(ratio, 3),
            "target_ratio": 2.2,
        },
    )


if __name__ == "__main__":
    main()
