"""The attention store: one zarr v3 group per variant, one chunk per example and attention kind.

Layout (every node is standard zarr v3, readable with ``zarr.open_group``)::

    attention.zarr/
      zarr.json                      root attributes: format, version, model and mechanism metadata,
                                     example ids, ``complete: true`` (written last)
      examples/{i}/zarr.json         attributes: id, tokens, token_ids, special_mask, length(s)
      examples/{i}/{kind}/           [layers, heads, query, key], float16 (or float32), zstd,
                                     one chunk, no padding. kind: encoder | decoder | cross
      examples/{i}/{kind}_scale/     compact mode only: per-row scales [layers, heads, query]

float16 maps are first rounded to an absolute grid of ``2**-precision_bits`` (default 11,
see :func:`round_rows_to_grid`): every weight moves by less than one grid step (< 4.9e-4)
and every row keeps its sum, while small weights lose the relative precision that made
float16 incompressible: about 27% of float32 bytes instead of 45%. Every ``k / 2048`` below
1 is exact in float16. ``precision_bits: null`` keeps plain float16.

Compact mode stores each query row as uint8 ``q = round(w / s)`` with ``s = max(row) / 255``;
the reconstruction error of every weight is at most ``s / 2 = max(row) / 510 <= 1/510``.

Writing goes to a temporary path that is renamed when complete, so a crash never leaves a
store that looks finished. Arrays are encoded by a lean writer on a background thread
(zarr's per-array API costs milliseconds of metadata work per example); reads go through
zarr itself.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numcodecs
import numpy as np
import zarr
from kedro.io import AbstractDataset

from attention_lab.errors import ArtifactError

FORMAT = "attention-lab-store"
FORMAT_VERSION = 1
KINDS = ("encoder", "decoder", "cross")
_ZSTD_LEVEL = 3


@dataclass
class ExampleAttention:
    """One probe example: its token metadata and a ``[layers, heads, query, key]`` map per kind."""

    meta: dict[str, Any]  # id, tokens, token_ids, special_mask, ...
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    position: int | None = None  # index in the store (probe-set order); None: next free index


@dataclass
class AttentionStream:
    """What extraction hands to the catalog: store metadata and a lazy iterator of examples."""

    meta: dict[str, Any]
    examples: Iterable[ExampleAttention]


def _array_metadata(shape: tuple[int, ...], dtype: np.dtype, attributes: dict | None = None) -> bytes:
    """zarr v3 metadata for a single-chunk array with bytes + zstd codecs."""
    return json.dumps(
        {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(shape),
            "data_type": np.dtype(dtype).name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "zstd", "configuration": {"level": _ZSTD_LEVEL, "checksum": False}},
            ],
            "attributes": attributes or {},
            "dimension_names": None,
            "storage_transformers": [],
        }
    ).encode()


def _group_metadata(attributes: dict) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()


def round_rows_to_grid(weights: np.ndarray, bits: int) -> np.ndarray:
    """Round [..., Tq, Tk] weights to multiples of ``2**-bits`` keeping each row's (rounded) sum.

    Nearest rounding leaves each row some whole number of grid units short or over; those
    units go to the entries nearest to rounding the other way (largest remainders), so every
    weight moves by less than one unit and rows that summed to 1 still do, exactly.
    """
    grid = float(2**bits)
    shape = weights.shape
    scaled = weights.reshape(-1, shape[-1]).astype(np.float32) * grid  # (rows, Tk)
    rounded = np.rint(scaled)
    deficit = (np.rint(scaled.sum(axis=-1)) - rounded.sum(axis=-1)).astype(np.int64)  # (rows,)
    if deficit.any():
        remainder = scaled - rounded  # in [-0.5, 0.5]
        for d in np.unique(deficit[deficit != 0]):  # one vectorised pass per distinct deficit
            rows = np.flatnonzero(deficit == d)
            step, k = np.sign(d), abs(int(d))
            cols = np.argpartition(-step * remainder[rows], k - 1, axis=-1)[:, :k]
            rounded[rows[:, None], cols] += step
    return (rounded / grid).reshape(shape)


def quantize_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., Tq, Tk] float -> (uint8 codes, float32 scales [..., Tq]); error <= max(row)/510."""
    scale = weights.max(axis=-1).astype(np.float32) / 255.0  # (..., Tq)
    safe = np.where(scale > 0, scale, 1.0)[..., None]
    codes = np.rint(weights / safe).clip(0, 255).astype(np.uint8)
    return codes, scale


