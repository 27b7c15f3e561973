"""Shared by the dashboard tests: a small in-memory study, and a dashboard server in a subprocess.

Each server is started in its own process group and stopped by its id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.figures import (
    ablation_figure,
    performance_figure,
    similarity_by_layer_figure,
)
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
    write_store,
)
from dashboard.data import InMemoryStudy
from tests.conftest import PROJECT, free_port
from tests.support.endpoint import wait_until_answers

TOKENS = ["[CLS]", "not", "bad", "[SEP]"]


LAYERS, HEADS = (0, 1), (0, 1, 2, 3)
# b's Hungarian match to its reference a: (kind, layer) -> the reference head of b's head h
MATCHED = {
    ("encoder", 0): [2, 0, 3, 1],
    ("encoder", 1): [1, 0, 3, 2],
    ("encoder_norm", 0): [3, 2, 1, 0],
    ("encoder_norm", 1): [0, 1, 2, 3],
}
# head_changes of b against a: (kind, metric) -> its significant (layer, head)s
SIGNIFICANT = {
    ("encoder", "normalized_entropy"): {(0, 1), (1, 3)},
    ("encoder", "entropy"): {(0, 0)},
    ("encoder_norm", "normalized_entropy"): {(1, 0), (1, 2), (0, 3)},
}


def store(path, variant, seed, kinds=("encoder",), norms=True) -> AttentionStore:
    """2 layers x 4 heads, examples e0..e2; with ``norms``, each kind's <kind>_norm maps too."""
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
        if norms:
            m |= {f"{kind}_norm": maps(*w.shape[2:]) for kind, w in m.items()}
        examples.append(ExampleAttention(meta, m))
    stored = [*kinds, *(f"{kind}_norm" for kind in kinds if norms)]
    meta = {
        "variant": variant,
        "kinds": stored,
        "layers": list(LAYERS),
        "heads": list(HEADS),
        "kv_group": [0, 0, 1, 1],
        "causal": dict.fromkeys(stored, False),
        "norms": norms,
    }
    write_store(str(path), AttentionStream(meta, examples), dtype="float32")
    return AttentionStore(str(path))


def _grid(**columns) -> list[dict]:
    """One row per layer and head of the synthetic models, with ``columns``."""
    return [{"layer": layer, "head": h, **columns} for layer in LAYERS for h in HEADS]


def head_metrics() -> pd.DataFrame:
    """Metric values that tell variant (b is a + 1) and kind (norms add 10) apart, with intervals."""
    rows = pd.DataFrame(
        [
            row | {"variant": v, "kind": kind}
            for v in ("a", "b")
            for kind in ("encoder", "encoder_norm")
            for row in _grid()
        ]
    )
    value = (
        rows["layer"] + rows["head"] + (rows["variant"] == "b") + 10 * (rows["kind"] != "encoder")
    )
    for metric, scale in (("normalized_entropy", 1.0), ("entropy", 2.0)):
        rows[metric] = scale * value.astype(float)
        rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"] = rows[metric] - 0.1, rows[metric] + 0.2
    return rows


def comparison() -> pd.DataFrame:
    """attention_comparison: a against itself (identity), b against a (:data:`MATCHED`)."""
    rows = []
    for kind in ("encoder", "encoder_norm"):
        for row in _grid():
            own = {"variant": "a", "matched_head": float(row["head"]), "matched_similarity": 1.0}
            matched = MATCHED[kind, row["layer"]][row["head"]]
            b = {"variant": "b", "matched_head": float(matched)}
            b["matched_similarity"] = 0.9 - 0.01 * row["head"]
            for variant in (own | {"cosine_similarity": 1.0}, b | {"cosine_similarity": 0.5}):
                rows.append(row | variant | {"kind": kind, "reference": "a"})
    return pd.DataFrame(rows)


def head_changes() -> pd.DataFrame:
    """b against a: :data:`SIGNIFICANT` heads have q = 0.01, the others 0.5."""
    rows = []
    for (kind, metric), marked in SIGNIFICANT.items():
        for row in _grid(variant="b", reference="a", kind=kind, metric=metric):
            effect = row["layer"] + row["head"] / 10
            significant = (row["layer"], row["head"]) in marked
            rows.append(
                row
                | {"effect": effect, "ci_low": effect - 0.05, "ci_high": effect + 0.05}
                | {"p": 0.5, "q": 0.01 if significant else 0.5, "significant": significant}
            )
    return pd.DataFrame(rows)


SEEDS = (42, 43)


