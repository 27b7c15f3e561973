"""Every reader the dashboard uses is a MapStore: one store, and the mean over seeds."""

from __future__ import annotations

import numpy as np

from attention_lab.datasets.store import MapStore, StoreMeta
from dashboard.seed_mean import SEED_MEAN


def test_one_seeds_store_and_the_mean_over_seeds_are_map_stores(shared_study):
    one, mean = shared_study.store("a", 42), shared_study.store("a", SEED_MEAN)
    assert isinstance(one, MapStore) and isinstance(mean, MapStore)
    assert isinstance(mean.meta, StoreMeta) and mean.meta.seed == SEED_MEAN
    assert mean.meta.layers == one.meta.layers and mean.kinds == one.kinds
    seeds = [shared_study.store("a", seed).attention("e0") for seed in shared_study.seeds]
    np.testing.assert_allclose(mean.attention("e0"), np.mean(seeds, axis=0), rtol=1e-6)
