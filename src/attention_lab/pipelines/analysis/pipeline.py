"""Analysis: per-job head metrics and head importance; then, at the study level, each job
against its reference's run of the same seed, each variant's seeds against each other (the
noise floor), tests over seeds and examples, study-wide tables, figures and a report."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.analysis.changes import head_changes
from attention_lab.analysis.tables import (
    compare_to_reference,
    concat_tables,
    example_head_metrics,
    summarise_head_metrics,
    summarise_variant,
)
from attention_lab.pipelines.analysis.nodes import (
    build_function_probes,
    compute_head_importance,
    compute_pruning_curve,
    detect_head_functions,
)
from attention_lab.pipelines.analysis.study_pipeline import IMPORTANCE, study_pipeline
from attention_lab.study import Job, Study, exported


def job_template(importance: bool) -> Pipeline:
    """Head metrics and the run's summary; head importance, the pruning curve, the head
    functions (with their ablations) and the inference costs too when ``importance`` (each
    variant's first seed: they describe one trained model, and their backward passes would be
    a large part of each extra seed's cost)."""
    metrics = pipeline(
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
                summarise_variant,
                ["metrics", "head_metrics", *(["costs"] if importance else [])],
                "summary",
                name="summarise_variant",
            ),
        ]
    )
    return metrics + first_seed_template() if importance else metrics


def first_seed_template() -> Pipeline:
    """One trained model's head functions (and ablations), head importance, pruning curve."""
    return pipeline(
        [
            node(
                build_function_probes,
                ["model", "corpus", "params:analysis"],
                ["function_probes", "needle_probes"],
                name="build_function_probes",
            ),
            node(
                detect_head_functions,
                ["model", "function_probes", "needle_probes", "params:analysis"],
                ["head_functions", "function_ablations"],
                name="detect_head_functions",
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
        ]
    )


# what each job hands to the study-level step
EXPORTS = (
    "attention",
    "predictions",
    "example_head_metrics",
    "head_metrics",
    "head_importance",
    "pruning_curve",
    "head_functions",
    "function_ablations",
    "summary",
)


def job_pipeline(job: Job, first_seed: bool) -> Pipeline:
    """One job's analysis; it reads nothing of any other job."""
    outputs = [n for n in EXPORTS if n not in ("attention", "predictions")]
    return pipeline(
        job_template(importance=first_seed),
        namespace=job.name,
        inputs={
            "attention": exported(job, "attention"),
            **({"corpus": "corpus"} if first_seed else {}),
        },
        outputs={n: exported(job, n) for n in outputs if first_seed or n not in IMPORTANCE},
        parameters={"params:analysis"},
    )


def create_pipeline(study: Study | None = None) -> Pipeline:
    """Every job's analysis, then the study level (see :class:`attention_lab.study.Study`)."""
    if study is None or not study.jobs:
        return Pipeline([])
    per_job = sum(
        (job_pipeline(job, job.seed == study.seeds[0]) for job in study.jobs), Pipeline([])
    )
    return per_job + study_level(study)


def comparison_pipeline(job: Job, reference: Job) -> Pipeline:
    """Study level: one job against its reference's run with the same seed: maps per head,
    and per example and layer (what the intervals over seeds come from)."""
    return pipeline(
        [
            node(
                compare_to_reference,
                [exported(job, "attention"), exported(reference, "attention"), "params:analysis"],
                [exported(job, "comparison"), exported(job, "layer_similarity")],
                name=f"compare_{job.name}_to_reference",
            )
        ]
    )


def seed_pair_pipeline(variant: str, first: Job, second: Job) -> Pipeline:
    """Study level: two seeds of one variant, compared as a variant is with its reference:
    the noise floor of attention similarity."""
    pair = f"{variant}__between_seed{first.seed}_seed{second.seed}"  # matches no factory
    return pipeline(
        [
            node(
                compare_to_reference,
                [exported(first, "attention"), exported(second, "attention"), "params:analysis"],
                [f"{pair}__comparison", f"{pair}__layer_similarity"],
                name=f"compare_{pair}",
            )
        ]
    )


def variant_pipeline(study: Study, variant: str) -> Pipeline:
    """Study level, per variant: its seeds stacked, and its heads tested against the
    reference's over seeds and examples."""
    runs = study.jobs_of(variant)
    stacked = [
        node(
            concat_tables,
            [exported(job, name) for job in runs],
            exported(variant, name),
            name=f"stack_{name}_of_{variant}",
        )
        for name in ("example_head_metrics", "layer_similarity")
    ]
    pairs = [(first, second) for i, first in enumerate(runs) for second in runs[i + 1 :]]
    floor = (
        [
            node(
                concat_tables,
                [
                    f"{variant}__between_seed{a.seed}_seed{b.seed}__layer_similarity"
                    for a, b in pairs
                ],
                exported(variant, "seed_similarity"),
                name=f"stack_seed_similarity_of_{variant}",
            )
        ]
        if pairs
        else []
    )
    reference = study.reference_of(variant)
    tested = node(
        head_changes,
        [
            exported(variant, "example_head_metrics"),
            exported(reference, "example_head_metrics"),
            "params:analysis",
        ],
        exported(variant, "head_changes"),
        name=f"test_head_changes_of_{variant}",
    )
    return sum((seed_pair_pipeline(variant, a, b) for a, b in pairs), Pipeline([])) + pipeline(
        [*stacked, *floor, tested]
    )


def study_level(study: Study) -> Pipeline:
    """Everything that reads more than one job: comparisons, study tables, figures."""
    comparisons = sum(
        (comparison_pipeline(job, study.reference_job(job)) for job in study.jobs), Pipeline([])
    )
    per_variant = sum((variant_pipeline(study, v) for v in study.variants), Pipeline([]))
    # one namespace, so that the step is one job (`--namespaces=study`) and one Airflow task;
    # its datasets keep their names
    return pipeline(
        comparisons + per_variant + study_pipeline(study),
        tags="study",
        namespace="study",
        prefix_datasets_with_namespace=False,
    )
