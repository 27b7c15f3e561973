"""Fine-tuning: one namespace per variant, ``corpus`` -> ``{variant}.model`` -> ``{variant}.metrics``."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from attention_lab.pipelines.fine_tuning.nodes import evaluate, fine_tune


def variant_template(variant: str) -> Pipeline:
    train = update_wrapper(partial(fine_tune, variant_name=variant), fine_tune)
    return pipeline(
        [
            node(
                train,
                ["corpus", "params:variant", "params:study"],
                ["model", "train_log"],
                name="fine_tune",
            ),
            node(evaluate, ["model", "corpus", "train_log"], "metrics", name="evaluate"),
        ]
    )


def create_pipeline(variants: list[str] = (), **kwargs) -> Pipeline:
    return sum(
        (
            pipeline(
                variant_template(v),
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
