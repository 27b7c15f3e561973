"""The attention store: round trips, lazy reads, atomic publication, clear errors, compact mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from attention_lab.datasets import AttentionStoreDataset
from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ExampleAttention,
    write_store,
)
from attention_lab.errors import ArtifactError


def random_maps(rng, length: int, layers: int = 2, heads: int = 3) -> np.ndarray:
    w = rng.random((layers, heads, length, length)) ** 4  # peaky, like real attention
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def stream(n: int = 5, seed: int = 0, meta=None) -> tuple[AttentionStream, list[ExampleAttention]]:
    rng = np.random.default_rng(seed)
    examples = [
        ExampleAttention(
            {"id": f"ex{i}", "tokens": ["t"] * (4 + i), "special_mask": [0] * (4 + i)},
            {"encoder": random_maps(rng, 4 + i)},
        )
        for i in range(n)
    ]
    return AttentionStream(meta or {"kinds": ["encoder"], "variant": "v"}, examples), examples


@pytest.mark.parametrize("background", [True, False], ids=["writer thread", "inline"])
@pytest.mark.parametrize("root", ["local", "memory"])
def test_round_trip_local_and_memory(tmp_path, root, background):
    url = str(tmp_path / "a.zarr.zip") if root == "local" else "memory://stores/a.zarr.zip"
    data, examples = stream()
    data.background = background  # the writer encodes on its own thread, or as pieces come
    write_store(url, data)
    store = AttentionStore(url)
    assert len(store) == 5 and store.example_ids == [f"ex{i}" for i in range(5)]
    for i, ex in enumerate(examples):
        got = store.attention(i)
        assert (
            got.shape == ex.maps["encoder"].shape
        )  # no padding: each example keeps its own length
        assert np.abs(got - ex.maps["encoder"]).max() <= 1e-3  # float16
    assert np.array_equal(
        store.attention("ex3", "encoder", layer=1, head=2), store.attention(3)[1, 2]
    )
    assert store.example_meta("ex2")["tokens"] == ["t"] * 6


def test_grid_rounding_is_within_one_step_keeps_row_sums_and_is_exact_in_float16():
    from attention_lab.datasets.codecs import round_rows_to_grid

    rng = np.random.default_rng(0)
    exact = random_maps(rng, 40, layers=3, heads=4).astype(np.float64)
    rounded = round_rows_to_grid(exact.astype(np.float32), bits=11).astype(np.float64)
    assert np.abs(rounded - exact).max() < 2**-11
    assert np.array_equal(np.round(rounded * 2048), rounded * 2048)  # on the grid
    assert np.array_equal(
        rounded.astype(np.float16).astype(np.float64), rounded
    )  # k/2048 is exact in float16
    np.testing.assert_allclose(rounded.sum(-1), 1.0, atol=1e-6)  # rows keep their sum


def test_grid_rounding_of_a_padded_batch_leaves_padding_at_zero():
    import torch

    from attention_lab.datasets.codecs import round_rows_to_grid

    rng = np.random.default_rng(1)
    batch = np.zeros(
        (2, 1, 1, 6, 6), dtype=np.float32
    )  # (B, L, H, T, T), second example 4 tokens long
    batch[0, 0, 0] = random_maps(rng, 6, 1, 1)[0, 0]
    batch[1, 0, 0, :4, :4] = random_maps(rng, 4, 1, 1)[0, 0]
    rounded = round_rows_to_grid(torch.from_numpy(batch), bits=8).numpy()
    assert np.all(rounded[1, 0, 0, :, 4:] == 0)  # padding keys never receive a unit
    np.testing.assert_allclose(rounded[1, 0, 0, :4, :4].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(
        rounded[1, 0, 0, :4, :4], round_rows_to_grid(batch[1, 0, 0, :4, :4], bits=8)
    )


def test_grid_rounding_against_a_hand_worked_row():
    from attention_lab.datasets.codecs import round_rows_to_grid

    # grid 1/4. Nearest rounding of [0.36, 0.34, 0.30] x 4 = [1.44, 1.36, 1.20] gives [1, 1, 1]:
    # a row summing to 0.75. Running sums x 4 = [1.44, 2.80, 4.00] round to [1, 3, 4];
    # their differences [1, 2, 1] / 4 sum to 1 and each is within one step of the exact value.
    np.testing.assert_array_equal(
        round_rows_to_grid(np.array([[0.36, 0.34, 0.30]]), bits=2), [[0.25, 0.5, 0.25]]
    )
    # too many units with nearest rounding ([1.68, 1.52, 0.80] -> [2, 2, 1] = 5):
    # running sums [1.68, 3.20, 4.00] -> [2, 3, 4] -> [2, 1, 1] / 4
    np.testing.assert_array_equal(
        round_rows_to_grid(np.array([[0.42, 0.38, 0.20]]), bits=2), [[0.5, 0.25, 0.25]]
    )


def test_store_is_standard_zarr(tmp_path):
    from zarr.storage import ZipStore

    data, examples = stream(2)
    write_store(str(tmp_path / "s.zarr.zip"), data)
    group = zarr.open_group(ZipStore(str(tmp_path / "s.zarr.zip"), mode="r"), mode="r")
    array = group["examples/1.encoder"]
    assert array.dtype == np.float16
    assert array.chunks == array.shape  # a whole example: one chunk per kind
    assert array.attrs["id"] == "ex1"  # the example's metadata travels with its map
    np.testing.assert_allclose(array[:], examples[1].maps["encoder"], atol=1e-3)


def rewrite_zip(path, change):
    """Copy a zip member by member through ``change(name, data) -> data`` (or None to drop it)."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for name, data in members:
            if (data := change(name, data)) is not None:
                dst.writestr(name, data)


