"""One exception family, so a user sees one clear message instead of a traceback."""

from kedro.io.core import DatasetError


class AttentionLabError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class ConfigError(AttentionLabError, ValueError):
    """A parameter has a wrong value; raised before any work starts."""


class DataError(AttentionLabError, ValueError):
    """Input data is missing, malformed or empty."""


class ArtifactError(AttentionLabError, DatasetError):
    """A catalogued artifact is missing, incomplete, from an incompatible version, or could
    not be written. A Kedro ``DatasetError``, so that Kedro's dataset wrappers pass it on
    as it is instead of rewording it."""


def checked_settings(cls, raw, where: str, positive: tuple[str, ...]) -> dict:
    """``raw`` (a parameters mapping for dataclass ``cls``) checked: no unknown key, and each
    of ``positive`` an integer >= 1, else one :class:`ConfigError` line naming ``where``."""
    raw = dict(raw or {})
    allowed = list(cls.__dataclass_fields__)
    unknown = set(raw) - set(allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(allowed)}."
        )
    for key in positive:
        value = raw.get(key, getattr(cls, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}.{key}: expected an integer >= 1, got {value!r}.")
    return raw
