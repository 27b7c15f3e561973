"""A self-contained HTML report: the tables and figures of one study in one file."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pandas as pd
import plotly.graph_objects as go

LAYER_COLUMNS = [  # each similarity beside its interval over seeds and probes, and the floor's
    "variant",
    "reference",
    "kind",
    "layer",
    "cosine_similarity",
    "cosine_ci_low",
    "cosine_ci_high",
    "seed_similarity",
    "seed_ci_low",
    "seed_ci_high",
    "changed",
    "n_seeds",
]


def significant_counts(head_changes: pd.DataFrame) -> pd.DataFrame:
    """Heads that changed significantly, per metric (rows) and variant · kind (columns)."""
    if head_changes.empty:
        return pd.DataFrame()
    table = head_changes.assign(column=head_changes["variant"] + " · " + head_changes["kind"])
    counts = table.pivot_table(
        index="metric", columns="column", values="significant", aggfunc="sum", sort=False
    )
    return counts.fillna(0).astype(int)


def build_report(
    performance: pd.DataFrame,
    performance_comparison: pd.DataFrame,
    similarity_by_layer: pd.DataFrame,
    head_changes: pd.DataFrame,
    *figures: go.Figure,
) -> str:
    """HTML with plotly.js inlined once, so the report opens offline."""
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    shown = similarity_by_layer[similarity_by_layer["variant"] != similarity_by_layer["reference"]]
    layer_table = shown[[c for c in LAYER_COLUMNS if c in shown]].round(3)
    first = head_changes.iloc[:1]  # heads of one variant and kind (each kind has its own)
    heads = head_changes.merge(first[["variant", "kind"]]).drop_duplicates(["layer", "head"])
    seeds = int(performance["n_seeds"].max()) if "n_seeds" in performance else 1
    test = (
        f"a test over {seeds} seeds and the probes (Student's t, the seed as the unit), "
        "flagged only when every seed moves the head the same way"
        if seeds > 1
        else "a paired sign-flip test over the probes (one seed: no test over training runs)"
    )
    changed = (
        f"<p>Out of {len(heads)} heads per kind; {test}; Benjamini–Hochberg across heads.</p>"
        + significant_counts(head_changes).to_html()
    )
    style = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Attention Lab report</title><style>{style}</style></head>
<body><h1>Attention Lab report</h1><p>Generated {html.escape(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))}.</p>
<h2>Performance</h2><p>Means over {seeds} seed(s) with 95% intervals over seeds and test examples.</p>{performance.round(4).to_html(index=False, na_rep="")}
<h2>Differences</h2><p>Paired by seed and test example; q: Benjamini–Hochberg within each kind of comparison and metric.</p>{performance_comparison.round(4).to_html(index=False, na_rep="")}
<h2>Similarity to each variant's reference per layer (cosine)</h2><p>Beside it, the similarity between the variant's own seeds (the noise floor); <i>changed</i>: the first interval lies wholly below the second.</p>{layer_table.to_html(index=False, na_rep="")}
<h2>Heads that changed significantly</h2>{changed}
<h2>Figures</h2>{"".join(parts)}</body></html>"""
