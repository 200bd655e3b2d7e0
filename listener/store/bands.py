"""Duplicate bands: band key → the cluster heads that are candidates for a new mention's copies.

The in-crawl near-duplicate lookup (:mod:`listener.crawl.dedupe`) asks, for
each batch, which stored mentions share a MinHash band with it. That is
coordination state, kept like the mention locations
(:mod:`listener.store.locations`) beside the checkpoints and not in the
search engine (a band index in the engine answered more slowly as it grew:
6.9 s a batch at 20,000 stored mentions):

* one machine (the default): a SQLite file, ``LISTENER_HOME/dedupe-bands.sqlite3``;
* clustered (``[cluster] redis_url``): three Redis hashes under
  ``listener:<namespace>:dedupe-`` (``bands``: band → ids, ``heads``: id →
  head, ``members``: id → its bands), so every worker finds every other
  worker's mentions.

A band names at most ``limit`` heads, the first ones recorded; a head is kept
once (its cluster id, exact key, signature and monthly index) however many
bands name it, and knows its bands so that retention (:meth:`BandStore.forget_indices`)
and ``listener forget`` (:meth:`BandStore.forget_ids`) take it out of every
band: an erased mention is no candidate any more.

The record is rebuildable from the index, and paired with the engine by the
same token as the location record (``<prefix>-mention-locations``): a lost
file, a flushed Redis, another engine behind the same prefix, or a home made
by a listener that kept the bands in a ``<prefix>-dedupe-bands`` index makes
the lookup refill it from the alias (and delete that old index).
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from listener.errors import ListenerError
from listener.store.sqlite_record import SqliteRecord

if TYPE_CHECKING:
    import redis

    from listener.config import ProjectConfig

#: The SQLite file under LISTENER_HOME (one machine).
BANDS_FILE = "dedupe-bands.sqlite3"
#: The Redis keys under ``listener:<namespace>:`` (clustered): ``dedupe-bands`` etc.
BANDS_KEY = "dedupe-"
#: The field of the ``bands`` hash holding the token (band keys are ``N:hex``: no clash).
_TOKEN_FIELD = "_token"
#: Heads a band keeps unless told otherwise (the crawl passes its ``MENTIONS_PER_BAND``).
HEADS_PER_BAND = 4
_CHUNK = 500
#: How much of the SQLite file is memory-mapped (address space, not resident memory).
_MMAP_BYTES = 1 << 30


class BandsUnavailable(ListenerError):
    """The duplicate band record (SQLite file or Redis) cannot be read or written."""


@dataclass(frozen=True)
class Head:
    """A stored mention that is a duplicate candidate in the bands it heads."""

    id: str
    cluster_id: str
    exact: str
    signature: str
    #: The monthly index it was written to.
    index: str

    def encode(self) -> str:
        return json.dumps(
            [self.cluster_id, self.exact, self.signature, self.index], separators=(",", ":")
        )

    @classmethod
    def decode(cls, mention_id: str, text: str) -> Head:
        cluster_id, exact, signature, index = json.loads(text)
        return cls(mention_id, cluster_id, exact, signature, index)


def _split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def _chunks(items: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class BandStore(ABC):
    """Band key → cluster heads (at most ``limit`` per band), for one index prefix."""

    #: Where the record lives, for messages.
    where: str
    #: Heads a band keeps.
    limit: int

    def heads(self, keys: Sequence[str]) -> list[Head]:
        """The heads of the bands ``keys``, band by band, each band's first recorded first,
        each head once."""
        members = self.members(keys)
        return self.heads_of(list(dict.fromkeys(i for key in keys for i in members.get(key, ()))))

    @abstractmethod
    def members(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """The ids each of the bands ``keys`` names, first recorded first (empty bands left out)."""

    @abstractmethod
    def heads_of(self, ids: Sequence[str]) -> list[Head]:
        """The recorded heads among ``ids``, in that order."""

    @abstractmethod
    def add(self, entries: Sequence[tuple[Head, Sequence[str]]]) -> int:
        """Make each head a candidate in those of its bands that have room; returns how many
        band places were taken.

        Atomic: concurrent writers never drop each other's heads. A head
        already recorded is updated (e.g. its monthly index after a move).
        """

    @abstractmethod
    def forget_ids(self, ids: Iterable[str]) -> int:
        """Take erased mentions out of every band; returns how many were heads."""

    @abstractmethod
    def forget_indices(self, indices: Iterable[str]) -> int:
        """Take the heads stored in dropped monthly indices out of every band; returns how many."""

    @abstractmethod
    def count(self) -> int:
        """How many heads are recorded."""

    @abstractmethod
    def clear(self) -> None:
        """Forget everything (before a refill from the index)."""

    @abstractmethod
    def token(self) -> str | None:
        """The token of the engine this record was last filled against (None: never)."""

    @abstractmethod
    def set_token(self, token: str) -> None:
        """Remember the engine's token once the record holds what the engine stores."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (a store reconnects when used again)."""


