"""Plotly figures of the analysis, saved through kedro-datasets so kedro-viz previews them."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attention_lab.kinds import SELF_ATTENTION_KINDS


def layer_head_grids(
    table: pd.DataFrame,
    value: str,
    title: str,
    colorscale: str = "Viridis",
    marks: str | None = None,
    midpoint: float | None = None,
) -> go.Figure:
    """One layer x head heatmap of ``value`` per variant, on one shared colour scale.

    ``marks`` names a boolean column: its true cells get a marker (e.g. significant changes).
    ``midpoint`` centres a diverging scale there (symmetric limits).
    """
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
    if midpoint is not None:
        reach = max(abs(lo - midpoint), abs(hi - midpoint))
        lo, hi = midpoint - reach, midpoint + reach
    for i, variant in enumerate(variants):
        rows_of = table[table["variant"] == variant]
        grid = rows_of.pivot_table(index="layer", columns="head", values=value)
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
        if marks is not None:
            fig.add_trace(_marks(rows_of, marks, i == 0), row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(title=title, coloraxis={"colorscale": colorscale}, height=320 * rows + 80)
    fig.update_xaxes(title_text="head", dtick=1 if table["head"].nunique() <= 12 else None)
    fig.update_yaxes(title_text="layer", autorange="reversed")
    return fig


def _marks(table: pd.DataFrame, column: str, legend: bool) -> go.Scatter:
    """× on the (head, layer) cells where ``column`` is true."""
    marked = table[table[column].astype(bool)]
    return go.Scatter(
        x=marked["head"],
        y=marked["layer"],
        mode="markers",
        marker={"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": "black"}},
        name=column,
        showlegend=legend,
        hoverinfo="skip",
    )


def head_metric_heatmaps(
    head_metrics: pd.DataFrame, metric: str = "normalized_entropy"
) -> go.Figure:
    """A layer x head heatmap of ``metric`` for every variant (self-attention)."""
    data = head_metrics[head_metrics["kind"].isin(SELF_ATTENTION_KINDS)]
    return layer_head_grids(data, metric, f"{metric.replace('_', ' ')} per layer and head")


def similarity_by_layer_figure(similarity_by_layer: pd.DataFrame) -> go.Figure:
    """Mean cosine similarity to the reference per layer, one panel per variant and one colour
    per kind, with its 95% band over seeds and probe examples; dotted, in the same colour, the
    variant's noise floor: the similarity between its own seeds, with its band. A diamond marks
    a layer whose band lies wholly below its floor's."""
    data = similarity_by_layer[similarity_by_layer["variant"] != similarity_by_layer["reference"]]
    references = list(dict.fromkeys(similarity_by_layer["reference"]))
    if len(references) == 1:
        to = repr(references[0])
    else:  # variants of several base models, each against its own model's reference
        to, data = (
            "each variant's reference",
            data.assign(variant=data["variant"] + " vs " + data["reference"]),
        )
    variants = list(dict.fromkeys(data["variant"])) or ["(no variant but the reference)"]
    cols = min(3, len(variants))
    rows = -(-len(variants) // cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=variants, shared_yaxes=True, vertical_spacing=0.12
    )
    colours = dict(zip(dict.fromkeys(data["kind"]), px.colors.qualitative.Plotly, strict=False))
    for i, variant in enumerate(variants):
        cell = {"row": i // cols + 1, "col": i % cols + 1}
        for kind, line in data[data["variant"] == variant].groupby("kind", sort=False):
            for trace in _similarity_traces(line, kind, colours[kind], legend=i == 0):
                fig.add_trace(trace, **cell)
    seeds = int(similarity_by_layer["n_seeds"].max()) if "n_seeds" in similarity_by_layer else 1
    fig.update_layout(
        title={
            "text": f"Attention similarity to {to} per layer, against the seed noise floor",
            "subtitle": {
                "text": f"cosine of flattened maps; bands: 95% intervals over {seeds} seed(s) "
                "and the probes; dotted: between the variant's own seeds; ◆ below the floor "
                "by more than the intervals allow"
            },
        },
        height=300 * rows + 140,
        margin={"t": 110},
    )
    fig.update_xaxes(title_text="layer", dtick=1)
    fig.update_yaxes(title_text="mean cosine similarity", col=1)
    return fig


def _similarity_traces(line: pd.DataFrame, kind: str, colour: str, legend: bool) -> list:
    """Band and line of the similarity to the reference; band and dotted line of the floor."""
    changed = line["changed"] if "changed" in line else pd.Series(False, index=line.index)
    traces = []
    if "cosine_ci_low" in line:
        traces.append(_band(line, "cosine", colour, kind))
    if line.get("seed_similarity", pd.Series(dtype=float)).notna().any():
        traces += [
            _band(line, "seed", colour, kind, opacity=0.1),
            _floor(line, colour, kind, legend),
        ]
    traces.append(
        go.Scatter(
            x=line["layer"],
            y=line["cosine_similarity"],
            mode="lines+markers",
            name=f"{kind}: to the reference",
            legendgroup=kind,
            showlegend=legend,
            line={"color": colour},
            marker={
                "symbol": ["diamond" if c else "circle" for c in changed],
                "size": [11 if c else 6 for c in changed],
            },
        )
    )
    return traces


def _band(line: pd.DataFrame, prefix: str, colour: str, name: str, opacity=0.2) -> go.Scatter:
    """A filled polygon from the low edge left to right, back along the high edge."""
    x = [*line["layer"], *line["layer"][::-1]]
    y = [*line[f"{prefix}_ci_low"], *line[f"{prefix}_ci_high"][::-1]]
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        fill="toself",
        fillcolor=colour,
        opacity=opacity,
        line={"width": 0},
        hoverinfo="skip",
        legendgroup=name,
        showlegend=False,
    )


