"""Weights load from safetensors; pickle checkpoints only when the variant opts in."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.models.loading import load_model
from attention_lab.variants import parse_variant


@pytest.fixture
def pickled_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=99,
    )
    model = BertForSequenceClassification(config)
    config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # the old pickle format
    return tmp_path, model


def test_pickle_weights_are_refused_with_the_reason(pickled_checkpoint):
    folder, _ = pickled_checkpoint
    with pytest.raises(
        ArtifactError, match="only pickle weights.*arbitrary code.*allow_pickle: true"
    ):
        load_model(str(folder), "classification", num_labels=2)


def test_pickle_weights_load_when_the_variant_opts_in(pickled_checkpoint):
    folder, original = pickled_checkpoint
    loaded = load_model(str(folder), "classification", num_labels=2, allow_pickle=True)
    weight = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(loaded.state_dict()[weight], original.state_dict()[weight])


def test_trust_and_pickle_are_off_unless_set_and_must_be_booleans():
    study = {"task": "classification"}
    spec = parse_variant("v", {"method": "head"}, study)
    assert spec.trust_remote_code is False and spec.allow_pickle is False
    assert parse_variant("v", {"method": "head", "allow_pickle": True}, study).allow_pickle
    with pytest.raises(ConfigError, match="trust_remote_code: expected true or false, got 'yes'"):
        parse_variant("v", {"method": "head", "trust_remote_code": "yes"}, study)
