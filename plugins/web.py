"""The ``web`` source: news and blog articles from listed sites, found through sitemaps and feeds.

For each site in ``sites`` the source reads ``/robots.txt`` for ``Sitemap:``
lines (falling back to ``/sitemap.xml`` when there are none) and the home page
for ``<link rel="alternate">`` RSS/Atom/JSON feeds. Sitemaps and feeds given
directly (``sitemaps``, ``feeds``) are read as well. Sitemap indexes are
followed (nested ones too, three levels deep), gzip-compressed sitemaps
(``.xml.gz``) are unpacked, Google News sitemaps give each article's
publication date and title, and a feed used as a sitemap is read as a feed.
Every article URL found is fetched (same site only, newest first, at most
``limit`` per site and run) and its main text, title, author and date are
extracted with trafilatura from the HTML the crawler fetched (trafilatura never
fetches anything itself). Only articles whose title or text contains one of the
brands' keywords (case- and accent-insensitive substring test; enrichment does
the real matching) become Mentions, of kind ``news`` or ``blog`` as configured.

Decisions a user may want to know about:

- **Incremental.** The source remembers, per site, the newest ``lastmod``
  (or news publication date, or feed entry date) of the articles it read. The
  next run skips sitemap entries and whole child sitemaps whose ``lastmod`` is
  not newer, so an unchanged site costs robots.txt, the home page and the
  sitemap index. Entries without any date cannot be told apart and are fetched
  again (up to ``limit``). Entries beyond ``limit`` in a run that are older
  than the newest one read are not revisited later: raise ``limit`` or backfill
  with ``listener crawl --since``.
- **Date.** The publication date the site declares for the entry (news
  sitemap, feed) is preferred, then the publication date the page declares
  (its article's JSON-LD ``datePublished``, ``article:published_time`` and
  similar ``<meta>`` tags, ``itemprop=datePublished``; never a modification
  date), then the date trafilatura finds in the page, then the sitemap's
  ``lastmod``. A declared time with a zone wins over one without; a declared
  day without a time takes trafilatura's time that day, and a day alone the
  time of the page's first ``<time datetime>`` that day (forums, blog
  themes). A date without a time is midnight UTC. An article with no date
  at all is skipped and counted: a stamped crawl time would invent a spike.
- **Title.** The page's own headline (``<h1>``) when it is part of the
  document title, else trafilatura's title with a trailing or leading site
  name (``"… - The Verge"``) removed; a news-sitemap or feed title fills in
  when the page has none. Missing author or text degrade the Mention.
- **Canonical URL.** ``<link rel=canonical>`` (or ``og:url``) when it is on the
  same site and not the home page, else the fetched URL.
- **Languages.** With ``languages``, an article is kept only when its declared
  (``<html lang>``) or detected language is one of them. The declared language
  is set on the Mention; enrichment detects its own.
- **Same site.** Article URLs must be on the site's host (``www.`` and
  subdomains either way count as the site); links elsewhere are skipped and
  counted. Sitemaps named in robots.txt may live on another host (a CDN).
  URLs that end in a document, image or media extension are skipped.
- **Failures.** An HTTP error status, an HTML page (an error page) where a
  sitemap or feed was expected, a malformed sitemap with no readable entry, an
  article that is not HTML, or an HTML error page served with status 200 raise
  :class:`ValueError` naming the URL. A sitemap that is malformed after some
  complete entries keeps those entries (logged).
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree
from protego import Protego  # Scrapy's own robots.txt parser
from pydantic import Field, field_validator, model_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Mention, SourceKind, canonicalize_url
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    ACCEPT_HTML,
    FEED_ACCEPT,
    Feed,
    SkipReport,
    decode_html,
    describe_body,
    error_page_title,
    load_json_ld,
    parse_date,
    read_feed,
    response_header,
    same_site,
)

log = logging.getLogger(__name__)

__all__ = [
    "Article",
    "Sitemap",
    "SitemapEntry",
    "WebOptions",
    "WebSource",
    "extract_article",
    "listener_register_sources",
    "mentions_keyword",
    "read_sitemap",
    "robots_sitemaps",
]

ACCEPT_SITEMAP = "application/xml, text/xml;q=0.9, application/x-gzip;q=0.8, */*;q=0.5"
#: The protocol caps a sitemap at 50 MB uncompressed; a bigger one is refused (gzip bombs).
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
#: Sitemap indexes may (against the protocol) nest; this many levels are followed.
MAX_SITEMAP_DEPTH = 3
#: The product token robots.txt groups are matched against (the crawler's user agent
#: starts with it); the spider's robots.txt middleware remains the authority.
ROBOTS_AGENT = "listener"
#: Feeds discovered on a home page that are read per site.
MAX_DISCOVERED_FEEDS = 2

_FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/rdf+xml",
        "application/x-rss+xml",
    }
)
_NOT_PAGES = re.compile(
    r"\.(?:pdf|docx?|xlsx?|pptx?|zip|gz|rar|7z|jpe?g|png|gif|webp|svg|avif|mp[34]|m4a|mov|avi"
    r"|webm|ogg|wav|xml|json|rss|atom|txt|csv|exe|dmg|apk)$",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- small helpers


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _site_key(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _without_fragment(url: str) -> str:
    return url.partition("#")[0]


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of ``text`` for the keyword pre-filter."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def mentions_keyword(text: str, terms: Iterable[str]) -> str | None:
    """The first term found in ``text`` (case- and accent-insensitive substring), or None."""
    folded = " ".join(_fold(text).split())
    for term in terms:
        needle = " ".join(_fold(term.lstrip("#@")).split())
        if needle and needle in folded:
            return term
    return None


def _local_name(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2].lower()


# --------------------------------------------------------------------------- robots.txt


def robots_sitemaps(text: str, url: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt, resolved against ``url``, in order, once each."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        key, separator, value = line.partition(":")
        if not separator or key.strip().lower() != "sitemap":
            continue
        resolved = urljoin(url, value.strip())
        if urlsplit(resolved).scheme in ("http", "https") and resolved not in found:
            found.append(resolved)
    return found


# --------------------------------------------------------------------------- sitemaps


@dataclass
class SitemapEntry:
    """One ``<url>`` (a page) or ``<sitemap>`` (a child sitemap) of a sitemap document."""

    url: str
    lastmod: datetime | None = None
    lastmod_has_time: bool = False
    published: datetime | None = None
    title: str | None = None
    language: str | None = None

    @property
    def freshness(self) -> datetime | None:
        """What incremental crawling compares: ``lastmod``, else the publication date."""
        return self.lastmod or self.published


@dataclass
class Sitemap:
    """A parsed sitemap: a page list, an index of sitemaps, a feed or a plain-text list."""

    url: str
    kind: Literal["urlset", "index", "feed", "text"]
    entries: list[SitemapEntry] = field(default_factory=list)
    feed: Feed | None = None
    warning: str | None = None


def _newest_first(entries: Iterable[SitemapEntry]) -> list[SitemapEntry]:
    """Dated entries newest first (ties in document order), then the undated ones."""
    listed = list(entries)
    dated = [(entry.freshness, index) for index, entry in enumerate(listed) if entry.freshness]
    dated.sort(key=lambda pair: (pair[0], -pair[1]), reverse=True)
    undated = [entry for entry in listed if entry.freshness is None]
    return [listed[index] for _, index in dated] + undated


def _gunzip(body: bytes, url: str) -> bytes:
    """Unpack a gzip body, refusing one that unpacks beyond the protocol's 50 MB."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_SITEMAP_BYTES + 1)
    except zlib.error as error:
        raise ValueError(f"{url} is a damaged gzip file: {error}") from None
    if len(data) > MAX_SITEMAP_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"{url} unpacks to more than {MAX_SITEMAP_BYTES} bytes; refused")
    return data


