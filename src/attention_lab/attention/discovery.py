"""Find a model's attention layers by what they do, not by attribute names.

One tiny forward pass runs with :data:`~attention_lab.attention.interface.IMPLEMENTATION`
selected and an observer on every module; the modules that call the attention interface are
the attention layers, whatever their projections are called (``q_proj``, fused ``qkv_proj``
or ``c_attn``). Each call tells its kind:

- ``cross``: queries and keys come from different sequences (the probe gives the decoder a
  different length than the encoder);
- ``decoder``: causal self-attention: query 0 cannot see key 1, query 1 sees key 0;
- ``encoder``: any other self-attention.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from attention_lab.attention.interface import IMPLEMENTATION, observing
from attention_lab.kinds import ATTENTION_KINDS as KINDS
from attention_lab.kinds import AttentionKind

_ENCODER_LEN, _DECODER_LEN = 6, 4  # different, so cross-attention shows itself
LAYERS_ATTR = "attention_lab_layers"  # cached discovery on the model


@dataclass(frozen=True)
class AttentionLayer:
    """One attention module: its kind, its index within that kind, and its head counts."""

    name: str
    kind: str  # encoder | decoder | cross
    index: int
    causal: bool
    num_heads: int  # query heads
    num_kv_heads: int  # key/value heads as the checkpoint computes them
    module: nn.Module

    @property
    def attention_kind(self) -> AttentionKind:
        return AttentionKind(self.kind)

    @property
    def is_self_attention(self) -> bool:
        """Encoder or decoder self-attention; cross-attention reads another stack's keys."""
        return self.attention_kind.is_self_attention


def _is_causal(mask: torch.Tensor | None, module: nn.Module) -> bool:
    if mask is None:  # some families skip the mask when nothing is masked
        return bool(getattr(module, "is_causal", False))
    blocked = mask[0, 0] < -1  # (Tq, Tk) additive mask: large negative where hidden
    return bool(blocked[0, 1]) and not bool(blocked[1, 0])


def probe_inputs(
    model: nn.Module, padded: bool = False, length: int = _ENCODER_LEN
) -> dict[str, torch.Tensor]:
    """A tiny batch for ``model``: one example of ``length`` tokens (fewer where the model's
    positions run out), or (``padded``) a second one whose last three tokens are padding, so
    masks are exercised too. Encoder-decoders get a decoder of another length."""
    config = model.config
    text = config.get_text_config()
    vocab = getattr(text, "vocab_size", None) or 100
    pad = getattr(config, "pad_token_id", None)
    pad = getattr(text, "pad_token_id", None) if pad is None else pad
    positions = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
    length = min(length, positions - 2) if positions else length
    device = next(model.parameters()).device

    def ids(n: int) -> torch.Tensor:
        row = torch.arange(n, device=device) % max(vocab - 3, 1) + 3  # (n,)
        if not padded:
            return row[None, :]  # (1, n)
        second = row.flip(0).clone()
        if pad is not None:
            second[-3:] = pad
        return torch.stack([row, second])  # (2, n)

    mask = torch.ones(2 if padded else 1, length, dtype=torch.long, device=device)
    if padded:
        mask[1, -3:] = 0
    inputs = {"input_ids": ids(length), "attention_mask": mask}
    if getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids(_DECODER_LEN)
    return inputs


@contextmanager
def probing(model: nn.Module, implementation: str = IMPLEMENTATION) -> Iterator[None]:
    """Eval mode, no gradients and ``implementation`` selected; the model's state restored after."""
    previous, was_training = model.config._attn_implementation, model.training
    try:
        model.set_attn_implementation(implementation)
        model.eval()
        with torch.no_grad():
            yield
    finally:
        model.set_attn_implementation(previous)
        model.train(was_training)


def run_probe(model: nn.Module, observer, length: int = _ENCODER_LEN) -> None:
    """One tiny forward pass through our implementation, with ``observer`` seeing every call."""
    with observing(model.modules(), observer), probing(model):
        model(**probe_inputs(model, length=length))


def discover(model: nn.Module) -> list[AttentionLayer]:
    """Every attention layer of ``model``, in call order; cached on the model."""
    cached = getattr(model, LAYERS_ATTR, None)
    if cached is not None:
        return cached
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    run_probe(
        model,
        lambda module, query, key, value, mask, weights, output: calls.append(
            (module, query, key, mask)
        ),
    )
    names = {id(m): n for n, m in model.named_modules()}
    layers: list[AttentionLayer] = []
    counters = dict.fromkeys(KINDS, 0)
    seen: set[int] = set()
    for module, query, key, mask in calls:
        if id(module) in seen:
            continue
        seen.add(id(module))
        if query.shape[-2] != key.shape[-2]:
            kind, causal = "cross", False
        else:
            causal = _is_causal(mask, module)
            kind = "decoder" if causal else "encoder"
        layers.append(
            AttentionLayer(
                names[id(module)],
                kind,
                counters[kind],
                causal,
                query.shape[1],
                key.shape[1],
                module,
            )
        )
        counters[kind] += 1
    setattr(model, LAYERS_ATTR, layers)
    return layers


def kinds_of(model: nn.Module) -> list[str]:
    """Attention kinds present, in store order (encoder, decoder, cross)."""
    present = {layer.kind for layer in discover(model)}
    return [kind for kind in KINDS if kind in present]
