"""Model zoo: aliases resolve offline; unknown names, missing folders and offline hub ids fail clearly."""

import pytest

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.models.loading import load_model, load_tokenizer
from attention_lab.models.zoo import resolve


def test_minilm_alias_loads_offline_for_classification():
    model = load_model("minilm", "classification", MechanismSpec("mqa"), num_labels=3)
    assert model.config.num_labels == 3
    assert model.config._attn_implementation == "attention_lab"
    assert model.config.attention_lab_mechanism["name"] == "mqa"


def test_unknown_alias():
    with pytest.raises(
        ConfigError, match="unknown model alias 'bert'; allowed aliases: minilm, smollm2-135m"
    ):
        resolve("bert")


def test_missing_local_path(tmp_path):
    with pytest.raises(ConfigError, match="model folder not found: .*missing-model"):
        resolve(str(tmp_path / "missing-model"))


def test_hub_id_while_offline_names_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArtifactError, match="HF_HUB_OFFLINE=1 is set.*Connect to the network"):
        load_tokenizer("someone/some-model")


def test_unknown_task():
    with pytest.raises(ConfigError, match="unknown task 'ner'"):
        load_model("minilm", "ner")


def test_a_converted_model_is_shared_through_object_storage(tmp_path):
    """One machine publishes its float32 copy under data_root; another downloads it whole, and
    a copy whose config.json (written last) is missing is not taken."""
    import fsspec

    from attention_lab.models import zoo

    converted = tmp_path / "here" / "gemma3-270m"
    (converted / "sub").mkdir(parents=True)
    files = {"config.json": b"{}", "model.safetensors": b"weights", "sub/tokenizer.json": b"t"}
    for name, data in files.items():
        (converted / name).write_bytes(data)
    shared = f"memory://zoo-{tmp_path.name}"
    try:
        zoo.share_cache(shared)
        zoo._publish_shared("gemma3-270m", converted)
        there = tmp_path / "there" / "gemma3-270m"
        assert zoo._fetch_shared("gemma3-270m", there)
        assert {
            p.relative_to(there).as_posix(): p.read_bytes() for p in there.rglob("*") if p.is_file()
        } == files
        fsspec.filesystem("memory").rm(f"zoo-{tmp_path.name}/gemma3-270m/config.json")
        assert not zoo._fetch_shared("gemma3-270m", tmp_path / "elsewhere" / "gemma3-270m")
        assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())
    finally:
        zoo.share_cache(None)


def test_an_unreachable_shared_cache_costs_a_conversion_not_the_run(tmp_path, monkeypatch, caplog):
    import fsspec

    from attention_lab.models import zoo

    def unreachable(*args, **kwargs):
        raise RuntimeError("no route to the bucket")

    monkeypatch.setattr(fsspec.core, "url_to_fs", unreachable)
    folder = tmp_path / "gemma3-270m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    try:
        zoo.share_cache("s3://bucket/study/06_models/zoo")
        assert not zoo._fetch_shared("gemma3-270m", tmp_path / "there" / "gemma3-270m")
        zoo._publish_shared("gemma3-270m", folder)  # logs, does not raise
    finally:
        zoo.share_cache(None)
    assert [r.levelname for r in caplog.records].count("WARNING") == 2
    assert all(
        "no route to the bucket" in r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING"
    )