def _child_text(element: Any, name: str) -> str | None:
    for child in element:
        if _local_name(child) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _child(element: Any, name: str) -> Any | None:
    for child in element:
        if _local_name(child) == name:
            return child
    return None


def _entry(element: Any, base: str) -> SitemapEntry | None:
    location = _child_text(element, "loc")
    if not location:
        return None
    resolved = urljoin(base, location)
    if urlsplit(resolved).scheme not in ("http", "https"):
        return None
    entry = SitemapEntry(url=resolved)
    lastmod = parse_date(_child_text(element, "lastmod"))
    if lastmod:
        entry.lastmod, entry.lastmod_has_time = lastmod
    news = _child(element, "news")
    if news is not None:
        published = parse_date(_child_text(news, "publication_date"))
        entry.published = published[0] if published else None
        title = _child_text(news, "title")
        entry.title = " ".join(title.split()) if title else None
        publication = _child(news, "publication")
        if publication is not None:
            language = _child_text(publication, "language")
            entry.language = language.lower().split("-")[0] if language else None
    return entry


def _parse_xml(body: bytes, url: str) -> tuple[Any, str | None]:
    """The XML root, and a warning when it had to be recovered from a malformed document."""
    strict = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False
    )
    try:
        return etree.fromstring(body, parser=strict), None
    except etree.XMLSyntaxError as error:
        problem = str(error)
    lenient = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, recover=True
    )
    try:
        root = etree.fromstring(body, parser=lenient)
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise ValueError(f"{url} is a malformed sitemap ({problem}); nothing could be read")
    return root, problem


