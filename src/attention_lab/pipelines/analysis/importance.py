"""Head importance after Michel et al. (2019): ``I_h = sum_batches |dL / d xi_h|`` at ``xi = 1``.

``xi_h`` gates head h's output (see ``HEAD_GATE_ATTR`` in the attention interface), so
``dL/d xi_h = A_h . dL/dA_h`` summed over the head's output: the sensitivity of the loss
to masking the head. Scores are normalised per layer by their L2 norm, as in the paper.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from attention_lab.attention.interface import HEAD_GATE_ATTR, attention_modules


def head_gradients(model: nn.Module, batches) -> np.ndarray:
    """Sum over batches of |dL/d xi| for every self-attention layer: [layers, heads] (float64)."""
    modules = [m for _, kind, _, m in attention_modules(model) if kind != "cross"]
    num_heads = model.config.get_text_config().num_attention_heads
    gates = [torch.ones(num_heads, device=model.device, requires_grad=True) for _ in modules]
    for module, gate in zip(modules, gates, strict=True):
        setattr(module, HEAD_GATE_ATTR, gate)
    model.requires_grad_(False)
    total = np.zeros((len(modules), num_heads))
    try:
        with torch.enable_grad():
            for batch in tqdm(batches, desc="head importance", leave=False):
                loss = model(**{k: v.to(model.device) for k, v in batch.items()}).loss
                grads = torch.autograd.grad(loss, gates)
                total += np.stack([g.detach().abs().double().cpu().numpy() for g in grads])
    finally:
        for module in modules:
            setattr(module, HEAD_GATE_ATTR, None)
    return total


def normalise_per_layer(importance: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(importance, axis=-1, keepdims=True)
    return importance / np.where(norm > 0, norm, 1.0)
