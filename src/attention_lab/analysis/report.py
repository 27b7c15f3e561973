"""A self-contained HTML report: the tables and figures of one study in one file."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pandas as pd
import plotly.graph_objects as go

from attention_lab.analysis.tables import similarity_pivot


def build_report(
    performance: pd.DataFrame, similarity_by_layer: pd.DataFrame, *figures: go.Figure
) -> str:
    """HTML with plotly.js inlined once, so the report opens offline."""
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    layer_table = similarity_pivot(similarity_by_layer, list(performance["variant"]))
    style = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Attention Lab report</title><style>{style}</style></head>
<body><h1>Attention Lab report</h1><p>Generated {html.escape(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))}.</p>
<h2>Performance</h2>{performance.round(4).to_html(index=False, na_rep="")}
<h2>Similarity to each variant's reference per layer (cosine)</h2>{layer_table.to_html(na_rep="")}
<h2>Figures</h2>{"".join(parts)}</body></html>"""
