"""Tensor steps of extraction: select layers and heads, round to the grid, cut out padding."""

from __future__ import annotations

import numpy as np
import torch

from attention_lab.datasets.codecs import grid_steps, round_rows_to_grid
from attention_lab.extraction.options import ExtractionOptions


def select_and_round(weights: torch.Tensor, opts: ExtractionOptions, kind: str) -> np.ndarray:
    """One layer's (B, H, Tq, Tk) maps of ``kind`` -> (B, H_sel, Tq, Tk) on the CPU, rounded
    to the grid.

    As whole uint16 steps of ``2**-bits`` where ``opts.grid_of(kind)`` gives such a grid
    (attention weights, whose rows sum to 1), which is what the store keeps (see
    :func:`~attention_lab.datasets.codecs.grid_steps`). Otherwise float16 when the grid is
    exact in it (every ``k / 2**bits`` with ``bits <= 11``), float32 else.
    """
    if not opts.all_heads:
        weights = weights.index_select(1, torch.tensor(opts.heads, device=weights.device))
    if (bits := opts.grid_of(kind)) is not None:
        return grid_steps(weights, bits).cpu().numpy().view(np.uint16)
    if opts.precision_bits is not None:
        weights = round_rows_to_grid(weights.float(), opts.precision_bits)
        if opts.precision_bits <= 11:
            weights = weights.half()
    return weights.cpu().numpy()


def round_layers(
    per_layer: tuple[torch.Tensor, ...], opts: ExtractionOptions, kind: str
) -> list[np.ndarray]:
    """Per-layer (B, H, Tq, Tk) maps of ``kind`` -> the stored layers' (B, H_sel, Tq, Tk) on
    the CPU, rounded to the grid (see :func:`select_and_round`).

    The cast happens here, in torch's threads, at no loss (it halves what the store writer
    has to touch). Rounding runs over whole rows, padding included: padded keys hold zero
    weight and stay zero.
    """
    layers = range(len(per_layer)) if opts.all_layers else opts.layers
    # one layer at a time: the rounding's float32 temporaries stay one layer large
    return [select_and_round(per_layer[i], opts, kind) for i in layers]


def real_tokens(positions: np.ndarray) -> slice | np.ndarray:
    """The real tokens' positions in a padded row: a slice when they are contiguous (padding
    on one side or both), which cuts without a gather; else the positions themselves."""
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions


def cut(maps: np.ndarray, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """[..., Tq_pad, Tk_pad] -> [..., n_q, n_k]: a contiguous copy at the real tokens'
    positions, wherever the padding sits (left, right or both)."""
    q, k = real_tokens(queries), real_tokens(keys)
    if isinstance(q, slice) and isinstance(k, slice):
        return np.ascontiguousarray(maps[..., q, k])
    return np.ascontiguousarray(maps[..., np.asarray(queries)[:, None], np.asarray(keys)[None, :]])


def cut_example(layers: list[np.ndarray], b: int, queries, keys) -> np.ndarray:
    """Example ``b`` of the per-layer (B, H, Tq_pad, Tk_pad) maps -> [L, H, n_q, n_k], copied
    once (no batch-wide stack in between)."""
    q, k = real_tokens(queries), real_tokens(keys)
    if isinstance(q, slice) and isinstance(k, slice):
        return np.stack([layer[b, :, q, k] for layer in layers])
    return np.stack([cut(layer[b], queries, keys) for layer in layers])
