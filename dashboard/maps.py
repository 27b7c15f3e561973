"""The maps the views show, read from a store once and kept in a small cache.

At 2,048 tokens one head's map is 16 MB of float32 and the mean over heads reads every head of
the layer ([H, T, T]); changing the pooling, the zoom or the log scale, or coming back to a
map, reuses the map read instead of reading and unpacking its chunk again.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from attention_lab.datasets.store import AttentionStore

CACHE_BYTES = 256 * 2**20  # 16 maps of 2,048 x 2,048 float32
# Reads the second variant's map while the request's thread reads the first: decompressing and
# unpacking a chunk runs outside the GIL, so two reads take little more than one.
READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="map-reader")


class MapCache:
    """A least-recently-used cache of arrays read from stores, bounded by their bytes; safe
    across threads (the waitress server answers requests on several).

    Entries hold their store weakly: a store that is gone (a test's, a reloaded catalog's)
    is not kept open, and a new store at the same address never gets its arrays.
    """

    def __init__(self, budget: int = CACHE_BYTES):
        self.budget, self.bytes = budget, 0
        self._items: OrderedDict[tuple, tuple[weakref.ref, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store, key: tuple, make) -> np.ndarray:
        """The array cached for ``store`` under ``key``, else ``make()``'s, cached when it fits."""
        key = (id(store), *key)
        with self._lock:
            owner, value = self._items.get(key, (None, None))
            if owner is not None and owner() is store:
                self._items.move_to_end(key)
                return value
        value = make()  # outside the lock: reads of other maps go on meanwhile
        if value.base is not None:  # a view would keep its whole base (every head) alive
            value = value.copy()
        value.flags.writeable = False  # shared by every request that shows it
        with self._lock:
            self._put(key, weakref.ref(store), value)
        return value

    def _put(self, key: tuple, owner: weakref.ref, value: np.ndarray) -> None:
        if key in self._items:  # a stale entry of a store that is gone
            self.bytes -= self._items.pop(key)[1].nbytes
        if value.nbytes <= self.budget:
            self._items[key] = (owner, value)
            self.bytes += value.nbytes
        while self.bytes > self.budget:
            self.bytes -= self._items.popitem(last=False)[1][1].nbytes

    def holds(self, store, key: tuple) -> bool:
        with self._lock:
            owner = self._items.get((id(store), *key), (None,))[0]
            return owner is not None and owner() is store

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


CACHE = MapCache()
HEAD_MEAN = "mean"  # the head control's value that asks for the mean over a layer's heads


def head_map(store: AttentionStore, example: str, kind: str, layer: int, head: int | str):
    """[query, key] of one stored layer index and head index, or (``head=HEAD_MEAN``) the mean
    over the layer's heads."""

    def read() -> np.ndarray:
        if head == HEAD_MEAN:
            return store.mean_over_heads(example, kind, layer=layer)
        return store.attention(example, kind, layer=layer, head=head)

    return CACHE.get(store, (example, kind, layer, head), read)


def head_maps(*wanted: tuple) -> list[np.ndarray]:
    """:func:`head_map` of each (store, example, kind, layer, head); the ones not cached are
    read at the same time."""
    missing = [w for w in wanted if not CACHE.holds(w[0], w[1:])]
    later = [READERS.submit(head_map, *w) for w in missing[1:]]
    if missing:
        head_map(*missing[0])
    for future in later:
        future.result()
    return [head_map(*w) for w in wanted]  # all cached now, unless larger than the cache


def dropped_rows(store: AttentionStore, example: str, kind: str, layer: int, head: int | str):
    """A sparse store's weight left out of each query row [Tq] (over heads: their mean, which
    the mean map leaves out); None for a dense store."""
    if store.meta.sparse_mass is None:
        return None

    def read() -> np.ndarray:
        dropped = store.dropped_mass(example, kind)[layer].astype(np.float32)  # [H, Tq]
        return dropped.mean(axis=0) if head == HEAD_MEAN else dropped[head]

    return CACHE.get(store, (example, kind, layer, head, "dropped"), read)
