"""Head importance after Michel et al. (2019): ``I_h = sum_batches |dL / d xi_h|`` at ``xi = 1``.

``xi_h`` gates head h's output (see ``HEAD_GATE_ATTR`` in the attention interface), so
``dL/d xi_h = A_h . dL/dA_h`` summed over the head's output: the sensitivity of the loss
to masking the head. Scores are normalised per layer by their L2 norm, as in the paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from attention_lab.attention.discovery import discover
from attention_lab.attention.interface import HEAD_GATE_ATTR, require_interface
from attention_lab.model_info import ModelInfo
from attention_lab.tasks import get_task


def head_gradients(model: nn.Module, batches) -> np.ndarray:
    """Sum over batches of |dL/d xi| for every self-attention layer: [layers, heads] (float64)."""
    require_interface(model, "head importance (head gates)")
    layers = [layer for layer in discover(model) if layer.is_self_attention]
    modules = [layer.module for layer in layers]
    num_heads = layers[0].num_heads
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


IMPORTANCE_COLUMNS = ["variant", "layer", "head", "importance", "importance_normalized"]


def importance_table(
    model: nn.Module, tokenizer, info: ModelInfo, examples: pd.DataFrame
) -> pd.DataFrame:
    """One row per (variant, layer, head): raw and per-layer normalised importance on ``examples``."""
    task = get_task(info.task)
    torch.manual_seed(0)
    data = task.encode(examples, tokenizer, info.max_length)
    batches = DataLoader(data, batch_size=32, collate_fn=task.collate(tokenizer, model))
    raw = head_gradients(model, batches)  # (L, H)
    norm = normalise_per_layer(raw)
    layers, heads = np.indices(raw.shape)
    return pd.DataFrame(
        {
            "variant": info.variant,
            "layer": layers.ravel(),
            "head": heads.ravel(),
            "importance": raw.ravel(),
            "importance_normalized": norm.ravel(),
        }
    )
