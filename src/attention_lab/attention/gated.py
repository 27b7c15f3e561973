"""Gated attention (Qiu et al., 2025) added to a trained checkpoint.

Their best variant multiplies each head's attention output, element by element, by a
head-specific gate ``sigmoid(x W + b)`` computed from the layer's input ``x``, before
``o_proj``. They train it from scratch and report that it removes attention sinks.

A trained checkpoint has no gate, so the conversion starts at identity: ``W = 0`` and
``b = GATE_INIT_LOGIT``, so every gate opens to ``sigmoid(b)``, and ``o_proj`` is divided by
that same constant. The model is their gated model (a constant scale on ``o_proj`` is a
reparametrisation) and computes exactly what the checkpoint did until uptraining moves
``W`` and ``b``. The start sits where the sigmoid still has slope (0.045), so the gate learns.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attention_lab.attention.calibration import self_attention_modules
from attention_lab.attention.converted import converted, convertible, record_structure

GATE_INIT_LOGIT = 3.0  # sigmoid(3) = 0.953


def add_gate(module: nn.Module, opening: float | None = GATE_INIT_LOGIT) -> None:
    """Give ``module`` an output gate (hidden -> Hq * d); at ``opening`` it starts at identity,
    ``None`` leaves the weights to a later load."""
    weight = module.q_proj.weight
    gate = nn.Linear(module.q_proj.in_features, module.o_proj.in_features, bias=True)
    gate = gate.to(device=weight.device, dtype=weight.dtype)
    converted(module)
    module.output_gate = gate
    if opening is not None:
        with torch.no_grad():
            gate.weight.zero_()
            gate.bias.fill_(opening)
            module.o_proj.weight.div_(1 / (1 + math.exp(-opening)))


def convert_to_gated(model: nn.Module) -> nn.Module:
    """An identity-initialised output gate on every self-attention layer; in place."""
    modules = self_attention_modules(model)
    convertible(model, modules, "gated")
    for module in modules:
        add_gate(module)
    record_structure(model, "gate", True)
    return model


def restore_gates(model: nn.Module) -> None:
    """Output gates on a freshly loaded model, to be filled by the saved weights."""
    for module in self_attention_modules(model):
        add_gate(module, opening=None)
