"""The ``rss`` source: RSS 0.9x/1.0/2.0 and Atom feeds (through feedparser) and JSON Feed.

One request per configured feed; every entry of a feed becomes a Mention. Entries
are not filtered by keyword here: the enrichment stage drops mentions that match
no brand.

Decisions a user may want to know about:

- Text is the entry's full content (``content:encoded``, Atom ``content``, JSON
  Feed ``content_html``/``content_text``) when given, else its summary, else its
  title; HTML becomes plain text with paragraph breaks kept.
- The date is the entry's published date, else its updated date. An entry with
  neither takes the feed's own date (RSS ``lastBuildDate``/``pubDate``, Atom
  ``updated``): the entry cannot be newer than the feed that carries it. When the
  feed has no date either, the entry is skipped (logged and counted in
  :attr:`RssSource.skipped`) rather than stamped with the crawl time, which would
  invent a spike.
- An entry without a usable http(s) link (nor a permalink guid) is skipped: a
  mention must point somewhere, and its id is derived from its URL.
- Atom and JSON Feed entries without an author inherit the feed's author (both
  specifications say so); RSS entries do not (``managingEditor`` is an editor).
- FeedBurner's ``feedburner:origLink`` is used as the canonical URL, so the same
  article read through the proxy and directly is one mention.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import struct_time
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from pydantic import Field

from listener.config import BrandConfig
from listener.hookspecs import hookimpl
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.text import html_to_text

log = logging.getLogger(__name__)

__all__ = [
    "Feed",
    "FeedEntry",
    "RssOptions",
    "RssSource",
    "listener_register_sources",
    "read_feed",
]

#: What a feed reader asks for: feeds first, generic XML/JSON after.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)

# feedparser reports these when it could still read the document; they are not
# malformations (a missing or wrong Content-Type, an encoding it had to guess).
_HARMLESS_BOZO = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)


# --------------------------------------------------------------------------- plain text

_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")


def _normalise_plain(text: str) -> str:
    """Tidy plain text: trim lines, at most one blank line between paragraphs."""
    paragraphs = re.split(r"\n[ \t]*\n+", text.replace("\r\n", "\n").strip())
    cleaned = []
    for paragraph in paragraphs:
        lines = [_SPACES.sub(" ", line).strip() for line in paragraph.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            cleaned.append(joined)
    return "\n\n".join(cleaned)


# --------------------------------------------------------------------------- feed model


@dataclass
class FeedEntry:
    """One feed item, normalised across RSS, Atom and JSON Feed."""

    link: str | None
    canonical_link: str | None
    title: str | None
    text: str
    published: datetime | None
    author_name: str | None = None
    author_url: str | None = None
    comments: int | None = None
    guid: str | None = None


@dataclass
class Feed:
    """A parsed feed: its format, its own date and its entries."""

    url: str
    format: str
    title: str | None
    updated: datetime | None
    entries: list[FeedEntry] = field(default_factory=list)
    warning: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header value, looked up case-insensitively; ``""`` when absent."""
    value = headers.get(name) or headers.get(name.lower())
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name.lower():
                value = candidate
                break
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value or "")


def _clean(value: object) -> str | None:
    """A string with its whitespace collapsed; None when empty or not a string."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _http_url(value: object, base: str) -> str | None:
    """``value`` resolved against ``base`` when it is an http(s) URL, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    resolved = urljoin(base, value.strip())
    parts = urlsplit(resolved)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return resolved


def _from_struct(value: object) -> datetime | None:
    """feedparser's ``*_parsed`` value (a UTC struct_time) as an aware datetime."""
    if not isinstance(value, struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _parse_date(value: object) -> datetime | None:
    """An RFC 3339 (or RFC 822) date string as an aware UTC datetime; naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _count(value: object) -> int | None:
    """A non-negative count from a string or number, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _describe(body: bytes) -> str:
    snippet = body[:80].decode("utf-8", errors="replace")
    return " ".join(snippet.split())


def _looks_like_html(body: bytes) -> bool:
    start = body.lstrip()[:512].lower()
    return start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:200]


# --------------------------------------------------------------------------- decoding


