"""Row codecs of the attention store: grid rounding (lossless in float16) and 8-bit rows."""

from __future__ import annotations

import numpy as np


def round_rows_to_grid(weights, bits: int):
    """Round [..., Tq, Tk] weights to multiples of ``2**-bits``, keeping each row's sum.

    Cumulative rounding: round the running row sums to the grid and take differences. Both
    ends of each difference are within half a step of the exact running sums, so every weight
    moves by less than one step; the last running sum is the row total, so rows that summed
    to 1 still do; running sums never decrease, so no weight turns negative; and zero padding
    stays zero. Vectorised over whole padded batches (torch in, torch out; numpy in, numpy
    out); :func:`grid_steps` gives the same result as whole steps.
    """
    import torch

    as_numpy = isinstance(weights, np.ndarray)
    w = torch.from_numpy(weights) if as_numpy else weights
    out = _running_steps(w.float(), bits, torch.float32).div_(float(2**bits))
    return out.numpy() if as_numpy else out


def grid_steps(weights, bits: int):
    """:func:`round_rows_to_grid` as whole steps: ``k`` for the weight ``k / 2**bits``, int16
    (a row summing to at most 1 holds at most ``2**bits`` steps in a weight; ``bits <= 14``).
    Fewer passes over the maps than rounding then casting: the store keeps these steps."""
    import torch

    if not 0 < bits <= 14:
        raise ValueError(f"grid_steps: bits must be in 1..14 to fit int16, got {bits}")
    return _running_steps(weights.float(), bits, torch.int16)


def _running_steps(w, bits: int, dtype):
    """(..., Tk) float32 weights -> (..., Tk) whole steps of ``2**-bits`` as ``dtype``
    (differences taken in it: int16 halves the bytes they touch)."""
    import torch

    running = w.cumsum(dim=-1).mul_(float(2**bits)).round_().to(dtype)  # never decreasing
    steps = torch.empty_like(running)
    steps[..., :1] = running[..., :1]
    torch.sub(running[..., 1:], running[..., :-1], out=steps[..., 1:])
    return steps


def quantize_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., Tq, Tk] float -> (uint8 codes, float32 scales [..., Tq]); error <= max(row)/510."""
    scale = weights.max(axis=-1).astype(np.float32) / 255.0  # (..., Tq)
    safe = np.where(scale > 0, scale, 1.0)[..., None]
    codes = np.rint(weights / safe).clip(0, 255).astype(np.uint8)
    return codes, scale


def dequantize_rows(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scale[..., None]


def _row_starts(n: int) -> np.ndarray:
    """Where row i of an n × n lower triangle starts in its packed form: i(i+1)/2."""
    rows = np.arange(n + 1)
    return rows * (rows + 1) // 2


def pack_lower(maps: np.ndarray) -> np.ndarray:
    """[..., n, n] causal maps -> [..., n(n+1)/2]: the lower triangle, row by row, no loss
    (a causal map holds nothing above its diagonal). Row slices, not fancy indexing: 4x
    faster at 2,048 tokens."""
    n = maps.shape[-1]
    starts = _row_starts(n)
    out = np.empty((*maps.shape[:-2], starts[-1]), dtype=maps.dtype)
    for i in range(n):
        out[..., starts[i] : starts[i + 1]] = maps[..., i, : i + 1]
    return out


def unpack_lower(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_lower`: zeros above the diagonal."""
    starts = _row_starts(n)
    out = np.zeros((*packed.shape[:-1], n, n), dtype=packed.dtype)
    for i in range(n):
        out[..., i, : i + 1] = packed[..., starts[i] : starts[i + 1]]
    return out


def top_mass(
    maps: np.ndarray, mass: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's smallest set of keys holding at least ``mass`` of the row's weight.

    maps: [R, Tk] rows. Returns ``(counts [R], key_steps [nnz], values [nnz], dropped [R])``:
    per row the number of keys kept, their positions as steps from the previous kept key
    (ascending, so the steps are small and compress well; the first step is from -1), their
    weights in ``maps``' dtype, and the weight left out (float16). Largest weights first, so
    the set is the smallest possible.
    """
    order = np.argsort(-maps, axis=-1, kind="stable")  # (R, Tk) largest first
    ranked = np.take_along_axis(maps, order, axis=-1).astype(np.float32)
    total = ranked.sum(axis=-1, keepdims=True)
    before = np.cumsum(ranked, axis=-1) - ranked  # mass held before adding each key
    keep = (before < mass * total) & (ranked > 0)  # (R, Tk): add keys until the target is met
    counts = keep.sum(axis=-1)
    marked = np.zeros(maps.shape, dtype=bool)
    np.put_along_axis(marked, order, keep, axis=-1)  # back in key order: ascending positions
    rows, keys = np.nonzero(marked)
    first = np.r_[True, rows[1:] != rows[:-1]]
    steps = np.where(first, keys + 1, np.diff(keys, prepend=0))
    dropped = np.maximum(total[:, 0] - (ranked * keep).sum(axis=-1), 0)
    key_type = np.uint16 if maps.shape[-1] < 2**16 else np.uint32
    return (
        counts.astype(key_type),
        steps.astype(key_type),
        maps[rows, keys],
        dropped.astype(np.float16),
    )


def on_grid(values: np.ndarray, bits: int | None) -> tuple[np.ndarray, int | None]:
    """``values`` as whole steps of ``2**-bits`` (uint16) when every one of them is exactly
    such a multiple (the extraction's grid, see :func:`round_rows_to_grid`): they compress
    better than float16 bit patterns and decode to the same numbers. Otherwise unchanged,
    with ``None``."""
    if bits is None or not 0 < bits <= 15:
        return values, None
    steps = values.astype(np.float64) * 2.0**bits
    if steps.size and (
        steps.min() < 0 or steps.max() >= 2**16 or not np.array_equal(steps, np.round(steps))
    ):
        return values, None
    return steps.astype(np.uint16), bits


def from_grid(values: np.ndarray, bits: int | None, dtype=None) -> np.ndarray:
    """Inverse of :func:`on_grid` and :func:`grid_steps`: float32 weights (``bits`` None:
    ``values`` as they are, or as ``dtype``)."""
    if bits is None:
        return values if dtype is None else values.astype(dtype, copy=False)
    return values.astype(np.float32) * np.float32(2.0**-bits)  # a power of two: exact


def from_top_mass(counts: np.ndarray, steps: np.ndarray, values: np.ndarray, width: int):
    """Inverse of :func:`top_mass` (left-out weight is 0): [R, width] float32."""
    rows = len(counts)
    out = np.zeros((rows, width), dtype=np.float32)
    if steps.size == 0:  # nothing kept: every row held no weight
        return out
    row_of = np.repeat(np.arange(rows), counts.astype(np.int64))
    starts = np.r_[0, np.cumsum(counts.astype(np.int64))[:-1]]
    running = np.cumsum(steps.astype(np.int64))  # positions + 1, across rows
    offsets = np.repeat(running[starts - 1] * (starts > 0), counts.astype(np.int64))
    keys = running - offsets - 1
    out[row_of, keys] = values
    return out
