"""``{variant}.model``: a Hugging Face / peft folder plus a small ``attention_lab.json``.

Full and head-only variants store safetensors weights, config and tokenizer
(``AutoModel*.from_pretrained(folder)`` works). A LoRA variant stores its peft adapter and
names its base model; :meth:`ModelArtifact.load` rebuilds base + mechanism + adapter.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset
from kedro.io.core import DatasetError, Version

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ArtifactError
from attention_lab.location import Location, download_folder, upload_folder
from attention_lab.model_info import ModelInfo

INFO_FILE = "attention_lab.json"


@dataclass
class TrainedModel:
    """What fine-tuning hands to the catalog: the model, its tokenizer and how it was made."""

    model: Any
    tokenizer: Any
    info: ModelInfo | dict[str, Any]  # how it was made: variant, base model, task, method, ...


@dataclass(frozen=True)
class ModelArtifact:
    """A saved variant on disk; ``load()`` returns a ready (model, tokenizer) pair."""

    path: Path
    info: ModelInfo

    def load(self, device=None):
        from peft import PeftModel

        from attention_lab.models.loading import device as default_device
        from attention_lab.models.loading import load_model, load_tokenizer

        info = self.info
        mechanism = MechanismSpec.from_config(info.mechanism)
        trusted = {  # off unless the variant set them
            "trust_remote_code": info.trust_remote_code,
            "allow_pickle": info.allow_pickle,
        }
        tokenizer = load_tokenizer(str(self.path), trusted["trust_remote_code"])
        if info.adapter:
            base = load_model(
                info.base_model,
                info.task,
                mechanism,
                num_labels=info.num_labels,
                pad_token_id=tokenizer.pad_token_id,
                **trusted,
            )
            model = PeftModel.from_pretrained(base, str(self.path)).merge_and_unload()
        else:
            model = load_model(
                str(self.path),
                info.task,
                mechanism,
                num_labels=info.num_labels,
                pad_token_id=tokenizer.pad_token_id,
                trust_remote_code=trusted["trust_remote_code"],
            )
        return model.to(device or default_device()).eval(), tokenizer


class ModelDirectoryDataset(AbstractVersionedDataset[TrainedModel, ModelArtifact]):
    """Saves a :class:`TrainedModel` whole or not at all; loads a :class:`ModelArtifact`.

    ``path`` is a local folder or an fsspec URL (``credentials`` and ``fs_args`` open it).
    Locally the folder is written beside its place and renamed into it; on object storage
    the files are uploaded with ``attention_lab.json`` last, so a folder without it is
    unfinished and is neither loaded nor counted as existing. A remote model is downloaded
    once per process to a local folder, since ``from_pretrained`` reads local files.
    ``versioned: true`` in the catalog keeps every run's model.
    """

    def __init__(
        self,
        path: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._where = Location.of(path, version, credentials, fs_args)
        self.metadata = metadata
        super().__init__(
            self._where.path,
            version,
            exists_function=self._holds_model,  # a method, not a lambda: ParallelRunner pickles it
            glob_function=self._where.fs.glob,
        )

    def _holds_model(self, folder) -> bool:
        return self._where.fs.isfile(f"{folder}/{INFO_FILE}")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._where.url(), "version": self._version}

    def _exists(self) -> bool:
        try:
            folder = self._get_load_path()
        except DatasetError:  # versioned, and no version written yet
            return False
        return self._where.fs.isfile(f"{folder}/{INFO_FILE}")

    def load(self) -> ModelArtifact:
        job = self._job_name()
        try:
            folder = self._get_load_path()
            info = ModelInfo.from_json(json.loads(self._where.fs.cat_file(f"{folder}/{INFO_FILE}")))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise self._missing(job) from exc
            raise ArtifactError(
                f"Could not read the model at {self._where.url()}: {exc.strerror or exc}. Check "
                "its permissions, or data_root and storage_credentials."
            ) from exc
        except DatasetError as exc:  # versioned: none written yet, or the pinned one is absent
            raise self._missing(job) from exc
        if self._where.local:
            return ModelArtifact(Path(folder), info)
        return ModelArtifact(_downloaded(self._where, folder), info)

    def _job_name(self) -> str:
        """The job that writes this folder: ``06_models/lora/seed42`` is ``lora__seed42``."""
        path = self._where.path
        return f"{path.parent.name}__{path.name}" if path.name.startswith("seed") else path.name

    def _missing(self, job: str) -> ArtifactError:
        return ArtifactError(
            f"No trained model at {self._where.url()}. Run `kedro run "
            f"--pipeline=fine_tuning` (or `--namespaces={job}`) first, or pin a version "
            "that exists with --load-versions."
        )

    def save(self, data: TrainedModel) -> None:
        if self._version is None and self._where.holds_versions():
            raise ArtifactError(self._where.versions_in_the_way())
        folder = self._get_save_path()
        _DOWNLOADS.pop(self._where.url(folder), None)  # this process must not load the old copy
        try:
            if self._where.local:
                _save_locally(Path(folder), data)
            else:
                _upload(self._where, folder, data)
        except OSError as exc:
            raise ArtifactError(
                f"Could not save the model to {self._where.url(folder)}: {exc.strerror or exc}. "
                "Nothing was kept; free space or point data_root in globals.yml at a writable "
                "place, then rerun."
            ) from exc


def _write(folder: Path, data: TrainedModel) -> None:
    data.model.save_pretrained(folder)  # safetensors; a PeftModel saves only its adapter
    data.tokenizer.save_pretrained(folder)
    (folder / INFO_FILE).write_text(json.dumps(ModelInfo.of(data.info).to_json(), indent=2))


def _save_locally(path: Path, data: TrainedModel) -> None:
    """Write beside ``path``, then rename into place: a killed run leaves only a temp folder."""
    prefix = f".{path.name}-"
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{prefix}*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix))
    try:
        _write(tmp, data)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _upload(where: Location, folder: PurePosixPath, data: TrainedModel) -> None:
    """Object stores have no rename: clear the place, upload, and write the info file last."""
    fs = where.fs
    if fs.exists(str(folder)):
        fs.rm(str(folder), recursive=True)
    with tempfile.TemporaryDirectory(prefix="attention-lab-model-") as tmp:
        _write(Path(tmp), data)
        upload_folder(fs, Path(tmp), str(folder), last=INFO_FILE)
    fs.invalidate_cache()


_DOWNLOADS: dict[str, tempfile.TemporaryDirectory] = {}  # URL -> local copy, removed at exit


def _downloaded(where: Location, folder: PurePosixPath) -> Path:
    url = where.url(folder)
    if url not in _DOWNLOADS:
        local = tempfile.TemporaryDirectory(prefix="attention-lab-model-")
        download_folder(where.fs, str(folder), Path(local.name))
        _DOWNLOADS[url] = local
    return Path(_DOWNLOADS[url].name)
