"""Extraction one layer at a time: each layer's weights go to the store as soon as they exist.

``output_attentions`` would keep every layer's ``(B, H, T, T)`` map until the forward pass
ends: 30 layers × 9 heads × 2,048² × 4 bytes ≈ 4.5 GB for one SmolLM2 example. Here the
attention function's observer hands each layer over as it is computed; the forward pass runs
on a worker thread that waits while one layer is still being consumed, so at most a layer or
two are alive at any time. Single-stack models (encoders, decoders) stream when a batch's
maps would exceed :data:`STREAM_ABOVE_BYTES`; an encoder-decoder's decoder tokens exist only
after generation, so it keeps the whole-pass path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from attention_lab.attention.discovery import discover
from attention_lab.attention.interface import observing
from attention_lab.datasets.store import LayerMaps
from attention_lab.extraction.maps import cut, select_and_round
from attention_lab.extraction.norms import norm_map
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.kinds import NORM_SUFFIX
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
        hand_over(layer.kind, stored[layer.index], select_and_round(weights, opts))
        if opts.norms:
            norms = norm_map(weights, value, grams[id(module)])
            hand_over(
                f"{layer.kind}{NORM_SUFFIX}", stored[layer.index], select_and_round(norms, opts)
            )

    return observe


def stream_batch(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    metas: list[dict[str, Any]],
    rows: list[int],
    opts: ExtractionOptions,
    grams: dict | None = None,
) -> Iterator[LayerMaps]:
    """One padded batch of a single-stack model, as each example's layers one by one
    (``grams``: the output projections, for norm maps)."""
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

    worker = threading.Thread(  # a daemon: an abandoned pass never keeps the process alive
        target=_forward,
        args=(model, batch, layer_observer(model, opts, hand_over, grams), handed, stop),
        daemon=True,
    )
    worker.start()
    try:
        while (item := handed.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            kind, layer, maps = item  # maps: (B, H, Tq, Tk), padded
            for b, row in enumerate(rows):
                example = cut(maps[b][None], positions[b], positions[b])[0]  # [H, n, n]
                yield LayerMaps(metas[b], int(row), kind, layer, example)
    finally:
        stop.set()
        worker.join()


def _forward(model, batch, observer, handed: queue.Queue, stop: threading.Event) -> None:
    """The forward pass with ``observer`` on every attention layer; then _DONE or the error."""
    try:
        modules = [layer.module for layer in discover(model)]
        with observing(modules, observer), torch.inference_mode():
            model(**with_positions(model, batch))  # no output_attentions: nothing is kept
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
