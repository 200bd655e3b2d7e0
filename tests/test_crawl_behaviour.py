"""Crawl politeness through the real Scrapy engine: robots.txt, Retry-After, per-entry overrides."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.utils.test import get_crawler

from listener import demo_site
from listener.config import load_project
from listener.crawl.middlewares import InFlightLimitMiddleware
from listener.crawl.settings import download_slots
from listener.plugins.lemmy import LemmySource
from listener.plugins.web import WebSource
from listener.sdk.replay import Route
from listener.service.testing import Served, TimedReplayServer
from listener.testing import replay_crawl, write_project

FEED = (demo_site.DIRECTORY / "technews" / "feed.xml").read_bytes()
FEED_HEADERS = {"Content-Type": "application/rss+xml"}
DISALLOW_ALL = Route("/robots.txt", body=b"User-agent: *\nDisallow: /\n")


def feed_routes(*before: Route) -> list[Route]:
    return [*before, Route("/feed.xml", body=FEED, headers=FEED_HEADERS)]


def test_robots_txt_is_obeyed_by_default() -> None:
    result = replay_crawl("rss", {"feeds": ["{base_url}/feed.xml"]}, feed_routes(DISALLOW_ALL))
    assert result.mentions == []
    assert result.source["fetch_errors"] == 1
    assert "robots.txt" in (result.source["last_error"] or "")
    assert not [r for r in result.requests if r.path == "/feed.xml"]


def test_one_entry_can_ignore_robots_txt() -> None:
    options = {"feeds": ["{base_url}/feed.xml"], "obey_robots_txt": False}
    result = replay_crawl("rss", options, feed_routes(DISALLOW_ALL))
    assert len(result.mentions) == 12
    assert result.source["health"] == "healthy"


def test_retry_after_is_honoured() -> None:
    limited = Route(
        "/feed.xml", status=429, headers={"Retry-After": "1"}, body=b"slow down", times=1
    )
    result = replay_crawl("rss", {"feeds": ["{base_url}/feed.xml"]}, feed_routes(limited))
    assert [r.status for r in result.requests if r.path == "/feed.xml"] == [429, 200]
    assert len(result.mentions) == 12


def test_too_long_retry_after_gives_up_instead_of_stalling() -> None:
    limited = Route("/feed.xml", status=429, headers={"Retry-After": "3600"}, body=b"", times=1)
    result = replay_crawl("rss", {"feeds": ["{base_url}/feed.xml"]}, feed_routes(limited))
    assert [r.status for r in result.requests if r.path == "/feed.xml"] == [429]
    assert result.mentions == []
    assert result.source["fetch_errors"] == 1


# ------------------------------------------------------------------ download delays

EMPTY_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
    b"<link>https://example.com/</link><description>nothing yet</description></channel></rss>"
)


def empty_feeds(count: int) -> list[Route]:
    return [
        Route(f"/feed-{number}.xml", body=EMPTY_FEED, headers=FEED_HEADERS)
        for number in range(count)
    ]


def test_the_test_kit_overrides_declared_delays_unless_asked_for_them(tmp_path: Path) -> None:
    sources = [{"plugin": "lemmy", "instances": ["https://lemmy.example"]}, {"plugin": "rss"}]
    polite = load_project(write_project(tmp_path / "polite.toml", sources))
    fast = load_project(write_project(tmp_path / "fast.toml", sources, delays=False))
    assert {k: s["delay"] for k, s in download_slots(polite).items()} == {
        "source:lemmy": LemmySource.download_delay,
        "source:rss": 0.0,
    }
    assert {k: s["delay"] for k, s in download_slots(fast).items()} == {
        "source:lemmy": 0.0,
        "source:rss": 0.0,
    }
    assert fast.crawl.download_delay == 0 and not fast.crawl.autothrottle
    # An explicit per-entry delay is the test's own choice and is kept.
    chosen = [{"plugin": "lemmy", "instances": ["https://lemmy.example"], "download_delay": 2}]
    kept = load_project(write_project(tmp_path / "kept.toml", chosen, delays=False))
    assert download_slots(kept)["source:lemmy"]["delay"] == 2.0


def test_production_delays_space_out_a_sources_requests() -> None:
    # replay_crawl skips delays by default; delays=True crawls like production, where
    # Scrapy waits between 0.5 and 1.5 times the source's declared delay per request.
    declared = WebSource.download_delay
    assert declared >= 1
    paths = [route.path for route in empty_feeds(3)]
    options = {"feeds": [f"{{base_url}}{path}" for path in paths]}
    result = replay_crawl("web", options, empty_feeds(3), delays=True)
    arrivals = sorted(request.received for request in result.requests if request.path in paths)
    assert len(arrivals) == 3, [request.path for request in result.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # A lower bound only (a busy machine makes gaps longer, never shorter); 0.1 s of slack
    # for the time a request spends between Scrapy and the server's clock.
    assert min(gaps) >= 0.5 * declared - 0.1, gaps

    fast = replay_crawl("web", options, empty_feeds(3))
    assert sorted(r.path for r in fast.requests if r.path in paths) == sorted(paths)


# ------------------------------------------------------------------ concurrency per entry


def _most_in_flight(served: list[Served]) -> int:
    """The most requests the server was answering at one moment."""
    events = sorted(
        [(s.started, 1) for s in served] + [(s.finished, -1) for s in served],
        key=lambda event: (event[0], event[1]),  # an answer ends before the next one starts
    )
    return max(itertools.accumulate(change for _, change in events))


def test_an_entrys_concurrency_holds_with_no_delay() -> None:
    # Scrapy 2.19 under the asyncio reactor starts a request's download in a task that runs
    # later, so a slot with no delay handed every queued request out at once (2-3 in flight
    # for concurrency = 1); listener's downloader counts a request as soon as it is handed out.
    paths = [f"/feed{n}.xml" for n in range(3)]
    server = TimedReplayServer(
        [Route(path, body=EMPTY_FEED, headers=FEED_HEADERS) for path in paths], delay=0.3
    )
    with server:
        options = {"feeds": [f"{{base_url}}{path}" for path in paths], "concurrency": 1}
        result = replay_crawl("rss", options, [], server=server)
        served = server.timeline(set(paths))
    assert result.source["fetch_errors"] == 0
    assert len(served) == 3
    assert _most_in_flight(served) == 1


def test_a_crawl_runs_no_remote_control_or_telnet_server(tmp_path: Path) -> None:
    from scrapy.settings import Settings

    from listener.crawl.settings import PROGRESS_EXTENSION, scrapy_settings_for

    project = load_project(write_project(tmp_path / "listener.toml", [{"plugin": "rss"}]))
    settings = Settings()
    for key, value in scrapy_settings_for(project).items():
        settings.set(key, value, priority="spider")
    extensions = settings.get_component_priority_dict_with_base("EXTENSIONS")
    assert PROGRESS_EXTENSION in extensions
    assert "scrapy.extensions.corestats.CoreStats" in extensions
    assert not [name for name in extensions if "remote_control" in name or "telnet" in name]
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False


def test_items_in_flight_and_responses_read_at_once_are_bounded() -> None:
    # Six responses of ten items (and a follow-up request each) meet a pipeline that finishes
    # one item at a time: at most 5 items are ever out, at most 2 responses are read at once
    # (Scrapy alone reads all six, 100 items each at once), and every item gets through.
    crawler = get_crawler()
    limit = InFlightLimitMiddleware(crawler, items=5, responses=2)
    reading: set[int] = set()
    most_reading = 0
    out: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []

    async def response(number: int) -> AsyncIterator[Any]:
        nonlocal most_reading
        reading.add(number)
        most_reading = max(most_reading, len(reading))
        for index in range(10):
            yield {"response": number, "index": index}
            await asyncio.sleep(0)
        yield Request(f"https://example.com/{number}/next")
        reading.discard(number)

    async def scrape(number: int) -> list[Any]:
        got = []
        async for value in limit.process_spider_output(None, response(number)):
            got.append(value)
            if isinstance(value, dict):
                out.append(value)
        return got

    async def pipeline() -> None:
        while len(finished) < 60:
            await asyncio.sleep(0)
            assert len(out) - len(finished) <= 5
            if len(out) > len(finished):
                item = out[len(finished)]
                finished.append(item)
                signal = signals.item_dropped if item["index"] % 3 == 0 else signals.item_scraped
                crawler.signals.send_catch_log(signal, item=item)

    async def main() -> list[list[Any]]:
        scrapes = asyncio.gather(*(scrape(n) for n in range(6)))
        await asyncio.wait_for(pipeline(), 30)
        return await scrapes

    results = asyncio.run(main())
    assert most_reading <= 2
    assert 1 <= limit.most_in_flight <= 5
    assert [len(r) for r in results] == [11] * 6  # nothing lost, requests passed on
    assert sorted((i["response"], i["index"]) for i in finished) == [
        (n, i) for n in range(6) for i in range(10)
    ]
