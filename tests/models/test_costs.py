"""Inference costs: the KV cache the model allocates equals the bytes computed from its
architecture (hand-worked here for a tiny Llama), and decoding from an evicted windowed cache
gives the logits of the full sequence under the band."""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.datasets.cost_process import measure_in_fresh_process
from attention_lab.datasets.model_directory import ModelArtifact
from attention_lab.errors import ConfigError
from attention_lab.model_info import ModelInfo
from attention_lab.models.costs import (
    CostSettings,
    cache_bytes,
    computed_kv_bytes,
    decode_steps,
    evict,
    measure_costs,
    prefill,
)
from attention_lab.models.loading import load_model
from tests.conftest import tiny_llama

CONTEXT = 10
# tiny Llama: 2 layers, head size 8, float32 (4 bytes); a key and a value per cached position
# mechanism -> (key/value heads, positions each layer holds after CONTEXT tokens)
HAND_WORKED = {
    "mha": (4, CONTEXT),
    "gqa2": (2, CONTEXT),
    "mqa": (1, CONTEXT),
    "window3_sink2": (4, 3 + 2),  # the band keeps 3 past keys, plus 2 sinks
}
MECHANISMS = {
    "mha": "mha",
    "gqa2": {"name": "gqa", "kv_heads": 2},
    "mqa": "mqa",
    "window3_sink2": {"name": "sliding_window", "window": 3, "sink_tokens": 2},
}


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_llama")
    tiny_llama(num_heads=4, kv_heads=4).save_pretrained(folder)
    return str(folder)


def _load(folder: str, mechanism, dtype=torch.float32):
    spec = MechanismSpec.from_config(mechanism)
    return load_model(folder, "causal_lm", spec).to(dtype).eval()


@pytest.mark.parametrize("name", list(HAND_WORKED))
def test_measured_cache_equals_the_computed_and_hand_worked_bytes(llama_folder, name):
    model = _load(llama_folder, MECHANISMS[name])
    kv_heads, held = HAND_WORKED[name]
    expected = 2 * 2 * kv_heads * 8 * 4 * held  # layers * (key, value) * heads * d * bytes * T
    _, cache = prefill(model, torch.randint(3, 1000, (1, CONTEXT)))
    assert computed_kv_bytes(model, CONTEXT) == expected
    assert cache_bytes(cache) == expected


def test_native_sliding_layers_cache_what_transformers_keeps():
    """Gemma-3's sliding layers keep ``sliding_window - 1`` positions, its full layers all."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=500,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=4,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
    )
    model = Gemma3ForCausalLM(config).eval()
    model.config._attn_implementation = "eager"
    _, cache = prefill(model, torch.randint(3, 500, (1, CONTEXT)))
    expected = 2 * 1 * 16 * 4 * (3 + 3 + CONTEXT)  # (key, value) * heads * d * bytes * positions
    assert computed_kv_bytes(model, CONTEXT) == cache_bytes(cache) == expected


@pytest.mark.parametrize("sinks", [0, 2])
def test_decoding_from_the_evicted_cache_gives_the_banded_full_sequence(llama_folder, sinks):
    mechanism = {"name": "sliding_window", "window": 3, "sink_tokens": sinks}
    model = _load(llama_folder, mechanism, torch.float64)
    ids = torch.randint(3, 1000, (1, CONTEXT))
    logits, cache = prefill(model, ids)
    steps = decode_steps(model, logits, cache, CONTEXT, 6)  # (6, 1, V)
    assert cache.layers[0].keys.shape[-2] == 3 + sinks  # evicted after every step
    tokens = torch.cat([logits.argmax(-1, keepdim=True), steps[:-1, :, :].argmax(-1).T], dim=1)
    with torch.no_grad():
        full = model(input_ids=torch.cat([ids, tokens], dim=1)).logits[0, CONTEXT:]  # (6, V)
    # Llama's eager softmax runs in float32 even for a float64 model, and its rounding depends
    # on the row's length: 1e-6, not 1e-12 (a cache cut one key short is off by far more)
    torch.testing.assert_close(steps[:, 0], full, rtol=0, atol=1e-6)
    _, short = prefill(model, ids)
    evict(short, {i: (2, sinks) for i in range(2)})
    cut = decode_steps_without_eviction(model, logits, short, CONTEXT)
    assert (cut[0] - full[0]).abs().max() > 1e-4


def decode_steps_without_eviction(model, logits, cache, position):
    """One step from ``cache`` as it is."""
    token = logits.argmax(-1, keepdim=True)
    with torch.no_grad():
        out = model(input_ids=token, position_ids=torch.full_like(token, position), cache=cache)
    return out.logits[:, -1]


@pytest.mark.slow
def test_costs_of_a_saved_variant_in_a_fresh_process(llama_folder, bert_tokenizer, tmp_path):
    """The pipeline's path: a saved variant, measured in its own process."""
    model = _load(llama_folder, MECHANISMS["mqa"])
    model.save_pretrained(tmp_path)
    bert_tokenizer.save_pretrained(tmp_path)
    info = {"variant": "mqa", "task": "causal_lm", "mechanism": {"name": "mqa"}, "method": "none"}
    (tmp_path / "attention_lab.json").write_text(json.dumps(info))
    settings = CostSettings(context_tokens=12, decode_tokens=3, repeats=1)
    texts = ["The committee met on Tuesday.", "Shares rose sharply in early trading."]
    costs = measure_in_fresh_process(
        ModelArtifact(tmp_path, ModelInfo.from_json(info)), texts, settings
    )
    assert costs["cost_context_tokens"] == 12
    assert costs["kv_bytes_per_token"] == 2 * 2 * 1 * 8 * 4  # layers * (k, v) * 1 head * d * bytes
    assert costs["kv_bytes_measured"] == 12 * costs["kv_bytes_per_token"]
    assert costs["prefill_tokens_per_s"] > 0 and costs["decode_tokens_per_s"] > 0
    assert costs["inference_peak_memory_mb"] > 0


def test_an_encoder_gets_prefill_speed_only(minilm_path, bert_tokenizer):
    model = load_model(minilm_path, "classification", num_labels=2)
    costs = measure_costs(model, torch.randint(1000, 2000, (1, 16)), CostSettings(repeats=1), False)
    assert set(costs) == {"cost_context_tokens", "prefill_tokens_per_s"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"context": 512}, "unknown key(s) ['context']"),
        ({"decode_tokens": 0}, "costs.decode_tokens: must be >= 1, got 0"),
        ({"enabled": "yes"}, "costs.enabled: expected true or false"),
    ],
)
def test_wrong_settings_are_named(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        CostSettings.of(raw)


@pytest.mark.slow
def test_a_fresh_process_reports_its_own_peak_memory_not_its_parents(tmp_path):
    """A parent holding 1 GB starts a child: the child's peak must not include that gigabyte."""
    import subprocess
    import sys

    script = (
        "import numpy as np, subprocess, sys\n"
        "held = np.ones(2**27)  # 1 GiB, touched\n"
        "code = 'from attention_lab.models.costs import peak_memory_mb; print(peak_memory_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert 0 < float(out.stdout.strip()) < 900  # torch and the package, not the parent's 1 GiB
