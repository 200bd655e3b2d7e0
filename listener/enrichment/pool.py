"""Enrichment in long-lived worker processes, a batch at a time, for a crawl.

:meth:`Enricher.enrich` with ``n_process > 1`` forks its workers for each call:
right for one large stream, too costly for a crawl that hands over a batch of
64 mentions at a time. :class:`EnrichmentPool` forks the workers once (they
inherit the pipeline the parent built, plugins' changes included), keeps
them for many batches, and enriches each batch with :func:`submit`, which
returns a future; the parent only merges the plain analyses the workers send
back (see :mod:`listener.enrichment`).

Memory stays bounded per process: spaCy's string store grows with every new
word a worker sees, so after ``mentions_per_generation`` mentions the pool
forks a fresh set of workers from the parent (whose pipeline has analysed
nothing) and lets the old set finish its batches and exit. A worker that dies
(killed, out of memory) breaks its set of workers, which fails every batch in
flight with ``BrokenProcessPool`` instead of hanging the crawl: the pool forks
a new set and sends each of those batches once more (a batch that kills its
worker twice fails).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from listener.enrichment import Enricher, _analyse_chunk, _init_worker
from listener.mention import Mention
from listener.service.lifetime import exit_when_orphaned

log = logging.getLogger(__name__)

#: Mentions a set of workers analyses before it is replaced by a fresh one.
MENTIONS_PER_GENERATION = 50_000


def default_processes() -> int:
    """Worker processes when ``[crawl] enrich_processes`` is not set: one per core, at most 4.

    One process on one core (forking would only add copying); beyond four,
    each worker's model (a few hundred MB) costs more memory than it gains on
    a crawl whose fetching and indexing also need the cores.
    """
    return max(1, min(4, os.cpu_count() or 1))


def fork_available() -> bool:
    """Whether worker processes can inherit the parent's pipeline (not on Windows/macOS spawn)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _init_pool_worker(enricher: Enricher, parent: int) -> None:
    """Worker start: leave Ctrl-C and SIGTERM to the parent, and exit if the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    exit_when_orphaned(parent)
    _init_worker(enricher)


def _copy_outcome(source: Future[list[Mention]], target: Future[list[Mention]]) -> None:
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


class EnrichmentPool:
    """``processes`` forked workers enriching batches of mentions for one :class:`Enricher`."""

    def __init__(
        self,
        enricher: Enricher,
        processes: int,
        *,
        mentions_per_generation: int = MENTIONS_PER_GENERATION,
    ) -> None:
        if processes < 2:
            raise ValueError(f"an enrichment pool needs at least 2 processes, got {processes}")
        if not fork_available():
            raise ValueError("enrichment worker processes need the 'fork' start method")
        self.enricher = enricher
        self.processes = processes
        self.mentions_per_generation = mentions_per_generation
        self.generations = 0
        self._executor: ProcessPoolExecutor | None = None
        self._mentions = 0
        self._lock = threading.Lock()
        self._needs_meta = any(brand.query for brand in enricher.config.brands)

    def start(self) -> EnrichmentPool:
        """Build the pipeline and fork the workers now (before the crawl starts its threads)."""
        with self._lock:
            self._executor_for(0)
        return self

    def submit(self, mentions: Sequence[Mention], *, retry: bool = True) -> Future[list[Mention]]:
        """Enrich a batch in a worker; the future gives enriched copies, in input order.

        If a worker dies while the batch is in flight (which fails every batch
        in flight), the batch is sent once more to new workers (``retry``).
        """
        batch = list(mentions)
        inputs = [self.enricher._pipeline_input(mention, self._needs_meta) for mention in batch]
        with self._lock:
            executor = self._executor_for(len(batch))
            try:
                analysed = executor.submit(_analyse_chunk, inputs)
            except BrokenProcessPool:  # a worker died since the last batch: start new ones
                self._executor = None
                executor = self._executor_for(0)
                analysed = executor.submit(_analyse_chunk, inputs)
        enriched: Future[list[Mention]] = Future()

        def merge(done: Future[list[dict[str, Any]]]) -> None:
            error = done.exception()
            if isinstance(error, BrokenProcessPool):
                self._discard(executor)
                if retry:
                    try:
                        again = self.submit(batch, retry=False)
                    except Exception as submit_error:
                        enriched.set_exception(submit_error)
                    else:
                        again.add_done_callback(lambda done: _copy_outcome(done, enriched))
                    return
            if error is not None:
                enriched.set_exception(error)
                return
            try:
                merged = [
                    self.enricher.merge(mention, analysis)
                    for mention, analysis in zip(batch, done.result(), strict=True)
                ]
            except Exception as merge_error:  # handed to the batch's owner, like any failure
                enriched.set_exception(merge_error)
            else:
                enriched.set_result(merged)

        analysed.add_done_callback(merge)
        return enriched

    def close(self) -> None:
        """Let the workers finish their batches, then stop them."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=False)

    def __enter__(self) -> EnrichmentPool:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _executor_for(self, batch: int) -> ProcessPoolExecutor:
        """The current set of workers, replaced when it has analysed its share of mentions."""
        if self._executor is not None and self._mentions + batch > self.mentions_per_generation:
            old, self._executor = self._executor, None
            old.shutdown(wait=False, cancel_futures=False)  # its batches still finish
            log.debug("replacing enrichment workers after %d mentions", self._mentions)
        if self._executor is None:
            self.enricher.nlp  # noqa: B018  (built here, inherited by the forked workers)
            self._executor = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_pool_worker,
                initargs=(self.enricher, os.getpid()),
            )
            # Fork every worker now, from this thread, rather than at some later submit.
            for future in [self._executor.submit(os.getpid) for _ in range(self.processes)]:
                future.result()
            self._mentions = 0
            self.generations += 1
        self._mentions += batch
        return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """Drop a broken set of workers; the next batch forks a new one."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        log.warning("an enrichment worker died; retrying its batches in new workers")
