"""Scrapy settings derived from a project file; the one place crawl politeness is decided."""

from __future__ import annotations

import logging
from typing import Any

from scrapy.logformatter import LogFormatter, LogFormatterResult
from scrapy.settings import default_settings

from listener.config import ProjectConfig

ITEM_PIPELINE = "listener.crawl.pipelines.MentionPipeline"
PROGRESS_EXTENSION = "listener.crawl.progress.CrawlProgress"
#: Bounds the items between the sources and the end of the pipeline (see the class).
IN_FLIGHT_MIDDLEWARE = "listener.crawl.middlewares.InFlightLimitMiddleware"
#: Scrapy's downloader, with a slot's concurrency enforced under asyncio (see the module).
DOWNLOADER = "listener.crawl.downloader.Downloader"

#: Scrapy's extensions less two listener does not use: the telnet console, and the remote
#: control (Scrapy 2.19+), which serves a code-execution endpoint from every crawl and
#: writes a job file under the user's state directory (left behind when a crawl is killed).
#: Not even imported: the remote control imports aiohttp (about 0.17 s of CPU), which
#: listener's processes otherwise leave out (see listener.service.startup).
UNUSED_EXTENSIONS = frozenset(
    {"scrapy.extensions.telnet.TelnetConsole", "scrapy.extensions.remote_control.RemoteControl"}
)
EXTENSIONS_BASE = {
    name: order
    for name, order in default_settings.EXTENSIONS_BASE.items()
    if name not in UNUSED_EXTENSIONS
}


def download_slots(project: ProjectConfig) -> dict[str, dict[str, Any]]:
    """One download slot per source entry, with the source's own polite concurrency and delay."""
    from listener.sdk.plugin_manager import get_registry

    registry = get_registry()
    slots: dict[str, dict[str, Any]] = {}
    for entry in project.sources:
        cls = registry.sources.get(entry.plugin)
        if cls is None:
            continue  # reported with the entry's name when the sources are built
        options = entry.options
        delay = options.get("download_delay")
        concurrency = options.get("concurrency")
        slots[f"source:{entry.label}"] = {
            "concurrency": int(concurrency)
            if isinstance(concurrency, int)
            else min(cls.concurrency, project.crawl.concurrent_requests_per_domain),
            "delay": float(delay)
            if isinstance(delay, (int, float))
            else max(cls.download_delay, project.crawl.download_delay),
        }
    return slots


def scrapy_settings_for(project: ProjectConfig) -> dict[str, Any]:
    """Settings a crawl of ``project`` runs with (robots.txt, throttling, retries, pipeline)."""
    crawl = project.crawl
    return {
        "DOWNLOAD_SLOTS": download_slots(project),
        "DOWNLOADER": DOWNLOADER,
        "BOT_NAME": "listener",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "CONCURRENT_REQUESTS": crawl.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_domain,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        # Scrapy's default is 1 GB; HttpCompressionMiddleware applies the same limit to the
        # decompressed body, which stops gzip bombs.
        "DOWNLOAD_MAXSIZE": int(crawl.max_download_mb * 1024 * 1024),
        "DOWNLOAD_WARNSIZE": int(crawl.max_download_mb * 1024 * 1024) // 2,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 1.0),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.retry_times,
        "LISTENER_MAX_RETRY_AFTER": crawl.max_retry_after,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "listener.crawl.middlewares.RetryAfterMiddleware": 550,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "listener.crawl.middlewares.RobotsTxtMiddleware": 100,
            "listener.crawl.middlewares.PausedSourceMiddleware": 50,
            # After RedirectMiddleware (600) has built the redirected request: checked on its
            # way back down (process_request runs from low to high numbers on each pass).
            "listener.crawl.middlewares.PrivateRedirectMiddleware": 60,
        },
        "DUPEFILTER_CLASS": "listener.crawl.middlewares.RedirectLoopDupeFilter",
        "ITEM_PIPELINES": {ITEM_PIPELINE: 300},
        # Closest to the engine: it sees every item the spider middlewares let through.
        "SPIDER_MIDDLEWARES": {IN_FLIGHT_MIDDLEWARE: 10},
        # Two batches' worth waiting for the pipeline keeps it busy; more only costs memory.
        "LISTENER_ITEMS_IN_FLIGHT": max(2 * crawl.batch_size, 32),
        # Left out of the base list rather than set to None in EXTENSIONS, which would still
        # import them (Scrapy loads every EXTENSIONS key to compare it with the base list).
        "EXTENSIONS_BASE": EXTENSIONS_BASE,
        "EXTENSIONS": {PROGRESS_EXTENSION: 500},
        "COOKIES_ENABLED": False,
        "LOG_FORMATTER": "listener.crawl.settings.QuietDropsLogFormatter",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
    }


class QuietDropsLogFormatter(LogFormatter):
    """Log dropped items at DEBUG with the reason only: drops are counted, not errors."""

    def dropped(
        self, item: Any, exception: BaseException, response: Any, spider: Any = None
    ) -> LogFormatterResult:
        return {
            "level": logging.DEBUG,
            "msg": "Dropped: %(exception)s",
            "args": {"exception": exception},
        }
