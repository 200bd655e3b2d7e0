"""Run one crawl of a project in this process (the reactor cannot restart: one crawl per call)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from twisted.python.failure import Failure

from listener.config import ProjectConfig
from listener.crawl.progress import CrawlSummary
from listener.errors import ListenerError

log = logging.getLogger(__name__)


class CrawlFailed(ListenerError):
    """The crawl could not run (engine, plugin or configuration problem during start-up)."""


def run_crawl(
    project: ProjectConfig,
    *,
    log_level: str = "WARNING",
    since: datetime | None = None,
    collect_to: Path | None = None,
) -> CrawlSummary:
    """Crawl every configured source of ``project``; enrich and index what matches a brand.

    With ``collect_to``, nothing is enriched or indexed: every Mention the
    sources yield is written to that NDJSON file instead (the test kit's mode).
    """
    from listener.crawl.memtrace import start_from_environment
    from listener.spiders.mentions import PROJECT_SETTING, SINCE_SETTING, MentionsSpider

    start_from_environment()  # LISTENER_TRACEMALLOC=FILE: where the memory goes (slow)
    settings = Settings()
    settings.set(PROJECT_SETTING, project)
    settings.set(SINCE_SETTING, since)
    if collect_to is not None:
        settings.set(
            "ITEM_PIPELINES", {"listener.crawl.pipelines.CollectPipeline": 300}, priority="cmdline"
        )
        settings.set("LISTENER_COLLECT_PATH", str(collect_to), priority="cmdline")
    settings.set("LOG_LEVEL", log_level, priority="cmdline")
    # The CLI owns the root log handler (see listener.cli.main); Scrapy only routes to it.
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    started = time.monotonic()
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(MentionsSpider)
    failures: list[Failure] = []
    deferred = process.crawl(crawler)
    deferred.addErrback(failures.append)
    process.start()
    if failures:
        error = failures[0].value
        if isinstance(error, ListenerError):
            raise error
        raise CrawlFailed(f"crawl failed: {type(error).__name__}: {error}")
    stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
    summary = CrawlSummary.from_stats(stats)
    # The whole run, as its user waited for it: Scrapy's own start/finish times leave out
    # opening the store and closing it (engine start, the last batches, the durable save).
    summary.elapsed = time.monotonic() - started
    if stats.get("listener/open_error"):
        raise CrawlFailed(str(stats["listener/open_error"]))
    if collect_to is None:
        record_run(project, summary)
    return summary


def record_run(project: ProjectConfig, summary: CrawlSummary) -> str:
    """Keep the run's per-source health (``LISTENER_HOME/runs``, or Redis) for status reports."""
    finished = datetime.now(UTC)
    payload = {
        "finished_at": finished.isoformat(),
        "elapsed_seconds": summary.elapsed,
        "found": summary.found,
        "indexed": summary.indexed,
        "spooled": summary.spooled,
        "spool_waiting": summary.spool_waiting,
        "left_for_next_run": summary.left_for_next_run,
        "stopped_requests": summary.stopped_requests,
        "finish_reason": summary.finish_reason,
        "lost": summary.lost,
        "dead_lettered": summary.dead_lettered,
        "rejected": summary.rejected,
        "errors": summary.errors,
        "dropped": summary.dropped,
        "sources": {
            label: {
                "health": source.health,
                "pages": source.pages,
                "mentions": source.mentions,
                "indexed": source.indexed,
                "parse_errors": source.parse_errors,
                "fetch_errors": source.fetch_errors,
                "stopped_requests": source.stopped_requests,
                "statuses": source.statuses,
                "paused": source.paused,
                "last_error": source.last_error,
                "last_success": source.last_success,
            }
            for label, source in summary.sources.items()
        },
    }
    from listener.service.state import state_for

    # Under LISTENER_HOME/runs on one machine; in Redis when clustered (every worker's runs).
    return state_for(project).record_run(payload)
