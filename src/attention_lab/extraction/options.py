"""Extraction options, checked against the model's shape before any work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attention_lab.errors import ConfigError
from attention_lab.models.shape import ModelShape


@dataclass(frozen=True)
class ExtractionOptions:
    """What to extract: stored layers and heads, length, batch size and grid precision."""

    layers: list[int]
    heads: list[int]
    num_layers: int
    num_heads: int
    batch_size: int = 16
    max_length: int = 128
    precision_bits: int | None = 11  # None: exact maps

    @property
    def all_layers(self) -> bool:
        return self.layers == list(range(self.num_layers))

    @property
    def all_heads(self) -> bool:
        return self.heads == list(range(self.num_heads))

    @classmethod
    def parse(cls, params: dict[str, Any], shape: ModelShape) -> ExtractionOptions:
        num_layers = max(shape.num_layers.values())
        layers = sorted(params.get("layers") or range(num_layers))
        heads = sorted(params.get("heads") or range(shape.num_heads))
        if any(not 0 <= i < num_layers for i in layers):
            raise ConfigError(
                f"attention_extraction.layers: {layers}; valid indices are 0..{num_layers - 1}."
            )
        if any(not 0 <= h < shape.num_heads for h in heads):
            raise ConfigError(
                f"attention_extraction.heads: {heads}; valid indices are 0..{shape.num_heads - 1}."
            )
        bits = params.get("precision_bits", 11)
        if bits is not None and (not isinstance(bits, int) or not 8 <= bits <= 23):
            raise ConfigError(
                f"attention_extraction.precision_bits: {bits!r}; allowed: null (exact) or an integer 8..23."
            )
        return cls(
            layers=layers,
            heads=heads,
            num_layers=num_layers,
            num_heads=shape.num_heads,
            batch_size=int(params.get("batch_size", 16)),
            max_length=int(params.get("max_length", 128)),
            precision_bits=bits,
        )
