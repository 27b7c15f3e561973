"""Attach a mechanism to the layers it covers, then prove it took effect."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from attention_lab.attention.discovery import LAYERS_ATTR, AttentionLayer, discover, run_probe
from attention_lab.attention.fast_path import FAST_OK_ATTR
from attention_lab.attention.interface import IMPLEMENTATION, OWN_ATTENTIONS_ATTR, PLAN_ATTR
from attention_lab.attention.mechanisms import CONFIG_KEY, MechanismSpec
from attention_lab.attention.plan import LayerPlan, band
from attention_lab.errors import ConfigError

# the conformance suite's families, whose attention goes through the interface
INTERFACE_FAMILIES = (
    "BERT, RoBERTa, DistilBERT, Llama, Qwen2, Mistral, Gemma-2, Gemma-3, GPT-OSS, Phi-3, GPT-2, "
    "GPT-NeoX, OPT, BART and T5"
)


def _covers(spec: MechanismSpec, layer: AttentionLayer) -> bool:
    return spec.name != "mha" and layer.is_self_attention and spec.applies_to(layer.index)


def _plan(spec: MechanismSpec, layer: AttentionLayer) -> LayerPlan | None:
    """The layer's plan; ``None`` where the checkpoint already computes the mechanism."""
    if not _covers(spec, layer):
        return None
    groups = spec.target_kv_heads
    if groups is not None and groups > layer.num_kv_heads:
        raise ConfigError(
            f"mechanism {spec.name!r} asks for {groups} key/value heads, but "
            f"{layer.module.__class__.__name__} computes {layer.num_kv_heads} and has no separate "
            "k_proj/v_proj to rewrite; pick kv_heads that divides "
            f"{layer.num_kv_heads}."
        )
    if groups is not None and layer.num_kv_heads % groups:
        raise ConfigError(
            f"mechanism.kv_heads: {groups} does not divide the {layer.num_kv_heads} key/value "
            f"heads of {layer.module.__class__.__name__}."
        )
    plan = LayerPlan(
        kv_groups=groups if groups is not None and groups < layer.num_kv_heads else None,
        window=spec.window,
        causal=layer.causal,
        sink_tokens=spec.sink_tokens,
    )
    return None if plan.kv_groups is None and plan.window is None else plan


def apply_mechanism(model: nn.Module, spec: MechanismSpec) -> nn.Module:
    """Give every self-attention layer ``spec`` covers its plan and select our implementation.

    The spec is written to ``model.config`` so a saved model re-applies it on load. A
    mechanism that covers no layer, or that the family's attention does not honour, stops
    here with a :class:`ConfigError` naming the family and the mechanism.
    """
    setattr(model, LAYERS_ATTR, None)  # shapes may have changed (native key/value conversion)
    setattr(model, FAST_OK_ATTR, None)  # a new plan: the fast path must be checked again
    layers = discover(model)
    family = type(model).__name__
    self_layers = [layer for layer in layers if layer.is_self_attention]
    if not self_layers:
        if spec.name == "mha":  # nothing to transform: the family's own maps are exact
            setattr(model, OWN_ATTENTIONS_ATTR, True)
            setattr(model.config, CONFIG_KEY, spec.to_dict())
            return model
        raise ConfigError(
            f"{family}: no self-attention layer calls the attention interface, so mechanism "
            f"{spec.name!r} cannot be applied; mechanism mha works (the model's own "
            f"output_attentions). Every mechanism works on {INTERFACE_FAMILIES} "
            "(docs/families.md)."
        )
    for kind in {layer.kind for layer in self_layers}:
        stack = [layer for layer in self_layers if layer.kind == kind]
        spec.check_against(len(stack), stack[0].num_heads)
    for layer in layers:
        setattr(layer.module, PLAN_ATTR, _plan(spec, layer))
    if spec.name != "mha" and not any(_covers(spec, layer) for layer in layers):
        raise ConfigError(
            f"mechanism {spec.name!r} covers no attention layer of {family} "
            f"(layers {spec.layers}); it would be a silent no-op."
        )
    setattr(model.config, CONFIG_KEY, spec.to_dict())
    model.set_attn_implementation(IMPLEMENTATION)
    verify_mechanism(model, spec)
    return model


def _probe_weights(model: nn.Module, length: int) -> dict[int, torch.Tensor]:
    """Each planned layer's weights on one probe: module id -> (1, Hq, Tq, Tk)."""
    seen: dict[int, torch.Tensor] = {}

    def keep(module, query, key, value, mask, weights, output):
        if getattr(module, PLAN_ATTR, None) is not None and weights is not None:
            seen[id(module)] = weights

    run_probe(model, keep, length=length)
    return seen


def verify_mechanism(model: nn.Module, spec: MechanismSpec) -> None:
    """Show on a probe that the family's own eager attention honoured each layer's plan.

    Grouped layers: the weights it returns change when the key/value pooling is taken away
    (a family that ignored the pooled keys would return the same). Windowed layers: it returns
    no mass outside the band, on a probe longer than the window.
    """
    if spec.name == "mha":
        return
    length = max(6, (spec.window or 0) + 4)
    planned = {
        id(layer.module): (layer.module, getattr(layer.module, PLAN_ATTR))
        for layer in discover(model)
        if getattr(layer.module, PLAN_ATTR, None) is not None
    }
    weights = _probe_weights(model, length)
    problems = [
        f"{type(module).__name__}: attention mass outside the window"
        for key, (module, plan) in planned.items()
        if plan.window is not None and key in weights and _outside_band(weights[key], plan)
    ]
    pooled = {key: (m, plan) for key, (m, plan) in planned.items() if plan.kv_groups is not None}
    if pooled:
        for module, plan in pooled.values():  # the same probe without the pooling
            setattr(module, PLAN_ATTR, replace(plan, kv_groups=None))
        try:
            unpooled = _probe_weights(model, length)
        finally:
            for module, plan in pooled.values():
                setattr(module, PLAN_ATTR, plan)
        problems += [
            f"{type(module).__name__}: key/value pooling left its weights unchanged"
            for key, (module, _) in pooled.items()
            if key in weights and torch.allclose(weights[key], unpooled[key], atol=1e-7)
        ]
    if problems:
        raise ConfigError(
            f"mechanism {spec.name!r} cannot be applied to {type(model).__name__}: its own eager "
            f"attention does not take the transformed inputs ({problems[0]})."
        )


def _outside_band(weights: torch.Tensor, plan: LayerPlan) -> bool:
    q_len, k_len = weights.shape[-2:]
    outside = ~band(q_len, k_len, plan.window, plan.causal, plan.sink_tokens, weights.device)
    return bool((weights[..., outside].abs() > 1e-6).any())


def spec_from_config(config) -> MechanismSpec:
    """The mechanism a saved model was trained with (``mha`` when none is recorded)."""
    return MechanismSpec.from_config(getattr(config, CONFIG_KEY, None) or {"name": "mha"})
