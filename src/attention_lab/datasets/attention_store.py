"""``{variant}__attention``: the Kedro dataset over the attention store."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractVersionedDataset
from kedro.io.core import DatasetError, Version

from attention_lab.datasets.store import (
    AttentionStore,
    AttentionStream,
    ShardedStore,
    StoreMeta,
    open_store,
    shard_path,
    shard_paths,
    write_store,
)
from attention_lab.errors import ArtifactError, ConfigError
from attention_lab.location import Location


class AttentionStoreDataset(AbstractVersionedDataset[AttentionStream, AttentionStore]):
    """Kedro dataset for ``{variant}__attention``: saves an :class:`AttentionStream`, loads an
    :class:`AttentionStore`.

    ``path`` is a local path or an fsspec URL; ``credentials`` and ``fs_args`` open it.
    ``versioned: true`` in the catalog keeps every run's store (``--load-versions`` picks one).
    """

    def __init__(
        self,
        path: str,
        dtype: str = "float16",
        compact: bool = False,
        sparse_mass: float | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict | None = None,
    ):
        self._where = Location.of(path, version, credentials, fs_args)
        self._dtype, self._compact, self._sparse_mass = dtype, compact, sparse_mass
        self.metadata = metadata
        super().__init__(
            self._where.path,
            version,
            exists_function=self._store_exists,
            glob_function=self._where.fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._where.url(),
            "version": self._version,
            "dtype": self._dtype,
            "compact": self._compact,
            "sparse_mass": self._sparse_mass,
        }

    def _store_exists(self, path: str) -> bool:
        """A whole store or shards at ``path`` (a path as the filesystem gives it)."""
        url = self._where.url(path)
        return self._where.fs.isfile(path) or bool(shard_paths(url, self._where.options))

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:  # versioned, and no version written yet
            return False
        return self._store_exists(str(path))

    def load(self) -> AttentionStore | ShardedStore:
        """The whole store, or its shards read as one (see ``attention_extraction.shard``)."""
        try:
            path = self._get_load_path()
        except DatasetError as exc:  # versioned: none written yet, or the pinned one is absent
            raise ArtifactError(
                f"No version of the attention store at {self._where.url()} to load ({exc}). "
                "Run `kedro run --pipeline=attention_extraction`, or pin a version that exists "
                "with --load-versions."
            ) from exc
        return open_store(self._where.url(path), self._where.options)

    def save(self, data: AttentionStream) -> None:
        shard = StoreMeta.of(data.meta).shard
        if shard and self._version is not None:
            raise ConfigError(
                "Sharded extraction writes each shard in its own run, so a versioned store would "
                "get one version per shard. Set `versioned: false` on the attention store's "
                "catalog entry for sharded runs."
            )
        if self._version is None and self._where.holds_versions():
            raise ArtifactError(self._where.versions_in_the_way())
        url = self._where.url(self._get_save_path())
        path = shard_path(url, shard.index, shard.count) if shard else url
        write_store(path, data, self._dtype, self._compact, self._sparse_mass, self._where.options)
        # what this write replaces: the whole store for a shard, the shards for a whole store
        fs = self._where.fs
        for stale in [url] if shard else shard_paths(url, self._where.options):
            inner = str(Location.of(stale).path)
            if fs.exists(inner):
                fs.rm(inner)
        fs.invalidate_cache()  # object stores cache listings: later exists() must see this
