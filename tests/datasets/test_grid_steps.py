"""Store format 6: attention weights on the extraction's grid travel and are stored as whole
uint16 steps (blosc's shuffle, then lz4 for whole examples, zstd for streamed heads) and read back as exactly the float16 weights they stand for,
whole or streamed by layer, dense or as a lower triangle, and through compact and sparse
layouts."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
import zarr
from zarr.storage import ZipStore

from attention_lab.datasets.codecs import grid_steps, round_rows_to_grid
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
    write_store,
)
from tests.datasets.test_store import random_maps

BITS = 11


def gridded(rng, length: int, causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(uint16 steps, the float16 weights they stand for) of one example's [L, H, T, T] maps."""
    maps = random_maps(rng, length)
    if causal:
        maps = np.tril(maps)
        maps /= maps.sum(-1, keepdims=True)
    steps = grid_steps(torch.from_numpy(maps), BITS).numpy().view(np.uint16)
    weights = round_rows_to_grid(maps, BITS).astype(np.float16)
    return steps, weights


def test_grid_steps_are_the_rounded_weights_in_whole_steps():
    rng = np.random.default_rng(1)
    maps = random_maps(rng, 9)
    steps = grid_steps(torch.from_numpy(maps), BITS)
    assert steps.dtype == torch.int16
    # a float64 reference: round the running sums to the grid, then take differences
    running = np.rint(np.cumsum(maps.astype(np.float64), axis=-1) * 2**BITS)
    reference = np.diff(running, axis=-1, prepend=0)
    np.testing.assert_array_equal(steps.numpy(), reference)
    np.testing.assert_array_equal(steps.numpy() / 2**BITS, round_rows_to_grid(maps, BITS))
    assert np.all(steps.numpy().sum(-1) == 2**BITS)  # every row keeps its sum of 1
    with pytest.raises(ValueError, match="1..14"):
        grid_steps(torch.from_numpy(maps), 15)


@pytest.mark.parametrize("causal", [False, True])
def test_steps_read_back_as_the_float16_weights_and_are_stored_as_steps(tmp_path, causal):
    rng = np.random.default_rng(2)
    pairs = [gridded(rng, n, causal) for n in (3, 7, 12)]
    meta = {"kinds": ["decoder"], "causal": {"decoder": causal}, "precision_bits": BITS}
    as_steps = [
        ExampleAttention({"id": f"e{i}"}, {"decoder": s}, grid_bits={"decoder": BITS})
        for i, (s, _) in enumerate(pairs)
    ]
    as_floats = [
        ExampleAttention({"id": f"e{i}"}, {"decoder": w}) for i, (_, w) in enumerate(pairs)
    ]
    # in the stream, an example decodes its own steps to the weights they stand for
    np.testing.assert_array_equal(as_steps[1].weights("decoder"), pairs[1][1].astype(np.float32))
    np.testing.assert_array_equal(as_floats[1].weights("decoder"), pairs[1][1])
    write_store(str(tmp_path / "steps.zarr.zip"), AttentionStream(meta, as_steps))
    write_store(str(tmp_path / "floats.zarr.zip"), AttentionStream(meta, as_floats))
    steps, floats = (AttentionStore(str(tmp_path / f"{n}.zarr.zip")) for n in ("steps", "floats"))
    for i, (_, weights) in enumerate(pairs):
        np.testing.assert_array_equal(steps.attention(i), weights.astype(np.float32))
        np.testing.assert_array_equal(steps.attention(i), floats.attention(i))
        np.testing.assert_array_equal(
            steps.mean_over_heads(i, layer=1), floats.mean_over_heads(i, layer=1)
        )
        assert steps.example_meta(i) == floats.example_meta(i)  # the encoding is not metadata
    # zarr alone reads the steps, and the array says what they are and how they are packed
    with zipfile.ZipFile(tmp_path / "steps.zarr.zip") as archive:
        document = json.loads(archive.read("examples/2.decoder/zarr.json"))
    assert document["data_type"] == "uint16" and document["attributes"]["grid_bits"] == BITS
    assert document["codecs"][1]["configuration"]["cname"] == "lz4"
    array = zarr.open_group(ZipStore(tmp_path / "steps.zarr.zip", mode="r"), mode="r")[
        "examples/2.decoder"
    ]
    stored = array[:].astype(np.float32) / 2**BITS
    expected = pairs[2][1].astype(np.float32)
    if causal:  # the lower triangle, row by row
        expected = expected[..., *np.tril_indices(12)]
    np.testing.assert_array_equal(stored, expected)


@pytest.mark.parametrize("layout", ["compact", "sparse"])
def test_compact_and_sparse_layouts_take_steps_as_the_weights_they_stand_for(tmp_path, layout):
    rng = np.random.default_rng(3)
    (steps, weights) = gridded(rng, 8)
    options = {"compact": True} if layout == "compact" else {"sparse_mass": 0.9}
    meta = {"kinds": ["encoder"], "precision_bits": BITS}
    for name, example in (
        ("steps", ExampleAttention({"id": "a"}, {"encoder": steps}, grid_bits={"encoder": BITS})),
        ("floats", ExampleAttention({"id": "a"}, {"encoder": weights})),
    ):
        write_store(str(tmp_path / f"{name}.zarr.zip"), AttentionStream(meta, [example]), **options)
    read = [
        AttentionStore(str(tmp_path / f"{n}.zarr.zip")).attention(0) for n in ("steps", "floats")
    ]
    np.testing.assert_array_equal(*read)


def test_streamed_layers_of_steps_read_back_by_head(tmp_path):
    rng = np.random.default_rng(4)
    steps, weights = gridded(rng, 10)
    meta = {"kinds": ["encoder"], "num_layers": 2, "precision_bits": BITS}
    layers = [LayerMaps({"id": "a"}, 0, "encoder", li, steps[li], BITS) for li in (1, 0)]
    write_store(str(tmp_path / "s.zarr.zip"), AttentionStream(meta, layers))
    with zipfile.ZipFile(tmp_path / "s.zarr.zip") as archive:
        document = json.loads(archive.read("examples/0.encoder/zarr.json"))
    # one head of a streamed layer (long maps): byte-shuffled zstd, for bytes rather than speed
    assert document["codecs"][1]["configuration"]["cname"] == "zstd"
    store = AttentionStore(str(tmp_path / "s.zarr.zip"))
    np.testing.assert_array_equal(store.attention(0), weights.astype(np.float32))
    np.testing.assert_array_equal(
        store.attention(0, layer=1, head=2), weights[1, 2].astype(np.float32)
    )
    assert LayerMaps({"id": "a"}, 0, "encoder", 0, steps[0], BITS).weights().dtype == np.float32
