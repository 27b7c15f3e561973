"""Conformance: stored maps are exactly each family's own eager attention, padded on either side.

For every family of :mod:`families` and both padding sides, the probe set goes through the
project's extraction and store (exact float32), and each stored map is compared with the
model's native eager ``output_attentions`` for that example run alone, without padding.
Mechanisms either provably apply or stop with a clear error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.interface import OBSERVER_ATTR, PLAN_ATTR
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.attention.plan import band
from attention_lab.datasets.store import AttentionStore, AttentionStream, write_store
from attention_lab.errors import ConfigError
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.run import iter_attention, padding_side, store_metadata
from attention_lab.models.shape import model_shape
from attention_lab.tasks import get_task
from tests.conformance.families import FAMILIES, word_tokenizer

LENGTHS = (7, 3, 5)  # one batch: every example but the longest is padded
TOLERANCE = 1e-5


def probe_set(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"t{i}" for i in rng.integers(4, 128, n)) for n in LENGTHS]
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "text": texts, "label": 0})


def extract(model, family, side: str, tmp_path, **params) -> AttentionStore:
    """The project's extraction and store, exact (no grid, float32), on one padded batch."""
    tokenizer = word_tokenizer(family.pad, side)
    task, shape = get_task(family.task), model_shape(model)
    opts = ExtractionOptions.parse({"precision_bits": None, "batch_size": 8, **params}, shape)
    used = padding_side(model, tokenizer, shape)
    meta = store_metadata(model, shape, {"variant": family.name}, opts, used)
    examples = iter_attention(model, tokenizer, task, probe_set(), shape, opts, used)
    path = str(tmp_path / f"{family.name}-{side}.zarr.zip")
    write_store(path, AttentionStream(meta, examples), dtype="float32")
    return AttentionStore(path)


def native(family, store: AttentionStore, example: int) -> dict[str, np.ndarray]:
    """The unpatched eager model's own ``output_attentions`` for one example alone: [L, H, Tq, Tk]."""
    model = family.build("eager")
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
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_stored_maps_equal_native_eager_attention(family, side, tmp_path):
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    store = extract(model, family, side, tmp_path)
    assert store.meta["padding_side"] in ("left", "right")
    if (
        family.task == "causal_lm"
    ):  # decoders keep the tokenizer's side (position ids follow the real tokens)
        assert store.meta["padding_side"] == side
    for example in range(len(store)):
        expected = native(family, store, example)
        assert sorted(expected) == sorted(store.kinds)
        for kind, reference in expected.items():
            stored = store.attention(example, kind)
            assert stored.shape == reference.shape, (kind, stored.shape, reference.shape)
            # (c) the first stored row is the first real token's row
            np.testing.assert_allclose(stored[:, :, 0], reference[:, :, 0], atol=TOLERANCE)
            # (a) every stored map is the model's own eager attention
            assert float(np.abs(stored - reference).max()) <= TOLERANCE, (family.name, kind)


def mechanisms_for(family) -> list[MechanismSpec]:
    shape = model_shape(apply_mechanism(family.build(), MechanismSpec("mha")))
    return [
        MechanismSpec("gqa", kv_heads=max(1, shape.num_kv_heads // 2)),
        MechanismSpec("mqa"),
        MechanismSpec("sliding_window", window=2),
    ]


def observed_keys(model) -> list[tuple[object, torch.Tensor]]:
    """Run one batch and keep the keys each planned layer handed to its family's eager function."""
    seen = []
    for module in model.modules():
        setattr(
            module, OBSERVER_ATTR, lambda m, q, k, mask, w: seen.append((getattr(m, PLAN_ATTR), k))
        )
    ids = torch.arange(4, 10)[None, :]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if model.config.is_encoder_decoder:
        inputs["decoder_input_ids"] = ids[:, :4]
    with torch.no_grad():
        model(**inputs)
    for module in model.modules():
        setattr(module, OBSERVER_ATTR, None)
    return [(plan, key) for plan, key in seen if plan is not None]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_mechanisms_apply_or_fail_clearly(family, tmp_path):
    """(b) grouped heads read identical keys; a window leaves no mass outside its band."""
    for spec in mechanisms_for(family):
        try:
            model = apply_mechanism(family.build(), spec)
        except ConfigError as error:  # allowed only with a message naming family and mechanism
            assert spec.name in str(error)
            continue
        if spec.name in ("gqa", "mqa"):
            groups = spec.target_kv_heads
            for _, key in observed_keys(model):  # key: (B, Hkv, T, d)
                per_group = key.view(key.shape[0], groups, -1, *key.shape[2:])
                assert torch.equal(per_group, per_group[:, :, :1].expand_as(per_group)), family.name
        else:
            store = extract(model, family, "right", tmp_path)
            for kind in (k for k in store.kinds if k != "cross"):
                causal = store.meta["causal"][kind]
                for example in range(len(store)):
                    weights = torch.from_numpy(store.attention(example, kind))  # [L, H, T, T]
                    outside = ~band(*weights.shape[-2:], 2, causal, 0, "cpu")
                    assert float(weights[..., outside].abs().sum()) == 0.0, (family.name, kind)


def test_a_family_that_bypasses_the_interface_is_refused():
    """XGLM accepts any attention implementation but never calls it: no silent no-op."""
    from transformers import AutoModelForCausalLM, XGLMConfig

    config = XGLMConfig(vocab_size=64, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64)
    model = AutoModelForCausalLM.from_config(config).eval()
    with pytest.raises(ConfigError, match="no self-attention layer calls the attention interface"):
        apply_mechanism(model, MechanismSpec("sliding_window", window=2))


@pytest.mark.parametrize("name", ["phi3", "gpt2", "gpt_neox"])
def test_fused_projection_families_never_claim_an_unapplied_mechanism(name):
    """Every mechanism on a fused-qkv family is either verified in the attention call or refused."""
    family = next(f for f in FAMILIES if f.name == name)
    for spec in mechanisms_for(family):
        model = apply_mechanism(family.build(), spec)  # raises ConfigError if not honoured
        plans = [plan for plan, _ in observed_keys(model)]
        assert plans, f"{name}: {spec.name} planned no layer"
