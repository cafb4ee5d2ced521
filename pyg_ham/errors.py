"""Errors that pyg-ham raises for bad user input.

Every such error carries a one-line message that says what is wrong and how to fix it;
the CLI prints it and exits with status 2 instead of showing a traceback.
"""


class PygHamError(Exception):
    """Base class of user-facing errors (bad input, missing data, missing extras)."""


class DatasetError(PygHamError):
    """A dataset is unknown, absent offline, or cannot be loaded."""


class ConfigError(PygHamError, ValueError):
    """A configuration value (flag, YAML key, hyper-parameter) is invalid."""


class MissingDependencyError(PygHamError, ImportError):
    """An optional dependency (an extra such as ``pyg-ham[llm]``) is not installed."""


class DiskFullError(PygHamError, OSError):
    """A result or checkpoint could not be written: the disk (or the quota) is full."""
