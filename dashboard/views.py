"""What each tab shows, as functions of the study data and a selection (no Dash here)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from urllib.parse import parse_qsl, urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attention_lab.analysis.function_changes import THRESHOLDS
from attention_lab.analysis.head_functions import FUNCTIONS
from attention_lab.analysis.metrics import METRICS
from attention_lab.analysis.rollout import token_relevance
from attention_lab.datasets.store import StoreMeta, token_sides
from attention_lab.kinds import AttentionKind, base_kind, norm_kind
from dashboard import blocks, figures, maps
from dashboard.data import MissingArtifact, StudyData
from dashboard.heads import (
    HeadOrder,
    function_badges,
    matched_order,
    merged_labels,
    natural_order,
    significant_heads,
    tested,
)
from dashboard.seed_mean import SEED_MEAN

TABS = ("compare", "heads", "metrics", "functions", "rollout", "cross")
# every head function the analysis scores (attention_lab.analysis.function_probes)
HEAD_FUNCTIONS = (*FUNCTIONS, "retrieval")
# The dashboard's controls, named once: Dash component id -> Selection field.
CONTROLS = {
    "tabs": "tab",
    "variant-a": "a",
    "variant-b": "b",
    "seed-a": "seed_a",
    "seed-b": "seed_b",
    "example": "example",
    "kind": "kind",
    "measure": "measure",
    "layer": "layer",
    "head": "head",
    "log": "log",
    "metric": "metric",
    "function": "function",
    "scope": "scope",
    "head-order": "order",
    "pooling": "pool",
    "zoom": "region",
}


# How a field is named in a message to the user.
NAMES = {
    "tab": "tab",
    "a": "variant A",
    "b": "variant B",
    "seed_a": "seed of A",
    "seed_b": "seed of B",
    "example": "example",
    "kind": "attention kind",
    "measure": "measure",
    "layer": "layer",
    "head": "head",
    "log": "log scale",
    "metric": "metric",
    "function": "head function",
    "scope": "heads view",
    "order": "head order",
    "pool": "pooling",
    "region": "zoom",
}
CHOICES = {
    "tab": TABS,
    "measure": ("weights", "norms"),
    "metric": METRICS,
    "function": HEAD_FUNCTIONS,
    "scope": ("layer", "model"),
    "order": ("natural", "matched"),
    "pool": blocks.POOLS,
}
# measure -> (how a title names it, the value's name in a hover, on a colour bar)
MEASURES = {
    "weights": ("attention weights", "weight", "w"),
    "norms": ("norm-based attention ‖αf(x)‖", "norm share", "‖αf‖"),
}
NO_NORMS = "Variant {} has no norm-based maps; extract with attention_extraction.norms: true."
FLAGS = {"1": True, "true": True, "True": True, "0": False, "false": False, "False": False}
NUMBER = re.compile(r"-?[0-9]{1,9}")


class BadSelection(ValueError):
    """A value the dashboard cannot show; its message is short and meant for the user."""


@dataclass(frozen=True)
class Selection:
    """Everything a view depends on; it round-trips through the URL query string."""

    tab: str = "compare"
    a: str = ""
    b: str = ""
    seed_a: str = ""  # a seed of study.seeds as text, or "mean": the mean map over A's seeds
    seed_b: str = ""
    example: str = ""
    kind: str = ""  # a base kind: encoder, decoder or cross
    measure: str = "weights"  # "weights", or "norms": the <kind>_norm maps
    layer: int = 0
    head: str = "mean"  # a head index as text, or "mean" over heads
    log: bool = False
    metric: str = "normalized_entropy"
    function: str = "prefix_matching"  # functions tab: which head function's scores
    scope: str = "layer"  # heads tab: "layer" (one layer) or "model" (layer x head grid)
    order: str = "natural"  # heads tab: "natural", or "matched" to the reference's heads
    pool: str = "max"  # a map larger than the pixel budget: "max" or "mean" over token blocks
    region: str = ""  # zoom: "q0:q1,k0:k1", query and key tokens q0..q1 - 1, k0..k1 - 1; "": all

    @property
    def stored_kind(self) -> str:
        """The kind of map the store holds for this kind and measure (encoder_norm ...)."""
        return norm_kind(self.kind) if self.measure == "norms" else self.kind

    @property
    def measure_names(self) -> tuple[str, str, str]:
        """The measure as a title, a hover and a colour bar name it."""
        return MEASURES.get(self.measure, MEASURES["weights"])

    def to_query(self) -> str:
        values = {k: (int(v) if isinstance(v, bool) else v) for k, v in asdict(self).items()}
        return "?" + urlencode(values)

    @classmethod
    def from_controls(cls, values) -> Selection:
        """From the controls' values, in :data:`CONTROLS` order (the log checklist is a list).

        Raises :class:`BadSelection` naming the first value of the wrong type; whether the study
        holds the values is :func:`validate`'s question.
        """
        raw = dict(zip(CONTROLS.values(), values, strict=True))
        return cls(**{field: parse(field, value) for field, value in raw.items()})

    def control_values(self) -> list:
        """The controls' values, in :data:`CONTROLS` order."""
        values = asdict(self) | {"log": ["log"] if self.log else []}
        return [values[field] for field in CONTROLS.values()]

    @classmethod
    def from_query(cls, search) -> tuple[Selection, list[str]]:
        """From the URL's query string, with a note for each value that does not parse (dropped)."""
        if not isinstance(search, str | None):
            return cls(), [f"The URL's query must be text, got {show(search)}; showing defaults."]
        values, notes = {}, []
        for field, text in parse_qsl((search or "").lstrip("?")):
            if field not in NAMES:
                continue
            try:
                values[field] = parse(field, text)
            except BadSelection as problem:
                notes.append(f"{problem} The URL's value is ignored.")
        return cls(**values), notes


