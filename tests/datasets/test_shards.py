"""Sharded extraction: n jobs each write a block of the probe set; read back, they are one store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attention_lab.datasets import AttentionStoreDataset
from attention_lab.datasets.model_directory import ModelDirectoryDataset, TrainedModel
from attention_lab.datasets.store import MapStore, ShardedStore, open_store, shard_path
from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.models.loading import load_model, load_tokenizer
from attention_lab.pipelines.attention_extraction.nodes import extract_attention

PARAMS = {"max_length": 24, "batch_size": 2, "precision_bits": None}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "base"
    info = {"variant": "base", "base_model": "minilm", "task": "classification", "method": "none"}
    info |= {"mechanism": {"name": "mha"}, "num_labels": 2, "adapter": False, "max_length": 24}
    model = load_model("minilm", "classification", num_labels=2)
    ModelDirectoryDataset(str(folder)).save(TrainedModel(model, load_tokenizer("minilm"), info))
    return ModelDirectoryDataset(str(folder)).load()


PROBES = pd.DataFrame(
    {
        "id": [f"p{i}" for i in range(7)],
        "text": [
            f"review {i}: {'a fine' if i % 2 else 'a dull'} film, {'x ' * i}" for i in range(7)
        ],
        "label": [i % 2 for i in range(7)],
    }
)


def test_three_shards_read_back_identical_to_one_store(artifact, tmp_path):
    whole = AttentionStoreDataset(str(tmp_path / "whole" / "attention.zarr.zip"))
    whole.save(extract_attention(artifact, PROBES, PARAMS))
    sharded = AttentionStoreDataset(str(tmp_path / "sharded" / "attention.zarr.zip"))
    for index in (2, 0, 1):  # jobs finish in any order
        sharded.save(
            extract_attention(artifact, PROBES, PARAMS | {"shard": {"index": index, "count": 3}})
        )
    one, joined = whole.load(), sharded.load()
    assert isinstance(joined, ShardedStore) and sharded.exists()
    assert isinstance(joined, MapStore) and isinstance(one, MapStore)
    assert joined.meta.shard is None and joined.meta.num_examples == len(PROBES)
    assert joined.meta.layers == one.meta.layers and joined.meta.variant == "base"
    assert joined.example_ids == one.example_ids == list(PROBES["id"])
    for example in one.example_ids:
        assert joined.example_meta(example)["tokens"] == one.example_meta(example)["tokens"]
        np.testing.assert_array_equal(joined.attention(example), one.attention(example))
    np.testing.assert_array_equal(joined.attention(4, layer=1, head=3), one.attention(4)[1, 3])
    np.testing.assert_array_equal(
        joined.mean_over_heads(4, layer=1), one.mean_over_heads(4, layer=1)
    )


def test_missing_or_mixed_shards_are_refused(artifact, tmp_path):
    path = str(tmp_path / "attention.zarr.zip")
    dataset = AttentionStoreDataset(path)
    for index in (0, 2):
        dataset.save(
            extract_attention(artifact, PROBES, PARAMS | {"shard": {"index": index, "count": 3}})
        )
    with pytest.raises(ArtifactError, match="not one complete set .*found shards 0 of 3, 2 of 3"):
        open_store(path)
    dataset.save(extract_attention(artifact, PROBES, PARAMS | {"shard": {"index": 1, "count": 2}}))
    with pytest.raises(ArtifactError, match="not one complete set"):
        open_store(path)
    assert shard_path(path, 1, 2).endswith("attention.shard-1-of-2.zarr.zip")


@pytest.mark.parametrize("shard", [{"index": 3, "count": 3}, {"index": "0", "count": 2}, [0, 2]])
def test_a_wrong_shard_setting_is_refused(artifact, shard):
    with pytest.raises(ConfigError, match="attention_extraction.shard"):
        extract_attention(artifact, PROBES, PARAMS | {"shard": shard})


def test_shards_of_different_runs_are_refused(artifact, tmp_path):
    path = str(tmp_path / "attention.zarr.zip")
    dataset = AttentionStoreDataset(path)
    dataset.save(extract_attention(artifact, PROBES, PARAMS | {"shard": {"index": 0, "count": 2}}))
    other = PARAMS | {"layers": [0, 1], "shard": {"index": 1, "count": 2}}  # another extraction
    dataset.save(extract_attention(artifact, PROBES, other))
    with pytest.raises(ArtifactError, match="come from different runs"):
        open_store(path)
