"""The attention store: round trips, lazy reads, atomic publication, clear errors, compact mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from attention_lab.attention.store import (
    AttentionStore,
    AttentionStoreDataset,
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
    examples = [ExampleAttention({"id": f"ex{i}", "tokens": ["t"] * (4 + i), "special_mask": [0] * (4 + i)},
                                 {"encoder": random_maps(rng, 4 + i)}) for i in range(n)]
    return AttentionStream(meta or {"kinds": ["encoder"], "variant": "v"}, examples), examples


@pytest.mark.parametrize("root", ["local", "memory"])
def test_round_trip_local_and_memory(tmp_path, root):
    url = str(tmp_path / "a.zarr") if root == "local" else "memory://stores/a.zarr"
    data, examples = stream()
    write_store(url, data)
    store = AttentionStore(url)
    assert len(store) == 5 and store.example_ids == [f"ex{i}" for i in range(5)]
    for i, ex in enumerate(examples):
        got = store.attention(i)
        assert got.shape == ex.maps["encoder"].shape  # no padding: each example keeps its own length
        assert np.abs(got - ex.maps["encoder"]).max() <= 1e-3  # float16
    assert np.array_equal(store.attention("ex3", "encoder", layer=1, head=2), store.attention(3)[1, 2])
    assert store.example_meta("ex2")["tokens"] == ["t"] * 6


def test_float16_grid_is_within_one_step_and_keeps_row_sums(tmp_path):
    data, examples = stream(3)
    write_store(str(tmp_path / "g.zarr"), data)  # default: 2^-11 grid
    write_store(str(tmp_path / "p.zarr"), stream(3)[0], precision_bits=None)  # plain float16
    grid, plain = AttentionStore(str(tmp_path / "g.zarr")), AttentionStore(str(tmp_path / "p.zarr"))
    assert grid.meta["precision_bits"] == 11 and plain.meta["precision_bits"] is None
    for i, ex in enumerate(examples):
        exact, stored = ex.maps["encoder"].astype(np.float64), grid.attention(i).astype(np.float64)
        assert np.abs(stored - exact).max() < 2**-11
        assert np.array_equal(np.round(stored * 2048), stored * 2048)  # on the grid
        np.testing.assert_allclose(stored.sum(-1), 1.0, atol=1e-6)  # rows keep their sum
        assert np.abs(plain.attention(i) - exact).max() <= 2**-12


def test_grid_rounding_against_a_hand_worked_row():
    from attention_lab.attention.store import round_rows_to_grid

    # grid 1/4: x4 = [1.44, 1.36, 1.20]; nearest rounding gives [1, 1, 1] -> sum 0.75, one unit
    # short; the largest remainder (0.44, the first entry) takes it -> [2, 1, 1] / 4
    row = np.array([[0.36, 0.34, 0.30]])
    np.testing.assert_array_equal(round_rows_to_grid(row, bits=2), [[0.5, 0.25, 0.25]])
    # one unit over: x4 = [1.68, 1.52, 0.80] -> [2, 2, 1] = 5 units; the most over-rounded
    # entry (1.52 -> 2, by 0.48) gives it back -> [2, 1, 1] / 4
    np.testing.assert_array_equal(round_rows_to_grid(np.array([[0.42, 0.38, 0.20]]), bits=2), [[0.5, 0.25, 0.25]])


def test_store_is_standard_zarr(tmp_path):
    data, examples = stream(2)
    write_store(str(tmp_path / "s.zarr"), data)
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    array = group["examples/1/encoder"]
    assert array.dtype == np.float16 and array.chunks == array.shape  # one chunk per example and kind
    np.testing.assert_allclose(array[:], examples[1].maps["encoder"], atol=1e-3)


def test_reading_one_example_touches_no_other_example(tmp_path):
    import shutil

    data, examples = stream(4)
    write_store(str(tmp_path / "s.zarr"), data)
    store = AttentionStore(str(tmp_path / "s.zarr"))  # opened before: the handle is lazy
    for other in ("0", "1", "3"):
        shutil.rmtree(tmp_path / "s.zarr" / "examples" / other)
    np.testing.assert_allclose(store.attention(2, layer=0, head=1), examples[2].maps["encoder"][0, 1], atol=1e-3)
    with pytest.raises(Exception):  # noqa: B017 - proves the deleted examples really were needed for others
        store.attention(1)


def test_float32_and_dataset_wrapper(tmp_path):
    dataset = AttentionStoreDataset(path=str(tmp_path / "d.zarr"), dtype="float32")
    data, examples = stream(2)
    assert not dataset.exists()
    dataset.save(data)
    assert dataset.exists()
    store = dataset.load()
    assert store.meta["dtype"] == "float32"
    assert np.array_equal(store.attention(0), examples[0].maps["encoder"])


def test_compact_mode_error_is_within_the_documented_bound(tmp_path):
    data, examples = stream(3)
    write_store(str(tmp_path / "c.zarr"), data, compact=True)
    store = AttentionStore(str(tmp_path / "c.zarr"))
    for i, ex in enumerate(examples):
        bound = ex.maps["encoder"].max(axis=-1, keepdims=True) / 510  # max(row) / 510
        assert np.all(np.abs(store.attention(i) - ex.maps["encoder"]) <= bound + 1e-7)


def test_crash_mid_write_leaves_no_finished_looking_store(tmp_path):
    _, examples = stream(3)

    def broken():
        yield examples[0]
        raise RuntimeError("GPU fell over")

    with pytest.raises(RuntimeError, match="GPU fell over"):
        write_store(str(tmp_path / "s.zarr"), AttentionStream({"kinds": ["encoder"]}, broken()))
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary folder
    with pytest.raises(ArtifactError, match="No attention store.*kedro run --pipeline=attention_extraction"):
        AttentionStore(str(tmp_path / "s.zarr"))


def test_rewrite_replaces_the_old_store(tmp_path):
    write_store(str(tmp_path / "s.zarr"), stream(5)[0])
    write_store(str(tmp_path / "s.zarr"), stream(2, seed=1)[0])
    assert len(AttentionStore(str(tmp_path / "s.zarr"))) == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.pop("complete"), "is incomplete"),
        (lambda a: a.update(format_version=99), "written by store format 99, this version reads format 1"),
        (lambda a: a.update(format="something-else"), "is not an Attention Lab attention store"),
    ],
)
def test_incomplete_or_incompatible_stores_give_clear_errors(tmp_path, edit, message):
    path = tmp_path / "s.zarr"
    write_store(str(path), stream(1)[0])
    meta = json.loads((path / "zarr.json").read_text())
    edit(meta["attributes"])
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=message):
        AttentionStore(str(path))


def test_corrupt_store(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(str(path), stream(1)[0])
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="is corrupt"):
        AttentionStore(str(path))


def test_unknown_example_and_kind(tmp_path):
    write_store(str(tmp_path / "s.zarr"), stream(2)[0])
    store = AttentionStore(str(tmp_path / "s.zarr"))
    with pytest.raises(KeyError, match="'nope' is not in this store"):
        store.attention("nope")
    with pytest.raises(KeyError, match="kind 'cross' is not in this store"):
        store.attention(0, "cross")
