"""A store's root metadata as one typed object: written in format 5's key order (the order
stores had before it was typed; format 6 kept it), read back from format 4 and 5 attributes,
nothing lost."""

from __future__ import annotations

import json
import zipfile

import numpy as np

from attention_lab.datasets.store import (
    FORMAT_VERSION,
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    ShardInfo,
    StoreMeta,
    token_sides,
    write_store,
)
from attention_lab.kinds import INTERFACE_PATH, OUTPUT_ATTENTIONS_PATH

# the root attributes of a format 5 store, in the order extraction and the writer wrote them
# before they were typed (extraction's dict, then the writer's fields)
FORMAT_5_ORDER = [
    "model_id", "variant", "seed", "task", "method", "mechanism", "kinds", "num_layers",
    "layers", "heads", "num_heads", "num_kv_heads", "kv_group", "causal", "norms",
    "padding_side", "attention_path", "precision_bits", "label_names", "attention_lab_version",
    "format", "format_version", "dtype", "compact", "sparse_mass", "example_ids",
    "num_examples", "complete",
]  # fmt: skip


def full_meta(**changes) -> StoreMeta:
    values = dict(
        model_id="smollm2", variant="lora", seed=43, task="causal_lm", method="lora",
        mechanism={"name": "mha"}, kinds=["decoder"], num_layers=2, layers=[0, 3],
        heads=[1, 2], num_heads=4, num_kv_heads=2, kv_group=[0, 1], causal={"decoder": True},
        norms=False, padding_side="left", attention_path=INTERFACE_PATH, precision_bits=11,
        label_names=None, attention_lab_version="0.0.0",
    )  # fmt: skip
    return StoreMeta(**{**values, **changes})


def write(path, meta) -> None:
    maps = np.tril(np.full((2, 2, 3, 3), 0.25, dtype=np.float32))
    example = ExampleAttention({"id": "a", "tokens": ["x", "y", "z"]}, {"decoder": maps})
    write_store(str(path), AttentionStream(meta, [example]))


def root_attributes(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("zarr.json"))["attributes"]


def test_written_attributes_keep_format_5_key_order_and_read_back_equal(tmp_path):
    meta = full_meta()
    write(tmp_path / "s.zarr.zip", meta)
    attributes = root_attributes(tmp_path / "s.zarr.zip")
    assert list(attributes) == FORMAT_5_ORDER
    read = AttentionStore(str(tmp_path / "s.zarr.zip")).meta
    assert (read.variant, read.seed, read.layers, read.kv_group) == ("lora", 43, [0, 3], [0, 1])
    assert read.format_version == FORMAT_VERSION and read.complete and read.example_ids == ["a"]
    assert read.is_causal("decoder") and not read.is_causal("cross")
    assert read.stored_layer(3) == 1 and read.stored_head(2) == 1


def test_a_shard_is_written_as_its_block_and_read_back_typed(tmp_path):
    write(tmp_path / "s.zarr.zip", full_meta(shard=ShardInfo(index=1, count=3, start=5, probes=9)))
    attributes = root_attributes(tmp_path / "s.zarr.zip")
    assert attributes["shard"] == {"index": 1, "count": 3, "start": 5, "probes": 9}
    assert list(attributes).index("shard") == FORMAT_5_ORDER.index("attention_lab_version") + 1
    shard = AttentionStore(str(tmp_path / "s.zarr.zip")).meta.shard
    assert shard == ShardInfo(index=1, count=3, start=5, probes=9)


def test_older_attributes_take_defaults_and_unknown_keys_are_kept():
    # a format 4 store written before seeds, key/value groups and paths were recorded
    old = {"variant": "base", "kinds": ["encoder", "encoder_norm"], "layers": [0], "heads": [0],
           "format_version": 4, "complete": True, "future_key": [1, 2]}  # fmt: skip
    meta = StoreMeta.from_attrs(old)
    assert meta.seed == 42 and meta.attention_path == INTERFACE_PATH and meta.through_interface
    assert meta.base_kinds == ["encoder"] and meta.has_norms
    assert meta.extra == {"future_key": [1, 2]}
    assert meta.extraction_attrs()["future_key"] == [1, 2]  # rewriting loses nothing
    assert not StoreMeta(attention_path=OUTPUT_ATTENTIONS_PATH).through_interface


def test_token_sides_give_the_decoder_its_own_tokens_and_cross_keys_the_source():
    example = {"tokens": ["s1", "s2"], "decoder": {"tokens": ["t1"]}}
    assert token_sides(example, "encoder_norm") == (example, example)
    assert token_sides(example, "decoder") == (example["decoder"], example["decoder"])
    assert token_sides(example, "cross") == (example["decoder"], example)
    single = {"tokens": ["a"]}
    assert token_sides(single, "decoder") == (single, single)
