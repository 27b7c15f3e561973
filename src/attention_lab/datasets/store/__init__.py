"""The attention store: a zipped zarr v3 group per variant (the layout is in
:mod:`~attention_lab.datasets.store.format`), written by :mod:`.writer`, read by
:mod:`.reader`, and joined across shards by :mod:`.shards`; its root metadata is one
:class:`StoreMeta`, and every reader is a :class:`MapStore`."""

from attention_lab.datasets.store.format import (
    FORMAT,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    AttentionStream,
    ExampleAttention,
    LayerMaps,
)
from attention_lab.datasets.store.meta import ShardInfo, StoreMeta, token_sides
from attention_lab.datasets.store.protocol import MapStore
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
    "MapStore",
    "ShardInfo",
    "ShardedStore",
    "StoreMeta",
    "open_store",
    "shard_path",
    "shard_paths",
    "token_sides",
    "write_store",
]
