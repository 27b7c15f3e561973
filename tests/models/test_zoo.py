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
