"""Dashboard views on small in-memory stores: the numbers shown equal the stores'."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.rollout import token_relevance
from dashboard.figures import unique_labels
from dashboard.metric_views import functions_view, metrics_view
from dashboard.selection import CONTROLS, BadSelection, Selection, resolve, validate
from dashboard.views import (
    clicked_head,
    compare_table,
    compare_view,
    cross_view,
    heads_view,
    rollout_view,
)
from tests.dashboard.conftest import HEADS, LAYERS, MATCHED, SIGNIFICANT, TOKENS, make_study


def test_difference_cell_equals_b_minus_a_from_the_stores(study):
    selection = Selection(a="a", b="b", example="e1", kind="encoder", layer=1, head="2")
    fig, table = compare_view(study, selection), compare_table(study, selection)
    a = study.store("a").attention("e1", "encoder", layer=1, head=2)
    b = study.store("b").attention("e1", "encoder", layer=1, head=2)
    assert np.allclose(fig["data"][0]["z"], a) and np.allclose(fig["data"][1]["z"], b)
    assert np.allclose(fig["data"][2]["z"], b - a)
    assert (
        fig["data"][2]["y"] == TOKENS and fig["data"][2]["x"] == TOKENS
    )  # token labels on both axes
    assert np.allclose(table["b_minus_a"].to_numpy(), (b - a).ravel())  # seeds unset: plain names
    assert (
        list(table["query_token"][:4]) == ["[CLS]"] * 4 and list(table["key_token"][:4]) == TOKENS
    )


def test_mean_over_heads_and_log_scale(study):
    fig = compare_view(
        study, Selection(a="a", b="b", example="e0", kind="encoder", layer=0, head="mean", log=True)
    )
    mean_a = study.store("a").attention("e0", layer=0).mean(axis=0)
    assert np.allclose(fig["data"][0]["customdata"], mean_a)  # hover shows raw weights
    assert np.allclose(fig["data"][0]["z"], np.log10(np.maximum(mean_a, 1e-4)))  # colours on log10
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "log10 w"


def test_repeated_tokens_stay_distinct_on_the_axes():
    labels = unique_labels(["the", "cat", "the", "the"])
    assert len(set(labels)) == 4 and [x.replace("\u200b", "") for x in labels] == [
        "the",
        "cat",
        "the",
        "the",
    ]


def test_url_round_trip():
    selection = Selection(
        tab="heads",
        a="x",
        b="y",
        example="e2",
        kind="decoder",
        layer=3,
        head="5",
        measure="norms",
        log=True,
        scope="model",
        order="matched",
        pool="mean",
        region="10:20,0:64",
    )
    again, notes = Selection.from_query(selection.to_query())
    assert again == selection and notes == []


def test_the_mean_over_heads_and_over_seeds_are_read_as_such_and_not_for_a_layer():
    selection = Selection(
        a="a", b="b", seed_a="mean", seed_b="43", example="e0", kind="encoder", head="mean"
    )
    again, notes = Selection.from_query(selection.to_query())
    assert (again.seed_a, again.seed_b, again.head, notes) == ("mean", "43", "mean", [])
    values = selection.control_values()
    broken = ["mean" if c == "layer" else v for c, v in zip(CONTROLS, values, strict=True)]
    with pytest.raises(BadSelection, match="Layer"):
        Selection.from_controls(broken)


def test_unknown_variant_and_example_in_the_url_are_explained(study):
    selection, notes = resolve(study, Selection(a="nope", example="missing"))
    assert selection.a == "a" and selection.example == "e0"
    assert any("Unknown variant 'nope'" in n for n in notes) and any(
        "Unknown example 'missing'" in n for n in notes
    )


def test_heads_grid_marks_kv_groups_and_covers_the_model(study):
    fig = heads_view(study, Selection(a="a", example="e0", kind="encoder", layer=0, scope="model"))
    assert len(fig.data) == 2 * 4
    assert [a.text for a in fig.layout.annotations[:4]] == [
        "l0 h0 kv0",
        "l0 h1 kv0",
        "l0 h2 kv1",
        "l0 h3 kv1",
    ]
    assert clicked_head(study, Selection(a="a", scope="model"), 5) == (
        1,
        1,
    )  # row-major: layer 1, head 1
    assert clicked_head(study, Selection(a="a", scope="layer", layer=1), 3) == (1, 3)


def test_metrics_rollout_and_cross_views(study):
    metric_fig, sim_fig, perf_fig, records = metrics_view(
        study, Selection(a="a", b="b", kind="encoder")
    )
    assert np.allclose(metric_fig.data[2].z, 1.0)  # B - A of the synthetic metric
    assert [r["variant"] for r in records] == ["a", "b"]
    rollout = rollout_view(study, Selection(a="a", b="b", example="e0", kind="encoder"))
    assert np.asarray(rollout.data[0].z).shape == (2, 4)
    assert (
        "no cross-attention"
        in cross_view(study, Selection(a="a", example="e0", layer=0)).layout.annotations[0].text
    )
    cross = cross_view(study, Selection(a="b", example="e0", layer=0, head="1"))
    expected = study.store("b").attention("e0", "cross", layer=0, head=1)  # [decoder, encoder]
    np.testing.assert_allclose(np.asarray(cross["data"][0]["z"], dtype=float), expected, atol=1e-6)


def test_functions_view_shows_each_variants_scores_and_their_difference(study):
    grids, ablations = functions_view(study, Selection(a="a", b="b", function="prefix_matching"))
    expected = 0.1 * (np.array(LAYERS)[:, None] + np.array(HEADS)[None, :])  # [layer, head]
    np.testing.assert_allclose(np.asarray(grids.data[0].z, dtype=float), expected)
    np.testing.assert_allclose(np.asarray(grids.data[2].z, dtype=float), 0.5)  # B - A
    assert ablations is study._tables["ablation_figure"]
    missing, _ = functions_view(study, Selection(a="a", b="b", function="retrieval"))
    assert "No retrieval scores for a" in missing.layout.annotations[0].text


def test_missing_analysis_names_the_command(study):
    from dashboard.data import MissingArtifact

    study._tables.clear()
    with pytest.raises(MissingArtifact, match="kedro run --pipeline=analysis"):
        metrics_view(study, Selection(a="a", b="b", kind="encoder"))


def test_opening_the_app_reads_one_store_only(study):
    """Lazy loading: the page layout needs one store's metadata (for the layer/head choices), no maps."""
    from dashboard.app import create_app

    opened, reads = [], []
    original = study.store

    def spy(variant, seed=None):
        opened.append(variant)
        store = original(variant, seed)
        store_attention = store.attention

        def attention(*args, **kwargs):
            reads.append(variant)
            return store_attention(*args, **kwargs)

        store.attention = attention
        return store

    study.store = spy
    app = create_app(data=study)
    app.layout()  # what a page load builds
    assert set(opened) == {"a"} and reads == []


