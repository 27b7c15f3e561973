"""Compare two runs' outputs: every parquet table and every JSON file (figures, summaries)
to the last float, every stored attention map exactly (decoded arrays, example and root
metadata), except what measures the machine rather than the model (:data:`VOLATILE`).

    python -m tests.outputs.compare RUN_A RUN_B      # two data roots, e.g. data/test copies
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from tests.runs import TIMING


def volatile(name: str) -> bool:
    """What a run measures of the machine it ran on (times, speeds, memory): a table column,
    a JSON key or a figure trace named as one of :data:`tests.runs.TIMING`."""
    return str(name) in TIMING


def outputs(root: Path) -> dict[str, Path]:
    """Every compared file under ``root``, by its path relative to it."""
    found = {}
    for pattern in ("*.parquet", "*.json", "*.zarr.zip"):
        for path in root.rglob(pattern):
            # model folders are not outputs compared here (peft writes target_modules, a set,
            # in hash order)
            if "06_models" not in path.relative_to(root).parts:
                found[str(path.relative_to(root))] = path
    return found


def table_difference(a: Path, b: Path) -> str | None:
    left, right = pd.read_parquet(a), pd.read_parquet(b)
    keep = [c for c in left.columns if not volatile(c)]
    if list(left.columns) != list(right.columns):
        return f"columns differ: {list(left.columns)} vs {list(right.columns)}"
    try:
        pd.testing.assert_frame_equal(left[keep], right[keep], check_exact=True)
    except AssertionError as exc:
        return str(exc).splitlines()[0] + " " + " ".join(str(exc).split())[-300:]
    return None


def json_difference(a, b, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            return f"{where}: keys {sorted(set(a) ^ set(b))}"
        for key in a:
            if volatile(key) or (key in ("x", "y", "text", "z") and _volatile_trace(a)):
                continue
            if found := json_difference(a[key], b[key], f"{where}.{key}"):
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if found := json_difference(x, y, f"{where}[{i}]"):
                return found
        return None
    same = a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))
    return None if same else f"{where}: {a!r} vs {b!r}"


def _volatile_trace(trace: dict) -> bool:
    """A figure's trace that plots a machine measurement (its name, axis or group says so)."""
    names = [trace.get(k) for k in ("name", "legendgroup", "xaxis", "yaxis", "hovertemplate")]
    return any(volatile(n) for n in names if isinstance(n, str))


def store_difference(a: Path, b: Path) -> str | None:
    from attention_lab.datasets.store import AttentionStore

    left, right = AttentionStore(str(a)), AttentionStore(str(b))
    # the format's version says how maps are encoded, not what they are: a new encoding
    # passes when every decoded map and every other field are equal
    if replace(left.meta, format_version=None) != replace(right.meta, format_version=None):
        return f"root metadata: {left.meta} vs {right.meta}"
    for example in range(len(left)):
        if left.example_meta(example) != right.example_meta(example):
            return f"example {example}: metadata differs"
        for kind in left.kinds:
            if not np.array_equal(left.attention(example, kind), right.attention(example, kind)):
                return f"example {example} {kind}: maps differ"
            dropped = left.dropped_mass(example, kind), right.dropped_mass(example, kind)
            if dropped[0] is not None and not np.array_equal(*dropped):
                return f"example {example} {kind}: dropped mass differs"
    return None


def differences(a_root: Path, b_root: Path) -> list[str]:
    """One line per file that differs, or that only one run wrote."""
    a, b = outputs(a_root), outputs(b_root)
    lines = [f"{name}: only in {a_root}" for name in sorted(set(a) - set(b))]
    lines += [f"{name}: only in {b_root}" for name in sorted(set(b) - set(a))]
    for name in sorted(set(a) & set(b)):
        if name.endswith(".parquet"):
            found = table_difference(a[name], b[name])
        elif name.endswith(".zarr.zip"):
            found = store_difference(a[name], b[name])
        else:
            found = json_difference(
                json.loads(a[name].read_text()), json.loads(b[name].read_text())
            )
        if found:
            lines.append(f"{name}: {found}")
    return lines


def main() -> None:
    a, b = map(Path, sys.argv[1:3])
    found = differences(a, b)
    print("\n".join(found) or f"identical: {len(outputs(a))} files")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
