"""The attention kind as one value: its name round-trips, its sides and causality are the
model's, and an unknown kind is refused by name."""

from __future__ import annotations

import pytest

from attention_lab.kinds import STORED_KINDS, AttentionKind, base_kind, norm_kind


@pytest.mark.parametrize("name", STORED_KINDS)
def test_every_stored_name_parses_and_round_trips(name):
    kind = AttentionKind.parse(name)
    assert kind.name == str(kind) == name
    assert kind.norms == name.endswith("_norm") and kind.weights.name == base_kind(name)
    assert kind.with_norms.name == norm_kind(name) == f"{kind.base}_norm"


def test_sides_and_causality():
    cross, decoder, encoder = (AttentionKind.parse(k) for k in ("cross_norm", "decoder", "encoder"))
    assert (cross.query_side, cross.key_side) == ("decoder", "encoder")
    assert (decoder.query_side, decoder.key_side) == ("decoder", "decoder")
    assert (encoder.query_side, encoder.key_side) == ("encoder", "encoder")
    assert decoder.causal and not encoder.causal and not cross.causal
    assert not cross.is_self_attention and decoder.is_self_attention


def test_an_unknown_kind_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown attention kind 'keys'.*encoder_norm"):
        AttentionKind.parse("keys")