def test_metrics_tab_shows_the_figures_the_catalog_holds(study):
    _, similarity, performance, _ = metrics_view(study, Selection(a="a", b="b", kind="encoder"))
    assert similarity is study._tables["similarity_figure"]
    assert performance is study._tables["performance_figure"]


def test_controls_round_trip_and_a_bad_value_is_named():

    selection = Selection(
        tab="heads",
        a="x",
        b="y",
        example="e1",
        kind="encoder",
        measure="norms",
        layer=3,
        head="2",
        log=True,
        order="matched",
        pool="mean",
        region="1:2,0:3",
    )
    values = selection.control_values()
    assert len(values) == len(CONTROLS) and values[list(CONTROLS).index("log")] == ["log"]
    assert Selection.from_controls(values) == selection
    for control, bad, message in [
        ("layer", None, "No layer chosen."),
        ("head", "abc", "Head must be a whole number or 'mean', got 'abc'."),
        ("metric", ["entropy"], "Metric must be text, got a list."),
        ("log", {"log": 1}, "Log scale must be on or off, got a dict."),
        ("measure", None, "No measure chosen."),
        ("head-order", 3, "Head order must be text, got 3."),
        ("pooling", None, "No pooling chosen."),
        ("zoom", ["1:2,0:3"], "Zoom must be text, got a list."),
    ]:
        broken = [bad if c == control else v for c, v in zip(CONTROLS, values, strict=True)]
        with pytest.raises(BadSelection) as problem:
            Selection.from_controls(broken)
        assert str(problem.value) == message


