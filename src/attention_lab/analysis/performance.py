"""Task performance with its uncertainty: each variant's metrics as a mean over seeds with a
95% interval over seeds and test examples, and the differences the study's questions ask
about, with their intervals, paired p-values and Benjamini–Hochberg q-values:

- each variant against its reference (question 2, and question 1 against the baseline);
- every two variants of one base model and fine-tuning method whose attention mechanisms
  differ (question 1).

A difference pairs the two variants' runs of the same seed on the same test examples
(:mod:`attention_lab.analysis.replicates`). Every metric is recomputed from the runs'
per-example outcomes (``{job}__predictions``), so the interval and the value agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from attention_lab.analysis.replicates import Estimate, metric_over_runs
from attention_lab.analysis.statistics import benjamini_hochberg, statistics_settings
from attention_lab.analysis.tables import COST_COLUMNS, SELF_KINDS
from attention_lab.errors import DataError
from attention_lab.kinds import AttentionKind
from attention_lab.parameters import AnalysisSettings
from attention_lab.study import Study
from attention_lab.tasks.classification import macro_f1


def _loss(loss_sum: np.ndarray, loss_terms: np.ndarray) -> float:
    return float(loss_sum.sum() / loss_terms.sum())


# metric -> (the per-example columns it needs, how one run's columns give it)
TASK_METRICS: dict[str, tuple[tuple[str, ...], Callable[..., float]]] = {
    "accuracy": (("correct",), lambda correct: float(correct.mean())),
    "macro_f1": (("label", "prediction", "num_labels"), macro_f1),
    "eval_loss": (("loss_sum", "loss_terms"), _loss),
    "perplexity": (("loss_sum", "loss_terms"), lambda *loss: float(np.exp(_loss(*loss)))),
}
# what is reported as a plain mean over seeds, beside the task metrics
MEANS = ("train_seconds", "peak_memory_mb", "mean_entropy", *COST_COLUMNS)
COMPARISON_COLUMNS = [
    "comparison",
    "variant",
    "against",
    "metric",
    "difference",
    "ci_low",
    "ci_high",
    "p",
    "q",
    "significant",
    "n_seeds",
    "n_examples",
]


def performance_runs(*summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per job (variant and seed): its metrics and cost, as its summary holds them."""
    return pd.DataFrame(summaries)


def build_performance_tables(
    runs: pd.DataFrame,
    similarity_by_layer: pd.DataFrame,
    sinks: pd.DataFrame,
    study: dict[str, Any],
    variants: dict[str, Any],
    analysis: AnalysisSettings,
    *predictions: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``performance``: one row per variant, ``performance_comparison``: one row per
    comparison and metric)."""
    plan = Study.from_params({"study": study, "variants": variants})
    outcomes = _outcomes(predictions)
    settings = statistics_settings(analysis)
    columns = set(outcomes) | {"num_labels"}  # the label count comes from the outcomes
    metrics = [m for m, (needs, _) in TASK_METRICS.items() if set(needs) <= columns]
    if "correct" not in outcomes:  # language modelling: perplexity, not accuracy
        metrics = [m for m in metrics if m not in ("accuracy", "macro_f1")]
    table = _per_variant(plan, runs, outcomes, metrics, settings)
    table = _attention_columns(table, similarity_by_layer, sinks)
    pairs = [("reference", v, plan.reference_of(v)) for v in plan.variants]
    pairs += [("mechanism", a, b) for a, b in plan.mechanism_pairs()]
    pairs = [(kind, a, b) for kind, a, b in pairs if a != b]
    comparison = _comparisons(plan, outcomes, metrics, pairs, settings)
    return table, comparison


def _outcomes(predictions: tuple[pd.DataFrame, ...]) -> pd.DataFrame:
    """Every job's per-example outcomes, checked to cover the same test examples."""
    if not predictions:
        raise DataError(
            "performance: no job's predictions; run `kedro run --pipeline=fine_tuning`."
        )
    frame = pd.concat(predictions, ignore_index=True)
    sets = frame.groupby(["variant", "seed"])["id"].apply(frozenset)
    if sets.nunique() > 1:
        raise DataError(
            "performance: the jobs were evaluated on different test examples; re-run "
            "`kedro run --pipeline=fine_tuning` so every job reads the same corpus."
        )
    return frame


def _runs_of(outcomes: pd.DataFrame, variant: str, seeds: tuple[int, ...]) -> list[pd.DataFrame]:
    """The variant's outcomes per seed, each sorted by example id (rows align across runs)."""
    by_seed = []
    for seed in seeds:
        run = outcomes[(outcomes["variant"] == variant) & (outcomes["seed"] == seed)]
        if run.empty:
            raise DataError(
                f"performance: no predictions of {variant!r} with seed {seed}; run "
                f"`kedro run --namespaces={variant}__seed{seed}`."
            )
        by_seed.append(run.sort_values("id").reset_index(drop=True))
    return by_seed


