"""Conformance of the fast path: SDPA with the mechanism's input transforms gives the eager
outputs, for every family and every mechanism, padded on either side, or it is not used.

Training and evaluation run :data:`FAST_IMPLEMENTATION`; extraction keeps the eager path. The
two must agree on the model's outputs (not only on weights, which SDPA never returns) to 1e-5
at every real token. Families whose eager attention adds a term SDPA cannot take must be
detected and left on eager.
"""

from __future__ import annotations

import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.fast_path import fast_attention, fast_path_matches
from attention_lab.attention.interface import FAST_IMPLEMENTATION, IMPLEMENTATION
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ConfigError
from attention_lab.tasks.base import with_positions
from tests.conformance.families import BY_NAME, FAMILIES, mechanisms_for, probe_set, word_tokenizer

TOLERANCE = 1e-5
EAGER_ONLY = {"gemma2": "logit soft-capping", "gpt_oss": "learned sink logits"}


def padded_batch(family, model, side: str) -> dict[str, torch.Tensor]:
    tokenizer = word_tokenizer(family.pad, side)
    batch = tokenizer(list(probe_set()["text"]), padding=True, return_tensors="pt")
    batch = dict(with_positions(model, dict(batch)))
    batch.pop("token_type_ids", None)
    if model.config.is_encoder_decoder:
        batch["decoder_input_ids"] = batch["input_ids"][:, :4].clamp(min=4)
    return batch


def logits(model, batch, implementation: str) -> torch.Tensor:
    model.set_attn_implementation(implementation)
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_fast_path_gives_the_eager_outputs_for_every_mechanism(family, side):
    for spec in [MechanismSpec("mha"), *mechanisms_for(family)]:
        try:
            model = apply_mechanism(family.build(), spec)
        except ConfigError:  # refused mechanisms are covered by test_families
            continue
        if not fast_path_matches(model):
            assert family.name in EAGER_ONLY, f"{family.name}/{spec.name}: fast path refused"
            with fast_attention(model) as used:
                assert not used and model.config._attn_implementation == IMPLEMENTATION
            continue
        assert family.name not in EAGER_ONLY, f"{family.name}: SDPA cannot reproduce it"
        batch = padded_batch(family, model, side)
        eager = logits(model, batch, IMPLEMENTATION)
        fast = logits(model, batch, FAST_IMPLEMENTATION)
        real = batch["attention_mask"].bool()  # (B, T): compare real tokens only
        if eager.dim() == 3 and not model.config.is_encoder_decoder:
            eager, fast = eager[real], fast[real]
        difference = float((eager - fast).abs().max())
        assert difference <= TOLERANCE, (family.name, spec.name, side, difference)


def test_fast_attention_restores_the_eager_implementation():
    family = BY_NAME["llama"]
    model = apply_mechanism(family.build(), MechanismSpec("mqa"))
    with fast_attention(model) as used:
        assert used and model.config._attn_implementation == FAST_IMPLEMENTATION
    assert model.config._attn_implementation == IMPLEMENTATION
    with fast_attention(model, enabled=False) as used:
        assert not used and model.config._attn_implementation == IMPLEMENTATION
