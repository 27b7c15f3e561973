"""Fine-tuning nodes: thin adapters over :mod:`attention_lab.training`."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from attention_lab.datasets.model_directory import ModelArtifact, TrainedModel
from attention_lab.training.fine_tune import evaluate_variant, fine_tune_variant
from attention_lab.variants import parse_variant

logger = logging.getLogger(__name__)


def fine_tune(
    corpus: pd.DataFrame, variant_name: str, variant: dict[str, Any], study: dict[str, Any]
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train the variant on the train split (``none`` skips training).

    Returns the trained model for ``{variant}.model`` and a training log (seconds, steps,
    parameter counts, peak memory, examples per second).
    """
    return fine_tune_variant(parse_variant(variant_name, variant, study), corpus)


def evaluate(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, train_log: dict[str, Any]
) -> dict[str, Any]:
    """Task metrics on the test split plus the training cost, for ``{variant}.metrics``.

    Classification: accuracy, macro-F1, loss (``untrained_head`` flags method ``none``).
    Causal LM: loss and perplexity. Seq2seq: loss and exact-match accuracy of the label name.
    """
    model, tokenizer = model_artifact.load()
    metrics = {**evaluate_variant(model, tokenizer, model_artifact.info, corpus), **train_log}
    summary = {k: metrics[k] for k in ("eval_loss", "accuracy", "perplexity") if k in metrics}
    logger.info("%s: %s", metrics["variant"], summary)
    return metrics
