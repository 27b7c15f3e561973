"""Analysis nodes on small synthetic stores: long tables, comparison, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from attention_lab.analysis.tables import (
    build_performance_table,
    combine_comparisons,
    compare_to_reference,
    compute_head_metrics,
    summarise_variant,
)
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    write_store,
)

TOKENS = ["[CLS]", "the", "film", ".", "it", "works", ".", "[SEP]"]
SPECIAL = [1, 0, 0, 0, 0, 0, 0, 1]


def make_store(path, variant: str, maps: list[np.ndarray], kv_group=(0, 0, 1, 1)) -> AttentionStore:
    meta = {
        "variant": variant,
        "kinds": ["encoder"],
        "causal": {"encoder": False},
        "layers": [0, 1],
        "heads": [0, 1, 2, 3],
        "kv_group": list(kv_group),
        "num_kv_heads": len(set(kv_group)),
    }
    examples = [
        ExampleAttention({"id": f"e{i}", "tokens": TOKENS, "special_mask": SPECIAL}, {"encoder": m})
        for i, m in enumerate(maps)
    ]
    write_store(str(path), AttentionStream(meta, examples), dtype="float32")
    return AttentionStore(str(path))


def uniform() -> np.ndarray:
    return np.full((2, 4, 8, 8), 1 / 8, dtype=np.float32)


def identity() -> np.ndarray:
    return np.broadcast_to(np.eye(8, dtype=np.float32), (2, 4, 8, 8)).copy()


def test_head_metrics_average_over_examples(tmp_path):
    store = make_store(tmp_path / "a.zarr", "a", [uniform(), identity()])
    table = compute_head_metrics(store)
    assert len(table) == 2 * 4 and set(table.columns) >= {
        "variant",
        "kind",
        "layer",
        "head",
        "kv_group",
        "entropy",
        "pattern",
    }
    assert table["self_mass"].to_numpy() == pytest.approx((1 / 8 + 1) / 2)
    assert table["kv_group"].tolist() == [0, 0, 1, 1] * 2
    # two sentences ("the film ." and "it works ."): uniform keeps 3/6 inside, identity 1
    assert table["segment_mass"].to_numpy() == pytest.approx((0.5 + 1.0) / 2)


def test_comparison_with_itself_and_with_a_different_variant(tmp_path):
    ref = make_store(tmp_path / "ref.zarr", "base", [uniform(), identity()])
    same = compare_to_reference(ref, ref)
    assert same["cosine_similarity"].to_numpy() == pytest.approx(1.0)
    assert same["js_divergence"].to_numpy() == pytest.approx(0.0, abs=1e-12)
    other = make_store(tmp_path / "o.zarr", "other", [identity(), identity()])
    diff = compare_to_reference(other, ref)
    cos_uniform_identity = (8 * 1 / 8) / (np.sqrt(64 / 64) * np.sqrt(8))  # <U, I> / (|U| |I|)
    assert diff["cosine_similarity"].to_numpy() == pytest.approx((cos_uniform_identity + 1) / 2)
    table, by_layer, by_group = combine_comparisons(same, diff)
    assert len(table) == 16 and len(by_layer) == 4
    assert set(by_group["kv_group"]) == {0, 1} and by_group["heads"].tolist() == [2] * 8


def test_performance_table_joins_metrics_entropy_and_similarity(tmp_path):
    ref = make_store(tmp_path / "ref.zarr", "base", [uniform()])
    hm = compute_head_metrics(ref)
    _, by_layer, _ = combine_comparisons(compare_to_reference(ref, ref))
    row = summarise_variant(
        {
            "variant": "base",
            "method": "head",
            "mechanism": "mha",
            "accuracy": 0.8,
            "train_seconds": 3.0,
        },
        hm,
    )
    table = build_performance_table(by_layer, row)
    assert table.loc[0, "accuracy"] == 0.8
    assert table.loc[0, "mean_entropy"] == pytest.approx(np.log(8))
    assert table.loc[0, "mean_similarity_to_reference"] == pytest.approx(1.0)
