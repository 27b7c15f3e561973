"""Thin Dash callbacks: read the controls, call a view, return its figures.

Each tab's figures are computed only while that tab is open; switching tabs (the ``tabs``
control is an input of every view) renders the newly opened one.
"""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import figures
from dashboard.data import MissingArtifact, StudyData
from dashboard.layout import notes_block
from dashboard.views import (
    CONTROLS,
    Selection,
    clicked_head,
    compare_table,
    compare_view,
    cross_view,
    example_options,
    heads_view,
    metrics_view,
    resolve,
    rollout_view,
)

INPUTS = [Input(c, "value") for c in CONTROLS]
STATES = [State(c, "value") for c in CONTROLS]


def _safe(fn):
    """Show a missing artifact or a bad request inside the figure instead of a traceback."""

    def wrapped(*args):
        try:
            return fn(*args)
        except (MissingArtifact, KeyError, IndexError, ValueError) as exc:
            return figures.message_figure(str(exc).strip("'\""))

    return wrapped


# the Selection fields each tab's figures depend on; other controls are read, not listened to
DEPENDS = {
    "compare": ("a", "b", "example", "kind", "layer", "head", "log"),
    "heads": ("a", "example", "kind", "layer", "scope"),
    "metrics": ("a", "b", "kind", "metric"),
    "rollout": ("a", "b", "example", "kind"),
    "cross": ("a", "example", "layer", "head", "log"),
}
CONTROL_OF = {field: control for control, field in CONTROLS.items()}


def _view(app: Dash, tab: str, outputs: list[Output]):
    """Register ``view(selection)`` for ``outputs``: it runs when the tab opens or one of the
    controls it depends on changes, and only while ``tab`` is open."""
    listened = ["tab", *DEPENDS[tab]]
    order = listened + [f for f in CONTROLS.values() if f not in listened]
    inputs = [Input(CONTROL_OF[f], "value") for f in listened]
    states = [State(CONTROL_OF[f], "value") for f in order[len(listened) :]]

    def decorate(view):
        @app.callback(*outputs, inputs=inputs, state=states)
        def render(*values):
            by_field = dict(zip(order, values, strict=True))
            selection = Selection.from_controls([by_field[f] for f in CONTROLS.values()])
            if selection.tab != tab:
                return no_update if len(outputs) == 1 else (no_update,) * len(outputs)
            return view(selection)

        return view

    return decorate


def register(app: Dash, data: StudyData) -> None:
    register_url(app, data)
    register_compare(app, data)
    register_heads(app, data)
    register_metrics(app, data)
    _view(app, "rollout", [Output("rollout-graph", "figure")])(
        _safe(lambda s: rollout_view(data, s))
    )
    _view(app, "cross", [Output("cross-graph", "figure")])(_safe(lambda s: cross_view(data, s)))


def register_url(app: Dash, data: StudyData) -> None:
    @app.callback(
        Output("url", "search"),
        Output("url-notes", "children"),
        [Output(c, "value", allow_duplicate=True) for c in CONTROLS],
        Input("url", "search"),
        INPUTS,
        prevent_initial_call="initial_duplicate",
    )
    def sync_url(search, *values):
        """The selection lives in the URL, so a view can be shared and reloaded.

        On page load the URL sets the controls (unknown values are explained); after that,
        each control change rewrites the URL.
        """
        if ctx.triggered_id in (None, "url"):
            selection, notes = resolve(data, Selection.from_query(search))
            return no_update, notes_block(notes), *selection.control_values()
        return Selection.from_controls(values).to_query(), [], *[no_update] * len(CONTROLS)

    @app.callback(Output("example", "options"), Input("label-filter", "value"))
    def filter_examples(label):
        return example_options(data, label)


def register_compare(app: Dash, data: StudyData) -> None:
    _view(app, "compare", [Output("compare-graph", "figure")])(
        _safe(lambda s: compare_view(data, s))
    )

    @app.callback(
        Output("download-csv", "data"),
        Input("export-csv", "n_clicks"),
        STATES,
        prevent_initial_call=True,
    )
    def export_csv(_, *values):
        selection = Selection.from_controls(values)
        table = compare_table(data, selection)
        if table is None:
            return no_update
        s = selection
        name = f"attention_{s.example}_{s.kind}_l{s.layer}_h{s.head}_{s.a}_vs_{s.b}.csv"
        return dcc.send_data_frame(table.to_csv, name, index=False)


def register_heads(app: Dash, data: StudyData) -> None:
    _view(app, "heads", [Output("heads-graph", "figure")])(_safe(lambda s: heads_view(data, s)))

    @app.callback(
        Output("tabs", "value", allow_duplicate=True),
        Output("layer", "value", allow_duplicate=True),
        Output("head", "value", allow_duplicate=True),
        Input("heads-graph", "clickData"),
        STATES,
        prevent_initial_call=True,
    )
    def open_head(click, *values):
        """Clicking a small heatmap opens that layer and head in Compare."""
        if not click or not click.get("points"):
            return no_update, no_update, no_update
        curve = int(click["points"][0]["curveNumber"])
        layer, head = clicked_head(data, Selection.from_controls(values), curve)
        return "compare", layer, str(head)


def register_metrics(app: Dash, data: StudyData) -> None:
    outputs = [
        Output("metric-graph", "figure"),
        Output("similarity-graph", "figure"),
        Output("performance-graph", "figure"),
        Output("performance-table", "data"),
        Output("metrics-message", "children"),
    ]

    @_view(app, "metrics", outputs)
    def metrics(selection: Selection):
        try:
            return (*metrics_view(data, selection), None)
        except (KeyError, IndexError, ValueError) as exc:  # a bad value: say so in place
            problem = figures.message_figure(str(exc).strip("'\""))
            return problem, problem, problem, [], None
        except MissingArtifact as exc:
            empty = figures.message_figure("No analysis results yet.")
            message = html.Div(
                [str(exc), html.Pre(exc.command)],
                className="missing-analysis",
                style={"background": "#fff3cd", "padding": "8px"},
            )
            return empty, empty, empty, [], message
