"""What listener's SQLite coordination records share (one machine, no Redis).

The mention location record (:mod:`listener.store.locations`) and the duplicate band
record (:mod:`listener.store.bands`) each keep state beside the checkpoints in a SQLite
file under ``LISTENER_HOME``, used by every process of that home: WAL mode, one
connection per process (a forked child opens its own), a lock per connection, and the
token of the engine the record was filled against. Both are rebuildable from the index,
so an error names the file and says that deleting it is safe.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from listener.errors import ListenerError


class SqliteRecord:
    """A record in a SQLite file (WAL), shared by every process using one ``LISTENER_HOME``.

    Subclasses name their tables (``TABLES``, ``CREATE TABLE IF NOT EXISTS`` statements;
    the ``tokens`` table is added here), extra ``PRAGMAS``, what the record is called in
    messages (``DESCRIPTION``) and the error they raise (``UNAVAILABLE``).
    """

    TABLES: tuple[str, ...] = ()
    PRAGMAS: tuple[str, ...] = ()
    DESCRIPTION = "record"
    UNAVAILABLE: type[ListenerError] = ListenerError

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self.where = str(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            # Survives a killed process (not a power cut, which the engine does not either).
            connection.execute("PRAGMA synchronous=NORMAL")
            for pragma in self.PRAGMAS:
                connection.execute(pragma)
            for table in (
                *self.TABLES,
                "CREATE TABLE IF NOT EXISTS tokens (prefix TEXT PRIMARY KEY, token TEXT NOT NULL)",
            ):
                connection.execute(table)
        except (OSError, sqlite3.Error) as error:
            raise self._error("open", error) from None
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _error(self, action: str, error: Exception) -> ListenerError:
        return self.UNAVAILABLE(
            f"could not {action} the {self.DESCRIPTION} {self.path} ({error}); check the "
            "disk and the file's permissions (deleting the file is safe: it is rebuilt from "
            "the index)"
        )

    def token(self) -> str | None:
        """The token of the engine this record was filled against (None: never filled)."""
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT token FROM tokens WHERE prefix = ?", (self.prefix,))
                    .fetchone()
                )
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return str(row[0]) if row else None

    def set_token(self, token: str) -> None:
        with self._lock:
            try:
                self._connect().execute(
                    "INSERT OR REPLACE INTO tokens (prefix, token) VALUES (?, ?)",
                    (self.prefix, token),
                )
            except sqlite3.Error as error:
                raise self._error("update", error) from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
