"""The web interface: a REST API (FastAPI) and a dashboard served by ``listener serve``.

See docs/web.md. :func:`create_app` builds the app for a project;
:func:`listener.web.server.serve` runs it.
"""

from listener.web.app import create_app

__all__ = ["create_app"]
