"""A model folder's ``attention_lab.json`` as one typed object: how the variant was made.

Fine-tuning writes every field (:func:`~attention_lab.training.fine_tune.fine_tune`);
:meth:`ModelInfo.from_json` reads folders written before a field existed with the defaults
below (the same as :class:`~attention_lab.variants.TrainingSpec`'s) and keeps keys this
version does not know in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from attention_lab.defaults import EVAL_BATCH_SIZE, MAX_LENGTH, SEED


@dataclass(frozen=True)
class ModelInfo:
    variant: str
    task: str
    base_model: str | None = None  # the zoo name or hub id the variant started from
    seed: int = SEED  # the job's training seed
    method: str = "none"  # none | head | lora | full
    mechanism: dict[str, Any] = field(default_factory=lambda: {"name": "mha"})
    label_names: list[str] | None = None
    num_labels: int | None = None
    adapter: bool = False  # a peft adapter over base_model, not whole weights
    objective: str = "lm"  # lm | distill
    max_length: int = MAX_LENGTH  # tokens per training and evaluation example
    eval_batch_size: int = EVAL_BATCH_SIZE
    fast_path: bool = True
    allow_pickle: bool = False
    trust_remote_code: bool = False
    training_precision: str = "fp32"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelInfo:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra)

    @classmethod
    def of(cls, info: ModelInfo | Mapping[str, Any]) -> ModelInfo:
        return info if isinstance(info, ModelInfo) else cls.from_json(info)

    def to_json(self) -> dict[str, Any]:
        """The fields in the order ``attention_lab.json`` has always had them."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        order = ("variant", "seed", "base_model", "task", "method", "mechanism", "label_names")
        return {**{key: data.pop(key) for key in order}, **data, **self.extra}