_XML_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=", re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _prepare_xml(body: bytes, content_type: str) -> tuple[bytes, str]:
    """Make a feed body easy for feedparser: trim stray whitespace, settle its encoding.

    Feeds generated by templates often start with a newline before the XML
    declaration, which makes a strict XML parser give up and lose the declared
    encoding. A body that declares no encoding anywhere and is not UTF-8 is
    transcoded to UTF-8 using charset detection (feedparser itself only detects
    with ``chardet``, which listener does not require).
    """
    if not body.startswith(_BOMS):
        stripped = body.lstrip()
        if stripped.startswith(b"<"):
            body = stripped
    declared = "charset=" in content_type.lower() or body.startswith(_BOMS)
    declared = declared or bool(_XML_DECLARED_ENCODING.match(body))
    if declared:
        return body, content_type
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return body, content_type
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - scrapy depends on it
        return body, content_type
    best = from_bytes(body).best()
    if best is None:
        return body, content_type
    media_type = content_type.split(";")[0].strip() or "application/xml"
    return str(best).encode("utf-8"), f"{media_type}; charset=utf-8"


# --------------------------------------------------------------------------- RSS and Atom


def _entry_text(entry: Mapping[str, Any]) -> str:
    """The fullest text an entry offers: content, else summary, as plain text."""
    candidates: list[tuple[str, str]] = []
    for content in entry.get("content") or []:
        value = content.get("value") or ""
        if value.strip():
            candidates.append((value, content.get("type") or "text/html"))
    if candidates:
        # Several content elements are alternatives; keep the fullest.
        value, media_type = max(candidates, key=lambda item: len(item[0]))
    else:
        value = entry.get("summary") or ""
        media_type = (entry.get("summary_detail") or {}).get("type") or "text/html"
    if not value.strip():
        return ""
    if media_type == "text/plain":
        return _normalise_plain(value)
    return html_to_text(value)


def _entry_title(entry: Mapping[str, Any]) -> str | None:
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    media_type = (entry.get("title_detail") or {}).get("type") or "text/plain"
    if media_type in ("text/html", "application/xhtml+xml"):
        title = html_to_text(title)
    return " ".join(title.split()) or None


# RSS <author> is "address (Name)"; some feeds write "Name <address>". feedparser
# splits these itself but mangles addresses with long top-level domains.
_ADDRESS_THEN_NAME = re.compile(r"^\s*[^\s@()<>]+@[^\s@()<>]+\s*\((?P<name>[^()]*)\)\s*$")
_NAME_THEN_ADDRESS = re.compile(r"^\s*(?P<name>[^<>@]*?)\s*<[^\s@<>]+@[^\s@<>]+>\s*$")
_ADDRESS_ONLY = re.compile(r"^\s*<?[^\s@<>]+@[^\s@<>]+>?\s*$")


def _entry_author(
    entry: Mapping[str, Any], fallback: Mapping[str, Any] | None, base: str
) -> tuple[str | None, str | None]:
    detail = entry.get("author_detail") or {}
    raw = entry.get("author")
    name = detail.get("name")
    if isinstance(raw, str) and "@" in raw:
        match = _ADDRESS_THEN_NAME.match(raw) or _NAME_THEN_ADDRESS.match(raw)
        if match:
            name = match.group("name")
        elif _ADDRESS_ONLY.match(raw):
            name = None  # an e-mail address is not a name
    elif not name:
        name = raw
    url = detail.get("href")
    if not name and not url and fallback:
        name, url = fallback.get("name"), fallback.get("href")
    return _clean(name), _http_url(url, base)


def _entry_comments(entry: Mapping[str, Any]) -> int | None:
    for key in ("slash_comments", "thr_total"):
        count = _count(entry.get(key))
        if count is not None:
            return count
    for link in entry.get("links") or []:
        if link.get("rel") == "replies":
            count = _count(link.get("thr:count") or link.get("count"))
            if count is not None:
                return count
    return None


