"""``parameters_attention_extraction.yml``: the ``attention_extraction`` section.

What can be checked without the model is checked here; layer and head indices against the
model's shape are checked by :meth:`attention_lab.extraction.options.ExtractionOptions.parse`.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StrictBool, StrictInt, model_validator

from attention_lab.parameters.base import Settings
from attention_lab.validation import Count, Index


class ShardSettings(Settings):
    """``attention_extraction.shard``: this job extracts block ``index`` of ``count``."""

    SECTION = "attention_extraction.shard"
    index: Index
    count: Count

    @model_validator(mode="after")
    def _index_in_range(self) -> Self:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} must be in 0..{self.count - 1}")
        return self


class ExtractionSettings(Settings):
    """``attention_extraction``: stored layers and heads, length, batch, grid, norms, shard."""

    SECTION = "attention_extraction"
    layers: tuple[Index, ...] | None = None  # null: every layer
    heads: tuple[Index, ...] | None = None  # null: every head
    max_length: Count = 128
    batch_size: Count = 16
    # round to a 2^-bits grid (row sums kept); null: exact maps
    precision_bits: Annotated[StrictInt, Field(ge=8, le=23)] | None = 11
    norms: StrictBool = False  # also store norm-based attention (Kobayashi et al., 2020)
    shard: ShardSettings | None = None