def read_sitemap(body: bytes, url: str, content_type: str = "") -> Sitemap:
    """Parse a sitemap (``urlset``), a sitemap index, a feed used as a sitemap, or a text list.

    A gzip body (by magic bytes, whatever the headers say) is unpacked first.
    Raises :class:`ValueError` naming ``url`` for an empty body, an HTML page
    (typically an error page), a document that is no sitemap, or a malformed
    one with no complete entry; a malformed one with some keeps those, with a
    ``warning``.
    """
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, url)
    stripped = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not stripped:
        raise ValueError(f"{url} returned an empty body, not a sitemap")
    start = stripped[:512].lower()
    if start.startswith((b"<!doctype html", b"<html")) or re.search(
        rb"<(html|head|body)[\s>]", start
    ):
        raise ValueError(
            f"{url} returned an HTML page, not a sitemap; body starts {describe_body(body)!r}"
        )
    if not stripped.startswith(b"<"):
        lines = [line.strip() for line in stripped.decode("utf-8", "replace").splitlines()]
        urls = [line for line in lines if line]
        if urls and all(re.match(r"https?://\S+$", line) for line in urls):
            return Sitemap(url=url, kind="text", entries=[SitemapEntry(url=line) for line in urls])
        raise ValueError(f"{url} is not a sitemap; body starts {describe_body(body)!r}")
    root, warning = _parse_xml(stripped, url)
    name = _local_name(root)
    if name in ("rss", "feed", "rdf"):
        feed = read_feed(stripped, url, content_type)
        entries = [
            SitemapEntry(url=entry.link, published=entry.published, title=entry.title)
            for entry in feed.entries
            if entry.link
        ]
        return Sitemap(url=url, kind="feed", entries=entries, feed=feed, warning=warning)
    if name not in ("urlset", "sitemapindex"):
        raise ValueError(f"{url} is not a sitemap (its root element is <{name or '?'}>)")
    child_name = "url" if name == "urlset" else "sitemap"
    entries = [
        entry
        for element in root
        if _local_name(element) == child_name and (entry := _entry(element, url)) is not None
    ]
    if warning is not None:
        if not entries:
            raise ValueError(f"{url} is a malformed sitemap ({warning}); nothing could be read")
        log.warning(
            "%s is a malformed sitemap (%s); kept its %d readable entries",
            url,
            warning,
            len(entries),
        )
    return Sitemap(
        url=url, kind="urlset" if name == "urlset" else "index", entries=entries, warning=warning
    )


# --------------------------------------------------------------------------- articles


@dataclass
class Article:
    """What an article page says about itself."""

    url: str
    canonical_url: str
    title: str | None
    author: str | None
    published: datetime | None
    has_time: bool
    text: str
    description: str | None
    language: str | None
    sitename: str | None
    error_title: str | None = None


# Hyphen, bar, en and em dash, middle dot, bullet, slash, guillemets (spaced), or a colon.
_TITLE_SEPARATORS = re.compile(r"\s+(?:[-|\u2013\u2014\u00b7\u2022/\u00bb\u00ab]|::)\s+|\s*:\s+")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"\W+", " ", _fold(text)).split())


def _texts(tree: Any, xpath: str, limit: int = 3) -> list[str]:
    found = []
    for element in tree.xpath(xpath):
        value = element if isinstance(element, str) else element.text_content()
        text = " ".join(str(value).split())
        if text:
            found.append(text)
        if len(found) >= limit:
            break
    return found


# Classes of the badges forums and news sites put before a headline, inside its <h1>
# (XenForo's thread prefixes "Patch Notes", "Solved"; "Exclusive", "Live").
_BADGE_CLASS = re.compile(r"(?:^|\s)(?:label|prefix|badge|tag|kicker)(?:\s|$|--|-)", re.IGNORECASE)


def _post_author(tree: Any) -> str | None:
    """The author forum software and blog themes put on the post's ``<article data-author>``.

    (XenForo writes ``<article class="message" data-author="Tiberius">`` for each
    post, the thread's first one first; WordPress themes do the same for the
    article.) Used when trafilatura finds no author.
    """
    for value in tree.xpath("//article[@data-author]/@data-author")[:1]:
        name = " ".join(str(value).split())
        if name and len(name) <= 100 and not re.match(r"https?://", name):
            return name
    return None


def _heading_text(heading: Any) -> str:
    """An ``<h1>``'s text without the badges (see :data:`_BADGE_CLASS`) before its words."""
    parts: list[str] = []

    def walk(element: Any) -> None:
        parts.append(element.text or "")
        for child in element:
            if isinstance(child.tag, str):  # not a comment
                badge = _BADGE_CLASS.search(child.get("class") or "")
                if not (badge and not "".join(parts).strip()):
                    walk(child)
            parts.append(child.tail or "")

    walk(heading)
    return " ".join("".join(parts).split())


def _headings(tree: Any, limit: int = 3) -> list[str]:
    """The text of the page's first ``<h1>`` elements (badges before the words left out)."""
    found = [text for heading in tree.xpath("//h1") if (text := _heading_text(heading))]
    return found[:limit]


