"""What every reader of stored maps offers, whatever holds them."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from attention_lab.datasets.store.meta import StoreMeta


@runtime_checkable
class MapStore(Protocol):
    """A store's maps read one example at a time: a whole store
    (:class:`~attention_lab.datasets.store.reader.AttentionStore`), its shards read as one
    (:class:`~attention_lab.datasets.store.shards.ShardedStore`), or the dashboard's mean over
    seeds. ``layer`` and ``head`` index the *stored* layers and heads (``meta.layers``)."""

    meta: StoreMeta
    example_ids: list[str]

    def __len__(self) -> int: ...

    @property
    def kinds(self) -> list[str]: ...

    def example_meta(self, example: int | str) -> dict[str, Any]:
        """Tokens, token ids, special-token mask and lengths of one example."""
        ...

    def attention(
        self,
        example: int | str,
        kind: str | None = None,
        layer: int | None = None,
        head: int | None = None,
    ) -> np.ndarray:
        """``[layers, heads, query, key]`` float32, or the slice ``layer``/``head`` asks for."""
        ...

    def mean_over_heads(self, example: int | str, kind: str | None = None, layer: int = 0):
        """``[query, key]``: the mean of one stored layer's heads."""
        ...

    def dropped_mass(self, example: int | str, kind: str | None = None) -> np.ndarray | None:
        """Sparse stores: the weight each row left out, ``[layers, heads, query]``."""
        ...
