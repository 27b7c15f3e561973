"""Page layout: controls on top, one tab per view. Built per page load from the URL's selection."""

from __future__ import annotations

from dash import dash_table, dcc, html

from attention_lab.analysis.metrics import METRICS
from attention_lab.datasets.store import StoreMeta
from dashboard.data import MissingArtifact, StudyData
from dashboard.maps import HEAD_MEAN
from dashboard.seed_mean import SEED_MEAN
from dashboard.selection import CONTROLS, HEAD_FUNCTIONS, Selection, store_of
from dashboard.views import example_options

# every head metric of the analysis, the default first
METRIC_CHOICES = ["normalized_entropy", *(m for m in METRICS if m != "normalized_entropy")]
GRAPH_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "attention"},
}
MEASURE_CHOICES = {"weights": "weights", "norms": "norms"}  # the titles say ‖αf(x)‖
SCOPE_CHOICES = {"layer": "one layer", "model": "whole model"}
ORDER_CHOICES = {"natural": "natural", "matched": "by match"}  # to the reference heads
POOL_CHOICES = {"max": "max", "mean": "mean"}  # how a block of tokens becomes one cell
ID = {field: control for control, field in CONTROLS.items()}  # Selection field -> component id
BOX = {"display": "inline-block", "marginRight": "14px", "verticalAlign": "top"}


def _labelled(label: str, component, width: str = "180px") -> html.Div | html.Span:
    """A labelled control. A Selection field's control sits in an inline box ``{id}-box``
    that the tabs show or hide (:func:`dashboard.registry.shows`); the box carries no style
    of its own, since an inline ``display`` would override the ``hidden`` attribute."""
    control = getattr(component, "id", None)
    labelled = html.Div(
        [html.Label(label, style={"fontSize": "12px", "color": "#555"}), component],
        style={**BOX, "width": width},
    )
    return html.Span(labelled, id=f"{control}-box") if control in CONTROLS else labelled


def missing_page(problem: MissingArtifact) -> html.Div:
    return html.Div(
        id="missing-artifacts",
        style={"padding": "40px", "fontFamily": "system-ui, sans-serif"},
        children=[
            html.H2("Attention Lab: nothing to show yet"),
            html.P(str(problem)),
            html.Pre(
                problem.command,
                style={"background": "#f4f4f4", "padding": "12px", "fontSize": "16px"},
            ),
            html.P("Then reload this page."),
        ],
    )


def notes_block(notes: list[str]) -> list[html.Div]:
    style = {"background": "#fff3cd", "padding": "6px 10px", "margin": "4px 0"}
    return [html.Div(n, className="url-note", style=style) for n in notes]


def page(data: StudyData, selection: Selection) -> html.Div:
    return html.Div(
        style={"fontFamily": "system-ui, sans-serif", "padding": "0 18px"},
        children=[
            html.H2("Attention Lab", style={"marginBottom": "0"}),
            html.Div(
                f"env: {data.env or 'local'} · {len(data.variants)} variants · reference {data.reference} · "
                f"{len(data.probe_set)} probe examples",
                style={"color": "#666"},
            ),
            html.Div(id="url-notes"),
            controls(data, selection),
            tabs(selection),
        ],
    )


def controls(data: StudyData, selection: Selection) -> html.Div:
    """The selection's controls (ids as in :data:`dashboard.selection.CONTROLS`)."""
    return html.Div(
        style={"padding": "8px 0"},
        children=[*study_controls(data, selection), html.Br(), *map_controls(data, selection)],
    )


def study_controls(data: StudyData, selection: Selection) -> list[html.Div]:
    """Which variants, which probe example, and which part of its maps (the zoom)."""
    variants = [{"label": v, "value": v} for v in data.variants]
    # each run's own maps, or their mean over the seeds (an aggregate, named as one)
    seeds = [{"label": f"seed {s}", "value": str(s)} for s in data.seeds]
    seeds += [{"label": "mean over seeds", "value": SEED_MEAN}] if len(data.seeds) > 1 else []
    return [
        _labelled("Variant A", dcc.Dropdown(variants, selection.a, id=ID["a"], clearable=False)),
        _labelled(
            "Seed of A",
            dcc.Dropdown(seeds, selection.seed_a, id=ID["seed_a"], clearable=False),
            "120px",
        ),
        _labelled("Variant B", dcc.Dropdown(variants, selection.b, id=ID["b"], clearable=False)),
        _labelled(
            "Seed of B",
            dcc.Dropdown(seeds, selection.seed_b, id=ID["seed_b"], clearable=False),
            "120px",
        ),
        *_example_controls(data, selection),
    ]


