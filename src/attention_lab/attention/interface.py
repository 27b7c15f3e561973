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

:data:`FAST_IMPLEMENTATION` is the same transformation in front of transformers' SDPA
function, for training and evaluation, where nobody reads the weights. It is selected only
where it gives the eager outputs (see :mod:`attention_lab.attention.fast_path`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from attention_lab.errors import ConfigError
from attention_lab.kinds import INTERFACE_PATH, OUTPUT_ATTENTIONS_PATH

IMPLEMENTATION = "attention_lab"
# No "sdpa" in the name: transformers keys checks of its own kernel on that substring.
FAST_IMPLEMENTATION = "attention_lab_fast"
PLAN_ATTR = "attention_lab_plan"  # LayerPlan | None
HEAD_GATE_ATTR = "attention_lab_head_gate"  # optional (Hq,) tensor scaling each head's output
# optional callable(module, query, key, value, mask, weights, output), key and value as
# transformed, output (B, Tq, Hq, d) as returned
OBSERVER_ATTR = "attention_lab_observer"

# set on a model whose family's attention does not go through AttentionInterface (DeBERTa-v2,
# BLOOM, MPT): with mechanism mha its maps are its own eager ``output_attentions``
OWN_ATTENTIONS_ATTR = "attention_lab_own_attentions"
# where a store's maps came from, as its metadata records it

EagerFunction = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def attention_path(model: nn.Module) -> str:
    """How this model's maps are read: through the attention interface (every mechanism, head
    gates, streaming, norms) or from its own ``output_attentions`` (mha only)."""
    return OUTPUT_ATTENTIONS_PATH if getattr(model, OWN_ATTENTIONS_ATTR, False) else INTERFACE_PATH


def require_interface(model: nn.Module, what: str) -> None:
    """Stop with one line where ``what`` needs the attention interface and the family lacks it."""
    if attention_path(model) != INTERFACE_PATH:
        raise ConfigError(
            f"{type(model).__name__}: {what} needs the attention interface, which this family's "
            "attention does not call; its maps come from its own output_attentions."
        )


def family_eager(module: nn.Module) -> EagerFunction:
    """The eager attention function of the module's own modeling file (looked up once per class).

    Raises :class:`ConfigError` naming the family when the file defines none: a generic
    replacement would silently drop whatever terms that family adds.
    """
    return _eager_of(type(module))


@functools.cache
def _eager_of(cls: type) -> EagerFunction:
    eager = getattr(sys.modules[cls.__module__], "eager_attention_forward", None)
    if eager is None:
        raise ConfigError(
            f"{cls.__name__} ({cls.__module__}) defines no "
            "eager_attention_forward, so Attention Lab cannot reproduce its attention exactly; "
            "this family is not supported."
        )
    return eager


def _transform(module: nn.Module, query, key, value, attention_mask):
    """The module's plan applied to the inputs: (key, value, mask), shapes unchanged."""
    plan = getattr(module, PLAN_ATTR, None)
    if plan is None:
        return key, value, attention_mask
    # key/value (B, Hkv, Tk, d) pooled within groups; mask (B|1, 1, Tq, Tk) banded
    return plan.pool(key), plan.pool(value), plan.restrict(attention_mask, query)


def _gated(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """output (B, Tq, Hq, d) with each head scaled by the module's gate, if it has one."""
    gate = getattr(module, HEAD_GATE_ATTR, None)
    if gate is None:
        return output
    # xi_h: head h's output is sum_j w_ij v_j, so scaling it scales the head
    return output * gate.view(1, 1, -1, 1).to(output.dtype)


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
    key, value, attention_mask = _transform(module, query, key, value, attention_mask)
    output, weights = family_eager(module)(module, query, key, value, attention_mask, **kwargs)
    output = _gated(module, output)
    observer = getattr(module, OBSERVER_ATTR, None)
    if observer is not None:
        observer(module, query, key, value, attention_mask, weights, output)
    return output, weights


def attention_lab_fast_forward(
    module: nn.Module,
    query: torch.Tensor,  # (B, Hq, Tq, d)
    key: torch.Tensor,  # (B, Hkv, Tk, d)
    value: torch.Tensor,  # (B, Hkv, Tk, d)
    attention_mask: torch.Tensor | None,  # (B|1, 1, Tq, Tk) additive, or None
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """The same transformed inputs through SDPA; output (B, Tq, Hq, d), no weights."""
    key, value, attention_mask = _transform(module, query, key, value, attention_mask)
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return _gated(module, output), None


@contextmanager
def observing(modules: Iterable[nn.Module], observer) -> Iterator[None]:
    """Within the block, each of ``modules`` hands every attention call to ``observer``."""
    modules = list(modules)
    for module in modules:
        setattr(module, OBSERVER_ATTR, observer)
    try:
        yield
    finally:
        for module in modules:
            setattr(module, OBSERVER_ATTR, None)


def register() -> None:
    """Register the function and its (eager) mask builder; idempotent."""
    AttentionInterface.register(IMPLEMENTATION, attention_lab_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)
    AttentionInterface.register(FAST_IMPLEMENTATION, attention_lab_fast_forward)
    # additive float masks for both: the band is added to them the same way
    AttentionMaskInterface.register(FAST_IMPLEMENTATION, eager_mask)


register()
