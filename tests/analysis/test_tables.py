"""Analysis nodes on small synthetic stores: long tables, comparison, summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.noise_floor import similarity_by_kv_group, similarity_by_layer
from attention_lab.analysis.tables import (
    attention_sinks,
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


def make_store(
    path, variant: str, maps: list[np.ndarray], kv_group=(0, 0, 1, 1), seed: int = 42
) -> AttentionStore:
    meta = {
        "variant": variant,
        "seed": seed,
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


def by_layer_of(*compared) -> pd.DataFrame:
    """similarity_by_layer of compare_to_reference results (per-head, per-example tables)."""
    heads, examples = zip(*compared, strict=True)
    return similarity_by_layer(pd.concat(heads, ignore_index=True), *examples)


def test_comparison_with_itself_and_with_a_different_variant(tmp_path):
    ref = make_store(tmp_path / "ref.zarr", "base", [uniform(), identity()])
    same, same_examples = compare_to_reference(ref, ref)
    assert same["cosine_similarity"].to_numpy() == pytest.approx(1.0)
    assert same["js_divergence"].to_numpy() == pytest.approx(0.0, abs=1e-12)
    assert same_examples["cosine_similarity"].to_numpy() == pytest.approx(1.0)
    other = make_store(tmp_path / "o.zarr", "other", [identity(), identity()])
    diff, diff_examples = compare_to_reference(other, ref)
    cos_uniform_identity = (8 * 1 / 8) / (np.sqrt(64 / 64) * np.sqrt(8))  # <U, I> / (|U| |I|)
    assert diff["cosine_similarity"].to_numpy() == pytest.approx((cos_uniform_identity + 1) / 2)
    # per example and layer: e0 compares identity with uniform, e1 identity with identity
    per_example = diff_examples.sort_values(["example", "layer"])["cosine_similarity"]
    assert per_example.to_numpy() == pytest.approx([cos_uniform_identity] * 2 + [1.0] * 2)
    by_layer = by_layer_of((same, same_examples), (diff, diff_examples))
    assert len(by_layer) == 4
    assert by_layer.set_index("variant").loc[
        "other", "cosine_similarity"
    ].tolist() == pytest.approx([(cos_uniform_identity + 1) / 2] * 2)
    by_group = similarity_by_kv_group(pd.concat([same, diff]))
    assert set(by_group["kv_group"]) == {0, 1} and by_group["heads"].tolist() == [2] * 8


def test_summary_holds_the_runs_metrics_seed_and_entropy(tmp_path):
    ref = make_store(tmp_path / "ref.zarr", "base", [uniform()])
    row = summarise_variant(
        {"variant": "base", "seed": 43, "method": "head", "accuracy": 0.8, "train_seconds": 3.0},
        compute_head_metrics(ref),
    )
    assert (row["variant"], row["seed"], row["accuracy"]) == ("base", 43, 0.8)
    assert row["mean_entropy"] == pytest.approx(np.log(8))


def distinct_heads(seed: int) -> np.ndarray:
    """[2 layers, 4 heads, 8, 8] maps that differ from head to head."""
    w = np.random.default_rng(seed).random((2, 4, 8, 8)) ** 8
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def test_head_matching_recovers_heads_that_swapped_places(tmp_path):
    maps = [distinct_heads(s) for s in range(3)]
    order = [2, 0, 3, 1]  # the variant's head h does what the reference's head order[h] does
    ref = make_store(tmp_path / "ref.zarr", "base", maps)
    swapped = make_store(tmp_path / "sw.zarr", "swapped", [m[:, order] for m in maps])
    compared = compare_to_reference(swapped, ref)
    table = compared[0]
    assert table["matched_head"].tolist() == order * 2
    assert table["matched_similarity"].to_numpy() == pytest.approx(1.0)
    assert (table["cosine_similarity"] < 0.999).all()  # the identity pairing misses them
    by_layer = by_layer_of(compared)
    assert by_layer["heads_kept"].tolist() == [0, 0]  # no head kept its own index


def test_hungarian_matching_is_the_best_of_all_permutations():
    import itertools

    from attention_lab.analysis.metrics import match_heads

    similarity = np.random.default_rng(7).random((3, 5, 5))
    matched = match_heads(similarity)
    for layer, matrix in enumerate(similarity):
        best = max(
            sum(matrix[h, p] for h, p in enumerate(perm))
            for perm in itertools.permutations(range(5))
        )
        assert matrix[np.arange(5), matched[layer]].sum() == pytest.approx(best)


def test_intervals_bracket_the_means_of_head_metrics_and_similarity(tmp_path):
    maps = [distinct_heads(s) for s in range(6)]
    ref = make_store(tmp_path / "ref.zarr", "base", maps)
    other = make_store(tmp_path / "o.zarr", "other", [distinct_heads(s + 10) for s in range(6)])
    metrics = compute_head_metrics(other, {"statistics": {"bootstrap_resamples": 200}})
    assert (metrics["entropy_ci_low"] <= metrics["entropy"]).all()
    assert (metrics["entropy"] <= metrics["entropy_ci_high"]).all()
    assert (metrics["entropy_ci_low"] < metrics["entropy_ci_high"]).all()
    by_layer = by_layer_of(compare_to_reference(other, ref))
    assert (by_layer["cosine_ci_low"] <= by_layer["cosine_similarity"]).all()
    assert (by_layer["cosine_similarity"] <= by_layer["cosine_ci_high"]).all()


def test_sink_metric_counts_heads_above_the_threshold_per_layer():
    metrics = pd.DataFrame(
        {
            "variant": "v",
            "seed": 42,
            "kind": ["decoder"] * 4 + ["decoder_norm"] * 4 + ["cross"] * 4,
            "layer": [0, 0, 1, 1] * 3,
            "head": [0, 1] * 6,
            "first_token_mass": [0.9, 0.1, 0.31, 0.29, 0.2, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9],
            "sink_rate_gu": [1.0, 0.0, 0.5, 0.25] + [0.0] * 8,  # per head: share of examples
        }
    )
    table = attention_sinks(metrics, threshold=0.3)
    assert table["kind"].tolist() == ["decoder", "decoder", "decoder_norm", "decoder_norm"]
    assert table["sink_heads"].tolist() == [1, 1, 0, 0]
    assert table["first_token_mass"].tolist() == pytest.approx([0.5, 0.3, 0.15, 0.1])
    assert table["sink_head_share"].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert table["sink_rate_gu"].tolist() == [0.5, 0.375, 0.0, 0.0]
