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
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.http import Request
from twisted.internet.defer import Deferred


class Downloader(ScrapyDownloader):
    """``DOWNLOADER`` of every crawl (see the module docstring)."""

    def _wait_for_download(
        self, slot: Slot, request: Request, queue_dfd: Deferred[Any]
    ) -> Coroutine[Any, Any, None]:
        # Called synchronously by _process_queue for each request it hands out; the
        # download itself adds the request again (a set) and removes it when done.
        slot.transferring.add(request)
        return super()._wait_for_download(slot, request, queue_dfd)
