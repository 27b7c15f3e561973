"""The dashboard's selection: what the user picked, read from controls and URLs, checked
against the study, with one message per bad value (no Dash here)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, replace
from urllib.parse import parse_qsl, urlencode

from attention_lab.analysis.head_functions import FUNCTIONS
from attention_lab.analysis.metrics import METRICS
from attention_lab.datasets.store import StoreMeta
from attention_lab.kinds import base_kind, norm_kind
from dashboard import blocks
from dashboard.data import StudyData
from dashboard.maps import HEAD_MEAN
from dashboard.registry import TABS
from dashboard.seed_mean import SEED_MEAN

# every head function the analysis scores (attention_lab.analysis.function_probes)
HEAD_FUNCTIONS = (*FUNCTIONS, "retrieval")
# measure -> (how a title names it, the value's name in a hover, on a colour bar)
MEASURES = {
    "weights": ("attention weights", "weight", "w"),
    "norms": ("norm-based attention ‖αf(x)‖", "norm share", "‖αf‖"),
}
NO_NORMS = "Variant {} has no norm-based maps; extract with attention_extraction.norms: true."
FLAGS = {"1": True, "true": True, "True": True, "0": False, "false": False, "False": False}
NUMBER = re.compile(r"-?[0-9]{1,9}")


def _field(default, control: str, name: str, choices: tuple | None = None):
    """A :class:`Selection` field with what the dashboard needs to know of it: the Dash
    control that sets it, how a message names it, and its allowed values (a closed set)."""
    metadata = {"control": control, "name": name, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


class BadSelection(ValueError):
    """A value the dashboard cannot show; its message is short and meant for the user."""


@dataclass(frozen=True)
class Selection:
    """Everything a view depends on; it round-trips through the URL query string."""

    tab: str = _field("compare", "tabs", "tab", TABS)
    a: str = _field("", "variant-a", "variant A")
    b: str = _field("", "variant-b", "variant B")
    # a seed of study.seeds as text, or "mean": the mean map over A's seeds
    seed_a: str = _field("", "seed-a", "seed of A")
    seed_b: str = _field("", "seed-b", "seed of B")
    example: str = _field("", "example", "example")
    kind: str = _field("", "kind", "attention kind")  # a base kind: encoder, decoder or cross
    # "weights", or "norms": the <kind>_norm maps
    measure: str = _field("weights", "measure", "measure", ("weights", "norms"))
    layer: int = _field(0, "layer", "layer")
    head: str = _field(HEAD_MEAN, "head", "head")  # a head index as text, or "mean" over heads
    log: bool = _field(False, "log", "log scale")
    metric: str = _field("normalized_entropy", "metric", "metric", METRICS)
    # functions tab: which head function's scores
    function: str = _field("prefix_matching", "function", "head function", HEAD_FUNCTIONS)
    # heads tab: "layer" (one layer) or "model" (layer x head grid)
    scope: str = _field("layer", "scope", "heads view", ("layer", "model"))
    # heads tab: "natural", or "matched" to the reference's heads
    order: str = _field("natural", "head-order", "head order", ("natural", "matched"))
    # a map larger than the pixel budget: "max" or "mean" over token blocks
    pool: str = _field("max", "pooling", "pooling", blocks.POOLS)
    # zoom: "q0:q1,k0:k1", query and key tokens q0..q1 - 1, k0..k1 - 1; "": all
    region: str = _field("", "zoom", "zoom")

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


# read from the fields' metadata: Dash component id -> Selection field (the controls' order),
# how a field is named to the user, and the allowed values of the closed sets
_FIELDS = dataclasses.fields(Selection)
CONTROLS = {f.metadata["control"]: f.name for f in _FIELDS}
NAMES = {f.name: f.metadata["name"] for f in _FIELDS}
CHOICES = {f.name: f.metadata["choices"] for f in _FIELDS if f.metadata["choices"]}


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
    """A layer as an int; a head or a seed as text (its mean, or a number), as the dropdown holds it."""
    if value == {"head": HEAD_MEAN, "seed_a": SEED_MEAN, "seed_b": SEED_MEAN}.get(field):
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
    if field == "head" and value == HEAD_MEAN:
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