def _floor(line: pd.DataFrame, colour: str, kind: str, legend: bool) -> go.Scatter:
    return go.Scatter(
        x=line["layer"],
        y=line["seed_similarity"],
        mode="lines",
        name=f"{kind}: between seeds",
        legendgroup=kind,
        showlegend=legend,
        line={"color": colour, "dash": "dot"},
    )


def head_changes_figure(
    head_changes: pd.DataFrame, metric: str = "normalized_entropy"
) -> go.Figure:
    """The change of ``metric`` against the reference per layer and head; × marks the heads
    whose change is significant after Benjamini–Hochberg."""
    kinds = [k for k in SELF_ATTENTION_KINDS if k in set(head_changes["kind"])]
    # one kind per figure: an encoder-decoder's encoder and decoder heads share (layer, head)
    data = (
        head_changes[(head_changes["metric"] == metric) & (head_changes["kind"] == kinds[0])]
        if kinds
        else head_changes.iloc[:0]
    )
    if data.empty:
        return go.Figure().update_layout(title=f"Head changes: no {metric} to compare")
    return layer_head_grids(
        data,
        "effect",
        f"Change of {kinds[0]} {metric.replace('_', ' ')} against the reference (variant − reference); "
        "× significant at the study's FDR",
        "RdBu_r",
        marks="significant",
        midpoint=0.0,
    )


# inference costs the performance figure shows where the study measured them
COST_PANELS = {
    "kv_bytes_per_token": "KV-cache bytes per token",
    "prefill_tokens_per_s": "prefill tokens/s",
    "decode_tokens_per_s": "decode tokens/s (CPU: bound by weight reads)",
    "inference_peak_memory_mb": "inference peak memory, MB",
}


