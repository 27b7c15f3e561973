"""Reducing a map to the cells a figure draws: token blocks, pooling, zoomed regions, labels.

Pure numpy and plain values (no Dash, no stores). A map larger than the pixel budget is drawn
as blocks of consecutive tokens, each block reduced to one cell by max- or mean-pooling; a
zoomed region of the map is drawn the same way, at full resolution once it fits the budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

# Cells per axis of one compare or cross-attention panel (about 350 px wide: a cell per two
# pixels); a larger map is pooled. It also bounds a response: A, B, B − A and, on a log scale,
# A's and B's raw values, as base64 float32 in Dash's JSON, stay under 1 MB.
MAX_CELLS = 160
GRID_CELLS = 64  # the same for each small panel of the heads grid
LABEL_LIMIT = 64  # an axis of at most this many tokens is labelled with them
POOLS = ("max", "mean")
REGION = re.compile(r"\s*(\d{1,9})\s*:\s*(\d{1,9})\s*,\s*(\d{1,9})\s*:\s*(\d{1,9})\s*")
_REDUCE = {"max": np.max, "min": np.min, "mean": np.mean}
_FOLD = {"max": np.maximum, "min": np.minimum, "mean": np.add}


@dataclass(frozen=True)
class Axis:
    """One axis of a drawn map: tokens ``start`` to ``stop`` (exclusive) in blocks of ``block``
    (the last block may be shorter); block 1 draws every token."""

    start: int
    stop: int
    block: int = 1

    @property
    def cells(self) -> int:
        return -(-(self.stop - self.start) // self.block)

    def firsts(self) -> np.ndarray:
        """The first token of each cell."""
        return np.arange(self.start, self.stop, self.block)

    def ranges(self) -> list[tuple[int, int]]:
        """(first, last) token of each cell, both included."""
        return [(f, min(f + self.block, self.stop) - 1) for f in self.firsts().tolist()]


def fitted(start: int, stop: int, budget: int) -> Axis:
    """Tokens ``start``..``stop`` in the smallest blocks that keep at most ``budget`` cells."""
    return Axis(start, stop, max(1, math.ceil((stop - start) / budget)))


def pool(values: np.ndarray, rows: int, cols: int, how: str) -> np.ndarray:
    """[R, C] -> [ceil(R / rows), ceil(C / cols)]: each block of ``rows`` x ``cols`` cells
    reduced to its max, min, mean, or (``"extreme"``) the value farthest from 0, sign kept."""
    if how == "extreme":
        high, low = pool(values, rows, cols, "max"), pool(values, rows, cols, "min")
        return np.where(-low > high, low, high)
    return _pool_cols(_pool_rows(values, rows, how), cols, how)


def _pool_rows(values: np.ndarray, block: int, how: str) -> np.ndarray:
    if block == 1:
        return values
    full = len(values) - len(values) % block
    parts = [_fold([values[i:full:block] for i in range(block)], how)]
    if full < len(values):  # a shorter last block reduces what it has
        parts.append(_REDUCE[how](values[full:], axis=0, keepdims=True))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _pool_cols(values: np.ndarray, block: int, how: str) -> np.ndarray:
    if block == 1:
        return values
    n = values.shape[1]
    full = n - n % block
    parts = [_fold([values[:, i:full:block] for i in range(block)], how)]
    if full < n:
        parts.append(_REDUCE[how](values[:, full:], axis=1, keepdims=True))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _fold(parts: list[np.ndarray], how: str) -> np.ndarray:
    """The i-th entries of every block (one array per offset i) combined into one per block.

    Element-wise over strided views: several times faster than reducing a short middle or
    last axis of a reshaped array.
    """
    out = parts[0].astype(np.float32)
    for part in parts[1:]:
        _FOLD[how](out, part, out=out)
    return out / len(parts) if how == "mean" else out


def pool_1d(values: np.ndarray, axis: Axis, how: str) -> np.ndarray:
    """A per-token vector [T] over ``axis``' cells."""
    return _pool_rows(values[axis.start : axis.stop, None], axis.block, how)[:, 0]


def reduce(values: np.ndarray, rows: Axis, cols: Axis, how: str) -> np.ndarray:
    """The cells drawn for ``rows`` x ``cols`` of a [Tq, Tk] map."""
    region = values[rows.start : rows.stop, cols.start : cols.stop]
    return pool(region, rows.block, cols.block, how)


def labels(axis: Axis, tokens: list[str]) -> list[str]:
    """A distinct label per cell: its token once they fit (:data:`LABEL_LIMIT`), else its
    position and token ("37 movie"), or a block's token range ("33–43")."""
    if axis.block > 1:
        return [str(f) if f == last else f"{f}–{last}" for f, last in axis.ranges()]
    if axis.stop - axis.start <= LABEL_LIMIT:
        return unique_labels(tokens[axis.start : axis.stop])
    return [f"{i} {tokens[i]}" for i in range(axis.start, axis.stop)]


def unique_labels(tokens: list[str]) -> list[str]:
    """Tokens as distinct category labels: a repeat gets invisible zero-width spaces appended."""
    seen: dict[str, int] = {}
    out = []
    for tok in tokens:
        out.append(tok + "\u200b" * seen.get(tok, 0))
        seen[tok] = seen.get(tok, 0) + 1
    return out


