"""Attention extraction node: a thin adapter over :mod:`attention_lab.extraction`."""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd

from attention_lab.datasets.model_directory import ModelArtifact
from attention_lab.datasets.store import AttentionStream, ShardInfo
from attention_lab.errors import DataError
from attention_lab.extraction.norms import gated_layers
from attention_lab.extraction.options import ExtractionOptions
from attention_lab.extraction.run import (
    encode_beside,
    iter_attention,
    padding_side,
    store_metadata,
)
from attention_lab.models.shape import model_shape
from attention_lab.parameters import ExtractionSettings
from attention_lab.tasks import get_task

logger = logging.getLogger(__name__)


def extract_attention(
    model_artifact: ModelArtifact, probe_set: pd.DataFrame, params: ExtractionSettings
) -> AttentionStream:
    """Load the variant with its mechanism and stream the probe set's attention to ``{job}__attention``.

    Options (``attention_extraction``): ``layers``/``heads`` subsets, ``max_length``,
    ``batch_size``, ``precision_bits`` (grid rounding, see the codecs module; null: exact);
    the store's ``dtype`` and ``compact`` mode are set in the catalog.
    """
    settings = ExtractionSettings.of(params)  # a wrong value stops before the model loads
    if probe_set.empty:
        raise DataError(
            "probe_set is empty; run `kedro run --pipeline=ingestion` with probe.n_examples > 0."
        )
    model, tokenizer = model_artifact.load()
    task, shape = get_task(model_artifact.info.task), model_shape(model)
    opts = ExtractionOptions.parse(settings, shape)
    if opts.norms and (gated := gated_layers(model)):
        logger.warning(
            "%s: no norm-based maps: a gate scales each head's output per query in %d layers "
            "(gated attention), which the value and output projections alone do not give; "
            "its attention weights are stored as usual.",
            model_artifact.info.variant,
            len(gated),
        )
        opts = replace(opts, norms=False)
    side = padding_side(model, tokenizer, shape)
    meta = store_metadata(model, shape, model_artifact.info, opts, side)
    if opts.shard is not None:  # this job's block of the probe set; the reader joins them
        total, rows = len(probe_set), opts.shard_rows(len(probe_set))
        probe_set = probe_set.iloc[rows.start : rows.stop]
        shard = ShardInfo(index=opts.shard[0], count=opts.shard[1], start=rows.start, probes=total)
        meta = replace(meta, shard=shard)
    logger.info(
        "Extracting %s attention of %s for %d probe examples (padding on the %s)",
        "/".join(shape.kinds),
        meta.variant,
        len(probe_set),
        side,
    )
    return AttentionStream(
        meta,
        iter_attention(model, tokenizer, task, probe_set, shape, opts, side),
        background=encode_beside(model),
    )
