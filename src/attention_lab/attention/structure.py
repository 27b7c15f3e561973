"""Conversions that rewrite a checkpoint, and rebuilding a saved converted model.

A mechanism that fits new weights (calibrated pooling) or adds modules (``mla``, ``gated``)
runs once, when a variant is built from its base checkpoint, on calibration token ids from
the training texts. The converted model is then saved whole; its config records what was
added (:data:`~attention_lab.attention.converted.STRUCTURE_KEY`), and :func:`restore` gives
a freshly loaded copy those modules back before their weights are read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from attention_lab.attention.calibrated import calibrate_kv_heads
from attention_lab.attention.conversion import convert_kv_heads, supports_native_kv_heads
from attention_lab.attention.converted import STRUCTURE_KEY
from attention_lab.attention.discovery import LAYERS_ATTR
from attention_lab.attention.gated import convert_to_gated, restore_gates
from attention_lab.attention.latent import convert_to_latent, restore_latent
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.errors import ArtifactError, ConfigError

ADDED_PARTS = (".latent.", ".output_gate.")  # parameter names of the modules conversions add


def convert(
    model: nn.Module, spec: MechanismSpec, calibration: torch.Tensor | None = None
) -> nn.Module:
    """Rewrite ``model``'s weights for ``spec`` where the mechanism asks for it; in place.

    A model that already carries the conversion (loaded from a saved variant) is left as it is.
    """
    config = model.config.get_text_config()
    target = spec.target_kv_heads
    if target is not None and target != getattr(config, "num_key_value_heads", None):
        if spec.pooling == "calibrated":
            calibrate_kv_heads(model, target, _needed(calibration, spec))
        elif spec.layers is None and supports_native_kv_heads(model):
            convert_kv_heads(model, target)
    if getattr(model.config, STRUCTURE_KEY, None):
        return model
    if spec.name == "mla":
        convert_to_latent(model, spec.rank, spec.rope_pairs, _needed(calibration, spec))
    elif spec.name == "gated":
        convert_to_gated(model)
    return model


def _needed(calibration: torch.Tensor | None, spec: MechanismSpec) -> torch.Tensor:
    if calibration is None:
        raise ConfigError(
            f"mechanism {spec.name}: the conversion fits weights on calibration texts, and none "
            "were given; build the variant through the fine_tuning pipeline."
        )
    return calibration


def restore(model: nn.Module, folder: str | Path) -> nn.Module:
    """Rebuild the parts a saved converted model records, and read their weights from
    ``folder``'s safetensors; a model without a record is returned unchanged."""
    record = getattr(model.config, STRUCTURE_KEY, None)
    if not record:
        return model
    if "latent" in record:
        restore_latent(model, record["latent"])
    if record.get("gate"):
        restore_gates(model)
    setattr(model, LAYERS_ATTR, None)
    wanted = {n for n in model.state_dict() if any(part in n for part in ADDED_PARTS)}
    saved: dict[str, torch.Tensor] = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as weights:  # only the added parts' tensors
            saved.update({k: weights.get_tensor(k) for k in weights.keys() if k in wanted})
    missing = sorted(wanted - set(saved))
    if missing:
        raise ArtifactError(
            f"{folder}: the converted model's weights lack {missing[0]} (and {len(missing) - 1} "
            "more); the folder is incomplete. Rerun its fine_tuning job."
        )
    model.load_state_dict(saved, strict=False)
    return model
