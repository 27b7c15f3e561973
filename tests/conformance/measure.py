"""Print, per family and padding side, the measured max |stored − native eager| of every kind.

The conformance tests assert these are ≤ 1e-5; this prints the values themselves, for
docs/families.md:  python -m tests.conformance.measure
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from tests.conformance.families import FAMILIES
from tests.conformance.test_families import extract, native


def max_difference(family, side: str, folder: Path) -> float:
    store = extract(apply_mechanism(family.build(), MechanismSpec("mha")), family, side, folder)
    return max(
        float(np.abs(store.attention(example, kind) - reference).max())
        for example in range(len(store))
        for kind, reference in native(family, store, example).items()
    )


def main() -> None:
    print("| family | left padding | right padding |\n| --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for family in FAMILIES:
            left, right = (max_difference(family, s, Path(folder)) for s in ("left", "right"))
            print(f"| {family.name} | {left:.1e} | {right:.1e} |")


if __name__ == "__main__":
    main()
