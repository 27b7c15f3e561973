"""Head functions followed across variants through the head matching."""

from __future__ import annotations

import pandas as pd

from attention_lab.analysis.function_changes import function_changes

STUDY = {"reference": "base", "seeds": [1]}
VARIANTS = {"base": {"method": "none"}, "mqa": {"method": "lora", "mechanism": "mqa"}}


def scores(variant: str, values: dict[int, float], spread: float = 0.05) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "variant": variant,
                "seed": 1,
                "kind": "decoder",
                "layer": 0,
                "head": head,
                "function": "prefix_matching",
                "score": value,
                "ci_low": value - spread,
                "ci_high": value + spread,
            }
            for head, value in values.items()
        ]
    )


def test_a_head_is_followed_to_its_matched_reference_head():
    # the reference's induction head is head 0; the variant moved it to head 2 and lost head 1's
    base = scores("base", {0: 0.8, 1: 0.6, 2: 0.0})
    mqa = scores("mqa", {0: 0.0, 1: 0.05, 2: 0.8})
    comparison = pd.DataFrame(
        {
            "variant": "mqa",
            "seed": 1,
            "kind": "decoder",
            "layer": 0,
            "head": [0, 1, 2],
            "matched_head": [2.0, 1.0, 0.0],  # variant head -> reference head
        }
    )
    table = function_changes(pd.concat([base, mqa]), comparison, STUDY, VARIANTS)
    status = dict(zip(table["head"], table["status"], strict=True))
    assert status == {1: "lost", 2: "kept"}  # head 0 lacks it and so does its match, head 2
    kept = table[table["head"] == 2].iloc[0]
    assert (kept["matched_head"], kept["reference_score"]) == (0, 0.8)


def test_an_interval_across_the_threshold_is_not_a_change():
    base = scores("base", {0: 0.32})  # 0.27 to 0.37 straddles 0.3
    mqa = scores("mqa", {0: 0.0})
    comparison = pd.DataFrame(
        {
            "variant": "mqa",
            "seed": 1,
            "kind": "decoder",
            "layer": 0,
            "head": [0],
            "matched_head": [0.0],
        }
    )
    assert function_changes(pd.concat([base, mqa]), comparison, STUDY, VARIANTS).empty
