"""Large feeds are read a piece at a time, with exactly the fields feedparser gives a whole read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SHARED_FIXTURES

from listener.sourcekit import feeds
from listener.sourcekit.feeds import read_feed, stream_feed

SHARED = SHARED_FIXTURES / "feeds"
SHIPPED = Path(__file__).parents[1] / "plugins" / "fixtures" / "rss"
START = datetime(2026, 11, 1, tzinfo=UTC)


def whole(body: bytes, url: str, content_type: str = "application/xml") -> feeds.Feed:
    """The feed as feedparser reads the whole document (what listener did before streaming)."""
    return feeds._read_xml_feed(body, url, content_type)


def rss(count: int) -> bytes:
    items = "".join(
        f"<item><title>Acme &amp; co {n}</title><link>/acme/{n}</link>"
        f"<content:encoded><![CDATA[<p>Acme <b>shipped</b> {n}</p>]]></content:encoded>"
        f"<dc:creator>Writer {n % 3}</dc:creator><slash:comments>{n}</slash:comments>"
        + (
            ""
            if n % 4 == 0
            else f"<pubDate>{START + timedelta(minutes=n):%a, %d %b %Y %H:%M:%S} GMT</pubDate>"
        )
        + "</item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
        'xml:base="https://news.example/base/"><channel><title>News</title>'
        f"{items}<lastBuildDate>Mon, 30 Nov 2026 10:00:00 GMT</lastBuildDate></channel></rss>"
    ).encode()


def atom(count: int) -> bytes:
    entries = "".join(
        f'<entry><title type="html">Acme &lt;i&gt;{n}&lt;/i&gt;</title>'
        f'<link rel="alternate" href="entries/{n}"/><id>urn:acme:{n}</id>'
        f"<updated>2026-11-0{1 + n % 9}T10:00:00Z</updated>"
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Acme {n}</p></div>'
        "</content></entry>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xml:base="https://blog.example/"><title>Blog</title><id>urn:blog</id>'
        "<updated>2026-11-30T00:00:00Z</updated><author><name>Feed Author</name></author>"
        f"{entries}</feed>"
    ).encode()


@pytest.mark.parametrize("body", [rss(23), atom(23)], ids=["rss", "atom"])
def test_pieces_give_the_fields_of_a_whole_read(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "CHUNK_ENTRIES", 4)  # six pieces, the last one short
    expected = whole(body, "https://news.example/feed.xml")
    streamed = read_feed(body, "https://news.example/feed.xml", "application/xml")
    assert streamed.entries == expected.entries
    assert (streamed.format, streamed.title, streamed.updated, streamed.warning) == (
        expected.format,
        expected.title,
        expected.updated,
        expected.warning,
    )
    assert len(streamed.entries) == 23
    assert all(entry.link and entry.link.startswith("https://") for entry in streamed.entries)


def test_entries_are_read_as_they_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "CHUNK_ENTRIES", 5)
    reads: list[int] = []
    original = feeds._read_xml_feed

    def counting(body: bytes, url: str, content_type: str) -> feeds.Feed:
        reads.append(len(body))
        return original(body, url, content_type)

    monkeypatch.setattr(feeds, "_read_xml_feed", counting)
    stream = stream_feed(rss(100), "https://news.example/feed.xml", "application/rss+xml")
    first = next(stream.entries)
    assert first.title == "Acme & co 0"
    assert len(reads) == 2  # the channel alone, then the first piece of five entries
    assert sum(1 for _ in stream.entries) == 99
    assert len(reads) == 1 + 20


def test_what_needs_feedparsers_tolerance_is_read_whole() -> None:
    malformed = rss(3).replace(b"</channel>", b"<item><title>Acme broken</title></channel>")
    feed = read_feed(malformed, "https://news.example/feed.xml")
    assert feed.warning  # salvaged by feedparser's loose parser, and said so
    assert feed.entries
    declared = rss(3).replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY acme "Acme Corp">]><rss', 1)
    assert feeds._streamable(declared, "application/xml") is None
    assert (
        read_feed(declared, "https://news.example/feed.xml").entries
        == whole(declared, "https://news.example/feed.xml").entries
    )


def _fixtures() -> list[Path]:
    found = sorted(SHIPPED.glob("*.xml"))
    if SHARED.is_dir():
        found += sorted(p for p in SHARED.rglob("*") if p.is_file() and p.suffix != ".json")
    return found


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.name)
def test_recorded_feeds_read_the_same_streamed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = path.read_bytes()
    url = "https://recorded.example/feed"
    try:
        expected = whole(body, url)
    except ValueError:
        with pytest.raises(ValueError):
            read_feed(body, url, "application/xml")
        return
    monkeypatch.setattr(feeds, "CHUNK_ENTRIES", 2)
    streamed = read_feed(body, url, "application/xml")
    assert streamed.entries == expected.entries
    assert (streamed.format, streamed.title, streamed.updated) == (
        expected.format,
        expected.title,
        expected.updated,
    )
