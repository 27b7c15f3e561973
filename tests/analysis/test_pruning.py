"""Pruning (Michel et al. 2019): a gated head is exactly a head whose values are zero."""

from __future__ import annotations

import copy

import pandas as pd
import torch

from attention_lab.analysis.pruning import heads_masked, pruning_order
from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from tests.conformance.families import BY_NAME


def test_masking_heads_equals_zeroing_their_value_projections():
    model = apply_mechanism(BY_NAME["bert"].build(), MechanismSpec("mha"))
    ids = torch.randint(3, 128, (2, 7), generator=torch.Generator().manual_seed(0))
    pruned = [(0, 1), (1, 3), (1, 0)]
    reference = copy.deepcopy(model)
    width = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for layer, head in pruned:  # a head with zero values outputs zero, whatever it attends to
            value = reference.bert.encoder.layer[layer].attention.self.value
            value.weight[head * width : (head + 1) * width] = 0
            value.bias[head * width : (head + 1) * width] = 0
        unmasked = model(ids).logits
        with heads_masked(model, pruned):
            masked = model(ids).logits
        expected = reference(ids).logits
        after = model(ids).logits
    torch.testing.assert_close(masked, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(masked, unmasked)
    torch.testing.assert_close(after, unmasked, rtol=0, atol=0)  # the gates are gone again


def test_heads_are_pruned_least_important_first_with_ties_by_position():
    importance = pd.DataFrame(
        {"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "importance_normalized": [0.9, 0.1, 0.1, 0.5]}
    )
    assert pruning_order(importance) == [(0, 1), (1, 0), (1, 1), (0, 0)]
