"""Store layouts for long inputs: layers streamed one at a time, causal maps as their lower
triangle, and the sparse top-mass rows; each read back against the maps written."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.storage import ZipStore

from attention_lab.datasets.codecs import top_mass
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
    write_store,
)
from attention_lab.errors import ArtifactError


def causal_maps(rng, n: int, layers: int = 3, heads: int = 2) -> np.ndarray:
    w = np.tril(rng.random((layers, heads, n, n)) ** 6)
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def meta(n_layers: int, causal: bool) -> dict:
    return {
        "kinds": ["decoder"],
        "variant": "v",
        "num_layers": n_layers,
        "causal": {"decoder": causal},
    }


def example_meta(i: int, n: int) -> dict:
    return {"id": f"ex{i}", "tokens": ["t"] * n, "special_mask": [0] * n}


def test_causal_maps_are_stored_as_their_lower_triangle_without_loss(tmp_path):
    rng = np.random.default_rng(0)
    maps = [causal_maps(rng, n) for n in (5, 9)]
    examples = [
        ExampleAttention(example_meta(i, len(m[0, 0])), {"decoder": m}) for i, m in enumerate(maps)
    ]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(3, True), examples), dtype="float32")
    raw = zarr.open_group(ZipStore(path, mode="r"), mode="r")["examples/1.decoder"]
    assert raw.shape == (3, 2, 9 * 10 // 2) and raw.attrs["layout"] == "lower_triangle"
    store = AttentionStore(path)
    for i, m in enumerate(maps):
        np.testing.assert_array_equal(store.attention(i), m)
        np.testing.assert_array_equal(store.attention(i, layer=2, head=1), m[2, 1])


def test_layers_streamed_in_any_order_equal_whole_examples(tmp_path):
    rng = np.random.default_rng(1)
    maps = [causal_maps(rng, n) for n in (4, 6, 5)]
    pieces = [
        LayerMaps(example_meta(i, len(m[0, 0])), i, "decoder", layer, m[layer])
        for layer in (2, 0, 1)  # layer-major, as a forward pass produces them
        for i, m in enumerate(maps)
    ]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(3, True), pieces), dtype="float32")
    store = AttentionStore(path)
    assert store.example_ids == ["ex0", "ex1", "ex2"]
    for i, m in enumerate(maps):
        np.testing.assert_array_equal(store.attention(i), m)


def test_an_example_missing_a_layer_is_not_published(tmp_path):
    rng = np.random.default_rng(2)
    m = causal_maps(rng, 4)
    pieces = [LayerMaps(example_meta(0, 4), 0, "decoder", layer, m[layer]) for layer in (0, 1)]
    path = tmp_path / "s.zarr.zip"
    with pytest.raises(ArtifactError, match="would miss layers"):
        write_store(str(path), AttentionStream(meta(3, True), pieces))
    assert not path.exists() and not list(tmp_path.iterdir())


def brute_force_top_mass(row: np.ndarray, mass: float) -> int:
    """The fewest keys reaching ``mass`` of the row, by trying every count."""
    ranked = np.sort(row)[::-1]
    return next(k for k in range(len(row) + 1) if ranked[:k].sum() >= mass * row.sum())


@pytest.mark.parametrize("mass", [0.5, 0.9, 0.99])
def test_sparse_rows_keep_the_fewest_keys_reaching_the_mass(tmp_path, mass):
    rng = np.random.default_rng(3)
    maps = causal_maps(rng, 12)
    rows = maps.reshape(-1, 12)
    counts, steps, values, dropped = top_mass(rows, mass)
    assert counts.tolist() == [brute_force_top_mass(row, mass) for row in rows]
    path = str(tmp_path / "s.zarr.zip")
    example = ExampleAttention(example_meta(0, 12), {"decoder": maps})
    write_store(path, AttentionStream(meta(3, True), [example]), sparse_mass=mass)
    store = AttentionStore(path)
    read = store.attention(0)
    kept = read > 0
    np.testing.assert_allclose(read[kept], maps[kept], rtol=1e-3)  # float16 values
    assert (read.sum(-1) >= mass - 1e-3).all()  # every row keeps at least its share
    expected_dropped = maps.sum(-1) - (maps * kept).sum(-1)
    np.testing.assert_allclose(store.dropped_mass(0), expected_dropped, atol=1e-3)  # float16
    np.testing.assert_array_equal(store.attention(0, layer=1, head=0), read[1, 0])
    assert store.meta.sparse_mass == mass


@pytest.mark.parametrize(
    "options",
    [
        {"dtype": "float32"},
        {"dtype": "float16", "compact": True},
        {"sparse_mass": 0.9},
    ],
    ids=["triangle", "compact", "sparse"],
)
def test_one_head_of_a_streamed_layer_reads_alone_and_equals_the_whole_map(tmp_path, options):
    """Long maps are chunked one head at a time: a head's read decodes that head only."""
    rng = np.random.default_rng(3)
    maps = causal_maps(rng, 7, layers=2, heads=3)
    pieces = [LayerMaps(example_meta(0, 7), 0, "decoder", layer, maps[layer]) for layer in (0, 1)]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(2, True), pieces), **options)
    store = AttentionStore(path)
    whole = store.attention(0)
    for layer in range(2):
        for head in range(3):
            np.testing.assert_array_equal(
                store.attention(0, layer=layer, head=head), whole[layer, head]
            )
    if "sparse_mass" not in options:  # one chunk file per (layer, head)
        import zipfile

        names = set(zipfile.ZipFile(path).namelist())
        assert {
            f"examples/0.decoder/{layer}.{head}.0" for layer in (0, 1) for head in (0, 1, 2)
        } <= names
    else:
        np.testing.assert_allclose(whole, maps, atol=0.1 + 1e-3)  # 90% of each row's mass kept


