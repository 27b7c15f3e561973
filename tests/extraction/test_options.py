"""Extraction options on an encoder-decoder whose stacks differ in depth (4 encoder, 2 decoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.errors import ConfigError
from attention_lab.extraction.maps import stack_batch
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.models.shape import ModelShape

SHAPE = ModelShape(
    kinds=("encoder", "decoder", "cross"),
    num_layers={"encoder": 4, "decoder": 2, "cross": 2},
    causal={"encoder": False, "decoder": True, "cross": False},
    num_heads=3,
    num_kv_heads=3,
)


def maps(layers: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.full((1, 3, 2, 2), float(i)) for i in range(layers))  # layer i holds i


def test_all_layers_keeps_each_stack_whole():
    opts = ExtractionOptions.parse({"precision_bits": None}, SHAPE)
    assert opts.all_layers and opts.layers == [0, 1, 2, 3]
    assert stack_batch(maps(4), opts).shape[1] == 4 and stack_batch(maps(2), opts).shape[1] == 2


def test_a_layer_subset_must_exist_in_every_stack():
    opts = ExtractionOptions.parse({"layers": [1], "heads": [0, 2], "precision_bits": None}, SHAPE)
    for depth in (4, 2):
        stacked = stack_batch(maps(depth), opts)  # (B, 1, 2, T, T)
        assert stacked.shape[1:3] == (1, 2) and np.all(stacked == 1.0)
    with pytest.raises(ConfigError, match=r"0\.\.1 \(in every stack\)"):
        ExtractionOptions.parse({"layers": [3]}, SHAPE)
