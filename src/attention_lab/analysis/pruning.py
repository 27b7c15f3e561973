"""Pruning curves after Michel et al. (2019): test accuracy as the least important heads go.

Heads are ranked once by their per-layer normalised importance (lowest first, across all
layers, as in the paper) and masked 10% at a time through the same head gates that measure
importance: a pruned head's output is multiplied by 0.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from attention_lab.attention.discovery import discover
from attention_lab.attention.fast_path import fast_attention
from attention_lab.attention.interface import HEAD_GATE_ATTR, require_interface
from attention_lab.model_info import ModelInfo
from attention_lab.tasks import get_task

PRUNING_COLUMNS = ["variant", "fraction_pruned", "heads_pruned", "accuracy", "test_examples"]


@contextmanager
def heads_masked(model: nn.Module, pruned: list[tuple[int, int]]):
    """Within the block, the (layer, head) pairs in ``pruned`` contribute nothing."""
    require_interface(model, "masking heads (head gates)")
    layers = [layer for layer in discover(model) if layer.is_self_attention]
    for index, layer in enumerate(layers):
        gate = torch.ones(layer.num_heads, device=model.device)
        gate[[head for li, head in pruned if li == index]] = 0.0
        setattr(layer.module, HEAD_GATE_ATTR, gate)
    try:
        yield
    finally:
        for layer in layers:
            setattr(layer.module, HEAD_GATE_ATTR, None)


def pruning_order(importance: pd.DataFrame) -> list[tuple[int, int]]:
    """(layer, head) from least to most important; ties broken by position, for determinism."""
    ranked = importance.sort_values(["importance_normalized", "layer", "head"], kind="stable")
    return list(zip(ranked["layer"].astype(int), ranked["head"].astype(int), strict=True))


def pruning_curve(
    model: nn.Module,
    tokenizer,
    info: ModelInfo,
    importance: pd.DataFrame,
    test: pd.DataFrame,
    steps: int = 10,
) -> pd.DataFrame:
    """Accuracy on ``test`` with 0, 1/steps, ..., all of the heads pruned."""
    task = get_task(info.task)
    order = pruning_order(importance)
    rows = []
    with torch.inference_mode(), fast_attention(model, enabled=info.fast_path):
        for step in tqdm(range(steps + 1), desc=f"pruning {info.variant}", leave=False):
            count = int(round(step / steps * len(order)))
            with heads_masked(model, order[:count]):
                metrics = task.evaluate(model, tokenizer, test, info, info.eval_batch_size)
            rows.append(
                {
                    "variant": info.variant,
                    "fraction_pruned": count / len(order),
                    "heads_pruned": count,
                    "accuracy": metrics["accuracy"],
                    "test_examples": len(test),
                }
            )
    return pd.DataFrame(rows, columns=PRUNING_COLUMNS).astype({"fraction_pruned": np.float64})
