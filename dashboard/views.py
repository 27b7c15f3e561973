"""What the map tabs show (Compare, Heads, Rollout, Cross), as functions of the study data
and a selection (no Dash here)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attention_lab.analysis.function_changes import THRESHOLDS
from attention_lab.analysis.rollout import token_relevance
from attention_lab.datasets.store import token_sides
from attention_lab.kinds import AttentionKind, base_kind
from dashboard import blocks, figures, maps
from dashboard.data import MissingArtifact, StudyData
from dashboard.heads import (
    HeadOrder,
    function_badges,
    matched_order,
    merged_labels,
    natural_order,
)
from dashboard.maps import HEAD_MEAN
from dashboard.selection import BadSelection, Selection, run_key, run_name, show, store_of


def axis_tokens(meta: dict, kind: str) -> tuple[list[str], list[str]]:
    """(query tokens, key tokens) of one example for an attention kind (or its norm twin)."""
    queries, keys = token_sides(meta, kind)
    return queries["tokens"], keys["tokens"]


def _indices(store, selection: Selection) -> tuple[int, int | str]:
    """The stored layer index and head index (or "mean") of the selection."""
    li = store.meta.stored_layer(selection.layer)
    head = HEAD_MEAN if selection.head == HEAD_MEAN else store.meta.stored_head(int(selection.head))
    return li, head


def head_map(
    data: StudyData, side: str, selection: Selection
) -> tuple[np.ndarray, list[str], list[str]]:
    """The [query, key] map shown for variant A or B (``side``): one head, or the mean over
    heads, of the selection's kind and measure. Reads one chunk, or none when the map is cached."""
    store = store_of(data, selection, side)
    values = maps.head_map(
        store, selection.example, selection.stored_kind, *_indices(store, selection)
    )
    q, k = axis_tokens(store.example_meta(selection.example), selection.kind)
    return values, q, k


def map_title(selection: Selection, kind: str | None = None) -> str:
    """e.g. "encoder attention weights · layer 1 · head 2"."""
    head = "mean over heads" if selection.head == HEAD_MEAN else f"head {selection.head}"
    return (
        f"{kind or selection.kind} {selection.measure_names[0]} · layer {selection.layer} · {head}"
    )


def store_notes(data: StudyData, selection: Selection, sides=("a",)) -> str:
    """What a figure says about how the shown stores were made: sparse rows, and maps read
    from a family's own output_attentions rather than through the attention interface."""
    own = [
        run_name(selection, side)
        for side in sides
        if not store_of(data, selection, side).meta.through_interface
    ]
    path = (
        f"{', '.join(own)}: maps from the model's own output_attentions (its family is outside "
        "the attention interface; mha only)"
        if own
        else ""
    )
    return " · ".join(n for n in (sparse_note(data, selection, sides), path) if n)


def sparse_note(data: StudyData, selection: Selection, sides=("a",)) -> str:
    """What a figure says when a variant's store keeps only the top mass of each row."""
    masses = {
        run_name(selection, side): store_of(data, selection, side).meta.sparse_mass
        for side in sides
    }
    sparse = {v: m for v, m in masses.items() if m is not None}
    if not sparse:
        return ""
    kept = {v: f"each row keeps {m * 100:g}% of its mass" for v, m in sparse.items()}
    if len(set(kept.values())) == 1 and len(sparse) == len(masses):
        return f"sparse: {next(iter(kept.values()))}; the rest shows as 0"
    return "; ".join(f"{v} is sparse: {text}" for v, text in kept.items()) + "; the rest shows as 0"


def _left_out(data: StudyData, side: str, selection: Selection, view: blocks.Drawn, rows):
    """Row labels with the weight a sparse store left out of each row (the most of a block's
    rows); ``rows`` as they are for a dense store."""
    store = store_of(data, selection, side)
    dropped = maps.dropped_rows(
        store, selection.example, selection.stored_kind, *_indices(store, selection)
    )
    if dropped is None:
        return rows
    shares = blocks.pool_1d(dropped, view.rows, "max")
    up_to = "≤ " if view.rows.block > 1 else ""
    return [f"{row} · left out {up_to}{share:.1%}" for row, share in zip(rows, shares, strict=True)]


def _drawing(data: StudyData, selection: Selection, view: blocks.Drawn, q, k, sides):
    """(row labels, column labels, value names, figure options) of maps drawn as ``view``."""
    rows, columns = blocks.labels(view.rows, q), blocks.labels(view.cols, k)
    notes = [blocks.note(view), store_notes(data, selection, sides)]
    options = {"note": " · ".join(n for n in notes if n)}
    value = selection.measure_names[1:]
    if view.pooled:
        value = (f"{view.how} {value[0]}", value[1])
        options["words"] = ("queries", "keys")
        options["diff_label"] = "B − A, largest change" if view.how == "max" else "B − A, mean"
    labelled = tuple(_left_out(data, side, selection, view, rows) for side in sides)
    if labelled != (rows,) * len(sides):
        options["rows"] = (*labelled, rows)[:3]
    return rows, columns, value, options