@pytest.mark.parametrize(
    "options", [{"dtype": "float32"}, {"dtype": "float16"}, {"compact": True}, {"sparse_mass": 0.9}]
)
@pytest.mark.parametrize("streamed", [True, False])
def test_the_mean_over_heads_equals_the_mean_of_the_heads_read(tmp_path, options, streamed):
    rng = np.random.default_rng(4)
    maps = causal_maps(rng, 6, layers=2, heads=3)
    if streamed:
        items = [
            LayerMaps(example_meta(0, 6), 0, "decoder", layer, maps[layer]) for layer in (0, 1)
        ]
    else:
        items = [ExampleAttention(example_meta(0, 6), {"decoder": maps})]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(2, True), items), **options)
    store = AttentionStore(path)
    for layer in (0, 1):
        np.testing.assert_allclose(
            store.mean_over_heads(0, "decoder", layer),
            store.attention(0, "decoder", layer).mean(axis=0),
            rtol=1e-6,
            atol=1e-9,
        )


def test_sparse_weights_on_the_grid_are_stored_as_grid_steps_and_read_back_exactly(tmp_path):
    """uint16 grid steps instead of float16 bit patterns: the same numbers, fewer bytes."""
    from attention_lab.datasets.codecs import round_rows_to_grid

    rng = np.random.default_rng(5)
    maps = round_rows_to_grid(causal_maps(rng, 40, layers=2, heads=3), 11).astype(np.float32)
    stores = {}
    for name, bits in (("grid", 11), ("float16", None)):
        items = [
            LayerMaps(example_meta(0, 40), 0, "decoder", layer, maps[layer]) for layer in (0, 1)
        ]
        path = str(tmp_path / f"{name}.zarr.zip")
        write_store(
            path,
            AttentionStream({**meta(2, True), "precision_bits": bits}, items),
            sparse_mass=0.99,
        )
        stores[name] = path
    raw = zarr.open_group(ZipStore(stores["grid"], mode="r"), mode="r")[
        "examples/0.decoder/1.values"
    ]
    assert raw.dtype == np.uint16 and raw.attrs["grid_bits"] == 11
    plain = zarr.open_group(ZipStore(stores["float16"], mode="r"), mode="r")[
        "examples/0.decoder/1.values"
    ]
    assert plain.dtype == np.float16 and "grid_bits" not in plain.attrs
    import zipfile

    for name in (
        "values",
        "steps",
    ):  # blosc header: byte 2 flags (bit 0: shuffle), byte 3 element size
        header = zipfile.ZipFile(stores["grid"]).read(f"examples/0.decoder/1.{name}/0")[:4]
        assert header[2] & 1 and header[3] == 2, name
    grid, float16 = AttentionStore(stores["grid"]), AttentionStore(stores["float16"])
    np.testing.assert_array_equal(grid.attention(0), float16.attention(0))
    np.testing.assert_array_equal(grid.attention(0, layer=1, head=2), float16.attention(0)[1, 2])


def test_weights_off_the_grid_stay_float16():
    from attention_lab.datasets.codecs import from_grid, on_grid

    on = np.array([1, 3, 2047], dtype=np.float16) / np.float16(2048)
    steps, bits = on_grid(on, 11)
    assert steps.dtype == np.uint16 and bits == 11 and steps.tolist() == [1, 3, 2047]
    np.testing.assert_array_equal(from_grid(steps, bits), on.astype(np.float32))
    off = np.array([0.1, 0.3], dtype=np.float16)  # not multiples of 2**-11
    assert on_grid(off, 11) == (off, None) and on_grid(on, None) == (on, None)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("compact", [False, True])
def test_streamed_heads_read_back_as_written(tmp_path, causal, compact):
    """Each head's chunk (and, compact, its row scales) lands under its own head."""
    from attention_lab.datasets.codecs import dequantize_rows, quantize_rows

    rng = np.random.default_rng(6)
    maps = causal_maps(rng, 5, layers=2, heads=3)
    if not causal:
        maps = rng.random(maps.shape).astype(np.float32)
    pieces = [LayerMaps(example_meta(0, 5), 0, "decoder", layer, maps[layer]) for layer in (0, 1)]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(2, causal), pieces), dtype="float32", compact=compact)
    expected = dequantize_rows(*quantize_rows(maps)) if compact else maps
    store = AttentionStore(path)
    np.testing.assert_allclose(store.attention(0), expected, rtol=1e-6, atol=1e-7)
    for layer, head in [(0, 0), (1, 2), (1, -1)]:
        np.testing.assert_allclose(
            store.attention(0, layer=layer, head=head), expected[layer, head], rtol=1e-6, atol=1e-7
        )


def test_a_sparse_head_reads_by_negative_index_and_an_empty_head_reads_as_zeros(tmp_path):
    rng = np.random.default_rng(7)
    maps = causal_maps(rng, 6, layers=1, heads=3)
    maps[0, 1] = 0  # a head that held no weight at all
    pieces = [LayerMaps(example_meta(0, 6), 0, "decoder", 0, maps[0])]
    path = str(tmp_path / "s.zarr.zip")
    write_store(path, AttentionStream(meta(1, True), pieces), dtype="float32", sparse_mass=0.9)
    store = AttentionStore(path)
    whole = store.attention(0)
    np.testing.assert_array_equal(store.attention(0, layer=0, head=-1), whole[0, 2])
    np.testing.assert_array_equal(store.attention(0, layer=0, head=1), np.zeros((6, 6)))
    with pytest.raises(IndexError):
        store.attention(0, layer=0, head=3)
