"""The attention store's format: a zipped zarr v3 group per variant, one chunk per example and attention kind.

Layout (members of ``attention.zarr.zip``, uncompressed; standard zarr v3, readable with
``zarr.open_group(zarr.storage.ZipStore(path, mode="r"))`` or ``"zip::<fsspec url>"``)::

    zarr.json                      root attributes: format, version, model and mechanism metadata,
                                   example ids, ``complete: true`` (written last)
    examples/{i}.{kind}/zarr.json  the example's maps of one kind, zstd, no padding; attributes:
                                   id, tokens, token_ids, special_mask, query_length, key_length,
                                   layout. kind: encoder | decoder | cross (+ ``_norm``)
    examples/{i}.{kind}/{l}.{h}.…  one chunk per layer and head, written as soon as that layer is
                                   known (whole examples of short inputs: one chunk ``0.0.0.0``):
        layout ``dense``:          [layers, heads, query, key] float16 (or float32), or, for
                                   attention weights on the extraction's grid (attribute
                                   ``grid_bits``), uint16 whole steps ``k`` of ``k / 2**grid_bits``,
                                   byte-shuffled (blosc), then lz4 for a whole example's chunk
                                   and zstd for one head of a streamed layer
        layout ``lower_triangle``: [layers, heads, n(n+1)/2]: a causal map's lower triangle,
                                   row by row (nothing above the diagonal: no loss)
    examples/{i}.{kind}/{l}.counts|steps|values|dropped
        layout ``sparse``:         per layer and (head, query) row, the fewest keys that hold
                                   ``sparse_mass`` of the row: how many, their positions as
                                   steps from the previous one, their float16 weights, and the
                                   weight the row left out. Weights on the extraction's grid are
                                   stored as whole grid steps (uint16, attribute ``grid_bits``),
                                   which decode to the same float16 numbers; steps and weights
                                   are byte-shuffled before zstd (zarr's blosc codec)
    examples/{i}.{kind}_scale/     compact mode only: per-row scales [layers, heads, query]

Why one zip file rather than a folder of files: on the project's machines, creating a folder
and two files per example cost more than the forward pass saves (benchmarks/extraction.py);
a zip is written sequentially, renamed into place when complete (so a crash never leaves a
store that looks finished), and read by random access through its central directory.
The two group documents (root, ``examples``) are made by zarr's own metadata classes; each
array's document is this module's JSON of the same content, because zarr's classes cost 11x
as much per array, 5.8% of the extraction floor (``benchmarks/store_metadata.py``).

Extraction rounds maps to an absolute grid of ``2**-precision_bits`` (default 11, see
:func:`round_rows_to_grid`; recorded as ``precision_bits``): every weight moves by less than
one grid step (< 4.9e-4) and every row keeps its sum, while small weights lose the relative
precision that made float16 incompressible: about 28% of float32 bytes instead of 45%.
Every ``k / 2048`` up to 1 is exact in float16, so extraction hands the store those weights
as their whole steps ``k`` (uint16), which decode to the same numbers. Byte-shuffled and
compressed with lz4, short maps (whole examples) take as few bytes as float16 with zstd
(27.8% of float32 against 28.2%, ``benchmarks/extraction.py``) at a fifth of the CPU, which
counts because their encoding competes with a short forward pass. Long maps (streamed
layers, one chunk per head) take zstd after the shuffle: lz4 kept 7.0% of float32 `.npz`
bytes at 512 tokens against format 5's 5.3% (``benchmarks/long_context.py``). Norm-based
maps (not bounded by 1) stay float16 on the grid, with zstd.

Compact mode stores each query row as uint8 ``q = round(w / s)`` with ``s = max(row) / 255``;
the reconstruction error of every weight is at most ``s / 2 = max(row) / 510 <= 1/510``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numcodecs
import numpy as np

from attention_lab.datasets.codecs import from_grid
from attention_lab.datasets.store.meta import StoreMeta

FORMAT = "attention-lab-store"
# 3: one zip file; flat examples/{i}.{kind} arrays carrying the example's metadata
# 4: one chunk per layer; causal maps as their lower triangle; an optional sparse layout
# 5: long maps one chunk per head; sparse weights as grid steps, byte-shuffled
# 6: dense and lower-triangle weights on the grid as uint16 steps, blosc shuffle + lz4 or zstd
#    (reads 4, 5)
FORMAT_VERSION = 6
READABLE_VERSIONS = (4, 5, 6)
ZSTD_LEVEL = 1  # level 3 saves <1% of bytes on gridded float16 maps for 2.4x the CPU


@dataclass
class ExampleAttention:
    """One probe example: its token metadata and a ``[layers, heads, query, key]`` map per kind."""

    meta: dict[str, Any]  # id, tokens, token_ids, special_mask, ...
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    position: int | None = None  # index in the store (probe-set order); None: next free index
    # kinds whose maps hold whole uint16 grid steps k (the weight k / 2**bits) -> bits
    grid_bits: dict[str, int] = field(default_factory=dict)

    def weights(self, kind: str) -> np.ndarray:
        """The maps of ``kind`` as weights (grid steps decoded to float32)."""
        return from_grid(self.maps[kind], self.grid_bits.get(kind))


@dataclass
class LayerMaps:
    """One stored layer of one example's kind: ``[heads, query, key]``, handed to the writer
    as soon as extraction has it (long inputs never hold every layer at once)."""

    meta: dict[str, Any]
    position: int
    kind: str
    layer: int | None  # index among the stored layers; None: every layer, maps [L, H, Tq, Tk]
    maps: np.ndarray
    grid_bits: int | None = None  # maps hold whole uint16 grid steps k: weights k / 2**bits

    def weights(self) -> np.ndarray:
        """The maps as weights (grid steps decoded to float32)."""
        return from_grid(self.maps, self.grid_bits)


@dataclass
class AttentionStream:
    """What extraction hands to the catalog: store metadata and a lazy iterator of whole
    examples or of single layers."""

    meta: StoreMeta | dict[str, Any]
    examples: Iterable[ExampleAttention | LayerMaps]
    # the writer encodes on a thread of its own (True), or between the examples it is handed:
    # what a producer on the CPU asks for (see AttentionStoreWriter)
    background: bool = True


# blosc's byte shuffle then zstd: for the sparse layout's uint16 steps and weights, whose high
# bytes are nearly all alike (about 20% fewer bytes than zstd alone)
SHUFFLED_CODEC = {
    "name": "blosc",
    "configuration": {
        "cname": "zstd",
        "clevel": ZSTD_LEVEL,
        "shuffle": "shuffle",
        "typesize": 2,
        "blocksize": 0,
    },
}
SHUFFLER = numcodecs.Blosc(cname="zstd", clevel=ZSTD_LEVEL, shuffle=numcodecs.Blosc.SHUFFLE)
# blosc's byte shuffle then lz4: for dense grid steps, at a fifth of zstd's time (the store's
# encoding competes with the forward pass for the cores); bytes: see the module docstring
STEPS_CODEC = {
    "name": "blosc",
    "configuration": {
        "cname": "lz4",
        "clevel": 5,
        "shuffle": "shuffle",
        "typesize": 2,
        "blocksize": 0,
    },
}
STEPS_SHUFFLER = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def array_metadata(
    shape: tuple[int, ...],
    chunk: tuple[int, ...],
    dtype: np.dtype,
    attributes: dict | None = None,
    compressor: dict | None = None,
) -> bytes:
    """zarr v3 metadata for an array of ``chunk``-shaped chunks with bytes + zstd codecs
    (or bytes + ``compressor``: :data:`SHUFFLED_CODEC`, :data:`STEPS_CODEC`)."""
    compressor = compressor or {
        "name": "zstd",
        "configuration": {"level": ZSTD_LEVEL, "checksum": False},
    }
    return json.dumps(
        {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(shape),
            "data_type": np.dtype(dtype).name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk)}},
            "chunk_key_encoding": {
                "name": "v2",
                "configuration": {"separator": "."},
            },  # chunk files named "l.0.0"
            "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, compressor],
            "attributes": attributes or {},
            "dimension_names": None,
            "storage_transformers": [],
        }
    ).encode()


def group_metadata(attributes: dict) -> bytes:
    """zarr v3 metadata of a group, by zarr's own classes (twice a store: the root and
    ``examples``). An example's arrays keep :func:`array_metadata`'s JSON: zarr's classes cost
    11x as much per array, 5.8% of the extraction floor (``benchmarks/store_metadata.py``)."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import GroupMetadata

    document = GroupMetadata(attributes=attributes).to_buffer_dict(default_buffer_prototype())
    return document["zarr.json"].to_bytes()