def _read_xml_feed(body: bytes, url: str, content_type: str) -> Feed:
    body, content_type = _prepare_xml(body, content_type)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # A file-like object: given bytes, feedparser would try them as a file name.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    version = parsed.get("version") or ""
    error = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not version:
        if _looks_like_html(body):
            raise ValueError(
                f"{url} returned an HTML page, not a feed; body starts {_describe(body)!r}"
            )
        reason = f" ({error})" if error else ""
        raise ValueError(
            f"{url} is not an RSS, Atom or JSON feed{reason}; body starts {_describe(body)!r}"
        )

    # Plain dicts: FeedParserDict maps missing keys to others with a DeprecationWarning.
    channel: dict[str, Any] = dict(parsed.get("feed") or {})
    feed_date = _from_struct(channel.get("updated_parsed")) or _from_struct(
        channel.get("published_parsed")
    )
    # Atom says a feed's author applies to entries without one; RSS has no such rule.
    inherited = channel.get("author_detail") if version.startswith("atom") else None
    feed = Feed(
        url=url,
        format=version,
        title=_clean(channel.get("title")),
        updated=feed_date,
        warning=str(error) if error is not None else None,
    )
    for parsed_entry in parsed.entries:
        entry: dict[str, Any] = dict(parsed_entry)
        guid = entry.get("id")
        link = _http_url(entry.get("link"), url)
        if link is None and isinstance(guid, str) and guid.startswith(("http://", "https://")):
            link = _http_url(guid, url)  # a permalink guid (isPermaLink or not)
        canonical = _http_url(entry.get("feedburner_origlink"), url) or link
        published = (
            _from_struct(entry.get("published_parsed"))
            or _from_struct(entry.get("updated_parsed"))
            or _from_struct(entry.get("created_parsed"))
        )
        author_name, author_url = _entry_author(entry, inherited, url)
        feed.entries.append(
            FeedEntry(
                link=link,
                canonical_link=canonical,
                title=_entry_title(entry),
                text=_entry_text(entry),
                published=published,
                author_name=author_name,
                author_url=author_url,
                comments=_entry_comments(entry),
                guid=guid if isinstance(guid, str) else None,
            )
        )
    readable = [e for e in feed.entries if e.link or e.title or e.text]
    if error is not None and not readable and not isinstance(error, _HARMLESS_BOZO):
        raise ValueError(f"{url} is a malformed {version} feed with no readable entries: {error}")
    return feed


# --------------------------------------------------------------------------- JSON Feed


