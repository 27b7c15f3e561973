"""Tensor steps of extraction: select layers and heads, round to the grid, cut out padding."""

from __future__ import annotations

import numpy as np
import torch

from attention_lab.datasets.codecs import round_rows_to_grid
from attention_lab.extraction.options import ExtractionOptions


def select_and_round(weights: torch.Tensor, opts: ExtractionOptions) -> np.ndarray:
    """One layer's (B, H, Tq, Tk) maps -> (B, H_sel, Tq, Tk) on the CPU, rounded to the grid
    (float16 when the grid is exact in it; see :func:`stack_batch`)."""
    if not opts.all_heads:
        weights = weights.index_select(1, torch.tensor(opts.heads, device=weights.device))
    if opts.precision_bits is not None:
        weights = round_rows_to_grid(weights.float(), opts.precision_bits)
        if opts.precision_bits <= 11:
            weights = weights.half()
    return weights.cpu().numpy()


def stack_batch(per_layer: tuple[torch.Tensor, ...], opts: ExtractionOptions) -> np.ndarray:
    """Per-layer (B, H, Tq, Tk) maps -> (B, L_sel, H_sel, Tq, Tk) on the CPU, rounded to the grid.

    Grid values k / 2**bits with bits <= 11 are exact in float16, so the cast happens here, in
    torch's threads, at no loss (it halves what the store writer has to touch). Rounding runs
    over whole rows, padding included: padded keys hold zero weight and stay zero.
    """
    layers = range(len(per_layer)) if opts.all_layers else opts.layers
    # one layer at a time: the rounding's float32 temporaries stay one layer large
    return np.stack([select_and_round(per_layer[i], opts) for i in layers], axis=1)


def cut(maps: np.ndarray, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """[L, H, Tq_pad, Tk_pad] -> [L, H, n_q, n_k] at the real tokens' positions, wherever the
    padding sits (left, right or both)."""
    return maps[:, :, queries[:, None], keys[None, :]]
