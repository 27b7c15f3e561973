"""Parameters validated by pydantic, its errors reworded into the project's one line.

A settings class is a pydantic dataclass whose fields carry their types and bounds
(``Annotated[int, Field(gt=0)]``) and which forbids unknown keys; :func:`validated` builds it
from a parameters mapping, and any pydantic error becomes one :class:`ConfigError` that names
where the value sits, what is wrong and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from attention_lab.errors import ConfigError

T = TypeVar("T")
Positive = Annotated[int, Field(gt=0)]
PositiveNumber = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
# what pydantic reports for a value of the wrong type, reworded as what was expected
_EXPECTED = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a text",
    "tuple_type": "a list",
    "list_type": "a list",
}


def validated(cls: type[T], raw: Any, where: str) -> T:
    """``cls`` built from the mapping ``raw`` (``None``: every default)."""
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}.")
    try:
        return TypeAdapter(cls).validate_python(dict(raw))
    except ValidationError as exc:
        raise reworded(exc, cls, where) from None


def reworded(error: ValidationError, cls: type, where: str) -> ConfigError:
    """pydantic's errors (several lines, one per problem) as one line about the first."""
    problems = error.errors(include_url=False)
    unknown = sorted(
        str(p["loc"][-1]) for p in problems if p["type"] == "unexpected_keyword_argument"
    )
    unknown += sorted(str(p["loc"][-1]) for p in problems if p["type"] == "extra_forbidden")
    if unknown:
        allowed = ", ".join(f.name for f in fields(cls))
        return ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {allowed}.")
    first = problems[0]
    key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    place, value, context = (
        f"{where}.{key}" if key else where,
        first.get("input"),
        first.get("ctx") or {},
    )
    if first["type"] in _EXPECTED:
        return ConfigError(f"{place}: expected {_EXPECTED[first['type']]}, got {value!r}.")
    if first["type"] == "greater_than":
        return ConfigError(f"{place}: must be > {context['gt']:g}, got {value!r}.")
    if first["type"] == "greater_than_equal":
        return ConfigError(f"{place}: must be >= {context['ge']:g}, got {value!r}.")
    return ConfigError(f"{place}: {first['msg'][:1].lower()}{first['msg'][1:]}, got {value!r}.")
