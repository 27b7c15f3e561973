"""What a variant costs at inference, the trade-off a mechanism is chosen for.

- **KV-cache bytes per token** at a ``context``-token context, computed from the architecture
  (key/value heads, head size, dtype, which layers keep a window) and measured on the cache
  the model allocates in a real prefill. The two must agree; :func:`measure_costs` refuses a
  disagreement rather than report either.
- **Prefill tokens/s** over one ``context``-token document and **decode tokens/s**, greedy, one
  token at a time with that context in the cache.
- **Peak memory**: the peak resident set of the fresh process that loads the model and runs
  both (CPU), or torch's peak allocation (CUDA).

A sliding window kept by this project's mechanism (a band on the mask) would leave the whole
context in transformers' cache, so decoding evicts what the band hides: each windowed layer
keeps its first ``sink_tokens`` and last ``window`` keys. Decoding then gives the same
next-token logits as the full sequence under the band (``tests/models/test_costs.py``), and
the cache is what a serving system would hold. Native sliding layers (Gemma-3) are evicted by
transformers' own ``DynamicSlidingWindowLayer``, which keeps ``sliding_window - 1`` keys.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from statistics import median

import torch
from torch import nn
from transformers import DynamicCache

from attention_lab.attention.discovery import discover
from attention_lab.attention.interface import PLAN_ATTR
from attention_lab.errors import ConfigError
from attention_lab.parameters import CostSettings


def _text_config(model: nn.Module):
    return model.config.get_text_config()


def windowed_layers(model: nn.Module) -> dict[int, tuple[int, int]]:
    """Decoder layer index -> (window, sink_tokens) where this project's mechanism bands it."""
    held = {}
    for layer in discover(model):
        plan = getattr(layer.module, PLAN_ATTR, None)
        if layer.attention_kind.causal and plan is not None and plan.window is not None:
            held[layer.index] = (plan.window, plan.sink_tokens)
    return held


def tokens_held(model: nn.Module, context: int) -> list[int]:
    """Per decoder layer: how many positions its cache holds after ``context`` tokens."""
    config = _text_config(model)
    ours = windowed_layers(model)
    native = getattr(config, "layer_types", None) or []
    held = []
    for i in range(config.num_hidden_layers):
        if i in ours:
            window, sinks = ours[i]
            held.append(min(context, window + sinks))  # the band: `window` past keys + sinks
        elif i < len(native) and native[i] == "sliding_attention" and config.sliding_window:
            held.append(min(context, config.sliding_window - 1))  # transformers keeps W - 1
        else:
            held.append(context)
    return held


def cached_widths(model: nn.Module) -> list[int]:
    """Per decoder layer: numbers cached per position. A key and a value per key/value head,
    or, for multi-head latent attention, the kept RoPE dims and the latent."""
    config = _text_config(model)
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    widths = [2 * kv_heads * head_dim] * config.num_hidden_layers
    for layer in discover(model):
        latent = getattr(layer.module, "latent", None)
        if layer.attention_kind.causal and latent is not None:
            widths[layer.index] = latent.cached_width
    return widths


def computed_kv_bytes(model: nn.Module, context: int) -> int:
    """Bytes of keys and values cached after ``context`` tokens, from the architecture alone."""
    itemsize = next(model.parameters()).element_size()
    held = tokens_held(model, context)
    return itemsize * sum(w * n for w, n in zip(cached_widths(model), held, strict=True))


def cache_bytes(cache: DynamicCache) -> int:
    """Bytes the cache's key and value tensors occupy."""
    return sum(
        layer.keys.numel() * layer.keys.element_size()
        + layer.values.numel() * layer.values.element_size()
        for layer in cache.layers
        if getattr(layer, "keys", None) is not None
    )


def evict(cache: DynamicCache, windows: dict[int, tuple[int, int]]) -> None:
    """Drop, in each windowed layer, the keys its band hides from every later query."""
    for index, (window, sinks) in windows.items():
        layer = cache.layers[index]
        length = layer.keys.shape[-2]  # keys (B, Hkv, T, d)
        if length <= window + sinks:
            continue
        keep = torch.cat([torch.arange(sinks), torch.arange(length - window, length)]).to(
            layer.keys.device
        )
        layer.keys = layer.keys.index_select(-2, keep)
        layer.values = layer.values.index_select(-2, keep)


