"""Server-side latency of the dashboard's compare view on small and large stores, in one run.

Builds two variants' synthetic stores (MiniLM shape: 6 layers x 12 heads, 12-48 tokens) of
100 and of 10,000 examples, then times the compare-view callback path (read one chunk from
each store, build the A / B / B−A figure, encode it to JSON as Dash does) for random
examples, layers and heads. Targets: p95 <= 100 ms; p95(large) <= 1.5 x p95(small).

    python benchmarks/dashboard.py [--requests 200] [--large 10000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio

# This file is named like the `dashboard` package, and Python put its folder first on sys.path:
# import the package without that folder, then put the folder back for `common`.
HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p != HERE]
from attention_lab.datasets.store import (  # noqa: E402
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    write_store,
)
from dashboard.data import InMemoryStudy  # noqa: E402
from dashboard.views import Selection, compare_view  # noqa: E402

sys.path.append(HERE)
from common import report  # noqa: E402

LAYERS, HEADS = 6, 12


def synthetic_store(path: Path, variant: str, n: int, seed: int) -> AttentionStore:
    rng = np.random.default_rng(seed)
    lengths = np.random.default_rng(0).integers(12, 49, n)  # same tokens in both variants

    def examples():
        for i, t in enumerate(lengths):
            w = rng.random((LAYERS, HEADS, t, t), dtype=np.float32) ** 6
            yield ExampleAttention(
                {
                    "id": f"ex{i}",
                    "tokens": [f"tok{j}" for j in range(t)],
                    "special_mask": [1] + [0] * (t - 2) + [1],
                },
                {"encoder": w / w.sum(-1, keepdims=True)},
            )

    meta = {
        "variant": variant,
        "kinds": ["encoder"],
        "layers": list(range(LAYERS)),
        "heads": list(range(HEADS)),
        "kv_group": list(range(HEADS)),
        "causal": {"encoder": False},
    }
    write_store(str(path), AttentionStream(meta, examples()))
    return AttentionStore(str(path))


def latencies(study: InMemoryStudy, n: int, requests: int) -> np.ndarray:
    rnd = random.Random(1)
    out = []
    for k in range(requests + 10):
        selection = Selection(
            a="a",
            b="b",
            example=f"ex{rnd.randrange(n)}",
            kind="encoder",
            layer=rnd.randrange(LAYERS),
            head=rnd.choice(["mean", *map(str, range(HEADS))]),
        )
        start = time.perf_counter()
        fig = compare_view(study, selection)
        pio.to_json(fig, validate=False)  # what Dash sends back
        if k >= 10:  # the first requests warm imports and caches
            out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        stats = {}
        for label, n in (("small", args.small), ("large", args.large)):
            start = time.perf_counter()
            stores = {
                v: synthetic_store(work / f"{label}-{v}.zarr.zip", v, n, seed)
                for v, seed in (("a", 1), ("b", 2))
            }
            print(f"built 2 x {n} examples in {time.perf_counter() - start:.0f} s", flush=True)
            probes = pd.DataFrame(
                {
                    "id": [f"ex{i}" for i in range(n)],
                    "text": "",
                    "label": 0,
                    "label_name": "x",
                    "source": "test",
                }
            )
            ms = latencies(InMemoryStudy(stores, probes, reference="a"), n, args.requests)
            stats[label] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 95)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (p50s, p95s), (p50l, p95l) = stats["small"], stats["large"]
    data = {
        "p50_ms_small": p50s,
        "p95_ms_small": p95s,
        "p50_ms_large": p50l,
        "p95_ms_large": p95l,
        "examples_small": args.small,
        "examples_large": args.large,
        "requests": args.requests,
        "targets": {
            "p95<=100ms": max(p95s, p95l) <= 100,
            "large/small p95<=1.5": p95l / p95s <= 1.5,
        },
    }
    rows = [
        ("store", "p50", "p95", "target"),
        (f"{args.small} examples", f"{p50s:.1f} ms", f"{p95s:.1f} ms", "p95 <= 100 ms"),
        (f"{args.large} examples", f"{p50l:.1f} ms", f"{p95l:.1f} ms", "p95 <= 100 ms"),
        ("large / small", f"{p50l / p50s:.2f}x", f"{p95l / p95s:.2f}x", "p95 ratio <= 1.5x"),
    ]
    print(f"\nDashboard compare-view latency, {args.requests} requests per store\n")
    report("dashboard", rows, data)


if __name__ == "__main__":
    main()
