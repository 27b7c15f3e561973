"""Pure figure builders: numpy arrays and token lists in, plotly figures out."""

from __future__ import annotations

import base64
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.blocks import LABEL_LIMIT, unique_labels

LOG_FLOOR = 1e-4  # log scale shows log10(max(w, 1e-4))
SEQUENTIAL, DIVERGING = "Blues", "RdBu_r"
# Up to this many cells a heatmap's values go as JSON lists; more go as base64 float32, which
# plotly.js reads as a typed array: 5.3 bytes a value instead of about 20.
LIST_CELLS = 64 * 64
MAX_TICKS = 20  # labelled rows where the hover labels differ from the tick labels
TALL = 640  # the height of a map figure whose rows are not labelled one by one


def _colour(values: np.ndarray, log: bool) -> np.ndarray:
    return np.log10(np.maximum(values, LOG_FLOOR)) if log else values


def _array(values: np.ndarray):
    """A heatmap's values as plotly.js reads them: a list, or a typed array spec when large."""
    if values.size <= LIST_CELLS:
        return values.tolist()
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    shape = ", ".join(map(str, values.shape))
    return {"dtype": "f4", "bdata": base64.b64encode(data).decode(), "shape": shape}


def as_array(values) -> np.ndarray:
    """A heatmap's values back as an array, from :func:`_array`'s list or typed array spec."""
    if isinstance(values, dict):
        flat = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        return flat.reshape([int(n) for n in values["shape"].split(",")])
    return np.asarray(values, dtype=float)


def _heatmap(
    values: np.ndarray,
    q_labels,
    k_labels,
    axis: str,
    coloraxis: str,
    label: str,
    log: bool,
    words: tuple[str, str] = ("query", "key"),
) -> dict:
    """A [query, key] heatmap trace as a plain dict (plotly's validation costs more than the data).

    ``words`` name a row and a column in the hover ("queries", "keys" for blocks).
    """
    trace = {
        "type": "heatmap",
        "x": k_labels,
        "y": q_labels,
        "xaxis": f"x{axis}",
        "yaxis": f"y{axis}",
        "coloraxis": coloraxis,
        "z": _array(_colour(values, log)),
        "hovertemplate": f"{words[0]} %{{y}}<br>{words[1]} %{{x}}<br>{label} %{{z:.4f}}<extra></extra>",
    }
    if log:  # colours are log10; hover shows the raw weight
        trace["customdata"] = _array(values)
        trace["hovertemplate"] = trace["hovertemplate"].replace("%{z:.4f}", "%{customdata:.4f}")
    return trace


def _height(rows: int, least: int) -> int:
    """Room for one labelled row each (as small maps always had), else :data:`TALL`."""
    return max(least, 18 * rows + 160) if rows <= LABEL_LIMIT else TALL


def _row_ticks(hover: list[str], shown: list[str]) -> dict:
    """y-axis ticks that show ``shown`` for rows whose hover labels are ``hover``."""
    step = 1 if len(hover) <= LABEL_LIMIT else math.ceil(len(hover) / MAX_TICKS)
    return {"tickmode": "array", "tickvals": hover[::step], "ticktext": shown[::step]}


def compare_figure(
    a: np.ndarray,
    b: np.ndarray,
    q_tokens,
    k_tokens,
    names: tuple[str, str],
    log: bool = False,
    title: str = "",
    value: tuple[str, str] = ("weight", "w"),
    **drawn,
) -> dict:
    """A, B and B - A side by side; A and B share one colour scale, the difference is diverging.

    ``value`` names what the maps hold, in a hover and on the colour bar. Maps drawn as blocks
    or zoomed pass ``drawn`` (see :func:`_drawn`): B − A as drawn, a note under the title, the
    hover's words, each panel's row labels. Returned as a plain figure dict: the hot path.
    """
    q, k = unique_labels(q_tokens), unique_labels(k_tokens)
    opts = _drawn(q, **drawn)
    diff = b - a if opts["diff"] is None else opts["diff"]
    domains = ((0.0, 0.27), (0.35, 0.62), (0.72, 0.99))
    layout = {
        "title": {"text": with_note(title, opts["note"])},
        "height": _height(len(q), 360),
        "margin": {"t": 70, "l": 90, "r": 20, "b": 90},
        **_compare_colours(float(max(a.max(), b.max(), 1e-6)), diff, log, value[1]),
        "annotations": _panel_titles((names[0], names[1], f"{names[1]} − {names[0]}"), domains),
        **_panel_axes(domains),
    }
    rows, words = opts["rows"], opts["words"]
    if rows[0] != q:
        layout["yaxis"] |= _row_ticks(rows[0], q)
    data = [
        _heatmap(a, rows[0], k, "", "coloraxis", value[0], log, words),
        _heatmap(b, rows[1], k, "2", "coloraxis", value[0], log, words),
        _heatmap(diff, rows[2], k, "3", "coloraxis2", opts["diff_label"], False, words),
    ]
    return {"data": data, "layout": layout}


