"""Kedro versioning of model folders and attention stores: every save keeps a version, the
latest is loaded by default and a pinned one when asked (what `--load-versions` does)."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io.core import DatasetError, Version

from attention_lab.datasets import AttentionStoreDataset, ModelDirectoryDataset
from attention_lab.datasets.model_directory import TrainedModel
from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.model_info import ModelInfo
from tests.conftest import BUCKET, tiny_llama
from tests.datasets.test_store import stream

ROOTS = ["local", "memory", "s3"]


@pytest.fixture
def place(request, tmp_path):
    """``place(root, name)``: (path, credentials) of ``name`` on a local folder, fsspec's
    memory filesystem, or a real S3 API (moto's server, see the ``s3`` fixture)."""

    def make(root: str, name: str) -> tuple[str, dict | None]:
        if root == "local":
            return str(tmp_path / name), None
        if root == "memory":
            return f"memory://versions-{tmp_path.name}/{name}", None
        return f"s3://{BUCKET}/versions/{name}", request.getfixturevalue("s3")

    return make


@pytest.mark.parametrize("root", ROOTS)
def test_model_versions_load_latest_or_pinned(place, root, bert_tokenizer):
    path, credentials = place(root, "lora")
    saved = {}
    for run, version in enumerate(["2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"]):
        model = tiny_llama(seed=run)
        ModelDirectoryDataset(path, Version(None, version), credentials).save(
            TrainedModel(model, bert_tokenizer, ModelInfo("v", "causal_lm", seed=run))
        )
        saved[version] = model
    versions = ModelDirectoryDataset(path, Version(None, None), credentials).list_versions(False)
    assert versions == sorted(saved, reverse=True)
    for pinned, expected_run in [(None, 1), (versions[1], 0)]:
        artifact = ModelDirectoryDataset(path, Version(pinned, None), credentials).load()
        assert artifact.info.seed == expected_run
        assert (artifact.path / "model.safetensors").is_file()


@pytest.mark.parametrize("root", ROOTS)
def test_store_versions_load_latest_or_pinned(place, root):
    path, credentials = place(root, "attention.zarr.zip")
    written = {}
    for seed, version in enumerate(["2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"]):
        data, examples = stream(n=2, seed=seed)
        dataset = AttentionStoreDataset(
            path, dtype="float32", version=Version(None, version), credentials=credentials
        )
        dataset.save(data)
        written[version] = examples
    for pinned in [None, *written]:
        store = AttentionStoreDataset(
            path, version=Version(pinned, None), credentials=credentials
        ).load()
        expected = written[pinned or max(written)]
        for example in expected:
            np.testing.assert_array_equal(
                store.attention(example.meta["id"], "encoder"), example.maps["encoder"]
            )


def test_an_unfinished_model_version_is_not_the_latest(tmp_path, bert_tokenizer):
    """A folder without its info file (a killed upload) is skipped, not loaded."""
    path = tmp_path / "lora"
    first = "2026-01-01T00.00.00.000Z"
    ModelDirectoryDataset(str(path), version=Version(None, first)).save(
        TrainedModel(tiny_llama(), bert_tokenizer, ModelInfo("v", "causal_lm", seed=0))
    )
    (path / "2026-01-02T00.00.00.000Z" / "lora").mkdir(parents=True)  # no attention_lab.json
    dataset = ModelDirectoryDataset(str(path), version=Version(None, None))
    assert dataset.load().info.seed == 0 and dataset.list_versions(False) == [first]


def test_a_missing_pinned_version_names_the_fix(tmp_path):
    dataset = ModelDirectoryDataset(str(tmp_path / "lora"), version=Version("2026-nope", None))
    with pytest.raises(ArtifactError, match="No trained model at .*lora.*--namespaces=lora"):
        dataset.load()


def test_shards_of_a_versioned_store_are_refused(tmp_path):
    data, _ = stream(n=2, meta={"kinds": ["encoder"], "shard": {"index": 0, "count": 2}})
    dataset = AttentionStoreDataset(str(tmp_path / "a.zarr.zip"), version=Version(None, None))
    with pytest.raises(DatasetError) as raised:  # Kedro wraps it; the CLI prints the cause
        dataset.save(data)
    assert isinstance(raised.value.__cause__, ConfigError)
    assert "versioned: false" in str(raised.value.__cause__)
    assert not any(tmp_path.iterdir())


def test_an_unversioned_save_keeps_the_versions_it_would_replace(tmp_path, bert_tokenizer):
    """Turning `versioned` off must not delete what versioned runs saved."""
    store, model = str(tmp_path / "attention.zarr.zip"), str(tmp_path / "lora")
    AttentionStoreDataset(store, version=Version(None, None)).save(stream(n=1)[0])
    ModelDirectoryDataset(model, version=Version(None, None)).save(
        TrainedModel(tiny_llama(), bert_tokenizer, ModelInfo("v", "causal_lm", seed=0))
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ArtifactError, match="holds versions saved with `versioned: true`"):
        AttentionStoreDataset(store).save(stream(n=1)[0])
    with pytest.raises(ArtifactError, match="holds versions saved with `versioned: true`"):
        ModelDirectoryDataset(model).save(
            TrainedModel(tiny_llama(), bert_tokenizer, ModelInfo("v", "causal_lm"))
        )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_versioned_store_with_no_version_names_the_fix(tmp_path):
    dataset = AttentionStoreDataset(str(tmp_path / "a.zarr.zip"), version=Version(None, None))
    assert not dataset.exists()
    with pytest.raises(
        ArtifactError, match="No version of the attention store .*attention_extraction"
    ):
        dataset.load()
