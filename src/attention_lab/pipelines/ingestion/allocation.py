"""How many examples of each label go to each split: both marginals exact, or a clear refusal.

The split sizes are met exactly, every label appears in every non-empty split, and each
label's total is its proportional share of the requested examples within ±1 (unless one
example per split is more than that share). The rest of each label is spread over the
splits in proportion to their sizes.
"""

from __future__ import annotations

import numpy as np

from attention_lab.errors import DataError


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``; each within 1 of its share."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts


def check_feasible(
    label_counts: np.ndarray, sizes: np.ndarray, label_names: list[str], split_names: list[str]
) -> None:
    """Refuse exactly the requests that no allocation can meet, naming the culprit and the fix."""
    open_splits = [s for s, size in zip(split_names, sizes, strict=True) if size > 0]
    if sizes.sum() > label_counts.sum():
        raise DataError(
            f"The splits ask for {int(sizes.sum())} examples but only {int(label_counts.sum())} "
            "remain after cleaning. Lower ingestion.split.sizes or its caps."
        )
    for name, count in zip(label_names, label_counts, strict=True):
        if count < len(open_splits):
            raise DataError(
                f"Label {name!r} has {int(count)} example(s), fewer than the {len(open_splits)} "
                f"non-empty splits ({', '.join(open_splits)}) that each need one. Add examples of "
                f"{name!r}, drop that label from the data, or set a split's fraction to 0."
            )
    for name, size in zip(split_names, sizes, strict=True):
        if 0 < size < len(label_names):
            raise DataError(
                f"Split {name!r} would hold {int(size)} example(s), fewer than the "
                f"{len(label_names)} labels that each need one there. Raise its fraction or "
                "size, or set it to 0."
            )


def label_totals(label_counts: np.ndarray, total: int, per_label_minimum: int) -> np.ndarray:
    """Examples per label: the proportional share of ``total`` (±1), raised to the minimum.

    Raising a rare label takes the examples from the labels furthest above their share.
    """
    share = total * label_counts / label_counts.sum()
    totals = largest_remainder(total, label_counts.astype(float))
    for k in np.flatnonzero(totals < per_label_minimum):
        for _ in range(per_label_minimum - totals[k]):
            donors = np.flatnonzero(totals > per_label_minimum)
            donor = donors[np.argmax((totals - share)[donors])]
            totals[donor] -= 1
            totals[k] += 1
    return totals


def fill(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A non-negative integer matrix with these row and column sums, close to rows × cols / total.

    Floors of the proportional matrix, then the leftover units: one per cell at most, each
    row's going to the columns with the most left to fill (Ryser's construction; it always
    succeeds because the fractional parts are themselves such a matrix).
    """
    total = rows.sum()
    if total == 0:
        return np.zeros((len(rows), len(cols)), dtype=int)
    exact = np.outer(rows, cols) / total  # (labels, splits)
    matrix = np.floor(exact).astype(int)
    col_left = cols - matrix.sum(axis=0)
    fraction = exact - matrix
    for k in np.argsort(-(rows - matrix.sum(axis=1)), kind="stable"):
        need = rows[k] - matrix[k].sum()
        # most room first; among equals, the largest fractional part
        order = np.lexsort((-fraction[k], -col_left))[:need]
        matrix[k, order] += 1
        col_left[order] -= 1
    if (col_left != 0).any() or (matrix.sum(axis=1) != rows).any():  # cannot happen; guard
        raise AssertionError(f"allocation failed for rows {rows} and columns {cols}")
    return matrix


def allocate(
    label_counts: np.ndarray, sizes: np.ndarray, label_names: list[str], split_names: list[str]
) -> np.ndarray:
    """Examples per (label, split): columns sum to ``sizes``, every label in every open split.

    ``label_counts``: (labels,) examples available per label; ``sizes``: (splits,) requested.
    """
    check_feasible(label_counts, sizes, label_names, split_names)
    open_split = sizes > 0
    totals = label_totals(label_counts, int(sizes.sum()), int(open_split.sum()))
    # one of each label per open split first, the rest in proportion
    presence = np.outer(np.ones(len(label_counts), dtype=int), open_split.astype(int))
    return presence + fill(totals - presence.sum(axis=1), sizes - presence.sum(axis=0))
