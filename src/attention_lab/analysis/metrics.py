"""Head metrics of one attention map, vectorised over layers and heads.

Every function takes ``weights`` of shape ``[layers, heads, query, key]`` (rows sum to 1)
and returns ``[layers, heads]``: a mean over query rows. Sources:

- entropy: Clark et al. (2019), with their smoothing ``p' = 0.999 p + 0.001 / k``
  (k = keys the row can see), in nats; normalised entropy divides by ``log k``.
- mean attention distance: ``sum_j a_ij |i - j|`` (Vig & Belinkov, 2019).
- special tokens / first token (the "sink"), punctuation, previous/same/next token:
  the mass a row puts on those keys (Clark et al., 2019; Xiao et al., 2023 for sinks).
- first-token importance: Gu et al. (2024), as ``compute_attention_sink`` in their code
  (sail-sg/Attention-Sink) computes it: the mean over the first ``GU_TOKENS`` = 64 query rows
  of the attention to the first token. Causal maps: the top-left 64 x 64 block *is* the
  model's attention on the 64-token prefix, so a longer probe gives their number exactly.
  Texts shorter than 64 tokens are read whole (their code requires 64); non-causal maps of
  longer texts are NaN, since later tokens change every row.
- pattern class: Kovaleva et al. (2019), see :func:`pattern_class`.
"""

from __future__ import annotations

import unicodedata

import numpy as np

SMOOTHING = 0.001  # Clark et al. (2019): mix each distribution with 0.1% of uniform
GU_TOKENS = 64  # Gu et al. (2024) measure sinks on the first 64 tokens of each text
METRICS = (
    "entropy",
    "normalized_entropy",
    "mean_distance",
    "special_mass",
    "first_token_mass",
    "first_token_importance",
    "punctuation_mass",
    "previous_mass",
    "self_mass",
    "next_mass",
    "max_weight",
    "segment_mass",
)


def visible_keys(q_len: int, k_len: int, causal: bool) -> np.ndarray:
    """(Tq, Tk) bool: which keys each query row can see."""
    if not causal:
        return np.ones((q_len, k_len), dtype=bool)
    offset = k_len - q_len
    return np.arange(k_len)[None, :] <= (np.arange(q_len)[:, None] + offset)


