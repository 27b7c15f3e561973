"""What the analysis tables say about single heads (pure pandas, no Dash): which reference head
each head matches, and which heads changed significantly against their reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

MARK_COLUMNS = ["layer", "head", "effect", "ci_low", "ci_high", "q"]


@dataclass(frozen=True)
class HeadOrder:
    """How the heads view lays out each row (one layer) of heads, and what it says about them."""

    columns: dict[int, list[int]]  # layer -> head ids, left to right
    # (layer, head) -> (a suffix for the small title, a line for the hover)
    labels: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    note: str = ""


def natural_order(layers: list[int], heads: list[int], note: str = "") -> HeadOrder:
    return HeadOrder({layer: list(heads) for layer in layers}, {}, note)


def matched_order(
    comparison: pd.DataFrame, variant: str, kind: str, layers: list[int], heads: list[int]
) -> HeadOrder:
    """Each layer's heads sorted by the reference head the Hungarian assignment pairs them
    with (``matched_head`` of the attention comparison), so column j shows the head that
    matches reference head j; natural order, with a note, when the table has no match."""
    found = comparison[
        (comparison["variant"] == variant)
        & (comparison["kind"] == kind)
        & comparison["layer"].isin(layers)
    ]
    if found.empty or "matched_head" not in found:
        return natural_order(
            layers,
            heads,
            f"The attention comparison has no head matching of {variant}'s {kind} maps: "
            "heads in their natural order.",
        )
    reference = found["reference"].iloc[0]
    columns = {layer: _matched_columns(found[found["layer"] == layer], heads) for layer in layers}
    labels = {
        (int(row.layer), int(row.head)): _match_label(row, reference)
        for row in found.itertuples()
        if pd.notna(row.matched_head)
    }
    note = (
        f"{variant}'s heads ordered by their Hungarian match to {reference}'s: h → {reference} head"
    )
    return HeadOrder(columns, labels, note)


def _matched_columns(rows: pd.DataFrame, heads: list[int]) -> list[int]:
    """One layer's heads by matched reference head; unmatched and unlisted heads last."""
    ranked = rows.sort_values(["matched_head", "head"], na_position="last")["head"]
    ranked = [int(h) for h in ranked if int(h) in heads]
    return ranked + [h for h in heads if h not in ranked]


def _match_label(row, reference: str) -> tuple[str, str]:
    matched = int(row.matched_head)
    hover = (
        f"matched to {reference} head {matched}<br>cosine with it {row.matched_similarity:.3f}"
        f" · with {reference} head {int(row.head)} {row.cosine_similarity:.3f}"
    )
    return f" →{matched}", hover


def tested(changes: pd.DataFrame, variant: str, reference: str, kind: str, metric: str):
    """The rows of ``head_changes`` that test ``metric`` of ``variant`` against ``reference``."""
    return changes[
        (changes["variant"] == variant)
        & (changes["reference"] == reference)
        & (changes["kind"] == kind)
        & (changes["metric"] == metric)
    ]


def significant_heads(rows: pd.DataFrame) -> pd.DataFrame:
    """Layer, head, effect, interval and q of the heads whose change is significant."""
    return rows.loc[rows["significant"].astype(bool), MARK_COLUMNS].reset_index(drop=True)


# how a head's title names its strongest function
BADGES = {
    "previous_token": "prev",
    "duplicate_token": "dup",
    "induction": "ind",
    "prefix_matching": "ind",
    "retrieval": "ret",
}


def function_badges(
    scores: pd.DataFrame, variant: str, kind: str, thresholds: dict[str, float]
) -> dict[tuple[int, int], tuple[str, str]]:
    """(layer, head) -> (a badge for the title, a hover line) naming the head's strongest
    function: the one whose score's interval lies furthest above its threshold (in units of
    the threshold); heads with none get nothing."""
    mine = scores[(scores["variant"] == variant) & (scores["kind"] == kind)]
    mine = mine.assign(margin=mine["ci_low"] / mine["function"].map(thresholds))
    mine = mine[mine["margin"] >= 1]
    strongest = mine.sort_values("margin", ascending=False).drop_duplicates(["layer", "head"])
    return {
        (int(row.layer), int(row.head)): (
            f" ·{BADGES[row.function]}",
            f"{row.function.replace('_', ' ')} {row.score:.2f} ({row.ci_low:.2f}–{row.ci_high:.2f})",
        )
        for row in strongest.itertuples()
    }


def merged_labels(*tables: dict) -> dict[tuple[int, int], tuple[str, str]]:
    """Labels of several sources for one head, suffixes and hover lines joined."""
    merged: dict[tuple[int, int], tuple[str, str]] = {}
    for table in tables:
        for key, (suffix, line) in table.items():
            old_suffix, old_line = merged.get(key, ("", ""))
            merged[key] = (old_suffix + suffix, "<br>".join(x for x in (old_line, line) if x))
    return merged