def test_only_the_open_tab_renders_and_only_on_its_own_controls(study):
    from dash import no_update

    from dashboard.callbacks import _view
    from dashboard.selection import CONTROLS

    class RecordingApp:
        def callback(self, *outputs, inputs, state):
            self.listened = [i.component_id for i in inputs]
            self.read = [s.component_id for s in [*inputs, *state]]

            def keep(fn):
                self.render = fn
                return fn

            return keep

    app, rendered = RecordingApp(), []
    _view(app, study, "heads", ["figure"])(lambda s: rendered.append(s) or "figure")
    assert "metric" not in app.listened
    assert {"tabs", "scope", "layer", "measure", "head-order"} <= set(app.listened)
    assert sorted(app.read) == sorted(CONTROLS)  # every control is still read

    def values(selection):
        by_control = dict(zip(CONTROLS, selection.control_values(), strict=True))
        return [by_control[c] for c in app.read]

    assert app.render(*values(Selection(tab="compare"))) is no_update
    heads = Selection(tab="heads", a="a", b="b", example="e0", kind="encoder", layer=1)
    assert app.render(*values(replace(heads, scope="model"))) == "figure"
    assert [(s.tab, s.layer, s.scope) for s in rendered] == [("heads", 1, "model")]


def test_analysis_tables_are_read_again_when_their_file_changes(tmp_path):
    from dashboard.data import StudyData

    conf, table = tmp_path / "conf", tmp_path / "performance.parquet"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base" / "catalog.yml").write_text(
        f"performance:\n  type: pandas.ParquetDataset\n  filepath: {table}\n"
    )
    (conf / "base" / "parameters.yml").write_text("variants: {a: {method: head}}\n")
    pd.DataFrame({"variant": ["a"], "accuracy": [0.5]}).to_parquet(table)
    data = StudyData(conf_source=str(conf))
    assert data.table("performance")["accuracy"].tolist() == [0.5]
    assert data.table("performance") is data.table("performance")  # unchanged: cached
    pd.DataFrame({"variant": ["a", "b"], "accuracy": [0.5, 0.75]}).to_parquet(table)
    assert data.table("performance")["accuracy"].tolist() == [0.5, 0.75]


# --- the weights/norms switch -------------------------------------------------------------

NORMS = Selection(a="a", b="b", example="e1", kind="encoder", measure="norms", layer=1, head="2")


def test_norms_compare_shows_the_norm_maps_of_the_stores(study):
    fig = compare_view(study, NORMS)
    a = study.store("a").attention("e1", "encoder_norm", layer=1, head=2)
    b = study.store("b").attention("e1", "encoder_norm", layer=1, head=2)
    assert np.allclose(fig["data"][0]["z"], a) and np.allclose(fig["data"][1]["z"], b)
    assert np.allclose(fig["data"][2]["z"], b - a)
    weights = study.store("a").attention("e1", "encoder", layer=1, head=2)
    assert not np.allclose(a, weights)  # the synthetic norms differ from the weights
    assert fig["layout"]["title"]["text"].startswith("encoder norm-based attention")
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "‖αf‖"
    assert "norm share" in fig["data"][0]["hovertemplate"]
    assert np.allclose(compare_table(study, NORMS)["b_minus_a"], (b - a).ravel())
    weights_fig = compare_view(study, replace(NORMS, measure="weights"))
    assert weights_fig["layout"]["title"]["text"].startswith("encoder attention weights")


