"""The ``rss`` source: RSS 0.9x/1.0/2.0 and Atom feeds (through feedparser) and JSON Feed.

One request per configured feed; every entry of a feed becomes a Mention. Entries
are not filtered by keyword here: the enrichment stage drops mentions that match
no brand.

Decisions a user may want to know about:

- Text is the entry's full content (``content:encoded``, Atom ``content``, JSON
  Feed ``content_html``/``content_text``) when given, else its summary, else its
  title; HTML becomes plain text with paragraph breaks kept. A summary with
  more words than the content wins (podcasts put the episode's description in
  ``itunes:summary``), and a description that is only a link's label ("Comments")
  is not text.
- The date is the entry's published date, else its updated date (dates
  feedparser misreads are read by :mod:`listener.sourcekit.feeds`: other
  languages' month names, 12-hour clocks, slashed dates, zone abbreviations
  such as CET, Unix timestamps). An entry with
  neither takes the feed's own date (RSS ``lastBuildDate``/``pubDate``, Atom
  ``updated``): the entry cannot be newer than the feed that carries it. When the
  feed has no date either, the entry is skipped (logged and counted in
  :attr:`RssSource.skipped`) rather than stamped with the crawl time, which would
  invent a spike.
- An entry without a usable http(s) link (nor a permalink guid, nor an
  enclosure such as a podcast episode's audio file) is skipped: a mention
  must point somewhere, and its id is derived from its URL.
- Atom and JSON Feed entries without an author inherit the feed's author (both
  specifications say so); RSS entries do not (``managingEditor`` is an editor).
- An entry's id derives from its link. Entries that are anchors of one page
  (``/changelog#v1.3``) keep the anchor in their id; entries sharing a link
  without one are told apart by their guid (see :func:`_entry_canonical`).
- FeedBurner's ``feedburner:origLink`` is used as the canonical URL, so the same
  article read through the proxy and directly is one mention.
- Google News items link to an opaque ``news.google.com`` redirect; their
  ``<source url="…">`` (the publisher) gives the mention's domain and author,
  and the `` - Publisher`` Google appends to the title is dropped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind, domain_of
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    FEED_ACCEPT,
    Feed,
    FeedEntry,
    FeedStream,
    SkipReport,
    canonical_url,
    host_of,
    http_url,
    read_feed,
    response_header,
    stream_feed,
)

log = logging.getLogger(__name__)

__all__ = [
    "Feed",
    "FeedEntry",
    "RssOptions",
    "RssSource",
    "listener_register_sources",
    "read_feed",
]

#: What a feed reader asks for (kept under its old name for existing imports).
ACCEPT = FEED_ACCEPT


class RssOptions(SourceOptions):
    """Options of the ``rss`` source."""

    feeds: list[AbsoluteURL] = Field(min_length=1, description="feed URLs: RSS, Atom or JSON Feed")
    kind: SourceKind = Field(
        default=SourceKind.NEWS, description="what the feeds are: news (default), blog, …"
    )


class RssSource(Source[RssOptions]):
    """Reads RSS, Atom and JSON Feed documents; every entry becomes a Mention."""

    name = "rss"
    kind = SourceKind.NEWS
    api_version = 1
    example_options = {"feeds": ["{base_url}/feed.xml"]}
    #: A small recorded site shipped in the package, for ``listener plugins check rss``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "rss"

    def __init__(self, options: RssOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Entries left out so far, by reason ("no link", "no date", "no text").
        self.skipped: Counter[str] = Counter()

    def start_requests(self) -> Iterable[Request]:
        """One request per configured feed."""
        for feed in self.options.feeds:
            yield Request(url=feed, headers={"Accept": ACCEPT}, meta={"feed": feed})

    def parse(self, response: Response) -> Iterator[Mention | Request]:
        """Every entry of the feed as a Mention, as it is read; a ValueError when it is no feed.

        A generator: a feed of 100,000 items is read a piece at a time (see
        :func:`listener.sourcekit.stream_feed`), and an entry's checkpoint moves
        only when the crawl takes its mention, so a crawl stopped half-way
        fetches the rest next time.
        """
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}, not a feed")
        stream = stream_feed(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        return self._mentions(stream, response)

    def _mentions(self, stream: FeedStream, response: Response) -> Iterator[Mention]:
        feed = stream.feed
        skips = SkipReport("entries")
        feed_key = response.request.url
        seen_before = yielded = entries = 0
        owners: dict[str, str] = {}  # canonical URL -> the first entry that links to it
        for entry in stream.entries:
            entries += 1
            base = canonical_url(entry.canonical_link or entry.link) if entry.link else ""
            shared = owners.setdefault(base, _identity(entry)) != _identity(entry)
            mention, reason = self._mention(entry, feed, shared)
            if mention is None:
                skips.skip(reason, _entry_name(entry, entries))
            elif not self.is_new(feed_key, mention):
                seen_before += 1  # incremental: an earlier run already had it
            else:
                self.checkpoint.advance(feed_key, mention.published_at, mention.id)
                yielded += 1
                yield mention
        if feed.warning:
            self.report_problem(
                f"{response.url} is a malformed {feed.format} feed ({feed.warning}); "
                f"salvaged {yielded + seen_before} mention(s) from the "
                f"{entries} entries it could read"
            )
        if seen_before:
            log.info(
                "%s: %d entries of %s seen in an earlier run", self.label, seen_before, feed_key
            )
        skips.log(log, self.label, response.url, entries, into=self.skipped)

    def _mention(
        self, entry: FeedEntry, feed: Feed, shared: bool = False
    ) -> tuple[Mention | None, str]:
        if entry.link is None:
            return None, "without a link"
        canonical, anchored = _entry_canonical(entry, shared)
        published = entry.published or feed.updated
        if published is None:
            return None, "without a date (nor a feed date)"
        title, text = entry.title, entry.text or entry.title or ""
        if not text.strip():
            return None, "without text"
        author = Author(name=entry.author_name, url=entry.author_url)
        publisher = _google_news_publisher(entry)
        if publisher is not None:
            title, text = _without_publisher(entry.title, text, publisher)
            author = Author(name=entry.author_name or publisher, url=entry.source_url)
        mention = Mention.create(
            source=self.name,
            source_kind=self.options.kind,
            url=entry.link,
            canonical_url=canonical,
            title=title,
            text=text,
            published_at=published,
            author=author,
            engagement=Engagement(comments=entry.comments),
            keep_fragment=anchored,
        )
        if publisher is not None and entry.source_url:
            # The link is Google's redirect; the article is on the publisher's site.
            mention.domain = domain_of(entry.source_url)
        return mention, ""


def _google_news_publisher(entry: FeedEntry) -> str | None:
    """The publisher Google News names for an item linking to its redirect; else None.

    Google News feeds link every item to ``news.google.com/rss/articles/…`` (an
    opaque redirect) and name the publisher in ``<source url="…">``.
    """
    host = host_of(entry.link or "")
    if not entry.source_url or not (host == "news.google.com" or host.endswith(".news.google.com")):
        return None
    return entry.source_name or domain_of(entry.source_url)


def _without_publisher(title: str | None, text: str, publisher: str) -> tuple[str | None, str]:
    """A Google News title and text without the publisher Google appends to both.

    Titles read ``Headline - Publisher``, and the description is the headline
    linked, then the publisher's name: the text is the headline then.
    """
    suffix = f" - {publisher}"
    if title and title.endswith(suffix) and len(title) > len(suffix):
        title = title[: -len(suffix)].rstrip()
    words = " ".join(text.split())
    if title and words in (f"{title} {publisher}", f"{title}{suffix}", title):
        text = title
    return title, text


# Fragments that are no anchor of their own: tracking (#xtor=RSS-1, #ixzz…, #utm_…,
# #ref=rss) and jump links (WordPress' #more-123 and #respond, #top, #content …).
_NO_ANCHOR = re.compile(
    r"^(?:$|utm|xtor|ixzz|ref=|at_|src=|from=|rss|more|respond"
    r"|(?:comments?|top|main|content|article|start|body|page)$)",
    re.IGNORECASE,
)


def _entry_name(entry: FeedEntry, position: int) -> str:
    """How the log names a skipped entry: its link, else its guid, else its place in the feed."""
    return entry.link or entry.guid or f"entry {position}"


def _identity(entry: FeedEntry) -> str:
    """What tells entries apart when they share a link: the guid, else title and date."""
    return entry.guid or f"{entry.title}\n{entry.published}"


def _entry_canonical(entry: FeedEntry, shared: bool) -> tuple[str, bool]:
    """The URL an entry's id derives from, and whether its fragment is part of it.

    A changelog, live blog or podcast feed gives each entry an anchor of one
    page (``/changelog#v1.3``); without its fragment every entry had the same
    id and all but one were dropped as duplicates. Such an anchor is kept.
    Entries that share a link without one (every item pointing at the home
    page) are told apart by their guid: a permalink guid as it is, any other
    guid hashed into an ``#entry-…`` anchor (the first entry keeps the plain
    link, so feeds without shared links keep their ids).
    """
    link = entry.canonical_link or entry.link or ""
    fragment = urlsplit(link).fragment
    if fragment and not _NO_ANCHOR.match(fragment):
        return link, True
    if not shared:
        return link, False
    own = http_url(entry.guid)
    if own and canonical_url(own) != canonical_url(link):
        return own, False
    digest = hashlib.sha1(_identity(entry).encode()).hexdigest()[:12]
    return f"{link.partition('#')[0]}#entry-{digest}", True


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``rss`` source."""
    return [RssSource]
