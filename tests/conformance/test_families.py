"""Conformance: stored maps are exactly each family's own eager attention, padded on either side.

For every family of :mod:`families` and both padding sides, the probe set goes through the
project's extraction and store (exact float32), and each stored map is compared with the
model's native eager ``output_attentions`` for that example run alone, without padding.
Mechanisms are checked against references built without the project's code: a model with
averaged key/value projection weights, and the window band written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.interface import PLAN_ATTR
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.datasets.store import AttentionStore, AttentionStream, write_store
from attention_lab.errors import ConfigError
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.run import iter_attention, padding_side, store_metadata
from attention_lab.model_info import ModelInfo
from attention_lab.models.shape import model_shape
from attention_lab.tasks import get_task
from attention_lab.tasks.base import accepts
from tests.conformance.families import (
    BY_NAME,
    FAMILIES,
    OWN_ATTENTION_FAMILIES,
    kv_heads,
    mechanisms_for,
    pooled_kv_copy,
    probe_set,
    word_tokenizer,
)

TOLERANCE = 1e-5


def extract(model, family, side: str, tmp_path, **params) -> AttentionStore:
    """The project's extraction and store, exact (no grid, float32), on one padded batch."""
    tokenizer = word_tokenizer(family.pad, side)
    task, shape = get_task(family.task), model_shape(model)
    opts = ExtractionOptions.parse({"precision_bits": None, "batch_size": 8, **params}, shape)
    used = padding_side(model, tokenizer, shape)
    meta = store_metadata(model, shape, ModelInfo(family.name, family.task), opts, used)
    examples = iter_attention(model, tokenizer, task, probe_set(), shape, opts, used)
    path = str(tmp_path / f"{family.name}-{side}.zarr.zip")
    write_store(path, AttentionStream(meta, examples), dtype="float32")
    return AttentionStore(path)


def native(family, store: AttentionStore, example: int, model=None) -> dict[str, np.ndarray]:
    """The unpatched eager model's own ``output_attentions`` for one example alone: [L, H, Tq, Tk]."""
    model = model if model is not None else family.build("eager")
    meta = store.example_meta(example)
    inputs = {"input_ids": torch.tensor([meta["token_ids"]])}
    if family.task == "seq2seq":
        inputs["decoder_input_ids"] = torch.tensor([meta["decoder"]["token_ids"]])
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    if family.task == "seq2seq":
        maps = {
            "encoder": out.encoder_attentions,
            "decoder": out.decoder_attentions,
            "cross": out.cross_attentions,
        }
    else:
        maps = {store.kinds[0]: out.attentions}
    return {kind: torch.stack(layers, 1)[0].numpy() for kind, layers in maps.items()}


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("family", FAMILIES + OWN_ATTENTION_FAMILIES, ids=lambda f: f.name)
def test_stored_maps_equal_native_eager_attention(family, side, tmp_path):
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    store = extract(model, family, side, tmp_path)
    # decoders keep the tokenizer's side (position ids follow the real tokens); encoders and
    # encoder-decoders are padded on the right, so for them "left" repeats "right"
    # (BLOOM and MPT take no position ids: their ALiBi needs no shift, but they are padded on
    # the right like encoders, which is exact in every family)
    keeps_left = family.task == "causal_lm" and accepts(model, "position_ids")
    assert store.meta.padding_side == (side if keeps_left else "right")
    for example in range(len(store)):
        expected = native(family, store, example)
        assert sorted(expected) == sorted(store.kinds)
        for kind, reference in expected.items():
            stored = store.attention(example, kind)
            assert stored.shape == reference.shape, (kind, stored.shape, reference.shape)
            # (a) every stored map is the model's own eager attention; this includes (c): the
            # first stored row is the first real token's, as the reference has no padding
            assert float(np.abs(stored - reference).max()) <= TOLERANCE, (family.name, kind)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_grouped_query_maps_equal_a_model_with_pooled_projection_weights(family, tmp_path):
    """(b) gqa/mqa: the stored maps are those of the native eager model whose key and value
    projection weights were averaged within head groups (built without the project's code),
    fused projections (Phi-3, GPT-2, GPT-NeoX) included."""
    for spec in mechanisms_for(family)[:2]:
        model = apply_mechanism(family.build(), spec)  # no family here refuses a mechanism
        planned = [m for m in model.modules() if getattr(m, PLAN_ATTR, None) is not None]
        if kv_heads(family) <= spec.target_kv_heads:  # Qwen2, Gemma-3: already one key/value head
            assert not planned, (family.name, spec.name)
            continue
        assert planned, (family.name, spec.name)
        store = extract(model, family, "right", tmp_path)
        reference = pooled_kv_copy(family, spec.target_kv_heads)
        for example in range(len(store)):
            for kind, expected in native(family, store, example, reference).items():
                difference = float(np.abs(store.attention(example, kind) - expected).max())
                assert difference <= TOLERANCE, (family.name, spec.name, kind, difference)


