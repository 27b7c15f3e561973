"""The attention store: a zipped zarr v3 group per variant, one chunk per example and attention kind.

Layout (members of ``attention.zarr.zip``, uncompressed; standard zarr v3, readable with
``zarr.open_group(zarr.storage.ZipStore(path, mode="r"))`` or ``"zip::<fsspec url>"``)::

    zarr.json                      root attributes: format, version, model and mechanism metadata,
                                   example ids, ``complete: true`` (written last)
    examples/{i}.{kind}/zarr.json  the example's maps of one kind, zstd, no padding; attributes:
                                   id, tokens, token_ids, special_mask, query_length, key_length,
                                   layout. kind: encoder | decoder | cross (+ ``_norm``)
    examples/{i}.{kind}/{l}.{h}.…  one chunk per layer and head, written as soon as that layer is
                                   known (whole examples of short inputs: one chunk ``0.0.0.0``):
        layout ``dense``:          [layers, heads, query, key] float16 (or float32)
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

from attention_lab.datasets.codecs import (
    dequantize_rows,
    from_grid,
    from_top_mass,
    on_grid,
    pack_lower,
    quantize_rows,
    top_mass,
    unpack_lower,
)
from attention_lab.errors import ArtifactError
from attention_lab.kinds import STORED_KINDS as KINDS

FORMAT = "attention-lab-store"
# 3: one zip file; flat examples/{i}.{kind} arrays carrying the example's metadata
# 4: one chunk per layer; causal maps as their lower triangle; an optional sparse layout
# 5: long maps one chunk per head; sparse weights as grid steps, byte-shuffled (reads 4 too)
FORMAT_VERSION = 5
READABLE_VERSIONS = (4, 5)
_ZSTD_LEVEL = 1  # level 3 saves <1% of bytes on gridded float16 maps for 2.4x the CPU


@dataclass
class ExampleAttention:
    """One probe example: its token metadata and a ``[layers, heads, query, key]`` map per kind."""

    meta: dict[str, Any]  # id, tokens, token_ids, special_mask, ...
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    position: int | None = None  # index in the store (probe-set order); None: next free index


@dataclass
class LayerMaps:
    """One stored layer of one example's kind: ``[heads, query, key]``, handed to the writer
    as soon as extraction has it (long inputs never hold every layer at once)."""

    meta: dict[str, Any]
    position: int
    kind: str
    layer: int | None  # index among the stored layers; None: every layer, maps [L, H, Tq, Tk]
    maps: np.ndarray


@dataclass
class AttentionStream:
    """What extraction hands to the catalog: store metadata and a lazy iterator of whole
    examples or of single layers."""

    meta: dict[str, Any]
    examples: Iterable[ExampleAttention | LayerMaps]


# blosc's byte shuffle then zstd: for the sparse layout's uint16 steps and weights, whose high
# bytes are nearly all alike (about 20% fewer bytes than zstd alone)
_SHUFFLED = {
    "name": "blosc",
    "configuration": {
        "cname": "zstd",
        "clevel": _ZSTD_LEVEL,
        "shuffle": "shuffle",
        "typesize": 2,
        "blocksize": 0,
    },
}
_SHUFFLER = numcodecs.Blosc(cname="zstd", clevel=_ZSTD_LEVEL, shuffle=numcodecs.Blosc.SHUFFLE)


def _array_metadata(
    shape: tuple[int, ...],
    chunk: tuple[int, ...],
    dtype: np.dtype,
    attributes: dict | None = None,
    shuffled: bool = False,
) -> bytes:
    """zarr v3 metadata for an array of ``chunk``-shaped chunks with bytes + zstd codecs
    (``shuffled``: bytes + blosc's shuffle and zstd)."""
    compressor = (
        _SHUFFLED
        if shuffled
        else {"name": "zstd", "configuration": {"level": _ZSTD_LEVEL, "checksum": False}}
    )
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


def _group_metadata(attributes: dict) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()


class AttentionStoreWriter:
    """Writes layers as they come (on a background thread) and publishes the store on close.

    ``sparse_mass``: keep, per query row, the fewest keys holding that share of its weight
    (``layout: sparse``); otherwise causal square maps keep their lower triangle
    (``lower_triangle``) and the rest are dense.
    """

    def __init__(
        self,
        path: str,
        meta: dict[str, Any],
        dtype: str = "float16",
        compact: bool = False,
        sparse_mass: float | None = None,
        queue_bytes: int = 64 * 2**20,
        storage_options: dict[str, Any] | None = None,
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
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_STORED)  # chunks are zstd already
        self.meta, self.dtype, self.compact = dict(meta), np.dtype(dtype), compact
        self.sparse_mass = sparse_mass
        self.num_layers = int(meta.get("num_layers") or len(meta.get("layers") or [])) or None
        self._ids: dict[int, str] = {}
        self._layers_written: dict[tuple[int, str], int] = {}  # (position, kind) -> layers
        self._codec = numcodecs.Zstd(level=_ZSTD_LEVEL)
        # bounds what waits to be written: 16 pieces, and 64 MB for long inputs' large layers
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._queued = threading.Condition()
        self._queued_bytes, self._queue_budget = 0, queue_bytes
        self._error: BaseException | None = None
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

    def _chunk(self, key: str, prefix: list[int], array: np.ndarray) -> tuple[str, bytes]:
        # chunk "l.h.0" of a layer-and-head-chunked array; "0.0.0.0" of a single-chunk array
        name = ".".join([*map(str, prefix), *["0"] * array.ndim])
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
        return f"{key}/{name}", self._codec.encode(data.tobytes())

    def _write_layer(self, piece: LayerMaps) -> None:
        if piece.kind not in KINDS:
            raise ValueError(f"unknown attention kind {piece.kind!r}; allowed: {KINDS}")
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
            triangle = bool(self.meta.get("causal", {}).get(piece.kind)) and n_query == n_key
            attributes["layout"] = "lower_triangle" if triangle else "dense"
            if self.compact:
                codes, scale = quantize_rows(piece.maps.astype(np.float32, copy=False))
                self._dense_array(
                    files, f"{key}_scale", piece.kind, piece.layer, scale, None, first
                )
                values = codes
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
        if first and layer is None:
            files[f"{key}/zarr.json"] = _array_metadata(
                values.shape, values.shape, values.dtype, attributes
            )
        elif first:
            shape = (self._layers_of(kind), *values.shape)
            chunk = (1, 1, *values.shape[1:])
            files[f"{key}/zarr.json"] = _array_metadata(shape, chunk, values.dtype, attributes)
        pieces = (
            [([], values)] if layer is None else [([layer, h], v) for h, v in enumerate(values)]
        )
        for prefix, piece in pieces:
            name, payload = self._chunk(key, prefix, piece)
            files[name] = payload

    def _sparse_layer(self, files, key, piece: LayerMaps, attributes) -> None:
        """One layer as compressed rows over its (head, query) rows: keys kept per row, their
        positions as steps, their weights (float16, or whole grid steps when every weight is
        on the extraction's grid), and the weight each row left out."""
        heads, n_query, n_key = piece.maps.shape
        rows = piece.maps.astype(np.float16, copy=False).reshape(heads * n_query, n_key)
        counts, steps, values, dropped = top_mass(rows, self.sparse_mass)
        values, grid = on_grid(values, self.meta.get("precision_bits"))
        if attributes is not None:
            files[f"{key}/zarr.json"] = _group_metadata(
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
            files[f"{key}/{piece.layer}.{name}/zarr.json"] = _array_metadata(
                array.shape, array.shape, array.dtype, extra, shuffled
            )
            # blosc takes its shuffle's element size from the buffer: the array, not its bytes
            payload = _SHUFFLER.encode(array) if shuffled else self._codec.encode(array.tobytes())
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
                self.add(LayerMaps(item.meta, index, kind, None, maps))
            return
        if self._error is not None:
            raise self._error
        self._ids.setdefault(item.position, str(item.meta["id"]))
        with self._queued:  # wait while too many bytes are queued: memory stays bounded
            self._queued.wait_for(lambda: self._queued_bytes < self._queue_budget)
            self._queued_bytes += item.maps.nbytes
        self._queue.put(item)

    def close(self) -> None:
        """Finish writing, write the root metadata last, then rename into place."""
        self._queue.put(None)
        self._thread.join()
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
        self._pipe({"examples/zarr.json": _group_metadata({})})
        attrs = {
            **self.meta,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "compact": self.compact,
            "sparse_mass": self.sparse_mass,
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
            path, stream.meta, dtype, compact, sparse_mass, storage_options=storage_options
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


class AttentionStore:
    """A lazy, read-only handle: opening reads only the root metadata."""

    def __init__(self, path: str, storage_options: dict[str, Any] | None = None):
        self.path = path
        options = storage_options or {}
        fs, inner = fsspec.core.url_to_fs(path, **options)
        hint = "Run `kedro run --pipeline=attention_extraction` to (re)create it."
        if not fs.isfile(inner):
            stale = fs.glob(f"{inner}.tmp-*") if fs.exists(fs._parent(inner)) else []
            what = "an unfinished write was found beside it" if stale else "nothing is there"
            raise ArtifactError(f"No attention store at {path} ({what}). {hint}")
        try:
            if "file" in fs.protocol:
                self._root = zarr.open_group(ZipStore(inner, mode="r"), mode="r")
            else:  # the zip read in ranges through fsspec; options go to the outer protocol
                remote = {path.split("://", 1)[0]: options} if options else None
                self._root = zarr.open_group(f"zip::{path}", mode="r", storage_options=remote)
            attrs = dict(self._root.attrs)
        except Exception as exc:
            raise ArtifactError(
                f"The attention store at {path} is corrupt ({type(exc).__name__}: {exc}). {hint}"
            ) from exc
        if attrs.get("format") != FORMAT:
            raise ArtifactError(f"{path} is not an Attention Lab attention store. {hint}")
        if attrs.get("format_version") not in READABLE_VERSIONS:
            raise ArtifactError(
                f"{path} was written by store format {attrs.get('format_version')}, this version reads "
                f"formats {' and '.join(map(str, READABLE_VERSIONS))}. {hint}"
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
        node = self._root[key]
        attrs = node.attrs
        if attrs.get("layout") == "sparse":
            return self._sparse(node, attrs, layer, head)
        selection = (slice(None) if layer is None else layer, slice(None) if head is None else head)
        values = node[selection]
        compact = self.meta.get("compact")
        if not compact:  # float16 -> float32 on the packed triangle: half the cells of the map
            values = np.asarray(values, dtype=np.float32)
        if attrs.get("layout") == "lower_triangle":
            values = unpack_lower(values, attrs["query_length"])
        if compact:
            values = dequantize_rows(values, self._root[f"{key}_scale"][selection])
        return np.asarray(values, dtype=np.float32)

    def mean_over_heads(self, example: int | str, kind: str | None = None, layer: int = 0):
        """[query, key]: the mean of one layer's stored heads. A lower triangle is averaged
        packed, then unpacked once: at 2,048 tokens several times faster than
        ``attention(example, kind, layer).mean(0)``, which it equals."""
        kind = kind or self.kinds[0]
        if kind in self.kinds and not self.meta.get("compact"):
            node = self._root[f"examples/{self.index_of(example)}.{kind}"]
            if node.attrs.get("layout") == "lower_triangle":
                packed = np.mean(node[layer], axis=0, dtype=np.float32)  # [heads, T] -> [T]
                return unpack_lower(packed, node.attrs["query_length"])
        return self.attention(example, kind, layer).mean(axis=0)  # its errors for a wrong kind

    def _sparse(self, group, attrs, layer: int | None, head: int | None) -> np.ndarray:
        """Dense maps from the CSR rows of each requested layer (left-out weight is 0)."""
        layers = range(self.layers_of(group)) if layer is None else [layer]
        n_query, n_key = attrs["query_length"], attrs["key_length"]
        out = []
        for li in layers:
            counts, steps = group[f"{li}.counts"][:], group[f"{li}.steps"][:]
            stored = group[f"{li}.values"]
            values = from_grid(stored[:], stored.attrs.get("grid_bits"))
            if head is not None:  # decode that head's rows only: each row stands alone
                head = range(len(counts) // n_query)[head]  # -1: the last; out of range: error
                rows = slice(head * n_query, (head + 1) * n_query)
                start = int(counts[: rows.start].sum(dtype=np.int64))
                end = start + int(counts[rows].sum(dtype=np.int64))
                counts, steps, values = counts[rows], steps[start:end], values[start:end]
            maps = from_top_mass(counts, steps, values, n_key).reshape(-1, n_query, n_key)
            out.append(maps if head is None else maps[0])
        return out[0] if layer is not None else np.stack(out)

    def layers_of(self, group) -> int:
        """How many layers a sparse example holds (its ``{l}.counts`` members)."""
        return sum(1 for name in group.array_keys() if name.endswith(".counts"))

    def dropped_mass(self, example: int | str, kind: str | None = None) -> np.ndarray | None:
        """Sparse stores: the weight each row left out, [layers, heads, query]; else None."""
        kind = kind or self.kinds[0]
        group = self._root[f"examples/{self.index_of(example)}.{kind}"]
        if group.attrs.get("layout") != "sparse":
            return None
        return np.stack([group[f"{li}.dropped"][:] for li in range(self.layers_of(group))])


def shard_path(path: str, index: int, count: int) -> str:
    """Where shard ``index`` of ``count`` of the store at ``path`` is written."""
    return f"{path.removesuffix('.zarr.zip')}.shard-{index}-of-{count}.zarr.zip"


def shard_paths(path: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Every shard file written beside ``path`` (any count), as URLs like ``path``."""
    fs, inner = fsspec.core.url_to_fs(path, **(storage_options or {}))
    found = fs.glob(f"{inner.removesuffix('.zarr.zip')}.shard-*-of-*.zarr.zip")
    prefix = path[: len(path) - len(inner)] if path.endswith(inner) else ""
    return sorted(prefix + f for f in found)


class ShardedStore:
    """Several shard stores read as one, in probe-set order (shard 0's examples first).

    Refuses a set that is not exactly shards 0..n-1 of one count, or whose shards share
    an example."""

    def __init__(self, paths: list[str], storage_options: dict[str, Any] | None = None):
        stores = [AttentionStore(p, storage_options) for p in paths]
        shards = [s.meta.get("shard") or {} for s in stores]
        counts = {shard.get("count") for shard in shards}
        indices = sorted(shard.get("index") for shard in shards)
        hint = "Re-run the missing shards, or remove the stray files, then rerun the analysis."
        if len(counts) != 1 or None in counts or indices != list(range(counts.pop())):
            found = sorted(f"{s.get('index')} of {s.get('count')}" for s in shards)
            raise ArtifactError(
                f"Attention store shards beside {paths[0]} are not one complete set "
                f"(found shards {', '.join(found)}). {hint}"
            )
        fingerprints = {json.dumps(_fingerprint(s.meta), sort_keys=True) for s in stores}
        if len(fingerprints) != 1:
            raise ArtifactError(
                f"Attention store shards beside {paths[0]} come from different runs (model, "
                f"variant, mechanism, layers, heads or probe set differ). {hint}"
            )
        self.shards = sorted(stores, key=lambda s: s.meta["shard"]["index"])
        self.example_ids = [eid for store in self.shards for eid in store.example_ids]
        if len(set(self.example_ids)) != len(self.example_ids):
            raise ArtifactError(f"Attention store shards beside {paths[0]} share examples. {hint}")
        self.path = paths[0]
        self.meta = {**self.shards[0].meta, "example_ids": self.example_ids, "shard": None}
        self.meta["num_examples"] = len(self.example_ids)
        self._where = {
            eid: (store, i) for store in self.shards for i, eid in enumerate(store.example_ids)
        }
        self._index = {eid: i for i, eid in enumerate(self.example_ids)}

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def kinds(self) -> list[str]:
        return list(self.meta.get("kinds", []))

    def _locate(self, example: int | str) -> tuple[AttentionStore, int]:
        if isinstance(example, int):
            if not 0 <= example < len(self):
                raise IndexError(f"example index {example} is out of range 0..{len(self) - 1}")
            example = self.example_ids[example]
        if example not in self._where:
            raise KeyError(f"example {example!r} is not in this store ({len(self)} examples)")
        return self._where[example]

    def index_of(self, example: int | str) -> int:
        store, local = self._locate(example)
        return self._index[store.example_ids[local]]

    def example_meta(self, example: int | str) -> dict[str, Any]:
        store, local = self._locate(example)
        return store.example_meta(local)

    def attention(self, example, kind=None, layer=None, head=None) -> np.ndarray:
        store, local = self._locate(example)
        return store.attention(local, kind, layer, head)

    def mean_over_heads(self, example, kind=None, layer=0) -> np.ndarray:
        store, local = self._locate(example)
        return store.mean_over_heads(local, kind, layer)

    def dropped_mass(self, example, kind=None):
        store, local = self._locate(example)
        return store.dropped_mass(local, kind)


def _fingerprint(meta: dict[str, Any]) -> dict[str, Any]:
    """What every shard of one extraction shares: the model and what was extracted."""
    keys = ("variant", "seed", "model_id", "mechanism", "kinds", "layers", "heads", "padding_side")
    return {**{k: meta.get(k) for k in keys}, "probes": (meta.get("shard") or {}).get("probes")}


def open_store(
    path: str, storage_options: dict[str, Any] | None = None
) -> AttentionStore | ShardedStore:
    """The store at ``path``, or the shards written beside it when there is no whole store."""
    fs, inner = fsspec.core.url_to_fs(path, **(storage_options or {}))
    if not fs.isfile(inner) and (shards := shard_paths(path, storage_options)):
        return ShardedStore(shards, storage_options)
    return AttentionStore(path, storage_options)
