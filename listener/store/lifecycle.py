"""Data lifecycle for a service that never stops: retention by whole months, and erasure.

* :func:`apply_retention` drops the monthly indices whose every mention is
  older than ``[retention] days`` (deleting a whole index is cheap, deleting
  documents one by one is not). ``listener retention`` runs it; ``listener
  run`` calls it on its schedule.
* :func:`forget` answers an erasure request (``listener forget``): it deletes
  the mentions matching a :class:`Selector` from the index, the spool and the
  dead-letter file, and appends what it did to ``LISTENER_HOME/erasures.ndjson``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan, streaming_bulk

from listener.config import ProjectConfig
from listener.errors import IndexingError
from listener.mention import canonicalize_url
from listener.store.bands import bands_for
from listener.store.indexer import DEAD_LETTER_FILE, SPOOL_DIR, mentions_alias
from listener.store.locations import locations_for

log = logging.getLogger(__name__)

ERASURE_LOG = "erasures.ndjson"
_MONTH = re.compile(r"-(\d{4})\.(\d{2})$")


# -- retention ---------------------------------------------------------------


@dataclass(frozen=True)
class RetentionResult:
    """What a retention pass dropped (or would drop, with ``dry_run``)."""

    days: int | None
    cutoff: datetime | None
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dry_run: bool = False


def month_end(index: str) -> datetime | None:
    """The first instant after the month a ``<prefix>-mentions-YYYY.MM`` index covers."""
    match = _MONTH.search(index)
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def apply_retention(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    days: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionResult:
    """Drop the monthly indices whose whole month ended more than ``days`` days ago.

    ``days`` defaults to ``[retention] days``; without either nothing is
    dropped. A month is dropped only when all of it is past the cutoff, so a
    mention is kept at least ``days`` days (and at most a month longer). The
    location lookup forgets the dropped indices too.
    """
    days = days if days is not None else config.retention.days
    if days is None:
        return RetentionResult(days=None, cutoff=None, dry_run=dry_run)
    if days < 1:
        raise ValueError(f"retention days must be at least 1, got {days}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    alias = mentions_alias(config.elasticsearch.index_prefix)
    indices = sorted(client.options(ignore_status=404).indices.get_alias(name=alias).body or {})
    indices = [name for name in indices if name.startswith(f"{alias}-")]
    dropped = [name for name in indices if (end := month_end(name)) is not None and end <= cutoff]
    kept = [name for name in indices if name not in dropped]
    if dropped and not dry_run:
        client.indices.delete(index=",".join(dropped))
        _forget_locations_in(config, dropped)
        _forget_bands_in(config, dropped)
        log.info("retention (%d days): dropped %s", days, ", ".join(dropped))
    return RetentionResult(days, cutoff, dropped, kept, dry_run)


def _forget_locations_in(config: ProjectConfig, dropped: list[str]) -> None:
    """Remove dropped indices from the location record (entries naming only them go)."""
    store = locations_for(config)
    try:
        store.forget_indices(dropped)
    finally:
        store.close()


def _forget_bands_in(config: ProjectConfig, dropped: list[str]) -> None:
    """Take the mentions of dropped indices out of the duplicate bands (no candidates now)."""
    store = bands_for(config)
    try:
        store.forget_indices(dropped)
    finally:
        store.close()


# -- erasure -----------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Which mentions an erasure request covers: every given criterion must match."""

    author: str | None = None
    url: str | None = None
    brand: str | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        if not any(value is not None and value != "" for value in asdict(self).values()):
            raise ValueError(
                "say which mentions to forget: give at least one of --author, --url, "
                "--brand or --before"
            )
        for name in ("author", "url", "brand"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ValueError(f"--{name} must not be blank")
        if self.before is not None and self.before.tzinfo is None:
            raise ValueError("before must be a timezone-aware datetime")

    def describe(self) -> dict[str, str]:
        """The criteria given, as text (for the printout and the erasure log)."""
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in asdict(self).items()
            if value is not None
        }

    def _handles(self) -> list[str]:
        assert self.author is not None
        bare = self.author.strip().removeprefix("@")
        return sorted({bare, f"@{bare}", self.author.strip()})

    def _urls(self) -> list[str]:
        assert self.url is not None
        given = self.url.strip()
        try:
            return sorted({given, canonicalize_url(given)})
        except ValueError:
            return [given]

    def query(self) -> dict[str, Any]:
        """The Elasticsearch query for the matching mentions."""
        filters: list[dict[str, Any]] = []
        if self.author is not None:
            handles = self._handles()
            filters.append(
                {
                    "bool": {
                        "should": [
                            *({"term": {"author.handle": {"value": h, "case_insensitive": True}}}
                              for h in handles),
                            *({"term": {"author.name": {"value": h, "case_insensitive": True}}}
                              for h in handles),
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )  # fmt: skip
        if self.url is not None:
            urls = self._urls()
            filters.append(
                {
                    "bool": {
                        "should": [{"terms": {"url": urls}}, {"terms": {"canonical_url": urls}}],
                        "minimum_should_match": 1,
                    }
                }
            )
        if self.brand is not None:
            filters.append(
                {"term": {"brand_names": {"value": self.brand.strip(), "case_insensitive": True}}}
            )
        if self.before is not None:
            filters.append({"range": {"published_at": {"lt": self.before.isoformat()}}})
        return {"bool": {"filter": filters}}

    def matches(self, document: dict[str, Any]) -> bool:
        """Whether a stored document (spool or dead-letter copy) matches, as :meth:`query` does."""
        if self.author is not None:
            author = document.get("author") or {}
            wanted = {h.casefold() for h in self._handles()}
            values = {str(author.get(key) or "").casefold() for key in ("handle", "name")}
            if not wanted & values:
                return False
        if self.url is not None:
            urls = set(self._urls())
            if document.get("url") not in urls and document.get("canonical_url") not in urls:
                return False
        if self.brand is not None:
            names = {str(name).casefold() for name in document.get("brand_names") or []}
            if self.brand.strip().casefold() not in names:
                return False
        if self.before is not None:
            try:
                published = datetime.fromisoformat(str(document.get("published_at")))
            except ValueError:
                return False
            if published.tzinfo is None:
                published = published.replace(tzinfo=UTC)
            if published >= self.before:
                return False
        return True


@dataclass(frozen=True)
class Forgotten:
    """One mention an erasure deleted (or would delete)."""

    id: str
    where: str  # the monthly index, "spool" or "dead-letter"
    published_at: str | None
    url: str | None
    author: str | None


@dataclass
class ForgetResult:
    """What :func:`forget` deleted, by place."""

    selector: Selector
    dry_run: bool
    mentions: list[Forgotten] = field(default_factory=list)

    def count(self, where: str) -> int:
        """How many in the index (``"index"``), the spool or the dead-letter file."""
        if where == "index":
            return sum(1 for m in self.mentions if m.where not in ("spool", "dead-letter"))
        return sum(1 for m in self.mentions if m.where == where)


def forget(
    client: Elasticsearch | None,
    config: ProjectConfig,
    selector: Selector,
    *,
    dry_run: bool = False,
) -> ForgetResult:
    """Delete the mentions matching ``selector`` from the index, the spool and the dead letters.

    ``client`` None skips the index (the spool and dead letters are still
    handled). Unless ``dry_run``, the erasure is appended to
    ``LISTENER_HOME/erasures.ndjson``: when, the criteria, and the ids and
    places of what was deleted (not the texts). A later crawl can find the
    same posts again if their sources still publish them.
    """
    result = ForgetResult(selector, dry_run)
    if client is not None:
        result.mentions += _forget_in_index(client, config, selector, dry_run)
    home = config.home
    result.mentions += _forget_in_file_lines(
        sorted((home / SPOOL_DIR).glob("*.ndjson")) if (home / SPOOL_DIR).is_dir() else [],
        "spool",
        selector,
        dry_run,
        document_of=lambda record: record,
    )
    result.mentions += _forget_in_file_lines(
        [home / DEAD_LETTER_FILE],
        "dead-letter",
        selector,
        dry_run,
        document_of=lambda record: record.get("document"),
    )
    if not dry_run:
        _log_erasure(config.home / ERASURE_LOG, result)
    return result


def _forget_in_index(
    client: Elasticsearch, config: ProjectConfig, selector: Selector, dry_run: bool
) -> list[Forgotten]:
    alias = mentions_alias(config.elasticsearch.index_prefix)
    if not client.indices.exists_alias(name=alias):
        return []
    client.indices.refresh(index=alias)  # searches see only refreshed writes
    body = {
        "query": selector.query(),
        "_source": ["id", "url", "published_at", "author.handle", "author.name"],
    }
    found = [
        Forgotten(
            id=hit["_id"],
            where=hit["_index"],
            published_at=hit["_source"].get("published_at"),
            url=hit["_source"].get("url"),
            author=_author_of(hit["_source"]),
        )
        for hit in scan(client, index=alias, query=body, size=1000)
    ]
    if dry_run or not found:
        return found
    actions = [
        {"_op_type": "delete", "_index": mention.where, "_id": mention.id} for mention in found
    ]
    failed = []
    for success, info in streaming_bulk(client, actions, raise_on_error=False):
        item = next(iter(info.values()))
        if not success and item.get("status") != 404:
            failed.append(f"{item.get('_index')}/{item.get('_id')}: {item.get('error')}")
    if failed:
        raise IndexingError(
            f"could not delete {len(failed)} matching document(s) (first: {failed[0]}); "
            "run the same forget command again"
        )
    store = locations_for(config)
    try:
        store.forget_ids(mention.id for mention in found)
    finally:
        store.close()
    bands = bands_for(config)  # an erased mention is no duplicate candidate any more
    try:
        bands.forget_ids(mention.id for mention in found)
    finally:
        bands.close()
    client.indices.refresh(index=alias)
    return found


def _author_of(document: dict[str, Any]) -> str | None:
    author = document.get("author") or {}
    return author.get("handle") or author.get("name")


def _forget_in_file_lines(
    paths: list[Path],
    where: str,
    selector: Selector,
    dry_run: bool,
    *,
    document_of: Any,
) -> list[Forgotten]:
    """Drop matching lines from NDJSON files (rewritten atomically; emptied spool files go)."""
    found: list[Forgotten] = []
    for path in paths:
        if not path.is_file():
            continue
        kept: list[str] = []
        removed = 0
        for line in _lines(path):
            try:
                record = json.loads(line)
            except ValueError:
                kept.append(line)
                continue
            document = document_of(record) if isinstance(record, dict) else None
            if isinstance(document, dict) and selector.matches(document):
                removed += 1
                found.append(
                    Forgotten(
                        id=str(document.get("id")),
                        where=where,
                        published_at=document.get("published_at"),
                        url=document.get("url"),
                        author=_author_of(document),
                    )
                )
            else:
                kept.append(line)
        if removed and not dry_run:
            _rewrite(path, kept, remove_if_empty=where == "spool")
    return found


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line if line.endswith("\n") else line + "\n"


def _rewrite(path: Path, lines: list[str], *, remove_if_empty: bool) -> None:
    """Replace a file's content atomically (temporary file, fsync, rename)."""
    if not lines and remove_if_empty:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise IndexingError(
            f"could not rewrite {path} without the forgotten mentions: {error.strerror}; "
            "fix the permissions or free disk space, then run the same forget command again"
        ) from None


def _log_erasure(path: Path, result: ForgetResult) -> None:
    """Append the erasure to the log: when, what was asked, which ids went from where."""
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "selector": result.selector.describe(),
        "deleted": {
            "index": result.count("index"),
            "spool": result.count("spool"),
            "dead_letter": result.count("dead-letter"),
        },
        "ids": sorted({(m.id, m.where) for m in result.mentions}),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise IndexingError(
            f"the mentions were deleted but the erasure could not be logged to {path}: "
            f"{error.strerror}"
        ) from None
