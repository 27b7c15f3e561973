"""Shared by the dashboard tests: a small in-memory study, and a dashboard server in a subprocess.

Each server is started in its own process group and stopped by its id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.figures import performance_figure, similarity_by_layer_figure
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    write_store,
)
from dashboard.data import InMemoryStudy
from tests.conftest import PROJECT, free_port

TOKENS = ["[CLS]", "not", "bad", "[SEP]"]


def store(path, variant, seed, kinds=("encoder",)) -> AttentionStore:
    rng = np.random.default_rng(seed)

    def maps(q, k):
        w = rng.random((2, 4, q, k))
        return w / w.sum(-1, keepdims=True)

    examples = []
    for i in range(3):
        meta = {"id": f"e{i}", "tokens": TOKENS, "special_mask": [1, 0, 0, 1]}
        m = {"encoder": maps(4, 4)}
        if "cross" in kinds:
            meta["decoder"] = {"tokens": ["<s>", "pos"], "special_mask": [1, 0]}
            m |= {"decoder": maps(2, 2), "cross": maps(2, 4)}
        examples.append(ExampleAttention(meta, m))
    meta = {
        "variant": variant,
        "kinds": list(kinds),
        "layers": [0, 1],
        "heads": [0, 1, 2, 3],
        "kv_group": [0, 0, 1, 1],
        "causal": dict.fromkeys(kinds, False),
    }
    write_store(str(path), AttentionStream(meta, examples), dtype="float32")
    return AttentionStore(str(path))


def make_study(tmp_path) -> InMemoryStudy:
    """Variants "a" (encoder) and "b" (encoder-decoder), 2 layers x 4 heads, examples e0..e2."""
    probes = pd.DataFrame(
        {
            "id": ["e0", "e1", "e2"],
            "text": ["not bad", "bad", "good"],
            "label": [1, 0, 1],
            "label_name": ["fresh", "rotten", "fresh"],
            "source": "test",
        }
    )
    head_metrics = pd.DataFrame(
        [
            {
                "variant": v,
                "kind": "encoder",
                "layer": layer,
                "head": h,
                "normalized_entropy": float(layer + h + (v == "b")),
            }
            for v in ("a", "b")
            for layer in (0, 1)
            for h in range(4)
        ]
    )
    tables = {
        "all_head_metrics": head_metrics,
        "similarity_by_layer": pd.DataFrame(
            {
                "variant": ["b", "b"],
                "reference": "a",
                "kind": "encoder",
                "layer": [0, 1],
                "cosine_similarity": [0.9, 0.8],
            }
        ),
        "performance": pd.DataFrame(
            {"variant": ["a", "b"], "accuracy": [0.7, 0.8], "train_seconds": [1.0, 2.0]}
        ),
    }
    tables["similarity_figure"] = similarity_by_layer_figure(tables["similarity_by_layer"])
    tables["performance_figure"] = performance_figure(tables["performance"])
    return InMemoryStudy(
        {
            "a": store(tmp_path / "a.zarr", "a", 0),
            "b": store(tmp_path / "b.zarr", "b", 1, ("encoder", "decoder", "cross")),
        },
        probes,
        tables,
        reference="a",
    )


@pytest.fixture
def study(tmp_path) -> InMemoryStudy:
    return make_study(tmp_path)


def start_dashboard(*args: str) -> tuple[subprocess.Popen, str]:
    """``python -m dashboard ARGS`` on a free port of 127.0.0.1, once it answers: (process, url)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--port", str(port), *args],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise TimeoutError(f"dashboard did not answer on {url}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
