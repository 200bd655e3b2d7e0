"""Scrapy item pipeline: validate → dedupe → batch, then enrich and index off the reactor.

Each batch is enriched in worker processes (``[crawl] enrich_processes``,
default one per core up to 4; see :mod:`listener.enrichment.pool`) and then
deduplicated and written by one worker thread, in batch order, so the reactor
keeps fetching while earlier batches are enriched and written, and spaCy runs
on every core instead of sharing the crawl's. With one process the thread
enriches too. At most ``MAX_PENDING_BATCHES`` (plus one per extra process)
wait; beyond that the pipeline makes Scrapy wait (back-pressure) instead of
holding the whole crawl in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from listener.config import ProjectConfig
from listener.mention import Mention

log = logging.getLogger(__name__)

MAX_PENDING_BATCHES = 2


@dataclass
class BatchOutcome:
    """What happened to one batch in the worker."""

    indexed: int = 0
    rejected: int = 0
    spooled: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    indexed_by_source: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    error: str | None = None


class MentionPipeline:
    """Validate, deduplicate and batch Mentions; enrich in worker processes, index in a thread."""

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
        from listener.dedupe import Deduplicator, index_lookup
        from listener.engine import connect
        from listener.enrichment import Enricher
        from listener.indexer import Indexer, mentions_alias

        # A configured cluster that is down must not stop the crawl: batches are
        # spooled and indexed by the next run. (The embedded engine is started here.)
        client = self.exit_stack.enter_context(connect(self.project, verify=False))
        self.indexer = Indexer(client, self.project)
        try:
            self.indexer.install_templates()
        except Exception as error:
            log.warning(
                "the index is unreachable (%s); mentions will be spooled under %s",
                error,
                self.project.home,
            )
            self.stats.set_value("listener/store_unreachable", str(error))
        else:
            replayed = self.indexer.replay_spool()
            if replayed.indexed or replayed.spooled:
                log.info(
                    "replayed spool: %d indexed, %d still spooled",
                    replayed.indexed,
                    replayed.spooled,
                )
            self.stats.set_value("listener/spool_replayed", replayed.indexed)
        self.enricher = Enricher(self.project, batch_size=self.batch_size)
        self._start_enrichment_workers()
        self.deduplicator = Deduplicator(
            lookup=index_lookup(client, mentions_alias(self.project.elasticsearch.index_prefix))
        )

    def _start_enrichment_workers(self) -> None:
        """Fork the enrichment workers (before the crawl runs), unless one process is asked for."""
        from listener.enrichment.pool import EnrichmentPool, default_processes, fork_available

        processes = self.project.crawl.enrich_processes or default_processes()
        if processes > 1 and fork_available():
            self.enrich_pool = EnrichmentPool(self.enricher, processes).start()
            self.max_pending = MAX_PENDING_BATCHES + processes - 1
        self.stats.set_value("listener/enrich_processes", processes if self.enrich_pool else 1)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        mention = item.get("mention")
        label = item.get("source_label", "?")
        if not isinstance(mention, Mention):
            try:
                mention = Mention.model_validate(mention)
            except ValidationError as error:
                self._drop("invalid_mention", label)
                raise DropItem(
                    f"invalid mention from {label}: {error.error_count()} errors"
                ) from None
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
        future.add_done_callback(self._record)
        self.pending.append(future)

    def _process_batch(
        self, batch: list[tuple[Mention, str]], enriching: Future[list[Mention]] | None = None
    ) -> BatchOutcome:
        """In the worker thread: enrich (or wait for the workers), keep brand matches, index."""
        outcome = BatchOutcome()
        labels = {mention.id: label for mention, label in batch}
        try:
            if enriching is None:
                enriched = list(self.enricher.enrich(mention for mention, _ in batch))
            else:
                enriched = enriching.result()
        except Exception as error:
            log.exception("enrichment failed for a batch of %d mentions", len(batch))
            outcome.error = f"enrichment failed: {type(error).__name__}: {error}"
            self.indexer.dead_letter([m for m, _ in batch], outcome.error)
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
            keep = self.deduplicator.assign(keep)
            outcome.duplicates = sum(1 for mention in keep if mention.duplicate)
            result = self.indexer.index(keep)
            outcome.indexed, outcome.rejected, outcome.spooled = (
                result.indexed,
                result.rejected,
                result.spooled,
            )
            if not result.rejected and not result.spooled:
                for mention in keep:
                    outcome.indexed_by_source[labels.get(mention.id, "?")] += 1
        return outcome

    def _record(self, future: asyncio.Future[BatchOutcome]) -> None:
        """Runs on the reactor thread: fold a batch's outcome into the crawl stats."""
        with contextlib.suppress(ValueError):
            self.pending.remove(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("batch failed: %s", error)
            self.stats.inc_value("listener/errors")
            return
        outcome = future.result()
        self.stats.inc_value("listener/indexed", outcome.indexed)
        self.stats.inc_value("listener/rejected", outcome.rejected)
        self.stats.inc_value("listener/spooled", outcome.spooled)
        self.stats.inc_value("listener/duplicates", outcome.duplicates)
        for reason, count in outcome.dropped.items():
            if reason.startswith("source:"):
                _, label, short = reason.split(":", 2)
                self.stats.inc_value(f"listener/source/{label}/dropped/{short}", count)
            else:
                self.stats.inc_value(f"listener/dropped/{reason}", count)
        for label, count in outcome.indexed_by_source.items():
            self.stats.inc_value(f"listener/source/{label}/indexed", count)
        if outcome.error:
            self.stats.inc_value("listener/errors")

    async def close_spider(self) -> None:
        self._submit()
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._close_store)
        self.executor.shutdown(wait=True)

    def _close_store(self) -> None:
        if self.enrich_pool is not None:
            self.enrich_pool.close()
        if self.indexer is not None:
            with contextlib.suppress(Exception):
                self.indexer.refresh()
        self.exit_stack.close()


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
