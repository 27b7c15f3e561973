"""Cross-attention on a task with a known answer: a small encoder-decoder trained from scratch
to copy its input must look at the source token it is copying, as read back from the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from attention_lab.analysis.copy_task import LENGTH, PAD, VOCAB, copy_model
from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.datasets.store import AttentionStore, AttentionStream, write_store
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.run import iter_attention, store_metadata
from attention_lab.model_info import ModelInfo
from attention_lab.models.shape import model_shape
from attention_lab.tasks import get_task
from tests.conformance.families import word_tokenizer

pytestmark = pytest.mark.slow  # subprocess runs of the CLI, or a model trained from scratch


def test_copying_decoder_attends_to_the_aligned_source_token(tmp_path):
    model = apply_mechanism(copy_model(), MechanismSpec("mha"))
    rng = np.random.default_rng(1)
    # distinct tokens: with a repeated token the aligned position is ambiguous by content
    texts = [
        " ".join(f"t{i}" for i in rng.choice(np.arange(4, VOCAB), LENGTH, replace=False))
        for _ in range(8)
    ]
    probes = pd.DataFrame({"id": [f"c{i}" for i in range(8)], "text": texts, "label": 0})
    tokenizer = word_tokenizer(PAD, "right")
    task, shape = get_task("seq2seq"), model_shape(model)
    opts = ExtractionOptions.parse({"precision_bits": None}, shape)
    meta = store_metadata(model, shape, ModelInfo("copy", "seq2seq"), opts, "right")
    path = str(tmp_path / "copy.zarr.zip")
    write_store(
        path, AttentionStream(meta, iter_attention(model, tokenizer, task, probes, shape, opts))
    )
    store = AttentionStore(path)

    aligned_mass = []
    for example in range(len(store)):
        meta = store.example_meta(example)
        decoded = meta["decoder"]["token_ids"]
        assert decoded[1 : LENGTH + 1] == meta["token_ids"], "the model copies its input"
        cross = store.attention(example, "cross")[0, 0]  # [decoder tokens, source tokens]
        # decoder row i predicts output token i, which is source token i
        aligned_mass.extend(cross[i, i] for i in range(LENGTH))
    aligned_mass = np.array(aligned_mass)
    assert aligned_mass.min() >= 0.9, aligned_mass.round(3)


def test_generated_mask_keeps_the_answer_through_its_first_end_token():
    from attention_lab.tasks.seq2seq import generated_mask

    end, pad = 2, 2  # a tokenizer without a pad token pads with its end token
    generated = torch.tensor(
        [[0, 5, 6, end, pad, pad], [0, 7, 8, 9, 4, 4], [pad, 5, end, pad, pad, pad]]
    )
    expected = torch.tensor(
        [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool
    )
    assert torch.equal(generated_mask(generated, end), expected)
    assert torch.equal(
        generated_mask(generated, [end, 9])[1], torch.tensor([1, 1, 1, 1, 0, 0]).bool()
    )
    assert bool(generated_mask(generated, None).all())
