"""Analysis metrics on hand-worked examples, rollout against a float64 product, importance
against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.analysis.metrics import (
    SMOOTHING,
    cosine_similarity,
    head_metrics,
    is_punctuation,
    jensen_shannon,
    pattern_class,
)
from attention_lab.analysis.rollout import attention_rollout, token_relevance

T = 5
TOKENS = ["[CLS]", "good", ",", "film", "[SEP]"]
SPECIAL = [1, 0, 0, 0, 1]


def as_map(matrix: np.ndarray) -> np.ndarray:
    return matrix[None, None]  # [layers=1, heads=1, T, T]


def test_uniform_attention_has_entropy_log_t_and_a_known_distance():
    m = head_metrics(as_map(np.full((T, T), 1 / T)), TOKENS, SPECIAL, causal=False)
    assert m["entropy"][0, 0] == pytest.approx(np.log(T))  # smoothing with uniform keeps uniform
    assert m["normalized_entropy"][0, 0] == pytest.approx(1.0)
    # mean |i-j| over a 5x5 grid: sum over i of sum_j |i-j| / 5, averaged over rows = 40/25
    assert m["mean_distance"][0, 0] == pytest.approx(40 / 25)
    assert m["special_mass"][0, 0] == pytest.approx(2 / T)
    assert m["first_token_mass"][0, 0] == pytest.approx(1 / T)
    assert m["punctuation_mass"][0, 0] == pytest.approx(1 / T)
    assert m["max_weight"][0, 0] == pytest.approx(1 / T)


def test_identity_attention_attends_to_self_only():
    m = head_metrics(as_map(np.eye(T)), TOKENS, SPECIAL, causal=False)
    assert m["self_mass"][0, 0] == pytest.approx(1.0)
    assert m["previous_mass"][0, 0] == pytest.approx(0.0)
    assert m["next_mass"][0, 0] == pytest.approx(0.0)
    assert m["mean_distance"][0, 0] == pytest.approx(0.0)
    # smoothed one-hot: p = 0.999 + 0.001/5 on one key, 0.001/5 on the others
    hi, lo = 1 - SMOOTHING + SMOOTHING / T, SMOOTHING / T
    assert m["entropy"][0, 0] == pytest.approx(-(hi * np.log(hi) + (T - 1) * lo * np.log(lo)))
    assert pattern_class({k: float(v[0, 0]) for k, v in m.items()}) == "diagonal"


def test_previous_token_head_and_causal_normalisation():
    prev = np.eye(T, k=-1)
    prev[0, 0] = 1.0  # the first token can only see itself
    m = head_metrics(as_map(prev), TOKENS, SPECIAL, causal=True)
    assert m["previous_mass"][0, 0] == pytest.approx(1.0)  # every row that has a previous token
    assert m["mean_distance"][0, 0] == pytest.approx(4 / 5)


def test_all_to_cls_is_vertical():
    to_cls = np.zeros((T, T))
    to_cls[:, 0] = 1.0
    m = head_metrics(as_map(to_cls), TOKENS, SPECIAL, causal=False)
    assert m["first_token_mass"][0, 0] == pytest.approx(1.0)
    assert pattern_class({k: float(v[0, 0]) for k, v in m.items()}) == "vertical"


def test_a_map_compared_with_itself():
    rng = np.random.default_rng(0)
    a = rng.random((2, 3, T, T))
    a /= a.sum(-1, keepdims=True)
    np.testing.assert_allclose(cosine_similarity(a, a), 1.0)
    np.testing.assert_allclose(jensen_shannon(a, a, causal=False), 0.0, atol=1e-12)


def test_a_known_permutation():
    """Identity vs a cyclic shift: disjoint one-hot rows. cos = 0; JSD from the smoothed rows by hand."""
    a, b = np.eye(T), np.roll(np.eye(T), 1, axis=1)
    assert cosine_similarity(as_map(a), as_map(b))[0, 0] == pytest.approx(0.0)
    hi, lo = 1 - SMOOTHING + SMOOTHING / T, SMOOTHING / T
    mid = (hi + lo) / 2  # on the two keys where exactly one of p, q is peaked
    kl = hi * np.log(hi / mid) + lo * np.log(lo / mid)  # KL(p || m); the other keys agree and add 0
    assert jensen_shannon(as_map(a), as_map(b), causal=False)[0, 0] == pytest.approx(kl)
    # the same permutation applied to a uniform row changes nothing
    assert cosine_similarity(as_map(np.full((T, T), 0.2)), as_map(np.full((T, T), 0.2)))[
        0, 0
    ] == pytest.approx(1.0)


def test_rollout_matches_a_direct_float64_product():
    rng = np.random.default_rng(1)
    w = rng.random((3, 2, 4, 4)).astype(np.float32)
    w /= w.sum(-1, keepdims=True)
    expected = np.eye(4)
    for layer in range(3):
        a = 0.5 * w[layer].astype(np.float64).mean(0) + 0.5 * np.eye(4)
        a = a / a.sum(-1, keepdims=True)
        expected = a @ expected
    got = attention_rollout(w)
    np.testing.assert_allclose(got[-1], expected, rtol=1e-12)
    np.testing.assert_allclose(got.sum(-1), 1.0)
    np.testing.assert_allclose(token_relevance(w)[-1], expected[0])
    np.testing.assert_allclose(token_relevance(w, causal=True)[-1], expected[-1])


def test_punctuation_tokens():
    assert is_punctuation(",") and is_punctuation("##.") and is_punctuation("Ġ!")
    assert not is_punctuation("film") and not is_punctuation("[SEP]")


def test_head_importance_matches_finite_differences(minilm_path, bert_tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    from attention_lab.analysis.importance import head_gradients
    from attention_lab.attention.apply import apply_mechanism
    from attention_lab.attention.discovery import discover
    from attention_lab.attention.interface import HEAD_GATE_ATTR
    from attention_lab.attention.mechanisms import MechanismSpec

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(bert_tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    model = apply_mechanism(BertForSequenceClassification(config).double().eval(), MechanismSpec())
    batch = dict(
        bert_tokenizer(["a fine film", "not a fine film at all"], padding=True, return_tensors="pt")
    )
    batch["labels"] = torch.tensor([1, 0])
    grads = head_gradients(model, [batch])  # |dL/d xi| at xi = 1

    modules = [layer.module for layer in discover(model)]
    eps = 1e-6
    for layer, head in [(0, 1), (1, 3)]:
        losses = []
        for sign in (1, -1):
            gate = torch.ones(4, dtype=torch.float64)
            gate[head] += sign * eps
            setattr(modules[layer], HEAD_GATE_ATTR, gate)
            with torch.no_grad():
                losses.append(float(model(**batch).loss))
            setattr(modules[layer], HEAD_GATE_ATTR, None)
        finite = abs(losses[0] - losses[1]) / (2 * eps)
        assert grads[layer, head] == pytest.approx(finite, rel=1e-5, abs=1e-9)


def gu_compute_attention_sink(attention_scores: torch.Tensor, epsilon: float) -> torch.Tensor:
    """sail-sg/Attention-Sink's ``compute_attention_sink``, as their code computes it: scores
    (samples, layers, heads, T, T) -> the sink rate (%) of each key position."""
    samples, layers, heads, t1, t2 = attention_scores.shape
    ratios = torch.arange(t1, 0, -1)[None, None, None, :].expand(samples, layers, heads, t1, t2)
    importance = (attention_scores / ratios.to(attention_scores)).sum(dim=-2)
    return (importance > epsilon).to(torch.float).mean(dim=(0, 1, 2)) * 100


def random_causal_maps(examples: int, layers: int, heads: int, length: int) -> np.ndarray:
    """Rows of random weights over the keys each query sees, some heads leaning on token 0."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(examples, layers, heads, length, length))
    logits[..., 0] += rng.uniform(0, 5, size=(examples, layers, heads, 1))  # sinks of any strength
    logits = np.where(np.tri(length, dtype=bool), logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def test_first_token_importance_gives_gu_et_al_sink_rate_on_a_longer_causal_text():
    maps = random_causal_maps(examples=4, layers=2, heads=3, length=80)  # 80 > their 64 tokens
    tokens, special = ["t"] * 80, [0] * 80
    ours = np.stack([head_metrics(m, tokens, special, causal=True) for m in maps])
    importance = np.stack([m["first_token_importance"] for m in ours])  # (N, L, H)
    # their code reads a 64-token text: for a causal model, the top-left 64 x 64 block
    theirs = gu_compute_attention_sink(torch.from_numpy(maps[..., :64, :64]), 0.3)[0] / 100
    assert (importance > 0.3).mean() == pytest.approx(theirs.item())
    assert 0 < theirs < 1  # the example straddles the threshold
    # over the whole 80-token text the first token's mass is another number
    mass = np.stack([m["first_token_mass"] for m in ours])
    assert not np.allclose(mass, importance)


def test_first_token_importance_is_undefined_for_a_long_bidirectional_text():
    maps = random_causal_maps(examples=1, layers=1, heads=1, length=70)[0]
    m = head_metrics(maps, ["t"] * 70, [0] * 70, causal=False)
    assert np.isnan(m["first_token_importance"]).all()
    short = head_metrics(maps[..., :10, :10], ["t"] * 10, [0] * 10, causal=False)
    assert short["first_token_importance"] == pytest.approx(short["first_token_mass"])
