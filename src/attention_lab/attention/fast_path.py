"""Training and evaluation without attention weights: SDPA where it equals the eager path.

Nothing reads the weights while a model trains or is evaluated, so materialising them costs
time for nothing. :func:`fast_attention` selects
:data:`~attention_lab.attention.interface.FAST_IMPLEMENTATION` (the same input transforms in
front of SDPA) for the duration of a block, but only after a padded probe shows that the
model's outputs are the eager ones. Families whose eager attention adds a term that SDPA
does not take (Gemma-2's logit soft-capping raises, GPT-OSS's sink logits would be dropped
silently) fail the probe and keep the eager path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from attention_lab.attention.discovery import probe_inputs, probing
from attention_lab.attention.interface import FAST_IMPLEMENTATION, IMPLEMENTATION

logger = logging.getLogger(__name__)

FAST_OK_ATTR = "attention_lab_fast_ok"  # cached verdict of fast_path_matches
# relative to the largest logit. Measured: float32 summation order alone moves SmolLM2's
# 30-layer logits by up to 6e-3 after a LoRA merge (about 2e-4 of their scale); dropping
# GPT-OSS's sink logits moves a 2-layer model's by 0.57 of theirs. Refusing costs only speed.
RELATIVE_TOLERANCE = 1e-3


def _outputs(model: nn.Module, implementation: str) -> torch.Tensor:
    """The model's logits on the padded probe, in eval mode."""
    with probing(model, implementation):
        return model(**probe_inputs(model, padded=True)).logits.float()


def fast_path_matches(model: nn.Module) -> bool:
    """Whether the fast implementation reproduces the eager outputs (to 1e-3 of the largest
    logit); cached. The conformance suite holds tiny models to 1e-5 absolute."""
    cached = getattr(model, FAST_OK_ATTR, None)
    if cached is not None:
        return cached
    try:
        eager = _outputs(model, IMPLEMENTATION)
        fast = _outputs(model, FAST_IMPLEMENTATION)
        difference = float((eager - fast).abs().max())
        matches = difference <= RELATIVE_TOLERANCE * max(1.0, float(eager.abs().max()))
        reason = f"max |sdpa - eager| = {difference:.2e}"
    except (ValueError, RuntimeError, TypeError) as exc:  # e.g. "sdpa does not support softcap"
        matches, reason = False, str(exc).splitlines()[0]
    if not matches:
        logger.warning(
            "%s keeps eager attention for training: its SDPA path differs (%s).",
            type(model).__name__,
            reason,
        )
    setattr(model, FAST_OK_ATTR, matches)
    return matches


@contextmanager
def fast_attention(model: nn.Module, enabled: bool = True) -> Iterator[bool]:
    """Run the block with the fast implementation where it matches eager; yields whether it does.

    The eager implementation is restored afterwards, so saving and extraction see it.
    """
    previous = model.config._attn_implementation
    use = enabled and previous == IMPLEMENTATION and fast_path_matches(model)
    if use:
        model.set_attn_implementation(FAST_IMPLEMENTATION)
    try:
        yield use
    finally:
        model.set_attn_implementation(previous)
