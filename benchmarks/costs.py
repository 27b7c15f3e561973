"""Inference costs of a study's saved variants, measured one after another on a quiet machine.

`kedro run` measures each variant's costs (`{job}.costs`) while the other job of the pair runs
on the other core, so its speeds carry that noise. This script measures every variant's first
seed again, each in a fresh process, with nothing else running and one thread each (as
`make run` gives a job), and prints each against the study's reference.

    python benchmarks/costs.py --env llm      # after `kedro run --env=llm`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, report  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def measure(env: str, only: list[str] | None = None) -> list[dict]:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from attention_lab.datasets.cost_process import measure_in_fresh_process
    from attention_lab.models.costs import CostSettings
    from attention_lab.study import Study

    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by each fresh process
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env) as session:
        context = session.load_context()
        params, catalog = context.params, context.catalog
        plan = Study.from_params(params)
        settings = CostSettings.of(params.get("costs"))
        corpus = catalog.load("corpus")
        texts = corpus.loc[corpus["split"] == "test", "text"].tolist()
        rows = []
        for variant in only or plan.variants:
            if variant not in plan.variants:
                raise SystemExit(f"{variant!r} is not a variant of --env={env}")
            job = plan.jobs_of(variant)[0]
            costs = measure_in_fresh_process(catalog.load(f"{job.name}.model"), texts, settings)
            rows.append({"variant": variant, "reference": plan.reference_of(variant), **costs})
            print(variant, {k: round(v, 1) for k, v in costs.items()}, flush=True)
    return rows


def ratio(rows: list[dict], row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    base = next(r for r in rows if r["variant"] == row["reference"]).get(key)
    return f"{value:,.1f} ({value / base:.2f}x)" if base else f"{value:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="llm")
    parser.add_argument(
        "--variants", nargs="+", help="measure these again, keeping the others' earlier results"
    )
    args = parser.parse_args()
    rows = measure(args.env, args.variants)
    if args.variants:  # merged into the earlier results, in the study's order
        earlier = RESULTS / f"costs_{args.env}.json"
        kept = json.loads(earlier.read_text())["results"] if earlier.exists() else []
        fresh = {r["variant"]: r for r in rows}
        order = [r["variant"] for r in kept] + [
            v for v in fresh if v not in {r["variant"] for r in kept}
        ]
        merged = {r["variant"]: r for r in kept} | fresh
        rows = [merged[v] for v in order]
    keys = ["kv_bytes_per_token", "prefill_tokens_per_s", "decode_tokens_per_s"]
    table = [("variant", "KV bytes/token", "prefill tok/s", "decode tok/s", "peak MB")]
    table += [
        (
            r["variant"],
            *(ratio(rows, r, k) for k in keys),
            f"{r['inference_peak_memory_mb']:,.0f}",
        )
        for r in rows
    ]
    report(f"costs_{args.env}", table, {"env": args.env, "results": rows})


if __name__ == "__main__":
    main()
