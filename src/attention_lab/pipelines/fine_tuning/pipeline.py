"""Fine-tuning: one namespace per variant, ``corpus`` -> ``{variant}.model`` -> ``{variant}.metrics``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.fine_tuning.nodes import evaluate, fine_tune


def variant_template() -> Pipeline:
    return pipeline(
        [
            node(
                fine_tune,
                ["corpus", "variant_name", "params:variant", "params:study"],
                ["model", "train_log"],
                name="fine_tune",
            ),
            node(evaluate, ["model", "corpus", "train_log"], "metrics", name="evaluate"),
        ]
    )


def create_pipeline(variants: list[str] = (), **kwargs) -> Pipeline:
    """``variant_name`` is the namespace's own name, served by the catalog (``{variant}.variant_name``)."""
    return sum(
        (
            pipeline(
                variant_template(),
                namespace=v,
                inputs={"corpus"},
                parameters={
                    "params:variant": f"params:variants.{v}",
                    "params:study": "params:study",
                },
            )
            for v in variants
        ),
        Pipeline([]),
    )
