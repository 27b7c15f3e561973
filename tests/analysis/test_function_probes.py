"""Head functions of a model: probes from its vocabulary, scores from its own eager attention,
and the ablation summary's arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from attention_lab.analysis.function_probes import (
    build_probes,
    induction_ablation,
    score_heads,
    summarise_ablations,
)
from attention_lab.analysis.head_functions import function_scores
from attention_lab.errors import ConfigError
from attention_lab.models.loading import load_model
from attention_lab.parameters import FunctionSettings
from tests.conftest import tiny_llama


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    tiny_llama(num_heads=4, kv_heads=2).save_pretrained(folder)
    return str(folder)


def test_probes_come_from_the_vocabulary_without_special_tokens(bert_tokenizer):
    probes = build_probes(bert_tokenizer, FunctionSettings(sequences=3, half=10, seed=1))
    ids = np.stack(probes["input_ids"].to_numpy())
    assert ids.shape == (3, 21)
    assert (ids[:, 0] == bert_tokenizer.cls_token_id).all()  # no BOS: [CLS] leads
    np.testing.assert_array_equal(ids[:, 1:11], ids[:, 11:])
    assert not np.isin(ids[:, 1:], bert_tokenizer.all_special_ids).any()
    again = build_probes(bert_tokenizer, FunctionSettings(sequences=3, half=10, seed=1))
    assert probes["input_ids"].map(tuple).equals(again["input_ids"].map(tuple))


def test_scores_are_those_of_the_models_own_eager_attention(llama, bert_tokenizer):
    probes = build_probes(bert_tokenizer, FunctionSettings(sequences=2, half=6))
    model = load_model(llama, "causal_lm")  # through the project's attention plug
    scores = score_heads(model, probes, {"variant": "v", "seed": 1, "kind": "decoder"}, {})
    native = AutoModelForCausalLM.from_pretrained(llama, attn_implementation="eager").eval()
    ids = torch.tensor(np.stack(probes["input_ids"].to_numpy()))
    with torch.no_grad():
        maps = torch.stack(native(input_ids=ids, output_attentions=True).attentions, 1).numpy()
    expected = [function_scores(m, ids[i].numpy(), 6, 1) for i, m in enumerate(maps)]
    for name in ("previous_token", "induction", "prefix_matching"):
        mean = np.mean([e[name] for e in expected], axis=0)  # [L, H]
        ours = scores[scores["function"] == name].sort_values(["layer", "head"])["score"]
        np.testing.assert_allclose(ours.to_numpy(), mean.ravel(), atol=1e-6)


def test_ablation_runs_every_condition_and_masks_heads(llama, bert_tokenizer):
    settings = FunctionSettings(sequences=2, half=6, ablation_k=(1, 2), random_draws=2)
    probes = build_probes(bert_tokenizer, settings)
    model = load_model(llama, "causal_lm")
    scores = score_heads(model, probes, {"variant": "v", "seed": 1, "kind": "decoder"}, {})
    runs = induction_ablation(model, probes, scores, settings)
    counts = runs.groupby(["k", "condition"]).size().to_dict()
    assert counts == {
        (0, "none"): 2,
        (1, "top"): 2,
        (1, "random"): 4,
        (2, "top"): 2,
        (2, "random"): 4,
    }
    assert set(runs["function"]) == {"induction"}
    intact = runs[runs["condition"] == "none"]["value"].to_numpy()
    ablated = runs[(runs["k"] == 2) & (runs["condition"] == "top")]["value"].to_numpy()
    assert not np.allclose(intact, ablated)  # masking two heads changes the output


def test_the_summary_pairs_probes_and_averages_draws():
    rows = [("none", 0, 0, "a", 1.0), ("none", 0, 0, "b", 2.0)]
    rows += [("top", 1, 0, "a", 3.0), ("top", 1, 0, "b", 5.0)]
    rows += [("random", 1, 0, "a", 1.0), ("random", 1, 1, "a", 2.0)]  # a: mean 1.5
    rows += [("random", 1, 0, "b", 2.0), ("random", 1, 1, "b", 4.0)]  # b: mean 3.0
    frame = pd.DataFrame(rows, columns=["condition", "k", "draw", "probe", "value"])
    summary = summarise_ablations(frame.assign(variant="v", seed=1, function="induction"), {})
    row = summary.iloc[0]
    assert row["measure"] == "loss on the repeated half"
    assert row["intact"] == 1.5
    assert row["top_ablated"] == 4.0
    assert row["random_ablated"] == 2.25
    assert row["difference"] == pytest.approx(((3 - 1.5) + (5 - 3.0)) / 2)
    assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    assert row["random_draws"] == 2


def test_wrong_settings_are_named():
    with pytest.raises(ConfigError, match="analysis.head_functions.half: must be >= 1, got 0"):
        FunctionSettings.of({"half": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        FunctionSettings.of({"halves": 3})
