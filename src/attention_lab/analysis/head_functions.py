"""What a head does, by the published definitions, from its attention on probe sequences.

- **previous-token, duplicate-token and induction scores**: TransformerLens's head detector
  (``transformer_lens.head_detector``): a 0/1 detection pattern ``P`` (lower triangular) and the
  score ``Σ a ⊙ P / Σ a``, its default ``error_measure="mul"`` with nothing excluded, averaged
  over the probe sequences.
  - previous token: ``P[i, i-1] = 1``;
  - duplicate token: ``P[i, j] = 1`` where ``j < i`` holds the same token;
  - induction: the duplicate pattern shifted one key to the right (``P[i, j+1]``), first column 0.
- **prefix matching** (Olsson et al., 2022): on a sequence of random tokens repeated once, the
  mean over the second copy's queries of the attention to the token that followed the query's
  token in the first copy.

Every function takes ``weights`` ``[layers, heads, T, T]`` of one sequence and returns
``[layers, heads]``.
"""

from __future__ import annotations

import numpy as np

FUNCTIONS = ("previous_token", "duplicate_token", "induction", "prefix_matching")


def previous_token_pattern(length: int) -> np.ndarray:
    """(T, T): 1 on the diagonal below the main one."""
    return np.eye(length, k=-1)


def duplicate_token_pattern(tokens: np.ndarray) -> np.ndarray:
    """(T, T): 1 where an earlier key holds the query's token (the query itself excluded)."""
    same = (tokens[:, None] == tokens[None, :]).astype(np.float64)
    np.fill_diagonal(same, 0.0)
    return np.tril(same)


def induction_pattern(tokens: np.ndarray) -> np.ndarray:
    """(T, T): the duplicate pattern shifted one key to the right, as TransformerLens does
    (``torch.roll`` then a zero first column, then ``tril``)."""
    shifted = np.roll(duplicate_token_pattern(tokens), 1, axis=1)
    shifted[:, 0] = 0.0
    return np.tril(shifted)


def detection_score(weights: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """TransformerLens's ``mul`` score per head: ``Σ a ⊙ P / Σ a``  -> [L, H]."""
    w = weights.astype(np.float64)
    return (w * pattern).sum(axis=(-2, -1)) / w.sum(axis=(-2, -1))


def prefix_matching_score(weights: np.ndarray, half: int, offset: int = 1) -> np.ndarray:
    """Olsson et al.'s prefix matching on ``[BOS?] r_1..r_n r_1..r_n`` (``offset`` tokens before
    the first copy, ``half`` = n): query ``offset + n + k`` -> key ``offset + k + 1``, averaged
    over k = 0..n-1 -> [L, H]."""
    k = np.arange(half)
    queries = offset + half + k
    keys = offset + k + 1  # the token after the query token's first occurrence
    return weights[..., queries, keys].astype(np.float64).mean(axis=-1)


def function_scores(weights: np.ndarray, tokens: np.ndarray, half: int, offset: int) -> dict:
    """Every function's score of one repeated random sequence: name -> [L, H]."""
    length = weights.shape[-1]
    return {
        "previous_token": detection_score(weights, previous_token_pattern(length)),
        "duplicate_token": detection_score(weights, duplicate_token_pattern(tokens)),
        "induction": detection_score(weights, induction_pattern(tokens)),
        "prefix_matching": prefix_matching_score(weights, half, offset),
    }


def repeated_random_tokens(
    vocabulary: np.ndarray, sequences: int, half: int, seed: int
) -> np.ndarray:
    """(sequences, 2 * half) token ids: ``half`` distinct random tokens of ``vocabulary``,
    then the same again."""
    rng = np.random.default_rng(seed)
    first = np.stack([rng.choice(vocabulary, size=half, replace=False) for _ in range(sequences)])
    return np.concatenate([first, first], axis=1)
