"""Fine-tuning nodes: thin adapters over :mod:`attention_lab.training`."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from attention_lab.datasets.cost_process import measure_in_fresh_process
from attention_lab.datasets.model_directory import ModelArtifact, TrainedModel
from attention_lab.parameters import CostSettings
from attention_lab.training.fine_tune import evaluate_artifact, fine_tune_variant
from attention_lab.variants import parse_variant

logger = logging.getLogger(__name__)


def fine_tune(
    corpus: pd.DataFrame, job: dict[str, Any], variant: dict[str, Any], study: dict[str, Any]
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train the job's variant on the train split with the job's seed (``none`` skips training).

    Returns the trained model for ``{job}.model`` and a training log (seconds, steps,
    parameter counts, peak memory, examples per second).
    """
    spec = parse_variant(job["variant"], variant, study, seed=int(job["seed"]))
    return fine_tune_variant(spec, corpus)


def evaluate(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, train_log: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Task metrics on the test split plus the training cost, for ``{job}.metrics``, and each
    test example's outcome (``{job}__predictions``: loss, and what it got right), from which
    the study's intervals over seeds and examples come.

    Classification: accuracy, macro-F1, loss (``untrained_head`` flags method ``none``).
    Causal LM: loss and perplexity. Seq2seq: loss and exact-match accuracy of the label name.
    """
    return evaluate_artifact(model_artifact, corpus, train_log)


def measure_costs(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, costs: CostSettings
) -> dict[str, Any]:
    """What the variant costs at inference (``{job}.costs``): KV-cache bytes per token,
    prefill and decode tokens/s on the test split's text, peak memory; each variant's
    first seed only, as the architecture and not the seed sets them."""
    settings = CostSettings.of(costs)
    if not settings.enabled:
        return {}
    texts = corpus.loc[corpus["split"] == "test", "text"].tolist()
    measured = measure_in_fresh_process(model_artifact, texts, settings)
    logger.info("%s costs: %s", model_artifact.info.variant, measured)
    return measured
