"""Where a dataset lives: a local path or any fsspec URL (``s3://bucket/study/...``), opened
with the catalog entry's ``credentials`` and ``fs_args`` (Kedro's conventions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import Version, get_protocol_and_path


@dataclass(frozen=True)
class Location:
    protocol: str  # "file", "s3", "memory", ...
    path: PurePosixPath  # without the protocol, as ``fs`` takes it
    options: dict[str, Any]  # storage options: credentials, then fs_args

    @classmethod
    def of(
        cls,
        path: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
    ) -> Location:
        protocol, inner = get_protocol_and_path(path, version)
        return cls(protocol, PurePosixPath(inner), {**(credentials or {}), **(fs_args or {})})

    @property
    def local(self) -> bool:
        return self.protocol == "file"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem(self.protocol, **self.options)

    def url(self, path: PurePosixPath | str | None = None) -> str:
        """``path`` (default: this location's) as a URL the store functions open."""
        inner = str(self.path if path is None else path)
        return inner if self.local else f"{self.protocol}://{inner}"
