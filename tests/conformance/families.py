"""Tiny randomly initialised models of many families, built from config classes (no download).

Each entry: the Auto class, the config, the pad token and what the family exercises. Weights use
``initializer_range=0.3`` so attention maps are peaked rather than nearly uniform: with the
default 0.02 a 32-wide model attends almost evenly and map comparisons would catch little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
BY_NAME = {family.name: family for family in FAMILIES}


def word_tokenizer(pad: int, padding_side: str):
    """A word-level tokenizer over ``t0 … t127``: text ``"t5 t9"`` is ids ``[5, 9]``.

    The pad and unknown tokens get names that no word contains: special tokens are split out
    of the text before words are, so a pad token ``t1`` would cut ``t12`` in two.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    names = {pad: "<pad>", 3: "<unk>"}
    vocab = {names.get(i, f"t{i}"): i for i in range(VOCAB)}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", padding_side=padding_side
    )
