"""Extraction one layer at a time: each layer's weights go to the store as soon as they exist.

``output_attentions`` would keep every layer's ``(B, H, T, T)`` map until the forward pass
ends: 30 layers × 9 heads × 2,048² × 4 bytes ≈ 4.5 GB for one SmolLM2 example. Here the
attention function's observer hands each layer over as it is computed; the forward pass runs
on a worker thread that waits while one layer is still being consumed, so at most a layer or
two are alive at any time. Families outside the interface (DeBERTa-v2, BLOOM, MPT) stream
too: a hook on each of their blocks takes the block's ``output_attentions`` weights and
drops them from its output, so the model's own tuple of maps holds nothing. Single-stack
models (encoders, decoders) stream when a batch's maps would exceed
:data:`STREAM_ABOVE_BYTES`; an encoder-decoder's decoder tokens exist only after
generation, so it keeps the whole-pass path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from attention_lab.attention.discovery import discover
from attention_lab.attention.interface import INTERFACE_PATH, attention_path, observing
from attention_lab.datasets.store import LayerMaps
from attention_lab.errors import ConfigError
from attention_lab.extraction.maps import cut, select_and_round
from attention_lab.extraction.norms import norm_map
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.kinds import norm_kind
from attention_lab.tasks.base import mask_positions, with_positions

_DONE = object()
# a batch streams when every layer's maps together would take more than this
STREAM_ABOVE_BYTES = 256 * 2**20


def should_stream(task, kinds: tuple[str, ...], batch, opts: ExtractionOptions) -> bool:
    """Stream single-stack batches whose maps, all layers held at once, exceed the budget;
    smaller batches are faster through one pass with ``output_attentions``."""
    if not task.streams_layers or len(kinds) != 1:
        return False
    size, length = batch["input_ids"].shape
    maps = (1 + opts.norms) * len(opts.layers) * len(opts.heads) * size * length**2
    return maps * 4 > STREAM_ABOVE_BYTES  # float32 weights


class _Stopped(Exception):
    """Raised inside the forward pass when the consumer has gone away."""


def layer_observer(model: nn.Module, opts: ExtractionOptions, hand_over, grams=None):
    """An observer that rounds each wanted layer's maps and calls ``hand_over(kind, stored
    layer, maps (B, H, Tq, Tk) numpy)`` for the weights and, given the output projections'
    ``grams`` (``opts.norms``), the norms."""
    layers = {id(layer.module): layer for layer in discover(model)}
    stored = {index: position for position, index in enumerate(opts.layers)}

    def observe(module, query, key, value, mask, weights, output):
        layer = layers.get(id(module))
        if layer is None or layer.index not in stored or weights is None:
            return
        hand_over(layer.kind, stored[layer.index], select_and_round(weights, opts, layer.kind))
        if opts.norms:
            norms, kind = norm_map(weights, value, grams[id(module)]), norm_kind(layer.kind)
            hand_over(kind, stored[layer.index], select_and_round(norms, opts, kind))

    return observe


def stream_batch(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    metas: list[dict[str, Any]],
    rows: list[int],
    opts: ExtractionOptions,
    grams: dict | None = None,
    kind: str = "decoder",
) -> Iterator[LayerMaps]:
    """One padded batch of a single-stack model, as each example's layers one by one
    (``grams``: the output projections, for norm maps; ``kind``: the stack's kind, for a
    family outside the interface, whose layers carry no kind of their own)."""
    positions = [p.cpu().numpy() for p in mask_positions(batch["attention_mask"])]
    handed: queue.Queue = queue.Queue(maxsize=1)  # the forward pass waits for the consumer
    stop = threading.Event()

    def hand_over(kind: str, layer: int, maps: np.ndarray) -> None:
        while not stop.is_set():
            try:
                handed.put((kind, layer, maps), timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    if attention_path(model) == INTERFACE_PATH:
        observer = layer_observer(model, opts, hand_over, grams)
        forward = _interface_pass(model, batch, observer)
    else:
        forward = _own_attentions_pass(model, batch, opts, hand_over, kind)
    worker = threading.Thread(  # a daemon: an abandoned pass never keeps the process alive
        target=_forward, args=(forward, handed, stop), daemon=True
    )
    worker.start()
    try:
        while (item := handed.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            kind, layer, maps = item  # maps: (B, H, Tq, Tk), padded
            grid = opts.grid_of(kind)  # the grid select_and_round rounded these maps to
            for b, row in enumerate(rows):
                example = cut(maps[b], positions[b], positions[b])  # [H, n, n]
                yield LayerMaps(metas[b], int(row), kind, layer, example, grid)
    finally:
        stop.set()
        worker.join()


def _interface_pass(model, batch, observer) -> Callable[[], None]:
    """The forward pass with ``observer`` on every attention layer, keeping nothing."""

    def run() -> None:
        modules = [layer.module for layer in discover(model)]
        with observing(modules, observer), torch.inference_mode():
            model(**with_positions(model, batch))  # no output_attentions: nothing is kept

    return run


def _own_attentions_pass(model, batch, opts, hand_over, kind: str) -> Callable[[], None]:
    """The forward pass with ``output_attentions`` of a family outside the interface, each
    block's weights handed over (rounded, wanted layers only) and dropped as it ends."""
    stored = {index: position for position, index in enumerate(opts.layers)}

    def take(index: int, weights: torch.Tensor) -> None:
        if index in stored:
            hand_over(kind, stored[index], select_and_round(weights, opts, kind))

    def run() -> None:
        with handing_over_weights(model, take), torch.inference_mode():
            model(**with_positions(model, batch), output_attentions=True)

    return run


def attention_blocks(model: nn.Module) -> nn.ModuleList:
    """The blocks a single-stack model runs in turn (BLOOM's ``h``, MPT's ``blocks``,
    DeBERTa's ``encoder.layer``): its longest module list."""
    stacks = [module for module in model.modules() if isinstance(module, nn.ModuleList)]
    if not stacks:
        raise ConfigError(f"{type(model).__name__}: no list of layers to stream from.")
    return max(stacks, key=len)


@contextmanager
def handing_over_weights(model: nn.Module, take: Callable[[int, torch.Tensor], None]):
    """Forward hooks on each block: with ``output_attentions``, a block returns ``(hidden,
    weights (B, H, Tq, Tk), ...)``; ``take(block index, weights)`` gets the weights and the
    block passes ``None`` on in their place, so the model's tuple of maps keeps nothing."""

    def hook_of(index: int):
        def hook(module, args, output):
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if not (torch.is_tensor(weights) and weights.dim() == 4):
                raise ConfigError(
                    f"{type(model).__name__}: block {index} ({type(module).__name__}) does not "
                    "return its attention weights second; its maps cannot be streamed by layer. "
                    "Lower attention_extraction.max_length so that whole batches fit."
                )
            take(index, weights)
            return (output[0], None, *output[2:])

        return hook

    handles = [
        block.register_forward_hook(hook_of(i)) for i, block in enumerate(attention_blocks(model))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _forward(forward: Callable[[], None], handed: queue.Queue, stop: threading.Event) -> None:
    """Run ``forward``; then hand over _DONE or the error."""
    try:
        forward()
        outcome = _DONE
    except _Stopped:
        return
    except BaseException as exc:  # handed to the consumer, which raises it
        outcome = exc
    while not stop.is_set():
        try:
            handed.put(outcome, timeout=0.1)
            return
        except queue.Full:
            continue
