"""The comparison of two runs finds a change of one float, one map cell or one figure value,
and ignores what measures the machine (times, speeds, memory)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd

from attention_lab.datasets.store import AttentionStream, ExampleAttention, write_store
from tests.outputs.compare import differences


def run(root, score=0.5, seconds=1.0, cell=0.25, bar=3.0) -> None:
    (root / "08_reporting").mkdir(parents=True)
    frame = pd.DataFrame({"variant": ["a"], "score": [score], "train_seconds": [seconds]})
    frame.to_parquet(root / "08_reporting" / "performance.parquet")
    figure = {"data": [{"name": "accuracy", "y": [bar]}, {"name": "train_seconds", "y": [seconds]}]}
    (root / "08_reporting" / "figure.json").write_text(json.dumps(figure))
    maps = np.full((1, 1, 2, 2), 0.25, dtype=np.float32)
    maps[0, 0, 0, 0] = cell
    example = ExampleAttention({"id": "e", "tokens": ["x", "y"]}, {"encoder": maps})
    stream = AttentionStream({"kinds": ["encoder"], "num_layers": 1}, [example])
    write_store(str(root / "07_model_output" / "attention.zarr.zip"), stream, dtype="float32")


def test_identical_runs_and_machine_measurements_pass(tmp_path):
    run(tmp_path / "a")
    run(tmp_path / "b", seconds=9.0)  # another machine's time
    assert differences(tmp_path / "a", tmp_path / "b") == []


def test_one_changed_float_cell_or_figure_value_is_found(tmp_path):
    run(tmp_path / "a")
    for name, change in {
        "table": {"score": 0.5 + 1e-12},
        "map": {"cell": 0.5},
        "fig": {"bar": 3.5},
    }.items():
        shutil.rmtree(tmp_path / name, ignore_errors=True)
        run(tmp_path / name, **change)
        found = differences(tmp_path / "a", tmp_path / name)
        assert len(found) == 1, (name, found)
    (tmp_path / "b").mkdir()
    assert len(differences(tmp_path / "a", tmp_path / "b")) == 3  # nothing written: each named
