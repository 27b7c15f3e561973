"""Tiny randomly initialised models of many families, built from config classes (no download).

Each entry: the Auto class, the config, the pad token and what the family exercises. Weights use
``initializer_range=0.3`` so attention maps are peaked rather than nearly uniform: with the
default 0.02 a 32-wide model attends almost evenly and map comparisons would catch little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)

VOCAB = 128
INIT = 0.3
SMALL = {"vocab_size": VOCAB, "initializer_range": INIT}
DECODER = {
    **SMALL,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
}
IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


@dataclass(frozen=True)
class Family:
    name: str
    config_class: str
    kwargs: dict[str, Any]
    exercises: str
    task: str = "causal_lm"  # classification (encoders) | causal_lm | seq2seq
    pad: int = 0
    after_init: Any = field(default=None, compare=False)  # callable(model) for extra set-up

    @property
    def auto_class(self):
        return {
            "classification": AutoModelForSequenceClassification,
            "causal_lm": AutoModelForCausalLM,
            "seq2seq": AutoModelForSeq2SeqLM,
        }[self.task]

    def build(self, attn_implementation: str = "eager") -> torch.nn.Module:
        torch.manual_seed(0)
        config = getattr(transformers, self.config_class)(**self.kwargs)
        model = self.auto_class.from_config(config, attn_implementation=attn_implementation)
        if self.after_init is not None:
            self.after_init(model)
        return model.float().eval()


def _distinct_sinks(model) -> None:
    """GPT-OSS initialises every sink logit alike; give each head its own so they show."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.sinks.copy_(
                torch.randn(layer.self_attn.sinks.shape, generator=generator)
            )


