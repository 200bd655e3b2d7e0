"""The bundled demo site: recorded feeds and Hacker News API pages for ``listener demo``.

Serve it with :class:`listener.sdk.replay.ReplayServer` and write the project file
for that server's address::

    from listener import demo_site
    from listener.sdk.replay import ReplayServer

    with ReplayServer(demo_site.DIRECTORY) as server:
        Path("listener.toml").write_text(demo_site.project_file(server.url))
        ...  # crawl

``README.md`` in this folder lists what the site holds and what a crawl of it
should find.
"""

from __future__ import annotations

from pathlib import Path

from listener.sdk.replay import PLACEHOLDER, Route, load_site

__all__ = ["DIRECTORY", "PROJECT_TEMPLATE", "project_file", "routes"]

#: The folder holding ``routes.json`` and the recorded files.
DIRECTORY = Path(__file__).resolve().parent
#: The project-file template; ``{base_url}`` stands for the replay server's URL.
PROJECT_TEMPLATE = DIRECTORY / "listener.toml.in"


def routes() -> list[Route]:
    """The demo site's routes, read from its ``routes.json``."""
    return load_site(DIRECTORY)


def project_file(base_url: str) -> str:
    """The demo project file (TOML text) with its sources pointing at ``base_url``."""
    return PROJECT_TEMPLATE.read_text(encoding="utf-8").replace(PLACEHOLDER, base_url.rstrip("/"))
