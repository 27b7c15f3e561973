"""Load a model for a task with an attention mechanism applied, on CUDA when present."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from attention_lab.attention.apply import apply_mechanism
from attention_lab.attention.mechanisms import MechanismSpec
from attention_lab.attention.structure import convert, restore
from attention_lab.errors import ArtifactError
from attention_lab.models.zoo import hub_error, resolve
from attention_lab.tasks import get_task


def device() -> torch.device:
    """CUDA when present, CPU otherwise; the code path is the same."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(name: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (decoders often lack one)."""
    source = resolve(name)  # outside the try: a zoo error is its own message, not the hub's
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise hub_error(name, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def has_only_pickle_weights(folder: str) -> bool:
    """A local folder with ``*.bin``/``*.pt``/``*.pth`` weights and no ``*.safetensors``."""
    path = Path(folder)
    if not path.is_dir():
        return False
    names = [p.name for p in path.iterdir()]
    pickled = any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    return pickled and not any(n.endswith(".safetensors") for n in names)


def load_model(
    name: str,
    task: str,
    mechanism: MechanismSpec | None = None,
    num_labels: int | None = None,
    trust_remote_code: bool = False,
    pad_token_id: int | None = None,
    allow_pickle: bool = False,
    calibration: torch.Tensor | None = None,
) -> nn.Module:
    """Load ``name`` (alias, folder or hub id) for ``task`` with ``mechanism`` applied.

    The task picks the ``AutoModel*`` class (see :mod:`attention_lab.tasks`). A grouped-/multi-query
    mechanism on a model with separate key/value projections and ``num_key_value_heads``
    (Llama family) rewrites the weights, so the checkpoint really changes size.

    Weights load from safetensors only, unless ``allow_pickle``: unpickling a checkpoint can
    run any code its author put in it.
    """
    mechanism = mechanism or MechanismSpec()
    common = {
        "trust_remote_code": trust_remote_code,
        "attn_implementation": "eager",
        "use_safetensors": None if allow_pickle else True,
    }
    source = resolve(name)  # outside the try: a zoo error is its own message, not the hub's
    try:
        model = get_task(task).load_pretrained(source, num_labels, **common)
    except OSError as exc:  # hub ids while offline, missing files in a folder
        if not allow_pickle and has_only_pickle_weights(source):
            raise ArtifactError(
                f"{name} has only pickle weights (*.bin / *.pt); unpickling can run arbitrary code, "
                "so they are refused. Convert them to safetensors, or set `allow_pickle: true` on "
                "the variant if you trust their source."
            ) from exc
        raise hub_error(name, exc) from exc
    if pad_token_id is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad_token_id
    restore(model, source)
    convert(model, mechanism, calibration)
    return apply_mechanism(model, mechanism)
