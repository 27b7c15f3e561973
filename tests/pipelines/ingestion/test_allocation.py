"""The joint label × split allocation: both marginals exact, refusals only where nothing can work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention_lab.errors import DataError
from attention_lab.parameters import SplitSettings
from attention_lab.pipelines.ingestion.allocation import allocate
from attention_lab.pipelines.ingestion.nodes import SPLITS, _split_sizes, split_corpus

label_counts = st.lists(st.integers(1, 120), min_size=1, max_size=6)
fractions = st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 10)).filter(
    lambda f: sum(f) > 0
)
caps = st.one_of(st.none(), st.integers(1, 200))


def names(n: int) -> list[str]:
    return [f"label{k}" for k in range(n)]


def infeasible(counts: np.ndarray, sizes: np.ndarray) -> bool:
    """Independent statement of what no allocation can meet."""
    open_splits = int((sizes > 0).sum())
    return bool(
        sizes.sum() > counts.sum()
        or (counts < open_splits).any()
        or ((sizes > 0) & (sizes < len(counts))).any()
    )


def check(counts: np.ndarray, sizes: np.ndarray) -> None:
    try:
        matrix = allocate(counts, sizes, names(len(counts)), list(SPLITS))
    except DataError:
        assert infeasible(counts, sizes), f"refused a feasible request {counts} {sizes}"
        return
    assert not infeasible(counts, sizes)
    assert (matrix >= 0).all()
    np.testing.assert_array_equal(matrix.sum(axis=0), sizes)  # every split exactly its size
    assert (matrix.sum(axis=1) <= counts).all()  # never more than a label has
    assert (matrix[:, sizes > 0] >= 1).all()  # every label in every non-empty split
    share = sizes.sum() * counts / counts.sum()
    if (share >= (sizes > 0).sum() + 1).all():  # no label needed raising to one per split
        assert (np.abs(matrix.sum(axis=1) - share) < 1 + 1e-9).all()


@settings(max_examples=400, deadline=None)
@given(label_counts, fractions, caps)
def test_fractions_with_caps(counts, weights, cap):
    counts = np.array(counts)
    total = sum(weights)
    cfg = {"fractions": {s: w / total for s, w in zip(SPLITS, weights, strict=True)}}
    if cap is not None:
        cfg["max_per_split"] = {"train": cap, "test": max(1, cap // 4)}
    check(counts, _split_sizes(int(counts.sum()), SplitSettings.of(cfg)))


@settings(max_examples=300, deadline=None)
@given(label_counts, st.tuples(*[st.integers(0, 150)] * 3))
def test_exact_sizes(counts, sizes):
    check(np.array(counts), np.array(sizes))


@pytest.mark.slow  # a sweep of simulated studies
def test_every_two_label_corpus_of_the_reported_sweep():
    """Two labels, 4–190 examples, default fractions: exact, or refused only if infeasible."""
    for n in range(4, 191):
        for first in range(1, n):
            check(np.array([first, n - first]), _split_sizes(n, SplitSettings()))


def test_the_reported_62_plus_63_case_now_splits():
    frame = pd.DataFrame(
        {
            "text": [f"text {i}" for i in range(125)],
            "label": [0] * 62 + [1] * 63,
            "label_name": ["neg"] * 62 + ["pos"] * 63,
        }
    )
    corpus = split_corpus(frame, {"source": "t"}, {"split": {}})
    counts = pd.crosstab(corpus["label_name"], corpus["split"])
    assert counts.sum().to_dict() == {"test": 12, "train": 100, "validation": 13}
    assert (counts >= 1).all().all()


def test_refusal_names_the_label_its_count_and_the_fix():
    with pytest.raises(DataError) as error:
        allocate(np.array([50, 2]), np.array([40, 5, 5]), ["rotten", "fresh"], list(SPLITS))
    message = str(error.value)
    assert "'fresh' has 2 example(s)" in message
    assert "3 non-empty splits" in message
    assert "fraction to 0" in message


def test_a_split_smaller_than_the_label_set_is_named():
    with pytest.raises(DataError, match=r"Split 'validation' would hold 1 example\(s\).*3 labels"):
        allocate(np.array([10, 10, 10]), np.array([20, 1, 5]), names(3), list(SPLITS))
