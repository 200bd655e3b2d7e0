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
kept outside the engine, beside the checkpoints (:mod:`listener.store.locations`:
a SQLite file under ``LISTENER_HOME``, or a Redis hash when clustered): one
local read-and-write per batch finds the old copies, whatever the number of
months kept, and the bulk request carries the mentions only, as a plain bulk
would. A batch is recorded *before* it is written, so a crash at any point
leaves every copy named. The record is filled from the alias when it is new,
lost, or belongs to another engine (a token in ``<prefix>-mention-locations``
says which engine it was filled against), or when the engine holds more
mentions than it names.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import scan, streaming_bulk
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from listener.config import ProjectConfig
from listener.errors import IndexingError, ListenerError
from listener.mention import Mention
from listener.store.locations import LocationStore, locations_for

log = logging.getLogger(__name__)

TEMPLATE_PACKAGE = "listener.index_templates"
DEAD_LETTER_FILE = "dead-letter.ndjson"
#: The document in ``<prefix>-mention-locations`` naming the location record filled against
#: this engine (the same token is kept in the record).
_TOKEN_ID = "_token"
_TOKEN_MAPPING: dict[str, Any] = {"dynamic": "strict", "properties": {"token": {"type": "keyword"}}}
SPOOL_DIR = "spool"
#: The largest bulk request body sent, as the client's bulk helper (more documents are split).
_MAX_BODY = 100 * 1024 * 1024

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
    """The small index holding the token of the location record filled against this engine.

    (Before the record moved out of the engine, this index held one entry per mention.)
    """
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
        self._locations: LocationStore | None = None
        self._alias = mentions_alias(self.prefix)

    # -- locations ---------------------------------------------------------

    @property
    def alias(self) -> str:
        """The read alias, ``<prefix>-mentions``."""
        return self._alias

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
        published = mention.published_at
        if published.tzinfo is not UTC:
            published = published.astimezone(UTC)
        return f"{self._alias}-{published.year:04d}.{published.month:02d}"

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

    def replay_spool(
        self, on_indexed: Callable[[Sequence[Mention]], None] | None = None
    ) -> IndexResult:
        """Index every spooled batch, deleting each file once all its mentions are handled.

        A file is deleted when each of its mentions was accepted or rejected
        (rejected ones go to the dead-letter file). If the cluster is still
        unreachable, the file is rewritten with only the mentions not yet
        accepted, replay stops, and the rest wait for the next replay;
        ``spooled`` counts the mentions still waiting. ``on_indexed`` is given
        each file's accepted mentions (the crawl records them as duplicate
        candidates, as it does for the batches it indexes itself).
        """
        total = IndexResult()
        files_ = self.spooled_files()
        for position, path in enumerate(files_):
            mentions, invalid = self._read_spool(path)
            delivery = self._deliver(mentions) if mentions else _Delivery([], [], [])
            self._dead_letter([*delivery.rejected, *invalid])
            if on_indexed is not None and delivery.indexed:
                on_indexed(delivery.indexed)
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
            except ListenerError as error:  # the location record (file or Redis) is unusable
                reason = str(error)
                continue
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

        The request body is built here rather than by the client's bulk helper:
        each document is pydantic's JSON text (a third of the cost of dumping
        ``to_document()``'s dict) and the answer is read in request order, which
        together cost the client less than the helper did, leaving room for the
        location record's read-and-add.
        """
        outcome = _Delivery([], [], [])
        done = 0
        try:
            for chunk, body in self._bodies(mentions):
                response = self.client.bulk(operations=cast(Any, body))
                self._settle(chunk, response.body, outcome)
                done += len(chunk)
        except (TransportError, ApiError) as error:
            outcome.reason = _describe(error)
            outcome.final = not _retryable(error)
        except Exception as error:
            # Not an Elasticsearch answer (e.g. a proxy's HTML page with 200): nothing in
            # flight is known to be stored, so it is retried and then spooled.
            outcome.reason = f"unexpected answer to a bulk request: {type(error).__name__}: {error}"
        outcome.undelivered.extend(mentions[done:])
        return outcome

    def _bodies(self, mentions: list[Mention]) -> Iterator[tuple[list[Mention], bytes]]:
        """Bulk request bodies (NDJSON) of at most ``chunk_size`` mentions and about 100 MB."""
        chunk: list[Mention] = []
        lines: list[bytes] = []
        size = 0
        names: dict[str, str] = {}  # index name -> its JSON, for the few months of a batch
        for mention in mentions:
            name = self.index_name_for(mention)
            quoted = names.get(name) or names.setdefault(name, json.dumps(name))
            action = f'{{"index":{{"_id":{json.dumps(mention.id)},"_index":{quoted}}}}}\n'.encode()
            document = _document_bytes(mention)
            if chunk and (len(chunk) >= self.chunk_size or size + len(document) > _MAX_BODY):
                yield chunk, b"".join(lines)
                chunk, lines, size = [], [], 0
            chunk.append(mention)
            lines += (action, document, b"\n")
            size += len(action) + len(document) + 1
        if chunk:
            yield chunk, b"".join(lines)

    @staticmethod
    def _settle(chunk: list[Mention], answer: Any, outcome: _Delivery) -> None:
        """Sort one bulk answer's items (in request order) into accepted, rejected, undelivered."""
        items = answer["items"]
        if len(items) != len(chunk):
            raise ValueError(f"{len(items)} items answered for {len(chunk)} documents sent")
        indexed: list[Mention] = []
        rejected: list[tuple[Mention, dict[str, Any]]] = []
        undelivered: list[Mention] = []
        for mention, entry in zip(chunk, items, strict=True):
            item = next(iter(entry.values()))
            status = item.get("status")
            if isinstance(status, int) and 200 <= status < 300:
                indexed.append(mention)
            elif status in _TRANSIENT_STATUSES:
                undelivered.append(mention)
                outcome.reason = f"HTTP {status} for some documents"
            else:
                rejected.append((mention, item))
        outcome.indexed.extend(indexed)
        outcome.rejected.extend(rejected)
        outcome.undelivered.extend(undelivered)

    @property
    def locations(self) -> str:
        """The small index holding the location record's token (see :func:`locations_index`)."""
        return locations_index(self.prefix)

    @property
    def location_store(self) -> LocationStore:
        """Where each mention lives (:mod:`listener.store.locations`), opened on first use."""
        if self._locations is None:
            self._locations = locations_for(self.config)
        return self._locations

    def engine_token(self) -> str:
        """The token pairing this engine with the records kept beside it (made on first use).

        Other coordination records (the duplicate bands, :mod:`listener.store.bands`)
        keep it too, to tell whether they were filled against this engine.
        """
        self._ensure_locations()
        token = self.location_store.token()
        if token is None:  # _ensure_locations always leaves one
            raise IndexingError(f"the location record {self.location_store.where} has no token")
        return token

    def _find_other_copies(self, mentions: list[Mention]) -> dict[str, list[str]]:
        """Mentions that may have a copy in another monthly index, with those indices.

        One atomic read-and-write of the location record per batch, before
        anything is sent, however many months are kept: each id gets the
        indices this batch writes it to added to its entry, and the ids whose
        entry (or batch) names an index other than the one their last copy
        in the batch goes to are returned with those indices.
        :meth:`_delete_other_copies` deletes them once the new copy is in.
        """
        self._ensure_locations()
        written: dict[str, list[str]] = {}
        for mention in mentions:  # in order: the last copy of an id in the batch is the one kept
            names = written.setdefault(mention.id, [])
            name = self.index_name_for(mention)
            if name in names:
                names.remove(name)
            names.append(name)
        before = self.location_store.merge(written)
        found: dict[str, list[str]] = {}
        for mention_id, names in written.items():
            target = names[-1]
            recorded = dict.fromkeys([*before.get(mention_id, []), *names])
            others = [name for name in recorded if name != target]
            if others:
                found[mention_id] = others
        return found

    def _ensure_locations(self) -> None:
        """Fill the location record from the alias if it does not hold every stored mention.

        That is: the record is new or was lost (deleted file, flushed Redis), it
        was filled against another engine (its token differs from the one in
        ``<prefix>-mention-locations``), or the engine counts more mentions than
        it names (e.g. Redis restarted from an older snapshot). Filling only adds
        names, so concurrent indexers never lose each other's entries.
        """
        if self._locations_ready:
            return
        store = self.location_store
        marker = self.client.options(ignore_status=404).get(index=self.locations, id=_TOKEN_ID)
        engine_token = (marker.body.get("_source") or {}).get("token") if marker.body else None
        rebuild = engine_token is None or engine_token != store.token()
        if not rebuild and self.client.indices.exists_alias(name=self.alias):
            self.refresh()  # counts see only refreshed writes
            stored = self.client.count(index=self.alias)["count"]
            rebuild = int(stored) > store.count()
            if rebuild:
                log.warning(
                    "the engine holds %d mention(s) but the location record %s names %d: "
                    "filling it from the index",
                    stored,
                    store.where,
                    store.count(),
                )
        if rebuild:
            self._fill_locations(store, engine_token)
        self._locations_ready = True

    def _fill_locations(self, store: LocationStore, engine_token: str | None) -> None:
        """Record the location of every mention already stored, then pair record and engine."""
        count = 0
        if self.client.indices.exists_alias(name=self.alias):
            self.refresh()  # searches see only refreshed writes
            body = {"query": {"match_all": {}}, "_source": False}
            hits = scan(self.client, index=self.alias, query=body, size=1000)
            count = store.add((hit["_id"], hit["_index"]) for hit in hits)
        token = engine_token
        if token is None:
            # New, or made by a listener that kept one entry per mention in it: start afresh.
            quiet = self.client.options(ignore_status=[400, 404])  # 400: created meanwhile
            quiet.indices.delete(index=self.locations)
            quiet.indices.create(index=self.locations, mappings=_TOKEN_MAPPING)
            token = uuid.uuid4().hex
            self.client.index(index=self.locations, id=_TOKEN_ID, document={"token": token})
        store.set_token(token)
        if count:
            log.info("recorded where %d stored mention(s) live in %s", count, store.where)

    def _delete_other_copies(self, stale: dict[str, list[str]], indexed: list[Mention]) -> None:
        """Delete the other-month copies of mentions whose new copy was accepted.

        The location record keeps naming the old index (a later write of the
        mention sends a delete answered 404): narrowing it could name too
        little if the engine later lost the delete (the embedded engine saves
        about a second after it acknowledges), and too little would leave a
        duplicate behind, where too much costs one bulk item.
        """
        # Only where the copy that stays (the batch's last for its id) was accepted.
        landed = set()
        for mention in indexed:
            others = stale.get(mention.id)
            if others is not None and self.index_name_for(mention) not in others:
                landed.add(mention.id)
        actions = [
            {"_op_type": "delete", "_index": index, "_id": mention_id}
            for mention_id in sorted(landed)
            for index in stale[mention_id]
        ]
        if not actions:
            return
        deleted = 0
        try:
            for success, info in streaming_bulk(
                self.client, actions, raise_on_error=False, raise_on_exception=True
            ):
                item = next(iter(info.values()))
                if success and item.get("result") == "deleted":
                    deleted += 1
                elif not success and item.get("status") != 404:
                    log.warning(
                        "could not delete the old copy %s/%s", item.get("_index"), item.get("_id")
                    )
        except (TransportError, ApiError) as error:
            log.warning(
                "could not delete %d old-month copies (%s); they are deleted the next time "
                "those mentions are indexed",
                len(actions),
                _describe(error),
            )
        if deleted:
            log.info("moved %d mention(s) to another month's index", deleted)

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


def _document_bytes(mention: Mention) -> bytes:
    """The mention's document as JSON (UTF-8): the same as ``to_document()``, written by pydantic.

    Text pydantic cannot encode (a lone surrogate) is written as before, by ``json.dumps``
    with the surrogate passed through, for the engine to accept or reject.
    """
    try:
        return mention.__pydantic_serializer__.to_json(mention)
    except PydanticSerializationError:
        return json.dumps(mention.to_document(), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )


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
