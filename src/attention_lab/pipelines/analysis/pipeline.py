"""Analysis: per-variant head metrics, comparison with the reference and head importance,
then study-wide tables, figures and a report."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.analysis.changes import head_changes
from attention_lab.analysis.figures import (
    head_changes_figure,
    head_metric_heatmaps,
    importance_figure,
    performance_figure,
    pruning_figure,
    similarity_by_layer_figure,
    sinks_figure,
)
from attention_lab.analysis.report import build_report
from attention_lab.analysis.tables import (
    attention_sinks,
    build_performance_table,
    combine_comparisons,
    compare_to_reference,
    concat_tables,
    example_head_metrics,
    summarise_head_metrics,
    summarise_variant,
)
from attention_lab.pipelines.analysis.nodes import compute_head_importance, compute_pruning_curve
from attention_lab.variants import exported


def variant_template() -> Pipeline:
    return pipeline(
        [
            node(
                example_head_metrics,
                "attention",
                "example_head_metrics",
                name="compute_example_head_metrics",
            ),
            node(
                summarise_head_metrics,
                ["example_head_metrics", "params:analysis"],
                "head_metrics",
                name="summarise_head_metrics",
            ),
            node(
                compute_head_importance,
                ["model", "corpus", "params:analysis"],
                "head_importance",
                name="compute_head_importance",
            ),
            node(
                compute_pruning_curve,
                ["model", "corpus", "head_importance", "params:analysis"],
                "pruning_curve",
                name="compute_pruning_curve",
            ),
            node(
                summarise_variant, ["metrics", "head_metrics"], "summary", name="summarise_variant"
            ),
        ]
    )


# what each variant's job hands to the study-level step
EXPORTS = (
    "attention",
    "example_head_metrics",
    "head_metrics",
    "head_importance",
    "pruning_curve",
    "summary",
)


def variant_pipeline(variant: str) -> Pipeline:
    """One variant's analysis; it reads nothing of any other variant."""
    return pipeline(
        variant_template(),
        namespace=variant,
        inputs={"corpus": "corpus", "attention": exported(variant, "attention")},
        outputs={name: exported(variant, name) for name in EXPORTS if name != "attention"},
        parameters={"params:analysis"},
    )


def comparison_pipeline(variant: str, reference: str) -> Pipeline:
    """Study level: ``variant`` against its reference, maps and per-example metrics."""
    return pipeline(
        [
            node(
                compare_to_reference,
                [
                    exported(variant, "attention"),
                    exported(reference, "attention"),
                    "params:analysis",
                ],
                exported(variant, "comparison"),
                name=f"compare_{variant}_to_reference",
            ),
            node(
                head_changes,
                [
                    exported(variant, "example_head_metrics"),
                    exported(reference, "example_head_metrics"),
                    "params:analysis",
                ],
                exported(variant, "head_changes"),
                name=f"test_head_changes_of_{variant}",
            ),
        ]
    )


def create_pipeline(references: dict[str, str] | None = None) -> Pipeline:
    """``references`` maps each variant to the variant it is compared with (its model's own
    reference, see :func:`attention_lab.variants.references`), in study order."""
    variants = list(references or {})
    if not variants:
        return Pipeline([])
    per_variant = sum((variant_pipeline(v) for v in variants), Pipeline([]))
    return per_variant + study_level(references)


def study_level(references: dict[str, str]) -> Pipeline:
    """Everything that reads more than one variant: comparisons, study tables, figures."""
    comparisons = sum((comparison_pipeline(v, r) for v, r in references.items()), Pipeline([]))
    # one namespace, so that the step is one job (`--namespaces=study`) and one Airflow task;
    # its datasets keep their names
    return pipeline(
        comparisons + study_pipeline(list(references)),
        tags="study",
        namespace="study",
        prefix_datasets_with_namespace=False,
    )


# per-variant tables stacked into study tables: exported name -> study table
STACKED = {
    "head_metrics": "all_head_metrics",
    "head_importance": "head_importance",
    "head_changes": "head_changes",
    "pruning_curve": "pruning_curves",
}


def study_pipeline(variants: list[str]) -> Pipeline:
    """Study-wide tables, figures and the report, over every variant's outputs."""
    tables = pipeline(
        [
            node(
                combine_comparisons,
                [exported(v, "comparison") for v in variants],
                ["attention_comparison", "similarity_by_layer", "similarity_by_kv_group"],
                name="combine_comparisons",
            ),
            *(
                node(
                    concat_tables,
                    [exported(v, name) for v in variants],
                    combined,
                    name=f"combine_{name}",
                )
                for name, combined in STACKED.items()
            ),
            node(
                attention_sinks,
                ["all_head_metrics", "params:analysis.sink_threshold"],
                "attention_sinks",
                name="measure_attention_sinks",
            ),
            node(
                build_performance_table,
                [
                    "similarity_by_layer",
                    "attention_sinks",
                    *[exported(v, "summary") for v in variants],
                ],
                "performance",
                name="build_performance_table",
            ),
        ]
    )
    return tables + figures_pipeline()


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
                    "similarity_by_layer",
                    "head_changes",
                    "performance_figure",
                    "similarity_figure",
                    "head_metrics_figure",
                    "head_changes_figure",
                    "importance_figure",
                    "pruning_figure",
                    "sinks_figure",
                ],
                "attention_report",
                name="build_report",
            ),
        ]
    )
