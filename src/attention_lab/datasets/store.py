"""The attention store: a zipped zarr v3 group per variant, one chunk per example and attention kind.

Layout (members of ``attention.zarr.zip``, uncompressed; standard zarr v3, readable with
``zarr.open_group(zarr.storage.ZipStore(path, mode="r"))`` or ``"zip::<fsspec url>"``)::

    zarr.json                      root attributes: format, version, model and mechanism metadata,
                                   example ids, ``complete: true`` (written last)
    examples/{i}.{kind}/zarr.json  [layers, heads, query, key] float16 (or float32) array, zstd,
    examples/{i}.{kind}/0.0.0.0    one chunk, no padding; its attributes hold the example:
                                   id, tokens, token_ids, special_mask, length(s).
                                   kind: encoder | decoder | cross
    examples/{i}.{kind}_scale/     compact mode only: per-row scales [layers, heads, query]

Why one zip file rather than a folder of files: on the project's machines, creating a folder
and two files per example cost more than the forward pass saves (benchmarks/extraction.py);
a zip is written sequentially, renamed into place when complete (so a crash never leaves a
store that looks finished), and read by random access through its central directory.

Extraction rounds maps to an absolute grid of ``2**-precision_bits`` (default 11, see
:func:`round_rows_to_grid`; recorded as ``precision_bits``): every weight moves by less than
one grid step (< 4.9e-4) and every row keeps its sum, while small weights lose the relative
precision that made float16 incompressible: about 28% of float32 bytes instead of 45%.
Every ``k / 2048`` below 1 is exact in float16.

Compact mode stores each query row as uint8 ``q = round(w / s)`` with ``s = max(row) / 255``;
the reconstruction error of every weight is at most ``s / 2 = max(row) / 510 <= 1/510``.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numcodecs
import numpy as np
import zarr
from zarr.storage import ZipStore

from attention_lab.datasets.codecs import dequantize_rows, quantize_rows
from attention_lab.errors import ArtifactError
from attention_lab.kinds import STORED_KINDS as KINDS

FORMAT = "attention-lab-store"
FORMAT_VERSION = (
    3  # 3: one zip file; flat examples/{i}.{kind} arrays carrying the example's metadata
)
_ZSTD_LEVEL = 1  # level 3 saves <1% of bytes on gridded float16 maps for 2.4x the CPU


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


def _array_metadata(
    shape: tuple[int, ...], dtype: np.dtype, attributes: dict | None = None
) -> bytes:
    """zarr v3 metadata for a single-chunk array with bytes + zstd codecs."""
    return json.dumps(
        {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(shape),
            "data_type": np.dtype(dtype).name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
            "chunk_key_encoding": {
                "name": "v2",
                "configuration": {"separator": "."},
            },  # one flat chunk file
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


class AttentionStoreWriter:
    """Writes examples as they come (on a background thread) and publishes the store on close."""

    def __init__(
        self,
        path: str,
        meta: dict[str, Any],
        dtype: str = "float16",
        compact: bool = False,
        queue_size: int = 16,
    ):
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype: {dtype!r}; allowed: float16, float32.")
        self.fs, self.path = fsspec.core.url_to_fs(path)
        self.tmp = f"{self.path}.tmp-{uuid.uuid4().hex[:8]}"
        self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
        for stale in self.fs.glob(f"{self.path}.tmp-*"):  # left by a killed run
            self.fs.rm(stale)
        self._file = self.fs.open(self.tmp, "wb")
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_STORED)  # chunks are zstd already
        self.meta, self.dtype, self.compact = dict(meta), np.dtype(dtype), compact
        self._ids: dict[int, str] = {}
        self._codec = numcodecs.Zstd(level=_ZSTD_LEVEL)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)  # bounds memory
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._drain, name="attention-store-writer", daemon=True
        )
        self._thread.start()

    # -- background encoding -------------------------------------------------------------
    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write_example(*item)
                except BaseException as exc:  # surfaced by add()/close()
                    self._error = exc

    def _put_array(
        self, files: dict[str, bytes], key: str, array: np.ndarray, attributes: dict | None = None
    ) -> None:
        array = np.ascontiguousarray(array)
        files[f"{key}/zarr.json"] = _array_metadata(array.shape, array.dtype, attributes)
        files[f"{key}/{'.'.join('0' * array.ndim)}"] = self._codec.encode(
            array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        )

    def _write_example(self, index: int, example: ExampleAttention) -> None:
        files: dict[str, bytes] = {}
        for kind, weights in example.maps.items():
            if kind not in KINDS:
                raise ValueError(f"unknown attention kind {kind!r}; allowed: {KINDS}")
            key = f"examples/{index}.{kind}"
            if self.compact:
                codes, scale = quantize_rows(weights.astype(np.float32, copy=False))
                self._put_array(files, key, codes, example.meta)
                self._put_array(files, f"{key}_scale", scale)
            else:
                self._put_array(files, key, weights.astype(self.dtype, copy=False), example.meta)
        self._pipe(files)

    def _pipe(self, files: dict[str, bytes]) -> None:
        for name, payload in files.items():
            self._zip.writestr(name, payload)

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
        self._pipe({"examples/zarr.json": _group_metadata({})})
        attrs = {
            **self.meta,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "compact": self.compact,
            "precision_bits": self.meta.get("precision_bits"),
            "example_ids": self.ids,
            "num_examples": len(self.ids),
            "complete": True,
        }
        self._pipe({"zarr.json": _group_metadata(attrs)})
        self._zip.close()
        self._file.close()
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)
        self.fs.mv(self.tmp, self.path)

    def abort(self) -> None:
        """Stop and remove the partial file; closing may fail too (a full disk), and is ignored."""
        self._queue.put(None)
        self._thread.join()
        for close in (self._zip.close, self._file.close):
            try:
                close()
            except (OSError, ValueError):
                pass
        if self.fs.exists(self.tmp):
            self.fs.rm(self.tmp)


def write_store(
    path: str, stream: AttentionStream, dtype: str = "float16", compact: bool = False
) -> int:
    """Consume ``stream`` into a store at ``path``; returns the number of examples written."""
    writer = AttentionStoreWriter(path, stream.meta, dtype=dtype, compact=compact)
    try:
        for example in stream.examples:
            writer.add(example)
        writer.close()
    except OSError as exc:  # a full disk, a lost mount, no permission
        writer.abort()
        raise ArtifactError(
            f"Could not write the attention store {path}: {exc.strerror or exc}. Nothing was "
            "kept; free space or point data_root in globals.yml at a writable place, then rerun."
        ) from exc
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
        if not fs.isfile(inner):
            stale = fs.glob(f"{inner}.tmp-*") if fs.exists(fs._parent(inner)) else []
            what = "an unfinished write was found beside it" if stale else "nothing is there"
            raise ArtifactError(f"No attention store at {path} ({what}). {hint}")
        try:
            store = ZipStore(inner, mode="r") if "file" in fs.protocol else f"zip::{path}"
            self._root = zarr.open_group(store, mode="r")
            attrs = dict(self._root.attrs)
        except Exception as exc:
            raise ArtifactError(
                f"The attention store at {path} is corrupt ({type(exc).__name__}: {exc}). {hint}"
            ) from exc
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
        return dict(self._root[f"examples/{self.index_of(example)}.{self.kinds[0]}"].attrs)

    def attention(
        self,
        example: int | str,
        kind: str | None = None,
        layer: int | None = None,
        head: int | None = None,
    ) -> np.ndarray:
        """One example's map: ``[layers, heads, query, key]``, or a slice for ``layer``/``head``.

        ``layer`` and ``head`` index the *stored* layers and heads (see ``meta['layers']``).
        Reads this example's chunk and nothing else; returns float32.
        """
        kind = kind or self.kinds[0]
        if kind not in self.kinds:
            raise KeyError(f"attention kind {kind!r} is not in this store; present: {self.kinds}")
        key = f"examples/{self.index_of(example)}.{kind}"
        selection = (slice(None) if layer is None else layer, slice(None) if head is None else head)
        values = self._root[key][selection]
        if self.meta.get("compact"):
            values = dequantize_rows(values, self._root[f"{key}_scale"][selection])
        return np.asarray(values, dtype=np.float32)
