"""Mechanism conversions that rewrite a checkpoint: calibrated pooling, MLA, gated attention.

Each is checked against a reference computed another way: an SVD of the activations
themselves (numpy, not the Gram matrices the conversion uses), attention written out by
hand in float64 with RoPE's angles from their formula, and the unconverted model.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.calibrated import calibrate_kv_heads, fit_layer
from attention_lab.attention.calibration import attention_inputs, self_attention_modules
from attention_lab.attention.gated import GATE_INIT_LOGIT, convert_to_gated
from attention_lab.attention.latent import convert_to_latent
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.attention.structure import convert
from attention_lab.errors import ConfigError
from attention_lab.models.costs import cache_bytes, computed_kv_bytes, decode_steps, prefill
from tests.conftest import tiny_llama

IDS = torch.arange(3, 19).view(2, 8)  # calibration: 2 rows of 8 tokens
PROBE = torch.tensor([[5, 9, 2, 7, 11, 4, 8, 6, 3, 10]])


def run(model, ids=PROBE):
    with torch.no_grad():
        return model(input_ids=ids, output_attentions=True)


def llama(**kwargs):
    model = tiny_llama(**kwargs).double()
    apply_mechanism(model, MechanismSpec())
    return model


def test_calibrated_fit_without_pooling_is_an_exact_reparametrisation():
    base = llama(num_heads=4, kv_heads=2)
    fitted = copy.deepcopy(base)
    inputs = attention_inputs(fitted, IDS)
    for module in self_attention_modules(fitted):
        fit_layer(module, inputs[module], 2, 2, 4, 8)  # two heads into two: nothing pooled
    a, b = run(base), run(fitted)
    assert float((a.logits - b.logits).abs().max()) <= 1e-9
    assert (
        max(float((x - y).abs().max()) for x, y in zip(a.attentions, b.attentions, strict=True))
        <= 1e-9
    )


def complex_pairs(states: np.ndarray, d: int) -> np.ndarray:
    """(N, heads * d) real -> (N, heads, d/2) complex: pair j = (j, j + d/2)."""
    s = states.reshape(len(states), -1, d)
    return s[..., : d // 2] + 1j * s[..., d // 2 :]


def test_calibrated_keys_are_the_weighted_rank_one_fit_of_the_activations():
    """Reference: numpy's SVD of the (N, 2) complex key matrix of each pair, weighted by the
    query energy on that pair; the pooled model's pre-RoPE logits must equal the logits that
    the rank-one reconstruction gives the original queries."""
    base = llama(num_heads=4, kv_heads=2, layers=1)
    module = self_attention_modules(base)[0]
    x = attention_inputs(base, IDS)[module].double()
    q = complex_pairs(module.q_proj(x).detach().numpy(), 8)  # (N, 4, 4)
    k = complex_pairs(module.k_proj(x).detach().numpy(), 8)  # (N, 2, 4)
    energy = np.sqrt((np.abs(q) ** 2).mean(0).reshape(2, 2, 4).sum(1))  # (kv, pairs)
    reference = np.zeros((len(x), 4, len(x)))  # (query token, head, key token)
    for pair in range(4):
        weighted = k[:, :, pair] * energy[:, pair]  # (N, 2)
        u, s, vh = np.linalg.svd(weighted, full_matrices=False)
        rank_one = (u[:, :1] * s[0]) @ vh[:1] / energy[:, pair]  # (N, 2): z_g ~ c_g s
        for head in range(4):
            reference[:, head] += np.real(q[:, head, pair][:, None] * rank_one[:, head // 2].conj())
    fit_layer(module, x, 1, 2, 4, 8)
    q2 = complex_pairs(module.q_proj(x).detach().numpy(), 8)
    k2 = complex_pairs(module.k_proj(x).detach().numpy(), 8)  # one shared head
    pooled = np.einsum("shp,tp->sht", q2, k2[:, 0].conj()).real
    np.testing.assert_allclose(pooled, reference, atol=1e-9)


def test_calibrated_values_are_the_output_weighted_rank_d_fit():
    """Reference: the outputs each head writes through o_proj (head value times its o_proj
    slice, uniform attention aside) refitted by numpy's SVD in the whitened space."""
    base = llama(num_heads=4, kv_heads=2, layers=1)
    module = self_attention_modules(base)[0]
    x = attention_inputs(base, IDS)[module].double()
    w_o = module.o_proj.weight.detach().numpy()  # (hidden, 4 * 8)
    values = module.v_proj(x).detach().numpy().reshape(len(x), 2, 8)
    roots = []
    for g in range(2):
        reads = w_o[:, g * 16 : (g + 1) * 16].reshape(-1, 2, 8).transpose(1, 0, 2).reshape(-1, 8)
        evals, evecs = np.linalg.eigh(reads.T @ reads)
        roots.append(evecs @ np.diag(np.sqrt(evals)) @ evecs.T)
    whitened = np.concatenate([values[:, g] @ roots[g] for g in range(2)], axis=1)  # (N, 16)
    u, s, vh = np.linalg.svd(whitened, full_matrices=False)
    fitted = (u[:, :8] * s[:8]) @ vh[:8]  # best rank-8 fit, (N, 16)
    expected = [
        fitted[:, g * 8 : (g + 1) * 8] @ np.linalg.inv(roots[g]) @ w_o[:, h * 8 : (h + 1) * 8].T
        for h in range(4)
        for g in [h // 2]
    ]
    fit_layer(module, x, 1, 2, 4, 8)
    shared = module.v_proj(x).detach().numpy()  # (N, 8)
    w_o2 = module.o_proj.weight.detach().numpy()
    for h in range(4):
        got = shared @ w_o2[:, h * 8 : (h + 1) * 8].T
        np.testing.assert_allclose(got, expected[h], atol=1e-8)


def test_calibrated_pooling_shrinks_the_cache_and_its_maps_are_its_own():
    model = tiny_llama(num_heads=4, kv_heads=2)
    convert(model, MechanismSpec.from_config({"name": "mqa", "pooling": "calibrated"}), IDS)
    apply_mechanism(model, MechanismSpec.from_config({"name": "mqa", "pooling": "calibrated"}))
    assert model.config.num_key_value_heads == 1
    assert self_attention_modules(model)[0].k_proj.out_features == 8
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")  # transformers' own attention, no project code
    a, b = run(model), run(eager)
    assert (
        max(float((x - y).abs().max()) for x, y in zip(a.attentions, b.attentions, strict=True))
        <= 1e-6
    )


def test_calibrated_pooling_needs_calibration_and_fewer_heads():
    spec = MechanismSpec.from_config({"name": "mqa", "pooling": "calibrated"})
    with pytest.raises(ConfigError, match="calibration texts"):
        convert(tiny_llama(num_heads=4, kv_heads=2), spec)
    with pytest.raises(ConfigError, match="must divide"):
        calibrate_kv_heads(tiny_llama(num_heads=4, kv_heads=2), 2, IDS)


def test_mla_at_full_rank_with_every_pair_kept_equals_the_original():
    base = llama(num_heads=4, kv_heads=2)
    latent = copy.deepcopy(base)
    convert_to_latent(latent, rank=16, rope_pairs=4, calibration=IDS)  # 2 heads x 8 values
    a, b = run(base), run(latent)
    assert float((a.logits - b.logits).abs().max()) <= 1e-5
    assert (
        max(float((x - y).abs().max()) for x, y in zip(a.attentions, b.attentions, strict=True))
        <= 1e-5
    )


def rope_by_hand(x: np.ndarray, positions: np.ndarray, d: int, theta: float, kept) -> np.ndarray:
    """RoPE on the pairs ``kept`` of one head's vectors x (T, d), angles from the formula."""
    out = x.copy()
    for j in kept:
        angle = positions * theta ** (-2 * j / d)
        a, b = x[:, j], x[:, j + d // 2]
        out[:, j] = a * np.cos(angle) - b * np.sin(angle)
        out[:, j + d // 2] = b * np.cos(angle) + a * np.sin(angle)
    return out


def latent_attention_by_hand(model, ids: torch.Tensor) -> list[np.ndarray]:
    """Each layer's (Hq, T, T) attention of a latent (MLA) Llama on ids (1, T), in float64 from
    its weights, RoPE's angles from their formula, and the layer's input hidden states."""
    inputs = attention_inputs(model, ids)
    theta = model.config.rope_parameters["rope_theta"]
    maps = []
    for module in self_attention_modules(model):
        latent, d = module.latent, module.head_dim
        x = inputs[module].double().numpy()  # (T, hidden)
        t, kv, q_heads = len(x), latent.kv_heads, module.q_proj.out_features // d
        positions = np.arange(t, dtype=float)

        def linear(layer, inputs):
            w = layer.weight.detach().double().numpy()
            b = layer.bias.detach().double().numpy() if layer.bias is not None else 0
            return inputs @ w.T + b

        q = linear(module.q_proj, x).reshape(t, q_heads, d)
        c = x @ latent.kv_down.weight.detach().double().numpy().T  # (T, rank)
        rope = linear(latent.k_rope, x).reshape(t, kv, latent.rope_dims)
        nope = linear(latent.k_up, c).reshape(t, kv, d - latent.rope_dims)
        order = latent.order.numpy()
        causal = np.triu(np.full((t, t), -np.inf), 1)
        layer = []
        for h in range(q_heads):
            g = h // (q_heads // kv)
            kept = order[g, : latent.rope_dims // 2]
            key = np.zeros((t, d))
            key[:, order[g, : latent.rope_dims]] = rope[:, g]
            key[:, order[g, latent.rope_dims :]] = nope[:, g]
            qh = rope_by_hand(q[:, h], positions, d, theta, kept)
            kh = rope_by_hand(key, positions, d, theta, kept)
            logits = qh @ kh.T / math.sqrt(d) + causal
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            layer.append(weights / weights.sum(-1, keepdims=True))
        maps.append(np.stack(layer))
    return maps


def test_mla_maps_equal_attention_written_out_by_hand():
    model = llama(num_heads=4, kv_heads=2, layers=1)
    convert_to_latent(model, rank=6, rope_pairs=2, calibration=IDS)
    got = run(model).attentions[0][0].numpy()  # (Hq, T, T)
    expected = latent_attention_by_hand(model, PROBE)[0]
    # transformers computes RoPE's angles in float32, even for a float64 model
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("side", ["left", "right"])
def test_stored_maps_of_a_latent_gated_model_equal_attention_by_hand(side, tmp_path):
    """The project's extraction and store, on padded batches, against the hand reference: the
    gate changes each head's output, not its weights, so the maps are the latent attention's."""
    from tests.conformance.families import BY_NAME
    from tests.conformance.test_families import extract

    family = BY_NAME["llama"]
    model = family.build()
    spec = MechanismSpec.from_config({"name": "mla", "rank": 5, "rope_pairs": 1})
    convert(model, spec, IDS)
    convert_to_gated(model)
    for module in self_attention_modules(model):
        torch.nn.init.normal_(module.output_gate.weight)  # a gate that acts
    apply_mechanism(model, spec)
    store = extract(model, family, side, tmp_path)
    for example in range(len(store)):
        ids = torch.tensor([store.example_meta(example)["token_ids"]])
        stored = store.attention(example, "decoder")  # (L, H, T, T)
        expected = np.stack(latent_attention_by_hand(model, ids))
        assert float(np.abs(stored - expected).max()) <= 1e-5


def test_mla_cache_holds_the_latent_and_decodes_as_the_full_forward():
    model = tiny_llama(num_heads=4, kv_heads=2)
    spec = MechanismSpec.from_config({"name": "mla", "rank": 5, "rope_pairs": 1})
    convert(model, spec, IDS)
    apply_mechanism(model, spec)
    logits, cache = prefill(model, PROBE[:, :6])
    assert cache_bytes(cache) == computed_kv_bytes(model, 6)
    assert computed_kv_bytes(model, 6) == 2 * 6 * (2 * 2 + 5) * 4  # layers x T x width x float32
    steps = decode_steps(model, logits, cache, 6, 3)  # (3, 1, V)
    fed = torch.cat([logits.argmax(-1, keepdim=True), steps.argmax(-1)[:-1].T], dim=1)  # (1, 3)
    tokens = torch.cat([PROBE[:, :6], fed], dim=1)
    with torch.no_grad():
        full = model(input_ids=tokens).logits[:, -3:]  # (1, 3, V)
    assert float((full[0] - steps[:, 0]).abs().max()) <= 1e-4


def test_mla_refuses_a_rank_the_weights_cannot_fill():
    with pytest.raises(ConfigError, match="rank 99"):
        convert_to_latent(tiny_llama(num_heads=4, kv_heads=2), 99, 1, IDS)


def test_gate_at_identity_leaves_the_outputs_unchanged():
    base = llama(num_heads=4, kv_heads=2)
    gated = copy.deepcopy(base)
    convert_to_gated(gated)
    assert self_attention_modules(gated)[0].output_gate.bias[0] == GATE_INIT_LOGIT
    a, b = run(base), run(gated)
    assert float((a.logits - b.logits).abs().max()) <= 1e-9
    assert (
        max(float((x - y).abs().max()) for x, y in zip(a.attentions, b.attentions, strict=True))
        == 0
    )


def test_a_trained_gate_scales_each_head_output_elementwise():
    base = llama(num_heads=4, kv_heads=2, layers=1)
    gated = copy.deepcopy(base)
    convert_to_gated(gated)
    module = self_attention_modules(gated)[0]
    torch.manual_seed(1)
    with torch.no_grad():
        module.output_gate.weight.normal_()
    x = attention_inputs(gated, PROBE)[module].double()
    seen = {}

    def keep(mod, args, kwargs, output):
        seen["out"] = output[0]

    base_module = self_attention_modules(base)[0]
    heads = {}
    base_module.o_proj.register_forward_pre_hook(lambda m, a: heads.setdefault("y", a[0]))
    module.register_forward_hook(keep, with_kwargs=True)
    run(base), run(gated)
    opening = 1 / (1 + math.exp(-GATE_INIT_LOGIT))
    with torch.no_grad():
        gate = torch.sigmoid(x @ module.output_gate.weight.T + module.output_gate.bias)
        expected = (heads["y"][0] * gate) @ (base_module.o_proj.weight / opening).T
    assert float((seen["out"][0] - expected).abs().max()) <= 1e-10


def test_conversions_refuse_families_other_than_llama():
    from tests.conformance.families import BY_NAME

    gpt2 = BY_NAME["gpt2"].build("eager")
    with pytest.raises(ConfigError, match="Llama attention"):
        convert_to_gated(gpt2)


def test_lora_reaches_the_projections_a_conversion_adds():
    from attention_lab.training.methods import lora_targets
    from attention_lab.variants import LoraSpec

    model = tiny_llama(num_heads=4, kv_heads=2)
    convert(model, MechanismSpec.from_config({"name": "mla", "rank": 5, "rope_pairs": 1}), IDS)
    convert_to_gated(model)
    assert set(lora_targets(model, LoraSpec())) == {
        "q_proj",
        "o_proj",
        "k_rope",
        "kv_down",
        "k_up",
        "v_up",
        "output_gate",
    }


def test_norm_maps_are_skipped_for_gated_attention_and_kept_for_latent(tmp_path):
    """Norm-based maps need the head outputs to reach o_proj unchanged: true for MLA (its norms
    come from the values it computes), false once a gate scales them per query."""
    from attention_lab.extraction.norms import gated_layers, output_projections

    model = tiny_llama(num_heads=4, kv_heads=2)
    convert(model, MechanismSpec.from_config({"name": "mla", "rank": 5, "rope_pairs": 1}), IDS)
    assert gated_layers(model) == [] and len(output_projections(model)) == 2
    convert_to_gated(model)
    assert len(gated_layers(model)) == 2
    with pytest.raises(ConfigError, match="a gate scales"):
        output_projections(model)
