"""Row codecs of the attention store: grid rounding (lossless in float16) and 8-bit rows."""

from __future__ import annotations

import numpy as np


def round_rows_to_grid(weights, bits: int):
    """Round [..., Tq, Tk] weights to multiples of ``2**-bits``, keeping each row's sum.

    Cumulative rounding: round the running row sums to the grid and take differences. Both
    ends of each difference are within half a step of the exact running sums, so every weight
    moves by less than one step; the last running sum is the row total, so rows that summed
    to 1 still do; running sums never decrease, so no weight turns negative; and zero padding
    stays zero. Three vectorised ops, on whole padded batches (torch in, torch out; numpy in,
    numpy out).
    """
    import torch

    as_numpy = isinstance(weights, np.ndarray)
    w = torch.from_numpy(weights) if as_numpy else weights
    grid = float(2**bits)
    running = torch.round(w.float().cumsum(dim=-1) * grid)  # (..., Tk) whole steps
    steps = torch.diff(running, dim=-1, prepend=torch.zeros_like(running[..., :1]))
    out = steps / grid
    return out.numpy() if as_numpy else out


def quantize_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., Tq, Tk] float -> (uint8 codes, float32 scales [..., Tq]); error <= max(row)/510."""
    scale = weights.max(axis=-1).astype(np.float32) / 255.0  # (..., Tq)
    safe = np.where(scale > 0, scale, 1.0)[..., None]
    codes = np.rint(weights / safe).clip(0, 255).astype(np.uint8)
    return codes, scale


def dequantize_rows(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scale[..., None]
