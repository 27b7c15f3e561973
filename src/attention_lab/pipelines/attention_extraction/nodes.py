"""Attention extraction: run the probe set through a variant and stream its maps into the store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from attention_lab import __version__
from attention_lab.attention.interface import attention_modules, spec_from_config
from attention_lab.attention.store import (
    KINDS,
    AttentionStream,
    ExampleAttention,
    round_rows_to_grid,
)
from attention_lab.errors import ConfigError, DataError
from attention_lab.models.artifact import ModelArtifact

logger = logging.getLogger(__name__)


def _options(params: dict[str, Any], num_layers: int, num_heads: int) -> dict[str, Any]:
    layers = params.get("layers") or list(range(num_layers))
    heads = params.get("heads") or list(range(num_heads))
    if any(not 0 <= i < num_layers for i in layers):
        raise ConfigError(
            f"attention_extraction.layers: {layers}; valid indices are 0..{num_layers - 1}."
        )
    if any(not 0 <= h < num_heads for h in heads):
        raise ConfigError(
            f"attention_extraction.heads: {heads}; valid indices are 0..{num_heads - 1}."
        )
    bits = params.get("precision_bits", 11)
    if bits is not None and (not isinstance(bits, int) or not 8 <= bits <= 23):
        raise ConfigError(
            f"attention_extraction.precision_bits: {bits!r}; allowed: null (exact) or an integer 8..23."
        )
    return {
        "layers": sorted(layers),
        "heads": sorted(heads),
        "num_layers": num_layers,
        "num_heads": num_heads,
        "batch_size": int(params.get("batch_size", 16)),
        "max_length": int(params.get("max_length", 128)),
        "precision_bits": bits,
    }


def store_metadata(
    model, info: dict[str, Any], kinds: list[str], layers: list[int], heads: list[int]
) -> dict[str, Any]:
    """What the store's contract asks for: model, variant, mechanism, shapes, key/value grouping."""
    text = model.config.get_text_config() if not model.config.is_encoder_decoder else model.config
    encoder_cfg = getattr(model.config, "encoder", text)
    num_heads = getattr(encoder_cfg, "num_attention_heads", None) or getattr(
        text, "num_heads", None
    )
    mechanism = spec_from_config(model.config)
    kv = mechanism.target_kv_heads or getattr(text, "num_key_value_heads", None) or num_heads
    group = num_heads // kv
    return {
        "model_id": info.get("base_model"),
        "variant": info.get("variant"),
        "task": info.get("task"),
        "method": info.get("method"),
        "mechanism": mechanism.to_dict(),
        "kinds": kinds,
        "num_layers": len(layers),
        "layers": layers,
        "heads": heads,
        "num_heads": num_heads,
        "num_kv_heads": kv,
        "kv_group": [h // group for h in heads],  # stored head -> key/value head
        "causal": {k: k == "decoder" for k in kinds},
        "label_names": info.get("label_names"),
        "attention_lab_version": __version__,
    }


def _kinds(model) -> list[str]:
    """Attention kinds present, in store order (encoder, decoder, cross), from the attention modules."""
    present = {kind for _, kind, _, _ in attention_modules(model)}
    return [kind for kind in KINDS if kind in present]


def _tokens(tokenizer, ids: list[int], special: list[int]) -> dict[str, Any]:
    return {
        "tokens": tokenizer.convert_ids_to_tokens(ids),
        "token_ids": ids,
        "special_mask": special,
        "length": len(ids),
    }


def _batch_maps(
    per_layer: tuple[torch.Tensor, ...],
    layers: torch.Tensor | None,
    heads: torch.Tensor | None,
    bits: int | None,
) -> np.ndarray:
    """Per-layer (B, H, Tq, Tk) maps -> (B, L_sel, H_sel, Tq, Tk) on the CPU, rounded to the grid.

    Grid values k / 2**bits with bits <= 11 are exact in float16, so the cast happens here, in
    torch's threads, at no loss (it halves what the store writer has to touch).
    """
    maps = torch.stack(per_layer, dim=1)
    if layers is not None:
        maps = maps.index_select(1, layers)
    if heads is not None:
        maps = maps.index_select(2, heads)
    if bits is not None:
        maps = round_rows_to_grid(maps.float(), bits)
        if bits <= 11:
            maps = maps.half()
    return maps.cpu().numpy()


def iter_attention(
    model, tokenizer, probe_set: pd.DataFrame, kinds: list[str], opts: dict[str, Any]
) -> Iterator[ExampleAttention]:
    """Length-sorted batches through the model; yields one example at a time without padding."""
    enc = tokenizer(
        list(probe_set["text"]),
        truncation=True,
        max_length=opts["max_length"],
        return_special_tokens_mask=True,
    )
    order = np.argsort(
        [len(x) for x in enc["input_ids"]], kind="stable"
    )  # little padding per batch
    # None when every layer / head is kept: selecting them all would only copy
    layers = (
        None
        if opts["layers"] == list(range(opts["num_layers"]))
        else torch.tensor(opts["layers"], device=model.device)
    )
    heads = (
        None
        if opts["heads"] == list(range(opts["num_heads"]))
        else torch.tensor(opts["heads"], device=model.device)
    )
    encdec = "cross" in kinds
    bar = tqdm(total=len(order), desc="extract attention", unit="ex")
    for start in range(0, len(order), opts["batch_size"]):
        rows = order[start : start + opts["batch_size"]]
        batch = tokenizer.pad(
            {"input_ids": [enc["input_ids"][i] for i in rows]}, return_tensors="pt"
        ).to(model.device)
        with torch.inference_mode():
            if encdec:  # attend while producing the model's own answer
                generated = model.generate(**batch, max_new_tokens=6, do_sample=False)
                out = model(**batch, decoder_input_ids=generated, output_attentions=True)
                maps = {
                    "encoder": out.encoder_attentions,
                    "decoder": out.decoder_attentions,
                    "cross": out.cross_attentions,
                }
            else:
                out = model(**batch, output_attentions=True)
                maps = {kinds[0]: out.attentions}
            # per kind: (B, L_sel, H_sel, Tq, Tk); rounded on the whole padded batch, where the tensors are
            stacked = {
                k: _batch_maps(v, layers, heads, opts["precision_bits"]) for k, v in maps.items()
            }
        enc_len = batch["attention_mask"].sum(dim=1).tolist()
        if encdec:
            pad = tokenizer.pad_token_id
            dec_len = [
                int((g != pad).sum()) + int(g[0] == pad) for g in generated
            ]  # the start token may equal pad
        for b, row in enumerate(rows):
            n = enc_len[b]
            ids = enc["input_ids"][row]
            meta = {
                "id": str(probe_set["id"].iloc[row]),
                "label": int(probe_set["label"].iloc[row]),
                **_tokens(tokenizer, ids, enc["special_tokens_mask"][row]),
            }
            example = ExampleAttention(meta, position=int(row))  # stored in probe-set order
            if encdec:
                m = dec_len[b]
                dec_ids = generated[b, :m].tolist()
                meta["decoder"] = _tokens(
                    tokenizer, dec_ids, [int(i in tokenizer.all_special_ids) for i in dec_ids]
                )
                example.maps = {
                    "encoder": stacked["encoder"][b, :, :, :n, :n],
                    "decoder": stacked["decoder"][b, :, :, :m, :m],
                    "cross": stacked["cross"][b, :, :, :m, :n],
                }  # [L, H, decoder tokens, encoder tokens]
            else:
                example.maps = {kinds[0]: stacked[kinds[0]][b, :, :, :n, :n]}  # [L, H, T, T]
            yield example
            bar.update(1)
    bar.close()


def extract_attention(
    model_artifact: ModelArtifact, probe_set: pd.DataFrame, params: dict[str, Any]
) -> AttentionStream:
    """Load the variant with its mechanism and stream the probe set's attention to ``{variant}.attention``.

    Options (``attention_extraction``): ``layers``/``heads`` subsets, ``max_length``,
    ``batch_size``, ``precision_bits`` (grid rounding, see the store module; null: exact);
    the store's ``dtype`` and ``compact`` mode are set in the catalog.
    """
    if probe_set.empty:
        raise DataError(
            "probe_set is empty; run `kedro run --pipeline=ingestion` with probe.n_examples > 0."
        )
    model, tokenizer = model_artifact.load()
    kinds = _kinds(model)
    cfg = (
        model.config.encoder
        if model.config.is_encoder_decoder and hasattr(model.config, "encoder")
        else model.config.get_text_config()
    )
    opts = _options(
        params,
        cfg.num_hidden_layers if hasattr(cfg, "num_hidden_layers") else cfg.num_layers,
        cfg.num_attention_heads if hasattr(cfg, "num_attention_heads") else cfg.num_heads,
    )
    meta = store_metadata(model, model_artifact.info, kinds, opts["layers"], opts["heads"])
    meta["precision_bits"] = opts["precision_bits"]
    logger.info(
        "Extracting %s attention of %s for %d probe examples",
        "/".join(kinds),
        meta["variant"],
        len(probe_set),
    )
    return AttentionStream(meta, iter_attention(model, tokenizer, probe_set, kinds, opts))