def _estimate(metric: str, runs: list[tuple[pd.DataFrame, ...]], settings) -> Estimate:
    """``metric`` of each run, or the difference of each pair of runs (seed by seed), over
    seeds and examples."""
    needs, compute = TASK_METRICS[metric]
    columns = [c for c in needs if c != "num_labels"]
    labels = {"num_labels": _num_labels(runs)} if "num_labels" in needs else {}

    def value(*arrays: np.ndarray) -> float:
        # arrays: each run of the pair in turn, its columns in ``columns`` order
        values = [
            compute(*arrays[i : i + len(columns)], **labels)
            for i in range(0, len(arrays), len(columns))
        ]
        return values[0] - values[1] if len(values) == 2 else values[0]

    arrays = [tuple(f[c].to_numpy() for f in run for c in columns) for run in runs]
    return metric_over_runs(value, arrays, settings.bootstrap_resamples, settings.seed)


def _num_labels(runs: list[tuple[pd.DataFrame, ...]]) -> int:
    """How many labels the task has: every label any run saw or predicted."""
    frames = [f for run in runs for f in run]
    return int(max(max(f["label"].max(), f["prediction"].max()) for f in frames)) + 1


def _per_variant(plan, runs, outcomes, metrics, settings) -> pd.DataFrame:
    rows = []
    for variant in plan.variants:
        by_seed = _runs_of(outcomes, variant, plan.seeds)
        mine = runs[runs["variant"] == variant]
        row = {
            "variant": variant,
            "method": mine["method"].iloc[0],
            "mechanism": mine["mechanism"].iloc[0],
            "n_seeds": len(plan.seeds),
        }
        for metric in metrics:
            estimate = _estimate(metric, [(run,) for run in by_seed], settings)
            row |= {
                metric: float(estimate.mean),
                f"{metric}_ci_low": float(estimate.ci_low),
                f"{metric}_ci_high": float(estimate.ci_high),
            }
        row |= {k: float(mine[k].mean()) for k in MEANS if k in mine and mine[k].notna().any()}
        for k in ("trainable_parameters", "total_parameters"):
            if k in mine:
                row[k] = int(mine[k].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def _attention_columns(table, similarity_by_layer, sinks) -> pd.DataFrame:
    """Each variant's sink rate (Gu et al.) and share of sink heads (weights, self-attention;
    mean over seeds) and its mean attention similarity to its reference."""
    weights = sinks[sinks["kind"].isin(SELF_KINDS)].groupby("variant")
    table["sink_rate_gu"] = table["variant"].map(weights["sink_rate_gu"].mean())
    table["sink_head_share"] = table["variant"].map(
        weights["sink_heads"].sum() / weights["heads"].sum()
    )
    of_weights = similarity_by_layer[
        ~similarity_by_layer["kind"].map(lambda kind: AttentionKind.parse(kind).norms)
    ].groupby("variant")
    table["mean_similarity_to_reference"] = table["variant"].map(
        of_weights["cosine_similarity"].mean()
    )
    if "seed_similarity" in similarity_by_layer:
        table["mean_similarity_between_seeds"] = table["variant"].map(
            of_weights["seed_similarity"].mean()
        )
    table["reference"] = table["variant"].map(of_weights["reference"].first())
    return table.dropna(axis=1, how="all")


def _comparisons(plan, outcomes, metrics, pairs, settings) -> pd.DataFrame:
    rows = []
    for kind, a, b in pairs:
        runs = list(
            zip(_runs_of(outcomes, a, plan.seeds), _runs_of(outcomes, b, plan.seeds), strict=True)
        )
        for metric in metrics:
            estimate = _estimate(metric, runs, settings)
            rows.append(
                {
                    "comparison": kind,
                    "variant": a,
                    "against": b,
                    "metric": metric,
                    "difference": float(estimate.mean),
                    "ci_low": float(estimate.ci_low),
                    "ci_high": float(estimate.ci_high),
                    "p": float(estimate.p),
                    "n_seeds": estimate.n_seeds,
                    "n_examples": len(runs[0][0]),
                }
            )
    table = pd.DataFrame(
        rows, columns=[c for c in COMPARISON_COLUMNS if c not in ("q", "significant")]
    )
    # Benjamini–Hochberg within each family: one kind of comparison, one metric
    table["q"] = table.groupby(["comparison", "metric"])["p"].transform(
        lambda p: benjamini_hochberg(p.to_numpy())
    )
    table["significant"] = table["q"] < settings.fdr_q
    return table[COMPARISON_COLUMNS]