def smooth(weights: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Clark et al.'s smoothing over the keys each row can see."""
    k = visible.sum(axis=-1, keepdims=True)  # (Tq, 1)
    return np.where(visible, (1 - SMOOTHING) * weights + SMOOTHING / k, 0.0)


def row_entropy(weights: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """[..., Tq, Tk] -> [..., Tq] entropy (nats) of the smoothed rows."""
    p = smooth(weights, visible)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def is_punctuation(token: str) -> bool:
    """A token made only of punctuation once sub-word markers (##, Ġ, ▁) are removed."""
    core = token.removeprefix("##").lstrip("Ġ▁")
    return bool(core) and all(unicodedata.category(c).startswith("P") for c in core)


def sentence_ids(tokens: list[str]) -> np.ndarray:
    """Sentence index of every token: a new sentence starts after . ! or ?"""
    sentence, out = 0, []
    for tok in tokens:
        out.append(sentence)
        if tok.removeprefix("##").lstrip("Ġ▁") in {".", "!", "?"}:
            sentence += 1
    return np.array(out)


def within_sentence_mass(weights: np.ndarray, tokens: list[str], special: np.ndarray) -> np.ndarray:
    """[L, H]: of the mass on ordinary (non-special) tokens, the share inside the query's sentence.

    Averaged over ordinary query rows; NaN when the text has fewer than two sentences.
    """
    ordinary = ~special
    sentence = sentence_ids(tokens)
    if len(np.unique(sentence[ordinary])) < 2:
        return np.full(weights.shape[:2], np.nan)
    same = (sentence[:, None] == sentence[None, :]) & ordinary[None, :]  # (T, T)
    on_ordinary = (weights * ordinary[None, :]).sum(axis=-1)  # (L, H, T)
    inside = (weights * same).sum(axis=-1) / np.where(on_ordinary > 0, on_ordinary, 1.0)
    return inside[..., ordinary[: weights.shape[-2]]].mean(axis=-1)


def first_token_importance(weights: np.ndarray, causal: bool) -> np.ndarray:
    """[L, H]: Gu et al.'s importance of the first token, ``sum_i a_i0 / T`` over the first
    ``GU_TOKENS`` queries (see the module docstring for texts of other lengths)."""
    q_len, k_len = weights.shape[-2:]
    if q_len != k_len or (not causal and q_len > GU_TOKENS):
        return np.full(weights.shape[:2], np.nan)
    return weights[..., :GU_TOKENS, 0].mean(axis=-1)  # (L, H)


def head_metrics(
    weights: np.ndarray, tokens: list[str], special_mask: list[int], causal: bool
) -> dict[str, np.ndarray]:
    """All per-head metrics of one self-attention example: name -> [layers, heads]."""
    _, _, q_len, k_len = weights.shape
    w = weights.astype(np.float64)
    visible = visible_keys(q_len, k_len, causal)
    q_idx = np.arange(q_len)[:, None] + (k_len - q_len)  # absolute query positions
    distance = np.abs(q_idx - np.arange(k_len)[None, :])  # (Tq, Tk)
    k_visible = visible.sum(axis=-1)  # (Tq,)
    entropy = row_entropy(w, visible)  # (L, H, Tq)
    log_k = np.log(k_visible)
    has_choice = k_visible > 1  # rows seeing one key have no entropy to normalise
    special = np.asarray(special_mask[:k_len], dtype=bool)
    punct = np.array([is_punctuation(t) for t in tokens[:k_len]])
    diag = lambda offset: np.eye(q_len, k_len, k=offset + (k_len - q_len), dtype=bool)  # noqa: E731

    def mass(mask: np.ndarray) -> np.ndarray:
        return (w * mask).sum(axis=-1).mean(axis=-1)  # (L, H)

    def mean_over(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return values[..., rows].mean(axis=-1) if rows.any() else np.full(values.shape[:-1], np.nan)

    first = np.zeros(k_len, dtype=bool)
    first[0] = True
    return {
        "entropy": entropy.mean(axis=-1),
        "normalized_entropy": mean_over(entropy / np.where(has_choice, log_k, 1.0), has_choice),
        "mean_distance": (w * distance).sum(axis=-1).mean(axis=-1),
        "special_mass": mass(special[None, :]),
        "first_token_mass": mass(first[None, :]),
        "first_token_importance": first_token_importance(w, causal),
        "punctuation_mass": mass(punct[None, :]),
        "previous_mass": mean_over((w * diag(-1)).sum(axis=-1), diag(-1).any(axis=-1)),
        "self_mass": mass(diag(0)),
        "next_mass": mean_over((w * diag(1)).sum(axis=-1), diag(1).any(axis=-1)),
        "max_weight": w.max(axis=-1).mean(axis=-1),
        "segment_mass": within_sentence_mass(w, tokens[:k_len], special)
        if q_len == k_len
        else np.full(w.shape[:2], np.nan),
    }


def pattern_class(row: dict[str, float]) -> str:
    """Kovaleva et al. (2019) pattern of a head from its averaged metrics, first rule that fits:

    - ``vertical``: at least half the mass goes to special tokens or the first token
      (a few fixed columns: [CLS], [SEP], BOS);
    - ``diagonal``: at least half the mass goes to the previous, same or next token;
    - ``block``: of the mass on ordinary tokens, at least 80% stays inside the query's
      own sentence (measured on probes with two or more sentences only);
    - ``heterogeneous``: anything else.
    """
    fixed = max(row["special_mass"], row["first_token_mass"])
    if fixed >= 0.5:
        return "vertical"
    local = np.nansum([row["previous_mass"], row["self_mass"], row["next_mass"]])
    if local >= 0.5:
        return "diagonal"
    if not np.isnan(row.get("segment_mass", np.nan)) and row["segment_mass"] >= 0.8:
        return "block"
    return "heterogeneous"


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kovaleva et al.: cosine of the flattened maps, [L, H, Tq, Tk] x2 -> [L, H]."""
    a64, b64 = (
        a.reshape(*a.shape[:2], -1).astype(np.float64),
        b.reshape(*b.shape[:2], -1).astype(np.float64),
    )
    norm = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return np.where(norm > 0, (a64 * b64).sum(axis=-1) / np.where(norm > 0, norm, 1.0), 0.0)


def cross_head_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of every head of ``a`` with every head of ``b`` in the same layer:
    [L, H, Tq, Tk] x2 -> [L, H_a, H_b]; the diagonal is :func:`cosine_similarity`."""
    a64 = a.reshape(*a.shape[:2], -1).astype(np.float64)  # [L, H, Tq*Tk]
    b64 = b.reshape(*b.shape[:2], -1).astype(np.float64)
    a64 /= np.maximum(np.linalg.norm(a64, axis=-1, keepdims=True), 1e-300)
    b64 /= np.maximum(np.linalg.norm(b64, axis=-1, keepdims=True), 1e-300)
    return a64 @ b64.transpose(0, 2, 1)


def match_heads(similarity: np.ndarray) -> np.ndarray:
    """Per layer, the reference head matched to each head by maximum total similarity
    (Hungarian assignment): [L, H_a, H_b] -> [L, H_a] indices into the reference's heads."""
    from scipy.optimize import linear_sum_assignment

    matched = np.empty(similarity.shape[:2], dtype=int)
    for layer, matrix in enumerate(similarity):
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        matched[layer, rows] = cols
    return matched


def jensen_shannon(a: np.ndarray, b: np.ndarray, causal: bool) -> np.ndarray:
    """Clark et al.: JS divergence (nats) of smoothed rows, averaged over query rows -> [L, H]."""
    visible = visible_keys(a.shape[-2], a.shape[-1], causal)
    p, q = smooth(a.astype(np.float64), visible), smooth(b.astype(np.float64), visible)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    return ((kl_pm + kl_qm) / 2).mean(axis=-1)
