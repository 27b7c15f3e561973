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
    ("name", "side", "mechanism"),
    [
        ("bert", "right", MechanismSpec("mha")),
        ("llama", "left", MechanismSpec("gqa", kv_heads=1)),
        ("gemma3_text", "left", MechanismSpec("sliding_window", window=2)),
    ],
)
def test_streamed_layers_equal_the_whole_pass(name, side, mechanism, tmp_path, monkeypatch):
    family = BY_NAME[name]
    model = apply_mechanism(family.build(), mechanism)
    whole = extract(model, family, side, tmp_path / "whole", norms=True)
    calls = []
    real = streaming.stream_batch
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 0)  # every batch streams
    monkeypatch.setattr(
        "attention_lab.extraction.run.stream_batch",
        lambda *args: calls.append(1) or real(*args),
    )
    streamed = extract(model, family, side, tmp_path / "streamed", norms=True)
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
