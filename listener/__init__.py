"""listener: a self-hosted social listening crawler."""

from listener.sdk.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
