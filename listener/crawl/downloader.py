"""Scrapy's downloader with each download slot's ``concurrency`` enforced under asyncio.

Scrapy 2.19's ``Downloader._process_queue`` hands queued requests out while
``slot.free_transfer_slots() > 0`` and schedules each download as a
coroutine; the download counts itself in ``slot.transferring`` only when it
starts. Under the Twisted reactor it starts at once, but under the asyncio
reactor (listener's) it is a task that starts on the next turn of the loop,
so a slot with no delay hands out every queued request at once: an entry with
``concurrency = 1`` and three feeds had 2-3 requests in flight (with a delay
the loop stops after one request, which hid it). Counting the request as
transferring when it is handed out, before the task runs, restores the limit.
(Upstream: the coroutine rewrite of the downloader, scrapy/scrapy#6799.)

It also cuts downloads short when the crawl is asked to stop (SIGTERM, Ctrl-C,
a web cancel). Scrapy's graceful stop waits for every request in flight, so a
feed server that answers slowly (or never) kept a stopped crawl up until the
download timeout ran out: a web cancel left the process running for 18 s and
more. A request cut short, or still queued, fails with :class:`DownloadStopped`;
nothing of it was taken, so its source's checkpoint does not cover it and the
next run asks for it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.asyncio import is_asyncio_available
from twisted.internet.defer import Deferred

#: Seconds between checks, during a download, of whether the crawl was asked to stop.
STOP_CHECK = 0.2


class DownloadStopped(IgnoreRequest):
    """The crawl stopped before this request was answered; the next run asks for it again."""


class Downloader(ScrapyDownloader):
    """``DOWNLOADER`` of every crawl (see the module docstring)."""

    def _wait_for_download(
        self, slot: Slot, request: Request, queue_dfd: Deferred[Any]
    ) -> Coroutine[Any, Any, None]:
        # Called synchronously by _process_queue for each request it hands out; the
        # download itself adds the request again (a set) and removes it when done.
        slot.transferring.add(request)
        return super()._wait_for_download(slot, request, queue_dfd)

    async def _download(self, slot: Slot, request: Request) -> Response:
        if not is_asyncio_available():  # pragma: no cover (listener runs the asyncio reactor)
            return await super()._download(slot, request)
        if not self.crawler.crawling:  # still queued when the crawl was asked to stop
            # What Scrapy's _download does when a download ends: free the slot, go on.
            slot.transferring.discard(request)
            self._process_queue(slot)
            raise DownloadStopped(f"the crawl stopped before {request.url} was requested")
        download = asyncio.ensure_future(super()._download(slot, request))
        while True:
            done, _ = await asyncio.wait({download}, timeout=STOP_CHECK)
            if done:
                return download.result()
            if not self.crawler.crawling:
                break
        download.cancel()  # closes the connection; Scrapy's _download frees the slot
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await download
        raise DownloadStopped(f"the crawl stopped before {request.url} answered")
