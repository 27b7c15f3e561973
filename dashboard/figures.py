"""Pure figure builders: numpy arrays and token lists in, plotly figures out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

LOG_FLOOR = 1e-4  # log scale shows log10(max(w, 1e-4))
SEQUENTIAL, DIVERGING = "Blues", "RdBu_r"


def _colour(values: np.ndarray, log: bool) -> np.ndarray:
    return np.log10(np.maximum(values, LOG_FLOOR)) if log else values


def unique_labels(tokens: list[str]) -> list[str]:
    """Tokens as distinct category labels: a repeat gets invisible zero-width spaces appended."""
    seen: dict[str, int] = {}
    out = []
    for tok in tokens:
        out.append(tok + "\u200b" * seen.get(tok, 0))
        seen[tok] = seen.get(tok, 0) + 1
    return out


def _heatmap(
    values: np.ndarray, q_labels, k_labels, axis: str, coloraxis: str, label: str, log: bool
) -> dict:
    """A [query, key] heatmap trace as a plain dict (plotly's validation costs more than the data)."""
    trace = {
        "type": "heatmap",
        "x": k_labels,
        "y": q_labels,
        "xaxis": f"x{axis}",
        "yaxis": f"y{axis}",
        "coloraxis": coloraxis,
        "z": _colour(values, log).tolist(),
        "hovertemplate": f"query %{{y}}<br>key %{{x}}<br>{label} %{{z:.4f}}<extra></extra>",
    }
    if log:  # colours are log10; hover shows the raw weight
        trace["customdata"] = values.tolist()
        trace["hovertemplate"] = trace["hovertemplate"].replace("%{z:.4f}", "%{customdata:.4f}")
    return trace


def compare_figure(
    a: np.ndarray,
    b: np.ndarray,
    q_tokens,
    k_tokens,
    names: tuple[str, str],
    log: bool = False,
    title: str = "",
) -> dict:
    """A, B and B - A side by side; A and B share one colour scale, the difference is diverging.

    Returned as a plain figure dict: this is the dashboard's hot path.
    """
    q, k = unique_labels(q_tokens), unique_labels(k_tokens)
    hi = float(max(a.max(), b.max(), 1e-6))
    diff = b - a
    bound = float(max(np.abs(diff).max(), 1e-6))
    domains = ((0.0, 0.27), (0.35, 0.62), (0.72, 0.99))
    layout = {
        "title": {"text": title},
        "height": max(360, 18 * len(q) + 160),
        "margin": {"t": 70, "l": 90, "r": 20, "b": 90},
        "coloraxis": {
            "colorscale": SEQUENTIAL,
            "cmin": np.log10(LOG_FLOOR) if log else 0.0,
            "cmax": np.log10(hi) if log else hi,
            "colorbar": {"x": 0.635, "len": 0.9, "title": {"text": "log10 w" if log else "w"}},
        },
        "coloraxis2": {
            "colorscale": DIVERGING,
            "cmin": -bound,
            "cmax": bound,
            "colorbar": {"x": 1.0, "len": 0.9, "title": {"text": "B − A"}},
        },
        "annotations": [
            {
                "text": text,
                "x": sum(d) / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 14},
            }
            for text, d in zip(
                (names[0], names[1], f"{names[1]} − {names[0]}"), domains, strict=True
            )
        ],
    }
    for i, domain in enumerate(domains, start=1):
        suffix = "" if i == 1 else str(i)
        layout[f"xaxis{suffix}"] = {
            "domain": list(domain),
            "anchor": f"y{suffix}",
            "tickangle": -60,
            "type": "category",
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "autorange": "reversed",
            "type": "category",
            "showticklabels": i == 1,
        }
    data = [
        _heatmap(a, q, k, "", "coloraxis", "weight", log),
        _heatmap(b, q, k, "2", "coloraxis", "weight", log),
        _heatmap(diff, q, k, "3", "coloraxis2", "B − A", False),
    ]
    return {"data": data, "layout": layout}


def single_figure(values: np.ndarray, q_tokens, k_tokens, title: str, log: bool = False) -> dict:
    """One map, e.g. cross-attention [decoder tokens, encoder tokens]."""
    hi = float(max(values.max(), 1e-6))
    trace = _heatmap(
        values, unique_labels(q_tokens), unique_labels(k_tokens), "", "coloraxis", "weight", log
    )
    layout = {
        "title": {"text": title},
        "height": max(320, 18 * len(q_tokens) + 160),
        "coloraxis": {
            "colorscale": SEQUENTIAL,
            "cmin": np.log10(LOG_FLOOR) if log else 0.0,
            "cmax": np.log10(hi) if log else hi,
        },
        "xaxis": {"tickangle": -60, "type": "category"},
        "yaxis": {"autorange": "reversed", "type": "category"},
    }
    return {"data": [trace], "layout": layout}


