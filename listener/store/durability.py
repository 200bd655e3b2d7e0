"""Knowing when the embedded engine has put acknowledged writes on disk.

A real Elasticsearch cluster fsyncs its translog before it acknowledges a
write (``index.translog.durability: request``, the default), so an
acknowledged write is durable. The embedded engine (noida-db) is not: it keeps
everything in memory and rewrites one file, ``elasticsearch.json`` in its data
directory, about once a second while something changed (measured: a
``kill -9`` within that second loses the acknowledged writes, even after
``_flush`` or ``_refresh``). Each save replaces the file by a rename, so a new
(inode, mtime) pair means a save finished; a ``_flush`` (or ``_refresh``)
marks the engine changed, so it saves again on its next tick.

:class:`EngineSaves` turns that into a confirmation. Writes acknowledged
before a :meth:`EngineSaves.mark` are on disk once two more saves have been
seen after it: the first finished after the mark (it may have started before
the writes), the second started after the first had finished, so it holds
them. Saves run one after another, so this never confirms too early; missing
a save between two looks only makes it wait longer.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The file the embedded engine saves its Elasticsearch data to, in its data directory.
ENGINE_DATA_FILE = "elasticsearch.json"
#: Seconds between looks at the file while waiting.
POLL_INTERVAL = 0.05


class DurabilityError(Exception):
    """The engine can no longer confirm writes (it stopped answering or stopped saving)."""


class EngineSaves:
    """Counts the embedded engine's saves of ``data_file`` and confirms acknowledged writes."""

    def __init__(self, client: Any, data_file: Path) -> None:
        self.client = client
        self.data_file = data_file
        self.saves = 0
        self.outstanding = 0  # the highest ticket handed out
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.data_file)
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns

    def _observe(self) -> bool:
        """Count a save if the file was replaced since the last look."""
        identity = self._stat()
        if identity is None or identity == self._identity:
            return False
        self._identity = identity
        self.saves += 1
        return True

    def _nudge(self) -> None:
        """Make the engine save again on its next tick; DurabilityError if it is gone."""
        try:
            self.client.indices.flush(allow_no_indices=True, ignore_unavailable=True)
        except Exception as error:
            raise DurabilityError(
                f"the embedded engine did not answer a flush ({type(error).__name__}); "
                "writes it acknowledged since its last save may be lost"
            ) from None

    def mark(self) -> int:
        """Call right after writes were acknowledged; returns the ticket that confirms them."""
        self._observe()
        ticket = self.saves + 2
        self.outstanding = max(self.outstanding, ticket)
        self._nudge()
        return ticket

    def poll(self) -> int:
        """Look for new saves without waiting; returns the number of saves seen so far."""
        if self._observe() and self.saves < self.outstanding:
            self._nudge()
        return self.saves

    def wait(self, ticket: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until ``ticket`` is confirmed; False if it is not."""
        deadline = time.monotonic() + timeout
        while self.poll() < ticket:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True


def engine_saves_for(client: Any, config: Any) -> EngineSaves | None:
    """An :class:`EngineSaves` for the project's embedded engine; None for a configured cluster.

    A cluster named by ``elasticsearch.url`` (or ``LISTENER_ES_URL``) is taken
    to make writes durable when it acknowledges them, as Elasticsearch does.
    """
    if config.elasticsearch.url:
        return None
    return EngineSaves(client, config.home / "engine" / ENGINE_DATA_FILE)
