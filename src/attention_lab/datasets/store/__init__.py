"""The attention store: a zipped zarr v3 group per variant (the layout is in
:mod:`~attention_lab.datasets.store.format`), written by :mod:`.writer`, read by
:mod:`.reader`, and joined across shards by :mod:`.shards`."""

from attention_lab.datasets.store.format import (
    FORMAT,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
)
from attention_lab.datasets.store.reader import AttentionStore
from attention_lab.datasets.store.shards import ShardedStore, open_store, shard_path, shard_paths
from attention_lab.datasets.store.writer import AttentionStoreWriter, write_store

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "AttentionStore",
    "AttentionStoreWriter",
    "AttentionStream",
    "ExampleAttention",
    "LayerMaps",
    "ShardedStore",
    "open_store",
    "shard_path",
    "shard_paths",
    "write_store",
]
