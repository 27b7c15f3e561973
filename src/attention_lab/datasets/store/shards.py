"""Shards: the blocks of one probe set written by separate jobs, read back as one store."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import fsspec
import numpy as np

from attention_lab.datasets.store.meta import StoreMeta
from attention_lab.datasets.store.reader import AttentionStore
from attention_lab.errors import ArtifactError


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
        shards = [s.meta.shard for s in stores]
        counts = {shard.count if shard else None for shard in shards}
        indices = sorted(shard.index if shard else -1 for shard in shards)
        hint = "Re-run the missing shards, or remove the stray files, then rerun the analysis."
        if len(counts) != 1 or None in counts or indices != list(range(counts.pop())):
            found = sorted(f"{s.index} of {s.count}" if s else "a whole store" for s in shards)
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
        self.shards = sorted(stores, key=lambda s: s.meta.shard.index)
        self.example_ids = [eid for store in self.shards for eid in store.example_ids]
        if len(set(self.example_ids)) != len(self.example_ids):
            raise ArtifactError(f"Attention store shards beside {paths[0]} share examples. {hint}")
        self.path = paths[0]
        self.meta = replace(
            self.shards[0].meta,
            example_ids=self.example_ids,
            num_examples=len(self.example_ids),
            shard=None,
        )
        self._where = {
            eid: (store, i) for store in self.shards for i, eid in enumerate(store.example_ids)
        }
        self._index = {eid: i for i, eid in enumerate(self.example_ids)}

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def kinds(self) -> list[str]:
        return list(self.meta.kinds)

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


def _fingerprint(meta: StoreMeta) -> dict[str, Any]:
    """What every shard of one extraction shares: the model and what was extracted."""
    keys = ("variant", "seed", "model_id", "mechanism", "kinds", "layers", "heads", "padding_side")
    probes = meta.shard.probes if meta.shard else None
    return {**{k: getattr(meta, k) for k in keys}, "probes": probes}


def open_store(
    path: str, storage_options: dict[str, Any] | None = None
) -> AttentionStore | ShardedStore:
    """The store at ``path``, or the shards written beside it when there is no whole store."""
    fs, inner = fsspec.core.url_to_fs(path, **(storage_options or {}))
    if not fs.isfile(inner) and (shards := shard_paths(path, storage_options)):
        return ShardedStore(shards, storage_options)
    return AttentionStore(path, storage_options)