def _example_controls(data: StudyData, selection: Selection) -> list[html.Div]:
    """The label filter, the probe example and the zoom into its maps."""
    return [
        _labelled(
            "Label filter",
            dcc.Dropdown(
                [{"label": x, "value": x} for x in data.labels],
                None,
                id="label-filter",
                placeholder="all labels",
            ),
            "140px",
        ),
        _labelled(
            "Example (type to search)",
            dcc.Dropdown(
                example_options(data),
                selection.example,
                id=ID["example"],
                clearable=False,
                searchable=True,
            ),
            "400px",
        ),
        _labelled(
            "Zoom: queries, keys",
            dcc.Input(
                id=ID["region"],
                value=selection.region,
                type="text",
                debounce=True,
                placeholder="all, or drag on a map",
                style={"width": "100%", "height": "34px", "boxSizing": "border-box"},
            ),
            "190px",
        ),
    ]


def map_controls(data: StudyData, selection: Selection) -> list[html.Div]:
    """Which map (kind, measure, layer, head) and how to show it."""
    meta = store_of(data, selection, "a").meta  # root metadata of one store only
    return [*_map_pickers(meta, selection), *_view_options(selection)]


def _map_pickers(meta: StoreMeta, selection: Selection) -> list[html.Div]:
    """Kind (base kinds only: the measure picks weights or norms), layer and head."""
    heads = [{"label": "mean", "value": HEAD_MEAN}]
    heads += [{"label": str(h), "value": str(h)} for h in meta.heads]
    return [
        _labelled(
            "Attention",
            dcc.Dropdown(meta.base_kinds, selection.kind, id=ID["kind"], clearable=False),
            "130px",
        ),
        _radio("Measure", MEASURE_CHOICES, selection.measure, "measure", "110px"),
        _labelled(
            "Layer",
            dcc.Dropdown(meta.layers, selection.layer, id=ID["layer"], clearable=False),
            "90px",
        ),
        _labelled(
            "Head",
            dcc.Dropdown(heads, selection.head, id=ID["head"], clearable=False),
            "100px",
        ),
    ]


def _view_options(selection: Selection) -> list[html.Div]:
    """Log scale, the pooling of long maps, the heads view's scope and order, the metric."""
    return [
        _labelled(
            "Scale",
            dcc.Checklist(
                [{"label": " log", "value": "log"}], ["log"] if selection.log else [], id=ID["log"]
            ),
            "70px",
        ),
        _radio("Blocks", POOL_CHOICES, selection.pool, "pool", "110px"),
        _radio("Heads view", SCOPE_CHOICES, selection.scope, "scope", "220px"),
        _radio("Heads order", ORDER_CHOICES, selection.order, "order", "140px"),
        _labelled(
            "Metric",
            dcc.Dropdown(METRIC_CHOICES, selection.metric, id=ID["metric"], clearable=False),
            "200px",
        ),
        _labelled(
            "Head function",
            dcc.Dropdown(
                list(HEAD_FUNCTIONS), selection.function, id=ID["function"], clearable=False
            ),
            "170px",
        ),
    ]


def _radio(label: str, choices: dict[str, str], value: str, field: str, width: str) -> html.Div:
    options = [{"label": f" {text}", "value": key} for key, text in choices.items()]
    return _labelled(label, dcc.RadioItems(options, value, id=ID[field], inline=True), width)


def tabs(selection: Selection) -> dcc.Tabs:
    return dcc.Tabs(
        id=ID["tab"],
        value=selection.tab,
        children=[
            _compare_tab(),
            _graph_tab("Heads", "heads", "heads-graph"),
            _metrics_tab(),
            _functions_tab(),
            _graph_tab("Rollout", "rollout", "rollout-graph"),
            _graph_tab("Cross-attention", "cross", "cross-graph", loading=False),
        ],
    )


def _graph_tab(label: str, value: str, graph: str, loading: bool = True) -> dcc.Tab:
    figure = dcc.Graph(id=graph, config=GRAPH_CONFIG)
    return dcc.Tab(label=label, value=value, children=[dcc.Loading(figure) if loading else figure])


def _compare_tab() -> dcc.Tab:
    return dcc.Tab(
        label="Compare",
        value="compare",
        children=[
            html.Button(
                "Export CSV of the matrices shown", id="export-csv", style={"margin": "8px 0"}
            ),
            dcc.Download(id="download-csv"),
            dcc.Loading(dcc.Graph(id="compare-graph", config=GRAPH_CONFIG)),
        ],
    )


def _functions_tab() -> dcc.Tab:
    graphs = [dcc.Graph(id=g, config=GRAPH_CONFIG) for g in ("functions-graph", "ablation-graph")]
    return dcc.Tab(label="Functions", value="functions", children=[dcc.Loading(graphs)])


def _metrics_tab() -> dcc.Tab:
    return dcc.Tab(
        label="Metrics",
        value="metrics",
        children=[
            html.Div(id="metrics-message"),
            dcc.Graph(id="metric-graph", config=GRAPH_CONFIG),
            dcc.Graph(id="similarity-graph", config=GRAPH_CONFIG),
            dcc.Graph(id="performance-graph", config=GRAPH_CONFIG),
            dash_table.DataTable(
                id="performance-table",
                sort_action="native",
                style_table={"overflowX": "auto"},
                style_cell={"fontFamily": "system-ui", "fontSize": "12px"},
            ),
        ],
    )
