"""A study of families outside the attention interface, end to end through `kedro run`:
tiny random DeBERTa-v2 classifiers and BLOOM language models, whose stored maps must equal
their own eager output_attentions example by example; a window on BLOOM is refused before
any training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    BloomConfig,
    DebertaV2Config,
)

from attention_lab.datasets.store import AttentionStore
from tests.runs import data_root, kedro

pytestmark = pytest.mark.slow

VOCAB = 30522  # MiniLM's tokenizer, saved beside each tiny model


def tiny(folder, model, tokenizer) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture
def deberta(tmp_path, bert_tokenizer) -> str:
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_buckets=16,
        max_relative_positions=32,
        pad_token_id=0,
        num_labels=2,
    )
    return tiny(
        tmp_path / "deberta", AutoModelForSequenceClassification.from_config(config), bert_tokenizer
    )


@pytest.fixture
def bloom(tmp_path, bert_tokenizer) -> str:
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, pad_token_id=0)
    return tiny(tmp_path / "bloom", AutoModelForCausalLM.from_config(config), bert_tokenizer)


def study_env(scratch_env, model: str, task: str, variants: dict) -> str:
    """A scratch copy of the `test` env on ``model`` whose variants are exactly ``variants``
    (the scratch env merges over the test env's, which would keep its own variants)."""
    env = scratch_env(
        yaml.safe_dump(
            {
                "study": {"task": task, "seeds": [7], "defaults": {"model": model}},
                "attention_extraction": {"norms": False, "precision_bits": None},  # exact maps
            }
        )
    )
    path = env.folder / "parameters.yml"
    parameters = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(parameters | {"variants": variants}, sort_keys=False))
    return env


def assert_maps_are_the_models_own(env: str, variant: str, auto_class, folder: str) -> None:
    store = AttentionStore(
        str(data_root(env) / f"07_model_output/{variant}/seed7/attention.zarr.zip")
    )
    assert store.meta.attention_path == "output_attentions"
    trained = data_root(env) / f"06_models/{variant}/seed7"
    model = auto_class.from_pretrained(trained if (trained / "config.json").exists() else folder)
    model = model.eval()
    for example in range(len(store)):
        ids = torch.tensor([store.example_meta(example)["token_ids"]])
        with torch.no_grad():
            native = torch.stack(model(input_ids=ids, output_attentions=True).attentions, 1)[0]
        stored = store.attention(example, store.kinds[0])
        # the catalog's store keeps float16: within its rounding (11 significant bits)
        bound = np.abs(native.numpy()) * 2.0**-11 + 1e-6
        assert (np.abs(stored - native.numpy()) <= bound).all(), (variant, example)


def test_deberta_and_bloom_studies_run_and_store_their_own_attention(scratch_env, deberta, bloom):
    classify = study_env(
        scratch_env,
        deberta,
        "classification",
        {"base": {"method": "head"}, "full": {"method": "full"}},
    )
    kedro(*classify.args)
    for variant in ("base", "full"):
        assert_maps_are_the_models_own(
            classify, variant, AutoModelForSequenceClassification, deberta
        )

    language = study_env(scratch_env, bloom, "causal_lm", {"base": {"method": "none"}})
    kedro(*language.args)
    assert_maps_are_the_models_own(language, "base", AutoModelForCausalLM, bloom)
    assert (data_root(language) / "08_reporting/attention_report.html").is_file()


def test_a_window_on_bloom_is_refused_before_any_training(scratch_env, bloom):
    window = {"base": {"method": "lora", "mechanism": {"name": "sliding_window", "window": 4}}}
    env = study_env(scratch_env, bloom, "causal_lm", window)
    result = kedro(*env.args, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "mechanism mha works" in errors[0], result.stderr[-2000:]
    assert not (data_root(env) / "06_models/base/seed7").exists()
