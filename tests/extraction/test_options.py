"""Extraction options on an encoder-decoder whose stacks differ in depth (4 encoder, 2 decoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.errors import ConfigError
from attention_lab.extraction.maps import round_layers
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
    assert (
        len(round_layers(maps(4), opts, "encoder")) == 4
        and len(round_layers(maps(2), opts, "encoder")) == 2
    )


def test_a_layer_subset_must_exist_in_every_stack():
    opts = ExtractionOptions.parse({"layers": [1], "heads": [0, 2], "precision_bits": None}, SHAPE)
    for depth in (4, 2):
        (layer,) = round_layers(maps(depth), opts, "encoder")  # layer 1 only: (B, 2 heads, T, T)
        assert layer.shape[1] == 2 and np.all(layer == 1.0)
    with pytest.raises(ConfigError, match=r"0\.\.1 \(in every stack\)"):
        ExtractionOptions.parse({"layers": [3]}, SHAPE)


@pytest.mark.parametrize(
    "mask",
    [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 1, 1, 1, 0], [1, 0, 1, 1, 0], [0, 0, 0, 0, 1]],
    ids=["right", "left", "both sides", "a hole", "one token"],
)
def test_cutting_padding_equals_gathering_the_real_tokens(mask):
    from attention_lab.extraction.maps import cut, cut_example

    rng = np.random.default_rng(0)
    layers = [rng.random((2, 3, 5, 5)).astype(np.float16) for _ in range(4)]  # (B, H, T, T)
    real = np.flatnonzero(mask)
    gathered = np.stack([layer[1][:, real][:, :, real] for layer in layers])  # [L, H, n, n]
    np.testing.assert_array_equal(cut_example(layers, 1, real, real), gathered)
    cut_one = cut(layers[2][1], real, real)
    np.testing.assert_array_equal(cut_one, gathered[2])
    assert cut_one.flags.c_contiguous  # what the store encodes without another copy


def test_only_attention_weights_on_a_float16_exact_grid_travel_as_grid_steps():
    for bits, weights in ((11, 11), (8, 8), (12, None), (None, None)):
        opts = ExtractionOptions.parse({"precision_bits": bits}, SHAPE)
        assert opts.grid_of("decoder") == opts.grid_of("cross") == weights
        assert opts.grid_of("decoder_norm") is None  # norm maps are not bounded by 1
