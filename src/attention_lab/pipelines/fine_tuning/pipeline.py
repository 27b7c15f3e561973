"""Fine-tuning: one namespace per job (a variant and a seed),
``corpus`` -> ``{job}.model`` -> ``{job}.metrics`` and ``{job}__predictions``."""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.fine_tuning.nodes import evaluate, fine_tune
from attention_lab.variants import Job, exported


def job_template() -> Pipeline:
    return pipeline(
        [
            node(
                fine_tune,
                ["corpus", "job", "params:variant", "params:study"],
                ["model", "train_log"],
                name="fine_tune",
            ),
            node(
                evaluate,
                ["model", "corpus", "train_log"],
                ["metrics", "predictions"],
                name="evaluate",
            ),
        ]
    )


def create_pipeline(jobs: Sequence[Job] = (), **kwargs) -> Pipeline:
    """``job`` is the namespace's own variant and seed, served by the catalog (``{job}.job``)."""
    return sum(
        (
            pipeline(
                job_template(),
                namespace=job.name,
                inputs={"corpus"},
                outputs={"predictions": exported(job, "predictions")},  # read by the study step
                parameters={
                    "params:variant": f"params:variants.{job.variant}",
                    "params:study": "params:study",
                },
            )
            for job in jobs
        ),
        Pipeline([]),
    )
