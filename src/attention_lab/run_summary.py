"""The few lines a run ends with: the results, where the report is, how to look at them."""

from __future__ import annotations

import pandas as pd

SHOW = ("accuracy", "perplexity")


def summary_lines(performance: pd.DataFrame, report_path: str, env: str | None) -> list[str]:
    """The performance table (each variant's task metric with its interval over seeds and test
    examples), the report's path, and the commands that open the dashboard and kedro-viz."""
    metric = next((m for m in SHOW if m in performance), "eval_loss")
    lines = [f"Results ({metric}, mean and 95% interval over seeds and test examples):"]
    for row in performance.to_dict("records"):
        value = f"{row[metric]:.3f}"
        if f"{metric}_ci_low" in row:
            value += f" ({row[f'{metric}_ci_low']:.3f} to {row[f'{metric}_ci_high']:.3f})"
        cost = row.get("kv_bytes_per_token")
        extra = f", KV {cost:,.0f} bytes/token" if cost == cost and cost is not None else ""
        lines.append(
            f"  {row['variant']:<18} {row['method']:<5} {row['mechanism']:<15} {value}{extra}"
        )
    flag = f" --env {env}" if env else ""
    make_args = f' ARGS="--env {env}"' if env else ""
    lines += [
        f"Report: {report_path}",
        f"Dashboard: make dashboard{make_args}  (or python -m dashboard{flag})",
        "Pipeline graph: make viz",
    ]
    return lines
