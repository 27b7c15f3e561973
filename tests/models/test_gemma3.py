"""Gemma-3 270M, bundled offline: a real decoder with one key/value head and mostly windowed
layers, whose tokenizer pads on the left. Its stored maps must be its own eager attention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from attention_lab.datasets.store import AttentionStore, AttentionStream, write_store
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.run import iter_attention, padding_side, store_metadata
from attention_lab.model_info import ModelInfo
from attention_lab.models.loading import load_model, load_tokenizer
from attention_lab.models.shape import model_shape
from attention_lab.models.zoo import resolve
from attention_lab.tasks import get_task

pytestmark = pytest.mark.slow

TEXTS = [
    "The committee met on Tuesday to discuss the new budget for schools and hospitals.",
    "Shares rose sharply.",
]


def test_gemma3_left_padded_maps_equal_native_eager(tmp_path):
    model, tokenizer = load_model("gemma3-270m", "causal_lm"), load_tokenizer("gemma3-270m")
    shape = model_shape(model)
    assert (shape.num_layers["decoder"], shape.num_heads, shape.num_kv_heads) == (18, 4, 1)
    assert tokenizer.padding_side == "left"
    task = get_task("causal_lm")
    side = padding_side(model, tokenizer, shape)
    assert side == "left"
    opts = ExtractionOptions.parse({"precision_bits": None, "layers": [0, 5, 17]}, shape)
    probes = pd.DataFrame({"id": ["a", "b"], "text": TEXTS, "label": 0})
    meta = store_metadata(model, shape, ModelInfo("gemma", "causal_lm"), opts, side)
    path = str(tmp_path / "gemma.zarr.zip")
    write_store(
        path,
        AttentionStream(meta, iter_attention(model, tokenizer, task, probes, shape, opts, side)),
        dtype="float32",
    )
    store = AttentionStore(path)
    assert store.meta.padding_side == "left"

    native = AutoModelForCausalLM.from_pretrained(
        resolve("gemma3-270m"), attn_implementation="eager"
    ).eval()
    for example in range(len(store)):
        ids = store.example_meta(example)["token_ids"]
        with torch.no_grad():
            out = native(input_ids=torch.tensor([ids]), output_attentions=True)
        expected = torch.stack([out.attentions[i][0] for i in opts.layers]).numpy()  # [L, H, T, T]
        stored = store.attention(example)
        assert stored.shape == expected.shape
        assert float(np.abs(stored - expected).max()) <= 1e-5
        assert float(np.triu(stored, k=1).sum()) == 0.0  # nothing above the diagonal
        np.testing.assert_allclose(stored.sum(-1), 1.0, atol=1e-5)
