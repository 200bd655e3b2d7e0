"""Crawl politeness through the real Scrapy engine: robots.txt, Retry-After, per-entry overrides."""

from __future__ import annotations

from listener import demo_site
from listener.replay import Route
from listener.testing import replay_crawl

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
