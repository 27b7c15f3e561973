"""Reading a store: a lazy handle that opens the root metadata and reads one example's chunk
at a time, locally or through fsspec."""

from __future__ import annotations

from typing import Any

import fsspec
import numpy as np
import zarr
from zarr.storage import ZipStore

from attention_lab.datasets.codecs import dequantize_rows, from_grid, from_top_mass, unpack_lower
from attention_lab.datasets.store.format import FORMAT, READABLE_VERSIONS
from attention_lab.datasets.store.meta import StoreMeta
from attention_lab.errors import ArtifactError


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
        self.meta = StoreMeta.from_attrs(attrs)
        self.example_ids: list[str] = list(attrs["example_ids"])
        self._index = {eid: i for i, eid in enumerate(self.example_ids)}

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def kinds(self) -> list[str]:
        return list(self.meta.kinds)

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
        attrs = dict(self._root[f"examples/{self.index_of(example)}.{self.kinds[0]}"].attrs)
        attrs.pop("grid_bits", None)  # how this kind's maps are encoded, not the example's
        return attrs

    def attention(
        self,
        example: int | str,
        kind: str | None = None,
        layer: int | None = None,
        head: int | None = None,
    ) -> np.ndarray:
        """One example's map: ``[layers, heads, query, key]``, or a slice for ``layer``/``head``.

        ``layer`` and ``head`` index the *stored* layers and heads (see ``meta.layers``).
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
        compact = self.meta.compact
        if not compact:  # to float32 on the packed triangle: half the cells of the map
            values = from_grid(np.asarray(values), attrs.get("grid_bits"), np.float32)
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
        if kind in self.kinds and not self.meta.compact:
            node = self._root[f"examples/{self.index_of(example)}.{kind}"]
            if node.attrs.get("layout") == "lower_triangle":
                packed = np.mean(node[layer], axis=0, dtype=np.float32)  # [heads, T] -> [T]
                # grid steps: the mean's steps scaled by 2**-bits, exactly
                packed = from_grid(packed, node.attrs.get("grid_bits"), np.float32)
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
