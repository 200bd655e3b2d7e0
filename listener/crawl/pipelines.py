"""Scrapy item pipeline: validate → dedupe → batch, then enrich and index off the reactor.

Each batch is enriched in worker processes (``[crawl] enrich_processes``,
default one per core up to 4; see :mod:`listener.enrichment.pool`) and then
deduplicated and written by one worker thread, in batch order, so the reactor
keeps fetching while earlier batches are enriched and written, and spaCy runs
on every core instead of sharing the crawl's. With one process the thread
enriches too. At most ``MAX_PENDING_BATCHES`` (plus one per extra process)
wait; beyond that the pipeline makes Scrapy wait (back-pressure) instead of
holding the whole crawl in memory, and the spider takes no more items from the
sources meanwhile (:class:`listener.crawl.middlewares.InFlightLimitMiddleware`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from listener.config import ProjectConfig
from listener.mention import Mention, is_future

log = logging.getLogger(__name__)

MAX_PENDING_BATCHES = 2
#: Seconds to wait at the end of a crawl for the embedded engine to save what it acknowledged.
DURABILITY_TIMEOUT = 15.0


@dataclass
class BatchOutcome:
    """What happened to one batch in the worker (negative counts move earlier mentions)."""

    indexed: int = 0
    rejected: int = 0
    spooled: int = 0
    #: Dead-lettered because neither the index nor the spool took them (not cluster rejects).
    dead_lettered: int = 0
    lost: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    indexed_by_source: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    error: str | None = None
    #: Not processed because the crawl was stopping: (mention id, source label), for the
    #: checkpoints to give back.
    left: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Unconfirmed:
    """Mentions the embedded engine acknowledged but may not have saved yet."""

    ticket: int
    mentions: list[tuple[Mention, str]]


class MentionPipeline:
    """Validate, deduplicate and batch Mentions; enrich in worker processes, index in a thread.

    Every mention handed to a batch ends in exactly one durable place: the
    index (confirmed on disk for the embedded engine, see
    :mod:`listener.store.durability`), the spool, or the dead-letter file; or it is
    dropped for a counted reason (no brand matched, duplicate, invalid). What
    could be put nowhere is counted in ``listener/lost``, and the spider then
    keeps the previous checkpoints so the next run asks for those items again.
    """

    def __init__(self, crawler: Crawler, project: ProjectConfig) -> None:
        self.crawler = crawler
        self.project = project
        self.batch_size = project.crawl.batch_size
        self.buffer: list[tuple[Mention, str]] = []
        self.seen_ids: set[str] = set()
        self.pending: list[asyncio.Future[BatchOutcome]] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener-enrich")
        self.exit_stack = contextlib.ExitStack()
        self.enricher: Any = None
        self.indexer: Any = None
        self.deduplicator: Any = None
        self.enrich_pool: Any = None
        self.max_pending = MAX_PENDING_BATCHES
        #: Confirms the embedded engine's saves; None when acknowledged writes are durable.
        self.saves: Any = None
        self.unconfirmed: deque[_Unconfirmed] = deque()
        self.durability_timeout = float(
            crawler.settings.getfloat("LISTENER_DURABILITY_TIMEOUT", DURABILITY_TIMEOUT)
        )
        self._max_retries: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MentionPipeline:
        return cls(crawler, crawler.settings["LISTENER_PROJECT"])

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    async def open_spider(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._open_store)

    def _open_store(self) -> None:
        """Connect (starting the embedded engine if needed), install templates, replay the spool."""
        from listener.crawl.dedupe import BandRecord, Deduplicator
        from listener.enrichment import Enricher
        from listener.store.durability import engine_saves_for
        from listener.store.engine import connect
        from listener.store.indexer import Indexer

        # A configured cluster that is down must not stop the crawl: batches are
        # spooled and indexed by the next run. (The embedded engine is started here.)
        client = self.exit_stack.enter_context(connect(self.project, verify=False))
        self.indexer = Indexer(client, self.project)
        self._max_retries = self.indexer.max_retries
        self.saves = engine_saves_for(client, self.project)
        unreachable = False
        try:
            self.indexer.install_templates()
        except Exception as error:
            unreachable = True
            log.warning(
                "the index is unreachable (%s); mentions will be spooled under %s",
                error,
                self.project.home,
            )
            self.stats.set_value("listener/store_unreachable", str(error))
        self.deduplicator = Deduplicator(
            lookup=BandRecord(self.indexer, unreachable_reported=unreachable)
        )
        if not unreachable:
            # Replayed mentions become duplicate candidates, like the batches indexed below.
            replayed = self.indexer.replay_spool(on_indexed=self.deduplicator.stored)
            if replayed.indexed or replayed.spooled:
                log.info(
                    "replayed spool: %d indexed, %d still spooled",
                    replayed.indexed,
                    replayed.spooled,
                )
            self.stats.set_value("listener/spool_replayed", replayed.indexed)
        self.enricher = Enricher(self.project, batch_size=self.batch_size)
        self._start_enrichment_workers()

    def _start_enrichment_workers(self) -> None:
        """Fork the enrichment workers (before the crawl runs), unless one process is asked for."""
        from listener.enrichment.pool import EnrichmentPool, default_processes, fork_available

        processes = self.project.crawl.enrich_processes or default_processes()
        if processes > 1 and fork_available():
            self.enrich_pool = EnrichmentPool(self.enricher, processes).start()
            self.max_pending = MAX_PENDING_BATCHES + processes - 1
        self.stats.set_value("listener/enrich_processes", processes if self.enrich_pool else 1)

    @property
    def stopping(self) -> bool:
        """Whether the crawl was asked to stop (SIGTERM, Ctrl-C, a cancel)."""
        return not self.crawler.crawling

    def _leave_for_next_run(self, mentions: list[tuple[Mention, str]]) -> None:
        """Mentions taken but not kept: their sources' checkpoints give them back."""
        self._hand_back([(mention.id, label) for mention, label in mentions])

    def _hand_back(self, left: list[tuple[str, str]]) -> None:
        spider: Any = self.crawler.spider  # the MentionsSpider
        for mention_id, label in left:
            spider.leave_for_next_run(label, mention_id)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        mention = item.get("mention")
        label = item.get("source_label", "?")
        if self.stopping and isinstance(mention, Mention):
            # Stopping: enriching more would keep the process up for minutes. Its source's
            # checkpoint gives it back, so the next run fetches it again.
            self._leave_for_next_run([(mention, label)])
            raise DropItem(f"the crawl is stopping; {mention.url} is left for the next run")
        # Back-pressure on every item, not only the one that fills a batch: Scrapy hands
        # the pipeline up to CONCURRENT_ITEMS items at once, and without this each of them
        # could start a batch, putting thousands of mentions in flight (a SIGTERM then had
        # to wait for all of them to be enriched and indexed).
        while len(self.pending) > self.max_pending and not self.stopping:
            await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
        if self.stopping and isinstance(mention, Mention):
            self._leave_for_next_run([(mention, label)])
            raise DropItem(f"the crawl is stopping; {mention.url} is left for the next run")
        if not isinstance(mention, Mention):
            try:
                mention = Mention.model_validate(mention)
            except ValidationError as error:
                self._drop("invalid_mention", label)
                raise DropItem(
                    f"invalid mention from {label}: {error.error_count()} errors"
                ) from None
        if is_future(mention.published_at):
            self._drop("future_date", label)
            raise DropItem(
                f"mention {mention.url} from {label} is dated {mention.published_at.isoformat()}, "
                "beyond now"
            )
        if mention.id in self.seen_ids:
            self._drop("duplicate_in_crawl", label)
            raise DropItem(f"duplicate mention {mention.url} in this crawl")
        self.seen_ids.add(mention.id)
        self.buffer.append((mention, label))
        if len(self.buffer) >= self.batch_size:
            self._submit()
            if len(self.pending) > self.max_pending:
                await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
        return item

    def _drop(self, reason: str, label: str) -> None:
        self.stats.inc_value(f"listener/dropped/{reason}")
        self.stats.inc_value(f"listener/source/{label}/dropped/{reason}")

    def _submit(self) -> None:
        batch, self.buffer = self.buffer, []
        if not batch:
            return
        loop = asyncio.get_running_loop()
        enriching = None
        if self.enrich_pool is not None:  # starts now, in a worker process
            enriching = self.enrich_pool.submit([mention for mention, _ in batch])
        future = loop.run_in_executor(self.executor, self._process_batch, batch, enriching)
        future.add_done_callback(functools.partial(self._record, size=len(batch)))
        self.pending.append(future)

    # -- the worker thread ---------------------------------------------------

    def _process_batch(
        self, batch: list[tuple[Mention, str]], enriching: Future[list[Mention]] | None = None
    ) -> BatchOutcome:
        """In the worker thread: enrich (or wait for the workers), keep brand matches, index.

        Never raises: whatever fails, each mention is indexed, spooled,
        dead-lettered, dropped for a reason, or counted as lost.
        """
        outcome = BatchOutcome()
        labels = {mention.id: label for mention, label in batch}
        if self.stopping:  # not started yet: the next run fetches these again
            outcome.left = [(mention.id, label) for mention, label in batch]
            return outcome
        try:
            if enriching is None:
                enriched = list(self.enricher.enrich(mention for mention, _ in batch))
            else:
                enriched = enriching.result()
        except Exception as error:
            log.exception("enrichment failed for a batch of %d mentions", len(batch))
            outcome.error = f"enrichment failed: {type(error).__name__}: {error}"
            if self._dead_letter([m for m, _ in batch], outcome.error, outcome):
                outcome.dropped["enrichment_failed"] += len(batch)
            return outcome
        keep = []
        for mention in enriched:
            if mention.brands:
                keep.append(mention)
            else:
                outcome.dropped["no_brand_match"] += 1
                outcome.dropped[f"source:{labels.get(mention.id, '?')}:no_brand_match"] += 1
        if keep:
            try:
                self._index(keep, labels, outcome)
            except Exception as error:
                log.exception("indexing failed for a batch of %d mentions", len(keep))
                outcome.error = f"indexing failed: {type(error).__name__}: {error}"
                self._keep_elsewhere(keep, outcome.error, outcome)
        self._confirm(outcome, wait=False)
        return outcome

    def _index(self, keep: list[Mention], labels: dict[str, str], outcome: BatchOutcome) -> None:
        keep = self._deduplicate(keep)
        outcome.duplicates = sum(1 for mention in keep if mention.duplicate)
        result = self.indexer.index(keep)
        outcome.indexed += result.indexed
        outcome.rejected += result.rejected
        outcome.spooled += result.spooled
        indexed = [m for m in keep if m.id in result.indexed_ids]
        self.deduplicator.stored(indexed)  # candidates for later crawls once accepted
        for mention in indexed:
            outcome.indexed_by_source[labels.get(mention.id, "?")] += 1
        # While the store is down, later batches go to the spool without waiting on retries.
        if result.spooled and not result.indexed:
            self.indexer.max_retries = 0
        elif result.indexed and self._max_retries is not None:
            self.indexer.max_retries = self._max_retries
        if indexed and self.saves is not None:
            self._hold([(m, labels.get(m.id, "?")) for m in indexed], outcome)

    def _deduplicate(self, mentions: list[Mention]) -> list[Mention]:
        """Cluster duplicates; if the index cannot be asked, within this crawl only."""
        try:
            return list(self.deduplicator.assign(mentions))
        except Exception as error:
            log.warning(
                "could not look up duplicates in the index (%s: %s); comparing within this "
                "crawl only",
                type(error).__name__,
                error,
            )
        lookup, self.deduplicator.lookup = self.deduplicator.lookup, None
        try:
            return list(self.deduplicator.assign(mentions))
        finally:
            self.deduplicator.lookup = lookup

    def _keep_elsewhere(self, mentions: list[Mention], reason: str, outcome: BatchOutcome) -> None:
        """Spool enriched mentions that could not be indexed; dead-letter them if that fails."""
        try:
            self.indexer.spool(mentions)
        except Exception as error:
            log.error("could not spool %d mention(s): %s", len(mentions), error)
            if self._dead_letter(mentions, f"{reason}; spooling failed too: {error}", outcome):
                outcome.dead_lettered += len(mentions)
        else:
            outcome.spooled += len(mentions)

    def _dead_letter(self, mentions: list[Mention], reason: str, outcome: BatchOutcome) -> bool:
        """Keep mentions in the dead-letter file; count them lost if even that fails."""
        try:
            self.indexer.dead_letter(mentions, reason)
        except Exception as error:
            log.error(
                "%d mention(s) could not be kept anywhere (%s); dead-letter file: %s",
                len(mentions),
                reason,
                error,
            )
            outcome.lost += len(mentions)
            outcome.error = f"{reason}; the dead-letter file could not be written either: {error}"
            return False
        return True

    def _hold(self, mentions: list[tuple[Mention, str]], outcome: BatchOutcome) -> None:
        """Keep acknowledged mentions until the embedded engine has saved them."""
        from listener.store.durability import DurabilityError

        try:
            ticket = self.saves.mark()
        except DurabilityError as error:
            self.unconfirmed.append(_Unconfirmed(0, mentions))
            self._spool_unconfirmed(str(error), outcome)
            return
        self.unconfirmed.append(_Unconfirmed(ticket, mentions))

    def _confirm(self, outcome: BatchOutcome, *, wait: bool) -> None:
        """Release what the engine has saved; with ``wait``, wait for all of it, else spool it."""
        from listener.store.durability import DurabilityError

        if self.saves is None or not self.unconfirmed:
            return
        try:
            if wait and not self.saves.wait(self.unconfirmed[-1].ticket, self.durability_timeout):
                raise DurabilityError(
                    f"the embedded engine did not save within {self.durability_timeout:.0f} s"
                )
            saves = self.saves.poll()
        except DurabilityError as error:
            self._spool_unconfirmed(str(error), outcome)
            return
        while self.unconfirmed and self.unconfirmed[0].ticket <= saves:
            self.unconfirmed.popleft()

    def _spool_unconfirmed(self, reason: str, outcome: BatchOutcome) -> None:
        """The engine may have lost what it acknowledged: spool those mentions again."""
        held = [entry for group in self.unconfirmed for entry in group.mentions]
        self.unconfirmed.clear()
        if not held:
            return
        log.warning(
            "%s: spooling %d acknowledged mention(s) it may not have saved", reason, len(held)
        )
        self._keep_elsewhere([m for m, _ in held], reason, outcome)
        outcome.indexed -= len(held)
        for _, label in held:
            outcome.indexed_by_source[label] -= 1

    # -- the reactor thread --------------------------------------------------

    def _record(self, future: asyncio.Future[BatchOutcome], size: int = 0) -> None:
        """Runs on the reactor thread: fold a batch's outcome into the crawl stats."""
        with contextlib.suppress(ValueError):
            self.pending.remove(future)
        if future.cancelled():
            self._fold(BatchOutcome(lost=size, error="the batch was cancelled"))
            return
        error = future.exception()
        if error is not None:  # _process_batch does not raise; this is a bug, kept visible
            log.error("batch of %d mentions failed: %s", size, error)
            self._fold(BatchOutcome(lost=size, error=f"{type(error).__name__}: {error}"))
            return
        self._fold(future.result())

    def _fold(self, outcome: BatchOutcome) -> None:
        if outcome.left:
            self._hand_back(outcome.left)
        self.stats.inc_value("listener/indexed", outcome.indexed)
        self.stats.inc_value("listener/rejected", outcome.rejected)
        self.stats.inc_value("listener/spooled", outcome.spooled)
        self.stats.inc_value("listener/duplicates", outcome.duplicates)
        if outcome.lost:
            self.stats.inc_value("listener/lost", outcome.lost)
        if outcome.dead_lettered:
            self.stats.inc_value("listener/dead_lettered", outcome.dead_lettered)
        for reason, count in outcome.dropped.items():
            if reason.startswith("source:"):
                _, label, short = reason.split(":", 2)
                self.stats.inc_value(f"listener/source/{label}/dropped/{short}", count)
            else:
                self.stats.inc_value(f"listener/dropped/{reason}", count)
        for label, count in outcome.indexed_by_source.items():
            if count:
                self.stats.inc_value(f"listener/source/{label}/indexed", count)
        if outcome.error:
            self.stats.inc_value("listener/errors")
            self.stats.set_value("listener/last_batch_error", outcome.error)

    async def close_spider(self) -> None:
        if self.stopping:  # not yet enriched: left for the next run (batches under way finish)
            self._leave_for_next_run(self.buffer)
            self.buffer = []
        self._submit()
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
        loop = asyncio.get_running_loop()
        outcome, waiting = await loop.run_in_executor(self.executor, self._close_store)
        self._fold(outcome)
        self.stats.set_value("listener/spool_waiting", waiting)
        self.executor.shutdown(wait=True)

    def _close_store(self) -> tuple[BatchOutcome, int]:
        """Confirm (or spool) what the engine holds, count the spool, stop the engine."""
        outcome = BatchOutcome()
        if self.enrich_pool is not None:
            self.enrich_pool.close()
        if self.indexer is not None:
            self._confirm(outcome, wait=True)
            with contextlib.suppress(Exception):
                self.indexer.refresh()
        waiting = self.indexer.spool_waiting() if self.indexer is not None else 0
        self.exit_stack.close()
        return outcome, waiting


class CollectPipeline:
    """Write every Mention a crawl yields, as parsed (not enriched), to an NDJSON file.

    Used by the test kit (``listener.testing.replay_crawl``) and ``plugins check``
    to see exactly what a source produced through the real Scrapy engine.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CollectPipeline:
        return cls(crawler.settings["LISTENER_COLLECT_PATH"])

    def open_spider(self) -> None:
        self.handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close_spider)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        mention = item["mention"]
        record = {"source_label": item.get("source_label"), "mention": mention.to_document()}
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return item

    def close_spider(self) -> None:
        if self.handle is not None:
            self.handle.close()