def _pair(data: StudyData, selection: Selection):
    """A's and B's maps (read at the same time) and their tokens; None when the tokens differ."""
    stores = store_of(data, selection, "a"), store_of(data, selection, "b")
    example, kind = selection.example, selection.stored_kind
    a, b = maps.head_maps(*[(s, example, kind, *_indices(s, selection)) for s in stores])
    q, k = axis_tokens(stores[0].example_meta(example), selection.kind)
    q_b, k_b = axis_tokens(stores[1].example_meta(example), selection.kind)
    return (a, b, q, k) if (q, k) == (q_b, k_b) else None


def compare_view(data: StudyData, selection: Selection) -> dict | go.Figure:
    """A, B and B − A for one example, kind, measure, layer and head (one chunk per variant),
    drawn as blocks when larger than the pixel budget, zoomed into the selection's region."""
    pair = _pair(data, selection)
    if pair is None:
        return figures.message_figure(
            f"{selection.a} and {selection.b} tokenize this example differently: no difference to show."
        )
    a, b, q, k = pair
    view = blocks.drawn(a.shape, selection.region, selection.pool)
    variants = (run_name(selection, "a"), run_name(selection, "b"))
    rows, columns, value, options = _drawing(data, selection, view, q, k, ("a", "b"))
    return figures.compare_figure(
        view.cells(a),
        view.cells(b),
        rows,
        columns,
        variants,
        selection.log,
        map_title(selection),
        value,
        diff=view.difference(a, b),
        **options,
    )


def compare_table(data: StudyData, selection: Selection) -> pd.DataFrame | None:
    """The cells the compare view draws as a long table (the CSV export): every token pair, or
    the zoomed region's, or (``attrs["blocks"]`` says how) each block's first tokens and range."""
    pair = _pair(data, selection)
    if pair is None:
        return None
    a, b, q, k = pair
    view = blocks.drawn(a.shape, selection.region, selection.pool)
    cells = view.cells(a), view.cells(b), view.difference(a, b)
    qi, ki = (x.ravel() for x in np.indices(cells[0].shape))
    table = pd.DataFrame(
        {
            "query_index": view.rows.firsts()[qi],
            "query_token": np.asarray(_table_tokens(view.rows, q))[qi],
            "key_index": view.cols.firsts()[ki],
            "key_token": np.asarray(_table_tokens(view.cols, k))[ki],
            run_key(selection, "a"): cells[0].ravel(),
            run_key(selection, "b"): cells[1].ravel(),
            f"{run_key(selection, 'b')}_minus_{run_key(selection, 'a')}": cells[2].ravel(),
        }
    )
    table.attrs["blocks"] = f"{view.how}{view.rows.block}" if view.pooled else ""
    return table


def _table_tokens(axis: blocks.Axis, tokens: list[str]) -> list[str]:
    """Each cell's token, or a block's token range."""
    return tokens[axis.start : axis.stop] if axis.block == 1 else blocks.labels(axis, tokens)


def _heads_rows(data: StudyData, selection: Selection) -> list[int]:
    """The layers the heads view shows, one row each."""
    return (
        store_of(data, selection, "a").meta.layers
        if selection.scope == "model"
        else [selection.layer]
    )


def head_order(data: StudyData, selection: Selection) -> HeadOrder:
    """How the heads view lays out A's heads: natural, or by their match to the reference."""
    rows, heads = _heads_rows(data, selection), store_of(data, selection, "a").meta.heads
    if selection.order != "matched":
        return natural_order(rows, heads)
    if data.reference_of(selection.a) == selection.a:
        note = f"{selection.a} is its own reference: heads in their natural order."
        return natural_order(rows, heads, note)
    try:
        comparison = data.table("attention_comparison")
    except MissingArtifact:
        note = "No attention comparison yet (run the analysis): heads in their natural order."
        return natural_order(rows, heads, note)
    return matched_order(comparison, selection.a, selection.stored_kind, rows, heads)


def heads_view(data: StudyData, selection: Selection) -> go.Figure:
    """All heads of one layer, or the whole model as a layer x head grid, for variant A; maps
    larger than a small panel's budget are drawn as blocks, pooled head by head."""
    store = store_of(data, selection, "a")
    rows = _heads_rows(data, selection)
    q, k = axis_tokens(store.example_meta(selection.example), selection.kind)
    view = blocks.drawn((len(q), len(k)), "", selection.pool, blocks.GRID_CELLS)
    order = head_order(data, selection)
    labels = merged_labels(order.labels, _badges(data, selection))
    notes = [order.note, blocks.note(view, hint=False), store_notes(data, selection)]
    value = selection.measure_names[2]
    return figures.heads_grid_figure(
        _head_grids(store, selection, rows, view),
        rows,
        store.meta.heads,
        store.meta.kv_group,
        columns=order.columns,
        labels=labels,
        title=f"{run_name(selection, 'a')}: {selection.kind} {selection.measure_names[0]}",
        note=" · ".join(n for n in notes if n),
        value=f"{view.how} {value}" if view.pooled else value,
        axes=(blocks.labels(view.rows, q), blocks.labels(view.cols, k)) if view.pooled else None,
    )