def dequantize_rows(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scale[..., None]


class AttentionStoreWriter:
    """Writes examples as they come (on a background thread) and publishes the store on close."""

    def __init__(self, path: str, meta: dict[str, Any], dtype: str = "float16", compact: bool = False,
                 precision_bits: int | None = 11, queue_size: int = 16):
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype: {dtype!r}; allowed: float16, float32.")
        if precision_bits is not None and not 8 <= precision_bits <= 23:
            raise ValueError(f"precision_bits: {precision_bits!r}; allowed: null or 8..23.")
        self.fs, self.path = fsspec.core.url_to_fs(path)
        if "file" in self.fs.protocol:  # local files need their parent folders made
            self.fs, self.path = fsspec.core.url_to_fs(path, auto_mkdir=True)
        self.final_url = path
        self.tmp = f"{self.path.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
        self.meta, self.dtype, self.compact = dict(meta), np.dtype(dtype), compact
        # the absolute grid only pays off for float16 (float32 is asked for when exact values matter)
        self.precision_bits = precision_bits if dtype == "float16" else None
        self._ids: dict[int, str] = {}
        self._codec = numcodecs.Zstd(level=_ZSTD_LEVEL)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)  # bounds memory
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="attention-store-writer", daemon=True)
        self._thread.start()

    # -- background encoding -------------------------------------------------------------
    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write_example(*item)
                except BaseException as exc:  # surfaced by add()/close()
                    self._error = exc

    def _put_array(self, files: dict[str, bytes], key: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        files[f"{key}/zarr.json"] = _array_metadata(array.shape, array.dtype)
        files[f"{key}/c/{'/'.join('0' * array.ndim)}"] = self._codec.encode(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())

    def _write_example(self, index: int, example: ExampleAttention) -> None:
        base = f"{self.tmp}/examples/{index}"
        files = {f"{base}/zarr.json": _group_metadata(example.meta)}
        for kind, weights in example.maps.items():
            if kind not in KINDS:
                raise ValueError(f"unknown attention kind {kind!r}; allowed: {KINDS}")
            if self.compact:
                codes, scale = quantize_rows(weights.astype(np.float32, copy=False))
                self._put_array(files, f"{base}/{kind}", codes)
                self._put_array(files, f"{base}/{kind}_scale", scale)
            else:
                if self.precision_bits is not None:
                    weights = round_rows_to_grid(weights, self.precision_bits)
                self._put_array(files, f"{base}/{kind}", weights.astype(self.dtype, copy=False))
        self.fs.pipe(files)

    # -- public ----------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [self._ids[i] for i in sorted(self._ids)]

    def add(self, example: ExampleAttention) -> None:
        if self._error is not None:
            raise self._error
        index = len(self._ids) if example.position is None else example.position
        if index in self._ids:
            raise ValueError(f"two examples claim position {index} in the store")
        self._ids[index] = str(example.meta["id"])
        self._queue.put((index, example))

    def close(self) -> None:
        """Finish writing, write the root metadata last, then rename into place."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if sorted(self._ids) != list(range(len(self._ids))):
            raise ValueError("store positions must cover 0..n-1 without gaps")
        self.fs.pipe({f"{self.tmp}/examples/zarr.json": _group_metadata({})})
        attrs = {
            **self.meta, "format": FORMAT, "format_version": FORMAT_VERSION, "dtype": self.dtype.name,
            "compact": self.compact, "precision_bits": self.precision_bits, "example_ids": self.ids, "num_examples": len(self.ids), "complete": True,
        }
        self.fs.pipe({f"{self.tmp}/zarr.json": _group_metadata(attrs)})
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)
        self.fs.mv(self.tmp, self.path, recursive=True)

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.fs.exists(self.tmp):
            self.fs.rm(self.tmp, recursive=True)


def write_store(path: str, stream: AttentionStream, dtype: str = "float16", compact: bool = False,
                precision_bits: int | None = 11) -> int:
    """Consume ``stream`` into a store at ``path``; returns the number of examples written."""
    writer = AttentionStoreWriter(path, stream.meta, dtype=dtype, compact=compact, precision_bits=precision_bits)
    try:
        for example in stream.examples:
            writer.add(example)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return len(writer.ids)


class AttentionStore:
    """A lazy, read-only handle: opening reads only the root metadata."""

    def __init__(self, path: str):
        self.path = path
        fs, inner = fsspec.core.url_to_fs(path)
        hint = "Run `kedro run --pipeline=attention_extraction` to (re)create it."
        if not fs.exists(f"{inner}/zarr.json"):
            stale = [p for p in fs.glob(f"{inner.rstrip('/')}.tmp-*")] if fs.exists(inner.rsplit("/", 1)[0] or "/") else []
            what = "an unfinished write was found beside it" if stale else "nothing is there"
            raise ArtifactError(f"No attention store at {path} ({what}). {hint}")
        try:
            self._root = zarr.open_group(path, mode="r")
            attrs = dict(self._root.attrs)
        except Exception as exc:
            raise ArtifactError(f"The attention store at {path} is corrupt ({type(exc).__name__}: {exc}). {hint}") from exc
        if attrs.get("format") != FORMAT:
            raise ArtifactError(f"{path} is not an Attention Lab attention store. {hint}")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{path} was written by store format {attrs.get('format_version')}, this version reads "
                f"format {FORMAT_VERSION}. {hint}"
            )
        if not attrs.get("complete"):
            raise ArtifactError(f"The attention store at {path} is incomplete. {hint}")
        self.meta: dict[str, Any] = attrs
        self.example_ids: list[str] = list(attrs["example_ids"])
        self._index = {eid: i for i, eid in enumerate(self.example_ids)}

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def kinds(self) -> list[str]:
        return list(self.meta.get("kinds", []))

    def index_of(self, example: int | str) -> int:
        if isinstance(example, str):
            if example not in self._index:
                raise KeyError(f"example {example!r} is not in this store ({len(self)} examples)")
            return self._index[example]
        if not 0 <= example < len(self):
            raise IndexError(f"example index {example} is out of range 0..{len(self) - 1}")
        return example

    def example_meta(self, example: int | str) -> dict[str, Any]:
        """Tokens, token ids, special-token mask and lengths of one example."""
        return dict(self._root[f"examples/{self.index_of(example)}"].attrs)

    def attention(self, example: int | str, kind: str | None = None, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """One example's map: ``[layers, heads, query, key]``, or a slice for ``layer``/``head``.

        ``layer`` and ``head`` index the *stored* layers and heads (see ``meta['layers']``).
        Reads this example's chunk and nothing else; returns float32.
        """
        kind = kind or self.kinds[0]
        if kind not in self.kinds:
            raise KeyError(f"attention kind {kind!r} is not in this store; present: {self.kinds}")
        group = f"examples/{self.index_of(example)}"
        selection = (slice(None) if layer is None else layer, slice(None) if head is None else head)
        values = self._root[f"{group}/{kind}"][selection]
        if self.meta.get("compact"):
            values = dequantize_rows(values, self._root[f"{group}/{kind}_scale"][selection])
        return np.asarray(values, dtype=np.float32)

    def iter_examples(self, kind: str | None = None) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        """Stream (meta, map) pairs one example at a time; memory stays flat."""
        for i in range(len(self)):
            yield self.example_meta(i), self.attention(i, kind)


class AttentionStoreDataset(AbstractDataset[AttentionStream, AttentionStore]):
    """Kedro dataset for ``{variant}.attention``: saves an :class:`AttentionStream`, loads an :class:`AttentionStore`."""

    def __init__(self, path: str, dtype: str = "float16", compact: bool = False, precision_bits: int | None = 11,
                 metadata: dict | None = None):
        self._path, self._dtype, self._compact, self._bits, self.metadata = path, dtype, compact, precision_bits, metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "dtype": self._dtype, "compact": self._compact, "precision_bits": self._bits}

    def _exists(self) -> bool:
        fs, inner = fsspec.core.url_to_fs(self._path)
        return fs.exists(f"{inner}/zarr.json")

    def load(self) -> AttentionStore:
        return AttentionStore(self._path)

    def save(self, data: AttentionStream) -> None:
        write_store(self._path, data, dtype=self._dtype, compact=self._compact, precision_bits=self._bits)
