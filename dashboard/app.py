"""Build the Dash app for one Kedro env."""

from __future__ import annotations

from dash import Dash, dcc, html

from dashboard import callbacks
from dashboard.data import MissingArtifact, StudyData
from dashboard.layout import missing_page, page
from dashboard.selection import Selection, resolve


def create_app(
    env: str | None = None, data: StudyData | None = None, conf_source: str | None = None
) -> Dash:
    """The app reads everything through ``env``'s catalog; nothing is loaded until a page asks."""
    data = data or StudyData(env, conf_source=conf_source)
    app = Dash(__name__, title="Attention Lab", suppress_callback_exceptions=True)

    def serve_layout():
        """Called per page load; the URL's selection is applied by the ``sync_url`` callback."""
        try:
            data.check_ready()
            body = page(data, resolve(data, Selection())[0])
        except MissingArtifact as problem:
            body = missing_page(problem)
        return html.Div([dcc.Location(id="url", refresh=False), body])

    app.layout = serve_layout
    callbacks.register(app, data)
    return app
