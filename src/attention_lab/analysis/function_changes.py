"""Head functions followed across variants: which heads gained or lost a function against
the variant's reference.

A head is followed to the reference head it matches (the Hungarian match of the attention
comparison), so a multi-query head that moved index is compared with the head it came from.
A head *has* a function when its score's 95% interval over probes lies wholly at or above
the function's threshold, and *lacks* it when the interval lies wholly below; a head whose
interval straddles the threshold in either model is not called gained or lost.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from attention_lab.study import Study

# score at or above which a head has the function: Wu et al.'s 0.1 for retrieval; ours for
# the others (TransformerLens and Olsson et al. define the scores, not a cut-off)
THRESHOLDS = {
    "previous_token": 0.5,
    "duplicate_token": 0.3,
    "induction": 0.3,
    "prefix_matching": 0.3,
    "retrieval": 0.1,
}
CHANGE_COLUMNS = [
    "variant",
    "reference",
    "seed",
    "kind",
    "function",
    "layer",
    "head",
    "matched_head",
    "score",
    "reference_score",
    "threshold",
    "status",
]


def _status(mine: pd.DataFrame) -> pd.Series:
    threshold = mine["threshold"]
    has, lacks = mine["ci_low"] >= threshold, mine["ci_high"] < threshold
    ref_has, ref_lacks = mine["ref_ci_low"] >= threshold, mine["ref_ci_high"] < threshold
    status = pd.Series("", index=mine.index)
    status[has & ref_has] = "kept"
    status[has & ref_lacks] = "gained"
    status[lacks & ref_has] = "lost"
    return status


def function_changes(
    head_functions: pd.DataFrame,
    comparison: pd.DataFrame,
    study: dict[str, Any],
    variants: dict[str, Any],
) -> pd.DataFrame:
    """One row per (variant, function, head) that kept, gained or lost a function against
    its reference head."""
    plan = Study.from_params({"study": study, "variants": variants})
    scores = head_functions.assign(threshold=head_functions["function"].map(THRESHOLDS))
    tables = []
    for variant in plan.variants:
        reference = plan.reference_of(variant)
        mine = scores[scores["variant"] == variant]
        if variant == reference or mine.empty:
            continue
        matches = comparison[
            (comparison["variant"] == variant) & comparison["seed"].isin(mine["seed"].unique())
        ][["seed", "kind", "layer", "head", "matched_head"]]
        theirs = scores[scores["variant"] == reference][
            ["kind", "function", "layer", "head", "score", "ci_low", "ci_high"]
        ].rename(
            columns={
                "head": "matched_head",
                "score": "reference_score",
                "ci_low": "ref_ci_low",
                "ci_high": "ref_ci_high",
            }
        )
        merged = mine.merge(matches, on=["seed", "kind", "layer", "head"]).merge(
            theirs, on=["kind", "function", "layer", "matched_head"]
        )
        merged = merged.assign(reference=reference, status=_status(merged))
        tables.append(merged[merged["status"] != ""])
    if not tables:
        return pd.DataFrame(columns=CHANGE_COLUMNS)
    table = pd.concat(tables, ignore_index=True)
    table["matched_head"] = table["matched_head"].astype(int)
    return table[CHANGE_COLUMNS]
