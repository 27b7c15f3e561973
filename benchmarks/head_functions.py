"""What head-function detection (with its ablations) adds to a study's run, against its budget.

For each study it times, on the study's bundled base model and with the study's own
settings, everything the analysis does per variant for head functions — building the probes,
scoring every head, and (causal LMs) the induction and retrieval ablations — then scales by
the study's variants and by the two jobs `make run` runs at once (one thread each). Baseline in
the same run: the model's evaluation on the same number of test texts of the same length, the
step every variant already pays.

    python benchmarks/head_functions.py            # default study (MiniLM) and llm (SmolLM2)
    python benchmarks/head_functions.py --study llm

Targets: <= 30 s added to the default study, <= 5 minutes to `--env=llm`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
WORKERS = 2  # `make run`: one job per core on the 2-core machine
# study -> (env file with its variants, model, task, budget in seconds)
STUDIES = {
    "default": ("base/parameters_fine_tuning.yml", "minilm", "classification", 30),
    "llm": ("llm/parameters.yml", "smollm2-135m", "causal_lm", 300),
}


def settings_of(study: str) -> tuple[dict, int]:
    """The study's ``analysis`` parameters and its number of variants."""
    conf = PROJECT / "conf"
    variants = yaml.safe_load((conf / STUDIES[study][0]).read_text())["variants"]
    analysis_file = conf / (
        "base/parameters_analysis.yml" if study == "default" else STUDIES[study][0]
    )
    return yaml.safe_load(analysis_file.read_text())["analysis"], len(variants)


def corpus() -> pd.DataFrame:  # noqa: F821
    import pandas as pd

    from attention_lab.pipelines.ingestion.sources import read_bbc_news

    frame, _ = read_bbc_news({})
    return pd.DataFrame({"text": frame["text"].iloc[:40], "split": "test"})


def measure(study: str) -> dict:
    import pandas as pd
    import torch

    from attention_lab.analysis.function_probes import (
        FunctionSettings,
        build_probes,
        induction_ablation,
        retrieval_ablation,
        retrieval_rows,
        score_heads,
    )
    from attention_lab.analysis.retrieval import build_needle_probes
    from attention_lab.models.loading import load_model, load_tokenizer

    torch.set_num_threads(1)  # as `make run` gives each job
    _, model_name, task, budget = STUDIES[study]
    analysis, variants = settings_of(study)
    settings = FunctionSettings.of(analysis.get("head_functions"))
    model = load_model(model_name, task, num_labels=2 if task == "classification" else None)
    tokenizer = load_tokenizer(model_name)
    labels = {"variant": "bench", "seed": 0, "kind": "decoder"}
    texts = corpus()["text"].tolist()

    start = time.perf_counter()
    probes = build_probes(tokenizer, settings)
    scores = score_heads(model, probes, labels, analysis)
    if task == "causal_lm":
        needles = build_needle_probes(
            texts, tokenizer, settings.needles, settings.needle_tokens, settings.seed
        )
        scores = pd.concat(
            [scores, retrieval_rows(model, needles, labels, analysis)], ignore_index=True
        )
        induction_ablation(model, probes, scores, settings)
        retrieval_ablation(model, needles, scores, settings)
    per_variant = time.perf_counter() - start

    # baseline: one evaluation forward over as many tokens, the study's existing per-variant step
    length = settings.needle_tokens if task == "causal_lm" else 64
    ids = tokenizer(" ".join(texts), return_tensors="pt", truncation=True, max_length=length)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(16):  # the llm study's 16 test articles
            model(input_ids=ids["input_ids"])
    evaluation = time.perf_counter() - start
    added = per_variant * variants / WORKERS
    return {
        "study": study,
        "variants": variants,
        "seconds_per_variant": round(per_variant, 1),
        "evaluation_seconds_per_variant": round(evaluation, 1),
        "added_wall_seconds": round(added, 1),
        "budget_seconds": budget,
        "ratio_to_budget": round(added / budget, 2),
        "ratio_to_evaluation": round(per_variant / evaluation, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=list(STUDIES), action="append")
    args = parser.parse_args()
    results = [measure(study) for study in args.study or list(STUDIES)]
    rows = [
        ("study", "variants", "s per variant", "vs evaluation", "added (2 jobs)", "budget", "ratio")
    ]
    rows += [
        (
            r["study"],
            str(r["variants"]),
            f"{r['seconds_per_variant']:.1f}",
            f"{r['ratio_to_evaluation']:.2f}x",
            f"{r['added_wall_seconds']:.0f} s",
            f"{r['budget_seconds']} s",
            f"{r['ratio_to_budget']:.2f}",
        )
        for r in results
    ]
    report("head_functions", rows, {"results": results})


if __name__ == "__main__":
    main()