def _strip_site_name(title: str, names: Iterable[str]) -> str:
    """``title`` without a leading or trailing segment that is the site's name."""
    wanted = [_norm(name) for name in names if name and _norm(name)]
    if not wanted:
        return title
    parts = _TITLE_SEPARATORS.split(title)
    if len(parts) < 2:
        return title

    def is_site(segment: str, truncated: bool) -> bool:
        compact = _norm(segment).replace(" ", "")
        if len(compact) < 3:
            return False
        for name in wanted:
            flat = name.replace(" ", "")
            if compact == flat:
                return True
            # A trailing site name is often cut short ("… - California Glo") or longer
            # than the host's label ("… - BBC News" on bbc.com).
            if truncated and (flat.startswith(compact) or compact.startswith(flat)):
                return True
        return False

    separators = _TITLE_SEPARATORS.findall(title)
    if is_site(parts[-1], truncated=True):
        kept = parts[:-1]
        return "".join(p + s for p, s in zip(kept, [*separators[: len(kept) - 1], ""], strict=True))
    if is_site(parts[0], truncated=False):
        return title[len(parts[0]) + len(separators[0]) :]
    return title


def _best_title(headings: list[str], candidates: list[str], site_names: list[str]) -> str | None:
    """The headline: an ``<h1>`` that a document title contains, else the first title cleaned."""
    normalised = [_norm(candidate) for candidate in candidates]
    for heading in headings:
        key = _norm(heading)
        if len(key.split()) >= 3 and any(key in candidate for candidate in normalised):
            return heading
    if not candidates:
        return None
    return _strip_site_name(candidates[0], site_names) or candidates[0]


def _canonical(tree: Any, url: str) -> str:
    for xpath in ("//link[@rel='canonical']/@href", "//meta[@property='og:url']/@content"):
        for value in tree.xpath(xpath):
            resolved = urljoin(url, str(value).strip())
            parts = urlsplit(resolved)
            if parts.scheme not in ("http", "https") or not same_site(resolved, url):
                continue
            if parts.path.strip("/") == "" and urlsplit(url).path.strip("/") != "":
                continue  # a template pointing every page at the home page
            return resolved
    return url


def _declared_language(tree: Any) -> str | None:
    values = [
        tree.get("lang") or "",
        *tree.xpath("//meta[@http-equiv='content-language']/@content"),
    ]
    for value in values:
        primary = str(value).strip().split(",")[0].split("-")[0].split("_")[0].lower()
        if re.fullmatch(r"[a-z]{2,3}", primary):
            return primary
    return None


def _extracted_date(value: str | None) -> tuple[datetime, bool] | None:
    """trafilatura's date string (htmldate output format below) as a datetime."""
    parsed = parse_date(value)
    if parsed is None or value is None:
        return None
    # htmldate writes a day without a known time as naive midnight.
    if re.search(r"T00:00:00$", value.strip()):
        return parsed[0], False
    return parsed


#: schema.org types whose ``datePublished`` is the page's own publication date, best first.
_ARTICLE_TYPES = frozenset(
    {
        "Article",
        "NewsArticle",
        "AnalysisNewsArticle",
        "AskPublicNewsArticle",
        "BackgroundNewsArticle",
        "OpinionNewsArticle",
        "ReportageNewsArticle",
        "ReviewNewsArticle",
        "BlogPosting",
        "LiveBlogPosting",
        "SocialMediaPosting",
        "DiscussionForumPosting",
        "Report",
        "TechArticle",
        "ScholarlyArticle",
    }
)
_PAGE_TYPES = frozenset({"WebPage", "ItemPage", "AboutPage", "FAQPage", "QAPage"})
#: ``<meta>`` names and properties that mean "first published", best first.
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "article:published",
    "datepublished",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.created",
    "pubdate",
    "publishdate",
    "publish-date",
    "publication_date",
)
_ZONE = re.compile(r"(?:[zZ]|[+-]\d{2}:?\d{2})$")


def _ld_types(node: Mapping[str, Any]) -> set[str]:
    raw = node.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return {str(value).rsplit("/", 1)[-1] for value in values if isinstance(value, str)}


def _ld_nodes(document: object) -> Iterable[Mapping[str, Any]]:
    """The top-level nodes of a JSON-LD document (``@graph`` members included)."""
    members = document if isinstance(document, list) else [document]
    for member in members:
        if not isinstance(member, Mapping):
            continue
        graph = member.get("@graph")
        if isinstance(graph, list):
            yield from (node for node in graph if isinstance(node, Mapping))
        if "@type" in member:
            yield member


def _ld_urls(node: Mapping[str, Any], base: str) -> set[str]:
    """The URLs a JSON-LD node says it is about (its ``url``, ``@id``, ``mainEntityOfPage``)."""
    values: list[object] = [node.get("url"), node.get("@id")]
    main = node.get("mainEntityOfPage")
    values.append(main.get("@id") or main.get("url") if isinstance(main, Mapping) else main)
    urls = set()
    for value in values:
        if isinstance(value, str) and value.strip():
            urls.add(canonicalize_url(urljoin(base, value.strip())))
    return urls


