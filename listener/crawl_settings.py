"""Scrapy settings derived from a project file; the one place crawl politeness is decided."""

from __future__ import annotations

from typing import Any

from listener.config import ProjectConfig

ITEM_PIPELINE = "listener.pipelines.MentionPipeline"
PROGRESS_EXTENSION = "listener.progress.CrawlProgress"


def scrapy_settings_for(project: ProjectConfig) -> dict[str, Any]:
    """Settings a crawl of ``project`` runs with (robots.txt, throttling, retries, pipeline)."""
    crawl = project.crawl
    return {
        "BOT_NAME": "listener",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "CONCURRENT_REQUESTS": crawl.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_domain,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 1.0),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.retry_times,
        "LISTENER_MAX_RETRY_AFTER": crawl.max_retry_after,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "listener.middlewares.RetryAfterMiddleware": 550,
        },
        "ITEM_PIPELINES": {ITEM_PIPELINE: 300},
        "EXTENSIONS": {PROGRESS_EXTENSION: 500, "scrapy.extensions.telnet.TelnetConsole": None},
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
    }