class SqliteBands(SqliteRecord, BandStore):
    """The record in a SQLite file (WAL), shared by every process using one ``LISTENER_HOME``."""

    TABLES = (
        "CREATE TABLE IF NOT EXISTS bands (prefix TEXT NOT NULL, band TEXT NOT NULL, "
        "ids TEXT NOT NULL, PRIMARY KEY (prefix, band)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS heads (prefix TEXT NOT NULL, id TEXT NOT NULL, "
        "head TEXT NOT NULL, bands TEXT NOT NULL, PRIMARY KEY (prefix, id)) WITHOUT ROWID",
    )
    # A batch touches about a thousand bands spread over the whole file: read them
    # through the OS page cache without a system call per page.
    PRAGMAS = (f"PRAGMA mmap_size={_MMAP_BYTES}",)
    DESCRIPTION = "duplicate band record"
    UNAVAILABLE = BandsUnavailable

    def __init__(self, path: Path, prefix: str, limit: int) -> None:
        super().__init__(path, prefix)
        self.limit = limit

    def _select(self, connection: sqlite3.Connection, table: str, keys: list[str]) -> dict:
        column = "band, ids" if table == "bands" else "id, head, bands"
        where = "band" if table == "bands" else "id"
        found: dict[str, Any] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT {column} FROM {table} WHERE prefix = ? AND {where} IN ({marks})",
                [self.prefix, *chunk],
            )
            for row in rows:
                found[row[0]] = row[1] if table == "bands" else row[1:]
        return found

    def _transaction(self, action: str, work: Any) -> Any:
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self._error(action, error) from None
        return result

    def members(self, keys: Sequence[str]) -> dict[str, list[str]]:
        with self._lock:
            try:
                bands = self._select(self._connect(), "bands", list(keys))
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return {key: _split(value) for key, value in bands.items()}

    def heads_of(self, ids: Sequence[str]) -> list[Head]:
        with self._lock:
            try:
                found = self._select(self._connect(), "heads", list(ids))
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return [Head.decode(i, found[i][0]) for i in ids if i in found]

    def add(self, entries: Sequence[tuple[Head, Sequence[str]]]) -> int:
        if not entries:
            return 0

        def work(connection: sqlite3.Connection) -> int:
            keys = list(dict.fromkeys(key for _, bands in entries for key in bands))
            found = self._select(connection, "bands", keys)
            bands = {key: _split(value) for key, value in found.items()}
            heads = self._select(connection, "heads", [head.id for head, _ in entries])
            changed_bands: set[str] = set()
            changed_heads: dict[str, tuple[str, list[str]]] = {}
            taken = 0
            for head, keys_of_head in entries:
                old = changed_heads.get(head.id) or (
                    (heads[head.id][0], _split(heads[head.id][1])) if head.id in heads else None
                )
                member_of = list(old[1]) if old else []
                for key in keys_of_head:
                    ids = bands.setdefault(key, [])
                    if head.id in ids or len(ids) >= self.limit:
                        continue
                    ids.append(head.id)
                    changed_bands.add(key)
                    member_of.append(key)
                    taken += 1
                if member_of:
                    changed_heads[head.id] = (head.encode(), member_of)
            connection.executemany(
                "INSERT OR REPLACE INTO bands (prefix, band, ids) VALUES (?, ?, ?)",
                [(self.prefix, key, ",".join(bands[key])) for key in changed_bands],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO heads (prefix, id, head, bands) VALUES (?, ?, ?, ?)",
                [(self.prefix, i, text, ",".join(m)) for i, (text, m) in changed_heads.items()],
            )
            return taken

        return int(self._transaction("update", work))

    def _forget(self, connection: sqlite3.Connection, ids: list[str]) -> int:
        heads = self._select(connection, "heads", ids)
        keys = list(dict.fromkeys(key for _, members in heads.values() for key in _split(members)))
        bands = self._select(connection, "bands", keys)
        gone = set(heads)
        writes, deletes = [], []
        for key in keys:
            kept = [i for i in _split(bands.get(key)) if i not in gone]
            if kept:
                writes.append((",".join(kept), self.prefix, key))
            else:
                deletes.append((self.prefix, key))
        connection.executemany("UPDATE bands SET ids = ? WHERE prefix = ? AND band = ?", writes)
        connection.executemany("DELETE FROM bands WHERE prefix = ? AND band = ?", deletes)
        connection.executemany(
            "DELETE FROM heads WHERE prefix = ? AND id = ?", [(self.prefix, i) for i in gone]
        )
        return len(gone)

    def forget_ids(self, ids: Iterable[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        return int(self._transaction("update", lambda c: self._forget(c, wanted)))

    def forget_indices(self, indices: Iterable[str]) -> int:
        dropped = set(indices)

        def work(connection: sqlite3.Connection) -> int:
            rows = connection.execute("SELECT id, head FROM heads WHERE prefix = ?", (self.prefix,))
            ids = [i for i, text in rows if Head.decode(i, text).index in dropped]
            return self._forget(connection, ids)

        return int(self._transaction("update", work))

    def count(self) -> int:
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT count(*) FROM heads WHERE prefix = ?", (self.prefix,))
                    .fetchone()
                )
            except sqlite3.Error as error:
                raise self._error("read", error) from None
        return int(row[0])

    def clear(self) -> None:
        def work(connection: sqlite3.Connection) -> None:
            for table in ("bands", "heads", "tokens"):
                connection.execute(f"DELETE FROM {table} WHERE prefix = ?", (self.prefix,))

        self._transaction("update", work)


# KEYS: bands, heads, members. ARGV: limit, then (id, head, "band,band,...") per head.
# Returns how many band places were taken.
_ADD_SCRIPT = """
local limit = tonumber(ARGV[1])
local taken = 0
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local joined = {}
  for band in string.gmatch(ARGV[i + 2], '[^,]+') do
    local ids = redis.call('HGET', KEYS[1], band)
    if not ids then
      redis.call('HSET', KEYS[1], band, id)
      joined[#joined + 1] = band
    elseif not string.find(',' .. ids .. ',', ',' .. id .. ',', 1, true) then
      local _, commas = string.gsub(ids, ',', '')
      if commas + 1 < limit then
        redis.call('HSET', KEYS[1], band, ids .. ',' .. id)
        joined[#joined + 1] = band
      end
    end
  end
  taken = taken + #joined
  local members = redis.call('HGET', KEYS[3], id)
  if #joined > 0 then
    local list = table.concat(joined, ',')
    if members then list = members .. ',' .. list end
    redis.call('HSET', KEYS[3], id, list)
    redis.call('HSET', KEYS[2], id, ARGV[i + 1])
  elseif members then
    redis.call('HSET', KEYS[2], id, ARGV[i + 1])
  end
end
return taken
"""

# KEYS: bands, heads, members. ARGV: ids. Returns how many were heads.
_FORGET_SCRIPT = """
local gone = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local members = redis.call('HGET', KEYS[3], id)
  if members then
    gone = gone + 1
    for band in string.gmatch(members, '[^,]+') do
      local ids = redis.call('HGET', KEYS[1], band)
      if ids then
        local kept = {}
        for other in string.gmatch(ids, '[^,]+') do
          if other ~= id then kept[#kept + 1] = other end
        end
        if #kept > 0 then
          redis.call('HSET', KEYS[1], band, table.concat(kept, ','))
        else
          redis.call('HDEL', KEYS[1], band)
        end
      end
    end
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('HDEL', KEYS[2], id)
end
return gone
"""


class RedisBands(BandStore):
    """The record in three Redis hashes, shared by the whole fleet."""

    def __init__(self, client: redis.Redis, key: str, limit: int) -> None:
        self.client = client
        self.keys = [f"{key}bands", f"{key}heads", f"{key}members"]
        self.limit = limit
        self.where = f"Redis keys {key}bands/heads/members"
        self._add = client.register_script(_ADD_SCRIPT)
        self._forget = client.register_script(_FORGET_SCRIPT)

    def _error(self, error: Exception) -> BandsUnavailable:
        return BandsUnavailable(
            f"could not use the duplicate band record ({self.where}): {error}; check that "
            "Redis ([cluster] redis_url) is up"
        )

    def members(self, keys: Sequence[str]) -> dict[str, list[str]]:
        import redis

        wanted = list(keys)
        if not wanted:
            return {}
        try:
            values = cast(list[str | None], self.client.hmget(self.keys[0], wanted))
        except redis.RedisError as error:
            raise self._error(error) from None
        return {key: _split(value) for key, value in zip(wanted, values, strict=True) if value}

    def heads_of(self, ids: Sequence[str]) -> list[Head]:
        import redis

        wanted = list(ids)
        if not wanted:
            return []
        try:
            texts = cast(list[str | None], self.client.hmget(self.keys[1], wanted))
        except redis.RedisError as error:
            raise self._error(error) from None
        return [Head.decode(i, text) for i, text in zip(wanted, texts, strict=True) if text]

    def add(self, entries: Sequence[tuple[Head, Sequence[str]]]) -> int:
        import redis

        if not entries:
            return 0
        arguments: list[str | int] = [self.limit]
        for head, keys in entries:
            arguments += [head.id, head.encode(), ",".join(keys)]
        try:
            return int(cast(int, self._add(keys=self.keys, args=arguments)))
        except redis.RedisError as error:
            raise self._error(error) from None

    def forget_ids(self, ids: Iterable[str]) -> int:
        import redis

        gone = 0
        try:
            for chunk in _chunks(ids):
                gone += int(cast(int, self._forget(keys=self.keys, args=chunk)))
        except redis.RedisError as error:
            raise self._error(error) from None
        return gone

    def forget_indices(self, indices: Iterable[str]) -> int:
        import redis

        dropped = set(indices)
        try:
            ids = [
                mention_id
                for mention_id, text in self.client.hscan_iter(self.keys[1], count=1000)
                if Head.decode(mention_id, text).index in dropped
            ]
        except redis.RedisError as error:
            raise self._error(error) from None
        return self.forget_ids(ids)

    def count(self) -> int:
        import redis

        try:
            return int(cast(int, self.client.hlen(self.keys[1])))
        except redis.RedisError as error:
            raise self._error(error) from None

    def clear(self) -> None:
        import redis

        try:
            self.client.delete(*self.keys)
        except redis.RedisError as error:
            raise self._error(error) from None

    def token(self) -> str | None:
        import redis

        try:
            value = self.client.hget(self.keys[0], _TOKEN_FIELD)
        except redis.RedisError as error:
            raise self._error(error) from None
        return str(value) if value else None

    def set_token(self, token: str) -> None:
        import redis

        try:
            self.client.hset(self.keys[0], _TOKEN_FIELD, token)
        except redis.RedisError as error:
            raise self._error(error) from None

    def close(self) -> None:
        self.client.close()


def bands_for(config: ProjectConfig, limit: int = HEADS_PER_BAND) -> BandStore:
    """The project's band record: Redis when clustered, else a file under LISTENER_HOME."""
    url = config.cluster.redis_url
    if url:
        from listener.service.state import namespace, redis_client

        return RedisBands(redis_client(url), f"{namespace(config)}{BANDS_KEY}", limit)
    return SqliteBands(config.home / BANDS_FILE, config.elasticsearch.index_prefix, limit)
