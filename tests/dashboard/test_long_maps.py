"""Long maps: drawn as pooled token blocks, zoomed at full resolution, sparse stores said so.

Every expected value is computed here from the stores, block by block with plain loops, not
with the dashboard's reshapes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from plotly.io.json import to_json_plotly

from dashboard import blocks, maps
from dashboard.figures import as_array, compare_figure
from dashboard.selection import Selection
from dashboard.views import compare_table, compare_view, cross_view, heads_view
from dashboard.zoom import zoom_region
from tests.dashboard.conftest import HEADS, LONG, LONG_TOKENS

LONG_VIEW = Selection(a="a", b="b", example="e1", kind="decoder", layer=1, head="2")


def block_reference(values: np.ndarray, rows: int, cols: int, how: str) -> np.ndarray:
    """Block max, mean or (extreme) the value farthest from 0, one block at a time."""
    out = np.zeros((-(-values.shape[0] // rows), -(-values.shape[1] // cols)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = values[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
            if how == "extreme":
                out[i, j] = block.flat[np.argmax(np.abs(block))]
            else:
                out[i, j] = block.max() if how == "max" else block.mean()
    return out


def stored(study, variant: str, head: int | str = 2, example: str = "e1", layer: int = 1):
    store = study.store(variant)
    maps_ = store.attention(example, "decoder", layer=layer)  # [heads, T, T]
    return maps_.mean(axis=0) if head == "mean" else maps_[head]


@pytest.mark.parametrize("how", ["max", "mean", "extreme"])
@pytest.mark.parametrize(
    ("shape", "rows", "cols"), [((389, 301), 3, 2), ((10, 7), 4, 7), ((5, 5), 1, 1)]
)
def test_pooling_equals_block_by_block(how, shape, rows, cols):
    values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = block_reference(values, rows, cols, how)
    np.testing.assert_allclose(blocks.pool(values, rows, cols, how), expected, rtol=1e-6, atol=1e-7)


def test_a_long_map_is_drawn_as_max_pooled_blocks_labelled_as_such(long_study):
    fig = compare_view(long_study, LONG_VIEW)
    a, b = stored(long_study, "a"), stored(long_study, "b")
    z = [as_array(trace["z"]) for trace in fig["data"]]
    assert z[0].shape == (130, 130)  # 389 tokens in blocks of 3, the last of 2
    np.testing.assert_allclose(z[0], block_reference(a, 3, 3, "max"), rtol=1e-6)
    np.testing.assert_allclose(z[1], block_reference(b, 3, 3, "max"), rtol=1e-6)
    np.testing.assert_allclose(z[2], block_reference(b - a, 3, 3, "extreme"), atol=1e-7)
    title = fig["layout"]["title"]["text"]
    assert "389 tokens shown as 130 × 130 blocks of 3 (max)" in title
    assert fig["data"][0]["y"][:2] == ["0–2", "3–5"] and fig["data"][0]["x"][-1] == "387–388"
    assert "queries %{y}<br>keys %{x}<br>max weight %{z:.4f}" in fig["data"][0]["hovertemplate"]
    assert "B − A, largest change" in fig["data"][2]["hovertemplate"]


def test_mean_pooling_and_the_mean_over_heads(long_study):
    fig = compare_view(long_study, replace(LONG_VIEW, head="mean", pool="mean", log=True))
    a, b = stored(long_study, "a", "mean"), stored(long_study, "b", "mean")
    mean_a = block_reference(a, 3, 3, "mean")
    np.testing.assert_allclose(as_array(fig["data"][0]["customdata"]), mean_a, rtol=1e-5)
    np.testing.assert_allclose(
        as_array(fig["data"][0]["z"]), np.log10(np.maximum(mean_a, 1e-4)), rtol=1e-5
    )
    diff = as_array(fig["data"][2]["z"])
    np.testing.assert_allclose(diff, block_reference(b - a, 3, 3, "mean"), atol=1e-7)
    assert "blocks of 3 (mean)" in fig["layout"]["title"]["text"]


def test_a_zoomed_region_is_the_exact_slice_with_token_labels(long_study):
    zoomed = replace(LONG_VIEW, region="100:140,90:150")
    fig = compare_view(long_study, zoomed)
    a, b = stored(long_study, "a"), stored(long_study, "b")
    assert np.array_equal(as_array(fig["data"][0]["z"]), a[100:140, 90:150])
    assert np.array_equal(as_array(fig["data"][1]["z"]), b[100:140, 90:150])
    assert np.array_equal(as_array(fig["data"][2]["z"]), (b - a)[100:140, 90:150])
    y, x = fig["data"][0]["y"], fig["data"][0]["x"]
    assert [t.replace("\u200b", "") for t in y] == LONG_TOKENS[100:140] and len(set(y)) == 40
    assert [t.replace("\u200b", "") for t in x] == LONG_TOKENS[90:150]
    assert "queries 100–139 × keys 90–149 of 389 tokens" in fig["layout"]["title"]["text"]
    table = compare_table(long_study, zoomed)
    assert table["query_index"].iloc[0] == 100 and table["key_index"].iloc[-1] == 149
    assert np.array_equal(table["b_minus_a"].to_numpy(), (b - a)[100:140, 90:150].ravel())


def test_token_labels_appear_once_they_fit(long_study):
    def labels(region: str):
        trace = compare_view(long_study, replace(LONG_VIEW, region=region))["data"][0]
        return trace["y"], trace["x"]

    most = blocks.MAX_CELLS
    rows, cols = labels(f"0:{most},200:265")  # fits the budget: every token, too many to label
    assert rows[:2] == ["0 w0", "1 w1"] and cols[0] == "200 w0" and len(cols) == 65
    assert len(rows) == most
    rows, cols = labels(f"0:{most + 1},200:264")  # one row more: blocks of 2; 64 keys: tokens
    assert rows[:2] == ["0–1", "2–3"] and rows[-1] == str(most)
    assert [c.replace("\u200b", "") for c in cols] == LONG_TOKENS[200:264]


def test_a_zoom_outside_a_shorter_map_shows_all_of_it(long_study):
    fig = compare_view(long_study, replace(LONG_VIEW, region="500:600,0:10"))
    assert "zoom 500:600,0:10 lies outside this 389-token map" in fig["layout"]["title"]["text"]
    assert as_array(fig["data"][0]["z"]).shape == (130, 130)


def test_dragging_a_zoom_box_selects_the_tokens_of_the_cells_it_covers(long_study):
    # cells of 3 tokens: x cells 10..20 (partly covered at both ends), y cells 10..31
    box = {"xaxis.range[0]": 9.7, "xaxis.range[1]": 20.2}
    box |= {"yaxis.range[0]": 30.6, "yaxis.range[1]": 10.4}  # y is reversed
    region = zoom_region(long_study, LONG_VIEW, box)
    assert region == "30:96,30:63"
    # the B panel's axes zoom the same region; within a zoomed region cells are tokens
    inner = {"xaxis2.range[0]": 0.5, "xaxis2.range[1]": 3.4, "yaxis2.range": [5.5, 1.5]}
    assert zoom_region(long_study, replace(LONG_VIEW, region=region), inner) == "32:36,31:34"
    only_x = {"xaxis3.range[0]": -3, "xaxis3.range[1]": 1.2}  # rows stay as they are
    assert zoom_region(long_study, replace(LONG_VIEW, region=region), only_x) == "30:96,30:32"
    reset = {"xaxis.autorange": True, "yaxis.autorange": "reversed"}
    assert zoom_region(long_study, replace(LONG_VIEW, region=region), reset) == ""
    assert zoom_region(long_study, LONG_VIEW, {"autosize": True}) is None
    everything = {"xaxis.range": [-0.5, 129.5], "yaxis.range": [129.5, -0.5]}
    assert zoom_region(long_study, LONG_VIEW, everything) == ""


def test_a_sparse_store_is_said_so_with_each_rows_left_out_weight(long_study):
    both = compare_view(long_study, replace(LONG_VIEW, a="s", b="t"))
    note = "sparse: each row keeps 90% of its mass; the rest shows as 0"
    assert note in both["layout"]["title"]["text"]
    dropped = long_study.store("s").dropped_mass("e1", "decoder")[1, 2].astype(np.float32)
    rows = both["data"][0]["y"]
    first = block_reference(dropped[:, None], 3, 1, "max")[0, 0]
    assert rows[0] == f"0–2 · left out ≤ {first:.1%}" and len(rows) == 130
    assert both["layout"]["yaxis"]["ticktext"][0] == "0–2"  # the axis shows the ranges
    one = compare_view(long_study, replace(LONG_VIEW, a="a", b="s", region="0:10,0:10"))
    text = one["layout"]["title"]["text"]
    assert "s is sparse: each row keeps 90% of its mass; the rest shows as 0" in text
    assert (
        one["data"][0]["y"][3] == "w3"
        and one["data"][1]["y"][3] == f"w3 · left out {dropped[3]:.1%}"
    )
    dense = compare_view(long_study, LONG_VIEW)
    assert "sparse" not in dense["layout"]["title"]["text"]
    heads = heads_view(long_study, Selection(a="s", example="e1", kind="decoder", layer=1))
    assert note in heads.layout.title.text


def test_heads_grid_panels_are_pooled_head_by_head(long_study):
    selection = Selection(a="a", example="e0", kind="decoder", layer=0, pool="mean")
    fig = heads_view(long_study, selection)
    heads = long_study.store("a").attention("e0", "decoder", layer=0)
    for trace, head in zip(fig.data, HEADS, strict=True):
        z = np.asarray(trace.z)
        assert z.shape == (56, 56)  # blocks of 7, the last of 4
        np.testing.assert_allclose(z, block_reference(heads[head], 7, 7, "mean"), rtol=1e-5)
    assert "389 tokens shown as 56 × 56 blocks of 7 (mean)" in fig.layout.title.text
    assert "queries %{y}" in fig.data[0].hovertemplate and fig.data[0].y[-1] == "385–388"


def test_the_csv_export_of_a_pooled_view_has_a_row_per_block(long_study):
    table = compare_table(long_study, LONG_VIEW)
    assert len(table) == 130 * 130 and table.attrs["blocks"] == "max3"
    assert list(table["query_token"][:1]) == ["0–2"] and table["key_index"].iloc[1] == 3
    a = stored(long_study, "a")
    np.testing.assert_allclose(table["a"].to_numpy(), block_reference(a, 3, 3, "max").ravel())


def test_cross_attention_zooms_too(study):
    selection = Selection(a="b", example="e0", layer=0, head="1", region="1:2,1:3")
    fig = cross_view(study, selection)
    expected = study.store("b").attention("e0", "cross", layer=0, head=1)[1:2, 1:3]
    assert np.allclose(fig["data"][0]["z"], expected)
    assert fig["data"][0]["y"] == ["pos"] and fig["data"][0]["x"] == ["not", "bad"]
    assert "queries 1 × keys 1–2 of 2 × 4 tokens" in fig["layout"]["title"]["text"]


def test_a_response_stays_under_a_megabyte_at_the_budget():
    """The worst case: every panel at the budget, log scale (raw values in the hover too)."""
    side = blocks.MAX_CELLS
    rng = np.random.default_rng(0)
    a, b = rng.random((side, side), dtype=np.float32), rng.random((side, side), dtype=np.float32)
    labels = [f"{i} {'x' * 12}" for i in range(side)]
    figure = compare_figure(a, b, labels, labels, ("base", "lora"), log=True, title="t")
    assert len(to_json_plotly(figure)) < 1_000_000


def test_a_map_is_read_once_while_its_view_changes(long_study, monkeypatch):
    maps.CACHE.clear()
    store, reads = long_study.store("b"), []
    original = store.attention
    monkeypatch.setattr(store, "attention", lambda *a, **k: reads.append(a) or original(*a, **k))
    for change in ({}, {"pool": "mean"}, {"log": True}, {"region": "0:50,0:50"}):
        compare_view(long_study, replace(LONG_VIEW, **change))
    assert len(reads) == 1


def test_the_cache_keeps_the_most_recent_maps_within_its_bytes():
    cache, store = maps.MapCache(budget=3 * 400), type("Store", (), {})()
    for key in range(4):  # 400 bytes each: the oldest goes
        cache.get(store, (key,), lambda: np.zeros(100, dtype=np.float32))
    assert cache.bytes == 1200
    made = []
    cache.get(store, (0,), lambda: made.append(0) or np.zeros(100, dtype=np.float32))
    cache.get(store, (3,), lambda: made.append(3) or np.zeros(100, dtype=np.float32))
    assert made == [0]
    other = type("Store", (), {})()  # another store never gets the first one's arrays
    assert cache.get(other, (3,), lambda: np.ones(1, dtype=np.float32))[0] == 1


def test_lengths_up_to_the_budget_are_drawn_exactly():
    view = blocks.drawn((LONG, 100), "", "max", budget=LONG)
    assert not view.pooled and blocks.note(view) == ""
    assert blocks.drawn((LONG, 100), "", "max").rows.block == 3
