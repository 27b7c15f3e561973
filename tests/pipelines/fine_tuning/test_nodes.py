"""Fine-tuning nodes on a few MiniLM steps: methods, saved artifacts, metrics, the head-only control."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from attention_lab.datasets.model_directory import ModelDirectoryDataset
from attention_lab.models.loading import load_model
from attention_lab.pipelines.fine_tuning.nodes import evaluate, fine_tune

STUDY = {
    "task": "classification",
    "defaults": {
        "model": "minilm",
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 24, "learning_rate": 1e-2},
    },
}


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    rows = []
    for i in range(24):
        label = i % 2
        rows.append(
            {
                "id": f"x{i}",
                "text": f"{'a great' if label else 'a dull'} movie number {i}",
                "label": label,
                "label_name": ["rotten", "fresh"][label],
                "split": ["train", "train", "test"][i % 3],
            }
        )
    return pd.DataFrame(rows)


def train_and_save(corpus, tmp_path, name, **variant):
    model, log = fine_tune(corpus, {"variant": name, "seed": "42"}, variant, STUDY)
    dataset = ModelDirectoryDataset(str(tmp_path / name))
    dataset.save(model)
    return dataset.load(), log


def probe_attention(model, tokenizer):
    batch = tokenizer(["the acting is not good"], return_tensors="pt").to(model.device)
    with torch.no_grad():
        return torch.stack(model(**batch, output_attentions=True).attentions)


def test_head_variant_leaves_attention_identical_to_the_pretrained_model(corpus, tmp_path):
    artifact, log = train_and_save(corpus, tmp_path, "base", method="head")
    assert log["trainable_parameters"] == 384 * 2 + 2  # classifier weight and bias only
    model, tokenizer = artifact.load()
    pretrained = load_model("minilm", "classification", num_labels=2)
    assert torch.equal(probe_attention(model, tokenizer), probe_attention(pretrained, tokenizer))


def test_lora_variant_stores_an_adapter_that_reloads_with_its_mechanism(corpus, tmp_path):
    artifact, log = train_and_save(
        corpus, tmp_path, "gqa4_lora", method="lora", mechanism={"name": "gqa", "kv_heads": 4}
    )
    files = {p.name for p in artifact.path.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "attention_lab.json"} <= files
    assert "model.safetensors" not in files  # only the adapter: the base is named, not copied
    assert 0 < log["trainable_parameters"] < log["total_parameters"] / 10
    model, _ = artifact.load()
    assert model.config.attention_lab_mechanism == {
        "name": "gqa",
        "kv_heads": 4,
        "window": None,
        "layers": None,
    }
    plans = [m.attention_lab_plan for m in model.modules() if hasattr(m, "attention_lab_plan")]
    assert len(plans) == 6 and all(p.kv_groups == 4 for p in plans)
    adapter = json.loads((artifact.path / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {"query", "key", "value"}


def test_full_fine_tuning_changes_attention_and_metrics_are_complete(corpus, tmp_path):
    artifact, log = train_and_save(corpus, tmp_path, "full", method="full")
    assert log["trainable_parameters"] == log["total_parameters"]
    model, tokenizer = artifact.load()
    pretrained = load_model("minilm", "classification", num_labels=2)
    assert not torch.allclose(
        probe_attention(model, tokenizer), probe_attention(pretrained, tokenizer)
    )
    metrics, predictions = evaluate(artifact, corpus, log)
    for key in (
        "accuracy",
        "macro_f1",
        "eval_loss",
        "train_seconds",
        "trainable_parameters",
        "total_parameters",
        "peak_memory_mb",
    ):
        assert key in metrics
    test = corpus[corpus["split"] == "test"]
    assert metrics["test_examples"] == len(test)
    assert metrics["accuracy"] in {round(k / len(test), 4) for k in range(len(test) + 1)}
    assert metrics["untrained_head"] is False
    # each test example's outcome, in the test split's order, agrees with the metrics
    assert list(predictions["id"]) == list(test["id"])
    assert predictions["correct"].mean() == pytest.approx(metrics["accuracy"], abs=1e-4)
    mean_loss = predictions["loss_sum"].sum() / predictions["loss_terms"].sum()
    assert mean_loss == pytest.approx(metrics["eval_loss"], abs=1e-4)
    assert (metrics["seed"], set(predictions["seed"])) == (42, {42})


def test_method_none_flags_an_untrained_head(corpus, tmp_path):
    artifact, log = train_and_save(corpus, tmp_path, "raw", method="none")
    assert log["train_steps"] == 0
    assert evaluate(artifact, corpus, log)[0]["untrained_head"] is True


def test_causal_lm_reports_perplexity_equal_to_exp_loss(corpus, tmp_path):
    from transformers import AutoTokenizer

    from attention_lab.datasets.model_directory import TrainedModel
    from attention_lab.models.zoo import resolve
    from tests.conftest import tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    dataset = ModelDirectoryDataset(str(tmp_path / "lm"))
    dataset.save(
        TrainedModel(
            tiny_llama(),
            tokenizer,
            {
                "variant": "lm",
                "base_model": "tiny",
                "task": "causal_lm",
                "method": "none",
                "mechanism": {"name": "mha"},
                "adapter": False,
                "max_length": 24,
            },
        )
    )
    metrics, predictions = evaluate(dataset.load(), corpus, {"train_seconds": 0})
    assert np.isclose(metrics["perplexity"], np.exp(metrics["eval_loss"]), rtol=1e-3)
    assert metrics["perplexity"] > 1000  # a random model over a 30k vocabulary is close to uniform
    # per example: the model's own loss on that text alone, times its terms (tokens - 1)
    model = dataset.load().load()[0]
    texts = corpus[corpus["split"] == "test"]["text"]
    for row, text in zip(predictions.itertuples(), texts, strict=True):
        ids = tokenizer(text, truncation=True, max_length=24, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            own = float(model(input_ids=ids, labels=ids).loss)
        assert row.loss_terms == ids.shape[1] - 1
        assert row.loss_sum == pytest.approx(own * row.loss_terms, rel=1e-4)


@pytest.fixture(scope="module")
def tiny_llama_folder(tmp_path_factory) -> str:
    """A tiny random Llama saved with MiniLM's tokenizer: a base checkpoint to convert."""
    from transformers import AutoTokenizer

    from attention_lab.models.zoo import resolve
    from tests.conftest import tiny_llama

    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(num_heads=4, kv_heads=2).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve("minilm")).save_pretrained(folder)
    return str(folder)


