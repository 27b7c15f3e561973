"""The Metrics and Functions tabs: head metrics and head functions as layer × head grids,
with intervals and the significance of each difference (no Dash here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attention_lab.kinds import AttentionKind, base_kind
from dashboard import figures, metric_figures
from dashboard.data import MissingArtifact, StudyData
from dashboard.heads import (
    significant_heads,
    tested,
)
from dashboard.selection import NO_NORMS, Selection


def metrics_view(
    data: StudyData, selection: Selection
) -> tuple[go.Figure, go.Figure, go.Figure, list[dict]]:
    """Metric heatmaps (A, B, B − A), similarity to the reference per layer, the performance table."""
    return (
        metric_grid_view(data, selection),
        data.figure("similarity_figure"),  # as the analysis pipeline drew them
        data.figure("performance_figure"),
        data.table("performance").round(4).to_dict("records"),
    )


def metric_grid_view(data: StudyData, selection: Selection) -> go.Figure:
    """Layer x head grids of the selected metric for A, B and B − A, with B's significant
    changes marked when A is B's reference."""
    head_metrics = data.table("all_head_metrics")
    kind = _metric_kind(head_metrics, selection)
    rows = head_metrics[head_metrics["kind"] == kind]
    missing = [v for v in (selection.a, selection.b) if not (rows["variant"] == v).any()]
    if selection.measure == "norms" and missing:
        return figures.message_figure(_no_norm_metrics(data, missing[0], selection.kind))
    grid_a, ci_a = _metric_grid(rows, selection.a, selection.metric)
    grid_b, ci_b = _metric_grid(rows, selection.b, selection.metric, like=grid_a)
    marks, note = _significance(data, selection, kind)
    return metric_figures.metric_grid_figure(
        grid_a.to_numpy(),
        grid_b.to_numpy(),
        list(grid_a.index),
        list(grid_a.columns),
        (selection.a, selection.b),
        selection.metric,
        title=f"{selection.metric.replace('_', ' ')} · {base_kind(kind)} {selection.measure_names[0]}",
        marks=marks,
        note=note,
        intervals=(ci_a, ci_b),
    )


def functions_view(data: StudyData, selection: Selection) -> tuple[go.Figure, go.Figure]:
    """Layer x head grids of one head function's score for A, B and B − A (each variant's
    first seed), and the ablations that check the functions causally."""
    scores = data.table("head_functions")
    rows = scores[scores["function"] == selection.function]
    missing = [v for v in (selection.a, selection.b) if not (rows["variant"] == v).any()]
    if missing:
        return figures.message_figure(
            f"No {selection.function.replace('_', ' ')} scores for {missing[0]}: retrieval is "
            "scored for causal language models only; run `kedro run --pipeline=analysis`."
        ), data.figure("ablation_figure")
    grid_a, ci_a = _function_grid(rows, selection.a)
    grid_b, ci_b = _function_grid(rows, selection.b, like=grid_a)
    grids = metric_figures.metric_grid_figure(
        grid_a.to_numpy(),
        grid_b.to_numpy(),
        list(grid_a.index),
        list(grid_a.columns),
        (selection.a, selection.b),
        selection.function,
        title=f"{selection.function.replace('_', ' ')} score per head (95% interval over probes)",
        intervals=(ci_a, ci_b),
    )
    return grids, data.figure("ablation_figure")


def _function_grid(rows: pd.DataFrame, variant: str, like=None):
    """(layer x head grid of a function's score, its intervals [layer, head, 2])."""
    named = rows.rename(columns={"score": "s", "ci_low": "s_ci_low", "ci_high": "s_ci_high"})
    return _metric_grid(named, variant, "s", like)


def _metric_kind(head_metrics: pd.DataFrame, selection: Selection) -> str:
    """The kind of rows the metric grids show: the selection's, else the table's first."""
    kinds = list(dict.fromkeys(head_metrics["kind"]))
    if selection.stored_kind in kinds or selection.measure == "norms":
        return selection.stored_kind
    return next((k for k in kinds if not AttentionKind.parse(k).norms), kinds[0])


def _no_norm_metrics(data: StudyData, variant: str, kind: str) -> str:
    if not data.store(variant).meta.has_norms:
        return NO_NORMS.format(variant)
    return (
        f"The head metrics have no norm-based {kind} rows for {variant}: "
        "run `kedro run --pipeline=analysis` again."
    )


def _metric_grid(rows: pd.DataFrame, variant: str, metric: str, like=None):
    """(layer x head grid of ``metric``, its 95% intervals [layer, head, 2] or None)."""
    mine = rows[rows["variant"] == variant]

    def grid(column: str) -> pd.DataFrame:
        return mine.pivot_table(index="layer", columns="head", values=column, dropna=False)

    values = grid(metric) if like is None else grid(metric).reindex_like(like)
    bounds = [f"{metric}_ci_low", f"{metric}_ci_high"]
    if not set(bounds) <= set(rows.columns):
        return values, None
    return values, np.stack([grid(b).reindex_like(values).to_numpy() for b in bounds], axis=-1)


def _significance(data: StudyData, selection: Selection, kind: str):
    """(B's significant heads against A, a note on what the marks mean); no marks (None)
    unless A is B's reference: head_changes tests each variant against its reference only."""
    reference = data.reference_of(selection.b)
    if selection.b == reference:
        return None, f"No significance marks: {selection.b} is a reference, not tested itself."
    if selection.a != reference:
        return None, (
            f"No significance marks: head_changes tests {selection.b} against its reference "
            f"{reference}; choose {reference} as A to see them."
        )
    try:
        rows = tested(data.table("head_changes"), selection.b, reference, kind, selection.metric)
    except MissingArtifact:
        return None, "No head_changes yet (run the analysis): no significance marks."
    if rows.empty:
        return None, f"head_changes has no test of {selection.metric} for {selection.b}."
    marks = significant_heads(rows)
    return marks, (
        f"× {len(marks)} of {len(rows)} heads where {selection.b} differs significantly from "
        f"{reference} (over seeds and probes, consistent in every seed; Benjamini–Hochberg)"
    )
