"""Attention map kinds: what each stored map is, in one place for every stage.

A kind is one :class:`AttentionKind`: which attention the model computes (``encoder`` or
``decoder`` self-attention, ``cross``-attention of a decoder over its encoder) and whether the
map holds its weights or its norm-based twin (Kobayashi et al., 2020). Its name
(``decoder``, ``decoder_norm``) is how the store and the tables spell it.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTENTION_KINDS = ("encoder", "decoder", "cross")  # as the model computes them
NORM_SUFFIX = "_norm"  # encoder_norm ...: norm-based attention (Kobayashi et al., 2020)
STORED_KINDS = (*ATTENTION_KINDS, *(f"{kind}{NORM_SUFFIX}" for kind in ATTENTION_KINDS))
# where a variant's maps come from: transformers' attention interface (every mechanism), or a
# family's own output_attentions (families outside the interface; mha only)
INTERFACE_PATH, OUTPUT_ATTENTIONS_PATH = "attention_interface", "output_attentions"

# (query side, key side): whose tokens a kind's rows and columns are
_SIDES = {
    "encoder": ("encoder", "encoder"),
    "decoder": ("decoder", "decoder"),
    "cross": ("decoder", "encoder"),
}


@dataclass(frozen=True)
class AttentionKind:
    base: str  # encoder | decoder | cross
    norms: bool = False  # the norm-based map ||alpha f(x)|| rather than the weights alpha

    def __post_init__(self):
        if self.base not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention kind {self.base!r}; allowed: {STORED_KINDS}")

    @classmethod
    def parse(cls, name: str | AttentionKind) -> AttentionKind:
        """``decoder_norm`` -> AttentionKind("decoder", norms=True)."""
        if isinstance(name, AttentionKind):
            return name
        base = name.removesuffix(NORM_SUFFIX)
        return cls(base, norms=base != name)

    @property
    def name(self) -> str:
        return f"{self.base}{NORM_SUFFIX}" if self.norms else self.base

    def __str__(self) -> str:
        return self.name

    @property
    def weights(self) -> AttentionKind:
        """The attention weights of this kind (itself when it is the weights)."""
        return AttentionKind(self.base)

    @property
    def with_norms(self) -> AttentionKind:
        return AttentionKind(self.base, norms=True)

    @property
    def query_side(self) -> str:
        return _SIDES[self.base][0]

    @property
    def key_side(self) -> str:
        return _SIDES[self.base][1]

    @property
    def is_self_attention(self) -> bool:
        return self.base != "cross"

    @property
    def causal(self) -> bool:
        """Decoder self-attention is causal (every family's decoder stack, and a single stack
        whose maps are zero above the diagonal, is named ``decoder``); the others are not."""
        return self.base == "decoder"


# the self-attention kinds of weights, in store order: encoder, decoder
SELF_ATTENTION_KINDS = tuple(k for k in ATTENTION_KINDS if AttentionKind(k).is_self_attention)


def base_kind(kind: str) -> str:
    """``encoder_norm`` -> ``encoder``; a weights kind is its own base. Any string (a URL's
    value too): :meth:`AttentionKind.parse` is the check."""
    return kind.removesuffix(NORM_SUFFIX)


def norm_kind(kind: str) -> str:
    """``encoder`` -> ``encoder_norm``: the name of a kind's norm-based maps."""
    return AttentionKind.parse(kind).with_norms.name
