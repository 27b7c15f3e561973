"""Parameters validated by pydantic, its errors reworded into the project's one line.

A settings class is a pydantic dataclass whose fields carry their types and bounds
(``Annotated[int, Field(gt=0)]``) and which forbids unknown keys; :func:`validated` builds it
from a parameters mapping, and any pydantic error becomes one :class:`ConfigError` that names
where the value sits, what is wrong and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, Field, StrictInt, TypeAdapter, ValidationError

from attention_lab.errors import ConfigError

T = TypeVar("T")
PositiveNumber = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[StrictInt, Field(ge=1)]  # a whole number >= 1 (true/false and 1.0 refused)
Index = Annotated[StrictInt, Field(ge=0)]
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
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
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


def reworded(error: ValidationError, cls: type, where: str, skip: int = 0) -> ConfigError:
    """pydantic's errors (several lines, one per problem) as one line about the first;
    ``skip``: leading parts of each location that are not keys (a union's tag)."""
    problems = [p | {"loc": p["loc"][skip:]} for p in error.errors(include_url=False)]
    unknown = [
        p for p in problems if p["type"] in ("unexpected_keyword_argument", "extra_forbidden")
    ]
    if unknown:
        path = [str(part) for part in unknown[0]["loc"][:-1] if not isinstance(part, int)]
        keys = sorted(str(p["loc"][-1]) for p in unknown if p["loc"][:-1] == unknown[0]["loc"][:-1])
        allowed = ", ".join(_field_names(_model_at(cls, path)))
        place = ".".join([where, *path])
        return ConfigError(f"{place}: unknown key(s) {keys}; allowed: {allowed}.")
    first = problems[0]
    key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    place, value, context = (
        f"{where}.{key}" if key else where,
        first.get("input"),
        first.get("ctx") or {},
    )
    if first["type"] in _EXPECTED:
        return ConfigError(f"{place}: expected {_EXPECTED[first['type']]}, got {value!r}.")
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if first["type"] in bounds:
        bound = next(iter(context.values()))
        return ConfigError(f"{place}: must be {bounds[first['type']]} {bound:g}, got {value!r}.")
    if first["type"] == "value_error":  # a model's own check: its message says it all
        return ConfigError(f"{place}: {context['error']}, got {value!r}.")
    if first["type"] == "literal_error":  # one of a fixed set of names
        allowed = ", ".join(
            first["ctx"]["expected"].replace("'", "").replace(" or ", ", ").split(", ")
        )
        return ConfigError(f"{place}: unknown value {value!r}; allowed: {allowed}.")
    if first["type"] == "too_short":
        return ConfigError(f"{place}: expected at least one value, got {value!r}.")
    return ConfigError(f"{place}: {first['msg'][:1].lower()}{first['msg'][1:]}, got {value!r}.")


def _field_names(cls: type) -> list[str]:
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return [f.name for f in fields(cls)] if is_dataclass(cls) else []


def _model_at(cls: type, path: list[str]) -> type:
    """The settings class found by following ``path`` (field names) down from ``cls``."""
    for name in path:
        if isinstance(cls, type) and issubclass(cls, BaseModel) and name in cls.model_fields:
            annotation = cls.model_fields[name].annotation
        elif is_dataclass(cls) and name in {f.name for f in fields(cls)}:
            annotation = {f.name: f.type for f in fields(cls)}[name]
        else:
            return cls
        # X | None: the model X
        cls = next((a for a in (annotation, *get_args(annotation)) if isinstance(a, type)), cls)
    return cls
