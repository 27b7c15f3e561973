"""Writing a store: layers encoded on a background thread, the zip renamed into place when
complete (so a crash never leaves a store that looks finished)."""

from __future__ import annotations

import io
import queue
import threading
import uuid
import zipfile
from dataclasses import replace
from typing import Any

import fsspec
import numcodecs
import numpy as np

from attention_lab.datasets.codecs import on_grid, pack_lower, quantize_rows, top_mass
from attention_lab.datasets.store.format import (
    FORMAT,
    FORMAT_VERSION,
    SHUFFLED_CODEC,
    SHUFFLER,
    STEPS_CODEC,
    STEPS_SHUFFLER,
    ZSTD_LEVEL,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
    array_metadata,
    group_metadata,
)
from attention_lab.datasets.store.meta import StoreMeta
from attention_lab.errors import ArtifactError
from attention_lab.kinds import STORED_KINDS as KINDS


class _Sequential(io.RawIOBase):
    """A file that is written front to back only: it tells its position but cannot seek, so
    zipfile writes each member once, its sizes in a descriptor after the data, instead of
    going back to patch every header (a flush and two seeks per member). For 256 short
    examples the zip's share of writing fell from about 70 ms to 45-57 ms."""

    def __init__(self, file):
        self._file, self._written = file, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._file.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written