def _named(field: str) -> str:
    name = NAMES[field]
    return name[0].upper() + name[1:]


def show(value) -> str:
    """A value as a short phrase for a message: 'abc', 7, a list, a dict."""
    if isinstance(value, list | tuple | dict | set):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(field: str, value):
    """A control's or the URL's value as the type of Selection's ``field``, else BadSelection."""
    if field == "log":
        return _parse_log(value)
    if field == "region":
        return _parse_region(value)
    if field in ("seed_a", "seed_b") and value in (None, ""):
        return ""  # the study's first seed
    if value is None or value == "":
        raise BadSelection(f"No {NAMES[field]} chosen.")
    if field in ("layer", "head", "seed_a", "seed_b"):
        return _parse_number(field, value)
    if not isinstance(value, str):
        raise BadSelection(f"{_named(field)} must be text, got {show(value)}.")
    return value


def _parse_number(field: str, value) -> int | str:
    """A layer as an int; a head or a seed as text ("mean" or a number), as the dropdown holds it."""
    if field != "layer" and value == "mean":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and NUMBER.fullmatch(value):
        number = int(value)
    else:
        expected = "a whole number" + (" or 'mean'" if field != "layer" else "")
        raise BadSelection(f"{_named(field)} must be {expected}, got {show(value)}.")
    return number if field == "layer" else str(number)


def _parse_log(value) -> bool:
    """The log checklist's value (None or a list holding at most "log"), or the URL's 0/1."""
    if value is None:
        return False
    if isinstance(value, str) and value in FLAGS:
        return FLAGS[value]
    if isinstance(value, list) and all(v == "log" for v in value):
        return bool(value)
    raise BadSelection(f"{_named('log')} must be on or off, got {show(value)}.")


