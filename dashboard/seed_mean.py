"""The mean of one variant's maps over its seeds, read like a single store.

Each seed's store holds what that run computed; this view averages them cell by cell, on the
probe examples every seed holds with the same tokens. It is an aggregate for looking, named
as such in the dashboard ("mean over seeds"), never a model's own attention.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

SEED_MEAN = "mean"


class SeedMeanStore:
    """The reader interface the dashboard uses (``meta``, ``kinds``, ``example_ids``,
    ``example_meta``, ``attention``, ``mean_over_heads``, ``dropped_mass``) over several stores."""

    def __init__(self, stores: list):
        if not stores:
            raise ValueError("the mean over seeds needs at least one store")
        self.stores = stores
        self.meta = replace(stores[0].meta, seed=SEED_MEAN)
        self.kinds = stores[0].kinds
        ids = [set(s.example_ids) for s in stores]
        self.example_ids = [e for e in stores[0].example_ids if all(e in i for i in ids)]

    def __len__(self) -> int:
        return len(self.example_ids)

    def example_meta(self, example):
        return self.stores[0].example_meta(example)

    def _mean(self, read) -> np.ndarray:
        maps = [np.asarray(read(store), dtype=np.float32) for store in self.stores]
        if len({m.shape for m in maps}) > 1:
            raise ValueError("the seeds' maps of this example differ in shape: no mean to show")
        return np.mean(maps, axis=0)

    def attention(self, example, kind=None, layer=None, head=None) -> np.ndarray:
        """The mean over seeds of each seed's map (same shapes as one store's)."""
        return self._mean(lambda s: s.attention(example, kind, layer=layer, head=head))

    def mean_over_heads(self, example, kind=None, layer=0) -> np.ndarray:
        return self._mean(lambda s: s.mean_over_heads(example, kind, layer=layer))

    def dropped_mass(self, example, kind=None):
        if self.meta.sparse_mass is None:
            return None
        return self._mean(lambda s: s.dropped_mass(example, kind))
