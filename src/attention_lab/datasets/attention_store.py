"""``{variant}__attention``: the Kedro dataset over the attention store."""

from __future__ import annotations

from typing import Any

import fsspec
from kedro.io import AbstractDataset

from attention_lab.datasets.store import AttentionStore, AttentionStream, write_store


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
        return fs.isfile(inner)

    def load(self) -> AttentionStore:
        return AttentionStore(self._path)

    def save(self, data: AttentionStream) -> None:
        write_store(self._path, data, self._dtype, self._compact, self._sparse_mass)