FAMILIES = [
    Family(
        "bert",
        "BertConfig",
        {
            **SMALL,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "num_labels": 2,
        },
        "BERT-style encoder, absolute positions",
        "classification",
    ),
    Family(
        "roberta",
        "RobertaConfig",
        {
            **SMALL,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 66,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "num_labels": 2,
        },
        "encoder with positions derived from the pad token",
        "classification",
        pad=1,
    ),
    Family(
        "distilbert",
        "DistilBertConfig",
        {
            **SMALL,
            "dim": 32,
            "n_layers": 2,
            "n_heads": 4,
            "hidden_dim": 64,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "num_labels": 2,
        },
        "second encoder layout (q_lin/k_lin/v_lin)",
        "classification",
    ),
    Family(
        "llama",
        "LlamaConfig",
        {**DECODER, **IDS, "num_key_value_heads": 2},
        "Llama decoder, grouped-query attention 4/2, RoPE",
    ),
    Family(
        "qwen2",
        "Qwen2Config",
        {**DECODER, **IDS, "num_key_value_heads": 1},
        "decoder with query/key/value biases, 4 query heads on 1 key/value head",
    ),
    Family(
        "mistral",
        "MistralConfig",
        {**DECODER, **IDS, "num_key_value_heads": 2, "sliding_window": 3},
        "sliding-window decoder (window 3)",
    ),
    Family(
        "gemma2",
        "Gemma2Config",
        {
            **DECODER,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "query_pre_attn_scalar": 8,
            "sliding_window": 3,
            "attn_logit_softcapping": 2.0,
            "final_logit_softcapping": 30.0,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 1,
        },
        "attention logit soft-capping; alternating sliding and full layers",
    ),
    Family(
        "gpt_oss",
        "GptOssConfig",
        {
            **DECODER,
            **IDS,
            "intermediate_size": 32,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "sliding_window": 3,
            "rope_parameters": {
                "rope_type": "yarn",
                "rope_theta": 150000.0,
                "factor": 2.0,
                "beta_fast": 32.0,
                "beta_slow": 1.0,
                "truncate": False,
                "original_max_position_embeddings": 32,
            },
        },
        "learned sink logits per head (rows sum below 1); mixture of experts",
        after_init=_distinct_sinks,
    ),
    Family(
        "gemma3_text",
        "Gemma3TextConfig",
        {
            **DECODER,
            "num_hidden_layers": 3,
            "num_key_value_heads": 1,
            "head_dim": 8,
            "query_pre_attn_scalar": 8,
            "sliding_window": 3,
            "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 1,
        },
        "mixed sliding and full layers with a single key/value head",
    ),
    Family(
        "phi3",
        "Phi3Config",
        {**DECODER, **IDS, "num_key_value_heads": 2, "original_max_position_embeddings": 64},
        "fused qkv_proj (Linear, [q | k | v])",
    ),
    Family(
        "gpt2",
        "GPT2Config",
        {
            **SMALL,
            "n_positions": 64,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_inner": 64,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        "fused c_attn (Conv1D, [q | k | v]), absolute positions",
    ),
    Family(
        "gpt_neox",
        "GPTNeoXConfig",
        {
            **SMALL,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
            **IDS,
        },
        "fused query_key_value interleaved per head, partial rotary",
    ),
    Family(
        "opt",
        "OPTConfig",
        {
            **SMALL,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "word_embed_proj_dim": 32,
            "max_position_embeddings": 64,
            "pad_token_id": 1,
            "bos_token_id": 2,
            "eos_token_id": 2,
        },
        "positions from the attention mask; queries pre-scaled",
        pad=1,
    ),
    Family(
        "bart",
        "BartConfig",
        {
            **SMALL,
            "d_model": 32,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 64,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "forced_eos_token_id": None,
        },
        "encoder-decoder with learned positions; cross-attention",
        "seq2seq",
        pad=1,
    ),
    Family(
        "t5",
        "T5Config",
        {
            "vocab_size": VOCAB,
            "initializer_factor": 4 * INIT,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 2,
            "num_decoder_layers": 2,
            "num_heads": 4,
            "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 16,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
        },
        "encoder-decoder with relative position bias; unscaled queries",
        "seq2seq",
    ),
]
# families whose attention does not call transformers' AttentionInterface: mechanism mha only,
# their maps read from their own eager output_attentions
OWN_ATTENTION_FAMILIES = [
    Family(
        "deberta_v2",
        "DebertaV2Config",
        {
            **SMALL,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "relative_attention": True,
            "pos_att_type": ["p2c", "c2p"],
            "position_buckets": 16,
            "max_relative_positions": 32,
            "pad_token_id": 0,
            "num_labels": 2,
        },
        "disentangled attention (content and relative position), outside the interface",
        task="classification",
    ),
    Family(
        "bloom",
        "BloomConfig",
        {**SMALL, "hidden_size": 32, "n_layer": 2, "n_head": 4, **IDS},
        "ALiBi position bias, fused query_key_value, outside the interface",
    ),
    Family(
        "mpt",
        "MptConfig",
        {
            **SMALL,
            "d_model": 32,
            "n_layers": 2,
            "n_heads": 4,
            "max_seq_len": 64,
            "expansion_ratio": 2,
            **IDS,
        },
        "ALiBi, fused Wqkv, outside the interface",
    ),
]
BY_NAME = {family.name: family for family in FAMILIES + OWN_ATTENTION_FAMILIES}

LENGTHS = (7, 3, 5)  # one batch: every example but the longest is padded


def probe_set(seed: int = 0) -> pd.DataFrame:
    """Three word sequences of LENGTHS tokens over the word tokenizer's vocabulary."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"t{i}" for i in rng.integers(4, 128, n)) for n in LENGTHS]
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "text": texts, "label": 0})


def mechanisms_for(family: Family) -> list:
    """gqa (half the checkpoint's key/value heads), mqa and a window of 2."""
    from attention_lab.attention.mechanisms import MechanismSpec

    return [
        MechanismSpec("gqa", kv_heads=max(1, kv_heads(family) // 2)),
        MechanismSpec("mqa"),
        MechanismSpec("sliding_window", window=2),
    ]


def kv_heads(family: Family) -> int:
    """Key/value heads of the family's checkpoint, read from its config."""
    config = getattr(transformers, family.config_class)(**family.kwargs)
    return getattr(config, "num_key_value_heads", None) or config.num_attention_heads


# Self-attention key/value projections by name; cross-attention modules are left alone.
SEPARATE_KV = ("k_proj", "v_proj", "key", "value", "k_lin", "v_lin", "k", "v")
CROSS = ("encoder_attn", "EncDecAttention", "crossattention")


def _average_heads(rows: torch.Tensor, heads: int, groups: int) -> torch.Tensor:
    """(heads * d, ...) rows -> every head's rows replaced by the mean of its contiguous group."""
    per_group = rows.reshape(groups, heads // groups, rows.shape[0] // heads, *rows.shape[1:])
    return per_group.mean(1, keepdim=True).expand_as(per_group).reshape(rows.shape)


def pooled_kv_copy(family: Family, groups: int) -> torch.nn.Module:
    """The native eager model with each self-attention's key and value projection weights
    averaged within groups of heads.

    This is grouped-query uptraining (Ainslie et al., 2023) done in weight space, with no code
    of the project: its maps are the independent reference for the project's ``gqa``/``mqa``,
    which pools the projected keys and values instead (equal, as projections are linear and
    RoPE rotates every head alike).
    """
    model = family.build("eager")
    heads, kv = model.config.get_text_config().num_attention_heads, kv_heads(family)
    with torch.no_grad():
        for name, module in model.named_modules():
            if any(c in name for c in CROSS):
                continue
            if hasattr(module, "qkv_proj"):  # Phi-3 rows: [q (Hq d) | k (Hkv d) | v (Hkv d)]
                w = module.qkv_proj.weight
                d = w.shape[0] // (heads + 2 * kv)
                for start in (heads * d, (heads + kv) * d):
                    part = slice(start, start + kv * d)
                    w[part] = _average_heads(w[part], kv, groups)
            elif hasattr(module, "c_attn"):  # GPT-2 Conv1D columns: [q | k | v]
                width = module.c_attn.weight.shape[1] // 3
                for start in (width, 2 * width):
                    part = slice(start, start + width)
                    w, b = module.c_attn.weight, module.c_attn.bias
                    w[:, part] = _average_heads(w[:, part].T, heads, groups).T
                    b[part] = _average_heads(b[part], heads, groups)
            elif hasattr(module, "query_key_value"):  # GPT-NeoX rows per head: [q_h | k_h | v_h]
                for tensor in (module.query_key_value.weight, module.query_key_value.bias):
                    per_head = tensor.view(heads, 3, -1, *tensor.shape[1:])
                    for i in (1, 2):
                        flat = per_head[:, i].reshape(-1, *tensor.shape[1:])
                        per_head[:, i] = _average_heads(flat, heads, groups).view_as(per_head[:, i])
            else:
                for child in SEPARATE_KV:
                    linear = getattr(module, child, None)
                    if isinstance(linear, torch.nn.Linear):
                        linear.weight.copy_(_average_heads(linear.weight, kv, groups))
                        if linear.bias is not None:
                            linear.bias.copy_(_average_heads(linear.bias, kv, groups))
    return model


def word_tokenizer(pad: int, padding_side: str):
    """A word-level tokenizer over ``t0 … t127``: text ``"t5 t9"`` is ids ``[5, 9]``."""
    from attention_lab.analysis.copy_task import word_tokenizer as words

    return words(VOCAB, pad, padding_side)
