"""Analysis nodes that need more than a library call: loading a model for head importance
and pruning."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from attention_lab.analysis.importance import IMPORTANCE_COLUMNS, importance_table
from attention_lab.analysis.pruning import PRUNING_COLUMNS, pruning_curve
from attention_lab.datasets.model_directory import ModelArtifact
from attention_lab.errors import DataError

logger = logging.getLogger(__name__)


def compute_head_importance(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Michel et al. (2019) head importance on the validation split (fine-tuned classifiers only)."""
    info = model_artifact.info
    if info["task"] != "classification" or info["method"] == "none":
        logger.info("%s: head importance needs a fine-tuned classifier; skipped", info["variant"])
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    validation = corpus[corpus["split"] == "validation"].head(
        int(params.get("importance_examples", 128))
    )
    if validation.empty:
        raise DataError(
            "head importance: the validation split is empty; give ingestion.split a validation share."
        )
    model, tokenizer = model_artifact.load()
    return importance_table(model, tokenizer, info, validation)


def compute_pruning_curve(
    model_artifact: ModelArtifact,
    corpus: pd.DataFrame,
    head_importance: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Michel et al. (2019) pruning curve on the first ``pruning_examples`` test examples,
    for every variant that has head importance (fine-tuned classifiers)."""
    if head_importance.empty:
        return pd.DataFrame(columns=PRUNING_COLUMNS)
    test = corpus[corpus["split"] == "test"].head(int(params.get("pruning_examples", 200)))
    if test.empty:
        raise DataError(
            "pruning curve: the test split is empty; give ingestion.split a test share."
        )
    model, tokenizer = model_artifact.load()
    return pruning_curve(model, tokenizer, model_artifact.info, head_importance, test)
