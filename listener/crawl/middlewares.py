"""Downloader middlewares: honour ``Retry-After`` on 429/503, and robots.txt for every request.

And one spider middleware: a bounded number of items in flight (:class:`InFlightLimitMiddleware`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from itemadapter import is_item
from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import (
    RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware,
)
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.task import deferLater

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

log = logging.getLogger(__name__)

RATE_LIMIT_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (seconds or HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SourcePaused(IgnoreRequest):
    """A request of a source paused for this run (too many failures in a row): not fetched."""


class PausedSourceMiddleware:
    """Drops the queued requests (and retries) of a source the spider has paused."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PausedSourceMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        states = getattr(self.crawler.spider, "states", {})
        state = states.get(request.meta.get("listener_source"))
        if state is not None and state.paused:
            raise SourcePaused(f"source {state.source.label} is paused for this run")


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retry middleware, waiting as long as the server asks on 429/503.

    Without a ``Retry-After`` header it behaves exactly like RetryMiddleware.
    A wait longer than ``LISTENER_MAX_RETRY_AFTER`` seconds is not honoured:
    the response is given up on and counted, so one source cannot stall a crawl.
    """

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in RATE_LIMIT_STATUSES:
            return super().process_response(request, response)
        header = response.headers.get(b"Retry-After")
        delay = retry_after_seconds(header.decode("latin-1") if header else None)
        if delay is None:
            return super().process_response(request, response)
        stats = self.crawler.stats
        assert stats is not None
        limit = self.crawler.settings.getfloat("LISTENER_MAX_RETRY_AFTER", 300.0)
        if delay > limit:
            stats.inc_value("listener/retry_after/too_long")
            log.warning(
                "%s asked to retry after %.0f s (limit %.0f s); giving up on %s",
                response.status,
                delay,
                limit,
                request.url,
            )
            return response
        retry = self._retry(request, f"{response.status} with Retry-After {delay:.0f}s")
        if retry is None:
            return response
        stats.inc_value("listener/retry_after/waited")
        if delay > 0:
            from twisted.internet import reactor  # the running one (importing installs one)

            await maybe_deferred_to_future(deferLater(reactor, delay, lambda: None))
        return retry


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every waiting request getting the parsed rules.

    In Scrapy 2.19 the requests that arrive while a host's robots.txt is being
    fetched share one Deferred; only the first waiter receives the parser and
    the later ones get None, which lets them through unchecked. Here each host
    has an asyncio future that any number of requests can await.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._waiting: dict[str, asyncio.Future[Any]] = {}

    async def robot_parser(self, request: Request) -> Any:
        netloc = urlparse_cached(request).netloc
        waiting = self._waiting.get(netloc)
        if waiting is not None:
            return await asyncio.shield(waiting)
        if netloc in self._parsers:
            return await super().robot_parser(request)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[netloc] = future
        parser = None
        try:
            parser = await super().robot_parser(request)
        finally:
            future.set_result(parser)
        return parser


class RedirectLoopDupeFilter(RFPDupeFilter):
    """Scrapy's duplicate filter, reporting a redirect back to a URL of its own chain.

    Scrapy drops such a request as a duplicate without a word, so a feed that
    redirects in a loop looked healthy; the spider records it as the source's
    fetch error instead.
    """

    def log(self, request: Request, spider: Any) -> None:
        chain = request.meta.get("redirect_urls") or []
        report = getattr(spider, "redirect_loop", None)
        if request.url in chain and report is not None:
            report(request, [*chain, request.url])
        super().log(request, spider)


def private_address(host: str) -> str | None:
    """The loopback/private/link-local/multicast address ``host`` is or resolves to, if any."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return None  # the download reports the DNS failure
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if (
            address.is_loopback
            or address.is_private
            or address.is_link_local
            or address.is_multicast
            or address.is_unspecified
        ):
            return str(address)
    return None


class PrivateRedirectMiddleware:
    """Refuses redirects to another host on a private address, unless the entry allows it.

    A public feed redirecting to ``127.0.0.2`` or the link-local metadata
    address must not make the crawler fetch (and index) what is only reachable
    from inside. The URLs a user wrote in the project file are trusted; set
    ``allow_private_network = true`` on an entry whose redirects lead into an
    intranet.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateRedirectMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        chain = request.meta.get("redirect_urls")
        if not chain:
            return
        host = urlparse_cached(request).hostname or ""
        first = urlsplit(chain[0]).hostname or ""
        if host == first:
            return
        states = getattr(self.crawler.spider, "states", {})
        state = states.get(request.meta.get("listener_source"))
        if state is not None and getattr(state.source.options, "allow_private_network", False):
            return
        address = private_address(host)
        if address is not None:
            raise IgnoreRequest(
                f"refused a redirect from {chain[0]} to {request.url} ({address} is a private "
                "address); set allow_private_network = true on the source entry to allow it"
            )


#: Responses whose items are being read at once (each holds a source's parse state).
RESPONSES_READ_AT_ONCE = 4


class InFlightLimitMiddleware:
    """Spider middleware: a bounded number of items between the sources and the pipeline.

    Scrapy reads every response it has downloaded at once (up to
    ``SCRAPER_SLOT_MAX_ACTIVE_SIZE``, 5 MB of bodies), each with up to
    ``CONCURRENT_ITEMS`` items processed and twice that queued. While the
    pipeline makes Scrapy wait for enrichment (back-pressure), all of those
    items, and each response's parse state, waited in memory: the more feeds a
    crawl had, the bigger the crawl process grew. Here an item is taken from a
    source only when fewer than ``LISTENER_ITEMS_IN_FLIGHT`` items are between
    the spider and the end of the pipeline (counted back by Scrapy's
    item_scraped / item_dropped / item_error signals), and at most
    :data:`RESPONSES_READ_AT_ONCE` responses are read at once; the others wait
    unread. Nothing is dropped: items are only taken later.
    """

    def __init__(self, crawler: Crawler, items: int, responses: int) -> None:
        self.items = asyncio.Semaphore(items)
        self.responses = asyncio.Semaphore(responses)
        self.in_flight = 0
        self.most_in_flight = 0
        self.stats = crawler.stats
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> InFlightLimitMiddleware:
        settings = crawler.settings
        return cls(
            crawler,
            settings.getint("LISTENER_ITEMS_IN_FLIGHT", 256),
            settings.getint("LISTENER_RESPONSES_READ_AT_ONCE", RESPONSES_READ_AT_ONCE),
        )

    def _item_done(self) -> None:
        self.in_flight -= 1
        self.items.release()

    def _spider_closed(self) -> None:
        if self.stats is not None:
            self.stats.set_value("listener/most_items_in_flight", self.most_in_flight)

    async def process_spider_output(  # async only: Scrapy >= 2.13 takes it by this name
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        async with self.responses:
            iterator = aiter(result)
            while True:
                await self.items.acquire()
                try:
                    value = await anext(iterator)
                except StopAsyncIteration:  # read to the end
                    self.items.release()
                    return
                except BaseException:
                    self.items.release()
                    raise
                if is_item(value):  # counted back when the pipeline is done with it
                    self.in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                else:  # a Request (or something Scrapy rejects): no item signal follows
                    self.items.release()
                yield value
