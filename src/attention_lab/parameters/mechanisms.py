"""A variant's ``mechanism``: a union of one model per mechanism, keyed on ``name``.

Each model holds exactly the keys its mechanism takes, so a key given to the wrong mechanism
is named as such. :meth:`attention_lab.attention.mechanisms.MechanismSpec.from_config` turns
the parsed model into the spec every stage uses, and checks what spans several keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError

from attention_lab.errors import ConfigError
from attention_lab.parameters.base import Settings
from attention_lab.validation import Count, Index, reworded

POOLINGS = ("mean", "calibrated")  # how gqa/mqa build their shared key/value heads
# a record of a spec lists these with their defaults for every mechanism: read as absent
_NEUTRAL = {"sink_tokens": 0, "pooling": "mean"}


class _Mechanism(Settings):
    layers: tuple[Index, ...] | None = None  # layer indices it applies to; null: every layer


class MhaConfig(_Mechanism):
    """The checkpoint's own multi-head attention."""

    name: Literal["mha"] = "mha"


class GqaConfig(_Mechanism):
    """``kv_heads`` key/value heads shared by groups of query heads (Ainslie et al., 2023)."""

    name: Literal["gqa"]
    kv_heads: Count
    pooling: Literal[POOLINGS] = "mean"


class MqaConfig(_Mechanism):
    """One key/value head shared by every query head (Shazeer, 2019)."""

    name: Literal["mqa"]
    pooling: Literal[POOLINGS] = "mean"


class SlidingWindowConfig(_Mechanism):
    """Each query sees keys within ``window`` positions, plus ``sink_tokens`` first keys."""

    name: Literal["sliding_window"]
    window: Count
    sink_tokens: Index = 0


class MlaConfig(_Mechanism):
    """Multi-head latent attention by the MHA2MLA recipe (Ji et al., 2025)."""

    name: Literal["mla"]
    rank: Count
    rope_pairs: Count


class GatedConfig(_Mechanism):
    """A head-specific sigmoid gate on each head's output (Qiu et al., 2025)."""

    name: Literal["gated"]


MECHANISM_CONFIGS = (MhaConfig, GqaConfig, MqaConfig, SlidingWindowConfig, MlaConfig, GatedConfig)
BY_NAME = {get_args(cls.model_fields["name"].annotation)[0]: cls for cls in MECHANISM_CONFIGS}
MECHANISMS = tuple(BY_NAME)
MechanismConfig = Annotated[
    MhaConfig | GqaConfig | MqaConfig | SlidingWindowConfig | MlaConfig | GatedConfig,
    Field(discriminator="name"),
]
_ADAPTER = TypeAdapter(MechanismConfig)


def mechanism_config(raw: Any, where: str = "mechanism") -> _Mechanism:
    """``"mha"``, ``{name: gqa, kv_heads: 4}`` or ``None`` (mha), parsed and checked."""
    if raw is None or isinstance(raw, str):
        raw = {"name": raw or "mha"}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a name or a mapping, got {raw!r}.")
    raw = {"name": "mha"} | {
        key: value
        for key, value in raw.items()
        if value is not None and not (key in _NEUTRAL and value == _NEUTRAL[key])
    }
    name = raw["name"]
    if name not in BY_NAME:
        raise ConfigError(
            f"{where}.name: unknown mechanism {name!r}; allowed: {', '.join(MECHANISMS)}."
        )
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise _explained(exc, name, where) from None


def _explained(error: ValidationError, name: str, where: str) -> ConfigError:
    """One line; a key of another mechanism names its owner, a count names its mechanism."""
    problem = error.errors(include_url=False)[0]
    key = str(problem["loc"][1]) if len(problem["loc"]) > 1 else ""
    if problem["type"] == "extra_forbidden":
        owners = [n for n, cls in BY_NAME.items() if key in cls.model_fields]
        if owners:
            return ConfigError(
                f"{where}.{key}: only {' and '.join(owners)} take{'s' * (len(owners) == 1)} "
                f"{key} (mechanism is {name!r})."
            )
        allowed = sorted({field for cls in MECHANISM_CONFIGS for field in cls.model_fields})
        return ConfigError(f"{where}: unknown key(s) [{key!r}]; allowed: {', '.join(allowed)}.")
    if problem["type"] in ("missing", "greater_than_equal") and key != "layers":
        bound = (problem.get("ctx") or {}).get("ge", 1)
        value = problem.get("input") if problem["type"] != "missing" else None
        return ConfigError(f"{where}.{key}: {name} needs an integer >= {bound}, got {value!r}.")
    return reworded(error, BY_NAME[name], where, skip=1)  # loc starts with the union's tag
