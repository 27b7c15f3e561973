"""The study-wide step of the analysis: every job's tables stacked, similarity and sinks
summarised, head functions compared, the figures and the report."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.analysis.figures import (
    ablation_figure,
    head_changes_figure,
    head_functions_figure,
    head_metric_heatmaps,
    importance_figure,
    performance_figure,
    pruning_figure,
    similarity_by_layer_figure,
    sinks_figure,
)
from attention_lab.analysis.function_changes import function_changes
from attention_lab.analysis.function_probes import summarise_ablations
from attention_lab.analysis.noise_floor import similarity_by_kv_group, similarity_by_layer
from attention_lab.analysis.performance import build_performance_tables, performance_runs
from attention_lab.analysis.report import build_report
from attention_lab.analysis.tables import (
    attention_sinks,
    concat_tables,
)
from attention_lab.study import Study, exported

# of each variant's first seed only
IMPORTANCE = ("head_importance", "pruning_curve", "head_functions", "function_ablations")

# per-job tables stacked into study tables (with their seed column): exported name -> table
STACKED = {
    "head_metrics": "all_head_metrics",
    "head_importance": "head_importance",
    "pruning_curve": "pruning_curves",
    "head_functions": "head_functions",
    "function_ablations": "function_ablations",
}


def study_pipeline(study: Study) -> Pipeline:
    """Study-wide tables, figures and the report, over every job's outputs."""
    return _combined_tables(study) + _summaries(study) + functions_pipeline() + figures_pipeline()


def _combined_tables(study: Study) -> Pipeline:
    """Every job's (or variant's) table stacked into one."""
    jobs, variants = study.jobs, study.variants

    def seeds_of(name: str) -> tuple[int, ...]:
        return study.seeds[:1] if name in IMPORTANCE else study.seeds

    return pipeline(
        [
            node(
                concat_tables,
                [exported(job, "comparison") for job in jobs],
                "attention_comparison",
                name="combine_comparisons",
            ),
            node(
                concat_tables,
                [exported(v, "head_changes") for v in variants],
                "head_changes",
                name="combine_head_changes",
            ),
            *(
                node(
                    concat_tables,
                    [exported(job, name) for job in jobs if job.seed in seeds_of(name)],
                    combined,
                    name=f"combine_{name}",
                )
                for name, combined in STACKED.items()
            ),
            node(
                performance_runs,
                [exported(job, "summary") for job in jobs],
                "performance_runs",
                name="stack_performance_runs",
            ),
        ]
    )


def _summaries(study: Study) -> Pipeline:
    """Similarity by layer and by key/value group, attention sinks, the performance table."""
    variants = study.variants
    return pipeline(
        [
            node(
                similarity_by_layer,
                [
                    "attention_comparison",
                    *[exported(v, "layer_similarity") for v in variants],
                    *[exported(v, "seed_similarity") for v in variants if study.has_pairs],
                ],
                "similarity_by_layer",
                name="summarise_similarity_by_layer",
            ),
            node(
                similarity_by_kv_group,
                "attention_comparison",
                "similarity_by_kv_group",
                name="summarise_similarity_by_kv_group",
            ),
            node(
                attention_sinks,
                ["all_head_metrics", "params:analysis.sink_threshold"],
                "attention_sinks",
                name="measure_attention_sinks",
            ),
            node(
                build_performance_tables,
                [
                    "performance_runs",
                    "similarity_by_layer",
                    "attention_sinks",
                    "params:study",
                    "params:variants",
                    "params:analysis",
                    *[exported(job, "predictions") for job in study.jobs],
                ],
                ["performance", "performance_comparison"],
                name="build_performance_table",
            ),
        ]
    )


def functions_pipeline() -> Pipeline:
    """Head functions followed across variants; ablations summarised; both drawn."""
    return pipeline(
        [
            node(
                function_changes,
                ["head_functions", "attention_comparison", "params:study", "params:variants"],
                "function_changes",
                name="follow_head_functions",
            ),
            node(
                summarise_ablations,
                ["function_ablations", "params:analysis"],
                "function_ablation",
                name="summarise_function_ablations",
            ),
            node(
                head_functions_figure,
                "head_functions",
                "head_functions_figure",
                name="plot_head_functions",
            ),
            node(ablation_figure, "function_ablation", "ablation_figure", name="plot_ablation"),
        ]
    )


def figures_pipeline() -> Pipeline:
    return pipeline(
        [
            node(
                head_metric_heatmaps,
                ["all_head_metrics", "params:analysis.heatmap_metric"],
                "head_metrics_figure",
                name="plot_head_metrics",
            ),
            node(
                similarity_by_layer_figure,
                "similarity_by_layer",
                "similarity_figure",
                name="plot_similarity",
            ),
            node(
                head_changes_figure,
                ["head_changes", "params:analysis.heatmap_metric"],
                "head_changes_figure",
                name="plot_head_changes",
            ),
            node(performance_figure, "performance", "performance_figure", name="plot_performance"),
            node(importance_figure, "head_importance", "importance_figure", name="plot_importance"),
            node(pruning_figure, "pruning_curves", "pruning_figure", name="plot_pruning"),
            node(sinks_figure, "attention_sinks", "sinks_figure", name="plot_sinks"),
            node(
                build_report,
                [
                    "performance",
                    "performance_comparison",
                    "similarity_by_layer",
                    "head_changes",
                    "performance_figure",
                    "similarity_figure",
                    "head_metrics_figure",
                    "head_changes_figure",
                    "importance_figure",
                    "pruning_figure",
                    "sinks_figure",
                    "head_functions_figure",
                    "ablation_figure",
                ],
                "attention_report",
                name="build_report",
            ),
        ]
    )
