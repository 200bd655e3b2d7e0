"""Crawl progress on stderr while a crawl runs, and the end-of-crawl summary.

The extension reads the crawl's stats (keys under ``listener/``), so the same
display serves ``listener crawl`` and ``scrapy crawl mentions``.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

from scrapy import signals
from scrapy.crawler import Crawler
from twisted.internet import task


@dataclass
class SourceSummary:
    """What one source did in one crawl."""

    label: str
    pages: int = 0
    mentions: int = 0
    indexed: int = 0
    parse_errors: int = 0
    fetch_errors: int = 0
    #: Requests cut short or never sent because the crawl was stopped (asked again next run).
    stopped_requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    last_error: str | None = None
    last_success: str | None = None

    @property
    def health(self) -> str:
        """healthy: no errors; degraded: errors but some success; broken: nothing worked."""
        errors = self.parse_errors + self.fetch_errors
        if self.paused or (errors and not self.last_success):
            return "broken"
        return "degraded" if errors else "healthy"


@dataclass
class CrawlSummary:
    """The totals of one crawl, built from its stats."""

    found: int = 0
    indexed: int = 0
    rejected: int = 0
    spooled: int = 0
    lost: int = 0
    dead_lettered: int = 0
    spool_waiting: int = 0
    spool_replayed: int = 0
    #: Taken from a source but not kept because the crawl was stopped; fetched next run.
    left_for_next_run: int = 0
    duplicates: int = 0
    errors: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sources: dict[str, SourceSummary] = field(default_factory=dict)
    elapsed: float = 0.0
    finish_reason: str | None = None
    last_batch_error: str | None = None

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> CrawlSummary:
        summary = cls(
            found=int(stats.get("listener/found", 0)),
            indexed=int(stats.get("listener/indexed", 0)),
            rejected=int(stats.get("listener/rejected", 0)),
            spooled=int(stats.get("listener/spooled", 0)),
            lost=int(stats.get("listener/lost", 0)),
            dead_lettered=int(stats.get("listener/dead_lettered", 0)),
            spool_waiting=int(stats.get("listener/spool_waiting", 0)),
            last_batch_error=stats.get("listener/last_batch_error"),
            spool_replayed=int(stats.get("listener/spool_replayed", 0)),
            left_for_next_run=int(stats.get("listener/left_for_next_run", 0)),
            duplicates=int(stats.get("listener/duplicates", 0)),
            errors=int(stats.get("listener/errors", 0)),
            finish_reason=stats.get("finish_reason"),
        )
        start, finish = stats.get("start_time"), stats.get("finish_time")
        if start and finish:
            summary.elapsed = (finish - start).total_seconds()
        elif "elapsed_time_seconds" in stats:
            summary.elapsed = float(stats["elapsed_time_seconds"])
        per_source: dict[str, SourceSummary] = defaultdict(lambda: SourceSummary(""))
        for key, value in stats.items():
            if key.startswith("listener/dropped/"):
                summary.dropped[key.removeprefix("listener/dropped/")] = int(value)
            if not key.startswith("listener/source/"):
                continue
            label, _, metric = key.removeprefix("listener/source/").partition("/")
            source = per_source[label]
            source.label = label
            if metric in (
                "pages",
                "mentions",
                "indexed",
                "parse_errors",
                "fetch_errors",
                "stopped_requests",
            ):
                setattr(source, metric, int(value))
            elif metric.startswith("status/"):
                source.statuses[metric.removeprefix("status/")] = int(value)
            elif metric.startswith("dropped/"):
                source.dropped[metric.removeprefix("dropped/")] = int(value)
            elif metric == "paused":
                source.paused = bool(value)
            elif metric == "last_error":
                source.last_error = str(value)
            elif metric == "last_success":
                source.last_success = str(value)
        summary.sources = dict(sorted(per_source.items()))
        return summary

    @property
    def stopped(self) -> bool:
        """Whether the crawl was stopped (SIGTERM, Ctrl-C, a cancel) before it finished."""
        return self.finish_reason == "shutdown"

    @property
    def stopped_requests(self) -> int:
        """Requests cut short or never sent because of the stop, over every source."""
        return sum(source.stopped_requests for source in self.sources.values())

    def lines(self) -> list[str]:
        """The human summary printed at the end of a crawl."""
        dropped = ", ".join(f"{reason} {count}" for reason, count in sorted(self.dropped.items()))
        rate = self.found / self.elapsed if self.elapsed else 0.0
        out = [
            f"crawl finished in {self.elapsed:.1f} s: {self.found} mentions found "
            f"({rate:.1f}/s), {self.indexed} indexed ({self.duplicates} duplicates), "
            f"dropped: {dropped or 'none'}, {self.errors} errors",
        ]
        if self.stopped:
            out.append(
                f"  stopped before it finished: {self.left_for_next_run} mentions taken but not "
                "kept are left for the next run (the checkpoints do not cover them)"
            )
            if self.stopped_requests:
                n = self.stopped_requests
                out.append(
                    f"  {n} {'request was' if n == 1 else 'requests were'} cut short or not"
                    f" sent because of the stop; the next run asks for {'it' if n == 1 else 'them'}"
                    " again"
                )
        if self.spool_replayed:
            out.append(f"  {self.spool_replayed} mentions from earlier runs' spool indexed")
        if self.spooled:
            out.append(
                f"  {self.spooled} mentions could not be indexed (engine unreachable) and were "
                "spooled; they are indexed on the next run"
            )
        if self.spool_waiting:
            out.append(f"  {self.spool_waiting} mentions wait in the spool for the next run")
        if self.dead_lettered:
            out.append(
                f"  {self.dead_lettered} mentions could be neither indexed nor spooled "
                f"(last error: {self.last_batch_error}); they are kept in dead-letter.ndjson"
            )
        if self.lost:
            out.append(
                f"  {self.lost} mentions could not be indexed, spooled or dead-lettered "
                f"(last error: {self.last_batch_error}); checkpoints were not advanced, so the "
                "next run fetches them again"
            )
        if self.rejected:
            out.append(f"  {self.rejected} mentions rejected by the index: see dead-letter.ndjson")
        for source in self.sources.values():
            statuses = " ".join(f"{code}x{n}" for code, n in sorted(source.statuses.items()))
            line = (
                f"  {source.label}: {source.health}, {source.mentions} mentions, "
                f"{source.indexed} indexed, {source.pages} pages [{statuses}], "
                f"{source.parse_errors} parse errors, {source.fetch_errors} fetch errors"
            )
            if source.stopped_requests:
                line += f", {source.stopped_requests} requests cut short by the stop"
            if source.paused:
                line += " (paused for this run)"
            if source.last_error:
                line += f" — last: {source.last_error}"
            out.append(line)
        return out


class CrawlProgress:
    """Prints a one-line progress display on stderr every ``interval`` seconds."""

    def __init__(
        self, crawler: Crawler, stream: TextIO = sys.stderr, interval: float = 1.0
    ) -> None:
        self.crawler = crawler
        self.stream = stream
        self.interval = interval
        self.interactive = stream.isatty()
        self.loop: task.LoopingCall | None = None
        self.started = time.monotonic()
        self.last_plain = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        self.started = time.monotonic()
        self.loop = task.LoopingCall(self.show)
        self.loop.start(self.interval, now=False)

    def line(self) -> str:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        dropped = sum(int(v) for k, v in stats.items() if k.startswith("listener/dropped/"))
        pages = sum(
            int(v)
            for k, v in stats.items()
            if k.startswith("listener/source/") and k.endswith("/pages")
        )
        return (
            f"[{time.monotonic() - self.started:5.0f}s] pages {pages}  "
            f"found {int(stats.get('listener/found', 0))}  "
            f"indexed {int(stats.get('listener/indexed', 0))}  dropped {dropped}  "
            f"errors {int(stats.get('listener/errors', 0))}"
        )

    def show(self) -> None:
        if self.interactive:
            self.stream.write("\r" + self.line().ljust(100))
            self.stream.flush()
        elif time.monotonic() - self.last_plain >= 10:
            self.last_plain = time.monotonic()
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def spider_closed(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.interactive:
            self.stream.write("\r" + self.line().ljust(100) + "\n")
            self.stream.flush()
