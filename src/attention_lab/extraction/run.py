"""Stream a probe set's attention, one example at a time, in probe-set order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from attention_lab import __version__
from attention_lab.attention.apply import spec_from_config
from attention_lab.attention.interface import attention_path, require_interface
from attention_lab.datasets.store import ExampleAttention, LayerMaps, StoreMeta
from attention_lab.extraction.maps import cut_example, round_layers
from attention_lab.extraction.norms import output_projections, recording_norms
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.streaming import should_stream, stream_batch
from attention_lab.kinds import base_kind, norm_kind
from attention_lab.model_info import ModelInfo
from attention_lab.models.shape import ModelShape
from attention_lab.tasks import Task
from attention_lab.tasks.base import accepts


def padding_side(model, tokenizer, shape: ModelShape) -> str:
    """The tokenizer's side where that keeps every real token at its own position; else the right.

    Right padding is exact in every family. Left padding is kept for single-stack causal
    decoders that take ``position_ids``, which :func:`~attention_lab.tasks.base.with_positions`
    then counts over real tokens. Encoders (RoBERTa numbers positions from its pad token) and
    encoder-decoders (BART takes no position ids) are padded on the right.
    """
    keeps_left = shape.is_decoder_only and accepts(model, "position_ids")
    return "left" if tokenizer.padding_side == "left" and keeps_left else "right"


def encode_beside(model) -> bool:
    """Whether the store should encode on a thread of its own, beside the forward pass: yes
    when the model runs on an accelerator (the CPU is free meanwhile); no on the CPU, where
    torch's threads already hold every core and a writer thread among them makes each of
    their parallel steps wait (``benchmarks/extraction.py``)."""
    return model.device.type != "cpu"


def store_metadata(
    model, shape: ModelShape, info: ModelInfo, opts: ExtractionOptions, side: str
) -> StoreMeta:
    """What the store's contract asks for: model, variant, mechanism, shapes, key/value grouping."""
    return StoreMeta(
        model_id=info.base_model,
        variant=info.variant,
        seed=info.seed,  # the job's training seed
        task=info.task,
        method=info.method,
        mechanism=spec_from_config(model.config).to_dict(),
        kinds=opts.kinds(shape),
        num_layers=len(opts.layers),
        layers=opts.layers,
        heads=opts.heads,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        kv_group=[shape.kv_group(h) for h in opts.heads],  # stored head -> key/value head
        causal={kind: shape.causal[base_kind(kind)] for kind in opts.kinds(shape)},
        norms=opts.norms,
        padding_side=side,
        attention_path=attention_path(model),  # the attention interface or output_attentions
        precision_bits=opts.precision_bits,
        label_names=info.label_names,
        attention_lab_version=__version__,
    )


def _example_meta(tokenizer, ids: list, labels: list, enc, row: int) -> dict[str, Any]:
    """A probe example's id, label and tokens, as the store keeps them (``ids``, ``labels``:
    the probe set's columns as lists; a pandas lookup per row costs more than the tokens)."""
    return {
        "id": str(ids[row]),
        "label": int(labels[row]),
        **_tokens(tokenizer, enc["input_ids"][row], enc["special_tokens_mask"][row]),
    }


def _tokens(tokenizer, ids: list[int], special: list[int]) -> dict[str, Any]:
    return {
        "tokens": tokenizer.convert_ids_to_tokens(ids),
        "token_ids": ids,
        "special_mask": special,
        "length": len(ids),
    }


@contextmanager
def recording(model, grams: dict | None):
    """:func:`recording_norms` given the output projections' ``grams``, else nothing."""
    if grams is None:
        yield None
        return
    with recording_norms(model, grams) as maps:
        yield maps


def _whole_batch(model, tokenizer, task, batch, metas, rows, shape, opts, special, grams):
    """One batch through ``task.attention_batch`` (every layer at once), example by example."""
    with torch.inference_mode(), recording(model, grams) as norms:
        result = task.attention_batch(model, tokenizer, batch, shape.kinds)
        for kind, layers in (norms or {}).items():  # the layers' norm maps, in layer order
            result.maps[norm_kind(kind)] = tuple(layers[i] for i in sorted(layers))
        rounded = {kind: round_layers(maps, opts, kind) for kind, maps in result.maps.items()}
    grid = {kind: bits for kind in rounded if (bits := opts.grid_of(kind)) is not None}
    positions = {side_: [p.cpu().numpy() for p in ps] for side_, ps in result.positions.items()}
    for b, row in enumerate(rows):
        meta = dict(metas[b])
        if result.decoder_ids is not None:
            dec = result.decoder_ids[b]
            meta.update(decoder=_tokens(tokenizer, dec, [int(i in special) for i in dec]))
        example = ExampleAttention(meta, position=int(row), grid_bits=dict(grid))  # probe order
        for kind, layers in rounded.items():  # [L, H, query tokens, key tokens]
            q_side, k_side = result.sides(kind)
            example.maps[kind] = cut_example(layers, b, positions[q_side][b], positions[k_side][b])
        yield example


def iter_attention(
    model,
    tokenizer,
    task: Task,
    probe_set: pd.DataFrame,
    shape: ModelShape,
    opts: ExtractionOptions,
    side: str = "right",
) -> Iterator[ExampleAttention | LayerMaps]:
    """Length-sorted batches through the model, without padding: single-stack models yield
    each example's layers one at a time, encoder-decoders whole examples."""
    enc = tokenizer(
        list(probe_set["text"]),
        truncation=True,
        max_length=opts.max_length,
        return_special_tokens_mask=True,
    )
    order = np.argsort(
        [len(x) for x in enc["input_ids"]], kind="stable"
    )  # little padding per batch
    special = set(tokenizer.all_special_ids)
    ids, labels = probe_set["id"].tolist(), probe_set["label"].tolist()
    if opts.norms:
        require_interface(model, "norm-based maps (set attention_extraction.norms: false)")
    grams = output_projections(model) if opts.norms else None  # one probe pass, not one per batch
    bar = tqdm(total=len(order), desc="extract attention", unit="ex")
    for start in range(0, len(order), opts.batch_size):
        rows = order[start : start + opts.batch_size]
        batch = tokenizer.pad(
            {"input_ids": [enc["input_ids"][i] for i in rows]},
            return_tensors="pt",
            padding_side=side,
        ).to(model.device)
        metas = [_example_meta(tokenizer, ids, labels, enc, row) for row in rows]
        # each layer as soon as it exists (through the interface's observer, or hooks on
        # the blocks of a family outside it)
        if should_stream(task, shape.kinds, batch, opts):
            positions = [int(r) for r in rows]
            yield from stream_batch(model, batch, metas, positions, opts, grams, shape.kinds[0])
        else:
            yield from _whole_batch(
                model, tokenizer, task, batch, metas, rows, shape, opts, special, grams
            )
        bar.update(len(rows))
    bar.close()
