"""Norm-based attention (Kobayashi et al. 2020): stored maps against ‖α_ij f_h(x_j)‖ computed
by hand from the native model's hidden states, value and output projection weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ConfigError
from attention_lab.extraction.norms import output_projections
from tests.conformance.families import BY_NAME, FAMILIES
from tests.conformance.test_families import extract


def bert_values(model, hidden: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, H, d) value vectors of one layer and its output projection weight (out, H*d)."""
    block = model.bert.encoder.layer[layer].attention
    heads = model.config.num_attention_heads
    return block.self.value(hidden).reshape(hidden.shape[0], heads, -1), block.output.dense.weight


def llama_values(model, hidden: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    block = model.model.layers[layer]
    kv = model.config.num_key_value_heads
    repeat = model.config.num_attention_heads // kv
    values = block.self_attn.v_proj(block.input_layernorm(hidden)).reshape(hidden.shape[0], kv, -1)
    return values.repeat_interleave(repeat, dim=1), block.self_attn.o_proj.weight


def by_hand(model, ids: list[int], values_of) -> np.ndarray:
    """[L, H, T, T] row-normalised ‖α_ij v_j^h W_O^h‖ from the unpatched eager model, in float64."""
    model = model.double()
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        maps = []
        for layer, weights in enumerate(out.attentions):
            values, projection = values_of(model, out.hidden_states[layer][0], layer)
            heads, width = values.shape[1], values.shape[2]
            lengths = torch.stack(  # (H, T): ‖f_h(x_j)‖ one head at a time
                [
                    (values[:, h] @ projection[:, h * width : (h + 1) * width].T).norm(dim=-1)
                    for h in range(heads)
                ]
            )
            raw = weights[0] * lengths[:, None, :]  # (H, T, T)
            maps.append(raw / raw.sum(-1, keepdim=True))
    return torch.stack(maps).numpy()


@pytest.mark.parametrize(("name", "values_of"), [("bert", bert_values), ("llama", llama_values)])
def test_stored_norms_equal_a_hand_computation(name, values_of, tmp_path):
    family = BY_NAME[name]
    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    store = extract(model, family, "right", tmp_path, norms=True)
    kind = store.kinds[0]
    assert store.kinds == [kind, f"{kind}_norm"] and store.meta.norms is True
    native = family.build("eager")
    for example in range(len(store)):
        expected = by_hand(native, store.example_meta(example)["token_ids"], values_of)
        stored = store.attention(example, f"{kind}_norm")
        np.testing.assert_allclose(stored, expected, atol=1e-5)
        assert not np.allclose(stored, store.attention(example, kind), atol=1e-3)  # not α again


def test_a_family_without_an_output_projection_is_refused():
    model = apply_mechanism(BY_NAME["llama"].build(), MechanismSpec("mha"))
    model.model.layers[1].self_attn.o_proj = torch.nn.Identity()
    with pytest.raises(ConfigError, match="no output projection follows model.layers.1.self_attn"):
        output_projections(model)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_family_has_its_output_projection_found(family):
    from attention_lab.attention.discovery import discover

    model = apply_mechanism(family.build(), MechanismSpec("mha"))
    grams = output_projections(model)
    layers = discover(model)
    assert set(grams) == {id(layer.module) for layer in layers}
    for layer in layers:
        gram = grams[id(layer.module)]  # (H, d, d), W_h W_hᵀ: symmetric, never negative
        assert gram.shape[0] == layer.num_heads
        torch.testing.assert_close(gram, gram.transpose(1, 2))
        assert torch.linalg.eigvalsh(gram.double()).min() > -1e-6
