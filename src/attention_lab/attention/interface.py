"""One attention function for every architecture, plugged in through transformers'
``AttentionInterface``.

BERT-family encoders and Llama-family decoders both call
``ALL_ATTENTION_FUNCTIONS[config._attn_implementation](module, query, key, value, mask, ...)``.
Registering :func:`attention_lab_forward` under :data:`IMPLEMENTATION` and selecting it
with ``attn_implementation`` swaps the computation without touching the model's code.
The function always returns the attention weights, which extraction relies on.

Each attention module gets a :class:`LayerPlan` attribute from :func:`apply_mechanism`
saying what to do in that layer; modules without one (cross-attention, say) run plain
eager attention.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from attention_lab.attention.mechanisms import MechanismSpec

IMPLEMENTATION = "attention_lab"
PLAN_ATTR = "attention_lab_plan"
HEAD_GATE_ATTR = "attention_lab_head_gate"  # optional (Hq,) tensor scaling each head's output
CONFIG_KEY = "attention_lab_mechanism"


@dataclass(frozen=True)
class LayerPlan:
    """What one attention module does: pool key/value heads, restrict to a band, or neither."""

    kv_heads: int | None = None  # pool key/value heads down to this many (None: keep)
    window: int | None = None  # band half-width (None: full attention)


def repeat_kv(hidden: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, n_kv, T, d) -> (B, n_kv * n_rep, T, d); query head h reads key/value head h // n_rep."""
    if n_rep == 1:
        return hidden
    return hidden.repeat_interleave(n_rep, dim=1)


def pool_kv(hidden: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """Mean-pool contiguous groups of heads: (B, H, T, d) -> (B, kv_heads, T, d).

    The uptraining recipe of Ainslie et al. (2023). Keys and values are linear in the
    projection weights (and RoPE is the same rotation for every head), so pooling the
    projected heads equals projecting with pooled weights.
    """
    batch, heads, length, dim = hidden.shape
    if heads == kv_heads:
        return hidden
    return hidden.view(batch, kv_heads, heads // kv_heads, length, dim).mean(dim=2)


def band_mask(q_len: int, k_len: int, window: int, causal: bool, device) -> torch.Tensor:
    """Boolean (Tq, Tk) mask, True where query i may see key j.

    Queries are the last ``q_len`` of ``k_len`` positions (as during cached decoding).
    Encoders: |i - j| <= window. Causal decoders: 0 <= i - j <= window (the causal
    mask itself still comes from the model).
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]  # (Tq, 1)
    k_pos = torch.arange(k_len, device=device)[None, :]  # (1, Tk)
    distance = q_pos - k_pos  # (Tq, Tk)
    if causal:
        return (distance >= 0) & (distance <= window)
    return distance.abs() <= window


def attention_lab_forward(
    module: nn.Module,
    query: torch.Tensor,  # (B, Hq, Tq, d)
    key: torch.Tensor,  # (B, Hkv, Tk, d)
    value: torch.Tensor,  # (B, Hkv, Tk, d)
    attention_mask: torch.Tensor | None,  # (B, 1, Tq, Tk) additive, or None
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention with the module's :class:`LayerPlan`; returns (output, weights).

    output: (B, Tq, Hq, d); weights: (B, Hq, Tq, Tk), rows summing to 1.
    """
    plan: LayerPlan | None = getattr(module, PLAN_ATTR, None)
    n_q = query.shape[1]
    if scaling is None:
        scaling = query.shape[-1] ** -0.5

    if plan is not None and plan.kv_heads is not None and plan.kv_heads < key.shape[1]:
        key, value = pool_kv(key, plan.kv_heads), pool_kv(value, plan.kv_heads)  # (B, G, Tk, d)
    key = repeat_kv(key, n_q // key.shape[1])  # (B, Hq, Tk, d)
    value = repeat_kv(value, n_q // value.shape[1])  # (B, Hq, Tk, d)

    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, Hq, Tq, Tk)
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    if plan is not None and plan.window is not None:
        allowed = band_mask(
            scores.shape[-2],
            scores.shape[-1],
            plan.window,
            bool(getattr(module, "is_causal", False)),
            scores.device,
        )
        # masked_fill with the dtype's minimum (not -inf) keeps fully masked padding rows finite.
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)

    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(
        query.dtype
    )  # (B, Hq, Tq, Tk)
    weights_dropped = nn.functional.dropout(weights, p=dropout, training=module.training)
    gate = getattr(module, HEAD_GATE_ATTR, None)
    if gate is not None:  # head mask xi_h of Michel et al. (2019): scales head h's output
        weights_dropped = weights_dropped * gate.view(1, -1, 1, 1)
    output = torch.matmul(weights_dropped, value)  # (B, Hq, Tq, d)
    return output.transpose(1, 2).contiguous(), weights  # (B, Tq, Hq, d), (B, Hq, Tq, Tk)


def register() -> None:
    """Register the function and its (eager) mask builder; idempotent."""
    AttentionInterface.register(IMPLEMENTATION, attention_lab_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


register()


def attention_modules(model: nn.Module) -> list[tuple[str, str, int, nn.Module]]:
    """Find the attention modules that call the attention interface.

    Returns (name, kind, layer, module) with kind ``encoder`` / ``decoder`` (self-attention,
    bidirectional or causal) or ``cross``. Works by shape, not by architecture name: a module
    with query/key/value projections (``q_proj``/``query``/``q``) is an attention module.
    """
    found: list[tuple[str, str, int, nn.Module]] = []
    counters: dict[str, int] = {}
    for name, module in model.named_modules():
        has_qkv = any(
            all(hasattr(module, p) for p in trio)
            for trio in (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("q", "k", "v"))
        )
        if not has_qkv:
            continue
        lowered = (name + type(module).__name__).lower()
        if "cross" in lowered or "encoder_attn" in lowered or "encdecattention" in lowered:
            kind = "cross"
        elif getattr(module, "is_causal", False) or getattr(module, "is_decoder", False):
            kind = "decoder"
        else:
            kind = "encoder"
        layer = counters.get(kind, 0)
        counters[kind] = layer + 1
        found.append((name, kind, layer, module))
    return found


def apply_mechanism(model: nn.Module, spec: MechanismSpec) -> nn.Module:
    """Attach ``spec`` to every self-attention layer it covers and select our implementation.

    The spec is also written to ``model.config`` so a saved model re-applies it on load.
    """
    modules = attention_modules(model)
    layers_per_kind = Counter(
        kind for _, kind, _, _ in modules if kind != "cross"
    )  # encoder / decoder stacks
    num_heads = model.config.get_text_config().num_attention_heads
    for count in layers_per_kind.values():
        spec.check_against(count, num_heads)
    for _, kind, layer, module in modules:
        if kind == "cross" or not spec.applies_to(layer):
            plan = None
        else:
            plan = LayerPlan(kv_heads=spec.target_kv_heads, window=spec.window)
        setattr(module, PLAN_ATTR, plan)
    setattr(model.config, CONFIG_KEY, spec.to_dict())
    model.set_attn_implementation(IMPLEMENTATION)
    return model


def spec_from_config(config) -> MechanismSpec:
    """The mechanism a saved model was trained with (``mha`` when none is recorded)."""
    return MechanismSpec.from_config(getattr(config, CONFIG_KEY, None) or {"name": "mha"})