LM_STUDY = {
    "task": "causal_lm",
    "defaults": {
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 16, "learning_rate": 1e-2},
    },
}


@pytest.mark.parametrize(
    "mechanism",
    [
        {"name": "mqa", "pooling": "calibrated"},
        {"name": "mla", "rank": 6, "rope_pairs": 2},
        {"name": "gated"},
    ],
    ids=["calibrated_mqa", "mla", "gated"],
)
def test_a_converted_lora_variant_is_stored_whole_and_reloads_as_trained(
    corpus, tmp_path, tiny_llama_folder, mechanism
):
    variant = {
        "model": tiny_llama_folder,
        "method": "lora",
        "mechanism": mechanism,
        "training": {"objective": "distill"},
    }
    trained, log = fine_tune(corpus, {"variant": "converted", "seed": "42"}, variant, LM_STUDY)
    assert trained.info.adapter is False and trained.info.objective == "distill"
    assert log["train_steps"] == 2
    dataset = ModelDirectoryDataset(str(tmp_path / "converted"))
    dataset.save(trained)
    assert (tmp_path / "converted" / "model.safetensors").exists()
    model, tokenizer = dataset.load().load()
    ids = tokenizer(["a great movie number seven"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = trained.model.eval()(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert float((expected - got).abs().max()) <= 1e-5
    assert model.config.attention_lab_mechanism["name"] == mechanism["name"]
    # extraction asked for norm-based maps: defined unless a gate scales the head outputs
    from attention_lab.pipelines.attention_extraction.nodes import extract_attention

    probes = corpus[corpus["split"] == "test"].iloc[:2].assign(source="test")
    stream = extract_attention(dataset.load(), probes, {"norms": True, "max_length": 16})
    gated = mechanism["name"] == "gated"
    assert stream.meta.norms is not gated
    assert ("decoder_norm" in stream.meta.kinds) is not gated
