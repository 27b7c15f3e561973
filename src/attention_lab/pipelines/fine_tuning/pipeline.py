"""Fine-tuning: one namespace per job (a variant and a seed),
``corpus`` -> ``{job}.model`` -> ``{job}.metrics`` and ``{job}__predictions``, and on each
variant's first seed ``{job}.costs`` (KV bytes, prefill/decode speed, peak memory)."""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.fine_tuning.nodes import evaluate, fine_tune, measure_costs
from attention_lab.study import Job, exported


def job_template(costs: bool) -> Pipeline:
    measured = [
        node(measure_costs, ["model", "corpus", "params:costs"], "costs", name="measure_costs")
    ]
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
            *(measured if costs else []),
        ]
    )


def create_pipeline(jobs: Sequence[Job] = (), **kwargs) -> Pipeline:
    """``job`` is the namespace's own variant and seed, served by the catalog (``{job}.job``)."""
    first_jobs = {}
    for job in jobs:
        first_jobs.setdefault(job.variant, job)
    return sum((_job_pipeline(job, first_jobs[job.variant] == job) for job in jobs), Pipeline([]))


def _job_pipeline(job: Job, first_seed: bool) -> Pipeline:
    parameters = {
        "params:variant": f"params:variants.{job.variant}",
        "params:study": "params:study",
    }
    return pipeline(
        job_template(costs=first_seed),
        namespace=job.name,
        inputs={"corpus"},
        outputs={"predictions": exported(job, "predictions")},  # read by the study step
        parameters=parameters | ({"params:costs": "params:costs"} if first_seed else {}),
    )
