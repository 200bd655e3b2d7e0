"""Feeds: RSS 0.9x/1.0/2.0 and Atom (through feedparser) and JSON Feed, read into one model.

:func:`read_feed` turns a fetched feed into a :class:`Feed` of
:class:`FeedEntry` items with plain text, aware UTC dates, absolute links and
authors, whatever the format. The ``rss`` source is built on it, and any
source that meets feeds (the ``web`` source's discovery) uses it too.

:func:`stream_feed` gives the same entries one at a time, so a feed of
100,000 items is never held whole: a well-formed RSS 2.0 or Atom document is
cut into pieces of :data:`CHUNK_ENTRIES` entries with lxml's ``iterparse``
(each piece keeps the document's root, namespaces and channel elements), and
feedparser reads each piece, so every field is mapped exactly as feedparser
maps it. A document that is not well-formed, declares a DTD or entities, or
has another layout is read whole by feedparser, whose tolerance it needs.
"""

from __future__ import annotations

import codecs
import copy
import html
import io
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.entities import name2codepoint
from time import struct_time
from typing import Any

import feedparser
from lxml import etree

from listener.sourcekit.pages import describe_body
from listener.sourcekit.values import (
    english_months,
    from_timestamp,
    http_url,
    parse_time,
    to_count,
)
from listener.text import html_to_text

__all__ = ["FEED_ACCEPT", "Feed", "FeedEntry", "FeedStream", "read_feed", "stream_feed"]

#: Entries per piece handed to feedparser when a large feed is streamed.
CHUNK_ENTRIES = 200

