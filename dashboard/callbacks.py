"""Thin Dash callbacks: read the controls, call a view, return its figures.

Each tab's figures are computed only while that tab is open; switching tabs (the ``tabs``
control is an input of every view) renders the newly opened one.

Every callback parses and validates what the browser sent (:mod:`dashboard.selection` does both)
before it reads anything, and answers a bad value with a short message where its figure goes:
a request can carry any JSON, and a traceback per bad request is what slowed the server down.
"""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import figures
from dashboard.data import MissingArtifact, StudyData
from dashboard.layout import notes_block
from dashboard.metric_views import functions_view, metrics_view
from dashboard.registry import TABS, VIEWS, shows
from dashboard.selection import CONTROLS, BadSelection, Selection, resolve, validate
from dashboard.views import (
    clicked_curve,
    clicked_head,
    compare_table,
    compare_view,
    cross_view,
    example_options,
    heads_view,
    rollout_view,
)
from dashboard.zoom import zoom_region

STATES = [State(c, "value") for c in CONTROLS]
# a bad value, or something a view cannot show (a missing artifact, two models' maps)
PROBLEMS = (BadSelection, MissingArtifact, KeyError, IndexError, ValueError)


def _message(problem: Exception) -> str:
    """One line for the user (a KeyError's str() is the repr of its message)."""
    if isinstance(problem, KeyError) and problem.args:
        return str(problem.args[0])
    return str(problem)


CONTROL_OF = {field: control for control, field in CONTROLS.items()}


def _selection(data: StudyData, values, tab: str) -> Selection:
    """The controls' values (in CONTROLS order), parsed and checked for what ``tab`` shows."""
    selection = Selection.from_controls(values)
    return validate(data, selection, ["tab", *VIEWS[tab].depends], VIEWS[tab].stores)


def _view(
    app: Dash,
    data: StudyData,
    tab: str,
    outputs: list[Output],
    failed=figures.message_figure,
):
    """Register ``view(selection)`` for ``outputs``: it runs when the tab opens or one of the
    controls it depends on changes, and only while ``tab`` is open.

    The selection is validated first; a problem becomes ``failed(message)``.
    """
    listened = ["tab", *VIEWS[tab].depends]
    order = listened + [f for f in CONTROLS.values() if f not in listened]
    inputs = [Input(CONTROL_OF[f], "value") for f in listened]
    states = [State(CONTROL_OF[f], "value") for f in order[len(listened) :]]
    skip = no_update if len(outputs) == 1 else (no_update,) * len(outputs)

    def decorate(view):
        @app.callback(*outputs, inputs=inputs, state=states)
        def render(*values):
            by_field = dict(zip(order, values, strict=True))
            if by_field["tab"] != tab and by_field["tab"] in TABS:
                return skip  # another tab is open
            try:
                return view(_selection(data, [by_field[f] for f in CONTROLS.values()], tab))
            except PROBLEMS as problem:
                return failed(_message(problem))

        return view

    return decorate


def register(app: Dash, data: StudyData) -> None:
    register_url(app, data)
    register_control_boxes(app)
    register_compare(app, data)
    register_heads(app, data)
    register_metrics(app, data)
    register_functions(app, data)
    _view(app, data, "rollout", [Output("rollout-graph", "figure")])(
        lambda s: rollout_view(data, s)
    )
    _view(app, data, "cross", [Output("cross-graph", "figure")])(lambda s: cross_view(data, s))
    register_zoom(app, data, "compare-graph", "compare")
    register_zoom(app, data, "cross-graph", "cross", kind="cross")


def register_control_boxes(app: Dash) -> None:
    """Each tab shows the controls of the fields its view reads, and hides the others."""
    fields = [field for field in CONTROLS.values() if field != "tab"]

    @app.callback(
        [Output(f"{CONTROL_OF[field]}-box", "hidden") for field in fields], Input("tabs", "value")
    )
    def show_controls(tab):
        return [not shows(tab, field) for field in fields]


def register_url(app: Dash, data: StudyData) -> None:
    keep_controls = [no_update] * len(CONTROLS)

    @app.callback(
        Output("url", "search"),
        Output("url-notes", "children"),
        [Output(c, "value", allow_duplicate=True) for c in CONTROLS],
        Input("url", "search"),
        [Input(c, "value") for c in CONTROLS],
        prevent_initial_call="initial_duplicate",
    )
    def sync_url(search, *values):
        """The selection lives in the URL, so a view can be shared and reloaded.

        On page load the URL sets the controls (unknown values are explained); after that,
        each control change rewrites the URL, unless a value is bad: then a note says why.
        """
        if ctx.triggered_id in (None, "url"):
            selection, parse_notes = Selection.from_query(search)
            selection, notes = resolve(data, selection)
            return no_update, notes_block(parse_notes + notes), *selection.control_values()
        try:
            query = validate(data, Selection.from_controls(values)).to_query()
        except PROBLEMS as problem:
            return no_update, notes_block([_message(problem)]), *keep_controls
        return query, [], *keep_controls

    @app.callback(Output("example", "options"), Input("label-filter", "value"))
    def filter_examples(label):
        """The examples of one label; a bad label keeps them all, under a disabled note."""
        try:
            return example_options(data, label)
        except PROBLEMS as problem:
            note = {"label": _message(problem), "value": "", "disabled": True}
            return [note, *example_options(data)]


