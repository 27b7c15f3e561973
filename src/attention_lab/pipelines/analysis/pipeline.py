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
                head_changes,
                ["example_head_metrics", "reference_example_head_metrics", "params:analysis"],
                "head_changes",
                name="test_head_changes",
            ),
            node(
                compare_to_reference,
                ["attention", "reference_attention", "params:analysis"],
                "comparison",
                name="compare_to_reference",
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


def create_pipeline(references: dict[str, str] | None = None) -> Pipeline:
    """``references`` maps each variant to the variant it is compared with (its model's own
    reference, see :func:`attention_lab.variants.references`), in study order."""
    variants = list(references or {})
    if not variants:
        return Pipeline([])
    per_variant = sum(
        (
            pipeline(
                variant_template(),
                namespace=v,
                inputs={
                    "corpus": "corpus",
                    "reference_attention": f"{references[v]}.attention",
                    "reference_example_head_metrics": f"{references[v]}.example_head_metrics",
                },
                parameters={"params:analysis"},
            )
            for v in variants
        ),
        Pipeline([]),
    )
    return per_variant + study_pipeline(variants)


def study_pipeline(variants: list[str]) -> Pipeline:
    """Study-wide tables, figures and the report, over every variant's outputs."""
    tables = pipeline(
        [
            node(
                combine_comparisons,
                [f"{v}.comparison" for v in variants],
                ["attention_comparison", "similarity_by_layer", "similarity_by_kv_group"],
                name="combine_comparisons",
            ),
            node(
                concat_tables,
                [f"{v}.head_metrics" for v in variants],
                "all_head_metrics",
                name="combine_head_metrics",
            ),
            node(
                concat_tables,
                [f"{v}.head_importance" for v in variants],
                "head_importance",
                name="combine_head_importance",
            ),
            node(
                concat_tables,
                [f"{v}.head_changes" for v in variants],
                "head_changes",
                name="combine_head_changes",
            ),
            node(
                concat_tables,
                [f"{v}.pruning_curve" for v in variants],
                "pruning_curves",
                name="combine_pruning_curves",
            ),
            node(
                attention_sinks,
                ["all_head_metrics", "params:analysis.sink_threshold"],
                "attention_sinks",
                name="measure_attention_sinks",
            ),
            node(
                build_performance_table,
                ["similarity_by_layer", "attention_sinks", *[f"{v}.summary" for v in variants]],
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
