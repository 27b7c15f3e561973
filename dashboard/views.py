"""What each tab shows, as functions of the study data and a selection (no Dash here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from urllib.parse import parse_qsl, urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attention_lab.analysis.rollout import token_relevance
from dashboard import figures
from dashboard.data import StudyData

TABS = ("compare", "heads", "metrics", "rollout", "cross")
# The dashboard's controls, named once: Dash component id -> Selection field.
CONTROLS = {
    "tabs": "tab",
    "variant-a": "a",
    "variant-b": "b",
    "example": "example",
    "kind": "kind",
    "layer": "layer",
    "head": "head",
    "log": "log",
    "metric": "metric",
    "scope": "scope",
}


@dataclass(frozen=True)
class Selection:
    """Everything a view depends on; it round-trips through the URL query string."""

    tab: str = "compare"
    a: str = ""
    b: str = ""
    example: str = ""
    kind: str = ""
    layer: int = 0
    head: str = "mean"  # a head index as text, or "mean" over heads
    log: bool = False
    metric: str = "normalized_entropy"
    scope: str = "layer"  # heads tab: "layer" (one layer) or "model" (layer x head grid)

    def to_query(self) -> str:
        values = {k: (int(v) if isinstance(v, bool) else v) for k, v in asdict(self).items()}
        return "?" + urlencode(values)

    @classmethod
    def from_controls(cls, values) -> Selection:
        """From the controls' values, in :data:`CONTROLS` order (the log checklist is a list)."""
        raw = dict(zip(CONTROLS.values(), values, strict=True))
        raw["log"] = "log" in (raw["log"] or [])
        raw["layer"] = _as_layer(raw["layer"])
        raw["head"] = None if raw["head"] is None else str(raw["head"])
        return cls(**{k: v for k, v in raw.items() if v is not None})

    def control_values(self) -> list:
        """The controls' values, in :data:`CONTROLS` order."""
        values = asdict(self) | {"log": ["log"] if self.log else []}
        return [values[field] for field in CONTROLS.values()]

    @classmethod
    def from_query(cls, search: str | None) -> Selection:
        raw = dict(parse_qsl((search or "").lstrip("?")))
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if "layer" in known:
            known["layer"] = _as_layer(known["layer"])
        if "log" in known:
            known["log"] = known["log"] in ("1", "true", "True")
        return cls(**known)


def _as_layer(value) -> int:
    """A layer index from a control or the URL; anything else is layer 0."""
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else 0


def resolve(data: StudyData, selection: Selection) -> tuple[Selection, list[str]]:
    """Fill defaults and replace unknown values, returning messages for the user."""
    notes, variants = [], data.variants
    a = selection.a or data.reference
    # by default B is another variant of A's base model (maps of two models do not compare)
    same_model = [v for v in variants if v != a and data.reference_of(v) == data.reference_of(a)]
    b = selection.b or next(iter(same_model or [v for v in variants if v != a]), variants[0])
    for value in (a, b):
        if value not in variants:
            notes.append(
                f"Unknown variant {value!r} in the URL; this study has: {', '.join(variants)}."
            )
    a = a if a in variants else data.reference
    b = b if b in variants else variants[-1]
    ids = list(data.probe_set["id"])
    example = selection.example or ids[0]
    if example not in ids:
        notes.append(
            f"Unknown example {example!r} in the URL; showing the first probe example instead."
        )
        example = ids[0]
    meta = data.store(a).meta
    kind = selection.kind if selection.kind in meta["kinds"] else meta["kinds"][0]
    layer = selection.layer if selection.layer in meta["layers"] else meta["layers"][0]
    head = (
        selection.head
        if selection.head == "mean"
        or (selection.head.isdigit() and int(selection.head) in meta["heads"])
        else "mean"
    )
    tab = selection.tab if selection.tab in TABS else "compare"
    return replace(
        selection, tab=tab, a=a, b=b, example=example, kind=kind, layer=layer, head=head
    ), notes


def axis_tokens(meta: dict, kind: str) -> tuple[list[str], list[str]]:
    """(query tokens, key tokens) of one example for an attention kind."""
    encoder = meta["tokens"]
    decoder = meta.get("decoder", {}).get("tokens", encoder)
    return {
        "encoder": (encoder, encoder),
        "decoder": (decoder, decoder),
        "cross": (decoder, encoder),
    }[kind]


def head_map(
    data: StudyData, variant: str, selection: Selection
) -> tuple[np.ndarray, list[str], list[str]]:
    """The [query, key] map shown for ``variant``: one head, or the mean over heads. Reads one chunk."""
    store = data.store(variant)
    li = store.meta["layers"].index(selection.layer)
    if selection.head == "mean":
        values = store.attention(selection.example, selection.kind, layer=li).mean(axis=0)
    else:
        values = store.attention(
            selection.example,
            selection.kind,
            layer=li,
            head=store.meta["heads"].index(int(selection.head)),
        )
    q, k = axis_tokens(store.example_meta(selection.example), selection.kind)
    return values, q, k


def _pair(data: StudyData, selection: Selection):
    a, q, k = head_map(data, selection.a, selection)
    b, q_b, k_b = head_map(data, selection.b, selection)
    return (a, b, q, k) if (q, k) == (q_b, k_b) else None


