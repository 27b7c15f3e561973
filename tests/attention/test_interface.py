"""Attention mechanisms against numeric references: stock eager, float64 hand computation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.conversion import convert_kv_heads
from attention_lab.attention.discovery import discover
from attention_lab.attention.mechanisms import MechanismSpec
from tests.conftest import tiny_llama

TEXTS = ["the film is not good", "a long and winding sentence about nothing in particular at all"]


@pytest.fixture(scope="module")
def minilm_pair(minilm_path):
    torch.manual_seed(0)
    stock = AutoModelForSequenceClassification.from_pretrained(
        minilm_path, num_labels=2, attn_implementation="eager"
    ).eval()
    ours = copy.deepcopy(stock)
    return stock, ours


def run(model, batch):
    with torch.no_grad():
        return model(**batch, output_attentions=True)


def max_diff(xs, ys) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(xs, ys, strict=True))


def test_mha_reproduces_stock_eager_on_bert(minilm_pair, bert_tokenizer):
    stock, ours = minilm_pair
    apply_mechanism(ours, MechanismSpec("mha"))
    assert ours.config._attn_implementation == "attention_lab"
    batch = bert_tokenizer(TEXTS, padding=True, return_tensors="pt")  # padding exercises the mask
    a, b = run(stock, batch), run(ours, batch)
    assert max_diff(a.attentions, b.attentions) <= 1e-6
    assert float((a.logits - b.logits).abs().max()) <= 1e-6


def test_mha_reproduces_stock_eager_on_llama():
    stock = tiny_llama()
    stock.set_attn_implementation("eager")
    ours = copy.deepcopy(stock)
    apply_mechanism(ours, MechanismSpec("mha"))
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    a, b = run(stock, batch), run(ours, batch)
    assert max_diff(a.attentions, b.attentions) <= 1e-6
    assert float((a.logits - b.logits).abs().max()) <= 1e-6


def test_gqa_with_all_heads_equals_mha(minilm_pair, bert_tokenizer):
    _, ours = minilm_pair
    batch = bert_tokenizer(TEXTS, padding=True, return_tensors="pt")
    apply_mechanism(ours, MechanismSpec("mha"))
    mha = run(ours, batch)
    apply_mechanism(ours, MechanismSpec("gqa", kv_heads=12))
    gqa = run(ours, batch)
    assert max_diff(mha.attentions, gqa.attentions) == 0.0


def test_mqa_matches_a_float64_hand_computation():
    """One BERT-style layer on 3 tokens, recomputed by hand: keys pooled over all heads."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertModel(config).eval()
    apply_mechanism(model, MechanismSpec("mqa"))
    ids = torch.tensor([[1, 4, 9]])
    got = run(model, {"input_ids": ids}).attentions[0][0].double()  # (H, T, T)

    with torch.no_grad():
        x = model.embeddings(input_ids=ids)[0].double()  # (T, 8)
    attn = model.encoder.layer[0].attention.self
    q = x @ attn.query.weight.double().T + attn.query.bias.double()  # (T, 8)
    k = x @ attn.key.weight.double().T + attn.key.bias.double()
    heads, d = 2, 4
    q = q.view(3, heads, d).transpose(0, 1)  # (H, T, d)
    k_shared = k.view(3, heads, d).mean(dim=1)  # (T, d): one key head, the mean of the two
    expected = torch.softmax(q @ k_shared.T / np.sqrt(d), dim=-1)  # (H, T, T)
    assert float((got - expected).abs().max()) < 1e-6


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_is_zero_outside_the_band_and_rows_sum_to_one(
    causal, minilm_path, bert_tokenizer
):
    window = 2
    if causal:
        model = tiny_llama()
        ids = torch.arange(5, 15).unsqueeze(0)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    else:
        model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2).eval()
        batch = bert_tokenizer(TEXTS, padding=True, return_tensors="pt")
    apply_mechanism(model, MechanismSpec("sliding_window", window=window))
    lengths = batch["attention_mask"].sum(-1).tolist()
    for layer_weights in run(model, batch).attentions:  # (B, H, T, T)
        for b, n in enumerate(lengths):  # real tokens only: padding rows are never stored
            weights = layer_weights[b, :, :n, :n]  # (H, n, n)
            i, j = np.indices((n, n))
            outside = (i - j > window) | (j > i) if causal else np.abs(i - j) > window
            assert torch.all(weights[:, torch.from_numpy(outside)] == 0)
            assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2]), atol=1e-6)


def test_mechanism_can_be_limited_to_some_layers(minilm_path, bert_tokenizer):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2).eval()
    apply_mechanism(model, MechanismSpec("sliding_window", window=1, layers=(1,)))
    att = run(
        model, bert_tokenizer(["one two three four five six"], return_tensors="pt")
    ).attentions
    assert float(att[0][0, 0, 0, -1]) > 0  # layer 0: full attention
    assert float(att[1][0, 0, 0, -1]) == 0  # layer 1: banded


def test_native_conversion_shrinks_kv_and_matches_runtime_pooling():
    base = tiny_llama(num_heads=4, kv_heads=4)
    runtime = copy.deepcopy(base)
    apply_mechanism(runtime, MechanismSpec("gqa", kv_heads=2))  # pooled on the fly
    native = copy.deepcopy(base)
    k_before = sum(
        m.k_proj.weight.numel() + m.v_proj.weight.numel()
        for m in (layer.module for layer in discover(native))
    )
    convert_kv_heads(native, 2)
    apply_mechanism(native, MechanismSpec("gqa", kv_heads=2))
    k_after = sum(
        m.k_proj.weight.numel() + m.v_proj.weight.numel()
        for m in (layer.module for layer in discover(native))
    )
    assert k_after * 2 == k_before
    assert native.config.num_key_value_heads == 2
    ids = torch.arange(3, 12).unsqueeze(0)
    a, b = run(runtime, {"input_ids": ids}), run(native, {"input_ids": ids})
    assert max_diff(a.attentions, b.attentions) <= 1e-5
    assert float((a.logits - b.logits).abs().max()) <= 1e-5


def test_converting_to_more_kv_heads_repeats_them():
    base = tiny_llama(num_heads=4, kv_heads=2)
    apply_mechanism(base, MechanismSpec("mha"))
    reference = run(base, {"input_ids": torch.arange(3, 9).unsqueeze(0)})
    convert_kv_heads(base, 4)  # MHA from GQA: each key/value head copied to its group
    assert base.config.num_key_value_heads == 4
    again = run(base, {"input_ids": torch.arange(3, 9).unsqueeze(0)})
    assert max_diff(reference.attentions, again.attentions) <= 1e-6
