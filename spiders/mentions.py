"""The one generic spider: it drives every configured source plugin.

Run it through ``listener crawl -c listener.toml`` or, from a project root
with ``scrapy.cfg``, ``scrapy crawl mentions -s LISTENER_CONFIG=listener.toml``.
The spider only fetches and parses; enrichment and indexing happen in the item
pipeline, off the reactor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response as ScrapyResponse
from scrapy.settings import BaseSettings
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from listener.config import ProjectConfig, load_project
from listener.crawl.downloader import DownloadStopped
from listener.crawl.middlewares import SourcePaused
from listener.crawl.settings import scrapy_settings_for
from listener.mention import Mention
from listener.sdk.plugin_manager import instantiate_sources
from listener.service.state import checkpoint_for
from listener.source import Request, Response, Source

log = logging.getLogger(__name__)

PROJECT_SETTING = "LISTENER_PROJECT"
CONFIG_SETTING = "LISTENER_CONFIG"
SINCE_SETTING = "LISTENER_SINCE"


def _project_from(settings: BaseSettings) -> ProjectConfig:
    project = settings.get(PROJECT_SETTING)
    if isinstance(project, ProjectConfig):
        return project
    path = settings.get(CONFIG_SETTING) or os.environ.get(CONFIG_SETTING) or "listener.toml"
    return load_project(path)


class SourceState:
    """Per-source counters for one crawl, and whether the source is paused."""

    def __init__(self, source: Source, max_consecutive_failures: int) -> None:
        self.source = source
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self.paused = False
        self.last_error: str | None = None


class MentionsSpider(scrapy.Spider):
    """Fetch what each source asks for and hand its parsed Mentions to the pipeline."""

    name = "mentions"

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        project = _project_from(settings)
        settings.set(PROJECT_SETTING, project, priority="spider")
        for key, value in scrapy_settings_for(project).items():
            settings.set(key, value, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MentionsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.project = crawler.settings[PROJECT_SETTING]
        since = crawler.settings.get(SINCE_SETTING)
        spider.states = {}
        spider.left_over = {}
        for source in instantiate_sources(spider.project):
            source.checkpoint = checkpoint_for(spider.project, source.label)
            source.since = since
            spider.states[source.label] = SourceState(
                source, spider.project.crawl.max_consecutive_failures
            )
        crawler.signals.connect(spider._save_checkpoints, signal=signals.spider_closed)
        return spider

    def _save_checkpoints(self) -> None:
        """Remember the newest item per source and query, for the next incremental run.

        Runs after the item pipeline has closed. If any mention could be put
        nowhere durable (``listener/lost``), no checkpoint moves: the next run
        asks the sources for those items again.
        """
        assert self.crawler.stats is not None
        lost = int(self.crawler.stats.get_value("listener/lost", 0) or 0)
        if lost:
            log.error(
                "%d mention(s) could not be indexed, spooled or dead-lettered; the checkpoints "
                "were not advanced, so the next run fetches them again",
                lost,
            )
            self.crawler.stats.set_value("listener/checkpoints_kept", True)
            return
        for label, state in self.states.items():
            left = self.left_over.get(label)
            # Stopped early: the checkpoint covers only what reached the index or the spool.
            if left and state.source.checkpoint.hand_back(left):
                log.warning(
                    "source %s: the crawl stopped before %d mention(s) were kept, and its "
                    "checkpoint cannot tell which; it is not advanced, so the next run fetches "
                    "them again",
                    label,
                    len(left),
                )
                continue
            try:
                state.source.checkpoint.save()
            except OSError as error:
                log.warning("could not save the checkpoint of source %s: %s", label, error)

    project: ProjectConfig
    states: dict[str, SourceState]
    #: Per source label: ids of mentions taken but not kept because the crawl stopped first.
    left_over: dict[str, set[str]]

    def _inc(self, key: str, count: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key, count)

    async def start(self) -> AsyncIterator[Any]:
        for label, state in self.states.items():
            self._inc(f"listener/source/{label}/started")
            try:
                requests = list(state.source.start_requests())
            except Exception as error:
                self._record_failure(state, f"{type(error).__name__}: {error}", "start_requests")
                continue
            for request in requests:
                yield self._to_scrapy(request, label)

    def _to_scrapy(self, request: Request, label: str) -> scrapy.Request:
        return scrapy.Request(
            request.url,
            method=request.method,
            headers=request.headers or None,
            body=request.body,
            priority=request.priority,
            callback=self._parse_source_response,
            errback=self._failed,
            dont_filter=False,
            meta={
                "listener_source": label,
                "listener_request": request,
                "download_slot": f"source:{label}",
                "dont_obey_robotstxt": not self.states[label].source.obeys_robots_txt,
                **self._size_limits(label),
            },
        )

    def _size_limits(self, label: str) -> dict[str, int]:
        """Per-request size limits for an entry with its own ``max_download_mb``."""
        chosen = getattr(self.states[label].source.options, "max_download_mb", None)
        if chosen is None:
            return {}
        limit = int(chosen * 1024 * 1024)
        return {"download_maxsize": limit, "download_warnsize": limit // 2}

    def _parse_source_response(self, response: ScrapyResponse) -> Iterable[Any]:
        label: str = response.meta["listener_source"]
        state = self.states[label]
        self._inc(f"listener/source/{label}/pages")
        self._inc(f"listener/source/{label}/status/{response.status}")
        if state.paused:
            self._inc(f"listener/source/{label}/skipped_while_paused")
            return
        own_response = Response(
            url=response.url,
            status=response.status,
            headers={
                key.decode("latin-1").lower(): values[-1].decode("latin-1")
                for key, values in response.headers.items()
                if values
            },
            body=response.body,
            request=response.meta["listener_request"],
        )
        try:
            results = iter(state.source.parse(own_response))
        except Exception as error:
            self._record_failure(state, f"{type(error).__name__}: {error}", response.url)
            return
        # Taken one at a time: a feed of 100,000 items is never held whole, and a crawl
        # asked to stop takes no more (what a source already counted in its checkpoint
        # is handed back to it, so the next run fetches those items again).
        while True:
            if self.stopping:
                self._leave_rest(label, results)
                return
            try:
                result = next(results)
            except StopIteration:
                break
            except Exception as error:  # what came before it stays taken
                self._record_failure(state, f"{type(error).__name__}: {error}", response.url)
                return
            if isinstance(result, Mention):
                # The entry's label goes with the mention: --source filters by plugin or label.
                result.source_label = label
                self._inc(f"listener/source/{label}/mentions")
                self._inc("listener/found")
                yield {"mention": result, "source_label": label}
            elif isinstance(result, Request):
                yield self._to_scrapy(result, label)
            else:
                self._record_failure(
                    state,
                    f"parse() yielded {type(result).__name__}, expected Mention or Request",
                    response.url,
                )
        state.consecutive_failures = 0
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(f"listener/source/{label}/last_success", response.url)
        # Parsed in part (a malformed feed with entries salvaged): a parse error, not a failure.
        problems, state.source.problems = state.source.problems, []
        for problem in problems:
            self._inc(f"listener/source/{label}/parse_errors")
            self._inc("listener/errors")
            state.last_error = problem
            self.crawler.stats.set_value(f"listener/source/{label}/last_error", problem)
            log.warning("source %s: %s", label, problem)

    @property
    def stopping(self) -> bool:
        """Whether the crawl was asked to stop (SIGTERM, Ctrl-C, a cancel) before it finished."""
        return not self.crawler.crawling

    def leave_for_next_run(self, label: str, mention_id: str) -> None:
        """A mention the crawl took but did not keep (it stopped first): fetch it next time."""
        self.left_over.setdefault(label, set()).add(mention_id)
        self._inc("listener/left_for_next_run")

    def _leave_rest(self, label: str, results: Iterator[Any]) -> None:
        """Stop reading a response; hand back what its source already produced.

        A generator is closed unread (its items never reached the checkpoint);
        the rest of a list the source built at once is handed back item by item.
        """
        if isinstance(results, Generator):
            results.close()
            return
        for result in results:
            if isinstance(result, Mention):
                self.leave_for_next_run(label, result.id)

    def _failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        label = request.meta.get("listener_source", "?")
        state = self.states.get(label)
        if failure.check(SourcePaused):
            self._inc(f"listener/source/{label}/skipped_while_paused")
            return
        if failure.check(DownloadStopped):  # not a fault of the source: asked again next run
            self._inc(f"listener/source/{label}/stopped_requests")
            return
        if failure.check(HttpError):
            response = failure.value.response  # type: ignore[union-attr]
            self._inc(f"listener/source/{label}/pages")
            self._inc(f"listener/source/{label}/status/{response.status}")
            reason = f"HTTP {response.status}"
        else:
            kind = failure.type.__name__ if failure.type else "Error"
            reason = f"{kind}: {failure.getErrorMessage()}"
        self._inc(f"listener/source/{label}/fetch_errors")
        self._inc("listener/errors")
        log.warning("source %s: %s at %s", label, reason, request.url)
        if state is not None:
            state.last_error = f"{reason} at {request.url}"
            assert self.crawler.stats is not None
            self.crawler.stats.set_value(f"listener/source/{label}/last_error", state.last_error)
            # HTTP errors (after retries) and connection failures count towards pausing too.
            state.consecutive_failures += 1
            self._maybe_pause(state)

    def redirect_loop(self, request: scrapy.Request, chain: list[str]) -> None:
        """Called by the duplicate filter: ``request`` redirects back into its own chain."""
        label = request.meta.get("listener_source", "?")
        self._inc(f"listener/source/{label}/fetch_errors")
        self._inc("listener/errors")
        reason = "redirect loop: " + " -> ".join(chain)
        log.warning("source %s: %s", label, reason)
        state = self.states.get(label)
        if state is not None:
            state.last_error = reason
            assert self.crawler.stats is not None
            self.crawler.stats.set_value(f"listener/source/{label}/last_error", reason)
            state.consecutive_failures += 1
            self._maybe_pause(state)

    def _record_failure(self, state: SourceState, reason: str, where: str) -> None:
        label = state.source.label
        self._inc(f"listener/source/{label}/parse_errors")
        self._inc("listener/errors")
        state.consecutive_failures += 1
        state.last_error = f"{reason} at {where}"
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(f"listener/source/{label}/last_error", state.last_error)
        log.warning("source %s: %s at %s", label, reason, where)
        self._maybe_pause(state)

    def _maybe_pause(self, state: SourceState) -> None:
        """Pause a source after too many failures in a row; its queued requests are dropped."""
        label = state.source.label
        assert self.crawler.stats is not None
        if not state.paused and state.consecutive_failures >= state.max_consecutive_failures:
            state.paused = True
            self.crawler.stats.set_value(f"listener/source/{label}/paused", True)
            log.error(
                "source %s paused for this run after %d failures in a row (last: %s)",
                label,
                state.consecutive_failures,
                state.last_error,
            )
