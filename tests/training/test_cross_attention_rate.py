"""The cross-attention of an encoder-decoder can train at its own learning rate."""

from __future__ import annotations

import pytest

from attention_lab.attention.discovery import discover
from attention_lab.errors import ConfigError
from attention_lab.training.fine_tune import cross_attention_optimizer
from attention_lab.variants import TrainingSpec
from tests.conformance.families import FAMILIES


def family(name: str):
    return next(f for f in FAMILIES if f.name == name).build()


def test_cross_attention_parameters_get_their_own_rate():
    model = family("bart")
    spec = TrainingSpec(learning_rate=1e-4, cross_attention_learning_rate=1e-3)
    body, cross = cross_attention_optimizer(model, spec).param_groups
    expected = {
        id(p)
        for layer in discover(model)
        if layer.kind == "cross"
        for p in layer.module.parameters()
    }
    assert {id(p) for p in cross["params"]} == expected and cross["lr"] == 1e-3
    assert body["lr"] == 1e-4 and not expected & {id(p) for p in body["params"]}
    assert len(body["params"]) + len(cross["params"]) == len(list(model.parameters()))


def test_no_rate_keeps_the_trainers_optimizer_and_a_decoder_only_model_is_refused():
    assert cross_attention_optimizer(family("bart"), TrainingSpec()) is None
    with pytest.raises(ConfigError, match="no cross-attention"):
        cross_attention_optimizer(family("llama"), TrainingSpec(cross_attention_learning_rate=1e-3))