#: What a feed reader asks for: feeds first, generic XML/JSON after.
FEED_ACCEPT = (
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
    #: RSS ``<source url="…">name</source>``: the channel (for Google News, the
    #: publisher) the item came from.
    source_name: str | None = None
    source_url: str | None = None


@dataclass
class Feed:
    """A parsed feed: its format, its own date and its entries."""

    url: str
    format: str
    title: str | None
    updated: datetime | None
    entries: list[FeedEntry] = field(default_factory=list)
    warning: str | None = None


def _clean(value: object) -> str | None:
    """A string with its whitespace collapsed; None when empty or not a string."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


_ISO_DAY = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})")


# Zone abbreviations feeds write that feedparser does not know (it reads the time as
# UTC); only unambiguous ones (IST is India, Ireland and Israel), in minutes east of UTC.
_ZONE_NAMES = {
    "CET": 60, "CEST": 120, "MEZ": 60, "MESZ": 120, "EET": 120, "EEST": 180, "WET": 0,
    "WEST": 60, "BST": 60, "MSK": 180, "JST": 540, "KST": 540, "HKT": 480, "SGT": 480,
    "AWST": 480, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720,
    "NZDT": 780, "HST": -600, "AKST": -540, "AKDT": -480,
}  # fmt: skip
_NAMED_ZONE = re.compile(r"(?<![A-Za-z])(" + "|".join(_ZONE_NAMES) + r")(?![A-Za-z])")
_CLOCK = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?|[+-]\d{2}:?\d{2}\b")
_NUMERIC_ZONE = re.compile(r"[+-]\d{2}:?\d{2}\b|\d[zZ]\b")
# What feedparser misreads without a word: a 12-hour clock (05:17 PM is read as 05:17),
# slashed dates (2016/12/06 becomes 1 December), Unix timestamps (year 1481), ISO 8601
# basic format (20161206T171700Z is read as the day, its time and zone lost).
_BASIC_ISO = re.compile(r"\s*\d{8}T\d{2}")
_MISREAD = re.compile(
    r"\d\s*[AaPp]\.?[Mm]\b\.?|\d{1,4}/\d{1,2}/\d{1,4}|^\s*\d{9,13}\s*$|^\s*\d{8}T\d{2}"
)


def _written_time(raw: str) -> datetime | None:
    """A feed date feedparser could not read or misreads, read here; None when unreadable.

    Unix seconds or milliseconds; ISO 8601 basic format (``20161206T171700Z``,
    ``20161206T1717+0100``) with its zone; a leading weekday in any language dropped;
    month names in German, French, Spanish, Italian, Dutch or Portuguese read;
    a zone abbreviation from :data:`_ZONE_NAMES` applied when no numeric offset
    is given; the rest read by dateutil (12-hour clocks, slashed dates).
    """
    text = " ".join(raw.split())
    if re.fullmatch(r"\d{9,13}", text):
        return from_timestamp(int(text) / 1000 if len(text) == 13 else int(text))
    if _BASIC_ISO.match(text):
        return parse_time(text)  # impossible dates (20161345T...) are refused
    offset = None
    zone = _NAMED_ZONE.search(text)
    if zone is not None and not _NUMERIC_ZONE.search(text):
        offset = _ZONE_NAMES[zone.group(1)]
        text = f"{text[: zone.start()]} {text[zone.end() :]}".strip()
    text = re.sub(r"^[^\d,]+,\s*", "", text)  # "Di, 06 Dez 2016": the weekday goes
    text = re.sub(r"\([^)]*\)", " ", text)  # "(Coordinated Universal Time)"
    text = english_months(text)
    if not re.search(r"(?<!\d)\d{4}(?!\d)", text):
        return None  # a two-digit year is feedparser's to read
    from dateutil import parser as date_parser  # a dependency of trafilatura (htmldate)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown zone names: naive, handled below
        try:
            written = date_parser.parse(text, default=datetime(2000, 1, 1))
        except (ValueError, OverflowError, TypeError):
            return None
    if written.tzinfo is None or written.utcoffset() is None:
        written = written.replace(tzinfo=UTC) - timedelta(minutes=offset or 0)
    return written.astimezone(UTC)


def _from_struct(value: object, raw: object = None) -> datetime | None:
    """feedparser's ``*_parsed`` value (a UTC struct_time) as an aware datetime.

    ``raw`` is the date as the feed wrote it: feedparser rolls impossible ISO
    dates over (``2026-13-45`` becomes 2027-01-01), so those are refused here.
    When feedparser could not read ``raw`` (another language's month names) or
    misreads it (a 12-hour clock, a slashed date, a zone it does not know, a
    Unix timestamp), it is read by :func:`_written_time`.
    """
    if isinstance(raw, str) and raw.strip():
        if not re.search(r"\d", _CLOCK.sub(" ", raw)):
            # A time without a day ("T00:00:00-05:00"): feedparser dates it today,
            # which would invent a spike.
            return None
        zone = _NAMED_ZONE.search(raw)
        named = zone is not None and not _NUMERIC_ZONE.search(raw)
        if not isinstance(value, struct_time) or named or _MISREAD.search(raw):
            written = _written_time(raw)
            if written is not None:
                return written
            if _BASIC_ISO.match(raw):
                return None  # 20161345T...: feedparser would roll it over
    if not isinstance(value, struct_time):
        return None
    day = _ISO_DAY.match(raw) if isinstance(raw, str) else None
    if day is not None:
        try:
            date(int(day.group(1)), int(day.group(2)), int(day.group(3)))
        except ValueError:
            return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _looks_like_html(body: bytes) -> bool:
    start = body.lstrip()[:512].lower()
    return start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:200]


# --------------------------------------------------------------------------- decoding


_XML_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=", re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_NAMED_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")


def _numeric_entities(body: bytes) -> bytes:
    """HTML's named entities (``&nbsp;``, ``&rsquo;``) as numeric references XML knows.

    Feeds written by string templates carry them in titles and descriptions;
    XML defines five, so the document is not well-formed, the feed was
    reported malformed and read by feedparser's loose parser (whole, never
    streamed). Entities XML defines, and names HTML does not, are left alone.
    """
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"&" not in body:
        return body

    def numeric(match: re.Match[bytes]) -> bytes:
        name = match.group(1).decode("ascii")
        codepoint = None if name in _XML_ENTITIES else name2codepoint.get(name)
        return f"&#{codepoint};".encode("ascii") if codepoint else match.group(0)

    return _NAMED_ENTITY.sub(numeric, body)


def _prepare_xml(body: bytes, content_type: str) -> tuple[bytes, str]:
    """Make a feed body easy for feedparser: trim stray whitespace, settle its encoding.

    Feeds generated by templates often start with a newline before the XML
    declaration, which makes a strict XML parser give up and lose the declared
    encoding. A body that declares no encoding anywhere and is not UTF-8 is
    transcoded to UTF-8 using charset detection (feedparser itself only detects
    with ``chardet``, which listener does not require). HTML entities become
    numeric references (see :func:`_numeric_entities`).
    """
    body = _numeric_entities(body)
    if body[:4].rstrip(b" \t\r\n") == b"\xef\xbb\xbf" and body[3:].lstrip().startswith(b"<?xml"):
        # A UTF-8 BOM then blank lines (a template's or plugin file's): the BOM only
        # says UTF-8, which an XML declaration may also say; without it the
        # declaration can start the document, as XML requires.
        body = body[3:]
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


_ANCHOR = re.compile(r"<a\b[^>]*>.*?</a\s*>", re.IGNORECASE | re.DOTALL)


def _as_text(value: str, media_type: str) -> str:
    """An entry's content or summary as plain text; ``""`` when it is only a link's label.

    Hacker News' feed (and many aggregators) give each item the description
    ``<a href="…">Comments</a>``: a label, not what the item says.
    """
    if media_type == "text/plain":
        return _normalise_plain(value)
    text = html_to_text(value)
    label = len(text.split()) <= 4 and _ANCHOR.search(value) is not None
    if label and not html_to_text(_ANCHOR.sub(" ", value)).strip():
        return ""
    return text


def _entry_text(entry: Mapping[str, Any]) -> str:
    """The fullest text an entry offers among its contents and its summary, as plain text.

    Content (``content:encoded``, Atom ``content``) is usually the full text and
    the summary an excerpt, but not always: podcast feeds often carry a line of
    show notes in ``content:encoded`` and the episode's description in
    ``itunes:summary``. So the summary is taken when it has more words than
    the fullest content (several contents are alternatives).
    """
    contents = []
    for content in entry.get("content") or []:
        value = content.get("value") or ""
        if value.strip():
            contents.append(_as_text(value, content.get("type") or "text/html"))
    text = max(contents, key=len, default="")
    summary = entry.get("summary") or ""
    if summary.strip():
        media_type = (entry.get("summary_detail") or {}).get("type") or "text/html"
        excerpt = _as_text(summary, media_type)
        if len(excerpt.split()) > len(text.split()):
            text = excerpt
    return text


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
    return _clean(name), http_url(url, base)


def _entry_comments(entry: Mapping[str, Any]) -> int | None:
    for key in ("slash_comments", "thr_total"):
        count = to_count(entry.get(key))
        if count is not None:
            return count
    for link in entry.get("links") or []:
        if link.get("rel") == "replies":
            count = to_count(link.get("thr:count") or link.get("count"))
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
                f"{url} returned an HTML page, not a feed; body starts {describe_body(body)!r}"
            )
        reason = f" ({error})" if error else ""
        raise ValueError(
            f"{url} is not an RSS, Atom or JSON feed{reason}; body starts {describe_body(body)!r}"
        )

    # Plain dicts: FeedParserDict maps missing keys to others with a DeprecationWarning.
    channel: dict[str, Any] = dict(parsed.get("feed") or {})
    feed_date = _from_struct(channel.get("updated_parsed"), channel.get("updated")) or (
        _from_struct(channel.get("published_parsed"), channel.get("published"))
    )
    # Atom says a feed's author applies to entries without one; RSS has no such rule.
    inherited = channel.get("author_detail") if version.startswith("atom") else None
    feed = Feed(
        url=url,
        format=version,
        title=_clean(channel.get("title")),
        updated=feed_date,
        warning=None if error is None or isinstance(error, _HARMLESS_BOZO) else str(error),
    )
    for parsed_entry in parsed.entries:
        entry: dict[str, Any] = dict(parsed_entry)
        guid = entry.get("id")
        link = http_url(entry.get("link"), url)
        if link is None and isinstance(guid, str) and guid.startswith(("http://", "https://")):
            link = http_url(guid, url)  # a permalink guid (isPermaLink or not)
        if link is None:
            # A podcast episode without <link> whose guid is no URL: its audio file.
            # ("enclosures" is a key FeedParserDict computes; the plain dict has "links".)
            enclosures = [
                item.get("href")
                for item in entry.get("links") or []
                if isinstance(item, Mapping) and item.get("rel") == "enclosure"
            ]
            link = next((found for href in enclosures if (found := http_url(href, url))), None)
        canonical = http_url(entry.get("feedburner_origlink"), url) or link
        published = (
            _from_struct(entry.get("published_parsed"), entry.get("published"))
            or _from_struct(entry.get("updated_parsed"), entry.get("updated"))
            or _from_struct(entry.get("created_parsed"), entry.get("created"))
        )
        author_name, author_url = _entry_author(entry, inherited, url)
        origin = entry.get("source")
        origin = origin if isinstance(origin, Mapping) else {}
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
                source_name=_clean(origin.get("title")),
                source_url=http_url(origin.get("href") or origin.get("link"), url),
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


_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,31});")


def _json_plain(value: object) -> str | None:
    """A JSON Feed plain-text field, with the HTML entities some publishers leave decoded.

    The specification allows HTML in ``content_html`` only, but WordPress'
    JSON Feed plugin and others write titles as they write them for RSS:
    ``Here&#8217;s`` and ``Procter &amp; Gamble``.
    """
    if isinstance(value, str) and _ENTITY.search(value):
        value = html.unescape(value)
    return _clean(value)


def _read_json_feed(body: bytes, url: str) -> Feed:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"{url} is not valid JSON ({error}); body starts {describe_body(body)!r}"
        ) from None
    version = data.get("version") if isinstance(data, dict) else None
    if not (isinstance(version, str) and "jsonfeed.org/version/" in version):
        raise ValueError(
            f"{url} returned JSON that is not a JSON Feed (no jsonfeed.org version); "
            f"body starts {describe_body(body)!r}"
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
        link = http_url(item.get("url"), url) or http_url(item.get("external_url"), url)
        if link is None and isinstance(identifier, str) and identifier.startswith("http"):
            link = http_url(identifier, url)
        rich = item.get("content_html")
        plain = item.get("content_text")
        summary = item.get("summary")
        text = ""
        if isinstance(rich, str) and rich.strip():
            text = html_to_text(rich)
        if not text and isinstance(plain, str) and plain.strip():
            text = _normalise_plain(plain)  # also when content_html is only an image
        if isinstance(summary, str) and summary.strip():
            excerpt = html_to_text(summary)
            if len(excerpt.split()) > len(text.split()):
                text = excerpt
        author = _json_author(item) or feed_author or {}
        feed.entries.append(
            FeedEntry(
                link=link,
                canonical_link=link,
                title=_json_plain(item.get("title")),
                text=text,
                published=parse_time(item.get("date_published"))
                or parse_time(item.get("date_modified")),
                author_name=_json_plain(author.get("name")),
                author_url=http_url(author.get("url"), url),
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
    stream = stream_feed(body, url, content_type)
    stream.feed.entries = list(stream.entries)
    return stream.feed


@dataclass
class FeedStream:
    """A feed whose entries are read as they are asked for (see :func:`stream_feed`).

    ``feed`` holds the feed's own fields (format, title, date, warning) and no
    entries; ``entries`` yields them in document order, once.
    """

    feed: Feed
    entries: Iterator[FeedEntry]


def stream_feed(body: bytes, url: str, content_type: str = "") -> FeedStream:
    """Like :func:`read_feed`, but the entries come one at a time, in bounded memory.

    Raises :class:`ValueError` at once when the body is no feed (as
    :func:`read_feed` does).
    """
    media_type = content_type.split(";")[0].strip().lower()
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if not start:
        raise ValueError(f"{url} returned an empty body, not a feed")
    if start in (b"{", b"[") or (media_type.endswith("json") and start != b"<"):
        whole = _read_json_feed(body, url)
    else:
        prepared, prepared_type = _prepare_xml(body, content_type)
        layout = _streamable(prepared, prepared_type)
        if layout is not None:
            head = _read_xml_feed(layout.document([]), url, "application/xml")
            return FeedStream(head, _streamed_entries(prepared, layout, url))
        whole = _read_xml_feed(body, url, content_type)
    entries, whole.entries = whole.entries, []
    return FeedStream(whole, iter(entries))


# --------------------------------------------------------------------------- streaming

_RSS_ITEM = "item"
_ATOM = "{http://www.w3.org/2005/Atom}"
# Documents that need feedparser's care: a DTD (entities), or no XML at all.
_NEEDS_FEEDPARSER = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", re.IGNORECASE)


def _parser_events(body: bytes) -> Iterator[tuple[str, Any]]:
    """lxml's iterparse over ``body``: no DTD, no entities, no network."""
    return iter(
        etree.iterparse(
            io.BytesIO(body),
            events=("start", "end"),
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
        )
    )


@dataclass
class _Layout:
    """A streamable feed: its root, the element holding the entries, and the other children."""

    root: Any
    holder: Any | None  # RSS <channel> (None for Atom: entries sit in <feed>)
    entry_tag: str
    header: list[Any]

    def document(self, entries: list[Any]) -> bytes:
        """A small feed: the root, its channel elements and ``entries``, as UTF-8 XML."""
        root = etree.Element(self.root.tag, attrib=dict(self.root.attrib), nsmap=self.root.nsmap)
        parent = root
        if self.holder is not None:
            parent = etree.SubElement(root, self.holder.tag, attrib=dict(self.holder.attrib))
        for element in self.header:
            parent.append(copy.deepcopy(element))
        for element in entries:
            parent.append(element)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def _same_encoding(body: bytes, content_type: str) -> bool:
    """Whether lxml (the document's own declaration) and feedparser (HTTP first) agree."""
    if "charset=" not in content_type.lower():
        return True
    charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip(" \"'")
    declared = _DECLARED.match(body)
    try:
        ours = codecs.lookup(declared.group(1).decode() if declared else "utf-8").name
        return codecs.lookup(charset).name == ours
    except LookupError:
        return False


def _streamable(body: bytes, content_type: str) -> _Layout | None:
    """The layout of a well-formed RSS 2.0/0.9x or Atom 1.0 document; None for anything else.

    Reads the whole document once with lxml, keeping only the root, the
    channel and the channel's own (non-entry) elements, so that memory stays
    bounded whatever the number of entries.
    """
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or _NEEDS_FEEDPARSER.search(body):
        return None
    if not _same_encoding(body, content_type):
        return None
    layout: _Layout | None = None
    depth = 0
    try:
        for event, element in _parser_events(body):
            if event == "start":
                depth += 1
                if depth == 1:
                    if element.tag == "rss":
                        layout = _Layout(element, None, _RSS_ITEM, [])
                    elif element.tag == f"{_ATOM}feed":
                        layout = _Layout(element, None, f"{_ATOM}entry", [])
                    else:
                        return None  # RSS 1.0, Atom 0.3, …: feedparser reads those whole
                elif depth == 2 and layout is not None and layout.entry_tag == _RSS_ITEM:
                    if element.tag != "channel" or layout.holder is not None:
                        return None
                    layout.holder = element
                continue
            depth -= 1
            assert layout is not None
            holder = layout.holder if layout.entry_tag == _RSS_ITEM else layout.root
            parent = element.getparent()
            if element.tag == layout.entry_tag:
                if parent is None or parent is not holder:
                    return None  # entries elsewhere: feedparser knows what to make of it
                element.clear()
                parent.remove(element)
            elif parent is not None and parent is holder:
                layout.header.append(copy.deepcopy(element))
                element.clear()
                parent.remove(element)
    except etree.XMLSyntaxError:
        return None
    if layout is None or (layout.entry_tag == _RSS_ITEM and layout.holder is None):
        return None
    return layout


def _streamed_entries(body: bytes, layout: _Layout, url: str) -> Iterator[FeedEntry]:
    """The entries of a streamable document, read :data:`CHUNK_ENTRIES` at a time."""
    chunk: list[Any] = []
    for event, element in _parser_events(body):
        if event != "end" or element.tag != layout.entry_tag:
            continue
        parent = element.getparent()
        chunk.append(copy.deepcopy(element))
        element.clear()
        if parent is not None:
            parent.remove(element)
        if len(chunk) >= CHUNK_ENTRIES:
            yield from _read_xml_feed(layout.document(chunk), url, "application/xml").entries
            chunk = []
    if chunk:
        yield from _read_xml_feed(layout.document(chunk), url, "application/xml").entries