def test_reading_one_example_touches_no_other_example(tmp_path):
    data, examples = stream(4)
    path = tmp_path / "s.zarr.zip"
    write_store(str(path), data)
    others = ("examples/0.", "examples/1.", "examples/3.")
    rewrite_zip(
        path,
        lambda name, blob: (
            b"\0garbage" * 8 if name.startswith(others) and name.endswith("0.0.0.0") else blob
        ),
    )
    store = AttentionStore(str(path))
    np.testing.assert_allclose(
        store.attention(2, layer=0, head=1), examples[2].maps["encoder"][0, 1], atol=1e-3
    )
    with pytest.raises(Exception):  # noqa: B017 - the corrupted bytes really are what example 1 reads
        store.attention(1)


def test_float32_and_dataset_wrapper(tmp_path):
    dataset = AttentionStoreDataset(path=str(tmp_path / "d.zarr.zip"), dtype="float32")
    data, examples = stream(2)
    assert not dataset.exists()
    dataset.save(data)
    assert dataset.exists()
    store = dataset.load()
    assert store.meta.dtype == "float32"
    assert np.array_equal(store.attention(0), examples[0].maps["encoder"])


def test_compact_mode_error_is_within_the_documented_bound(tmp_path):
    data, examples = stream(3)
    write_store(str(tmp_path / "c.zarr.zip"), data, compact=True)
    store = AttentionStore(str(tmp_path / "c.zarr.zip"))
    for i, ex in enumerate(examples):
        bound = ex.maps["encoder"].max(axis=-1, keepdims=True) / 510  # max(row) / 510
        assert np.all(np.abs(store.attention(i) - ex.maps["encoder"]) <= bound + 1e-7)


@pytest.mark.parametrize("background", [True, False], ids=["writer thread", "inline"])
def test_crash_mid_write_leaves_no_finished_looking_store(tmp_path, background):
    _, examples = stream(3)

    def broken():
        yield examples[0]
        raise RuntimeError("GPU fell over")

    with pytest.raises(RuntimeError, match="GPU fell over"):
        write_store(
            str(tmp_path / "s.zarr.zip"),
            AttentionStream({"kinds": ["encoder"]}, broken(), background=background),
        )
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary folder
    with pytest.raises(
        ArtifactError, match="No attention store.*kedro run --pipeline=attention_extraction"
    ):
        AttentionStore(str(tmp_path / "s.zarr.zip"))


def test_rewrite_replaces_the_old_store(tmp_path):
    write_store(str(tmp_path / "s.zarr.zip"), stream(5)[0])
    write_store(str(tmp_path / "s.zarr.zip"), stream(2, seed=1)[0])
    assert len(AttentionStore(str(tmp_path / "s.zarr.zip"))) == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.pop("complete"), "is incomplete"),
        (
            lambda a: a.update(format_version=99),
            "written by store format 99, this version reads formats 4 and 5",
        ),
        (lambda a: a.update(format="something-else"), "is not an Attention Lab attention store"),
    ],
)
def test_incomplete_or_incompatible_stores_give_clear_errors(tmp_path, edit, message):
    path = tmp_path / "s.zarr.zip"
    write_store(str(path), stream(1)[0])

    def change(name, blob):
        if name != "zarr.json":
            return blob
        meta = json.loads(blob)
        edit(meta["attributes"])
        return json.dumps(meta).encode()

    rewrite_zip(path, change)
    with pytest.raises(ArtifactError, match=message):
        AttentionStore(str(path))


def test_a_format_4_store_is_still_read(tmp_path):
    path = tmp_path / "s.zarr.zip"
    written = stream(2)[1]
    write_store(str(path), stream(2)[0], dtype="float32")

    def as_format_4(name, blob):
        if name != "zarr.json":
            return blob
        meta = json.loads(blob)
        meta["attributes"]["format_version"] = 4
        return json.dumps(meta).encode()

    rewrite_zip(path, as_format_4)
    store = AttentionStore(str(path))
    assert store.meta.format_version == 4
    np.testing.assert_array_equal(store.attention("ex1"), written[1].maps["encoder"])


def test_corrupt_store(tmp_path):
    path = tmp_path / "s.zarr.zip"
    write_store(str(path), stream(1)[0])
    path.write_bytes(b"PK not really a zip")
    with pytest.raises(ArtifactError, match="is corrupt"):
        AttentionStore(str(path))


def test_unknown_example_and_kind(tmp_path):
    write_store(str(tmp_path / "s.zarr.zip"), stream(2)[0])
    store = AttentionStore(str(tmp_path / "s.zarr.zip"))
    with pytest.raises(KeyError, match="'nope' is not in this store"):
        store.attention("nope")
    with pytest.raises(KeyError, match="kind 'cross' is not in this store"):
        store.attention(0, "cross")