def register_compare(app: Dash, data: StudyData) -> None:
    _view(app, data, "compare", [Output("compare-graph", "figure")])(
        lambda s: compare_view(data, s)
    )

    @app.callback(
        Output("download-csv", "data"),
        Output("compare-graph", "figure", allow_duplicate=True),
        Input("export-csv", "n_clicks"),
        STATES,
        prevent_initial_call=True,
    )
    def export_csv(_, *values):
        """The compare view's matrices as CSV; a bad value is explained in the compare graph."""
        try:
            s = _selection(data, values, "compare")
            table = compare_table(data, s)
        except PROBLEMS as problem:
            return no_update, figures.message_figure(_message(problem))
        if table is None:  # the figure already says why there is no difference
            return no_update, no_update
        return dcc.send_data_frame(table.to_csv, _csv_name(s, table), index=False), no_update


def _csv_name(s: Selection, table) -> str:
    """e.g. attention_e0_encoder_l1_h2_a-42_vs_b-mean.csv; a zoom and blocks add "_0-64_0-64_max13"."""
    runs = "_vs_".join(
        v + (f"-{seed}" if seed else "") for v, seed in ((s.a, s.seed_a), (s.b, s.seed_b))
    )
    parts = [f"attention_{s.example}_{s.stored_kind}_l{s.layer}_h{s.head}_{runs}"]
    if s.region:
        parts.append(s.region.replace(":", "-").replace(",", "_"))
    if table.attrs.get("blocks"):
        parts.append(table.attrs["blocks"])
    return "_".join(parts) + ".csv"


def register_heads(app: Dash, data: StudyData) -> None:
    _view(app, data, "heads", [Output("heads-graph", "figure")])(lambda s: heads_view(data, s))

    @app.callback(
        Output("tabs", "value", allow_duplicate=True),
        Output("layer", "value", allow_duplicate=True),
        Output("head", "value", allow_duplicate=True),
        Output("heads-graph", "figure", allow_duplicate=True),
        Input("heads-graph", "clickData"),
        STATES,
        prevent_initial_call=True,
    )
    def open_head(click, *values):
        """Clicking a small heatmap opens that layer and head in Compare."""
        try:
            selection = _selection(data, values, "heads")
            layer, head = clicked_head(data, selection, clicked_curve(click))
        except PROBLEMS as problem:
            return no_update, no_update, no_update, figures.message_figure(_message(problem))
        return "compare", layer, str(head), no_update


def register_metrics(app: Dash, data: StudyData) -> None:
    outputs = [
        Output("metric-graph", "figure"),
        Output("similarity-graph", "figure"),
        Output("performance-graph", "figure"),
        Output("performance-table", "data"),
        Output("metrics-message", "children"),
    ]

    def failed(message: str):
        problem = figures.message_figure(message)
        return problem, problem, problem, [], None

    @_view(app, data, "metrics", outputs, failed=failed)
    def metrics(selection: Selection):
        try:
            return (*metrics_view(data, selection), None)
        except MissingArtifact as exc:
            empty = figures.message_figure("No analysis results yet.")
            message = html.Div(
                [str(exc), html.Pre(exc.command)],
                className="missing-analysis",
                style={"background": "#fff3cd", "padding": "8px"},
            )
            return empty, empty, empty, [], message


def register_functions(app: Dash, data: StudyData) -> None:
    outputs = [Output("functions-graph", "figure"), Output("ablation-graph", "figure")]

    def failed(message: str):
        problem = figures.message_figure(message)
        return problem, problem

    _view(app, data, "functions", outputs, failed=failed)(lambda s: functions_view(data, s))


def register_zoom(app: Dash, data: StudyData, graph: str, tab: str, kind: str | None = None):
    """Zooming ``graph``'s map sets the zoom control, so the view redraws that region: at full
    resolution once it fits the pixel budget, with token labels once they fit; a double-click
    shows the whole map again. A bad zoom value is a message in the graph."""

    @app.callback(
        Output(CONTROL_OF["region"], "value", allow_duplicate=True),
        Output(graph, "figure", allow_duplicate=True),
        Input(graph, "relayoutData"),
        STATES,
        prevent_initial_call=True,
    )
    def zoom(relayout, *values):
        try:
            selection = _selection(data, values, tab)
            region = zoom_region(data, selection, relayout, kind)
        except PROBLEMS as problem:
            return no_update, figures.message_figure(_message(problem))
        if region is None or region == selection.region:
            return no_update, no_update
        return region, no_update