def _parse_region(value) -> str:
    """The zoom as "q0:q1,k0:k1", or "" (None, "") for the whole map."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadSelection(f"{_named('region')} must be text, got {show(value)}.")
    try:
        region = blocks.parse_region(value.strip())
    except ValueError as problem:
        if str(problem) == "empty":
            raise BadSelection(
                f"Zoom {show(value)} is empty: each first token must come before its end."
            ) from None
        raise BadSelection(
            f"Zoom must be 'first:end,first:end' (query tokens, then key tokens), got {show(value)}."
        ) from None
    return "" if region is None else "{}:{},{}:{}".format(*region)


def _span(values: list[int]) -> str:
    contiguous = values == list(range(values[0], values[-1] + 1))
    return f"{values[0]}–{values[-1]}" if contiguous else ", ".join(map(str, values))


# the fields looked up in a variant's store
STORED = ("kind", "measure", "layer", "head")


def _problem(data: StudyData, selection: Selection, field: str, stores=("a",)) -> str | None:
    """Why the study cannot show ``selection``'s ``field``, or None when it can.

    Kind, measure, layer and head are looked up in the stores of the variants named by ``stores``.
    """
    value = getattr(selection, field)
    if field in CHOICES and value not in CHOICES[field]:
        return f"Unknown {NAMES[field]} {show(value)}; choose one of: {', '.join(CHOICES[field])}."
    if field in ("a", "b") and value not in data.variants:
        return f"Unknown variant {show(value)}; this study has: {', '.join(data.variants)}."
    if (
        field in ("seed_a", "seed_b")
        and value not in ("", SEED_MEAN)
        and int(value) not in data.seeds
    ):
        seeds = ", ".join(map(str, data.seeds))
        return f"Unknown seed {show(value)}; this study has seeds {seeds}, or 'mean'."
    if field == "example" and value not in data.example_ids:
        return f"Unknown example {show(value)}: it is not in the probe set."
    if field in STORED:
        for side in stores:
            variant = getattr(selection, side)
            problem = _store_problem(store_of(data, selection, side).meta, variant, field, value)
            if problem:
                return problem
    return None


def _store_problem(meta: StoreMeta, variant: str, field: str, value) -> str | None:
    if field == "kind":
        return _kind_problem(meta, variant, value)
    if field == "measure":
        return None if value == "weights" or meta.has_norms else NO_NORMS.format(variant)
    if field == "head" and value == "mean":
        return None
    stored = getattr(meta, f"{field}s")  # layers or heads
    if value in (stored if field == "layer" else [str(h) for h in stored]):
        return None
    return (
        f"{_named(field)} {value} is out of range: variant {variant} has {field}s {_span(stored)}."
    )


def _kind_problem(meta: StoreMeta, variant: str, value) -> str | None:
    kinds = meta.base_kinds
    if value in kinds:
        return None
    if isinstance(value, str) and base_kind(value) in kinds:  # a norm kind, e.g. from a URL
        base = base_kind(value)
        return f"Attention kind {show(value)} is {base} with measure norms: choose those instead."
    return f"Variant {variant} has no {show(value)} attention; it has: {', '.join(kinds)}."


# variants (and their seeds) first: kind, measure, layer and head are looked up in their stores
ORDER = ("tab", "a", "b", "seed_a", "seed_b", "example", "kind", "measure", "layer", "head")
ORDER += ("metric", "function", "scope", "order")
ORDER += ("pool", "region")


def validate(data: StudyData, selection: Selection, fields=ORDER, stores=("a",)) -> Selection:
    """``selection`` if the study holds the values of ``fields``, else BadSelection saying why.

    ``stores`` names the variants whose stores must hold kind, measure, layer and head (the
    views that read B's maps pass ``("a", "b")``). Cheap: the variants, the probe ids and root metadata.
    """
    for field in ORDER:
        problem = _problem(data, selection, field, stores) if field in fields else None
        if problem:
            raise BadSelection(problem)
    return selection


def _default(data: StudyData, selection: Selection, field: str):
    if field == "a":
        return data.reference
    if field == "b":  # another variant of A's base model (maps of two models do not compare)
        a, variants = selection.a, data.variants
        same = [v for v in variants if v != a and data.reference_of(v) == data.reference_of(a)]
        return next(iter(same or [v for v in variants if v != a]), variants[0])
    if field in ("seed_a", "seed_b"):
        return str(data.seeds[0])  # a model's own maps by default; the mean is a choice
    if field == "example":
        return data.probe_set["id"].iloc[0]
    if field == "kind":
        return store_of(data, selection, "a").meta.base_kinds[0]
    if field == "layer":
        return store_of(data, selection, "a").meta.layers[0]
    return Selection.__dataclass_fields__[field].default


def resolve(data: StudyData, selection: Selection) -> tuple[Selection, list[str]]:
    """Fill unset fields with defaults and replace values the study does not hold, with a note
    for each replaced one."""
    notes = []
    for field in ORDER:
        unset = getattr(selection, field) == Selection.__dataclass_fields__[field].default
        problem = None if unset else _problem(data, selection, field)
        if unset or problem:
            selection = replace(selection, **{field: _default(data, selection, field)})
        if problem:
            notes.append(f"{problem} Showing {show(getattr(selection, field))} instead.")
    return selection, notes


def store_of(data: StudyData, selection: Selection, side: str):
    """The store of variant A or B (``side``) with its selected seed, or the mean over seeds."""
    seed = getattr(selection, f"seed_{side}") or None
    return data.store(getattr(selection, side), seed)


def run_name(selection: Selection, side: str) -> str:
    """How a figure names variant A or B: ``lora · seed 43``, ``lora · mean over seeds``."""
    seed = getattr(selection, f"seed_{side}")
    what = "mean over seeds" if seed == SEED_MEAN else f"seed {seed}" if seed else ""
    return f"{getattr(selection, side)} · {what}" if what else getattr(selection, side)


def run_key(selection: Selection, side: str) -> str:
    """A column name for variant A or B's run: ``lora_seed43``, ``lora_mean`` (``lora`` unset)."""
    seed = getattr(selection, f"seed_{side}")
    suffix = "_mean" if seed == SEED_MEAN else f"_seed{seed}" if seed else ""
    return getattr(selection, side) + suffix


def axis_tokens(meta: dict, kind: str) -> tuple[list[str], list[str]]:
    """(query tokens, key tokens) of one example for an attention kind (or its norm twin)."""
    queries, keys = token_sides(meta, kind)
    return queries["tokens"], keys["tokens"]


def _indices(store, selection: Selection) -> tuple[int, int | str]:
    """The stored layer index and head index (or "mean") of the selection."""
    li = store.meta.layers.index(selection.layer)
    head = "mean" if selection.head == "mean" else store.meta.heads.index(int(selection.head))
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
    head = "mean over heads" if selection.head == "mean" else f"head {selection.head}"
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
    return figures.metric_grid_figure(
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
    grids = figures.metric_grid_figure(
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


def _rollout_kind(selection: Selection) -> str:
    """Rollout needs self-attention: cross-attention stands for the encoder's."""
    kind = "encoder" if selection.kind == "cross" else selection.kind
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