def _declared_dates(tree: Any, url: str, canonical: str) -> list[str]:
    """Publication dates the page declares in its metadata, best first.

    JSON-LD ``datePublished`` of the page's article (when several articles
    disagree, the one whose URL is the page's), then ``<meta>`` publication
    tags, then microdata ``itemprop=datePublished``. Modification dates are
    never read: a page updated later is not published later.
    """
    pages = {canonicalize_url(url), canonicalize_url(canonical)}
    articles: list[tuple[bool, str]] = []
    webpages: list[str] = []
    for script in tree.xpath("//script[@type]"):
        if (script.get("type") or "").split(";")[0].strip().lower() != "application/ld+json":
            continue
        for node in _ld_nodes(load_json_ld(script.text_content() or "")):
            value = node.get("datePublished") or node.get("dateCreated")
            if not isinstance(value, str) or not value.strip():
                continue
            types = _ld_types(node)
            if types & _ARTICLE_TYPES:
                articles.append((bool(_ld_urls(node, url) & pages), value.strip()))
            elif types & _PAGE_TYPES:
                webpages.append(value.strip())
    found: list[str] = []
    if len({value for _, value in articles}) > 1:
        found += [value for is_page, value in articles if is_page]  # others: related articles
    else:
        found += [value for _, value in articles]
    found += webpages
    metas: dict[str, str] = {}
    for meta in tree.xpath("//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _PUBLISHED_META and key not in metas and meta.get("content").strip():
            metas[key] = meta.get("content").strip()
    found += [metas[key] for key in _PUBLISHED_META if key in metas]
    for element in tree.xpath("//*[@itemprop='datePublished'][@datetime or @content]"):
        found.append((element.get("datetime") or element.get("content") or "").strip())
    return [value for value in found if value]


_DAY_PREFIX = re.compile(r"\s*(\d{4}-\d{2}-\d{2})[T ]\d{1,2}:\d{2}")


def _timed(
    found: tuple[datetime, bool] | None, times: Sequence[str]
) -> tuple[datetime, bool] | None:
    """A day without its time, given the time of the page's first ``<time datetime>`` that day.

    Forums and blog themes without date metadata mark the post's time up as
    ``<time datetime="2020-09-18T08:56:40-0700">``; htmldate finds the day
    (as written, in the page's zone) and drops the time.
    """
    if found is None or found[1]:
        return found
    for value in times:
        day = _DAY_PREFIX.match(value)
        if day and day.group(1) == found[0].date().isoformat() and _ZONE.search(value.strip()):
            parsed = parse_date(value)
            if parsed is not None and parsed[1]:
                return parsed
    return found


def _published(
    declared: list[str],
    extracted: tuple[datetime, bool] | None,
    times: Sequence[str] = (),
) -> tuple[datetime, bool] | None:
    """The publication date: a declared one with a time and zone, else the most precise.

    trafilatura's date (htmldate) is often a day without its time, and may be
    the modification date; the page's own declarations say which date is the
    publication's. A declared day without a time yields to trafilatura's
    time on that same day, and a day alone to a ``<time datetime>`` of that
    day (see :func:`_timed`).
    """
    return _timed(_declared_or_extracted(declared, extracted), times)


def _declared_or_extracted(
    declared: list[str], extracted: tuple[datetime, bool] | None
) -> tuple[datetime, bool] | None:
    readable = [(parsed, value) for value in declared if (parsed := parse_date(value)) is not None]
    for (when, has_time), value in readable:
        if has_time and _ZONE.search(value):
            return when, True
    for (when, has_time), _ in readable:
        if has_time:
            return when, True
    if readable:
        day = readable[0][0]
        if extracted is not None and extracted[1] and extracted[0].date() == day[0].date():
            return extracted
        return day
    return extracted


_DATE_PARAMS = {
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
    "original_date": True,
    "extensive_search": True,
}


_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,31});")


def _decoded(value: str | None) -> str | None:
    """A title or author on one line, with entities a CMS escaped twice decoded.

    (``&amp;#039;Parasite&amp;#039;`` in the page reads ``&#039;Parasite&#039;``
    once parsed, and a brand named with an apostrophe or ampersand would not be
    found in it.)
    """
    if not value:
        return None
    if _ENTITY.search(value):
        value = html.unescape(value)
    return " ".join(value.split()) or None


