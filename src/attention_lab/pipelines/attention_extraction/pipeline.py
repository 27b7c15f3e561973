"""Attention extraction: ``{variant}.model`` + ``probe_set`` -> ``{variant}__attention``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.attention_extraction.nodes import extract_attention
from attention_lab.variants import exported


def create_pipeline(variants: list[str] = (), **kwargs) -> Pipeline:
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
                namespace=v,
                inputs={"probe_set"},
                outputs={"attention": exported(v, "attention")},  # read by the study step
                parameters={"params:attention_extraction"},
            )
            for v in variants
        ),
        Pipeline([]),
    )
