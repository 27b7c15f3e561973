"""Llama attention with a converted mechanism: a latent key/value cache (MLA), an output gate.

:class:`ConvertedLlamaAttention` is ``LlamaAttention`` with the parts a conversion adds.
Its forward is Llama's, step for step, except where a part is present:

- ``latent`` (:class:`LatentKV`, multi-head latent attention by the MHA2MLA recipe): keys and
  values come from a shared latent, and RoPE acts only on the frequency pairs each key/value
  head keeps. The cache holds the rotated kept pairs and the latent, not full keys and values.
- ``output_gate`` (gated attention, Qiu et al., 2025): each head's output is multiplied,
  element by element, by ``sigmoid(x W + b)`` of the layer's input ``x``, before ``o_proj``.

The weights still come from the family's own eager function through the attention interface
(this module imports Llama's ``eager_attention_forward``, which
:func:`~attention_lab.attention.interface.family_eager` finds here), so the stored maps are the
converted model's own.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    apply_rotary_pos_emb,
    eager_attention_forward,
    rotate_half,
)

from attention_lab.errors import ConfigError

__all__ = ["ConvertedLlamaAttention", "LatentKV", "eager_attention_forward"]

STRUCTURE_KEY = "attention_lab_structure"  # config record of the parts a conversion added


def record_structure(model: nn.Module, part: str, value) -> None:
    """Note in the config that ``part`` was added, so a saved model can be rebuilt on load."""
    record = dict(getattr(model.config, STRUCTURE_KEY, None) or {})
    record[part] = value
    setattr(model.config, STRUCTURE_KEY, record)


class LatentKV(nn.Module):
    """Keys and values of ``kv_heads`` heads from a ``rank``-dimensional latent (MHA2MLA).

    ``order`` (Hkv, d) lists, per head, the key dimensions in storage order: first the kept
    RoPE pairs (all first halves ``j``, then their partners ``j + d/2``), then the others.
    """

    def __init__(
        self,
        hidden: int,
        kv_heads: int,
        head_dim: int,
        rank: int,
        rope_pairs: int,
        order,
        bias: bool = False,
    ):
        super().__init__()
        self.kv_heads, self.head_dim, self.rank = kv_heads, head_dim, rank
        self.rope_dims = 2 * rope_pairs
        self.register_buffer("order", torch.as_tensor(order).long())  # (Hkv, d)
        nope = head_dim - self.rope_dims
        self.k_rope = nn.Linear(hidden, kv_heads * self.rope_dims, bias=bias)
        self.kv_down = nn.Linear(hidden, rank, bias=False)  # the original biases go up
        with warnings.catch_warnings():  # every pair keeps RoPE: an empty k_up, which is fine
            warnings.simplefilter("ignore", UserWarning)
            self.k_up = nn.Linear(rank, kv_heads * nope, bias=bias)
        self.v_up = nn.Linear(rank, kv_heads * head_dim, bias=bias)

    @property
    def cached_width(self) -> int:
        """Numbers cached per position: every head's kept RoPE dims, and the latent."""
        return self.kv_heads * self.rope_dims + self.rank

    def query_rope_mask(self, query_heads: int) -> torch.Tensor:
        """(Hq, d) True on the dimensions where query head h keeps RoPE (its kv head's pairs)."""
        kept = torch.zeros(self.kv_heads, self.head_dim, dtype=torch.bool, device=self.order.device)
        kept.scatter_(1, self.order[:, : self.rope_dims], True)
        return kept.repeat_interleave(query_heads // self.kv_heads, dim=0)

    def forward(self, hidden, cos, sin, cache, layer_idx, kwargs):
        """hidden (B, T, hidden), cos/sin (B, T, d) -> key, value (B, Hkv, T_all, d)."""
        batch, length, _ = hidden.shape
        heads, d = self.kv_heads, self.head_dim
        rope = self.k_rope(hidden).view(batch, length, heads, self.rope_dims).transpose(1, 2)
        index = self.order[None, :, None, : self.rope_dims].expand(batch, heads, length, -1)
        cos_k = cos[:, None].expand(batch, heads, length, d).gather(-1, index)  # (B, Hkv, T, r)
        sin_k = sin[:, None].expand(batch, heads, length, d).gather(-1, index)
        rope = rope * cos_k + rotate_half(rope) * sin_k  # pairs are (i, i + r/2) here too
        latent = self.kv_down(hidden)[:, None]  # (B, 1, T, rank)
        if cache is not None:  # the cache holds these two, not full keys and values
            rope, latent = cache.update(rope, latent, layer_idx, kwargs=kwargs)
        total = latent.shape[2]
        nope = self.k_up(latent[:, 0]).view(batch, total, heads, d - self.rope_dims)
        value = self.v_up(latent[:, 0]).view(batch, total, heads, d).transpose(1, 2)
        stored = torch.cat([rope, nope.transpose(1, 2)], dim=-1)  # (B, Hkv, T_all, d), stored order
        back = self.order.argsort(-1)[None, :, None, :].expand(batch, heads, total, d)
        return stored.gather(-1, back), value  # keys in the head's own dimension order


class ConvertedLlamaAttention(LlamaAttention):
    """``LlamaAttention`` with an optional :class:`LatentKV` and an optional output gate."""

    latent: LatentKV | None
    output_gate: nn.Linear | None

    def forward(
        self,
        hidden_states: torch.Tensor,  # (B, T, hidden)
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        cache=None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cache = kwargs.pop("past_key_values", cache)
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, Hq, T, d)
        cos, sin = position_embeddings  # (B, T, d)
        latent = getattr(self, "latent", None)
        if latent is None:
            key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
            value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            if cache is not None:
                key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)
        else:
            keep = latent.query_rope_mask(query.shape[1])[None, :, None, :]  # (1, Hq, 1, d)
            cos_q = torch.where(keep, cos[:, None], torch.ones_like(cos[:, None]))
            sin_q = torch.where(keep, sin[:, None], torch.zeros_like(sin[:, None]))
            query = query * cos_q + rotate_half(query) * sin_q  # RoPE on the kept pairs only
            key, value = latent(hidden_states, cos, sin, cache, self.layer_idx, kwargs)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        output = output.reshape(*input_shape, -1).contiguous()  # (B, T, Hq * d)
        gate = getattr(self, "output_gate", None)
        if gate is not None:
            output = output * torch.sigmoid(gate(hidden_states))
        return self.o_proj(output), weights


def convertible(model: nn.Module, modules: list[nn.Module], what: str) -> None:
    """Refuse a model whose attention is not Llama's (the converted forward is Llama's)."""
    others = sorted({type(m).__name__ for m in modules if not isinstance(m, LlamaAttention)})
    if others:
        raise ConfigError(
            f"mechanism {what}: the conversion is written for Llama attention (SmolLM2, "
            f"TinyLlama, Llama 2/3); {type(model).__name__} has {', '.join(others)}."
        )


def converted(module: LlamaAttention) -> ConvertedLlamaAttention:
    """The same module object, now a :class:`ConvertedLlamaAttention` (no part added yet)."""
    if not isinstance(module, ConvertedLlamaAttention):
        module.__class__ = ConvertedLlamaAttention
        module.latent, module.output_gate = None, None
    return module