def performance_figure(performance: pd.DataFrame) -> go.Figure:
    """Task metric per variant, the mean over seeds with its 95% interval over seeds and test
    examples as error bars; the training cost; and, where measured, what each variant costs
    at inference (KV bytes per token, prefill and decode speed, peak memory)."""
    metric = (
        "accuracy"
        if "accuracy" in performance
        else ("perplexity" if "perplexity" in performance else "eval_loss")
    )
    seeds = int(performance["n_seeds"].max()) if "n_seeds" in performance else 1
    panels = {
        metric: f"{metric}: mean and 95% interval over {seeds} seed(s) and the test examples",
        "train_seconds": "train seconds (mean over seeds)",
    } | {c: t for c, t in COST_PANELS.items() if c in performance and performance[c].notna().any()}
    cols = 3 if len(panels) > 2 else 2
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(panels.values()))
    for i, column in enumerate(panels):
        errors = (
            {
                "type": "data",
                "symmetric": False,
                "array": performance[f"{column}_ci_high"] - performance[column],
                "arrayminus": performance[column] - performance[f"{column}_ci_low"],
            }
            if f"{column}_ci_low" in performance
            else None
        )
        bar = go.Bar(
            x=performance["variant"],
            y=performance[column],
            name=column,
            error_y=errors,
            text=performance[column].round(3) if column == metric else None,
            textposition="inside",
            insidetextanchor="start",  # at the foot of the bar, clear of the error bar
        )
        fig.add_trace(bar, row=i // cols + 1, col=i % cols + 1)
        values = performance[column].dropna()
        if column == "perplexity" and len(values) and values.max() > 100 * values.min() > 0:
            # a broken variant (thousands) would flatten every working one (tens) to nothing
            fig.update_yaxes(type="log", row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(title="Performance and cost per variant", showlegend=False, height=380 * rows)
    fig.update_annotations(font_size=12)  # the long first title stays within its panel
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


def pruning_figure(pruning_curves: pd.DataFrame) -> go.Figure:
    """Test accuracy against the fraction of heads pruned, least important first."""
    if pruning_curves.empty:
        return go.Figure().update_layout(title="Pruning curves: no fine-tuned classifier")
    fig = px.line(
        pruning_curves,
        x="fraction_pruned",
        y="accuracy",
        color="variant",
        markers=True,
        title="Accuracy as heads are pruned, least important first (Michel et al. 2019)",
    )
    fig.update_xaxes(title_text="fraction of heads pruned", tickformat=".0%")
    fig.update_yaxes(
        title_text=f"accuracy on {int(pruning_curves['test_examples'].iloc[0])} test examples"
    )
    return fig


def sinks_figure(attention_sinks: pd.DataFrame) -> go.Figure:
    """Mean attention to the first token per layer; the legend gives each variant's sink rate
    as Gu et al. (2024) define it (attention weights)."""
    weights = attention_sinks[~attention_sinks["kind"].str.endswith("_norm")]
    rates = weights.groupby("variant")["sink_rate_gu"].mean()
    data = attention_sinks.assign(
        variant=attention_sinks["variant"].map(
            lambda v: f"{v} (sink rate, Gu et al.: {rates[v]:.0%})"
        )
    )
    fig = px.line(
        data,
        x="layer",
        y="first_token_mass",
        color="variant",
        line_dash="kind",
        markers=True,
        title="Attention to the first token per layer (mean over heads and probes)",
    )
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(title_text="first-token mass", range=[0, 1])
    return fig


def head_functions_figure(head_functions: pd.DataFrame) -> go.Figure:
    """Each head's prefix-matching score (Olsson et al. 2022) per variant: where the induction
    heads sit."""
    scores = head_functions[head_functions["function"] == "prefix_matching"]
    if scores.empty:
        return go.Figure().update_layout(title="Head functions: none detected in this study")
    return layer_head_grids(
        scores,
        "score",
        "Prefix matching (Olsson et al. 2022): attention to the token after the earlier "
        "occurrence, on repeated random tokens",
        "Viridis",
    )


def ablation_figure(summary: pd.DataFrame) -> go.Figure:
    """Per function (induction: loss on the repeated half; retrieval: needle-copy accuracy),
    the measure as its top-k heads are ablated (solid) against k random heads of the same
    layers (dotted), one colour per variant; error bars: the 95% interval of the difference
    over probes."""
    functions = list(dict.fromkeys(summary["function"])) if not summary.empty else []
    if not functions:
        return go.Figure().update_layout(
            title="Head-function ablations: no causal language model in this study"
        )
    measures = dict(zip(summary["function"], summary["measure"], strict=False))
    colours = {
        v: px.colors.qualitative.Plotly[i % 10]
        for i, v in enumerate(dict.fromkeys(summary["variant"]))
    }
    fig = make_subplots(
        rows=1, cols=len(functions), subplot_titles=[f"{f}: {measures[f]}" for f in functions]
    )
    for col, function in enumerate(functions, start=1):
        rows_of = summary[summary["function"] == function]
        for variant, rows in rows_of.groupby("variant", sort=False):
            for trace in _ablation_traces(rows, variant, colours[variant], legend=col == 1):
                fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(title_text="heads ablated (k)", type="log", tickvals=sorted(set(summary["k"])))
    return fig.update_layout(title="Ablating each function's top heads against random heads")


def _ablation_traces(rows: pd.DataFrame, variant: str, colour: str, legend: bool):
    """A variant's top-k ablation (solid, with the difference's interval) and its random-heads
    control (dotted)."""
    errors = {
        "type": "data",
        "symmetric": False,
        "array": rows["ci_high"] - rows["difference"],
        "arrayminus": rows["difference"] - rows["ci_low"],
    }
    shared = {"x": rows["k"], "mode": "lines+markers", "legendgroup": variant, "showlegend": legend}
    return (
        go.Scatter(
            y=rows["top_ablated"],
            error_y=errors,
            line={"color": colour},
            name=f"{variant}: its top-k heads",
            **shared,
        ),
        go.Scatter(
            y=rows["random_ablated"],
            line={"color": colour, "dash": "dot"},
            name=f"{variant}: k random heads",
            **shared,
        ),
    )
