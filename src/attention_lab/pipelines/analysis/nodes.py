"""Analysis nodes that need more than a library call: loading a model for head importance,
pruning and head functions."""

from __future__ import annotations

import logging

import pandas as pd

from attention_lab.analysis.function_probes import (
    ABLATION_COLUMNS,
    FUNCTION_COLUMNS,
    build_probes,
    induction_ablation,
    retrieval_ablation,
    retrieval_rows,
    score_heads,
)
from attention_lab.analysis.importance import IMPORTANCE_COLUMNS, importance_table
from attention_lab.analysis.pruning import PRUNING_COLUMNS, pruning_curve
from attention_lab.analysis.retrieval import build_needle_probes
from attention_lab.attention.interface import INTERFACE_PATH, attention_path
from attention_lab.datasets.model_directory import ModelArtifact
from attention_lab.errors import DataError
from attention_lab.methods import method_named
from attention_lab.models.loading import load_tokenizer
from attention_lab.models.shape import model_shape
from attention_lab.parameters import AnalysisSettings, FunctionSettings

logger = logging.getLogger(__name__)


def compute_head_importance(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, params: AnalysisSettings
) -> pd.DataFrame:
    """Michel et al. (2019) head importance on the validation split (fine-tuned classifiers only)."""
    info = model_artifact.info
    if info.task != "classification" or not method_named(info.method).updates_weights:
        logger.info("%s: head importance needs a fine-tuned classifier; skipped", info.variant)
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    validation = corpus[corpus["split"] == "validation"].head(
        AnalysisSettings.of(params).importance_examples
    )
    if validation.empty:
        raise DataError(
            "head importance: the validation split is empty; give ingestion.split a validation share."
        )
    model, tokenizer = model_artifact.load()
    if attention_path(model) != INTERFACE_PATH:
        logger.info(
            "%s: head importance needs head gates (attention interface); skipped", info.variant
        )
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    return importance_table(model, tokenizer, info, validation)


def compute_pruning_curve(
    model_artifact: ModelArtifact,
    corpus: pd.DataFrame,
    head_importance: pd.DataFrame,
    params: AnalysisSettings,
) -> pd.DataFrame:
    """Michel et al. (2019) pruning curve on the first ``pruning_examples`` test examples,
    for every variant that has head importance (fine-tuned classifiers)."""
    if head_importance.empty:
        return pd.DataFrame(columns=PRUNING_COLUMNS)
    test = corpus[corpus["split"] == "test"].head(AnalysisSettings.of(params).pruning_examples)
    if test.empty:
        raise DataError(
            "pruning curve: the test split is empty; give ingestion.split a test share."
        )
    model, tokenizer = model_artifact.load()
    return pruning_curve(model, tokenizer, model_artifact.info, head_importance, test)


NEEDLE_COLUMNS = ["id", "input_ids", "needle_start", "needle_end", "answer_start"]


def build_function_probes(
    model_artifact: ModelArtifact, corpus: pd.DataFrame, params: AnalysisSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The probes of head functions, from seeds, so that every variant of one model reads the
    same ones: repeated random sequences of its vocabulary (``{job}.function_probes``) and,
    for causal LMs, needles in haystacks of the test split's text (``{job}.needle_probes``)."""
    settings = AnalysisSettings.of(params).head_functions
    info = model_artifact.info
    if not settings.enabled:
        return pd.DataFrame(columns=["id", "input_ids", "offset", "half"]), pd.DataFrame(
            columns=NEEDLE_COLUMNS
        )
    tokenizer = load_tokenizer(str(model_artifact.path), info.trust_remote_code)
    settings = _fitted(settings, _max_positions(model_artifact), info.variant)
    needles = pd.DataFrame(columns=NEEDLE_COLUMNS)
    if info.task == "causal_lm":
        texts = corpus.loc[corpus["split"] == "test", "text"].tolist()
        needles = build_needle_probes(
            texts, tokenizer, settings.needles, settings.needle_tokens, settings.seed
        )
    return build_probes(tokenizer, settings), needles


def _max_positions(model_artifact: ModelArtifact) -> int | None:
    """How many positions the variant's model reads (its config, or its base model's)."""
    from transformers import AutoConfig

    from attention_lab.models.zoo import resolve

    info = model_artifact.info
    folder = model_artifact.path
    source = str(folder) if (folder / "config.json").exists() else resolve(info.base_model)
    config = AutoConfig.from_pretrained(source, trust_remote_code=info.trust_remote_code)
    return getattr(config.get_text_config(), "max_position_embeddings", None)


def _fitted(settings: FunctionSettings, limit: int | None, variant: str) -> FunctionSettings:
    """The probes shortened to fit a model with ``limit`` positions (a BOS token included)."""
    if limit is None or (2 * settings.half + 1 <= limit and settings.needle_tokens <= limit):
        return settings
    fitted = settings.model_copy(
        update={
            "half": min(settings.half, (limit - 1) // 2),
            "needle_tokens": min(settings.needle_tokens, limit),
        }
    )
    logger.info(
        "%s reads %d positions: head-function probes shortened to %s", variant, limit, fitted
    )
    return fitted


def detect_head_functions(
    model_artifact: ModelArtifact,
    probes: pd.DataFrame,
    needles: pd.DataFrame,
    params: AnalysisSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each head's function scores, and (causal LMs) the ablations that check them: the loss
    on the repeated half with the top-k induction heads ablated, and the needle-copy accuracy
    with the top-k retrieval heads ablated, each against k random heads of the same layers."""
    params = AnalysisSettings.of(params)
    settings = params.head_functions
    if probes.empty:
        return pd.DataFrame(columns=FUNCTION_COLUMNS), pd.DataFrame(columns=ABLATION_COLUMNS)
    info = model_artifact.info
    model, _ = model_artifact.load()
    kind = model_shape(model).kinds[0]
    labels = {"variant": info.variant, "seed": info.seed, "kind": kind}
    scores = score_heads(model, probes, labels, params)
    if info.task != "causal_lm" or attention_path(model) != INTERFACE_PATH:
        # both checks need next-token predictions, and heads gated through the interface
        return scores, pd.DataFrame(columns=ABLATION_COLUMNS)
    scores = pd.concat([scores, retrieval_rows(model, needles, labels, params)], ignore_index=True)
    ablations = pd.concat(
        [
            induction_ablation(model, probes, scores, settings),
            retrieval_ablation(model, needles, scores, settings),
        ],
        ignore_index=True,
    )
    return scores, ablations.assign(variant=info.variant, seed=info.seed)[ABLATION_COLUMNS]
