"""Calibration activations: what each self-attention layer reads on a few real texts.

Conversions that fit new projections (calibrated pooling, the RoPE pairs multi-head latent
attention keeps) need the hidden states entering each attention module.
"""

from __future__ import annotations

import torch
from torch import nn

from attention_lab.attention.discovery import discover, probing
from attention_lab.errors import ConfigError


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules, in call order."""
    return [layer.module for layer in discover(model) if layer.is_self_attention]


@torch.no_grad()
def attention_inputs(model: nn.Module, ids: torch.Tensor) -> dict[nn.Module, torch.Tensor]:
    """Each self-attention module's input hidden states on token ids (B, T): (B * T, hidden)."""
    if ids.numel() == 0:
        raise ConfigError("calibration: no tokens to calibrate on; the train split is empty.")
    modules = self_attention_modules(model)
    seen: dict[nn.Module, torch.Tensor] = {}

    def keep(module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)  # (B, T, hidden)
        seen[module] = hidden.reshape(-1, hidden.shape[-1]).float().cpu()

    handles = [m.register_forward_pre_hook(keep, with_kwargs=True) for m in modules]
    try:
        with probing(model):
            model(input_ids=ids.to(next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def calibration_ids(tokenizer, texts: list[str], examples: int, length: int) -> torch.Tensor:
    """(n, length) token ids: the first ``examples`` texts, each cut or skipped if shorter
    than ``length``; at least one row (the longest text) if none is long enough."""
    rows = [tokenizer(t)["input_ids"] for t in texts if t.strip()]
    if not rows:
        raise ConfigError("calibration: the train split has no text; the conversion needs some.")
    full = [r[:length] for r in rows if len(r) >= length][:examples]
    if not full:
        longest = max(rows, key=len)
        return torch.tensor([longest])
    return torch.tensor(full)
