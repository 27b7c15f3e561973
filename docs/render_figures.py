"""Render the analysis figures of a run (loaded through the catalog) to PNG for the docs.

    .venv/bin/python docs/render_figures.py [--env ENV]      # writes docs/images/<figure>.png
    .venv/bin/python docs/render_figures.py --env llm --prefix llm_ --figures ablation_figure

Uses Debian's chromium through Playwright (`make setup-test` installs it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
FIGURES = (
    "head_metrics_figure",
    "similarity_figure",
    "performance_figure",
    "importance_figure",
    "head_changes_figure",
    "pruning_figure",
    "sinks_figure",
    "head_functions_figure",
    "ablation_figure",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None)
    parser.add_argument("--figures", nargs="*", default=list(FIGURES), choices=FIGURES)
    parser.add_argument("--prefix", default="", help="file name prefix, e.g. llm_")
    args = parser.parse_args()
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from playwright.sync_api import sync_playwright

    from tests.support.chromium import launch

    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=args.env) as session:
        catalog = session.load_context().catalog
        figures = {name: catalog.load(name) for name in args.figures}
    out = PROJECT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        for name, fig in figures.items():
            html = Path(tmp) / f"{name}.html"
            fig.update_layout(width=1150)
            fig.write_html(html, include_plotlyjs=True, full_html=True)
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            target = out / f"{args.prefix}{name}.png"
            page.locator(".js-plotly-plot").screenshot(path=str(target))
            print("wrote", target)
        browser.close()


if __name__ == "__main__":
    main()