def _badges(data: StudyData, selection: Selection) -> dict:
    """A's heads labelled with their strongest function (scored on each variant's first
    seed); none where the study has no head-function scores yet."""
    try:
        scores = data.table("head_functions")
    except MissingArtifact:
        return {}
    if selection.measure == "norms" or scores.empty:
        return {}
    return function_badges(scores, selection.a, selection.kind, THRESHOLDS)


def _head_grids(store, selection: Selection, layers: list[int], view: blocks.Drawn):
    """[layers, heads, rows, columns] cells of A's maps. Long maps are read a layer at a time
    and pooled head by head: the whole model's maps are never held."""
    kind, example = selection.stored_kind, selection.example
    indices = [store.meta.layers.index(layer) for layer in layers]
    if not view.pooled and len(indices) > 1:  # short maps: one read (one chunk per example)
        return store.attention(example, kind)[indices]
    return np.stack(
        [
            np.stack([view.cells(m) for m in store.attention(example, kind, layer=li)])
            for li in indices
        ]
    )


def clicked_curve(click) -> int:
    """The heatmap number of a click on the heads view, from the graph's ``clickData``."""
    try:
        curve = click["points"][0]["curveNumber"]
    except (TypeError, KeyError, IndexError):
        raise BadSelection(f"Not a click on a heatmap: got {show(click)}.") from None
    if not isinstance(curve, int) or isinstance(curve, bool):
        raise BadSelection(f"The clicked heatmap's number must be whole, got {show(curve)}.")
    return curve


def clicked_head(data: StudyData, selection: Selection, curve: int) -> tuple[int, int]:
    """(layer, head) of the ``curve``-th small heatmap of :func:`heads_view` (row-major, in
    the order the view lays the heads out)."""
    columns = head_order(data, selection).columns
    cells = [(layer, head) for layer, heads in columns.items() for head in heads]
    if not 0 <= curve < len(cells):
        raise BadSelection(f"No heatmap {curve} in the heads view: it has {len(cells)}.")
    return cells[curve]


def _rollout_kind(selection: Selection) -> str:
    """Rollout needs self-attention: cross-attention stands for the encoder's."""
    kind = AttentionKind.parse(selection.kind).key_side  # cross: the encoder it reads
    return replace(selection, kind=kind).stored_kind


def rollout_view(data: StudyData, selection: Selection) -> go.Figure:
    """Token relevance after each layer for A and B (self-attention of the chosen kind)."""
    kind = _rollout_kind(selection)
    causal = store_of(data, selection, "a").meta.is_causal(kind)
    rel = [
        token_relevance(store_of(data, selection, side).attention(selection.example, kind), causal)
        for side in ("a", "b")
    ]
    tokens = axis_tokens(store_of(data, selection, "a").example_meta(selection.example), kind)[1]
    same = rel[0].shape == rel[1].shape
    title = (
        f"Attention rollout (Abnar & Zuidema 2020) of {base_kind(kind)} {selection.measure_names[0]}: "
        "relevance of each token to the summary position"
    )
    return figures.rollout_figure(
        rel[0],
        rel[1] if same else None,
        tokens,
        (run_name(selection, "a"), run_name(selection, "b")),
        title,
    )


def cross_view(data: StudyData, selection: Selection) -> go.Figure:
    """Decoder tokens x encoder tokens for variant A, when its store has cross-attention."""
    if "cross" not in store_of(data, selection, "a").kinds:
        return figures.message_figure(
            f"{selection.a} has no cross-attention (it is not an encoder-decoder model)."
        )
    cross = replace(selection, kind="cross")
    values, q, k = head_map(data, "a", cross)
    view = blocks.drawn(values.shape, selection.region, selection.pool)
    rows, columns, value, options = _drawing(data, cross, view, q, k, ("a",))
    title = f"{run_name(selection, 'a')}: {map_title(cross, 'cross')}"
    cells = view.cells(values)
    return figures.single_figure(cells, rows, columns, title, selection.log, value, **options)


def example_options(data: StudyData, label: str | None = None) -> list[dict]:
    """Dropdown options for the example picker (searchable by text), optionally one label only.

    Raises BadSelection for a label the probe set does not have.
    """
    probes = data.probe_set
    if label not in (None, ""):  # None: the filter is cleared
        if label not in data.labels:
            raise BadSelection(
                f"Unknown label {show(label)}; the probe set has: {', '.join(data.labels)}."
            )
        probes = probes[probes["label_name"] == label]
    return [
        {"label": f"[{row.label_name or row.source}] {row.text[:90]}", "value": row.id}
        for row in probes.itertuples()
    ]
