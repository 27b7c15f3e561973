"""Thin Dash callbacks: read the controls, call a view, return its figures."""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import figures
from dashboard.data import MissingArtifact, StudyData
from dashboard.layout import notes_block
from dashboard.views import (
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

CONTROLS = [
    "tabs",
    "variant-a",
    "variant-b",
    "example",
    "kind",
    "layer",
    "head",
    "log",
    "metric",
    "scope",
]


def selection_from(tab, a, b, example, kind, layer, head, log, metric, scope) -> Selection:
    return Selection(
        tab=tab,
        a=a,
        b=b,
        example=example,
        kind=kind,
        layer=int(layer),
        head=str(head),
        log="log" in (log or []),
        metric=metric,
        scope=scope,
    )


def _safe(fn):
    """Show a missing artifact or a bad request inside the figure instead of a traceback."""

    def wrapped(*args):
        try:
            return fn(*args)
        except (MissingArtifact, KeyError, IndexError) as exc:
            return figures.message_figure(str(exc).strip("'\""))

    return wrapped


def register(app: Dash, data: StudyData) -> None:
    inputs = [Input(c, "value") for c in CONTROLS]

    @app.callback(
        Output("url", "search"),
        Output("url-notes", "children"),
        [Output(c, "value", allow_duplicate=True) for c in CONTROLS],
        Input("url", "search"),
        inputs,
        prevent_initial_call="initial_duplicate",
    )
    def sync_url(search, *values):
        """The selection lives in the URL, so a view can be shared and reloaded.

        On page load the URL sets the controls (unknown values are explained); after that,
        each control change rewrites the URL.
        """
        if ctx.triggered_id in (None, "url"):
            selection, notes = resolve(data, Selection.from_query(search))
            values = [
                selection.tab,
                selection.a,
                selection.b,
                selection.example,
                selection.kind,
                selection.layer,
                selection.head,
                ["log"] if selection.log else [],
                selection.metric,
                selection.scope,
            ]
            return no_update, notes_block(notes), *values
        return selection_from(*values).to_query(), [], *[no_update] * len(CONTROLS)

    @app.callback(Output("example", "options"), Input("label-filter", "value"))
    def filter_examples(label):
        return example_options(data, label)

    @app.callback(Output("compare-graph", "figure"), inputs)
    @_safe
    def compare(*values):
        return compare_view(data, selection_from(*values))

    @app.callback(
        Output("download-csv", "data"),
        Input("export-csv", "n_clicks"),
        [State(c, "value") for c in CONTROLS],
        prevent_initial_call=True,
    )
    def export_csv(_, *values):
        selection = selection_from(*values)
        table = compare_table(data, selection)
        if table is None:
            return no_update
        name = f"attention_{selection.example}_{selection.kind}_l{selection.layer}_h{selection.head}_{selection.a}_vs_{selection.b}.csv"
        return dcc.send_data_frame(table.to_csv, name, index=False)

    @app.callback(Output("heads-graph", "figure"), inputs)
    @_safe
    def heads(*values):
        return heads_view(data, selection_from(*values))

    @app.callback(
        Output("tabs", "value", allow_duplicate=True),
        Output("layer", "value", allow_duplicate=True),
        Output("head", "value", allow_duplicate=True),
        Input("heads-graph", "clickData"),
        [State(c, "value") for c in CONTROLS],
        prevent_initial_call=True,
    )
    def open_head(click, *values):
        """Clicking a small heatmap opens that layer and head in Compare."""
        if not click or not click.get("points"):
            return no_update, no_update, no_update
        layer, head = clicked_head(
            data, selection_from(*values), int(click["points"][0]["curveNumber"])
        )
        return "compare", layer, str(head)

    @app.callback(
        Output("metric-graph", "figure"),
        Output("similarity-graph", "figure"),
        Output("performance-graph", "figure"),
        Output("performance-table", "data"),
        Output("metrics-message", "children"),
        inputs,
    )
    def metrics(*values):
        try:
            return (*metrics_view(data, selection_from(*values)), None)
        except MissingArtifact as exc:
            empty = figures.message_figure("No analysis results yet.")
            return (
                empty,
                empty,
                empty,
                [],
                html.Div(
                    [str(exc), html.Pre(exc.command)],
                    className="missing-analysis",
                    style={"background": "#fff3cd", "padding": "8px"},
                ),
            )

    @app.callback(Output("rollout-graph", "figure"), inputs)
    @_safe
    def rollout(*values):
        return rollout_view(data, selection_from(*values))

    @app.callback(Output("cross-graph", "figure"), inputs)
    @_safe
    def cross(*values):
        return cross_view(data, selection_from(*values))