def compare_view(data: StudyData, selection: Selection) -> dict | go.Figure:
    """A, B and B − A for one example, kind, layer and head (reads one chunk per variant)."""
    pair = _pair(data, selection)
    if pair is None:
        return figures.message_figure(
            f"{selection.a} and {selection.b} tokenize this example differently: no difference to show."
        )
    a, b, q, k = pair
    head = "mean over heads" if selection.head == "mean" else f"head {selection.head}"
    title = f"{selection.kind} attention · layer {selection.layer} · {head}"
    return figures.compare_figure(a, b, q, k, (selection.a, selection.b), selection.log, title)


def compare_table(data: StudyData, selection: Selection) -> pd.DataFrame | None:
    """The matrices of the compare view as a long table (the CSV export)."""
    pair = _pair(data, selection)
    if pair is None:
        return None
    a, b, q, k = pair
    qi, ki = (x.ravel() for x in np.indices(a.shape))
    return pd.DataFrame(
        {
            "query_index": qi,
            "query_token": np.asarray(q)[qi],
            "key_index": ki,
            "key_token": np.asarray(k)[ki],
            selection.a: a.ravel(),
            selection.b: b.ravel(),
            f"{selection.b}_minus_{selection.a}": (b - a).ravel(),
        }
    )


def heads_view(data: StudyData, selection: Selection) -> go.Figure:
    """All heads of one layer, or the whole model as a layer x head grid, for variant A."""
    store = data.store(selection.a)
    meta = store.meta
    if selection.scope == "model":
        maps, rows = store.attention(selection.example, selection.kind), meta["layers"]
    else:
        li = meta["layers"].index(selection.layer)
        maps, rows = (
            store.attention(selection.example, selection.kind, layer=li)[None],
            [selection.layer],
        )
    return figures.heads_grid_figure(maps, rows, meta["heads"], meta["kv_group"])


def clicked_head(data: StudyData, selection: Selection, curve: int) -> tuple[int, int]:
    """(layer, head) of the ``curve``-th small heatmap of :func:`heads_view` (row-major)."""
    meta = data.store(selection.a).meta
    heads = meta["heads"]
    rows = meta["layers"] if selection.scope == "model" else [selection.layer]
    return rows[curve // len(heads)], heads[curve % len(heads)]


def metrics_view(
    data: StudyData, selection: Selection
) -> tuple[go.Figure, go.Figure, go.Figure, list[dict]]:
    """Metric heatmaps (A, B, B − A), similarity to the reference per layer, the performance table."""
    head_metrics = data.table("all_head_metrics")
    kind = (
        selection.kind
        if selection.kind in set(head_metrics["kind"])
        else head_metrics["kind"].iloc[0]
    )
    rows = head_metrics[head_metrics["kind"] == kind]

    def grid(variant: str) -> pd.DataFrame:
        return rows[rows["variant"] == variant].pivot_table(
            index="layer", columns="head", values=selection.metric
        )

    grid_a, grid_b = grid(selection.a), grid(selection.b)
    metric_fig = figures.metric_grid_figure(
        grid_a.to_numpy(),
        grid_b.reindex_like(grid_a).to_numpy(),
        list(grid_a.index),
        list(grid_a.columns),
        (selection.a, selection.b),
        selection.metric,
    )
    return (
        metric_fig,
        data.figure("similarity_figure"),  # as the analysis pipeline drew them
        data.figure("performance_figure"),
        data.table("performance").round(4).to_dict("records"),
    )


def rollout_view(data: StudyData, selection: Selection) -> go.Figure:
    """Token relevance after each layer for A and B (self-attention of the chosen kind)."""
    kind = "encoder" if selection.kind == "cross" else selection.kind
    causal = kind == "decoder"
    rel = [
        token_relevance(data.store(v).attention(selection.example, kind), causal)
        for v in (selection.a, selection.b)
    ]
    tokens = axis_tokens(data.store(selection.a).example_meta(selection.example), kind)[1]
    same = rel[0].shape == rel[1].shape
    return figures.rollout_figure(
        rel[0], rel[1] if same else None, tokens, (selection.a, selection.b)
    )


def cross_view(data: StudyData, selection: Selection) -> go.Figure:
    """Decoder tokens x encoder tokens for variant A, when its store has cross-attention."""
    if "cross" not in data.store(selection.a).kinds:
        return figures.message_figure(
            f"{selection.a} has no cross-attention (it is not an encoder-decoder model)."
        )
    values, q, k = head_map(data, selection.a, replace(selection, kind="cross"))
    head = "mean over heads" if selection.head == "mean" else f"head {selection.head}"
    return figures.single_figure(
        values,
        q,
        k,
        f"{selection.a}: cross-attention · layer {selection.layer} · {head}",
        selection.log,
    )


def example_options(data: StudyData, label: str | None = None) -> list[dict]:
    """Dropdown options for the example picker (searchable by text), optionally one label only."""
    probes = data.probe_set
    if label:
        probes = probes[probes["label_name"] == label]
    return [
        {"label": f"[{row.label_name or row.source}] {row.text[:90]}", "value": row.id}
        for row in probes.itertuples()
    ]
