"""One exception family, so a user sees one clear message instead of a traceback."""


class AttentionLabError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class ConfigError(AttentionLabError, ValueError):
    """A parameter has a wrong value; raised before any work starts."""


class DataError(AttentionLabError, ValueError):
    """Input data is missing, malformed or empty."""


class ArtifactError(AttentionLabError, FileNotFoundError):
    """A catalogued artifact is missing, incomplete or from an incompatible version."""
