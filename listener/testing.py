"""The test kit for source plugins, at the import path plugins use: ``listener.testing``.

It lives in :mod:`listener.sdk.testing` (which is also the pytest plugin that
provides the ``replay_crawl`` and ``listener_engine`` fixtures); this module
re-exports it so the path third-party tests were written against keeps working,
with the replay server's :class:`Route`, :class:`Hold` and :func:`load_site`
(from :mod:`listener.sdk.replay`) that such tests build recorded sites with.
"""

from listener.sdk.replay import Hold, Route, load_site
from listener.sdk.testing import (
    DEFAULT_BRANDS,
    ReplayResult,
    make_source,
    replay_crawl,
    respond,
    split,
    write_project,
)

__all__ = [
    "DEFAULT_BRANDS",
    "Hold",
    "ReplayResult",
    "Route",
    "load_site",
    "make_source",
    "replay_crawl",
    "respond",
    "split",
    "write_project",
]