def parse_region(text: str) -> tuple[int, int, int, int] | None:
    """ "q0:q1,k0:k1" (query tokens q0..q1 - 1, key tokens k0..k1 - 1) -> its numbers; ""
    is the whole map (None). ValueError for anything else."""
    if text == "":
        return None
    match = REGION.fullmatch(text)
    if not match:
        raise ValueError("format")
    q0, q1, k0, k1 = map(int, match.groups())
    if q0 >= q1 or k0 >= k1:
        raise ValueError("empty")
    return q0, q1, k0, k1


def region_text(rows: Axis, cols: Axis, shape: tuple[int, int]) -> str:
    """The region of a map, as :func:`parse_region` reads it ("" for the whole map)."""
    if (rows.start, rows.stop, cols.start, cols.stop) == (0, shape[0], 0, shape[1]):
        return ""
    return f"{rows.start}:{rows.stop},{cols.start}:{cols.stop}"


def clip(region: tuple[int, int, int, int] | None, shape: tuple[int, int]):
    """(query range, key range) of ``region`` inside a map of ``shape``; the whole map when the
    region is None or lies outside it (then the second value is False)."""
    whole = ((0, shape[0]), (0, shape[1]))
    if region is None:
        return whole, True
    q0, q1, k0, k1 = region
    q = (min(q0, shape[0]), min(q1, shape[0]))
    k = (min(k0, shape[1]), min(k1, shape[1]))
    if q[0] == q[1] or k[0] == k[1]:
        return whole, False
    return (q, k), True


def zoomed(axis: Axis, low: float, high: float) -> tuple[int, int]:
    """Tokens (first, stop) of the cells a zoomed range covers, in a category axis' units
    (cell i spans i - 0.5 to i + 0.5), partly covered cells included. ValueError when the range
    holds none of ``axis``' cells."""
    low, high = sorted((low, high))
    first = max(0, math.floor(low + 0.5))
    last = min(axis.cells - 1, math.ceil(high - 0.5))
    if first > last:
        raise ValueError("outside")
    start = axis.start + first * axis.block
    return start, min(axis.stop, axis.start + (last + 1) * axis.block)


@dataclass(frozen=True)
class Drawn:
    """How a [Tq, Tk] map is drawn: which of its tokens, in which blocks, pooled how."""

    rows: Axis
    cols: Axis
    how: str  # pooling: "max" or "mean"
    shape: tuple[int, int]
    outside: str = ""  # a region asked for that lies outside the map (the whole map is drawn)

    @property
    def pooled(self) -> bool:
        return self.rows.block > 1 or self.cols.block > 1

    @property
    def zoomed(self) -> bool:
        return region_text(self.rows, self.cols, self.shape) != ""

    def cells(self, values: np.ndarray) -> np.ndarray:
        return reduce(values, self.rows, self.cols, self.how)

    def difference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """B − A as drawn: per block its largest change, sign kept (max pooling), or its mean."""
        if not self.pooled or self.how == "mean":  # the mean of B − A is B's mean minus A's
            return self.cells(b) - self.cells(a)
        return reduce(b - a, self.rows, self.cols, "extreme")


def drawn(shape: tuple[int, int], region: str, how: str, budget: int = MAX_CELLS) -> Drawn:
    """How ``region`` ("" for all, else "q0:q1,k0:k1") of a map of ``shape`` is drawn in at
    most ``budget`` cells per axis; a region outside the map draws all of it."""
    (q, k), inside = clip(parse_region(region), shape)
    rows, cols = fitted(*q, budget), fitted(*k, budget)
    return Drawn(rows, cols, how, tuple(shape), "" if inside else region)


def note(view: Drawn, hint: bool = True) -> str:
    """What the figure says about how it draws the map, e.g. "2,048 tokens shown as 187 × 187
    blocks of 11 (max) · drag to zoom in" (without the ``hint`` on zooming when not
    ``hint``); "" for a whole map drawn as it is."""
    rows, cols = view.rows, view.cols
    tq, tk = view.shape
    size = f"{tq:,} tokens" if tq == tk else f"{tq:,} × {tk:,} tokens"
    sized = size.replace(" tokens", "-token")
    parts = [f"zoom {view.outside} lies outside this {sized} map: showing all of it"]
    what = size
    if view.zoomed:
        what = f"queries {_span(rows)} × keys {_span(cols)} of {size}"
    if view.pooled:
        blocks = rows.block if rows.block == cols.block else f"{rows.block} × {cols.block}"
        what += f" shown as {rows.cells} × {cols.cells} blocks of {blocks} ({view.how})"
    if view.zoomed or view.pooled:
        parts.append(what)
    if hint and (view.zoomed or view.pooled):
        parts.append("double-click for the whole map" if view.zoomed else "drag to zoom in")
    return " · ".join(parts[0 if view.outside else 1 :])


def _span(axis: Axis) -> str:
    first, last = axis.start, axis.stop - 1
    return f"{first:,}" if first == last else f"{first:,}–{last:,}"
