"""Fine-tuning methods: which parameters train (none, head, lora, full)."""

from __future__ import annotations

from torch import nn
from transformers.pytorch_utils import Conv1D

from attention_lab.attention.discovery import discover
from attention_lab.errors import ConfigError
from attention_lab.methods import FULL, HEAD, LORA, NONE, method_named
from attention_lab.tasks import get_task
from attention_lab.variants import LoraSpec


def classifier_head_names(model: nn.Module) -> list[str]:
    """Names of the task head modules (``classifier`` for BERT, ``score`` for Llama)."""
    return [n for n, _ in model.named_children() if n in ("classifier", "score")]


def lora_targets(model: nn.Module, spec: LoraSpec) -> list[str]:
    """The configured targets, or every projection (Linear, or GPT-2's Conv1D) inside the
    attention layers: ``q_proj``/``k_proj``/``v_proj``/``o_proj``, ``query``/``key``/``value``,
    fused ``qkv_proj`` or ``c_attn``, and what a conversion added (``kv_down``, ``output_gate``)."""
    if spec.targets:
        return list(spec.targets)
    modules = [layer.module for layer in discover(model)]
    if not modules:  # a family outside the attention interface: its attention classes by name
        modules = [m for m in model.modules() if type(m).__name__.endswith("Attention")]
    found = set()
    for module in modules:  # direct children, and those a conversion nests (latent.kv_down)
        found.update(
            n.rsplit(".", 1)[-1]
            for n, child in module.named_modules()
            if n and isinstance(child, nn.Linear | Conv1D)
        )
    if not found:
        raise ConfigError(
            f"{type(model).__name__}: no attention projection found for LoRA; name them in "
            "the variant's lora.targets (module names such as q_proj, v_proj)."
        )
    return sorted(found)


def prepare(model: nn.Module, method: str, task: str, lora: LoraSpec) -> nn.Module:
    """Freeze or wrap ``model`` for ``method``; returns the module to train."""
    return _PREPARE[method_named(method)](model, task, lora)


def _nothing(model: nn.Module, task: str, lora: LoraSpec) -> nn.Module:
    return model.requires_grad_(False)


def _head(model: nn.Module, task: str, lora: LoraSpec) -> nn.Module:
    model.requires_grad_(False)
    for name in classifier_head_names(model):
        getattr(model, name).requires_grad_(True)
    return model


def _everything(model: nn.Module, task: str, lora: LoraSpec) -> nn.Module:
    return model.requires_grad_(True)


def _lora(model: nn.Module, task: str, lora: LoraSpec) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    whole = list(lora.train_fully or ())
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if missing := [w for w in whole if w not in names]:
        raise ConfigError(
            f"lora.train_fully: {type(model).__name__} has no module named {missing[0]!r}; "
            "name modules such as k_proj or v_proj."
        )
    config = LoraConfig(
        task_type=get_task(task).peft_task_type,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=[t for t in lora_targets(model, lora) if t not in whole],
        modules_to_save=whole or None,  # trained whole, saved with the adapter
    )
    return get_peft_model(model, config)  # SEQ_CLS also trains (saves) the classifier head


_PREPARE = {NONE: _nothing, HEAD: _head, LORA: _lora, FULL: _everything}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
