"""Extraction against the model's own output_attentions, for encoders, decoders and encoder-decoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.datasets.model_directory import ModelDirectoryDataset, TrainedModel
from attention_lab.datasets.store import AttentionStore, write_store
from attention_lab.models.loading import load_model
from attention_lab.pipelines.attention_extraction.nodes import extract_attention
from tests.conftest import tiny_llama

TEXTS = [
    "A warm, clever story.",
    "The film is not funny and the acting is not good at all.",
    "Dull.",
    "One more probe sentence that is somewhat longer than the others, to force padding.",
]


@pytest.fixture(scope="module")
def probes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(len(TEXTS))],
            "text": TEXTS,
            "label": [1, 0, 0, -1],
            "label_name": ["fresh", "rotten", "rotten", ""],
            "split": "test",
            "source": "test",
        }
    )


def save_artifact(tmp_path, name, model, tokenizer, task, mechanism="mha"):
    dataset = ModelDirectoryDataset(str(tmp_path / name))
    dataset.save(
        TrainedModel(
            model,
            tokenizer,
            {
                "variant": name,
                "base_model": name,
                "task": task,
                "method": "full",
                "mechanism": MechanismSpec.from_config(mechanism).to_dict(),
                "num_labels": 2,
                "adapter": False,
                "label_names": ["rotten", "fresh"],
            },
        )
    )
    return dataset.load()


def extract(tmp_path, artifact, probes, **params) -> AttentionStore:
    path = str(tmp_path / f"{artifact.info.variant}.zarr.zip")
    write_store(
        path, extract_attention(artifact, probes, {"batch_size": 3, "max_length": 64, **params})
    )
    return AttentionStore(path)


@pytest.fixture(scope="module")
def encoder_store(tmp_path_factory, bert_tokenizer, probes):
    tmp = tmp_path_factory.mktemp("enc")
    model = load_model("minilm", "classification", num_labels=2)
    artifact = save_artifact(tmp, "enc", model, bert_tokenizer, "classification")
    return extract(tmp, artifact, probes), artifact


def test_stored_maps_equal_the_models_own_attentions(encoder_store, probes):
    store, artifact = encoder_store
    model, tokenizer = artifact.load()
    for text, eid in zip(probes["text"], probes["id"], strict=True):
        with torch.no_grad():  # one example at a time: no padding at all in the reference
            own = model(**tokenizer(text, return_tensors="pt"), output_attentions=True).attentions
        reference = torch.stack(own)[:, 0].numpy()  # (L, H, T, T)
        stored = store.attention(eid)
        assert stored.shape == reference.shape
        assert np.abs(stored - reference).max() <= 1e-3


def test_gridded_weights_are_stored_as_grid_steps_by_a_writer_in_the_callers_thread(
    encoder_store, probes
):
    store, artifact = encoder_store
    node = store._root["examples/0.encoder"]  # the array as zarr holds it
    assert node.dtype == np.uint16 and node.attrs["grid_bits"] == store.meta.precision_bits
    # a model on the CPU: the store is encoded between batches, not on a thread beside torch's
    assert extract_attention(artifact, probes, {}).background is False


def test_rows_sum_to_one_and_no_padding_is_stored(encoder_store, probes, bert_tokenizer):
    store, _ = encoder_store
    for eid, text in zip(probes["id"], probes["text"], strict=True):
        meta, weights = store.example_meta(eid), store.attention(eid)
        n = len(bert_tokenizer(text)["input_ids"])
        assert meta["length"] == n == len(meta["tokens"]) == weights.shape[-1] == weights.shape[-2]
        assert (
            meta["special_mask"][0] == 1
            and meta["special_mask"][-1] == 1
            and sum(meta["special_mask"]) == 2
        )
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-3)


def test_metadata_follows_the_contract(encoder_store):
    meta = encoder_store[0].meta
    assert meta.precision_bits == 11
    assert meta.kinds == ["encoder"] and meta.causal == {"encoder": False}
    assert meta.num_heads == meta.num_kv_heads == 12 and meta.kv_group == list(range(12))
    assert meta.layers == list(range(6)) and meta.variant == "enc"
    assert meta.mechanism["name"] == "mha" and meta.attention_path == "attention_interface"


def test_layer_and_head_subsets_and_float32(tmp_path, bert_tokenizer, probes):
    model = load_model("minilm", "classification", num_labels=2)
    artifact = save_artifact(tmp_path, "sub", model, bert_tokenizer, "classification")
    path = str(tmp_path / "sub.zarr.zip")
    write_store(
        path,
        extract_attention(
            artifact, probes, {"layers": [1, 4], "heads": [0, 5, 7], "precision_bits": None}
        ),
        dtype="float32",
    )
    store = AttentionStore(path)
    assert (
        store.attention(0).shape[:2] == (2, 3)
        and store.meta.layers == [1, 4]
        and store.meta.heads == [0, 5, 7]
    )
    full = torch.stack(
        model(**bert_tokenizer(TEXTS[0], return_tensors="pt"), output_attentions=True).attentions
    )[:, 0]
    np.testing.assert_allclose(
        store.attention("p0"), full[[1, 4]][:, [0, 5, 7]].detach().numpy(), atol=1e-6
    )


def test_causal_maps_are_zero_above_the_diagonal_and_gqa_groups_recorded(
    tmp_path, bert_tokenizer, probes
):
    model = tiny_llama(num_heads=4, kv_heads=2)
    apply_mechanism(model, MechanismSpec())
    artifact = save_artifact(tmp_path, "llama", model, bert_tokenizer, "causal_lm")
    store = extract(tmp_path, artifact, probes)
    assert store.meta.kinds == ["decoder"] and store.meta.causal == {"decoder": True}
    assert (
        store.meta.num_heads == 4
        and store.meta.num_kv_heads == 2
        and store.meta.kv_group == [0, 0, 1, 1]
    )
    loaded, tokenizer = artifact.load()
    for eid, text in zip(probes["id"], probes["text"], strict=True):
        weights = store.attention(eid)  # one map per query head: (L, 4, T, T)
        assert weights.shape[1] == 4
        assert np.all(np.triu(np.ones(weights.shape[-2:]), k=1)[None, None] * weights == 0)
        with torch.no_grad():
            own = torch.stack(
                loaded(**tokenizer(text, return_tensors="pt"), output_attentions=True).attentions
            )[:, 0]
        assert np.abs(weights - own.numpy()).max() <= 1e-3


def test_cross_attention_has_decoder_by_encoder_shape(tmp_path, bert_tokenizer, probes):
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(bert_tokenizer),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        decoder_start_token_id=102,
        forced_eos_token_id=None,
    )
    model = BartForConditionalGeneration(config).eval()
    artifact = save_artifact(tmp_path, "bart", model, bert_tokenizer, "seq2seq")
    store = extract(tmp_path, artifact, probes)
    assert store.kinds == ["encoder", "decoder", "cross"]
    assert store.meta.causal == {"encoder": False, "decoder": True, "cross": False}
    for eid in probes["id"]:
        meta = store.example_meta(eid)
        n_enc, n_dec = meta["length"], meta["decoder"]["length"]
        assert store.attention(eid, "encoder").shape[-2:] == (n_enc, n_enc)
        assert store.attention(eid, "decoder").shape[-2:] == (n_dec, n_dec)
        cross = store.attention(eid, "cross")
        assert cross.shape[-2:] == (n_dec, n_enc)  # [decoder tokens, encoder tokens]
        np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-3)
        decoder = store.attention(eid, "decoder")
        assert np.all(np.triu(np.ones((n_dec, n_dec)), k=1)[None, None] * decoder == 0)


def test_empty_probe_set_is_a_clear_error(encoder_store, probes):
    from attention_lab.errors import DataError

    with pytest.raises(DataError, match="probe_set is empty"):
        extract_attention(encoder_store[1], probes.iloc[:0], {})