def _drawn(
    q: list[str],
    diff: np.ndarray | None = None,
    note: str = "",
    words: tuple[str, str] = ("query", "key"),
    rows: tuple[list[str], ...] | None = None,
    diff_label: str = "B − A",
) -> dict:
    """The options of a map drawn as blocks or zoomed; the defaults draw it as it is.

    ``rows``: each panel's row labels for the hover (they add a sparse store's left-out
    weight), ``q`` by default; the axis still shows ``q``.
    """
    rows = rows or (q, q, q)
    return {"diff": diff, "note": note, "words": words, "rows": rows, "diff_label": diff_label}


def _compare_colours(hi: float, diff: np.ndarray, log: bool, symbol: str) -> dict:
    """A sequential scale up to ``hi`` (log10 when ``log``) and a diverging one for B − A."""
    bound = float(max(np.abs(diff).max(), 1e-6))
    return {
        "coloraxis": {
            "colorscale": SEQUENTIAL,
            "cmin": np.log10(LOG_FLOOR) if log else 0.0,
            "cmax": np.log10(hi) if log else hi,
            "colorbar": {
                "x": 0.635,
                "len": 0.9,
                "title": {"text": f"log10 {symbol}" if log else symbol},
            },
        },
        "coloraxis2": {
            "colorscale": DIVERGING,
            "cmin": -bound,
            "cmax": bound,
            "colorbar": {"x": 1.0, "len": 0.9, "title": {"text": "B − A"}},
        },
    }


def _panel_titles(texts, domains) -> list[dict]:
    """One title centred above each panel."""
    return [
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
        for text, d in zip(texts, domains, strict=True)
    ]


def _panel_axes(domains) -> dict:
    """Category axes side by side; only the first panel labels its rows (queries)."""
    axes = {}
    for i, domain in enumerate(domains, start=1):
        suffix = "" if i == 1 else str(i)
        axes[f"xaxis{suffix}"] = {
            "domain": list(domain),
            "anchor": f"y{suffix}",
            "tickangle": -60,
            "type": "category",
        }
        axes[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "autorange": "reversed",
            "type": "category",
            "showticklabels": i == 1,
        }
    return axes


def single_figure(
    values: np.ndarray,
    q_tokens,
    k_tokens,
    title: str,
    log: bool = False,
    value: tuple[str, str] = ("weight", "w"),
    **drawn,
) -> dict:
    """One map, e.g. cross-attention [decoder tokens, encoder tokens]; ``drawn`` as for
    :func:`compare_figure` (``diff`` aside)."""
    hi = float(max(values.max(), 1e-6))
    q, k = unique_labels(q_tokens), unique_labels(k_tokens)
    opts = _drawn(q, **drawn)
    trace = _heatmap(values, opts["rows"][0], k, "", "coloraxis", value[0], log, opts["words"])
    layout = {
        "title": {"text": with_note(title, opts["note"])},
        "height": _height(len(q), 320),
        "coloraxis": {
            "colorscale": SEQUENTIAL,
            "cmin": np.log10(LOG_FLOOR) if log else 0.0,
            "cmax": np.log10(hi) if log else hi,
            "colorbar": {"title": {"text": f"log10 {value[1]}" if log else value[1]}},
        },
        "xaxis": {"tickangle": -60, "type": "category"},
        "yaxis": {"autorange": "reversed", "type": "category"},
    }
    if opts["rows"][0] != q:
        layout["yaxis"] |= _row_ticks(opts["rows"][0], q)
    return {"data": [trace], "layout": layout}


