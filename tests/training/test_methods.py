"""Each fine-tuning method object says what it trains, and prepare() does exactly that."""

from __future__ import annotations

import pytest

from attention_lab.errors import ConfigError
from attention_lab.methods import METHODS, method_named
from attention_lab.models.loading import load_model
from attention_lab.training.methods import classifier_head_names, count_parameters, prepare
from attention_lab.variants import LoraSpec


@pytest.mark.parametrize("name", list(METHODS))
def test_prepare_trains_what_the_method_says(name):
    method = method_named(name)
    model = prepare(
        load_model("minilm", "classification", num_labels=2), name, "classification", LoraSpec()
    )
    trainable, total = count_parameters(model)
    head = sum(
        p.numel() for n in classifier_head_names(model) for p in getattr(model, n).parameters()
    )
    if not method.updates_weights:
        assert trainable == 0
    elif method.head_only:
        assert trainable == head > 0
    elif method.adapter:  # low-rank matrices and the classifier head peft saves beside them
        assert head < trainable < total / 10
        assert any("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    else:
        assert trainable == total


def test_a_converted_lora_variant_is_saved_whole_and_others_as_adapters():
    lora = method_named("lora")
    assert lora.saves_adapter(converts_weights=False) and not lora.saves_adapter(True)
    assert not any(method_named(m).saves_adapter(False) for m in ("none", "head", "full"))


def test_an_unknown_method_names_the_allowed_ones():
    with pytest.raises(
        ConfigError,
        match=r"variants.x.method: unknown method 'qlora'; allowed: none, head, lora, full",
    ):
        method_named("qlora", "variants.x.method")
