"""Head-only training on features computed once equals training through the frozen model.

With dropout off, both paths see the same batches in the same order and the body is frozen,
so the classifier head they train must be the same up to float summation order.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.tasks import get_task
from attention_lab.training.fine_tune import train
from attention_lab.training.head_features import compute_features, feature_dataset, head_of
from attention_lab.training.methods import prepare
from attention_lab.variants import LoraSpec, TrainingSpec, VariantSpec
from tests.conformance.families import BY_NAME, word_tokenizer

NO_DROPOUT = {
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout": 0.0,
    "attention_dropout": 0.0,
}


def classifier(name: str, **extra):
    family = BY_NAME[name]
    kwargs = {**family.kwargs, **extra}  # a copy: FAMILIES is shared with other tests
    family = dataclasses.replace(family, task="classification", kwargs=kwargs)
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    return prepare(model, "head", "classification", LoraSpec()), family


def corpus(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"t{i}" for i in rng.integers(4, 128, rng.integers(2, 12))) for _ in range(n)]
    labels = rng.integers(0, 2, n)
    return pd.DataFrame({"text": texts, "label": labels, "split": "train"})


def spec(fast: bool) -> VariantSpec:
    training = TrainingSpec(epochs=2, batch_size=8, learning_rate=5e-2, fast_path=fast)
    return VariantSpec("head", "tiny", "classification", MechanismSpec("mha"), "head", training)


@pytest.mark.parametrize("name", ["bert", "llama"])
def test_head_on_features_equals_head_through_frozen_model(name, monkeypatch):
    """BERT pools [CLS] through its pooler; Llama's score pools the last real token."""
    from attention_lab.training import fine_tune

    prepared = []
    spy = lambda *args: prepared.append(feature_dataset(*args)) or prepared[-1]  # noqa: E731
    monkeypatch.setattr(fine_tune, "feature_dataset", spy)
    base, family = classifier(name, **NO_DROPOUT)
    tokenizer = word_tokenizer(family.pad, "right")
    data = corpus()
    through, on_features = base, copy.deepcopy(base)
    before = head_of(base)[1].weight.detach().clone()
    train(through, tokenizer, spec(fast=False), data)
    train(on_features, tokenizer, spec(fast=True), data)
    assert prepared and prepared[0] is not None  # the features path was taken, no fallback
    slow_head, fast_head = head_of(through)[1], head_of(on_features)[1]
    assert not torch.allclose(slow_head.weight, before)  # the head did train
    for fast, slow in zip(fast_head.parameters(), slow_head.parameters(), strict=True):
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)


def test_features_are_what_the_head_receives_in_the_original_order():
    model, family = classifier("bert")
    tokenizer = word_tokenizer(family.pad, "right")
    task = get_task("classification")
    data = task.encode(corpus(12), tokenizer, 16)
    features = compute_features(model, data, task.collate(tokenizer), batch_size=5)  # (N, H)
    _, head, _ = head_of(model)
    for i in (0, 7, 11):  # one example at a time, no padding: the model's own logits
        example = task.collate(tokenizer)([data[i]])
        example.pop("labels")
        with torch.no_grad():
            expected = model.eval()(**example).logits[0]
        torch.testing.assert_close(head(features[i]), expected, atol=1e-5, rtol=1e-5)
