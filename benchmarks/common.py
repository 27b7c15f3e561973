"""Helpers shared by the benchmark scripts: a probe set, a saved model, timing, RSS, a table."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

RESULTS = Path(__file__).resolve().parent / "results"


def probe_frame(n: int, seed: int = 0):
    """``n`` Rotten Tomatoes snippets in the probe_set contract (read straight from the bundled file)."""
    import pandas as pd

    from attention_lab.pipelines.ingestion.sources import read_rotten_tomatoes

    frame, names = read_rotten_tomatoes({})
    frame = (
        frame.drop_duplicates("text")
        .sample(n=n, random_state=seed, replace=n > len(frame))
        .reset_index(drop=True)
    )
    return pd.DataFrame(
        {
            "id": [f"b{i}" for i in range(n)],
            "text": frame["text"],
            "label": (frame["label"] == "fresh").astype(int),
            "label_name": frame["label"],
            "split": "test",
            "source": "test",
        }
    )


def saved_minilm(folder: Path):
    """The pretrained MiniLM classifier saved as a ``{variant}.model`` artifact."""
    from attention_lab.datasets.model_directory import ModelDirectoryDataset, TrainedModel
    from attention_lab.models.loading import load_model, load_tokenizer

    dataset = ModelDirectoryDataset(str(folder))
    if not dataset.exists():
        dataset.save(
            TrainedModel(
                load_model("minilm", "classification", num_labels=2),
                load_tokenizer("minilm"),
                {
                    "variant": "bench",
                    "base_model": "minilm",
                    "task": "classification",
                    "method": "none",
                    "mechanism": {"name": "mha"},
                    "num_labels": 2,
                    "adapter": False,
                    "max_length": 128,
                },
            )
        )
    return dataset.load()


def timed(fn, repeats: int = 3) -> float:
    """Median wall seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(runs: dict, rounds: int = 5) -> dict[str, list[float]]:
    """Wall seconds of each of ``runs`` (name -> call), called in turn once per round: a
    slow spell of a shared machine then slows every run of that round alike, and a ratio
    taken within each round (see :func:`round_ratios`) cancels it."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def round_ratios(times: dict[str, list[float]], name: str, baseline: str) -> list[float]:
    """``name``'s time over ``baseline``'s, round by round (from :func:`interleaved`)."""
    return [a / b for a, b in zip(times[name], times[baseline], strict=True)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: Path, *args: str) -> dict:
    """Run ``script`` in a fresh interpreter (so peak RSS is its own) and parse its JSON line."""
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def du(path: Path) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


def report(name: str, rows: list[tuple[str, ...]], data: dict) -> None:
    """Print a table (first row: headers) and write results/<name>.json."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {RESULTS / f'{name}.json'}")
