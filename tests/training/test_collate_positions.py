"""Training and evaluation batches see the positions that extraction sees, padded on the left."""

from __future__ import annotations

import pytest
import torch

from attention_lab.tasks import get_task
from attention_lab.training.methods import prepare
from attention_lab.variants import LoraSpec
from tests.conformance.families import BY_NAME, probe_set, word_tokenizer


@pytest.mark.parametrize("method", ["full", "lora"])
def test_left_padded_batches_give_each_example_its_own_logits(method):
    family = BY_NAME["llama"]
    model = prepare(family.build(), method, "causal_lm", LoraSpec()).eval()
    tokenizer, task = word_tokenizer(family.pad, "left"), get_task("causal_lm")
    data = task.encode(probe_set(), tokenizer, 16)
    batch = task.collate(tokenizer, model)([data[i] for i in range(len(data))])
    assert "position_ids" in batch  # the batch is padded on the left
    with torch.no_grad():
        padded = model(**batch).logits  # (B, T, V)
        for row, example in enumerate(data):
            n = len(example["input_ids"])
            alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]  # (n, V)
            torch.testing.assert_close(padded[row, -n:], alone, atol=1e-5, rtol=1e-5)
