"""Attention map kinds: what each stored map is, in one place for every stage."""

from __future__ import annotations

ATTENTION_KINDS = ("encoder", "decoder", "cross")  # as the model computes them
NORM_SUFFIX = "_norm"  # encoder_norm ...: norm-based attention (Kobayashi et al., 2020)
STORED_KINDS = (*ATTENTION_KINDS, *(f"{kind}{NORM_SUFFIX}" for kind in ATTENTION_KINDS))
# where a variant's maps come from: transformers' attention interface (every mechanism), or a
# family's own output_attentions (families outside the interface; mha only)
INTERFACE_PATH, OUTPUT_ATTENTIONS_PATH = "attention_interface", "output_attentions"


def base_kind(kind: str) -> str:
    """``encoder_norm`` -> ``encoder``; a weights kind is its own base."""
    return kind.removesuffix(NORM_SUFFIX)
