"""Streaming extraction (one layer at a time, as long inputs need) stores exactly what the
whole-pass path stores, for encoders and decoders, padded on either side, with norms."""

from __future__ import annotations

import numpy as np
import pytest

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.extraction import streaming
from tests.conformance.families import BY_NAME
from tests.conformance.test_families import extract


@pytest.mark.parametrize(
    ("name", "side", "mechanism", "norms"),
    [
        ("bert", "right", MechanismSpec("mha"), True),
        ("llama", "left", MechanismSpec("gqa", kv_heads=1), True),
        ("gemma3_text", "left", MechanismSpec("sliding_window", window=2), True),
        # outside the attention interface: hooks on their blocks, weights only
        ("deberta_v2", "right", MechanismSpec("mha"), False),
        ("bloom", "right", MechanismSpec("mha"), False),
        ("mpt", "right", MechanismSpec("mha"), False),
    ],
)
def test_streamed_layers_equal_the_whole_pass(name, side, mechanism, norms, tmp_path, monkeypatch):
    family = BY_NAME[name]
    model = apply_mechanism(family.build(), mechanism)
    whole = extract(model, family, side, tmp_path / "whole", norms=norms)
    calls = []
    real = streaming.stream_batch
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 0)  # every batch streams
    monkeypatch.setattr(
        "attention_lab.extraction.run.stream_batch",
        lambda *args: calls.append(1) or real(*args),
    )
    streamed = extract(model, family, side, tmp_path / "streamed", norms=norms)
    assert calls, "the streaming path was not taken"
    assert streamed.kinds == whole.kinds and streamed.example_ids == whole.example_ids
    for example in range(len(whole)):
        for kind in whole.kinds:
            np.testing.assert_array_equal(
                streamed.attention(example, kind), whole.attention(example, kind)
            )


def test_only_batches_too_large_to_hold_stream():
    from types import SimpleNamespace

    import torch

    from attention_lab.tasks import get_task

    opts = SimpleNamespace(norms=False, layers=list(range(30)), heads=list(range(9)))
    long = {"input_ids": torch.zeros(1, 2048, dtype=torch.long)}
    short = {"input_ids": torch.zeros(8, 128, dtype=torch.long)}
    causal = get_task("causal_lm")
    assert streaming.should_stream(causal, ("decoder",), long, opts)  # 4.5 GB held at once
    assert not streaming.should_stream(causal, ("decoder",), short, opts)  # 142 MB
    seq2seq = get_task("seq2seq")
    assert not streaming.should_stream(seq2seq, ("encoder", "decoder", "cross"), long, opts)


@pytest.mark.parametrize("name", ["deberta_v2", "bloom", "mpt"])
def test_hooked_blocks_hand_over_each_layer_and_keep_none(name):
    """Outside the interface, each block's weights are handed over as the block ends and the
    model's own tuple of maps holds only ``None``: at most one layer's maps is alive."""
    import torch

    family = BY_NAME[name]
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        native = model(input_ids=ids, output_attentions=True).attentions
        taken = []
        with streaming.handing_over_weights(model, lambda i, w: taken.append((i, w.clone()))):
            kept = model(input_ids=ids, output_attentions=True).attentions
    assert [i for i, _ in taken] == list(range(len(native)))
    assert all(layer is None for layer in kept)
    for (_, weights), reference in zip(taken, native, strict=True):
        torch.testing.assert_close(weights, reference, rtol=0, atol=0)
    # the hooks are gone afterwards: the model keeps its maps again
    with torch.no_grad():
        again = model(input_ids=ids, output_attentions=True).attentions
    assert all(layer is not None for layer in again)
