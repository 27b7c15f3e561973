"""Native key/value-head conversion for models that support grouped-query attention.

Llama-family models read ``num_key_value_heads`` from their config, so a GQA/MQA variant
can be stored as a genuinely smaller checkpoint: ``k_proj``/``v_proj`` are rewritten by
mean-pooling the rows of each group (Ainslie et al., 2023), or repeated to reach more
key/value heads than the checkpoint has.
"""

from __future__ import annotations

import torch
from torch import nn

from attention_lab.attention.discovery import LAYERS_ATTR, discover
from attention_lab.errors import ConfigError


def supports_native_kv_heads(model: nn.Module) -> bool:
    """True when the config has ``num_key_value_heads`` and every self-attention layer has
    separate ``k_proj``/``v_proj`` projections (Llama, Mistral, Qwen; not fused Phi-3)."""
    if getattr(model.config.get_text_config(), "num_key_value_heads", None) is None:
        return False
    return all(
        isinstance(getattr(layer.module, "k_proj", None), nn.Linear)
        and isinstance(getattr(layer.module, "v_proj", None), nn.Linear)
        for layer in discover(model)
        if layer.is_self_attention
    )


def _regroup(linear: nn.Linear, current: int, target: int, head_dim: int) -> nn.Linear:
    """Return a new Linear whose ``current`` output heads become ``target`` heads."""
    weight = linear.weight.data.view(current, head_dim, -1)  # (n_kv, d, hidden)
    bias = (
        linear.bias.data.view(current, head_dim) if linear.bias is not None else None
    )  # (n_kv, d)
    if target < current:
        group = current // target
        weight = weight.view(target, group, head_dim, -1).mean(dim=1)  # (target, d, hidden)
        bias = bias.view(target, group, head_dim).mean(dim=1) if bias is not None else None
    else:
        rep = target // current
        weight = weight.repeat_interleave(rep, dim=0)  # (target, d, hidden)
        bias = bias.repeat_interleave(rep, dim=0) if bias is not None else None
    new = nn.Linear(linear.in_features, target * head_dim, bias=bias is not None)
    new = new.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight.reshape(target * head_dim, -1))
        if bias is not None:
            new.bias.copy_(bias.reshape(-1))
    return new


def head_dim_of(config) -> int:
    """The per-head size of a (text) config."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def set_kv_heads(model: nn.Module, target: int) -> nn.Module:
    """Record ``target`` key/value heads in the config and the attention modules, once their
    projections have been rewritten."""
    config = model.config.get_text_config()
    for layer in discover(model):
        if layer.is_self_attention and hasattr(layer.module, "num_key_value_groups"):
            layer.module.num_key_value_groups = config.num_attention_heads // target
    config.num_key_value_heads = target
    setattr(model, LAYERS_ATTR, None)  # head counts changed: discover again
    return model


def convert_kv_heads(model: nn.Module, target: int) -> nn.Module:
    """Rewrite every self-attention layer to ``target`` key/value heads, in place."""
    config = model.config.get_text_config()
    current = config.num_key_value_heads
    if target == current:
        return model
    if current % target != 0 and target % current != 0:
        raise ConfigError(
            f"kv_heads: cannot convert {current} key/value heads to {target}; the target must divide "
            f"{current} (pooling) or be a multiple of it (repeating)."
        )
    head_dim = head_dim_of(config)
    for layer in discover(model):
        if not layer.is_self_attention:
            continue
        module = layer.module
        module.k_proj = _regroup(module.k_proj, current, target, head_dim)
        module.v_proj = _regroup(module.v_proj, current, target, head_dim)
    return set_kv_heads(model, target)
