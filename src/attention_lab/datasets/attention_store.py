"""``{variant}__attention``: the Kedro dataset over the attention store."""

from __future__ import annotations

from typing import Any

import fsspec
from kedro.io import AbstractDataset

from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ShardedStore,
    open_store,
    shard_path,
    shard_paths,
    write_store,
)


class AttentionStoreDataset(AbstractDataset[AttentionStream, AttentionStore]):
    """Kedro dataset for ``{variant}__attention``: saves an :class:`AttentionStream`, loads an :class:`AttentionStore`."""

    def __init__(
        self,
        path: str,
        dtype: str = "float16",
        compact: bool = False,
        sparse_mass: float | None = None,
        metadata: dict | None = None,
    ):
        self._path, self._dtype, self._compact, self.metadata = path, dtype, compact, metadata
        self._sparse_mass = sparse_mass

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "dtype": self._dtype,
            "compact": self._compact,
            "sparse_mass": self._sparse_mass,
        }

    def _exists(self) -> bool:
        fs, inner = fsspec.core.url_to_fs(self._path)
        return fs.isfile(inner) or bool(shard_paths(self._path))

    def load(self) -> AttentionStore | ShardedStore:
        """The whole store, or its shards read as one (see ``attention_extraction.shard``)."""
        return open_store(self._path)

    def save(self, data: AttentionStream) -> None:
        shard = data.meta.get("shard")
        path = shard_path(self._path, shard["index"], shard["count"]) if shard else self._path
        write_store(path, data, self._dtype, self._compact, self._sparse_mass)
        # what this write replaces: the whole store for a shard, the shards for a whole store
        fs, _ = fsspec.core.url_to_fs(self._path)
        for stale in [self._path] if shard else shard_paths(self._path):
            if fs.exists(stale):
                fs.rm(stale)