PALETTE = [
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


def with_note(title: str, note: str) -> str:
    """A title with a smaller second line."""
    return f"{title}<br><sup>{note}</sup>" if note else title


def heads_grid_figure(
    maps: np.ndarray,
    rows: list[int],
    heads: list[int],
    kv_group: list[int],
    row_label: str = "layer",
    columns: dict[int, list[int]] | None = None,
    labels: dict[tuple[int, int], tuple[str, str]] | None = None,
    title: str = "",
    note: str = "",
    value: str = "w",
    axes: tuple[list[str], list[str]] | None = None,
) -> go.Figure:
    """Small multiples: maps [rows, heads, T, T] in stored head order. Titles mark key/value
    groups; click one to open it.

    ``columns`` lays out each row's heads (row -> head ids, left to right; default: stored
    order); ``labels`` adds to a head's title and hover ((row, head) -> (suffix, line));
    ``axes`` labels the cells of maps drawn as blocks (query ranges, key ranges).
    """
    shared = len(set(kv_group)) < len(kv_group)
    cells = _head_cells(rows, heads, kv_group, columns, labels or {}, row_label, shared)
    fig = make_subplots(
        rows=len(rows),
        cols=len(heads),
        subplot_titles=[cell["title"] for cell in cells],
        horizontal_spacing=0.01,
        vertical_spacing=0.04 if len(rows) > 1 else 0.1,
    )
    hi = float(maps.max())
    for n, cell in enumerate(cells):
        trace = _grid_heatmap(maps[cell["row"], cell["column"]], hi, cell["hover"], value, axes)
        fig.add_trace(trace, row=n // len(heads) + 1, col=n % len(heads) + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    for annotation, cell in zip(fig.layout.annotations, cells, strict=True):
        annotation.font = {"size": 10} | ({"color": cell["colour"]} if shared else {})
    fig.update_layout(
        coloraxis={"colorscale": SEQUENTIAL, "colorbar": {"title": {"text": value}}},
        height=max(260, 120 * len(rows) + 80) + (30 if note else 0),
        margin={"t": 70 if note else 40, "l": 10, "r": 10, "b": 10},
        title=_heads_title(title, note, shared),
    )
    return fig


def _grid_heatmap(values: np.ndarray, hi: float, hover: str, value: str, axes) -> go.Heatmap:
    """One small map of the heads grid; ``axes`` (row labels, column labels) for blocks."""
    where = "<br>queries %{y}<br>keys %{x}" if axes else ""
    return go.Heatmap(
        z=values,
        x=axes[1] if axes else None,
        y=axes[0] if axes else None,
        zmin=0,
        zmax=hi,
        coloraxis="coloraxis",
        hovertemplate=f"{hover}{where}<br>{value} %{{z:.3f}}<extra></extra>",
    )


def _heads_title(title: str, note: str, shared: bool) -> str:
    parts = (
        [title, "click a head to open it in Compare"]
        if title
        else ["Click a head to open it in Compare"]
    )
    if shared:
        parts.append("titles coloured by key/value group")
    return with_note(" · ".join(parts), note)


def _head_cells(rows, heads, kv_group, columns, labels, row_label, shared) -> list[dict]:
    """Each small heatmap in display order (row-major): where its map is, its title, hover
    and its key/value group's colour."""
    cells = []
    for i, row in enumerate(rows):
        for head in (columns or {}).get(row, heads):
            j = heads.index(head)
            suffix, line = labels.get((row, head), ("", ""))
            kv = f" kv{kv_group[j]}" if shared else ""
            cells.append(
                {
                    "row": i,
                    "column": j,
                    "title": f"{row_label[0]}{row} h{head}{kv}{suffix}",
                    "hover": f"{row_label} {row} head {head}" + (f"<br>{line}" if line else ""),
                    "colour": PALETTE[kv_group[j] % len(PALETTE)],
                }
            )
    return cells


def rollout_figure(
    relevance_a: np.ndarray,
    relevance_b: np.ndarray | None,
    tokens: list[str],
    names: tuple[str, str],
    title: str = "Attention rollout (Abnar & Zuidema 2020): relevance of each token to the summary position",
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
        title=title,
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