def make_study(tmp_path, norms=("a", "b")) -> InMemoryStudy:
    """Variants "a" (encoder) and "b" (encoder-decoder, a's variant), 2 layers x 4 heads,
    examples e0..e2; the variants named in ``norms`` store norm-based maps too."""
    probes = pd.DataFrame(
        {
            "id": ["e0", "e1", "e2"],
            "text": ["not bad", "bad", "good"],
            "label": [1, 0, 1],
            "label_name": ["fresh", "rotten", "fresh"],
            "source": "test",
        }
    )

    def stored(table: pd.DataFrame) -> pd.DataFrame:  # norm rows of the variants with norms
        keep = (table["kind"] == "encoder") | table["variant"].isin(norms)
        return table[keep].reset_index(drop=True)

    tables = {
        "all_head_metrics": stored(head_metrics()),
        "attention_comparison": stored(comparison()),
        "head_changes": stored(head_changes()),
        "similarity_by_layer": pd.DataFrame(
            {
                "variant": ["b", "b"],
                "reference": "a",
                "kind": "encoder",
                "layer": [0, 1],
                "cosine_similarity": [0.9, 0.8],
                "cosine_ci_low": [0.85, 0.75],
                "cosine_ci_high": [0.95, 0.85],
                "seed_similarity": [0.97, 0.96],
                "seed_ci_low": [0.96, 0.95],
                "seed_ci_high": [0.98, 0.97],
                "changed": [False, True],
                "n_seeds": 2,
            }
        ),
        "performance": pd.DataFrame(
            {
                "variant": ["a", "b"],
                "accuracy": [0.7, 0.8],
                "accuracy_ci_low": [0.65, 0.74],
                "accuracy_ci_high": [0.75, 0.86],
                "n_seeds": 2,
                "train_seconds": [1.0, 2.0],
            }
        ),
    }
    tables["head_functions"] = head_functions_table()
    tables["ablation_figure"] = ablation_figure(pd.DataFrame(columns=["function"]))
    tables["similarity_figure"] = similarity_by_layer_figure(tables["similarity_by_layer"])
    tables["performance_figure"] = performance_figure(tables["performance"])
    b_kinds = ("encoder", "decoder", "cross")
    stores = {  # two seeds each: seed 42's maps, and seed 43's (other random maps)
        "a": [
            store(tmp_path / f"a{seed}.zarr", "a", seed - 42, norms="a" in norms) for seed in SEEDS
        ],
        "b": [
            store(tmp_path / f"b{seed}.zarr", "b", seed - 41, b_kinds, "b" in norms)
            for seed in SEEDS
        ],
    }
    return InMemoryStudy(stores, probes, tables, reference="a", seeds=list(SEEDS))


def head_functions_table() -> pd.DataFrame:
    """Prefix-matching scores: A's head (l, h) scores 0.1 * (l + h), B's 0.5 more."""
    rows = [
        {
            "variant": variant,
            "seed": SEEDS[0],
            "kind": "encoder",
            "layer": layer,
            "head": head,
            "function": "prefix_matching",
            "score": 0.1 * (layer + head) + shift,
            "ci_low": 0.1 * (layer + head) + shift - 0.05,
            "ci_high": 0.1 * (layer + head) + shift + 0.05,
        }
        for variant, shift in (("a", 0.0), ("b", 0.5))
        for layer in LAYERS
        for head in HEADS
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def study(tmp_path) -> InMemoryStudy:
    return make_study(tmp_path)


@pytest.fixture(scope="session")
def shared_study(tmp_path_factory) -> InMemoryStudy:
    """One study for the tests that only read it (they must not change it): built once."""
    return make_study(tmp_path_factory.mktemp("shared_study"))


# Long causal inputs: 389 tokens are drawn in blocks of 3 (the last one of 2) in a compare
# panel and of 7 (the last of 4) in a heads-grid panel.
LONG = 389
LONG_TOKENS = [f"w{i % 40}" for i in range(LONG)]  # repeats, as real text has


def causal_maps(rng, length: int) -> np.ndarray:
    """[layers, heads, T, T] peaky causal rows (a few keys hold most of each row)."""
    w = np.tril(np.exp(3 * rng.standard_normal((len(LAYERS), len(HEADS), length, length))))
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def long_store(path, variant, seed, sparse_mass=None, length=LONG) -> AttentionStore:
    """A decoder-only store of examples e0, e1 of ``length`` tokens, written a layer at a time
    as extraction streams long inputs; sparse with ``sparse_mass``."""
    rng = np.random.default_rng(seed)
    meta = {"tokens": LONG_TOKENS[:length], "special_mask": [0] * length}
    examples = [
        LayerMaps({"id": f"e{i}", **meta}, i, "decoder", layer, maps)
        for i in range(2)
        for layer, maps in enumerate(causal_maps(rng, length))
    ]
    meta = {
        "variant": variant,
        "kinds": ["decoder"],
        "layers": list(LAYERS),
        "num_layers": len(LAYERS),
        "heads": list(HEADS),
        "kv_group": [0, 0, 1, 1],
        "causal": {"decoder": True},
    }
    write_store(str(path), AttentionStream(meta, examples), "float32", sparse_mass=sparse_mass)
    return AttentionStore(str(path))


def make_long_study(tmp_path) -> InMemoryStudy:
    """Variants "a" and "b" (dense) and "s", "t" (sparse: each row keeps 90% of its mass) of
    one decoder model, examples e0 and e1 of :data:`LONG` tokens."""
    probes = pd.DataFrame(
        {
            "id": ["e0", "e1"],
            "text": ["long", "longer"],
            "label": [0, 1],
            "label_name": ["x", "y"],
            "source": "test",
        }
    )
    stores = {
        "a": long_store(tmp_path / "a.zarr.zip", "a", 0),
        "b": long_store(tmp_path / "b.zarr.zip", "b", 1),
        "s": long_store(tmp_path / "s.zarr.zip", "s", 2, sparse_mass=0.9),
        "t": long_store(tmp_path / "t.zarr.zip", "t", 3, sparse_mass=0.9),
    }
    return InMemoryStudy(stores, probes, reference="a")


@pytest.fixture(scope="module")
def long_study(tmp_path_factory) -> InMemoryStudy:
    return make_long_study(tmp_path_factory.mktemp("long"))


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
    if wait_until_answers(url, proc, 90):
        return proc, url
    if proc.poll() is not None:
        raise RuntimeError(proc.stderr.read().decode()[-2000:])
    stop(proc)
    raise TimeoutError(f"dashboard did not answer on {url}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
