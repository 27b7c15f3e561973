"""The plug into each family's own attention, through transformers' ``AttentionInterface``.

Every supported family calls ``ALL_ATTENTION_FUNCTIONS[config._attn_implementation](module,
query, key, value, attention_mask, **kwargs)``. Selecting :data:`IMPLEMENTATION` routes that
call through :func:`attention_lab_forward`, which

1. transforms the *inputs* for the module's :class:`~attention_lab.attention.plan.LayerPlan`
   (keys/values pooled into groups, a band added to the mask), then
2. calls the family's **own** eager function (``eager_attention_forward`` of the module's
   modeling file), so scaling, soft-capping, sink logits, dropout and any future term are the
   model's, and the weights it returns are exactly what ``output_attentions`` gives natively.

A head gate (Michel et al., 2019) scales each head's output, and an observer (discovery,
streaming) sees every call. The mask builder is the stock eager one, registered under the
same name: without it transformers silently passes ``mask=None`` and padding is attended.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from attention_lab.errors import ConfigError

IMPLEMENTATION = "attention_lab"
PLAN_ATTR = "attention_lab_plan"  # LayerPlan | None
HEAD_GATE_ATTR = "attention_lab_head_gate"  # optional (Hq,) tensor scaling each head's output
OBSERVER_ATTR = "attention_lab_observer"  # optional callable(module, query, key, mask, weights)

EagerFunction = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def family_eager(module: nn.Module) -> EagerFunction:
    """The eager attention function of the module's own modeling file.

    Raises :class:`ConfigError` naming the family when the file defines none: a generic
    replacement would silently drop whatever terms that family adds.
    """
    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if eager is None:
        raise ConfigError(
            f"{type(module).__name__} ({type(module).__module__}) defines no "
            "eager_attention_forward, so Attention Lab cannot reproduce its attention exactly; "
            "this family is not supported."
        )
    return eager


def attention_lab_forward(
    module: nn.Module,
    query: torch.Tensor,  # (B, Hq, Tq, d)
    key: torch.Tensor,  # (B, Hkv, Tk, d)
    value: torch.Tensor,  # (B, Hkv, Tk, d)
    attention_mask: torch.Tensor | None,  # (B|1, 1, Tq, Tk) additive, or None
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The family's eager attention on transformed inputs; returns (output, weights).

    output: (B, Tq, Hq, d); weights: (B, Hq, Tq, Tk) as the family computes them.
    """
    plan = getattr(module, PLAN_ATTR, None)
    if plan is not None:
        key, value = plan.pool(key), plan.pool(value)  # same shapes, pooled contents
        attention_mask = plan.restrict(attention_mask, query)
    output, weights = family_eager(module)(module, query, key, value, attention_mask, **kwargs)
    gate = getattr(module, HEAD_GATE_ATTR, None)
    if gate is not None:  # xi_h: head h's output is sum_j w_ij v_j, so scaling it scales the head
        output = output * gate.view(1, 1, -1, 1).to(output.dtype)
    observer = getattr(module, OBSERVER_ATTR, None)
    if observer is not None:
        observer(module, query, key, attention_mask, weights)
    return output, weights


def register() -> None:
    """Register the function and its (eager) mask builder; idempotent."""
    AttentionInterface.register(IMPLEMENTATION, attention_lab_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


register()
