"""Writing mentions to Elasticsearch: templates, bulk writes, dead letters and the spool.

Nothing handed to :meth:`Indexer.index` is lost. Each mention ends in exactly
one of three places, counted in the returned :class:`IndexResult`:

* **indexed** — accepted by the cluster (``_id`` = mention id, so writing a
  mention again updates it instead of duplicating it);
* **rejected** — refused by the cluster for the document itself (a mapping
  error, say): appended to ``<home>/dead-letter.ndjson`` with the reason;
* **spooled** — the cluster could not be reached, or kept answering 429/5xx,
  after retries with exponential backoff: written to
  ``<home>/spool/<timestamp>-<uuid>.ndjson`` for :meth:`Indexer.replay_spool`.

Mentions live in monthly indices ``<prefix>-mentions-YYYY.MM`` (by
``published_at``, UTC) read through the alias ``<prefix>-mentions``. When a
re-crawl moves a mention's ``published_at`` into another month, the indexer
deletes the copy left in the old month's index after the new one is accepted,
so the alias never returns the mention twice. Where each mention lives is
kept in a small lookup index, ``<prefix>-mention-locations`` (mention id →
the monthly indices that may hold a copy): one real-time multi-get of the
batch's ids there finds the old copies, whatever the number of months kept.
New and moved mentions get their lookup entry in the same bulk request as the
mention itself, written *before* it and naming the old and the new index, so
a crash at any point leaves the lookup naming every copy; once the old copy is
deleted the entry is narrowed to the new index. The lookup is filled from the
alias the first time an indexer meets a project with mentions but no lookup.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import scan, streaming_bulk
from pydantic import ValidationError

from listener.config import ProjectConfig
from listener.errors import IndexingError
from listener.mention import Mention

log = logging.getLogger(__name__)

TEMPLATE_PACKAGE = "listener.index_templates"
DEAD_LETTER_FILE = "dead-letter.ndjson"
#: The lookup document whose presence says the lookup holds every stored mention.
_LOCATIONS_COMPLETE = "_complete"
_LOCATIONS_MAPPING: dict[str, Any] = {  # "index": every monthly index that may hold a copy
    "dynamic": "strict",
    "properties": {"index": {"type": "keyword"}},
}
SPOOL_DIR = "spool"

# Per-document or whole-request statuses worth retrying: the cluster is busy or in trouble,
# the document itself is fine.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class IndexResult:
    """What became of a batch of mentions."""

    indexed: int = 0
    rejected: int = 0
    spooled: int = 0
    #: The ids of the mentions accepted (by :meth:`Indexer.index`, not by spool replays).
    indexed_ids: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def total(self) -> int:
        """Every mention handled: indexed, rejected or spooled."""
        return self.indexed + self.rejected + self.spooled

    def __add__(self, other: IndexResult) -> IndexResult:
        return IndexResult(
            self.indexed + other.indexed,
            self.rejected + other.rejected,
            self.spooled + other.spooled,
        )


@dataclass
class _Delivery:
    """The outcome of one attempt to deliver a batch, before spooling."""

    indexed: list[Mention]
    rejected: list[tuple[Mention, dict[str, Any]]]
    undelivered: list[Mention]
    reason: str | None = None
    final: bool = False  # retrying cannot help (e.g. 401): spool right away


def mentions_alias(prefix: str) -> str:
    """The read alias over all monthly mention indices."""
    return f"{prefix}-mentions"


def locations_index(prefix: str) -> str:
    """The lookup index recording which monthly index holds each mention id."""
    return f"{prefix}-mention-locations"


def load_templates(prefix: str) -> dict[str, dict[str, Any]]:
    """The index templates shipped in ``listener.index_templates``, by name, for ``prefix``."""
    templates: dict[str, dict[str, Any]] = {}
    for entry in sorted(files(TEMPLATE_PACKAGE).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        text = entry.read_text(encoding="utf-8").replace("{prefix}", prefix)
        try:
            body = json.loads(text)
        except ValueError as error:
            raise IndexingError(f"index template {entry.name} is not valid JSON: {error}") from None
        templates[f"{prefix}-{entry.name.removesuffix('.json')}"] = body
    return templates


class Indexer:
    """Writes mentions to the project's indices through the bulk API, never dropping one.

    ``max_retries`` attempts after the first are made for connection errors and
    transient statuses, waiting ``initial_backoff`` seconds, doubling each time
    up to ``max_backoff``.
    """

    def __init__(
        self,
        client: Elasticsearch,
        config: ProjectConfig,
        *,
        chunk_size: int = 500,
        max_retries: int = 3,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.client = client
        self.config = config
        self.prefix = config.elasticsearch.index_prefix
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._templates_installed = False
        self._locations_ready = False
        # The batch being delivered: old indices of its new or moved mentions (see _deliver),
        # and the ids whose lookup entry the cluster did not accept with the batch.
        self._batch_stale: dict[str, list[str]] = {}
        self._unrecorded: set[str] = set()

    # -- locations ---------------------------------------------------------

    @property
    def alias(self) -> str:
        """The read alias, ``<prefix>-mentions``."""
        return mentions_alias(self.prefix)

    @property
    def dead_letter_path(self) -> Path:
        """Where rejected documents are appended, one JSON object per line."""
        return self.config.home / DEAD_LETTER_FILE

    @property
    def spool_dir(self) -> Path:
        """Where batches wait while the cluster is unreachable."""
        return self.config.home / SPOOL_DIR

    def index_name_for(self, mention: Mention) -> str:
        """The monthly index a mention belongs in: ``<prefix>-mentions-YYYY.MM`` (UTC)."""
        published = mention.published_at.astimezone(UTC)
        return f"{self.alias}-{published:%Y.%m}"

    def spooled_files(self) -> list[Path]:
        """Spool files waiting for replay, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(
            path
            for path in self.spool_dir.iterdir()
            if path.suffix == ".ndjson" and not path.name.startswith(".")
        )

    # -- cluster operations ------------------------------------------------

    def install_templates(self) -> list[str]:
        """Install (or update) the project's index templates; returns their names."""
        names = []
        for name, body in load_templates(self.prefix).items():
            self.client.indices.put_index_template(name=name, **body)
            names.append(name)
            log.debug("installed index template %s", name)
            self._add_new_fields(body)
        self._templates_installed = True
        return names

    def _add_new_fields(self, body: dict[str, Any]) -> None:
        """Give existing indices the fields a newer listener added to the mapping.

        The mapping is strict: without this, an index created by an older
        version rejects every mention carrying a new field. Adding fields is
        always allowed; a change to an existing field is left alone.
        """
        properties = body.get("template", {}).get("mappings", {}).get("properties")
        patterns = body.get("index_patterns")
        if not properties or not patterns:
            return
        try:
            self.client.options(ignore_status=404).indices.put_mapping(
                index=",".join(patterns),
                properties=properties,
                allow_no_indices=True,
                ignore_unavailable=True,
            )
        except ApiError as error:
            log.warning("could not add new fields to the existing indices: %s", _describe(error))

    def refresh(self) -> None:
        """Make everything written so far visible to searches."""
        self.client.indices.refresh(
            index=self.alias, ignore_unavailable=True, allow_no_indices=True
        )

    def index(self, mentions: Sequence[Mention]) -> IndexResult:
        """Write mentions; rejects to the dead letters, the undeliverable to the spool.

        Never raises for cluster trouble; raises :class:`IndexingError` only if
        the spool or dead-letter file itself cannot be written.
        """
        if not mentions:
            return IndexResult()
        delivery = self._deliver(list(mentions))
        self._dead_letter(delivery.rejected)
        if delivery.undelivered:
            path = self._spool(delivery.undelivered)
            log.warning(
                "could not write to Elasticsearch (%s): spooled %d mention(s) to %s; "
                "they are indexed by the next spool replay",
                delivery.reason,
                len(delivery.undelivered),
                path,
            )
        return IndexResult(
            indexed=len(delivery.indexed),
            rejected=len(delivery.rejected),
            spooled=len(delivery.undelivered),
            indexed_ids=frozenset(m.id for m in delivery.indexed),
        )

    def spool(self, mentions: Sequence[Mention]) -> Path:
        """Write mentions to a new spool file for the next replay (IndexingError if impossible)."""
        return self._spool(list(mentions))

    def spool_waiting(self) -> int:
        """How many mentions wait in the spool for a replay."""
        return sum(self._count_lines(path) for path in self.spooled_files())

    def replay_spool(self) -> IndexResult:
        """Index every spooled batch, deleting each file once all its mentions are handled.

        A file is deleted when each of its mentions was accepted or rejected
        (rejected ones go to the dead-letter file). If the cluster is still
        unreachable, the file is rewritten with only the mentions not yet
        accepted, replay stops, and the rest wait for the next replay;
        ``spooled`` counts the mentions still waiting.
        """
        total = IndexResult()
        files_ = self.spooled_files()
        for position, path in enumerate(files_):
            mentions, invalid = self._read_spool(path)
            delivery = self._deliver(mentions) if mentions else _Delivery([], [], [])
            self._dead_letter([*delivery.rejected, *invalid])
            if delivery.undelivered:
                waiting = len(delivery.undelivered) + sum(
                    self._count_lines(rest) for rest in files_[position + 1 :]
                )
                log.warning(
                    "Elasticsearch still unavailable (%s): %d spooled mention(s) wait in %s",
                    delivery.reason,
                    waiting,
                    self.spool_dir,
                )
                # Keep only what is still waiting, so nothing is dead-lettered twice.
                self._write_spool_file(path, delivery.undelivered)
                return total + IndexResult(
                    indexed=len(delivery.indexed),
                    rejected=len(delivery.rejected) + len(invalid),
                    spooled=waiting,
                )
            path.unlink(missing_ok=True)  # another replay may have finished it first
            total = total + IndexResult(
                indexed=len(delivery.indexed), rejected=len(delivery.rejected) + len(invalid)
            )
            log.info("replayed %s", path.name)
        return total

    # -- delivery ----------------------------------------------------------

    def _deliver(self, mentions: list[Mention]) -> _Delivery:
        """Send mentions with retries; report which were accepted, rejected or undeliverable."""
        indexed: list[Mention] = []
        rejected: list[tuple[Mention, dict[str, Any]]] = []
        pending = mentions
        stale: dict[str, list[str]] | None = None
        reason: str | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
                log.info(
                    "retrying %d mention(s) in %.2f s (attempt %d of %d): %s",
                    len(pending),
                    delay,
                    attempt + 1,
                    self.max_retries + 1,
                    reason,
                )
                time.sleep(delay)
            try:
                if not self._templates_installed:
                    self.install_templates()
                if stale is None:
                    stale = self._find_other_copies(mentions)
            except (TransportError, ApiError) as error:
                reason = _describe(error)
                if _retryable(error):
                    continue
                break
            except Exception as error:  # an answer that is not Elasticsearch's (a proxy page)
                reason = f"unexpected answer: {type(error).__name__}: {error}"
                continue
            outcome = self._send(pending)
            indexed.extend(outcome.indexed)
            rejected.extend(outcome.rejected)
            pending = outcome.undelivered
            reason = outcome.reason
            if not pending or outcome.final:
                break
        if stale:
            self._delete_other_copies(stale, indexed)
        return _Delivery(indexed, rejected, pending, reason)

    def _send(self, mentions: list[Mention]) -> _Delivery:
        """One bulk pass over ``mentions``; never raises for cluster trouble.

        Items answered with a transient status, and every item not answered
        because the connection failed mid-way, come back as undelivered.
        """
        waiting: dict[str, deque[Mention]] = defaultdict(deque)
        for mention in mentions:
            waiting[mention.id].append(mention)
        outcome = _Delivery([], [], [])
        try:
            for success, info in streaming_bulk(
                self.client,
                self._actions(mentions),
                chunk_size=self.chunk_size,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=0,  # retries happen in _deliver, for connection errors too
            ):
                item = next(iter(info.values()))
                if item.get("_index") == self.locations:  # the lookup entry sent with a mention
                    if success:
                        self._unrecorded.discard(str(item.get("_id")))
                    else:
                        self._unrecorded.add(str(item.get("_id")))
                    continue
                queue = waiting.get(str(item.get("_id")))
                if not queue:
                    continue
                mention = queue.popleft()
                status = item.get("status")
                if success:
                    outcome.indexed.append(mention)
                elif isinstance(status, int) and status in _TRANSIENT_STATUSES:
                    outcome.undelivered.append(mention)
                    outcome.reason = f"HTTP {status} for some documents"
                else:
                    outcome.rejected.append((mention, item))
        except (TransportError, ApiError) as error:
            outcome.reason = _describe(error)
            outcome.final = not _retryable(error)
        except Exception as error:
            # Not an Elasticsearch answer (e.g. a proxy's HTML page with 200): nothing in
            # flight is known to be stored, so it is retried and then spooled.
            outcome.reason = f"unexpected answer to a bulk request: {type(error).__name__}: {error}"
        outcome.undelivered.extend(m for queue in waiting.values() for m in queue)
        return outcome

    def _actions(self, mentions: Iterable[Mention]) -> Iterator[dict[str, Any]]:
        for mention in mentions:
            old = self._batch_stale.get(mention.id)
            if old is not None:  # new or moved: record every index that may hold it, first
                where = sorted({*old, self.index_name_for(mention)})
                yield {"_index": self.locations, "_id": mention.id, "_source": {"index": where}}
            yield {
                "_op_type": "index",
                "_index": self.index_name_for(mention),
                "_id": mention.id,
                "_source": mention.to_document(),
            }

    @property
    def locations(self) -> str:
        """The lookup index: mention id → the monthly index holding it."""
        return locations_index(self.prefix)

    def _find_other_copies(self, mentions: list[Mention]) -> dict[str, list[str]]:
        """Mentions whose recorded location is not their monthly index, with where they were.

        One real-time multi-get of the ids in the lookup index, however many
        months are kept (probing each id in each monthly index made indexing
        slower with every month of history). An id maps to the old indices to
        clean up, or to ``[]`` when it is new; ids recorded in their own
        monthly index only are left out. The ids kept get their lookup entry
        with the batch (:meth:`_actions`); :meth:`_delete_other_copies`
        narrows it once the old copies are gone.
        """
        self._batch_stale = {}
        self._ensure_locations()
        targets = {m.id: self.index_name_for(m) for m in mentions}
        response = self.client.mget(index=self.locations, ids=list(targets))
        found: dict[str, list[str]] = {}
        for doc in response["docs"]:
            recorded = doc.get("_source", {}).get("index", []) if doc.get("found") else []
            target = targets.get(str(doc.get("_id")))
            if target is not None and recorded != [target]:
                found[doc["_id"]] = [index for index in recorded if index != target]
        self._batch_stale = found
        self._unrecorded = set()
        return found

    def _ensure_locations(self) -> None:
        """Create the lookup index, and fill it from the alias if mentions predate it."""
        if self._locations_ready:
            return
        marker = self.client.options(ignore_status=404).get(
            index=self.locations, id=_LOCATIONS_COMPLETE, source=False
        )
        if not marker.body.get("found"):
            self.client.options(ignore_status=400).indices.create(  # 400: created meanwhile
                index=self.locations, mappings=_LOCATIONS_MAPPING
            )
            self._backfill_locations()
        self._locations_ready = True

    def _backfill_locations(self) -> None:
        """Record the location of every mention already stored (once per project)."""
        count = 0
        if self.client.indices.exists_alias(name=self.alias):
            self.refresh()  # searches see only refreshed writes
            body = {"query": {"match_all": {}}, "_source": False}
            hits = scan(self.client, index=self.alias, query=body, size=1000)
            actions = (
                {"_index": self.locations, "_id": hit["_id"], "_source": {"index": [hit["_index"]]}}
                for hit in hits
            )
            for success, _ in streaming_bulk(self.client, actions, chunk_size=1000):
                count += success
        self.client.index(
            index=self.locations, id=_LOCATIONS_COMPLETE, document={"index": []}, refresh=False
        )
        if count:
            log.info("recorded where %d stored mention(s) live in %s", count, self.locations)

    def _delete_other_copies(self, stale: dict[str, list[str]], indexed: list[Mention]) -> None:
        """Delete old-month copies of mentions whose new copy was accepted, then say so.

        The lookup entry is narrowed to the new index only after the old copy
        is gone: if a delete fails, the entry keeps naming the old index and
        the next write of the mention deletes it.
        """
        self._batch_stale = {}
        actions = [
            {"_op_type": "delete", "_index": index, "_id": mention.id}
            for mention in indexed
            for index in stale.get(mention.id, [])
        ]
        settled = {m.id for m in indexed if m.id in self._unrecorded}
        try:
            moved = {action["_id"] for action in actions}
            for success, info in streaming_bulk(
                self.client, actions, raise_on_error=False, raise_on_exception=True
            ):
                item = next(iter(info.values()))
                if not success and item.get("status") != 404:
                    log.warning(
                        "could not delete the old copy %s/%s", item.get("_index"), item.get("_id")
                    )
                    moved.discard(str(item.get("_id")))
            settled |= moved
        except (TransportError, ApiError) as error:
            log.warning(
                "could not delete %d old-month copies (%s); they are deleted the next time "
                "those mentions are indexed",
                len(actions),
                _describe(error),
            )
        if actions:
            log.info("moved %d mention(s) to another month's index", len(actions))
        self._record_locations([m for m in indexed if m.id in settled])

    def _record_locations(self, mentions: list[Mention]) -> None:
        """Record mentions as living in their monthly index only."""
        if not mentions:
            return
        actions = (
            {
                "_index": self.locations,
                "_id": mention.id,
                "_source": {"index": [self.index_name_for(mention)]},
            }
            for mention in mentions
        )
        try:
            for success, info in streaming_bulk(
                self.client, actions, raise_on_error=False, raise_on_exception=True
            ):
                if not success:
                    item = next(iter(info.values()))
                    log.warning(
                        "could not record the index of mention %s: %s",
                        item.get("_id"),
                        _item_reason(item),
                    )
        except (TransportError, ApiError) as error:
            log.warning(
                "could not record the monthly index of %d mention(s) (%s); a later move of "
                "one of them to another month may leave its old copy behind",
                len(mentions),
                _describe(error),
            )

    # -- files -------------------------------------------------------------

    def _spool(self, mentions: list[Mention]) -> Path:
        """Write a batch to a new spool file."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.spool_dir / f"{stamp}-{uuid.uuid4().hex}.ndjson"
        self._write_spool_file(path, mentions)
        return path

    def _write_spool_file(self, path: Path, mentions: list[Mention]) -> None:
        """Write (or replace) a spool file atomically: temporary file, fsync, rename."""
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as handle:
                for mention in mentions:
                    handle.write(json.dumps(mention.to_document(), ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise IndexingError(
                f"Elasticsearch is unreachable and {len(mentions)} mention(s) could not be "
                f"spooled to {path.parent} either: {error.strerror}; free disk space or fix "
                "the permissions, then run again"
            ) from None

    def dead_letter(self, mentions: Sequence[Mention], reason: str) -> None:
        """Keep mentions listener itself could not process (e.g. enrichment failed) with why."""
        self._dead_letter([(mention, {"error": {"reason": reason}}) for mention in mentions])

    def _dead_letter(
        self, rejected: Sequence[tuple[Mention | dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Append rejected documents with the cluster's reason to the dead-letter file."""
        if not rejected:
            return
        failed_at = datetime.now(UTC).isoformat(timespec="seconds")
        lines = []
        for mention, item in rejected:
            document = mention.to_document() if isinstance(mention, Mention) else mention
            record = {
                "reason": _item_reason(item),
                "status": item.get("status"),
                "index": item.get("_index")
                or (self.index_name_for(mention) if isinstance(mention, Mention) else None),
                "id": item.get("_id") or document.get("id"),
                "failed_at": failed_at,
                "document": document,
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        try:
            self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter_path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise IndexingError(
                f"{len(lines)} document(s) were rejected by Elasticsearch and could not be "
                f"written to {self.dead_letter_path}: {error.strerror}"
            ) from None
        log.warning(
            "Elasticsearch rejected %d mention(s) (first: %s); kept in %s",
            len(lines),
            _item_reason(rejected[0][1]),
            self.dead_letter_path,
        )

    def _read_spool(
        self, path: Path
    ) -> tuple[list[Mention], list[tuple[dict[str, Any], dict[str, Any]]]]:
        """The mentions in a spool file, and the lines that no longer validate."""
        mentions: list[Mention] = []
        invalid: list[tuple[dict[str, Any], dict[str, Any]]] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                document: Any = None
                try:
                    document = json.loads(line)
                    mentions.append(Mention.model_validate(document))
                except (ValueError, ValidationError) as error:
                    kept = document if isinstance(document, dict) else {"line": line}
                    reason = f"spool file {path.name} line {number} is not a valid mention: {error}"
                    invalid.append(
                        (kept, {"error": {"type": "invalid_spool_line", "reason": reason}})
                    )
        return mentions, invalid

    @staticmethod
    def _count_lines(path: Path) -> int:
        try:
            with path.open(encoding="utf-8") as handle:
                return sum(1 for line in handle if line.strip())
        except OSError:
            return 0


def _item_reason(item: dict[str, Any]) -> str:
    """``type: reason`` from a bulk item error."""
    error = item.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
        caused = error.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            text += f" (caused by {caused.get('type')}: {caused['reason']})"
        return text
    return str(error or f"HTTP {item.get('status')}")


def _retryable(error: Exception) -> bool:
    """Connection trouble and busy/unavailable answers are worth retrying; 4xx are not."""
    if isinstance(error, ApiError):
        return error.status_code in _TRANSIENT_STATUSES
    return True


def _describe(error: Exception) -> str:
    """A short, secret-free description of a transport or API error."""
    if isinstance(error, ApiError):
        return f"HTTP {error.status_code} {error.error}"
    return type(error).__name__
