"""``{variant}.model``: a Hugging Face / peft folder plus a small ``attention_lab.json``.

Full and head-only variants store safetensors weights, config and tokenizer
(``AutoModel*.from_pretrained(folder)`` works). A LoRA variant stores its peft adapter and
names its base model; :meth:`ModelArtifact.load` rebuilds base + mechanism + adapter.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ArtifactError

INFO_FILE = "attention_lab.json"


@dataclass
class TrainedModel:
    """What fine-tuning hands to the catalog: the model, its tokenizer and how it was made."""

    model: Any
    tokenizer: Any
    info: dict[str, Any] = field(
        default_factory=dict
    )  # variant, base model, task, method, mechanism, labels


@dataclass(frozen=True)
class ModelArtifact:
    """A saved variant on disk; ``load()`` returns a ready (model, tokenizer) pair."""

    path: Path
    info: dict[str, Any]

    def load(self, device=None):
        from peft import PeftModel

        from attention_lab.models.loading import device as default_device
        from attention_lab.models.loading import load_model, load_tokenizer

        info = self.info
        mechanism = MechanismSpec.from_config(info["mechanism"])
        trusted = {  # off unless the variant set them
            "trust_remote_code": info.get("trust_remote_code", False),
            "allow_pickle": info.get("allow_pickle", False),
        }
        tokenizer = load_tokenizer(str(self.path), trusted["trust_remote_code"])
        if info.get("adapter"):
            base = load_model(
                info["base_model"],
                info["task"],
                mechanism,
                num_labels=info.get("num_labels"),
                pad_token_id=tokenizer.pad_token_id,
                **trusted,
            )
            model = PeftModel.from_pretrained(base, str(self.path)).merge_and_unload()
        else:
            model = load_model(
                str(self.path),
                info["task"],
                mechanism,
                num_labels=info.get("num_labels"),
                pad_token_id=tokenizer.pad_token_id,
                trust_remote_code=trusted["trust_remote_code"],
            )
        return model.to(device or default_device()).eval(), tokenizer


class ModelDirectoryDataset(AbstractDataset[TrainedModel, ModelArtifact]):
    """Saves a :class:`TrainedModel` atomically (temp folder, then rename); loads a :class:`ModelArtifact`."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return (self._path / INFO_FILE).is_file()

    def load(self) -> ModelArtifact:
        info_path = self._path / INFO_FILE
        if not info_path.is_file():
            raise ArtifactError(
                f"No trained model at {self._path}. Run `kedro run --pipeline=fine_tuning` "
                f"(or `--namespaces={self._path.name}`) first."
            )
        return ModelArtifact(self._path, json.loads(info_path.read_text()))

    def save(self, data: TrainedModel) -> None:
        prefix = f".{self._path.name}-"
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            for stale in self._path.parent.glob(f"{prefix}*"):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=self._path.parent, prefix=prefix))
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            data.model.save_pretrained(tmp)  # safetensors; a PeftModel saves only its adapter
            data.tokenizer.save_pretrained(tmp)
            (tmp / INFO_FILE).write_text(json.dumps(data.info, indent=2))  # written last
            if self._path.exists():
                shutil.rmtree(self._path)
            tmp.rename(self._path)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _unwritable(self, exc: OSError) -> ArtifactError:
        return ArtifactError(
            f"Could not save the model to {self._path}: {exc.strerror or exc}. Nothing was kept; "
            "free space or point data_root in globals.yml at a writable place, then rerun."
        )