def _json_author(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first author of a JSON Feed object (1.1 ``authors``, 1.0 ``author``)."""
    authors = item.get("authors")
    if isinstance(authors, list):
        for author in authors:
            if isinstance(author, dict) and (author.get("name") or author.get("url")):
                return author
    author = item.get("author")
    if isinstance(author, dict) and (author.get("name") or author.get("url")):
        return author
    return None


def _read_json_feed(body: bytes, url: str) -> Feed:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"{url} is not valid JSON ({error}); body starts {_describe(body)!r}"
        ) from None
    version = data.get("version") if isinstance(data, dict) else None
    if not (isinstance(version, str) and "jsonfeed.org/version/" in version):
        raise ValueError(
            f"{url} returned JSON that is not a JSON Feed (no jsonfeed.org version); "
            f"body starts {_describe(body)!r}"
        )
    items = data.get("items")
    if not isinstance(items, list):
        raise ValueError(f"{url} is a JSON Feed without an 'items' list")
    feed_author = _json_author(data)
    feed = Feed(
        url=url,
        format="json" + version.rsplit("/", 1)[-1],
        title=_clean(data.get("title")),
        updated=None,
    )
    for item in items:
        if not isinstance(item, dict):
            continue
        identifier = item.get("id")
        link = _http_url(item.get("url"), url) or _http_url(item.get("external_url"), url)
        if link is None and isinstance(identifier, str) and identifier.startswith("http"):
            link = _http_url(identifier, url)
        html = item.get("content_html")
        plain = item.get("content_text")
        summary = item.get("summary")
        if isinstance(html, str) and html.strip():
            text = html_to_text(html)
        elif isinstance(plain, str) and plain.strip():
            text = _normalise_plain(plain)
        elif isinstance(summary, str) and summary.strip():
            text = html_to_text(summary)
        else:
            text = ""
        author = _json_author(item) or feed_author or {}
        feed.entries.append(
            FeedEntry(
                link=link,
                canonical_link=link,
                title=_clean(item.get("title")),
                text=text,
                published=_parse_date(item.get("date_published"))
                or _parse_date(item.get("date_modified")),
                author_name=_clean(author.get("name")),
                author_url=_http_url(author.get("url"), url),
                guid=str(identifier) if identifier is not None else None,
            )
        )
    return feed


# --------------------------------------------------------------------------- entry point


def read_feed(body: bytes, url: str, content_type: str = "") -> Feed:
    """Parse an RSS, Atom or JSON Feed document fetched from ``url``.

    Relative links resolve against ``url`` (or the feed's ``xml:base``). Raises
    :class:`ValueError` naming ``url`` when the body is not a feed (an HTML error
    page, arbitrary JSON, an empty body) or is too malformed to yield any entry.
    """
    media_type = content_type.split(";")[0].strip().lower()
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if not start:
        raise ValueError(f"{url} returned an empty body, not a feed")
    if start in (b"{", b"[") or (media_type.endswith("json") and start != b"<"):
        return _read_json_feed(body, url)
    return _read_xml_feed(body, url, content_type)


class RssOptions(SourceOptions):
    """Options of the ``rss`` source."""

    feeds: list[AbsoluteURL] = Field(min_length=1, description="feed URLs: RSS, Atom or JSON Feed")
    kind: SourceKind = Field(
        default=SourceKind.NEWS, description="what the feeds are: news (default), blog, …"
    )


class RssSource(Source):
    """Reads RSS, Atom and JSON Feed documents; every entry becomes a Mention."""

    name = "rss"
    kind = SourceKind.NEWS
    Options = RssOptions

    def __init__(self, options: SourceOptions, brands: list[BrandConfig]) -> None:
        if not isinstance(options, RssOptions):
            raise TypeError(f"the rss source needs RssOptions, got {type(options).__name__}")
        super().__init__(options, brands)
        self.settings: RssOptions = options
        #: Entries left out so far, by reason ("no link", "no date", "no text").
        self.skipped: Counter[str] = Counter()

    def start_requests(self) -> Iterable[Request]:
        """One request per configured feed."""
        for feed in self.settings.feeds:
            yield Request(url=feed, headers={"Accept": ACCEPT}, meta={"feed": feed})

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Every entry of the feed as a Mention; a ValueError when it is no feed."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}, not a feed")
        feed = read_feed(response.body, response.url, _header(response.headers, "content-type"))
        skipped: Counter[str] = Counter()
        mentions: list[Mention] = []
        feed_key = response.request.url
        newer_than = self.newer_than(feed_key)
        seen_before = 0
        for entry in feed.entries:
            mention, reason = self._mention(entry, feed)
            if mention is None:
                skipped[reason] += 1
            elif newer_than is not None and mention.published_at <= newer_than:
                seen_before += 1  # incremental: an earlier run already had it
            else:
                self.checkpoint.advance(feed_key, mention.published_at)
                mentions.append(mention)
        if seen_before:
            log.info(
                "%s: %d entries of %s seen in an earlier run", self.label, seen_before, feed_key
            )
        if skipped:
            self.skipped.update(skipped)
            details = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
            log.warning(
                "%s: skipped %d of %d entries of %s (%s)",
                self.label,
                skipped.total(),
                len(feed.entries),
                response.url,
                details,
            )
        return mentions

    def _mention(self, entry: FeedEntry, feed: Feed) -> tuple[Mention | None, str]:
        if entry.link is None:
            return None, "without a link"
        published = entry.published or feed.updated
        if published is None:
            return None, "without a date (nor a feed date)"
        text = entry.text or entry.title or ""
        if not text.strip():
            return None, "without text"
        author = Author(name=entry.author_name, url=entry.author_url)
        return (
            Mention.create(
                source=self.name,
                source_kind=self.settings.kind,
                url=entry.link,
                canonical_url=entry.canonical_link or entry.link,
                title=entry.title,
                text=text,
                published_at=published,
                author=author,
                engagement=Engagement(comments=entry.comments),
            ),
            "",
        )


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``rss`` source."""
    return [RssSource]
