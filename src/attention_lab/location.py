"""Where a dataset lives: a local path or any fsspec URL (``s3://bucket/study/...``), opened
with the catalog entry's ``credentials`` and ``fs_args`` (Kedro's conventions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import Version, get_protocol_and_path


@dataclass(frozen=True)
class Location:
    protocol: str  # "file", "s3", "memory", ...
    path: PurePosixPath  # without the protocol, as ``fs`` takes it
    options: dict[str, Any] = field(repr=False)  # credentials, then fs_args: never printed

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

    def holds_versions(self) -> bool:
        """Whether this (unversioned) place is a folder of Kedro versions ``<ts>/<name>``."""
        return bool(self.fs.glob(f"{self.path}/*/{self.path.name}"))

    def versions_in_the_way(self) -> str:
        return (
            f"{self.url()} holds versions saved with `versioned: true`; nothing was removed. "
            "Set `versioned: true` on this catalog entry again, or move the versions away."
        )


def upload_folder(fs: fsspec.AbstractFileSystem, local: Path, remote: str, last: str) -> None:
    """Every file of ``local`` under ``remote`` (a path as ``fs`` takes it), the file named
    ``last`` after all the others: object stores have no rename, so that file's presence is
    what marks a whole copy."""
    files = [p for p in local.rglob("*") if p.is_file()]
    for file in sorted(files, key=lambda p: p.name == last):
        fs.put_file(str(file), f"{remote}/{file.relative_to(local).as_posix()}")


def download_folder(fs: fsspec.AbstractFileSystem, remote: str, local: Path) -> None:
    """Every file under ``remote`` into ``local``, sub-folders made as needed."""
    for file in fs.find(remote):
        target = local / PurePosixPath(file).relative_to(remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(file, str(target))
