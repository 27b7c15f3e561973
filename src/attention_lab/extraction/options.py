"""Extraction options, checked against the model's shape before any work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attention_lab.errors import ConfigError
from attention_lab.kinds import AttentionKind, norm_kind
from attention_lab.models.shape import ModelShape
from attention_lab.parameters import ExtractionSettings


@dataclass(frozen=True)
class ExtractionOptions:
    """What to extract: stored layers and heads, length, batch size and grid precision.

    ``layers`` lists the stored layer indices (every layer of the deepest stack when
    ``all_layers``: each stack then keeps all of its own, even where an encoder-decoder's
    stacks differ in depth); a subset must exist in every stack.
    """

    layers: list[int]
    heads: list[int]
    all_layers: bool = True
    all_heads: bool = True
    batch_size: int = 16
    max_length: int = 128
    precision_bits: int | None = 11  # None: exact maps
    norms: bool = False  # also store norm-based attention (Kobayashi et al., 2020) per kind
    shard: tuple[int, int] | None = None  # (index, count): this job's share of the probe set

    @property
    def step_bits(self) -> int | None:
        """The grid on which attention weights are kept as whole uint16 steps: the precision
        when every ``k / 2**bits`` up to 1 is exact in float16 (``bits <= 11``), so a step
        decodes to the very float16 the map held; else None (exact maps, or a finer grid)."""
        bits = self.precision_bits
        return bits if bits is not None and bits <= 11 else None

    def grid_of(self, kind: str) -> int | None:
        """The grid steps the maps of ``kind`` travel and are stored as: :attr:`step_bits` for
        attention weights; None for norm-based maps, which are not bounded by 1."""
        return None if AttentionKind.parse(kind).norms else self.step_bits

    def shard_rows(self, n: int) -> range:
        """The probe-set rows of this shard: a contiguous block, shard 0 first."""
        if self.shard is None:
            return range(n)
        index, count = self.shard
        return range(index * n // count, (index + 1) * n // count)

    def kinds(self, shape: ModelShape) -> list[str]:
        """The stored map kinds: the model's own, then their ``_norm`` kinds when asked."""
        return [*shape.kinds, *([norm_kind(k) for k in shape.kinds] if self.norms else [])]

    @classmethod
    def parse(
        cls, params: ExtractionSettings | Mapping[str, Any] | None, shape: ModelShape
    ) -> ExtractionOptions:
        """The options of ``attention_extraction`` for a model of this ``shape``."""
        settings = ExtractionSettings.of(params)
        deepest, shallowest = max(shape.num_layers.values()), min(shape.num_layers.values())
        layers = sorted(settings.layers or range(deepest))
        heads = sorted(settings.heads or range(shape.num_heads))
        if settings.layers and layers[-1] >= shallowest:
            raise ConfigError(
                f"attention_extraction.layers: {layers}; valid indices are 0..{shallowest - 1}"
                + (" (in every stack)" if len(set(shape.num_layers.values())) > 1 else "")
                + "."
            )
        if heads[-1] >= shape.num_heads:
            raise ConfigError(
                f"attention_extraction.heads: {heads}; valid indices are 0..{shape.num_heads - 1}."
            )
        shard = settings.shard
        return cls(
            shard=None if shard is None else (shard.index, shard.count),
            norms=settings.norms,
            layers=layers,
            heads=heads,
            all_layers=not settings.layers
            or layers == list(range(shallowest)) == list(range(deepest)),
            all_heads=not settings.heads or heads == list(range(shape.num_heads)),
            batch_size=settings.batch_size,
            max_length=settings.max_length,
            precision_bits=settings.precision_bits,
        )