@torch.no_grad()
def prefill(model: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, DynamicCache]:
    """Logits of the last position (B, V) and the cache after ``ids`` (B, T), evicted."""
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, cache=cache, use_cache=True)
    evict(cache, windowed_layers(model))
    return out.logits[:, -1], cache


@torch.no_grad()
def decode_steps(
    model: nn.Module, logits: torch.Tensor, cache: DynamicCache, position: int, steps: int
) -> torch.Tensor:
    """``steps`` greedy tokens after a prefill that ended at ``position`` with last-position
    ``logits`` (B, V): each step's logits (steps, B, V). Positions are passed explicitly, as an
    evicted cache is shorter than the text it stands for."""
    windows = windowed_layers(model)
    out_logits = []
    for step in range(steps):
        token = logits.argmax(-1, keepdim=True)  # (B, 1)
        positions = torch.full_like(token, position + step)
        out = model(input_ids=token, position_ids=positions, cache=cache, use_cache=True)
        evict(cache, windows)
        logits = out.logits[:, -1]
        out_logits.append(logits)
    return torch.stack(out_logits)


def _timed(run, repeats: int) -> float:
    """Median seconds of ``repeats`` calls, after one warm-up call."""
    run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return median(seconds)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_costs(
    model: nn.Module, ids: torch.Tensor, settings: CostSettings, decoder: bool
) -> dict[str, float]:
    """KV bytes per token (computed and measured), prefill and decode tokens/s for ``ids``
    (1, T). Encoders get prefill speed only."""
    context = ids.shape[1]

    inputs = {"input_ids": ids}
    if model.config.is_encoder_decoder:  # the encoder reads the context; one decoder token
        start = model.config.decoder_start_token_id or model.config.pad_token_id or 0
        inputs["decoder_input_ids"] = torch.full_like(ids[:, :1], start)

    def run_prefill():
        with torch.no_grad():
            model(**inputs)
        _sync()

    costs = {
        "cost_context_tokens": context,
        "prefill_tokens_per_s": context / _timed(run_prefill, settings.repeats),
    }
    if not decoder:
        return costs
    _, cache = prefill(model, ids)
    computed, measured = computed_kv_bytes(model, context), cache_bytes(cache)
    if computed != measured:
        raise RuntimeError(
            f"KV cache: the architecture says {computed} bytes at {context} tokens, the model "
            f"allocated {measured}; the cost model no longer matches this family's cache."
        )
    decode_seconds = []
    for _ in range(settings.repeats + 1):  # the first is a warm-up
        logits, cache = prefill(model, ids)
        start = time.perf_counter()
        decode_steps(model, logits, cache, context, settings.decode_tokens)
        _sync()
        decode_seconds.append(time.perf_counter() - start)
    costs |= {
        "kv_bytes_per_token": computed / context,
        "kv_bytes_measured": measured,
        "decode_tokens_per_s": settings.decode_tokens / median(decode_seconds[1:]),
    }
    return costs


def peak_memory_mb() -> float:
    """CUDA: peak allocated by torch. CPU: the process's peak resident set (a high-water mark).

    On Linux it is ``VmHWM`` of ``/proc/self/status``: the high-water mark of this process's
    own memory. ``ru_maxrss`` would carry over the parent's peak into a process started by
    ``fork`` and ``exec`` (as the fresh process of a cost measurement is)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def context_ids(tokenizer, texts: list[str], length: int) -> torch.Tensor:
    """(1, length) token ids of ``texts`` read one after another (repeated if too short)."""
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=not ids)["input_ids"]
        if len(ids) >= length:
            break
    if not ids:
        raise ConfigError("costs: the test split has no text to measure a context with.")
    ids = (ids * (length // len(ids) + 1))[:length]
    return torch.tensor([ids])
