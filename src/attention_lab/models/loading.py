"""Load a model for a task with an attention mechanism applied, on CUDA when present."""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EncoderDecoderModel,
    PreTrainedTokenizerBase,
)

from attention_lab.attention.conversion import convert_kv_heads, supports_native_kv_heads
from attention_lab.attention.interface import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ConfigError
from attention_lab.models.zoo import TASKS, hub_error, resolve

logger = logging.getLogger(__name__)


def device() -> torch.device:
    """CUDA when present, CPU otherwise; the code path is the same."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _from_pretrained(loader, name: str, source: str, **kwargs):
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as exc:  # hub ids while offline, missing files in a folder
        raise hub_error(name, exc) from exc


def load_tokenizer(name: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (decoders often lack one)."""
    tokenizer = _from_pretrained(
        AutoTokenizer, name, resolve(name), trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str,
    task: str,
    mechanism: MechanismSpec | None = None,
    num_labels: int | None = None,
    trust_remote_code: bool = False,
    pad_token_id: int | None = None,
) -> nn.Module:
    """Load ``name`` (alias, folder or hub id) for ``task`` with ``mechanism`` applied.

    classification -> ``AutoModelForSequenceClassification``; causal_lm ->
    ``AutoModelForCausalLM``; seq2seq -> ``AutoModelForSeq2SeqLM``, or an encoder-only
    checkpoint warm-started as a bert2bert ``EncoderDecoderModel``. A grouped-/multi-query
    mechanism on a model with native key/value heads (Llama family) rewrites the weights.
    """
    if task not in TASKS:
        raise ConfigError(f"task: unknown task {task!r}; allowed: {', '.join(TASKS)}.")
    mechanism = mechanism or MechanismSpec()
    source = resolve(name)
    common = {"trust_remote_code": trust_remote_code, "attn_implementation": "eager"}
    if task == "classification":
        if not num_labels:
            raise ConfigError(
                "num_labels: classification needs the number of labels (from the corpus)."
            )
        model = _from_pretrained(
            AutoModelForSequenceClassification, name, source, num_labels=num_labels, **common
        )
    elif task == "causal_lm":
        model = _from_pretrained(AutoModelForCausalLM, name, source, **common)
    else:
        config = _from_pretrained(AutoConfig, name, source, trust_remote_code=trust_remote_code)
        if getattr(config, "is_encoder_decoder", False):
            model = _from_pretrained(AutoModelForSeq2SeqLM, name, source, **common)
        else:  # warm-start an encoder-only checkpoint as bert2bert (Rothe et al., 2020)
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(source, source, **common)
    if pad_token_id is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad_token_id
    target = mechanism.target_kv_heads
    if target is not None and supports_native_kv_heads(model) and mechanism.layers is None:
        convert_kv_heads(model, target)
    apply_mechanism(model, mechanism)
    return model
