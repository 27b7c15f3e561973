"""The base of every parameters model: frozen, no unknown key, errors as one line."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from attention_lab.validation import validated


class Settings(BaseModel):
    """A section of the parameters. ``SECTION`` is where it sits (``analysis.statistics``),
    which every error message names."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SECTION: ClassVar[str] = "parameters"

    @classmethod
    def of(cls, raw: Any) -> Self:
        """The settings from a mapping (``None``: every default), or ``raw`` if already built."""
        if isinstance(raw, cls):
            return raw
        return validated(cls, raw, cls.SECTION)

    @classmethod
    def model_validate(cls, obj: Any, **_: Any) -> Self:
        # Kedro builds typed parameters through model_validate: the same one-line errors
        return cls.of(obj)