def extract_article(body: bytes | str, url: str, content_type: str = "") -> Article:
    """Main text, title, author, date and language of an article page, with trafilatura.

    ``body`` is the HTML fetched from ``url`` (bytes, or text already decoded).
    trafilatura only parses it: nothing is downloaded. Raises
    :class:`ValueError` naming ``url`` when the body is empty or not HTML.
    """
    import trafilatura

    if isinstance(body, bytes):
        text = decode_html(body, url, content_type)
    else:
        if not body.strip():
            raise ValueError(f"{url} returned an empty body, not an HTML page")
        text = body
    try:
        tree = lxml.html.fromstring(
            text.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
        )
    except (etree.ParserError, ValueError) as error:
        raise ValueError(f"{url} could not be parsed as HTML: {error}") from None
    # Read what trafilatura does not give before it parses (and prunes) its own tree.
    headings = _headings(tree)
    og_title = _texts(tree, "//meta[@property='og:title']/@content", 1)
    page_title = _texts(tree, "//title", 1)
    og_site = _texts(tree, "//meta[@property='og:site_name']/@content", 1)
    canonical = _canonical(tree, url)
    declared = _declared_language(tree)
    declared_dates = _declared_dates(tree, url, canonical)
    # An error page declares no publication date; a short article ("Not found: the
    # missing shipment") does.
    error_title = None if declared_dates else error_page_title(tree)
    post_author = _post_author(tree)
    time_elements = [str(value) for value in tree.xpath("//time/@datetime")[:20]]
    document: Any = trafilatura.bare_extraction(
        text,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
        date_extraction_params={**_DATE_PARAMS, "url": url},
    )
    main_text = ""
    if document is None:  # no main text found; the metadata may still be there
        document = trafilatura.extract_metadata(text, default_url=url)
    else:
        main_text = getattr(document, "text", None) or ""
    extracted_title = getattr(document, "title", None)
    sitename = getattr(document, "sitename", None)
    host = _site_key(url)
    title = _best_title(
        headings,
        [*([extracted_title] if extracted_title else []), *og_title, *page_title],
        [sitename or "", *og_site, host, host.split(".")[0]],
    )
    date = _published(
        declared_dates, _extracted_date(getattr(document, "date", None)), time_elements
    )
    author = getattr(document, "author", None) or post_author
    description = getattr(document, "description", None)
    return Article(
        url=url,
        canonical_url=canonical,
        title=_decoded(title),
        author=_decoded(author),
        published=date[0] if date else None,
        has_time=date[1] if date else False,
        text=main_text.strip(),
        description=" ".join(description.split()) if description else None,
        language=declared or getattr(document, "language", None),
        sitename=sitename,
        error_title=error_title,
    )


