"""Peak memory of the analysis as the probe set grows 10x (each size in a fresh process).

Writes two variants' synthetic stores (MiniLM shape) of N and 10 N examples, then runs the
streaming analysis nodes (head metrics and the comparison with the reference) on each and
records the process's peak RSS. Target: growth < 10%.

    python benchmarks/analysis.py [--examples 100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, report, run_child  # noqa: E402


def child(n: int, folder: Path) -> None:
    import numpy as np

    from attention_lab.analysis.tables import compare_to_reference, compute_head_metrics
    from attention_lab.datasets.store import (
        AttentionStore,
        AttentionStream,
        ExampleAttention,
        write_store,
    )

    stores = {}
    for variant, seed in (("base", 1), ("other", 2)):
        rng = np.random.default_rng(seed)
        lengths = np.random.default_rng(0).integers(12, 49, n)

        def examples(rng=rng, lengths=lengths):
            for i, t in enumerate(lengths):
                w = rng.random((6, 12, t, t), dtype=np.float32) ** 6
                tokens = ["[CLS]", *[f"w{j}" if j % 7 else "." for j in range(1, t - 1)], "[SEP]"]
                yield ExampleAttention(
                    {"id": f"e{i}", "tokens": tokens, "special_mask": [1] + [0] * (t - 2) + [1]},
                    {"encoder": w / w.sum(-1, keepdims=True)},
                )

        meta = {
            "variant": variant,
            "kinds": ["encoder"],
            "layers": list(range(6)),
            "heads": list(range(12)),
            "kv_group": list(range(12)),
            "causal": {"encoder": False},
        }
        write_store(str(folder / f"{variant}-{n}.zarr.zip"), AttentionStream(meta, examples()))
        stores[variant] = AttentionStore(str(folder / f"{variant}-{n}.zarr.zip"))
    baseline = peak_rss_mb()  # after writing: the analysis itself must not grow with n
    start = time.perf_counter()
    compute_head_metrics(stores["other"])
    compare_to_reference(stores["other"], stores["base"])
    print(
        json.dumps(
            {
                "n": n,
                "rss_mb": peak_rss_mb(),
                "rss_before_analysis_mb": baseline,
                "seconds": time.perf_counter() - start,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.folder)
    work = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    try:
        small = run_child(
            Path(__file__).resolve(), "--child", str(args.examples), "--folder", str(work)
        )
        large = run_child(
            Path(__file__).resolve(), "--child", str(10 * args.examples), "--folder", str(work)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    growth = large["rss_mb"] / small["rss_mb"] - 1
    data = {
        "examples_small": small["n"],
        "examples_large": large["n"],
        "rss_small_mb": small["rss_mb"],
        "rss_large_mb": large["rss_mb"],
        "seconds_small": small["seconds"],
        "seconds_large": large["seconds"],
        "rss_growth": growth,
        "targets": {"rss_growth<10%": growth < 0.10},
    }
    rows = [
        ("measure", f"{large['n']} examples", f"{small['n']} examples", "ratio (target)"),
        (
            "peak RSS",
            f"{large['rss_mb']:.0f} MB",
            f"{small['rss_mb']:.0f} MB",
            f"{growth:+.1%} (< +10%)",
        ),
        (
            "analysis time",
            f"{large['seconds']:.1f} s",
            f"{small['seconds']:.1f} s",
            f"{large['seconds'] / small['seconds']:.1f}x (linear: 10x)",
        ),
    ]
    print(
        "Analysis benchmark: head metrics + comparison, streamed over synthetic MiniLM-shaped stores\n"
    )
    report("analysis", rows, data)


if __name__ == "__main__":
    main()