class AttentionStoreWriter:
    """Writes layers as they come and publishes the store on close.

    ``sparse_mass``: keep, per query row, the fewest keys holding that share of its weight
    (``layout: sparse``); otherwise causal square maps keep their lower triangle
    (``lower_triangle``) and the rest are dense. ``background``: encode on a thread of its
    own, beside the producer (a forward pass on an accelerator leaves the CPU free); else in
    the caller's thread, as each piece is added (on the CPU, torch's threads already hold
    every core, and a writer thread beside them makes each of their parallel steps wait).
    """

    def __init__(
        self,
        path: str,
        meta: StoreMeta | dict[str, Any],
        dtype: str = "float16",
        compact: bool = False,
        sparse_mass: float | None = None,
        queue_bytes: int = 64 * 2**20,
        storage_options: dict[str, Any] | None = None,
        background: bool = True,
    ):
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype: {dtype!r}; allowed: float16, float32.")
        if sparse_mass is not None and not 0 < sparse_mass <= 1:
            raise ValueError(f"sparse_mass: {sparse_mass!r}; a share of each row, in (0, 1].")
        self.fs, self.path = fsspec.core.url_to_fs(path, **(storage_options or {}))
        self.tmp = f"{self.path}.tmp-{uuid.uuid4().hex[:8]}"
        self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
        for stale in self.fs.glob(f"{self.path}.tmp-*"):  # left by a killed run
            self.fs.rm(stale)
        self._file = self.fs.open(self.tmp, "wb")
        # members stored as they are (chunks are compressed already), written front to back
        self._out = io.BufferedWriter(_Sequential(self._file), buffer_size=2**20)
        self._zip = zipfile.ZipFile(self._out, "w", zipfile.ZIP_STORED)
        self.meta, self.dtype, self.compact = StoreMeta.of(meta), np.dtype(dtype), compact
        self.sparse_mass = sparse_mass
        self.num_layers = int(self.meta.num_layers or len(self.meta.layers)) or None
        self._ids: dict[int, str] = {}
        self._layers_written: dict[tuple[int, str], int] = {}  # (position, kind) -> layers
        self._codec = numcodecs.Zstd(level=ZSTD_LEVEL)
        # bounds what waits to be written: 16 pieces, and 64 MB for long inputs' large layers
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._queued = threading.Condition()
        self._queued_bytes, self._queue_budget = 0, queue_bytes
        self._error: BaseException | None = None
        self._thread = None
        if background:
            self._thread = threading.Thread(
                target=self._drain, name="attention-store-writer", daemon=True
            )
            self._thread.start()

    # -- background encoding -------------------------------------------------------------
    def _drain(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write_layer(piece)
                except BaseException as exc:  # surfaced by add()/close()
                    self._error = exc
            with self._queued:
                self._queued_bytes -= piece.maps.nbytes
                self._queued.notify_all()

    def _chunk(self, key: str, prefix: list[int], array: np.ndarray, shuffler=None):
        """(member name, bytes) of chunk "l.h.0" of a layer-and-head-chunked array, or
        "0.0.0.0" of a single-chunk array: zstd, or blosc's ``shuffler`` for grid steps."""
        name = ".".join([*map(str, prefix), *["0"] * array.ndim])
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
        # blosc takes its shuffle's element size from the buffer: the array, not its bytes
        payload = shuffler.encode(data) if shuffler else self._codec.encode(data.tobytes())
        return f"{key}/{name}", payload

    def _write_layer(self, piece: LayerMaps) -> None:
        if piece.kind not in KINDS:
            raise ValueError(f"unknown attention kind {piece.kind!r}; allowed: {KINDS}")
        if piece.grid_bits is not None and (self.compact or self.sparse_mass is not None):
            # these layouts re-encode the weights themselves
            piece = replace(piece, maps=piece.weights(), grid_bits=None)
        key = f"examples/{piece.position}.{piece.kind}"
        first = (piece.position, piece.kind) not in self._layers_written
        if piece.layer is not None:  # whole examples are complete by construction
            self._layers_written[piece.position, piece.kind] = (
                self._layers_written.get((piece.position, piece.kind), 0) + 1
            )
        n_query, n_key = piece.maps.shape[-2:]
        attributes = {**piece.meta, "query_length": n_query, "key_length": n_key}
        files: dict[str, bytes] = {}
        if self.sparse_mass is not None:
            layers = (
                [piece]
                if piece.layer is not None
                else [
                    LayerMaps(piece.meta, piece.position, piece.kind, i, maps)
                    for i, maps in enumerate(piece.maps)
                ]
            )
            for i, layer in enumerate(layers):
                self._sparse_layer(files, key, layer, attributes if first and i == 0 else None)
        else:
            triangle = self.meta.is_causal(piece.kind) and n_query == n_key
            attributes["layout"] = "lower_triangle" if triangle else "dense"
            if self.compact:
                codes, scale = quantize_rows(piece.maps.astype(np.float32, copy=False))
                self._dense_array(
                    files, f"{key}_scale", piece.kind, piece.layer, scale, None, first
                )
                values = codes
            elif piece.grid_bits is not None:  # whole steps k of k / 2**grid_bits, uint16
                attributes["grid_bits"] = piece.grid_bits
                values = piece.maps
            else:
                values = piece.maps.astype(self.dtype, copy=False)
            if triangle:
                values = pack_lower(values)
            self._dense_array(files, key, piece.kind, piece.layer, values, attributes, first)
        self._pipe(files)

    def _layers_of(self, kind: str) -> int:
        layers = self.num_layers
        if layers is None:
            raise ValueError("store metadata needs num_layers (or layers) to stream single layers")
        return layers

    def _dense_array(self, files, key, kind, layer, values, attributes, first) -> None:
        """Layer ``layer`` of a [layers, heads, ...] array chunked one head of one layer at a
        time (long maps: a head is read without the other heads), or (``layer`` None) the
        whole [layers, heads, ...] array as one chunk (short maps: fewest files)."""
        pieces = (
            [([], values)] if layer is None else [([layer, h], v) for h, v in enumerate(values)]
        )
        # grid steps: blosc, which takes at most 2 GiB a buffer (plain zstd above). Whole
        # examples (short maps, whose encoding competes with a short forward pass) use lz4;
        # one head of a streamed layer (long maps, where bytes matter more) zstd
        steps = bool(attributes and "grid_bits" in attributes) and all(
            piece.nbytes < 2**31 - 16 for _, piece in pieces
        )
        codec, shuffler = (
            (STEPS_CODEC, STEPS_SHUFFLER) if layer is None else (SHUFFLED_CODEC, SHUFFLER)
        )
        if not steps:
            codec = shuffler = None
        if first:
            shape, chunk = values.shape, values.shape
            if layer is not None:
                shape, chunk = (self._layers_of(kind), *values.shape), (1, 1, *values.shape[1:])
            files[f"{key}/zarr.json"] = array_metadata(
                shape, chunk, values.dtype, attributes, codec
            )
        for prefix, piece in pieces:
            name, payload = self._chunk(key, prefix, piece, shuffler)
            files[name] = payload

    def _sparse_layer(self, files, key, piece: LayerMaps, attributes) -> None:
        """One layer as compressed rows over its (head, query) rows: keys kept per row, their
        positions as steps, their weights (float16, or whole grid steps when every weight is
        on the extraction's grid), and the weight each row left out."""
        heads, n_query, n_key = piece.maps.shape
        rows = piece.maps.astype(np.float16, copy=False).reshape(heads * n_query, n_key)
        counts, steps, values, dropped = top_mass(rows, self.sparse_mass)
        values, grid = on_grid(values, self.meta.precision_bits)
        if attributes is not None:
            files[f"{key}/zarr.json"] = group_metadata(
                {**attributes, "layout": "sparse", "sparse_mass": self.sparse_mass}
            )
        for name, array, extra in (
            ("counts", counts, None),
            ("steps", steps, None),
            ("values", values, {"grid_bits": grid} if grid is not None else None),
            ("dropped", dropped.reshape(heads, n_query), None),
        ):
            array = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
            shuffled = (  # blosc takes at most 2 GiB a buffer: plain zstd above
                name in ("steps", "values")
                and array.dtype.itemsize == 2
                and array.nbytes < 2**31 - 16
            )
            files[f"{key}/{piece.layer}.{name}/zarr.json"] = array_metadata(
                array.shape, array.shape, array.dtype, extra, SHUFFLED_CODEC if shuffled else None
            )
            payload = SHUFFLER.encode(array) if shuffled else self._codec.encode(array.tobytes())
            chunk_name = ".".join(["0"] * array.ndim)
            files[f"{key}/{piece.layer}.{name}/{chunk_name}"] = payload

    def _pipe(self, files: dict[str, bytes]) -> None:
        for name, payload in files.items():
            self._zip.writestr(name, payload)

    # -- public ----------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [self._ids[i] for i in sorted(self._ids)]

    def add(self, item: ExampleAttention | LayerMaps) -> None:
        """A whole example (every layer of every kind) or one layer of one kind."""
        if isinstance(item, ExampleAttention):
            index = len(self._ids) if item.position is None else item.position
            if index in self._ids:
                raise ValueError(f"two examples claim position {index} in the store")
            for kind, maps in item.maps.items():  # one chunk per kind: fewest files, fastest
                self.add(LayerMaps(item.meta, index, kind, None, maps, item.grid_bits.get(kind)))
            return
        if self._error is not None:
            raise self._error
        self._ids.setdefault(item.position, str(item.meta["id"]))
        if self._thread is None:
            self._write_layer(item)
            return
        with self._queued:  # wait while too many bytes are queued: memory stays bounded
            self._queued.wait_for(lambda: self._queued_bytes < self._queue_budget)
            self._queued_bytes += item.maps.nbytes
        self._queue.put(item)

    def close(self) -> None:
        """Finish writing, write the root metadata last, then rename into place."""
        self._stop_thread()
        if self._error is not None:
            raise self._error
        if sorted(self._ids) != list(range(len(self._ids))):
            raise ArtifactError(
                f"The attention store {self.path} would have gaps between its examples; "
                "nothing was kept. Rerun the extraction."
            )
        missing = {
            (position, kind): n
            for (position, kind), n in self._layers_written.items()
            if n != self._layers_of(kind)
        }
        if missing:
            raise ArtifactError(
                f"The attention store {self.path} would miss layers of some examples "
                f"(position, kind -> layers written: {missing}); nothing was kept. Rerun the extraction."
            )
        self._pipe({"examples/zarr.json": group_metadata({})})
        attrs = {
            **self.meta.extraction_attrs(),
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "compact": self.compact,
            "sparse_mass": self.sparse_mass,
            "precision_bits": self.meta.precision_bits,
            "example_ids": self.ids,
            "num_examples": len(self.ids),
            "complete": True,
        }
        self._pipe({"zarr.json": group_metadata(attrs)})
        self._zip.close()
        self._out.flush()
        self._file.close()
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)
        self.fs.mv(self.tmp, self.path)

    def _stop_thread(self) -> None:
        """Let the background thread write what is queued, and end it."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    def abort(self) -> None:
        """Stop and remove the partial file; closing may fail too (a full disk), and is ignored."""
        self._stop_thread()
        for close in (self._zip.close, self._out.flush, self._file.close):
            try:
                close()
            except (OSError, ValueError):
                pass
        if self.fs.exists(self.tmp):
            self.fs.rm(self.tmp)


def write_store(
    path: str,
    stream: AttentionStream,
    dtype: str = "float16",
    compact: bool = False,
    sparse_mass: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> int:
    """Consume ``stream`` into a store at ``path`` (a local path or any fsspec URL, opened
    with ``storage_options``); returns the number of examples written."""
    writer = None
    try:
        writer = AttentionStoreWriter(
            path,
            stream.meta,
            dtype,
            compact,
            sparse_mass,
            storage_options=storage_options,
            background=stream.background,
        )
        for example in stream.examples:
            writer.add(example)
        writer.close()
    except OSError as exc:  # a full disk, a lost mount, no permission
        _stop(writer, stream)
        raise ArtifactError(
            f"Could not write the attention store {path}: {exc.strerror or exc}. Nothing was "
            "kept; free space or point data_root in globals.yml at a writable place, then rerun."
        ) from exc
    except BaseException:
        _stop(writer, stream)
        raise
    return len(writer.ids)


def _stop(writer: AttentionStoreWriter | None, stream: AttentionStream) -> None:
    """Remove the partial file, and stop the producer (a streaming forward pass) too."""
    if writer is not None:
        writer.abort()
    close = getattr(stream.examples, "close", None)  # a generator: runs its finally blocks
    if close is not None:
        close()
