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
