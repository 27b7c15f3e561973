"""Norm-based attention (Kobayashi et al., 2020), recorded beside the weights.

Head h adds ``α_ij f_h(x_j)`` to token i for every key j, where ``f_h(x_j) = v_j^h W_O^h`` is
key j's value vector (bias included) after head h's slice of the output projection. A small
weight on a key with a long ``f_h`` can matter more than a large weight on a short one, so
Kobayashi et al. read ``‖α_ij f_h(x_j)‖`` instead of ``α_ij``. Here each row of those norms is
divided by its sum: every map kind then reads as "share of the row" and every metric applies.

The output projection is found by what it does: in one probe pass, the linear layer that
runs next after an attention call and takes exactly that call's output as its input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from attention_lab.attention.discovery import AttentionLayer, discover, run_probe
from attention_lab.attention.interface import observing
from attention_lab.errors import ConfigError


def _head_grams(projection: nn.Module, heads: int, head_dim: int) -> torch.Tensor:
    """(H, d, d) Gram matrices ``W_h W_hᵀ`` of each head's input slice of the projection,
    so that ``‖v W_h‖² = v G_h vᵀ``."""
    weight = projection.weight.detach().float()
    rows = weight if isinstance(projection, Conv1D) else weight.T  # (H*d, out): input rows
    per_head = rows.reshape(heads, head_dim, -1)  # (H, d, out)
    return per_head @ per_head.transpose(1, 2)


def output_projections(model: nn.Module) -> dict[int, torch.Tensor]:
    """Attention module id -> (H, d, d) head Gram matrices of its output projection.

    A ConfigError names the layer when no projection follows it (the family computes its
    output some other way, so norms cannot be defined from its weights)."""
    layers = discover(model)
    by_id = {id(layer.module): layer for layer in layers}
    # ("attention", module, its output as (B, Tq, Hq*d)) | ("linear", module, its input)
    events: list[tuple[str, nn.Module, torch.Tensor]] = []

    def observe(module, query, key, value, mask, weights, output):
        if id(module) in by_id:
            events.append(("attention", module, output.flatten(-2)))

    def before(module, args):
        events.append(("linear", module, args[0]))

    linears = [m for m in model.modules() if isinstance(m, nn.Linear | Conv1D)]
    hooks = [m.register_forward_pre_hook(before) for m in linears]
    try:
        run_probe(model, observe)
    finally:
        for hook in hooks:
            hook.remove()
    grams: dict[int, torch.Tensor] = {}
    for i, (what, module, output) in enumerate(events):
        if what != "attention" or id(module) in grams:
            continue
        follower = next(
            (e for e in events[i + 1 :] if e[0] == "linear" or e[1] is not module), None
        )
        if follower is None or follower[0] != "linear" or not _same(follower[2], output):
            raise ConfigError(_no_projection(model, by_id[id(module)]))
        layer = by_id[id(module)]
        width = output.shape[-1] // layer.num_heads
        grams[id(module)] = _head_grams(follower[1], layer.num_heads, width)
    return grams


def gated_layers(model: nn.Module) -> list[str]:
    """Names of attention layers whose heads' outputs a gate scales (gated attention): there the
    contribution of key j to query i is ``α_ij (v_j ⊙ g_i) W_O^h``, which the value and output
    projections alone do not give, so norm-based maps are not defined by this module."""
    return [layer.name for layer in discover(model) if getattr(layer.module, "output_gate", None)]


def _same(received: torch.Tensor, output: torch.Tensor) -> bool:
    """Whether a linear layer's input is the attention output (heads concatenated)."""
    return received.shape == output.shape and torch.equal(received, output)


def _no_projection(model: nn.Module, layer: AttentionLayer) -> str:
    if getattr(layer.module, "output_gate", None) is not None:
        return (
            f"attention_extraction.norms: a gate scales each head's output per query in "
            f"{layer.name} (gated attention), so the value and output projections alone do not "
            "give norm-based attention; set norms: false."
        )
    return (
        f"attention_extraction.norms: no output projection follows {layer.name} in "
        f"{type(model).__name__}, so norm-based attention is not defined for this family; "
        "set norms: false."
    )


def norm_map(weights: torch.Tensor, value: torch.Tensor, grams: torch.Tensor) -> torch.Tensor:
    """Row-normalised ``‖α_ij f_h(x_j)‖``.

    weights: (B, Hq, Tq, Tk); value: (B, Hkv, Tk, d) as the family's eager function got it;
    grams: (Hq, d, d). Returns (B, Hq, Tq, Tk), rows summing to 1 (0 where all weights are 0).
    """
    repeats = weights.shape[1] // value.shape[1]
    v = value.float().repeat_interleave(
        repeats, dim=1
    )  # (B, Hq, Tk, d): query head h reads kv head h // repeats
    squared = torch.einsum("bhkd,hde,bhke->bhk", v, grams.to(v.device), v)
    lengths = squared.clamp_min(0).sqrt()  # (B, Hq, Tk): ‖f_h(x_j)‖
    contribution = weights.float() * lengths[:, :, None, :]  # α_ij ‖f_h(x_j)‖, as α_ij >= 0
    total = contribution.sum(-1, keepdim=True)
    return contribution / torch.where(total > 0, total, torch.ones_like(total))


@contextmanager
def recording_norms(
    model: nn.Module, grams: dict[int, torch.Tensor]
) -> Iterator[dict[str, dict[int, torch.Tensor]]]:
    """While active, every attention call of ``model`` records its norm map.

    ``grams``: :func:`output_projections` of the model, found once per extraction. Yields
    ``{kind: {layer index: (B, H, Tq, Tk)}}``; a layer called several times (a generate loop
    before the final pass) keeps its last call.
    """
    layers = {id(layer.module): layer for layer in discover(model)}
    maps: dict[str, dict[int, torch.Tensor]] = {}

    def observe(module, query, key, value, mask, weights, output):
        layer = layers.get(id(module))
        if layer is not None and weights is not None:
            maps.setdefault(layer.kind, {})[layer.index] = norm_map(
                weights, value, grams[id(module)]
            )

    with observing((layer.module for layer in layers.values()), observe):
        yield maps
