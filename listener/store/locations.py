"""Where each stored mention lives: mention id → the monthly indices that may hold a copy.

The indexer needs this to keep one copy per mention when a re-crawl moves a
mention's ``published_at`` into another month. It is coordination state, kept
beside the checkpoints rather than in the search engine (an entry per mention
in the engine made every bulk request twice as long, and the engine charges
per item):

* one machine (the default): a SQLite file, ``LISTENER_HOME/mention-locations.sqlite3``;
* clustered (``[cluster] redis_url``): a Redis hash, ``listener:<namespace>:mention-locations``,
  so every worker sees every other worker's mentions.

An entry only ever grows (a moved mention names its old and its new index)
until retention drops an index or ``listener forget`` erases the mention: a
name left over costs one harmless delete answered 404 when the mention is
written again, a name missing would leave a duplicate behind. The indexer
records a batch *before* writing it, so a crash at any point leaves every
copy named.

The record is rebuildable from the index (:meth:`LocationStore.add`, driven
by the indexer), and a token kept both here and in the engine tells whether
the two belong together: a lost file, a flushed Redis or another cluster
behind the same prefix makes the indexer fill the record again from the
alias.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, cast

from listener.config import ProjectConfig
from listener.errors import ListenerError
from listener.store.sqlite_record import SqliteRecord

if TYPE_CHECKING:
    import redis

#: The SQLite file under LISTENER_HOME (one machine).
LOCATIONS_FILE = "mention-locations.sqlite3"
#: The Redis hash under ``listener:<namespace>:`` (clustered).
LOCATIONS_KEY = "mention-locations"
#: The hash field holding the token (mention ids are hex digests, so no clash).
_TOKEN_FIELD = "_token"
_CHUNK = 500

# One round trip per batch: merge each id's batch indices into its entry and return the
# entries as they were, atomically (two workers never lose each other's names).
_MERGE_SCRIPT = """
local out = {}
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  local merged = old or ''
  out[#out + 1] = merged
  for name in string.gmatch(ARGV[i + 1], '[^,]+') do
    if not string.find(',' .. merged .. ',', ',' .. name .. ',', 1, true) then
      if merged == '' then merged = name else merged = merged .. ',' .. name end
    end
  end
  if merged ~= old then redis.call('HSET', KEYS[1], ARGV[i], merged) end
end
return out
"""


class LocationsUnavailable(ListenerError):
    """The location record (SQLite file or Redis) cannot be read or written."""


def _split(value: str | None) -> list[str]:
    return [name for name in (value or "").split(",") if name]


def _chunks(items: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class LocationStore(ABC):
    """Mention id → the monthly indices that may hold a copy, for one index prefix."""

    #: Where the record lives, for messages.
    where: str

    @abstractmethod
    def merge(self, entries: dict[str, list[str]]) -> dict[str, list[str]]:
        """Add each id's indices to its entry; returns the entries as they were before.

        Atomic: concurrent writers never drop each other's names. Ids without
        an entry map to ``[]``.
        """

    @abstractmethod
    def lookup(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """The recorded indices of ``ids`` (ids without an entry are left out)."""

    @abstractmethod
    def forget_ids(self, ids: Iterable[str]) -> None:
        """Remove the entries of erased mentions."""

    @abstractmethod
    def forget_indices(self, indices: Iterable[str]) -> int:
        """Remove dropped indices from every entry (entries naming only them go); returns
        how many entries changed."""

    @abstractmethod
    def count(self) -> int:
        """How many mentions have an entry."""

    @abstractmethod
    def token(self) -> str | None:
        """The token of the engine this record was last filled against (None: never)."""

    @abstractmethod
    def set_token(self, token: str) -> None:
        """Remember the engine's token once the record holds everything it stores."""

    def add(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Record (id, index) pairs, e.g. from a scan of the alias; returns how many."""
        count = 0
        for chunk in _chunks(pairs, 1000):
            entries: dict[str, list[str]] = {}
            for mention_id, index in chunk:
                entries.setdefault(mention_id, []).append(index)
            self.merge(entries)
            count += len(chunk)
        return count

    @abstractmethod
    def close(self) -> None:
        """Release the connection (a store reconnects when used again)."""


class SqliteLocations(SqliteRecord, LocationStore):
    """The record in a SQLite file (WAL), shared by every process using one ``LISTENER_HOME``."""

    TABLES = (
        "CREATE TABLE IF NOT EXISTS locations (prefix TEXT NOT NULL, id TEXT NOT NULL, "
        "indices TEXT NOT NULL, PRIMARY KEY (prefix, id)) WITHOUT ROWID",
    )
    DESCRIPTION = "mention location record"
    UNAVAILABLE = LocationsUnavailable

    def _select(self, connection: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT id, indices FROM locations WHERE prefix = ? AND id IN ({marks})",
                [self.prefix, *chunk],
            )
            found.update(rows)
        return found

    def merge(self, entries: dict[str, list[str]]) -> dict[str, list[str]]:
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    before = self._select(connection, list(entries))
                    writes = []
                    for mention_id, indices in entries.items():
                        recorded = _split(before.get(mention_id))
                        merged = recorded + [i for i in dict.fromkeys(indices) if i not in recorded]
                        if merged != recorded:
                            writes.append((self.prefix, mention_id, ",".join(merged)))
                    connection.executemany(
                        "INSERT OR REPLACE INTO locations (prefix, id, indices) VALUES (?, ?, ?)",
                        writes,
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self._error("update", error) from None
        return {mention_id: _split(before.get(mention_id)) for mention_id in entries}

    def lookup(self, ids: Iterable[str]) -> dict[str, list[str]]:
        with self._lock:
            try:
                found = self._select(self._connect(), list(ids))
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return {mention_id: _split(value) for mention_id, value in found.items()}

    def forget_ids(self, ids: Iterable[str]) -> None:
        with self._lock:
            try:
                self._connect().executemany(
                    "DELETE FROM locations WHERE prefix = ? AND id = ?",
                    [(self.prefix, mention_id) for mention_id in ids],
                )
            except sqlite3.Error as error:
                raise self._error("update", error) from None

    def forget_indices(self, indices: Iterable[str]) -> int:
        dropped = set(indices)
        changed = 0
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for name in dropped:
                        rows = connection.execute(
                            "SELECT id, indices FROM locations WHERE prefix = ? "
                            "AND instr(',' || indices || ',', ?) > 0",
                            (self.prefix, f",{name},"),
                        ).fetchall()
                        for mention_id, value in rows:
                            remaining = [i for i in _split(value) if i not in dropped]
                            if remaining:
                                connection.execute(
                                    "UPDATE locations SET indices = ? WHERE prefix = ? AND id = ?",
                                    (",".join(remaining), self.prefix, mention_id),
                                )
                            else:
                                connection.execute(
                                    "DELETE FROM locations WHERE prefix = ? AND id = ?",
                                    (self.prefix, mention_id),
                                )
                            changed += 1
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self._error("update", error) from None
        return changed

    def count(self) -> int:
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT count(*) FROM locations WHERE prefix = ?", (self.prefix,))
                    .fetchone()
                )
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return int(row[0])


class RedisLocations(LocationStore):
    """The record in one Redis hash, shared by the whole fleet."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.where = f"Redis key {key}"
        self._merge = client.register_script(_MERGE_SCRIPT)

    def _error(self, error: Exception) -> LocationsUnavailable:
        return LocationsUnavailable(
            f"could not use the mention location record ({self.where}): {error}; check that "
            "Redis ([cluster] redis_url) is up"
        )

    def merge(self, entries: dict[str, list[str]]) -> dict[str, list[str]]:
        import redis

        ids = list(entries)
        arguments = [value for i in ids for value in (i, ",".join(entries[i]))]
        try:
            before = cast(list[str], self._merge(keys=[self.key], args=arguments))
        except redis.RedisError as error:
            raise self._error(error) from None
        return {mention_id: _split(value) for mention_id, value in zip(ids, before, strict=True)}

    def lookup(self, ids: Iterable[str]) -> dict[str, list[str]]:
        import redis

        wanted = list(ids)
        if not wanted:
            return {}
        try:
            values = cast(list[str | None], self.client.hmget(self.key, wanted))
        except redis.RedisError as error:
            raise self._error(error) from None
        return {i: _split(value) for i, value in zip(wanted, values, strict=True) if value}

    def forget_ids(self, ids: Iterable[str]) -> None:
        import redis

        try:
            for chunk in _chunks(ids):
                self.client.hdel(self.key, *chunk)
        except redis.RedisError as error:
            raise self._error(error) from None

    def forget_indices(self, indices: Iterable[str]) -> int:
        import redis

        dropped = set(indices)
        changed = 0
        try:
            pipe = self.client.pipeline(transaction=False)
            for mention_id, value in self.client.hscan_iter(self.key, count=1000):
                if mention_id == _TOKEN_FIELD:
                    continue
                names = _split(value)
                if dropped.isdisjoint(names):
                    continue
                remaining = [i for i in names if i not in dropped]
                # Only if unchanged meanwhile would be stricter; a name kept is harmless.
                if remaining:
                    pipe.hset(self.key, mention_id, ",".join(remaining))
                else:
                    pipe.hdel(self.key, mention_id)
                changed += 1
            pipe.execute()
        except redis.RedisError as error:
            raise self._error(error) from None
        return changed

    def count(self) -> int:
        import redis

        try:
            total = int(cast(int, self.client.hlen(self.key)))
            return total - int(bool(self.client.hexists(self.key, _TOKEN_FIELD)))
        except redis.RedisError as error:
            raise self._error(error) from None

    def token(self) -> str | None:
        import redis

        try:
            value = self.client.hget(self.key, _TOKEN_FIELD)
        except redis.RedisError as error:
            raise self._error(error) from None
        return str(value) if value else None

    def set_token(self, token: str) -> None:
        import redis

        try:
            self.client.hset(self.key, _TOKEN_FIELD, token)
        except redis.RedisError as error:
            raise self._error(error) from None

    def close(self) -> None:
        self.client.close()


def locations_for(config: ProjectConfig) -> LocationStore:
    """The project's location record: Redis when clustered, else a file under LISTENER_HOME."""
    url = config.cluster.redis_url
    if url:
        from listener.service.state import namespace, redis_client

        return RedisLocations(redis_client(url), f"{namespace(config)}{LOCATIONS_KEY}")
    return SqliteLocations(config.home / LOCATIONS_FILE, config.elasticsearch.index_prefix)
