"""Attach a mechanism to the layers it covers, then prove it took effect."""

from __future__ import annotations

import torch
from torch import nn

from attention_lab.attention.discovery import LAYERS_ATTR, AttentionLayer, discover, run_probe
from attention_lab.attention.interface import IMPLEMENTATION, PLAN_ATTR
from attention_lab.attention.mechanisms import CONFIG_KEY, MechanismSpec
from attention_lab.attention.plan import LayerPlan, band
from attention_lab.errors import ConfigError


def _covers(spec: MechanismSpec, layer: AttentionLayer) -> bool:
    return spec.name != "mha" and layer.kind != "cross" and spec.applies_to(layer.index)


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
    layers = discover(model)
    family = type(model).__name__
    self_layers = [layer for layer in layers if layer.kind != "cross"]
    if not self_layers:
        raise ConfigError(f"{family}: no self-attention layer calls the attention interface.")
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


def verify_mechanism(model: nn.Module, spec: MechanismSpec) -> None:
    """Run the discovery probe and check each planned layer's weights obey its plan.

    Grouped layers: query heads of one group read identical keys. Windowed layers: no mass
    outside the band. A family whose eager function ignores the transformed inputs fails here.
    """
    if spec.name == "mha":
        return
    problems: list[str] = []

    def check(module, query, key, mask, weights):
        plan: LayerPlan | None = getattr(module, PLAN_ATTR, None)
        if plan is None or weights is None:
            return
        if plan.kv_groups is not None:
            per_group = key.shape[1] // plan.kv_groups
            grouped = key.view(key.shape[0], plan.kv_groups, per_group, *key.shape[2:])
            if not torch.equal(grouped, grouped[:, :, :1].expand_as(grouped)):
                problems.append(f"{type(module).__name__}: key/value heads were not pooled")
        if plan.window is not None:
            q_len, k_len = weights.shape[-2:]
            outside = ~band(
                q_len, k_len, plan.window, plan.causal, plan.sink_tokens, weights.device
            )
            if bool((weights[..., outside].abs() > 1e-6).any()):
                problems.append(f"{type(module).__name__}: attention mass outside the window")

    run_probe(model, check)
    if problems:
        raise ConfigError(
            f"mechanism {spec.name!r} cannot be applied to {type(model).__name__}: its own eager "
            f"attention does not take the transformed inputs ({problems[0]})."
        )


def spec_from_config(config) -> MechanismSpec:
    """The mechanism a saved model was trained with (``mha`` when none is recorded)."""
    return MechanismSpec.from_config(getattr(config, CONFIG_KEY, None) or {"name": "mha"})
