"""Head-function detectors: hand-set heads give their known scores exactly, and the
detection patterns and scores equal TransformerLens's own code (copied here as the
reference) on random maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.analysis.head_functions import (
    duplicate_token_pattern,
    function_scores,
    induction_pattern,
    previous_token_pattern,
    repeated_random_tokens,
)

HALF = 4
BOS = 1  # one token before the first copy
TOKENS = np.array([0, 11, 12, 13, 14, 11, 12, 13, 14])  # BOS, r1..r4, r1..r4
T = len(TOKENS)
SECOND = np.arange(BOS + HALF, T)  # the second copy's positions


def one_hot_rows(keys: dict[int, int]) -> np.ndarray:
    """[1, 1, T, T]: row i puts all its weight on keys[i] (the first token elsewhere)."""
    weights = np.zeros((T, T))
    for i in range(T):
        weights[i, keys.get(i, 0)] = 1.0
    return weights[None, None]


def scores_of(weights: np.ndarray) -> dict[str, float]:
    return {k: float(v[0, 0]) for k, v in function_scores(weights, TOKENS, HALF, BOS).items()}


def test_a_previous_token_head():
    scores = scores_of(one_hot_rows({i: i - 1 for i in range(1, T)}))
    assert scores["previous_token"] == pytest.approx((T - 1) / T)  # row 0 can only see itself
    assert scores["induction"] == 0.0
    assert scores["duplicate_token"] == 0.0
    assert scores["prefix_matching"] == 0.0


def test_an_induction_head():
    # each second-copy query attends to the token after its first occurrence
    scores = scores_of(one_hot_rows({i: i - HALF + 1 for i in SECOND}))
    assert scores["prefix_matching"] == 1.0
    assert scores["induction"] == pytest.approx(HALF / T)  # the other rows hold no pattern
    assert scores["duplicate_token"] == 0.0
    assert scores["previous_token"] == pytest.approx(1 / T)  # row 1's previous token is BOS


def test_a_duplicate_token_head():
    scores = scores_of(one_hot_rows({i: i - HALF for i in SECOND}))
    assert scores["duplicate_token"] == pytest.approx(HALF / T)
    assert scores["induction"] == 0.0
    assert scores["prefix_matching"] == 0.0


# TransformerLens's head_detector (transformer_lens/head_detector.py), as written there
def tl_previous(tokens: torch.Tensor) -> torch.Tensor:
    detection_pattern = torch.zeros(tokens.shape[-1], tokens.shape[-1])
    detection_pattern[1:, :-1] = torch.eye(tokens.shape[-1] - 1)
    return torch.tril(detection_pattern)


def tl_duplicate(tokens: torch.Tensor) -> torch.Tensor:
    token_pattern = tokens.repeat(tokens.shape[-1], 1).numpy()
    eq_mask = np.equal(token_pattern, token_pattern.T).astype(int)
    np.fill_diagonal(eq_mask, 0)
    return torch.tril(torch.as_tensor(eq_mask.astype(int)).float())


def tl_induction(tokens: torch.Tensor) -> torch.Tensor:
    duplicate_pattern = tl_duplicate(tokens)
    shifted_tensor = torch.roll(duplicate_pattern, shifts=1, dims=1)
    zeros_column = torch.zeros(duplicate_pattern.shape[0], 1)
    return torch.tril(torch.cat((zeros_column, shifted_tensor[:, 1:]), dim=1))


def tl_score(attention_pattern: torch.Tensor, detection_pattern: torch.Tensor) -> float:
    score = attention_pattern * detection_pattern  # error_measure="mul", nothing excluded
    return (score.sum() / attention_pattern.sum()).item()


def test_patterns_and_scores_equal_transformer_lens_on_random_maps():
    tokens = np.concatenate([[0], repeated_random_tokens(np.arange(5, 50), 1, 10, seed=3)[0]])
    length = len(tokens)
    rng = np.random.default_rng(1)
    weights = np.tril(rng.uniform(size=(2, 3, length, length)))
    weights /= weights.sum(-1, keepdims=True)
    as_tensor = torch.as_tensor(tokens)
    ours = function_scores(weights, tokens, 10, 1)
    for name, ours_pattern, theirs in (
        ("previous_token", previous_token_pattern(length), tl_previous(as_tensor)),
        ("duplicate_token", duplicate_token_pattern(tokens), tl_duplicate(as_tensor)),
        ("induction", induction_pattern(tokens), tl_induction(as_tensor)),
    ):
        np.testing.assert_array_equal(ours_pattern, theirs.numpy())
        reference = [
            [tl_score(torch.as_tensor(weights[layer, head]), theirs) for head in range(3)]
            for layer in range(2)
        ]
        np.testing.assert_allclose(ours[name], reference, rtol=1e-6)


def test_repeated_random_tokens_are_distinct_repeated_and_seeded():
    vocabulary = np.arange(100, 200)
    probes = repeated_random_tokens(vocabulary, sequences=3, half=20, seed=5)
    assert probes.shape == (3, 40)
    np.testing.assert_array_equal(probes[:, :20], probes[:, 20:])
    assert all(len(set(row[:20])) == 20 for row in probes)
    assert np.isin(probes, vocabulary).all()
    np.testing.assert_array_equal(probes, repeated_random_tokens(vocabulary, 3, 20, seed=5))