def heads_grid_figure(
    maps: np.ndarray,
    rows: list[int],
    heads: list[int],
    kv_group: list[int],
    row_label: str = "layer",
) -> go.Figure:
    """Small multiples: maps [rows, heads, T, T]. Titles mark key/value groups; click one to open it."""
    n_rows, n_heads = maps.shape[:2]
    shared = len(set(kv_group)) < len(kv_group)
    titles = [
        f"{row_label[0]}{r} h{h}" + (f" kv{kv_group[j]}" if shared else "")
        for r in rows
        for j, h in enumerate(heads)
    ]
    fig = make_subplots(
        rows=n_rows,
        cols=n_heads,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.04 if n_rows > 1 else 0.1,
    )
    hi = float(maps.max())
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    for i in range(n_rows):
        for j in range(n_heads):
            fig.add_trace(
                go.Heatmap(
                    z=maps[i, j],
                    zmin=0,
                    zmax=hi,
                    coloraxis="coloraxis",
                    hovertemplate=f"{row_label} {rows[i]} head {heads[j]}<br>w %{{z:.3f}}<extra></extra>",
                ),
                row=i + 1,
                col=j + 1,
            )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    if shared:  # colour each head's title by its key/value group
        for j, annotation in enumerate(fig.layout.annotations):
            annotation.font = {"size": 10, "color": palette[kv_group[j % n_heads] % len(palette)]}
    else:
        fig.update_annotations(font_size=10)
    fig.update_layout(
        coloraxis={"colorscale": SEQUENTIAL},
        height=max(260, 120 * n_rows + 80),
        margin={"t": 40, "l": 10, "r": 10, "b": 10},
        title="Click a head to open it in Compare"
        + (" · titles coloured by key/value group" if shared else ""),
    )
    return fig


def metric_grid_figure(
    grid_a: np.ndarray,
    grid_b: np.ndarray,
    layers: list[int],
    heads: list[int],
    names: tuple[str, str],
    metric: str,
) -> go.Figure:
    """Layer x head heatmaps of one analysis metric for A, B and their difference."""
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(names[0], names[1], f"{names[1]} − {names[0]}"),
        horizontal_spacing=0.07,
    )
    lo, hi = float(np.nanmin([grid_a, grid_b])), float(np.nanmax([grid_a, grid_b]))
    for col, grid in ((1, grid_a), (2, grid_b)):
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=heads,
                y=layers,
                zmin=lo,
                zmax=hi,
                coloraxis="coloraxis",
                hovertemplate=f"layer %{{y}} head %{{x}}<br>{metric} %{{z:.4f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    diff = grid_b - grid_a
    bound = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    fig.add_trace(
        go.Heatmap(
            z=diff,
            x=heads,
            y=layers,
            zmin=-bound,
            zmax=bound,
            coloraxis="coloraxis2",
            hovertemplate="layer %{y} head %{x}<br>B − A %{z:.4f}<extra></extra>",
        ),
        row=1,
        col=3,
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="layer", col=1)
    fig.update_xaxes(title_text="head")
    fig.update_layout(
        title=metric.replace("_", " "),
        height=380,
        coloraxis={"colorscale": "Viridis", "colorbar": {"x": 0.64, "len": 0.9}},
        coloraxis2={"colorscale": DIVERGING, "colorbar": {"x": 1.0, "len": 0.9}},
    )
    return fig


def rollout_figure(
    relevance_a: np.ndarray,
    relevance_b: np.ndarray | None,
    tokens: list[str],
    names: tuple[str, str],
) -> go.Figure:
    """Token relevance by attention rollout, layer by layer (rows) for A and, if given, B."""
    panels = [(names[0], relevance_a)] + (
        [(names[1], relevance_b)] if relevance_b is not None else []
    )
    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.08
    )
    hi = float(max(p[1].max() for p in panels))
    for col, (_, rel) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(
                z=rel,
                x=list(range(len(tokens))),
                y=list(range(rel.shape[0])),
                zmin=0,
                zmax=hi,
                coloraxis="coloraxis",
                customdata=np.broadcast_to(np.asarray(tokens, dtype=object)[None, :], rel.shape),
                hovertemplate="after layer %{y}<br>token %{customdata}<br>relevance %{z:.4f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(
            tickvals=list(range(len(tokens))), ticktext=tokens, tickangle=-60, row=1, col=col
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="after layer", col=1)
    fig.update_layout(
        title="Attention rollout (Abnar & Zuidema 2020): relevance of each token to the summary position",
        coloraxis={"colorscale": "Magma"},
        height=380,
    )
    return fig


def message_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=text, showarrow=False, font={"size": 14}, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=200)
    return fig
