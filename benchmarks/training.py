"""Training throughput of the fast path against the old one, per method, on MiniLM, in one run.

Each (method, path) pair trains in a fresh process on the same Rotten Tomatoes snippets with
the default study's settings for that method, read from conf/base/parameters_fine_tuning.yml. The old
path is ``training.fast_path: false``: eager attention with its weights materialised,
randomly mixed lengths, and the head trained through the frozen model every epoch. The new
path uses SDPA, length-grouped batches and, for the head, features computed once (that pass
is inside the timed region). Examples per second count every example of every epoch.

    python benchmarks/training.py [--examples 480]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, probe_frame, report, run_child  # noqa: E402

# method -> the default study's variant of conf/base/parameters_fine_tuning.yml
VARIANTS = {"head": "base", "lora": "lora", "full": "full", "mechanism": "gqa4_lora"}
STUDY_FILE = Path(__file__).resolve().parents[1] / "conf/base/parameters_fine_tuning.yml"
TARGETS = {"head": 3.0, "lora": 1.5, "full": 1.5, "mechanism": 1.5}


def child(method: str, fast: bool, examples: int) -> None:
    import yaml

    from attention_lab.pipelines.fine_tuning.nodes import fine_tune
    from attention_lab.variants import parse_variant

    params = yaml.safe_load(STUDY_FILE.read_text())
    study, variant = params["study"], params["variants"][VARIANTS[method]]
    study["defaults"]["training"]["fast_path"] = fast  # the only change: old path or new
    corpus = probe_frame(examples).assign(split="train")
    _, log = fine_tune(corpus, method, variant, study)
    epochs = parse_variant(method, variant, study).training.epochs
    seconds = log["train_seconds"]
    print(
        json.dumps(
            {"examples_per_second": epochs * examples / seconds, "seconds": seconds}
            | {"rss_mb": peak_rss_mb()}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=480)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fast", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, bool(args.fast), args.examples)
    script = Path(__file__).resolve()
    runs = {
        (m, fast): run_child(
            script, "--child", m, "--fast", str(int(fast)), "--examples", str(args.examples)
        )
        for m in VARIANTS
        for fast in (False, True)
    }
    rows = [("method", "old ex/s", "new ex/s", "speedup", "target", "old RSS", "new RSS")]
    data: dict = {"examples": args.examples}
    for m in VARIANTS:
        old, new = runs[m, False], runs[m, True]
        speedup = new["examples_per_second"] / old["examples_per_second"]
        data[f"speedup_{m}"] = round(speedup, 2)
        data[m] = {"old": old, "new": new}
        rows.append(
            (
                m,
                f"{old['examples_per_second']:.1f}",
                f"{new['examples_per_second']:.1f}",
                f"{speedup:.2f}x",
                f">= {TARGETS[m]:.1f}x",
                f"{old['rss_mb']:.0f} MB",
                f"{new['rss_mb']:.0f} MB",
            )
        )
    print(
        f"Training benchmark: MiniLM, {args.examples} Rotten Tomatoes snippets, batch 32, "
        "default-study epochs; new (fast) path against old, same run\n"
    )
    report("training", rows, data)


if __name__ == "__main__":
    main()
