"""Plotly figures of the analysis, saved through kedro-datasets so kedro-viz previews them."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def layer_head_grids(
    table: pd.DataFrame, value: str, title: str, colorscale: str = "Viridis"
) -> go.Figure:
    """One layer x head heatmap of ``value`` per variant, on one shared colour scale."""
    variants = list(dict.fromkeys(table["variant"]))
    cols = min(3, len(variants))
    rows = -(-len(variants) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=variants,
        horizontal_spacing=0.06,
        vertical_spacing=0.18,
    )
    lo, hi = table[value].min(), table[value].max()
    for i, variant in enumerate(variants):
        grid = table[table["variant"] == variant].pivot_table(
            index="layer", columns="head", values=value
        )
        fig.add_trace(
            go.Heatmap(
                z=grid.values,
                x=grid.columns,
                y=grid.index,
                zmin=lo,
                zmax=hi,
                coloraxis="coloraxis",
                hovertemplate=f"{variant}<br>layer %{{y}} head %{{x}}<br>{value} %{{z:.3f}}<extra></extra>",
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_layout(title=title, coloraxis={"colorscale": colorscale}, height=320 * rows + 80)
    fig.update_xaxes(title_text="head", dtick=1 if table["head"].nunique() <= 12 else None)
    fig.update_yaxes(title_text="layer", autorange="reversed")
    return fig


def head_metric_heatmaps(
    head_metrics: pd.DataFrame, metric: str = "normalized_entropy"
) -> go.Figure:
    """A layer x head heatmap of ``metric`` for every variant (self-attention)."""
    data = head_metrics[head_metrics["kind"].isin(["encoder", "decoder"])]
    return layer_head_grids(data, metric, f"{metric.replace('_', ' ')} per layer and head")


def similarity_by_layer_figure(similarity_by_layer: pd.DataFrame) -> go.Figure:
    """Mean cosine similarity to the reference per layer, one line per variant."""
    data = similarity_by_layer[similarity_by_layer["variant"] != similarity_by_layer["reference"]]
    references = list(dict.fromkeys(similarity_by_layer["reference"]))
    if len(references) == 1:
        to = repr(references[0])
    else:  # variants of several base models, each against its own model's reference
        to, data = (
            "each variant's reference",
            data.assign(variant=data["variant"] + " vs " + data["reference"]),
        )
    fig = px.line(
        data,
        x="layer",
        y="cosine_similarity",
        color="variant",
        line_dash="kind",
        markers=True,
        title=f"Attention similarity to {to} per layer (cosine of flattened maps)",
    )
    fig.update_yaxes(title_text="mean cosine similarity")
    return fig


def performance_figure(performance: pd.DataFrame) -> go.Figure:
    """Task metric and training cost per variant."""
    metric = (
        "accuracy"
        if "accuracy" in performance
        else ("perplexity" if "perplexity" in performance else "eval_loss")
    )
    fig = make_subplots(rows=1, cols=2, subplot_titles=(metric, "train seconds"))
    fig.add_trace(
        go.Bar(
            x=performance["variant"],
            y=performance[metric],
            name=metric,
            text=performance[metric].round(3),
            textposition="outside",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=performance["variant"], y=performance["train_seconds"], name="train seconds"),
        row=1,
        col=2,
    )
    fig.update_layout(title="Performance and cost per variant", showlegend=False)
    return fig


def importance_figure(importance: pd.DataFrame) -> go.Figure:
    """Normalised head importance (Michel et al.) per variant, layer x head."""
    if importance.empty:
        return go.Figure().update_layout(
            title="Head importance: no fine-tuned classifier in this study"
        )
    return layer_head_grids(
        importance,
        "importance_normalized",
        "Head importance |A·dL/dA| (Michel et al. 2019), normalised per layer",
        "Magma",
    )
