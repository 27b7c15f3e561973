"""Layer × head grids of a head metric or function score, with the difference between two
variants and the heads whose difference is significant marked (pure Plotly)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import DIVERGING, with_note


def metric_grid_figure(
    grid_a: np.ndarray,
    grid_b: np.ndarray,
    layers: list[int],
    heads: list[int],
    names: tuple[str, str],
    metric: str,
    title: str = "",
    marks=None,
    note: str = "",
    intervals: tuple = (None, None),
) -> go.Figure:
    """Layer x head heatmaps of one analysis metric for A, B and their difference.

    ``intervals`` are A's and B's 95% intervals ([layer, head, 2], shown in the hover);
    ``marks`` (a table with layer, head, effect, ci_low, ci_high, q) get a marker on the
    difference, and ``note`` says what they mean.
    """
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(names[0], names[1], f"{names[1]} − {names[0]}"),
        horizontal_spacing=0.07,
    )
    for col, grid, interval in ((1, grid_a, intervals[0]), (2, grid_b, intervals[1])):
        fig.add_trace(_metric_heatmap(grid, layers, heads, metric, interval), row=1, col=col)
    fig.add_trace(_difference_heatmap(grid_b - grid_a, layers, heads), row=1, col=3)
    fig.update_yaxes(autorange="reversed")
    if marks is not None:
        _mark(fig, marks, layers, heads)
    fig.update_yaxes(title_text="layer", col=1)
    fig.update_xaxes(title_text="head")
    fig.update_layout(
        title=with_note(title or metric.replace("_", " "), note),
        height=400 if note else 380,
        showlegend=False,
        coloraxis={"colorscale": "Viridis", "colorbar": {"x": 0.64, "len": 0.9}},
        # A and B share one scale; B − A is centred on 0
        coloraxis2={"colorscale": DIVERGING, "cmid": 0, "colorbar": {"x": 1.0, "len": 0.9}},
    )
    return fig


def _metric_heatmap(grid, layers, heads, metric, interval) -> go.Heatmap:
    hover = f"layer %{{y}} head %{{x}}<br>{metric} %{{z:.4f}}"
    if interval is not None:
        hover += "<br>95% CI [%{customdata[0]:.4f}, %{customdata[1]:.4f}]"
    return go.Heatmap(
        z=grid,
        x=heads,
        y=layers,
        coloraxis="coloraxis",
        customdata=interval,
        hovertemplate=hover + "<extra></extra>",
    )


def _difference_heatmap(diff, layers, heads) -> go.Heatmap:
    return go.Heatmap(
        z=diff,
        x=heads,
        y=layers,
        coloraxis="coloraxis2",
        hovertemplate="layer %{y} head %{x}<br>B − A %{z:.4f}<extra></extra>",
    )


def _mark(fig: go.Figure, marks, layers: list[int], heads: list[int]) -> None:
    """Markers on the difference (the third panel), whose axes keep the heatmap's extent."""
    fig.add_trace(_significance_markers(marks), row=1, col=3)
    fig.update_xaxes(range=_extent(heads), row=1, col=3)
    fig.update_yaxes(range=_extent(layers)[::-1], autorange=False, row=1, col=3)


def _extent(values: list[int]) -> list[float]:
    """From the first cell's edge to the last's, as a heatmap draws cells around ``values``."""
    if len(values) < 2:
        return [values[0] - 0.5, values[0] + 0.5] if values else [-0.5, 0.5]
    return [values[0] - (values[1] - values[0]) / 2, values[-1] + (values[-1] - values[-2]) / 2]


def _significance_markers(marks) -> go.Scatter:
    """An × on each significant head; the hover gives its effect, interval and q."""
    return go.Scatter(
        x=list(marks["head"]),
        y=list(marks["layer"]),
        mode="markers",
        name="significant",
        marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "black"}},
        customdata=marks[["effect", "ci_low", "ci_high", "q"]].to_numpy(),
        hovertemplate="layer %{y} head %{x}: significant change<br>effect %{customdata[0]:.4f}"
        " [%{customdata[1]:.4f}, %{customdata[2]:.4f}]<br>q %{customdata[3]:.3g}<extra></extra>",
    )