def test_norms_heads_rollout_and_cross_read_the_norm_kinds(study):
    heads = heads_view(study, replace(NORMS, scope="model"))
    norms = study.store("a").attention("e1", "encoder_norm")  # [layers, heads, q, k]
    assert all(np.allclose(t.z, norms[i // 4, i % 4]) for i, t in enumerate(heads.data))
    assert "norm-based" in heads.layout.title.text
    rollout = rollout_view(study, NORMS)
    for trace, variant in zip(rollout.data, "ab", strict=True):
        maps = study.store(variant).attention("e1", "encoder_norm")
        assert np.allclose(trace.z, token_relevance(maps, False))
    assert "norm-based" in rollout.layout.title.text
    cross = cross_view(study, replace(NORMS, a="b"))
    expected = study.store("b").attention("e1", "cross_norm", layer=1, head=2)
    np.testing.assert_allclose(np.asarray(cross["data"][0]["z"], dtype=float), expected, atol=1e-6)
    assert (
        cross["layout"]["title"]["text"]
        == "b: cross norm-based attention ‖αf(x)‖ · layer 1 · head 2"
    )


def test_norms_metrics_show_the_norm_rows_with_their_intervals(study):
    fig = metrics_view(study, NORMS)[0]
    table = study._tables["all_head_metrics"]
    rows = table[(table["variant"] == "a") & (table["kind"] == "encoder_norm")]
    grid = rows.pivot_table(index="layer", columns="head", values="normalized_entropy")
    assert np.allclose(fig.data[0].z, grid.to_numpy())  # 10 above the weights' values
    low = rows.pivot_table(index="layer", columns="head", values="normalized_entropy_ci_low")
    assert np.allclose(np.asarray(fig.data[0].customdata)[..., 0], low.to_numpy())
    assert "encoder norm-based" in fig.layout.title.text


def test_a_variant_without_norm_maps_is_named(tmp_path):
    study = make_study(tmp_path, norms=("a",))  # b has weights only
    message = "Variant b has no norm-based maps; extract with attention_extraction.norms: true."
    with pytest.raises(BadSelection, match=message):
        validate(study, NORMS, stores=("a", "b"))
    assert validate(study, NORMS) == NORMS  # A's own maps are there
    metric_fig, similarity, *_ = metrics_view(study, NORMS)  # B's metrics say why they are absent
    assert metric_fig.layout.annotations[0].text == message
    assert similarity is study._tables["similarity_figure"]
    with pytest.raises(BadSelection, match="is encoder with measure norms"):
        validate(study, replace(NORMS, kind="encoder_norm"))


# --- heads ordered by their match to the reference -----------------------------------------


def shown_heads(fig) -> list[tuple[int, int]]:
    """(layer, head) of each small heatmap, from its title "l1 h2 kv1 →0"."""
    titles = [a.text.split() for a in fig.layout.annotations if a.text.startswith("l")]
    return [(int(t[0][1:]), int(t[1][1:])) for t in titles]


@pytest.mark.parametrize("measure", ["weights", "norms"])
def test_heads_in_matched_order_follow_the_hungarian_match(study, measure):
    selection = Selection(
        a="b", example="e0", kind="encoder", measure=measure, scope="model", order="matched"
    )
    fig = heads_view(study, selection)
    kind = selection.stored_kind
    comparison = study._tables["attention_comparison"]
    rows = comparison[(comparison["variant"] == "b") & (comparison["kind"] == kind)]
    expected = [
        (layer, int(h))
        for layer in LAYERS
        for h in rows[rows["layer"] == layer].sort_values("matched_head")["head"]
    ]
    assert shown_heads(fig) == expected
    # column j shows the head matched to reference head j
    assert [MATCHED[kind, layer][h] for layer, h in expected] == [*HEADS] * len(LAYERS)
    maps = study.store("b").attention("e0", kind)
    for trace, (layer, head) in zip(fig.data, expected, strict=True):
        assert np.allclose(trace.z, maps[layer, head])
        matched = MATCHED[kind, layer][head]
        assert f"matched to a head {matched}" in trace.hovertemplate
        assert f"cosine with it {0.9 - 0.01 * head:.3f}" in trace.hovertemplate
        assert "with a head" in trace.hovertemplate and "0.500" in trace.hovertemplate
    assert "→0" in fig.layout.annotations[0].text.split()
    assert "Hungarian match to a" in fig.layout.title.text
    # a click opens the head shown there, not the one of the natural order
    assert [clicked_head(study, selection, n) for n in range(8)] == expected


def test_heads_keep_their_natural_order_with_a_note_when_there_is_no_match(study):
    own = Selection(a="a", example="e0", kind="encoder", layer=1, order="matched")
    fig = heads_view(study, own)
    assert shown_heads(fig) == [(1, h) for h in HEADS]
    assert "a is its own reference: heads in their natural order." in fig.layout.title.text
    del study._tables["attention_comparison"]
    fig = heads_view(study, replace(own, a="b"))
    assert shown_heads(fig) == [(1, h) for h in HEADS]
    assert "No attention comparison yet" in fig.layout.title.text
    assert clicked_head(study, replace(own, a="b"), 2) == (1, 2)


# --- significant heads on the metric difference ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "measure", "metric"),
    [
        ("encoder", "weights", "normalized_entropy"),
        ("encoder", "weights", "entropy"),
        ("encoder", "norms", "normalized_entropy"),
    ],
)
def test_significant_heads_of_head_changes_are_marked_on_the_difference(
    study, kind, measure, metric
):
    selection = Selection(a="a", b="b", kind=kind, measure=measure, metric=metric)
    fig = metrics_view(study, selection)[0]
    marks = fig.data[3]
    assert marks.type == "scatter" and marks.xaxis == fig.data[2].xaxis
    stored = selection.stored_kind
    assert set(zip(marks.y, marks.x, strict=True)) == SIGNIFICANT[stored, metric]
    changes = study._tables["head_changes"]
    for layer, head, (effect, low, high, q) in zip(marks.y, marks.x, marks.customdata, strict=True):
        row = changes[
            (changes["kind"] == stored)
            & (changes["metric"] == metric)
            & (changes["layer"] == layer)
            & (changes["head"] == head)
        ].iloc[0]
        assert (effect, low, high, q) == (row.effect, row.ci_low, row.ci_high, row.q)
    assert "differs significantly from a" in fig.layout.title.text


def test_significance_marks_only_when_a_is_bs_reference(study):
    swapped = metrics_view(study, Selection(a="b", b="a", kind="encoder"))[0]
    assert [t.type for t in swapped.data] == ["heatmap"] * 3
    assert "No significance marks: a is a reference, not tested itself." in (
        swapped.layout.title.text
    )
    same = metrics_view(study, Selection(a="b", b="b", kind="encoder"))[0]
    assert len(same.data) == 3
    assert "No significance marks: head_changes tests b against its reference a" in (
        same.layout.title.text
    )
    del study._tables["head_changes"]
    missing = metrics_view(study, Selection(a="a", b="b", kind="encoder"))[0]
    assert len(missing.data) == 3 and "No head_changes yet" in missing.layout.title.text


def test_each_side_shows_its_own_seed_or_the_mean_over_seeds(study):
    """A at seed 43 against B's mean over seeds: the maps are those stores' own, and the mean
    is the cell-by-cell mean of every seed's map (computed here from the stores)."""
    selection = Selection(
        a="a", b="b", seed_a="43", seed_b="mean", example="e2", kind="encoder", layer=0, head="1"
    )
    fig = compare_view(study, validate(study, selection, stores=("a", "b")))
    a43 = study.store("a", 43).attention("e2", "encoder", layer=0, head=1)
    b_runs = [study.store("b", s).attention("e2", "encoder", layer=0, head=1) for s in (42, 43)]
    assert not np.allclose(a43, study.store("a", 42).attention("e2", "encoder", layer=0, head=1))
    assert np.allclose(fig["data"][0]["z"], a43)
    assert np.allclose(fig["data"][1]["z"], np.mean(b_runs, axis=0))
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any("a · seed 43" in t for t in titles) and any(
        "b · mean over seeds" in t for t in titles
    )


def test_a_seed_the_study_does_not_have_is_named(study):
    selection = Selection(a="a", b="b", seed_a="7", example="e0", kind="encoder")
    with pytest.raises(
        BadSelection, match=r"Unknown seed '7'; this study has seeds 42, 43, or 'mean'"
    ):
        validate(study, selection)


def test_the_heads_view_badges_each_head_with_its_strongest_function(study):
    fig = heads_view(study, Selection(a="a", example="e0", kind="encoder", layer=0, scope="model"))
    titles = [a.text for a in fig.layout.annotations if a.text.startswith("l")]
    # A's prefix-matching score is 0.1 (layer + head), its interval ±0.05: only layer 1, head
    # 3 (0.35 to 0.45) lies wholly above the 0.3 threshold
    assert [t for t in titles if "·ind" in t] == ["l1 h3 kv1 ·ind"]


def test_a_store_read_from_output_attentions_says_so(study):
    from dashboard.views import store_notes

    selection = Selection(a="a", b="b", example="e0", kind="encoder")
    assert store_notes(study, selection, ("a", "b")) == ""
    store = study.store("b", 42)
    store.meta = replace(store.meta, attention_path="output_attentions")
    note = store_notes(study, selection, ("a", "b"))
    assert note.startswith("b: maps from the model's own output_attentions")