def outside_band(length: int, window: int, causal: bool) -> np.ndarray:
    """(T, T) True where query i may not see key j: the band written out by hand."""
    i, j = np.indices((length, length))
    return ~((0 <= i - j) & (i - j <= window)) if causal else np.abs(i - j) > window


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_sliding_window_leaves_no_mass_outside_its_band(family, tmp_path):
    """(b) sliding_window: zero mass outside the band, fused projections included."""
    window = mechanisms_for(family)[2]
    model = apply_mechanism(family.build(), window)  # no family here refuses it
    store = extract(model, family, "right", tmp_path)
    for kind in (k for k in store.kinds if k != "cross"):
        for example in range(len(store)):
            weights = store.attention(example, kind)  # [L, H, T, T]
            outside = outside_band(weights.shape[-1], window.window, causal=kind == "decoder")
            assert float(np.abs(weights[..., outside]).sum()) == 0.0, (family.name, kind)


def test_a_family_that_bypasses_the_interface_is_refused():
    """XGLM accepts any attention implementation but never calls it: no silent no-op."""
    from transformers import AutoModelForCausalLM, XGLMConfig

    config = XGLMConfig(vocab_size=64, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64)
    model = AutoModelForCausalLM.from_config(config).eval()
    with pytest.raises(ConfigError, match="no self-attention layer calls the attention interface"):
        apply_mechanism(model, MechanismSpec("sliding_window", window=2))


@pytest.mark.parametrize("spec", [MechanismSpec("mqa"), MechanismSpec("sliding_window", window=8)])
def test_a_family_that_ignores_the_transformed_inputs_is_refused(spec, monkeypatch):
    """As if the family's eager function used keys, values and a mask of its own: the probe in
    apply_mechanism sees the plan had no effect and stops with the family and the mechanism."""
    from attention_lab.attention import interface

    monkeypatch.setattr(interface, "_transform", lambda module, q, k, v, mask: (k, v, mask))
    with pytest.raises(ConfigError, match=f"{spec.name}.*LlamaForCausalLM"):
        apply_mechanism(BY_NAME["llama"].build(), spec)


def test_sink_tokens_follow_the_first_real_token_with_left_padding(tmp_path):
    """StreamingLLM sinks are the first *real* tokens: a left-padded example's maps equal those
    of the same model on that example alone, where the sink is column 0."""
    family = BY_NAME["llama"]
    spec = MechanismSpec("sliding_window", window=1, sink_tokens=1)
    model = apply_mechanism(family.build(), spec)
    store = extract(model, family, "left", tmp_path)
    assert store.meta.padding_side == "left"
    for example in range(len(store)):
        ids = torch.tensor([store.example_meta(example)["token_ids"]])
        with torch.no_grad():
            alone = torch.stack(model(input_ids=ids, output_attentions=True).attentions, 1)[0]
        np.testing.assert_allclose(store.attention(example, "decoder"), alone.numpy(), atol=1e-5)
        assert bool((alone[..., 2:, 0] > 0).all())  # beyond the window, the sink still sees


@pytest.mark.parametrize("family", OWN_ATTENTION_FAMILIES, ids=lambda f: f.name)
def test_a_family_outside_the_interface_records_its_path_and_refuses_what_needs_it(
    family, tmp_path
):
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    store = extract(model, family, "right", tmp_path)
    assert store.meta.attention_path == "output_attentions"
    for spec in mechanisms_for(family):
        with pytest.raises(ConfigError, match="cannot be applied; mechanism mha works") as caught:
            apply_mechanism(family.build(), spec)
        assert "\n" not in str(caught.value) and "Llama" in str(caught.value)
    with pytest.raises(ConfigError, match="norm-based maps .* needs the attention interface"):
        extract(model, family, "right", tmp_path, norms=True)


def test_a_family_inside_the_interface_records_that_path(tmp_path):
    family = BY_NAME["llama"]
    store = extract(
        apply_mechanism(family.build(), MechanismSpec("mha")), family, "right", tmp_path
    )
    assert store.meta.attention_path == "attention_interface"
