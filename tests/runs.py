"""Helpers for tests that run the real CLI: `kedro run` in a scratch env, and comparing what
two runs wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from attention_lab.datasets.store import AttentionStore
from tests.conftest import CONF, KEDRO, PROJECT

# measured, not computed: they differ between two identical runs
TIMING = {"train_seconds", "train_examples_per_second", "peak_memory_mb"}
TIMING |= {"prefill_tokens_per_s", "decode_tokens_per_s", "inference_peak_memory_mb"}  # costs


def kedro(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [KEDRO, "run", *args], cwd=PROJECT, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def data_root(env: str) -> Path:
    """Where ``env`` writes: a scratch env's (see ``ScratchEnv``) or one of the project's."""
    folder = env.folder if hasattr(env, "folder") else CONF / env
    globals_ = yaml.safe_load((folder / "globals.yml").read_text())
    return Path(globals_["data_root"])


def tables(root: Path) -> dict[str, pd.DataFrame | pd.Series]:
    """Every parquet table and metrics file of a run, without the timing columns."""
    out: dict[str, pd.DataFrame | pd.Series] = {}
    for path in sorted(root.rglob("*.parquet")):
        frame = pd.read_parquet(path)
        out[str(path.relative_to(root))] = frame.drop(columns=TIMING & set(frame.columns))
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        out[str(path.relative_to(root))] = pd.Series(
            {k: v for k, v in metrics.items() if k not in TIMING}
        )
    return out


def assert_same_tables(again: dict, reference: dict) -> None:
    assert again.keys() == reference.keys()
    for name, frame in reference.items():
        if isinstance(frame, pd.Series):
            pd.testing.assert_series_equal(again[name], frame, check_exact=True)
        else:
            pd.testing.assert_frame_equal(again[name], frame, check_exact=True)


def assert_same_maps(a, b) -> None:
    """Two stores (paths, or opened stores) hold the same examples, kinds and maps, exactly."""
    left = a if hasattr(a, "attention") else AttentionStore(str(a))
    right = b if hasattr(b, "attention") else AttentionStore(str(b))
    assert left.example_ids == right.example_ids and left.kinds == right.kinds
    for example in left.example_ids:
        for kind in left.kinds:
            np.testing.assert_array_equal(
                left.attention(example, kind), right.attention(example, kind)
            )


def assert_same_run(root: Path, reference: Path) -> None:
    """Everything two runs computed is equal: tables, metrics and every attention store."""
    assert_same_tables(tables(root), tables(reference))
    stores = sorted(reference.rglob("attention.zarr.zip"))
    assert stores
    for store in stores:
        assert_same_maps(root / store.relative_to(reference), store)
