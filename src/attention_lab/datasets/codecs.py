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


def lower_triangle(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the n × n lower triangle (diagonal included), row by row."""
    return np.tril_indices(n)


def pack_lower(maps: np.ndarray) -> np.ndarray:
    """[..., n, n] causal maps -> [..., n(n+1)/2]: the lower triangle, row by row, no loss
    (a causal map holds nothing above its diagonal)."""
    rows, cols = lower_triangle(maps.shape[-1])
    return maps[..., rows, cols]


def unpack_lower(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_lower`: zeros above the diagonal."""
    rows, cols = lower_triangle(n)
    out = np.zeros((*packed.shape[:-1], n, n), dtype=packed.dtype)
    out[..., rows, cols] = packed
    return out


def top_mass(
    maps: np.ndarray, mass: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's smallest set of keys holding at least ``mass`` of the row's weight.

    maps: [R, Tk] rows. Returns CSR ``(row_starts [R + 1], keys [nnz], values [nnz] float16,
    dropped [R] float32)``: keys ascending within a row, ``dropped`` the weight left out.
    Largest weights first, so the set is the smallest possible.
    """
    order = np.argsort(-maps, axis=-1, kind="stable")  # (R, Tk) largest first
    ranked = np.take_along_axis(maps, order, axis=-1)
    total = ranked.sum(axis=-1, keepdims=True)
    before = np.cumsum(ranked, axis=-1) - ranked  # mass held before adding each key
    keep = (before < mass * total) & (ranked > 0)  # (R, Tk): add keys until the target is met
    counts = keep.sum(axis=-1)
    kept_keys = np.where(keep, order, np.iinfo(np.int32).max)
    keys = np.sort(kept_keys, axis=-1)[:, : counts.max(initial=0)]  # ascending, kept first
    valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
    flat_keys = keys[valid].astype(np.int32)
    row_of = np.repeat(np.arange(len(maps)), counts)
    values = maps[row_of, flat_keys]
    dropped = (total[:, 0] - (ranked * keep).sum(axis=-1)).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return starts, flat_keys, values.astype(np.float16), np.maximum(dropped, 0)


def from_top_mass(starts: np.ndarray, keys: np.ndarray, values: np.ndarray, width: int):
    """Inverse of :func:`top_mass` (dropped weight stays 0): [R, width] float32."""
    rows = len(starts) - 1
    out = np.zeros((rows, width), dtype=np.float32)
    row_of = np.repeat(np.arange(rows), np.diff(starts))
    out[row_of, keys] = values
    return out