def _iso(value: object) -> datetime | None:
    """A datetime this source stored in request meta (ISO text), else None."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _detect_language(text: str) -> str | None:
    try:
        import py3langid
    except ImportError:  # pragma: no cover - a listener dependency
        return None
    language, _ = py3langid.classify(text[:3000])
    return str(language)


# --------------------------------------------------------------------------- the source


class WebOptions(SourceOptions):
    """Options of the ``web`` source."""

    sites: list[AbsoluteURL] = Field(
        default_factory=list,
        description="home pages: sitemaps from robots.txt (or /sitemap.xml), feeds from <link>",
    )
    sitemaps: list[AbsoluteURL] = Field(
        default_factory=list, description="sitemap or sitemap-index URLs (XML, .gz, news)"
    )
    feeds: list[AbsoluteURL] = Field(
        default_factory=list, description="RSS, Atom or JSON feed URLs whose articles to read"
    )
    kind: SourceKind = Field(default=SourceKind.NEWS, description="news (default) or blog")
    limit: int = Field(default=50, ge=1, description="articles fetched per site and run")
    max_pages: int = Field(default=10, ge=1, description="sitemaps and feeds read per site and run")
    languages: list[str] = Field(
        default_factory=list,
        description="keep only articles in these languages (ISO 639-1); empty: all",
    )

    @field_validator("kind")
    @classmethod
    def _article_kinds(cls, kind: SourceKind) -> SourceKind:
        if kind not in (SourceKind.NEWS, SourceKind.BLOG):
            raise ValueError(f"kind must be 'news' or 'blog', not {kind.value!r}")
        return kind

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, languages: list[str]) -> list[str]:
        cleaned = [language.strip().lower() for language in languages]
        for language in cleaned:
            if not re.fullmatch(r"[a-z]{2,3}", language):
                raise ValueError(f"{language!r} is not an ISO 639 language code such as 'en'")
        return cleaned

    @model_validator(mode="after")
    def _something_to_read(self) -> WebOptions:
        if not (self.sites or self.sitemaps or self.feeds):
            raise ValueError("give at least one of sites, sitemaps or feeds")
        return self


@dataclass
class _Site:
    """What one run knows about one site."""

    key: str
    home: str
    cutoff: datetime | None
    documents: int = 0
    articles: int = 0
    seen_documents: set[str] = field(default_factory=set)
    seen_articles: set[str] = field(default_factory=set)
    warned_limit: bool = False
    robots: Protego | None = None  # once robots.txt has been read


class WebSource(Source[WebOptions]):
    """Discovers articles of listed sites through sitemaps and feeds and extracts them."""

    name = "web"
    kind = SourceKind.NEWS
    api_version = 1
    # One request a second for the whole entry, two at a time at most.
    download_delay = 1.0
    concurrency = 2
    example_options = {"sitemaps": ["{base_url}/sitemaps/news.xml"]}
    #: A small recorded site shipped in the package, for ``listener plugins check web``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "web"

    def __init__(self, options: WebOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Entries and articles left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        self._sites: dict[str, _Site] = {}
        self._terms = [term for brand in brands for term in brand.terms]

    # -- sites and budgets -----------------------------------------------------------------

    def _site(self, url: str) -> _Site:
        key = _site_key(url)
        site = self._sites.get(key)
        if site is None:
            site = _Site(key=key, home=url, cutoff=self.newer_than(f"site:{key}"))
            self._sites[key] = site
        return site

    def _document(
        self, url: str, site: _Site, role: str, depth: int = 0, **meta: Any
    ) -> Request | None:
        """A request for a sitemap or feed, unless seen or over the site's ``max_pages``."""
        if url in site.seen_documents:
            return None
        if site.documents >= self.options.max_pages:
            self.skipped["documents over max_pages"] += 1
            return None
        site.seen_documents.add(url)
        site.documents += 1
        accept = FEED_ACCEPT if role == "feed" else ACCEPT_SITEMAP
        return Request(
            url=url,
            headers={"Accept": accept},
            meta={"role": role, "site": site.key, "depth": depth, **meta},
            priority=1,
        )

    def start_requests(self) -> Iterable[Request]:
        """robots.txt and the home page of each site, then the listed sitemaps and feeds."""
        for home in self.options.sites:
            site = self._site(home)
            yield Request(
                url=f"{_origin(home)}/robots.txt",
                headers={"Accept": "text/plain"},
                meta={"role": "robots", "site": site.key},
                priority=2,
            )
            yield Request(
                url=home,
                headers={"Accept": ACCEPT_HTML},
                meta={"role": "home", "site": site.key},
                priority=2,
            )
        for url in self.options.sitemaps:
            request = self._document(url, self._site(url), "sitemap")
            if request is not None:
                yield request
        for url in self.options.feeds:
            request = self._document(url, self._site(url), "feed")
            if request is not None:
                yield request

    # -- parsing ---------------------------------------------------------------------------

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Follow what robots.txt, a home page, a sitemap or a feed lists; articles → Mentions."""
        role = str(response.meta.get("role") or "article")
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        site = self._sites.get(str(response.meta.get("site"))) or self._site(response.url)
        if role == "robots":
            return self._robots(response, site)
        if role == "home":
            return self._home(response, site)
        if role == "sitemap":
            return self._sitemap(response, site)
        if role == "feed":
            return self._feed(response, site)
        return self._article(response, site)

    def _robots(self, response: Response, site: _Site) -> list[Request]:
        text = response.body.decode("utf-8", errors="replace")
        is_html = "<html" in text[:1000].lower()  # a "robots.txt" that is a page: no rules
        sitemaps = [] if is_html else robots_sitemaps(text, response.url)
        if not is_html:
            site.robots = Protego.parse(text)
        if not sitemaps:
            sitemaps = [f"{_origin(response.url)}/sitemap.xml"]
        requests = [self._document(url, site, "sitemap") for url in sitemaps]
        return [request for request in requests if request is not None]

    def _home(self, response: Response, site: _Site) -> list[Request]:
        text = decode_html(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        tree = lxml.html.fromstring(
            text.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
        )
        title = error_page_title(tree)
        if title:
            raise ValueError(f"{response.url} is an error page ({title!r}), not the site's home")
        feeds: list[str] = []
        for link in tree.xpath("//link[@href and @type]"):
            rel = (link.get("rel") or "").lower().split()
            media_type = (link.get("type") or "").split(";")[0].strip().lower()
            if "alternate" not in rel or media_type not in _FEED_TYPES:
                continue
            href = urljoin(response.url, link.get("href").strip())
            label = f"{link.get('title') or ''} {href}".lower()
            if "comment" in label or href in feeds:
                continue  # WordPress' "Comments Feed" is not articles
            feeds.append(href)
        requests = [self._document(url, site, "feed") for url in feeds[:MAX_DISCOVERED_FEEDS]]
        return [request for request in requests if request is not None]

    def _sitemap(self, response: Response, site: _Site) -> list[Request]:
        sitemap = read_sitemap(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        depth = int(response.meta.get("depth") or 0)
        if sitemap.kind == "index":
            return self._children(sitemap, site, depth)
        return self._articles(sitemap.entries, site, response.url)

    def _children(self, sitemap: Sitemap, site: _Site, depth: int) -> list[Request]:
        if depth >= MAX_SITEMAP_DEPTH:
            self.skipped["sitemaps nested too deep"] += len(sitemap.entries)
            log.warning("%s: %s nests sitemaps too deep; not followed", self.label, sitemap.url)
            return []
        fresh = [entry for entry in sitemap.entries if not self._unchanged(entry, site)]
        unchanged = len(sitemap.entries) - len(fresh)
        if unchanged:
            self.skipped["unchanged sitemaps"] += unchanged
        ordered = _newest_first(fresh)
        requests = []
        for entry in ordered:
            request = self._document(entry.url, site, "sitemap", depth + 1)
            if request is not None:
                requests.append(request)
        return requests

    def _feed(self, response: Response, site: _Site) -> list[Request]:
        feed = read_feed(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        entries = [
            SitemapEntry(url=entry.link, published=entry.published, title=entry.title)
            for entry in feed.entries
            if entry.link
        ]
        hints = {
            entry.link: {"hint_author": entry.author_name, "hint_text": entry.text[:5000]}
            for entry in feed.entries
            if entry.link
        }
        return self._articles(entries, site, response.url, hints)

    def _unchanged(self, entry: SitemapEntry, site: _Site) -> bool:
        """Whether an entry is no newer than the newest one read in earlier runs."""
        seen = site.cutoff
        when = entry.freshness
        if seen is None or when is None:
            return False
        if when < seen:
            return True
        # A day-only lastmod equal to the checkpoint may hide a later change that day.
        return when == seen and (entry.lastmod_has_time or entry.lastmod is None)

    def _articles(
        self,
        entries: list[SitemapEntry],
        site: _Site,
        listed_in: str,
        hints: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Request]:
        """Requests for the new same-site article entries, newest first, within ``limit``."""
        skips = SkipReport("entries")
        candidates: list[SitemapEntry] = []
        for entry in entries:
            url = _without_fragment(entry.url)
            canonical = canonicalize_url(url)
            if not same_site(url, site.home):
                skips.skip("on another site")
            elif _NOT_PAGES.search(urlsplit(url).path):
                skips.skip("not a web page")
            elif site.robots is not None and not site.robots.can_fetch(url, ROBOTS_AGENT):
                skips.skip("disallowed by robots.txt")
            elif canonical in site.seen_articles:
                skips.skip("listed twice")
            elif self._unchanged(entry, site):
                skips.skip("unchanged since the last run")
            else:
                site.seen_articles.add(canonical)
                entry.url = url
                candidates.append(entry)
        ordered = _newest_first(candidates)
        requests: list[Request] = []
        for entry in ordered:
            if site.articles >= self.options.limit:
                skips.skip("over the limit")
                if not site.warned_limit:
                    site.warned_limit = True
                    log.warning(
                        "%s: reached limit=%d articles for %s; the rest waits for another run",
                        self.label,
                        self.options.limit,
                        site.key,
                    )
                continue
            site.articles += 1
            meta: dict[str, Any] = {
                "role": "article",
                "site": site.key,
                "lastmod": entry.freshness.isoformat() if entry.freshness else None,
                "hint_title": entry.title,
                "hint_published": entry.published.isoformat() if entry.published else None,
                "hint_language": entry.language,
                "listed_in": listed_in,
            }
            meta.update((hints or {}).get(entry.url, {}))
            requests.append(Request(url=entry.url, headers={"Accept": ACCEPT_HTML}, meta=meta))
        skips.log(log, self.label, listed_in, len(entries), into=self.skipped, level=logging.INFO)
        return requests

    def _article(self, response: Response, site: _Site) -> list[Mention]:
        meta = response.meta
        article = extract_article(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        if article.error_title and len(article.text) < 500:
            raise ValueError(
                f"{response.url} is an error page ({article.error_title!r}), not an article"
            )
        lastmod = _iso(meta.get("lastmod"))
        if lastmod is not None:
            # Read, whether or not it names a brand: the next run need not fetch it again.
            # A lastmod in the future (a bad clock) must not hide every later entry.
            self.checkpoint.advance(f"site:{site.key}", min(lastmod, datetime.now(UTC)))
        if not same_site(response.url, site.home):
            self.skipped["redirected to another site"] += 1
            return []
        mention, reason = self._mention(article, meta)
        if mention is None:
            self.skipped[reason] += 1
            log.debug("%s: %s skipped (%s)", self.label, response.url, reason)
            return []
        return [mention]

    def _mention(self, article: Article, meta: Mapping[str, Any]) -> tuple[Mention | None, str]:
        title = article.title or meta.get("hint_title")
        text = article.text or meta.get("hint_text") or article.description or title or ""
        if not mentions_keyword(f"{title or ''}\n{text}", self._terms):
            return None, "no brand keyword"
        language = article.language or meta.get("hint_language")
        if self.options.languages:
            language = language or _detect_language(f"{title or ''}\n{text}")
            if language not in self.options.languages:
                return None, "not in the wanted languages"
        published = (
            _iso(meta.get("hint_published")) or article.published or _iso(meta.get("lastmod"))
        )
        if published is None:
            return None, "without a date"
        author = article.author or meta.get("hint_author")
        return (
            Mention.create(
                source=self.name,
                source_kind=self.options.kind,
                url=article.url,
                canonical_url=article.canonical_url,
                title=title,
                text=text,
                published_at=published,
                author=Author(name=author),
                language=language,
            ),
            "",
        )


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``web`` source."""
    return [WebSource]
