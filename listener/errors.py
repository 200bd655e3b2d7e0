"""The exceptions listener raises at its boundaries.

Every message names the offending file, key or value and says what to do.
"""


class ListenerError(Exception):
    """Base class: anything listener reports to the user as a one-line reason."""


class ConfigError(ListenerError):
    """The project file (or an environment variable it names) is invalid."""


class PluginError(ListenerError):
    """A source plugin cannot be loaded, is incompatible, or was misconfigured."""


class EngineError(ListenerError):
    """The embedded engine could not be started or the cluster cannot be reached."""


class IndexingError(ListenerError):
    """Documents could not be written and could not be spooled either."""
