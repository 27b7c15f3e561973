"""Attention extraction: ``{job}.model`` + ``probe_set`` -> ``{job}__attention``."""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.attention_extraction.nodes import extract_attention
from attention_lab.study import Job, exported


def create_pipeline(jobs: Sequence[Job] = (), **kwargs) -> Pipeline:
    template = pipeline(
        [
            node(
                extract_attention,
                ["model", "probe_set", "params:attention_extraction"],
                "attention",
                name="extract_attention",
            )
        ]
    )
    return sum(
        (
            pipeline(
                template,
                namespace=job.name,
                inputs={"probe_set"},
                outputs={"attention": exported(job, "attention")},  # read by the study step
                parameters={"params:attention_extraction"},
            )
            for job in jobs
        ),
        Pipeline([]),
    )
