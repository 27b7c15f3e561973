"""Training throughput and peak memory of the fine-tuning methods on MiniLM, in one run.

Each method trains for the same number of steps on the same Rotten Tomatoes batches in a
fresh process (so peak RSS is its own); the table compares head and LoRA against full
fine-tuning, the baseline.

    python benchmarks/training.py [--steps 30] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, probe_frame, report, run_child  # noqa: E402

METHODS = ("head", "lora", "full")


def child(method: str, steps: int, batch_size: int) -> None:
    from attention_lab.pipelines.fine_tuning.nodes import fine_tune

    corpus = probe_frame(steps * batch_size).assign(split="train")
    study = {
        "task": "classification",
        "defaults": {
            "model": "minilm",
            "training": {"max_steps": steps, "batch_size": batch_size, "max_length": 64},
        },
    }
    _, log = fine_tune(corpus, method, {"method": method}, study)
    print(json.dumps({"method": method, **log, "rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.batch_size)
    script = Path(__file__).resolve()
    results = {
        m: run_child(
            script, "--child", m, "--steps", str(args.steps), "--batch-size", str(args.batch_size)
        )
        for m in METHODS
    }
    full = results["full"]
    rows = [
        ("method", "examples/s", "peak RSS", "trainable params", "speed vs full", "memory vs full")
    ]
    for m in METHODS:
        r = results[m]
        rows.append(
            (
                m,
                f"{r['train_examples_per_second']:.1f}",
                f"{r['rss_mb']:.0f} MB",
                f"{r['trainable_parameters']:,}",
                f"{r['train_examples_per_second'] / full['train_examples_per_second']:.2f}x",
                f"{r['rss_mb'] / full['rss_mb']:.2f}x",
            )
        )
    data = {
        m: {
            k: results[m][k]
            for k in (
                "train_examples_per_second",
                "rss_mb",
                "trainable_parameters",
                "total_parameters",
                "train_seconds",
            )
        }
        for m in METHODS
    }
    data["steps"], data["batch_size"] = args.steps, args.batch_size
    print(
        f"Training benchmark: MiniLM, {args.steps} steps of {args.batch_size} Rotten Tomatoes snippets per method\n"
    )
    report("training", rows, data)


if __name__ == "__main__":
    main()
