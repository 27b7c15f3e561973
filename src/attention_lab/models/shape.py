"""What shape is this model? One answer, from the attention layers that actually run."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attention_lab.attention.apply import spec_from_config
from attention_lab.attention.discovery import AttentionLayer, discover, kinds_of, probe_inputs
from attention_lab.attention.interface import OUTPUT_ATTENTIONS_PATH, attention_path
from attention_lab.kinds import AttentionKind


@dataclass(frozen=True)
class ModelShape:
    """Layers per attention kind, query heads, key/value heads and their grouping.

    ``num_kv_heads`` is what the model computes with its mechanism applied: a ``gqa``/``mqa``
    variant reports its groups even where the checkpoint keeps more key/value projections.
    """

    kinds: tuple[str, ...]  # present, in store order: encoder, decoder, cross
    num_layers: dict[str, int]  # per kind
    causal: dict[str, bool]  # per kind
    num_heads: int  # query heads (of the first self-attention stack)
    num_kv_heads: int

    def kv_group(self, head: int) -> int:
        """The key/value head that query head ``head`` reads."""
        return head // (self.num_heads // self.num_kv_heads)

    @property
    def is_decoder_only(self) -> bool:
        """One causal stack: a decoder language model (no encoder, no cross-attention)."""
        return len(self.kinds) == 1 and AttentionKind(self.kinds[0]).causal


def model_shape(model: nn.Module) -> ModelShape:
    if attention_path(model) == OUTPUT_ATTENTIONS_PATH:
        return _shape_from_outputs(model)
    layers: list[AttentionLayer] = discover(model)
    kinds = tuple(kinds_of(model))
    first = next(layer for layer in layers if layer.is_self_attention)
    target = spec_from_config(model.config).target_kv_heads
    return ModelShape(
        kinds=kinds,
        num_layers={kind: sum(layer.kind == kind for layer in layers) for kind in kinds},
        causal={kind: next(la.causal for la in layers if la.kind == kind) for kind in kinds},
        num_heads=first.num_heads,
        num_kv_heads=min(target or first.num_kv_heads, first.num_kv_heads),
    )


@torch.no_grad()
def _shape_from_outputs(model: nn.Module) -> ModelShape:
    """A family outside the attention interface, read from its own ``output_attentions`` on a
    probe: one stack, causal where every map is zero above the diagonal."""
    maps = model(**probe_inputs(model), output_attentions=True).attentions  # L x (1, H, T, T)
    causal = bool(all((torch.triu(m[0], diagonal=1) == 0).all() for m in maps))
    kind = "decoder" if causal else "encoder"
    heads = maps[0].shape[1]
    return ModelShape((kind,), {kind: len(maps)}, {kind: causal}, heads, heads)
