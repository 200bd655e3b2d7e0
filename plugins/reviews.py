"""The ``reviews`` source: schema.org Reviews on product and business pages.

One request per configured page. The page's structured data is read in all
three syntaxes schema.org is published in — JSON-LD (``@graph``, ``@id``
references and nested ``Product → review`` lists included), microdata and
RDFa (through extruct) — and every ``Review`` (or subtype: ``UserReview``,
``CriticReview``, ``EmployerReview``, ``MediaReview``, ``Recommendation``)
becomes a Mention of kind ``review``. Google's older data-vocabulary.org
``Review`` markup (``reviewer``, ``dtreviewed``, ``rating``) is read as well,
and so are the hReview and hReview-aggregate microformats (and their
microformats2 successors ``h-review``/``h-review-aggregate``, through extruct's
microformat syntax), mapped onto the same schema.org Review and AggregateRating.

Decisions a user may want to know about:

- **Identity.** A review's canonical URL is its own ``url`` (or ``@id``/
  ``itemid``) when that is an http(s) URL unique among the page's reviews;
  otherwise the reviewed item's URL plus a fragment ``#review-<hash>`` where
  the hash covers the author, the day and the text — so the id survives
  re-crawls, new reviews pushing old ones down, and pagination. The fragment
  is kept in ``canonical_url`` (``Mention.create(keep_fragment=True)``).
- **Thread.** ``thread_id`` is the reviewed item: its own URL/``@id`` when it
  has one, else the page's canonical URL (``<link rel=canonical>``).
- **Rating.** ``reviewRating`` is normalised to 0..1 with
  :meth:`Rating.from_raw` (``bestRating`` defaults to 5 and ``worstRating``
  to 1, as schema.org says). A value above 5 with no ``bestRating`` is read on
  a 10 or 100 scale instead of being clipped to the top; a value below 1 with
  no ``worstRating`` on a scale starting at 0. The raw value is kept.
- **Dates.** ``datePublished`` (else ``dateCreated``, else ``dateModified``)
  is parsed as ISO 8601,
  RFC 822, a written date with a four-digit year or Unix seconds or
  milliseconds (``1481044620``, ``1481044620000``, as numbers or strings); a date without a time is
  midnight UTC, a time without a zone is UTC. A review without any usable date
  is skipped and counted (:attr:`ReviewsSource.skipped`): a stamped crawl time
  would invent a spike.
- **Missing fields degrade the Mention**: no headline → no title (see below),
  no ``reviewBody``/``description`` → the headline as text, or for a bare
  rating ``"Rated 3 out of 5."``; no author → an empty Author; an unreadable
  rating → no rating. A review with neither text, headline nor rating is
  skipped and counted.
- **Title.** Enrichment matches brands in the title and the text, and reviews
  rarely name the product they are written under. With ``item_in_title``
  (default), a title that does not already name the item gets it appended:
  ``"Great keyboard (review of Acme Rocket 14)"``, or ``"Review of Acme Rocket
  14"`` for a review without a headline.
- **AggregateRating only.** A page whose items carry an ``AggregateRating``
  but no individual review yields nothing by default: an average is nobody's
  mention, has no author and no date, and would count as one in share of
  voice. With ``aggregate_ratings = true`` it yields one Mention per item and
  crawl day (a snapshot: published at midnight UTC of the crawl day, canonical
  URL ``#aggregate-rating-YYYY-MM-DD``), so a rating trend can be charted.
- **Duplicates.** Shops often publish the same reviews twice (JSON-LD and
  microdata); reviews with the same author, day and text are merged, missing
  fields filled from the other copy.
- **Incremental.** Per configured URL, reviews older than the newest one seen
  in earlier runs are skipped (same-day ones are re-read: dates are often
  day-only). Reviews are usually listed newest first, so ``rel=next`` pages are
  followed (up to ``max_pages``, same site and same path only) only while a
  page still has new reviews.
- **Failures.** An HTTP error status, an empty body, a body that is not HTML
  (JSON, PDF, an image, XML) or an HTML error page (a "404"/"Access denied"/
  CAPTCHA page served with status 200, carrying no structured data) raises
  :class:`ValueError` naming the URL. A page that is fine but carries no
  reviews yields nothing and is logged and counted (:attr:`ReviewsSource.empty_pages`).
- ``ClaimReview`` (fact checks) is not a product or business review and is
  ignored.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import (
    AbsoluteURL,
    Author,
    Engagement,
    Mention,
    Rating,
    SourceKind,
    canonicalize_url,
)
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    ACCEPT_HTML,
    SkipReport,
    canonical_url,
    clean_text,
    decode_html,
    error_page_title,
    first_text,
    from_timestamp,
    http_url,
    link_rel,
    load_json_ld,
    one_line,
    page_language,
    parse_date,
    parse_html,
    response_header,
    same_site,
)

log = logging.getLogger(__name__)

__all__ = [
    "AggregateScore",
    "ExtractedReview",
    "PageReviews",
    "ReviewedItem",
    "ReviewsOptions",
    "ReviewsSource",
    "extract_reviews",
    "listener_register_sources",
    "rating_from",
]

#: What a browser asks for; some shops answer bare clients with a bot wall.

REVIEW_TYPES = frozenset(
    {"Review", "UserReview", "CriticReview", "EmployerReview", "MediaReview", "Recommendation"}
)
AGGREGATE_TYPES = frozenset({"AggregateRating", "EmployerAggregateRating"})
_SCHEMA_PREFIXES = (
    "http://schema.org/",
    "https://schema.org/",
    "http://www.schema.org/",
    "https://www.schema.org/",
    "schema:",
)


# --------------------------------------------------------------------------- small helpers


# --------------------------------------------------------------------------- dates and numbers


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def _number(value: object) -> float | None:
    """The first number in a string such as ``"4,5"``, ``"4.5 out of 5"`` or ``"80%"``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER.search(str(value).replace("\u2212", "-"))
    return float(match.group().replace(",", ".")) if match else None


# Unix seconds (9-10 digits: 1973-2286) or milliseconds (12-13 digits), as shops' review
# widgets and JavaScript-rendered JSON-LD write them: 1481044620, "1481044620000".
_EPOCH = re.compile(r"(\d{9,10}|\d{12,13})(?:\.\d+)?")


def _review_date(value: str | None) -> tuple[datetime, bool] | None:
    """A review's date as :func:`parse_date` reads it, or a Unix timestamp (with its time)."""
    epoch = _EPOCH.fullmatch(value.strip()) if value is not None else None
    if epoch is None:
        return parse_date(value)
    number = float(epoch.group())
    moment = from_timestamp(number / 1000 if len(epoch.group(1)) >= 12 else number)
    return (moment, True) if moment is not None else None


def _count(value: object) -> int | None:
    """A non-negative count from ``"1,234"``, ``"89 reviews"`` or a number."""
    if isinstance(value, bool) or value is None:
        return None
    match = re.search(r"\d[\d,.\u00a0 ]*", str(value))
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group())
    return int(digits) if digits else None


def rating_from(value: object, best: object = None, worst: object = None) -> Rating | None:
    """A schema.org rating normalised to 0..1; None when there is no usable value.

    ``best`` defaults to 5 and ``worst`` to 1. Without a ``best``, a value above 5
    is read on a 10 or 100 scale (not clipped to the top); without a ``worst``,
    a value below 1 (or a scale topping at 1) starts the scale at 0.
    """
    raw = _number(value)
    if raw is None:
        return None
    top = _number(best)
    if top is None:
        if raw <= 5:
            top = 5.0
        elif raw <= 10:
            top = 10.0
        elif raw <= 100:
            top = 100.0
        else:
            return None
    bottom = _number(worst)
    if bottom is None:
        bottom = 0.0 if raw < 1 or top <= 1 else 1.0
    try:
        return Rating.from_raw(raw, scale_max=top, scale_min=bottom)
    except ValueError:
        return None


# --------------------------------------------------------------------------- HTML pages


# --------------------------------------------------------------------------- structured data


@dataclass(eq=False)
class _Node:
    """One schema.org thing from any syntax: local type names and property values."""

    types: set[str]
    id: str | None
    props: dict[str, list[_Node | str]]
    syntax: str

    @property
    def is_reference(self) -> bool:
        return bool(self.id) and not self.types and not self.props

    def values(self, name: str) -> list[_Node | str]:
        return self.props.get(name, [])

    def nodes(self, name: str) -> list[_Node]:
        return [value for value in self.values(name) if isinstance(value, _Node)]

    def first(self, name: str) -> _Node | str | None:
        values = self.values(name)
        return values[0] if values else None

    def text(self, *names: str) -> str | None:
        """The first non-blank string value of the first property that has one."""
        for name in names:
            for value in self.values(name):
                if isinstance(value, str):
                    if value.strip():
                        return value.strip()
                elif value.is_reference and value.id:
                    return value.id
                else:
                    nested = value.text("name") if "name" in value.props else None
                    if nested:
                        return nested
        return None

    def is_a(self, types: frozenset[str]) -> bool:
        return bool(self.types & types)


def _local(key: str) -> str | None:
    """A schema.org term's local name (``http://schema.org/name`` → ``name``); None if foreign."""
    for prefix in _SCHEMA_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :] or None
    if ":" in key or "/" in key:
        return None
    return key


def _flatten(value: object) -> Iterator[object]:
    """The members of a JSON-LD value: lists and ``@list``/``@set`` objects unwrapped."""
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, Mapping) and ("@list" in value or "@set" in value):
        yield from _flatten(value.get("@list", value.get("@set")))
    else:
        yield value


class _Graph:
    """Every node of a page, with ``@id`` references resolved across syntaxes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.nodes: list[_Node] = []
        self.roots: list[_Node] = []

    def add_root(self, value: object, syntax: str) -> None:
        for member in _flatten(value):
            if isinstance(member, Mapping) and "@graph" in member:
                self.add_root(member["@graph"], syntax)
                if "@type" not in member:
                    continue
            node = self._convert(member, syntax, 0)
            if isinstance(node, _Node):
                self.roots.append(node)

    def _convert(self, value: object, syntax: str, depth: int) -> _Node | str | None:
        if depth > 40:
            return None
        if isinstance(value, Mapping):
            if syntax == "microdata" and "@type" not in value and "properties" in value:
                # An item without itemtype: extruct wraps its properties.
                value = value["properties"] if isinstance(value["properties"], Mapping) else {}
            if "@value" in value:
                inner = value["@value"]
                if inner is None or isinstance(inner, (Mapping, list)):
                    return None
                return str(inner).lower() if isinstance(inner, bool) else str(inner)
            types = {
                local
                for local in (_local(str(t)) for t in _flatten(value.get("@type")) if t)
                if local
            }
            raw_id = value.get("@id")
            if raw_id is None and syntax == "microdata":
                raw_id = value.get("id")  # extruct's name for itemid
            node_id: str | None = None
            if isinstance(raw_id, str) and raw_id.strip():
                raw_id = raw_id.strip()
                node_id = raw_id if raw_id.startswith("_:") else urljoin(self.base, raw_id)
            props: dict[str, list[_Node | str]] = {}
            for key, member in value.items():
                if not isinstance(key, str) or key.startswith("@"):
                    continue
                if syntax == "microdata" and key in ("id", "htmlNode"):
                    continue
                name = _local(key)
                if not name:
                    continue
                for element in _flatten(member):
                    converted = self._convert(element, syntax, depth + 1)
                    if converted is not None and converted != "":
                        props.setdefault(name, []).append(converted)
            node = _Node(types=types, id=node_id, props=props, syntax=syntax)
            self.nodes.append(node)
            return node
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float, str)):
            return str(value)
        return None

    def resolve(self) -> None:
        """Point ``{"@id": …}`` references at the node they name (merging split definitions)."""
        index: dict[str, _Node] = {}
        for node in self.nodes:
            if not node.id or node.is_reference:
                continue
            known = index.get(node.id)
            if known is None:
                index[node.id] = node
            elif known is not node:
                known.types |= node.types
                for name, values in node.props.items():
                    known.props.setdefault(name, []).extend(values)
        for node in self.nodes:
            for name, values in node.props.items():
                node.props[name] = [
                    index.get(value.id, value)
                    if isinstance(value, _Node) and value.is_reference and value.id
                    else value
                    for value in values
                ]
        self.roots = [index.get(root.id, root) if root.id else root for root in self.roots]


def _jsonld_documents(tree: Any, url: str) -> tuple[list[object], int]:
    """Every JSON-LD block of the page, and how many could not be read (each one on its own)."""
    documents: list[object] = []
    broken = 0
    for script in tree.xpath("//script[@type]"):
        media_type = (script.get("type") or "").split(";")[0].strip().lower()
        if media_type != "application/ld+json":
            continue
        loaded = load_json_ld(script.text_content() or "")
        if loaded is None:
            if (script.text_content() or "").strip():
                broken += 1
                log.warning("%s: a JSON-LD block is not valid JSON; it was skipped", url)
            continue
        documents.append(loaded)
    return documents, broken


# --------------------------------------------------------------------------- microformats

#: Class names of review microformats: hReview and hReview-aggregate (microformats 1,
#: read by mf2py's backward-compatible parser) and their microformats2 successors.
_MICROFORMAT_CLASSES = ("hreview", "hreview-aggregate", "h-review", "h-review-aggregate")
_HAS_MICROFORMAT = " or ".join(
    f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"
    for name in _MICROFORMAT_CLASSES
)


def _is_microformat(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("type"), list)


def _mf_text(value: object) -> str | None:
    """A microformats2 property value as text: an ``e-*`` value's HTML, else its plain value."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("html", "value"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    return None


def _mf_first(props: Mapping[str, Any], *names: str, nested: bool = True) -> str | None:
    """The first non-blank text of the first property that has one (``nested=False``:
    not the name of a microformat nested there, such as hReview's item under ``name``)."""
    for name in names:
        values = props.get(name)
        for value in values if isinstance(values, list) else []:
            if not nested and _is_microformat(value):
                continue
            text = _mf_text(value)
            if text and text.strip():
                return text.strip()
    return None


def _mf_entity(value: object, schema_type: str) -> dict[str, Any] | str | None:
    """An author (``h-card``) or reviewed item (``h-item``, ``h-product``) in schema.org terms.

    Items without a URL are given a blank-node id from their name, so the item of
    an hReview-aggregate and of each hReview on the page are one reviewed item.
    """
    if not _is_microformat(value):
        return _mf_text(value)
    assert isinstance(value, Mapping)
    props = value.get("properties") or {}
    name = _mf_first(props, "name") or _mf_text(value)
    url = _mf_first(props, "url")
    entity: dict[str, Any] = {"@type": schema_type, "name": name, "url": url}
    if schema_type != "Person":
        entity["brand"] = _mf_first(props, "brand")
        entity["@id"] = url or (f"_:mf-item-{' '.join(name.casefold().split())}" if name else None)
    return {key: item for key, item in entity.items() if item}


def _mf_review(props: Mapping[str, Any], reviewed: dict[str, Any] | str | None) -> dict[str, Any]:
    """An h-review (or hReview) as a schema.org Review of ``reviewed``."""
    rating = {
        "@type": "Rating",
        "ratingValue": _mf_first(props, "rating"),
        "bestRating": _mf_first(props, "best"),
        "worstRating": _mf_first(props, "worst"),
    }
    author = (props.get("author") or props.get("reviewer") or [None])[0]
    review = {
        "@type": "Review",
        "name": _mf_first(props, "name", "summary", nested=False),
        "author": _mf_entity(author, "Person"),
        "datePublished": _mf_first(props, "published", "reviewed", "dtreviewed"),
        "reviewRating": {key: value for key, value in rating.items() if value},
        "reviewBody": _mf_first(props, "content", "description"),
        "url": _mf_first(props, "url"),
        "itemReviewed": reviewed,
    }
    return {key: value for key, value in review.items() if value}


def _mf_aggregate(props: Mapping[str, Any]) -> dict[str, Any]:
    """An h-review-aggregate's score as a schema.org AggregateRating."""
    score = {
        "@type": "AggregateRating",
        "ratingValue": _mf_first(props, "average", "rating"),
        "bestRating": _mf_first(props, "best"),
        "worstRating": _mf_first(props, "worst"),
        "ratingCount": _mf_first(props, "votes"),
        "reviewCount": _mf_first(props, "count"),
    }
    return {key: value for key, value in score.items() if value}


def _microformat_roots(items: Iterable[object]) -> list[dict[str, Any]]:
    """Review microformats as schema.org JSON-LD: Reviews, and items with their ratings.

    Each reviewed item is defined once (later mentions of it are ``@id``
    references), so an hReview-aggregate and the hReviews of its product are one
    item. An h-review nested in an h-product (as a ``review`` property or a
    child) without an item of its own reviews that product; an
    h-review-aggregate without an item rates the product it sits in.
    """
    roots: list[dict[str, Any]] = []
    defined: dict[str, dict[str, Any]] = {}

    def reviewed_item(value: object) -> tuple[dict[str, Any] | str | None, dict[str, Any] | None]:
        """The item to put in the graph (its definition the first time, else a reference)
        and its definition, to which ratings and reviews are added."""
        entity = _mf_entity(value, "Product")
        if not isinstance(entity, dict):
            return entity, None
        key = entity.get("@id")
        if not key:
            return entity, entity
        if key not in defined:
            defined[key] = entity
            return entity, entity
        return {"@id": key}, defined[key]

    def walk(item: Mapping[str, Any], parent: dict[str, Any] | None) -> None:
        types = set(item.get("type") or [])
        props = item.get("properties") or {}
        if "h-review" in types:
            placed, _ = reviewed_item((props.get("item") or [None])[0])
            review = _mf_review(props, placed)
            if parent is not None and placed is None:
                parent.setdefault("review", []).append(review)
            else:
                roots.append(review)
            return
        if "h-review-aggregate" in types:
            score = _mf_aggregate(props)
            placed, definition = reviewed_item((props.get("item") or [None])[0])
            if definition is not None:
                definition["aggregateRating"] = score
                if placed is definition:
                    roots.append(definition)
            elif parent is not None:
                parent["aggregateRating"] = score
            else:
                name = placed or _mf_first(props, "name")
                roots.append({"@type": "Product", "name": name, "aggregateRating": score})
            return
        placed, own = reviewed_item(item) if types & {"h-product", "h-item"} else (None, None)
        nested = [
            value for values in props.values() if isinstance(values, list) for value in values
        ]
        for child in [*nested, *(item.get("children") or [])]:
            if _is_microformat(child):
                walk(child, own or parent)
        if own is not None and placed is own and ("review" in own or "aggregateRating" in own):
            roots.append(own)

    for item in items:
        if _is_microformat(item):
            assert isinstance(item, Mapping)
            walk(item, None)
    return roots


_PRODUCT_CLASSES = " or ".join(
    f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"
    for name in ("hproduct", "h-product", "h-item")
)
_VALUE_TITLE = (
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' value-title ') and @title]"
)


def _microformat_html(tree: Any) -> str | None:
    """The page's review microformats (with the product each sits in) as a small document.

    mf2py reads every microformat of what it is given, and a page-wide ``vcard``
    or ``hentry`` costs it most of a second, so only the review microformats go to
    it. ``<span class="value-title" title="2019-01-06">`` (as Google's rich-snippet
    examples write hReview dates and ratings) becomes a ``value`` element: mf2py
    reads the title of the wrong element for dates, which lost the review's date.
    None when the page has no review microformat.
    """
    import lxml.html

    outermost = tree.xpath(f"//*[{_HAS_MICROFORMAT}][not(ancestor::*[{_HAS_MICROFORMAT}])]")
    holders: dict[str, Any] = {}
    for element in outermost:
        holder = (element.xpath(f"ancestor::*[{_PRODUCT_CLASSES}][1]") or [element])[0]
        path = tree.getroottree().getpath(holder)
        if path not in holders and not any(path.startswith(f"{kept}/") for kept in holders):
            holders[path] = holder
    if not holders:
        return None
    parts = []
    for holder in holders.values():
        for element in holder.xpath(_VALUE_TITLE):
            classes = (element.get("class") or "").split()
            element.set("class", " ".join("value" if c == "value-title" else c for c in classes))
            for child in list(element):
                element.remove(child)
            element.text = element.get("title")
        parts.append(lxml.html.tostring(holder, encoding="unicode", with_tail=False))
    return "<html><body>" + "".join(parts) + "</body></html>"


def _structured_graph(tree: Any, text: str, url: str, base: str) -> tuple[_Graph, Counter[str]]:
    """The page's schema.org graph from JSON-LD, microdata, RDFa and review microformats.

    Relative ``@id``s resolve against ``base`` (the page's canonical URL), so an
    item keeps its identity on every page of a paginated review list. ``text`` is
    the page's HTML, which extruct's microformat parser reads instead of ``tree``.
    """
    graph = _Graph(base)
    counts: Counter[str] = Counter()
    documents, broken = _jsonld_documents(tree, url)
    if broken:
        counts["json-ld broken"] = broken
    for document in documents:
        before = len(graph.nodes)
        graph.add_root(document, "json-ld")
        counts["json-ld"] += len(graph.nodes) - before
    syntaxes = []
    if tree.xpath("boolean(//*[@itemscope])"):
        syntaxes.append("microdata")
    if tree.xpath("boolean(//*[@typeof])"):
        syntaxes.append("rdfa")
    if "rdfa" in syntaxes:
        # HTML5 RDFa reads <time datetime>; extruct's RDFa parser only reads @content.
        for element in tree.xpath("//time[@property and @datetime and not(@content)]"):
            element.set("content", element.get("datetime"))
    import extruct  # here, not at the top: see listener.sourcekit.pages.parse_html

    for syntax in syntaxes:
        try:
            extracted = extruct.extract(tree, base_url=base, syntaxes=[syntax], uniform=True)
        except Exception as error:  # extruct raises whatever its parsers raise
            log.warning("%s: could not read the page's %s: %s", url, syntax, error)
            continue
        before = len(graph.nodes)
        for document in extracted.get(syntax, []):
            graph.add_root(document, syntax)
        counts[syntax] += len(graph.nodes) - before
    microformats = _microformat_html(tree)
    if microformats is not None:
        try:
            found = extruct.extract(
                microformats, base_url=base, syntaxes=["microformat"], uniform=False
            )
        except Exception as error:  # mf2py raises whatever its parser raises
            log.warning("%s: could not read the page's microformats: %s", url, error)
        else:
            before = len(graph.nodes)
            for root in _microformat_roots(found.get("microformat", [])):
                graph.add_root(root, "microformat")
            counts["microformat"] += len(graph.nodes) - before
    graph.resolve()
    return graph, counts


# --------------------------------------------------------------------------- what a page says


@dataclass
class AggregateScore:
    """An item's AggregateRating."""

    value: float | None
    best: float | None
    worst: float | None
    rating_count: int | None
    review_count: int | None
    rating: Rating | None


@dataclass
class ReviewedItem:
    """The product, business or other thing reviews are about."""

    name: str | None
    brand: str | None
    url: str | None
    types: tuple[str, ...]
    aggregate: AggregateScore | None = None

    @property
    def display_name(self) -> str | None:
        """The name with the brand in front when the name does not already carry it."""
        if self.name and self.brand and self.brand.casefold() not in self.name.casefold():
            return f"{self.brand} {self.name}"
        return self.name or self.brand


@dataclass
class ExtractedReview:
    """One review as the page describes it."""

    item: ReviewedItem | None
    title: str | None
    text: str
    author_name: str | None
    author_url: str | None
    published: datetime | None
    has_time: bool
    rating: Rating | None
    url: str | None
    language: str | None
    likes: int | None
    comments: int | None
    syntax: str

    def key(self) -> tuple[str, str, str]:
        """What makes two copies the same review: author, day and text (title if no text)."""

        def norm(value: str | None, size: int) -> str:
            return re.sub(r"\W+", "", (value or "").casefold())[:size]

        day = self.published.date().isoformat() if self.published else ""
        return (norm(self.author_name, 60), day, norm(self.text, 300) or norm(self.title, 120))

    def merge(self, other: ExtractedReview) -> None:
        """Fill fields this copy lacks from another copy of the same review."""
        for name in ("title", "author_name", "author_url", "rating", "url", "language"):
            if getattr(self, name) is None and getattr(other, name) is not None:
                setattr(self, name, getattr(other, name))
        if not self.text and other.text:
            self.text = other.text
        if other.published and (self.published is None or (other.has_time and not self.has_time)):
            self.published, self.has_time = other.published, other.has_time
        if self.likes is None:
            self.likes = other.likes
        if self.comments is None:
            self.comments = other.comments
        if self.item is None:
            self.item = other.item


def _review_name(review: ExtractedReview, position: int) -> str:
    """How the log names a skipped review: its author and day, else its place on the page."""
    day = review.published.date().isoformat() if review.published else None
    if review.author_name:
        return f"by {review.author_name}" + (f", {day}" if day else "")
    return f"review {position}" + (f", {day}" if day else "")


@dataclass
class PageReviews:
    """Everything the reviews parser read from one page."""

    url: str
    canonical_url: str
    title: str | None
    language: str | None
    next_url: str | None
    items: list[ReviewedItem] = field(default_factory=list)
    reviews: list[ExtractedReview] = field(default_factory=list)
    syntaxes: Counter[str] = field(default_factory=Counter)
    error_title: str | None = None


def _aggregate(node: _Node) -> AggregateScore:
    value, best, worst = (
        node.text("ratingValue"),
        node.text("bestRating"),
        node.text("worstRating"),
    )
    return AggregateScore(
        value=_number(value),
        best=_number(best),
        worst=_number(worst),
        rating_count=_count(node.text("ratingCount")),
        review_count=_count(node.text("reviewCount")),
        rating=rating_from(value, best, worst),
    )


def _item(node: _Node, base: str) -> ReviewedItem:
    brand_value = (
        node.first("brand")
        or node.first("manufacturer")
        or node.first("publisher")
        or node.first("provider")
    )
    if isinstance(brand_value, _Node):
        brand = one_line(brand_value.text("name"))
    else:
        brand = one_line(brand_value) if brand_value and not brand_value.startswith("_:") else None
    aggregates = [n for n in node.nodes("aggregateRating") if n.props]
    url = http_url(node.text("url"), base) or http_url(node.id, base)
    return ReviewedItem(
        name=one_line(node.text("name")),
        brand=brand,
        url=url,
        types=tuple(sorted(node.types)),
        aggregate=_aggregate(aggregates[0]) if aggregates else None,
    )


def _author(node: _Node, base: str) -> tuple[str | None, str | None]:
    value = node.first("author") or node.first("creator") or node.first("reviewer")
    if isinstance(value, _Node):
        name = value.text("name", "alternateName")
        if not name:
            parts = [value.text("givenName"), value.text("familyName")]
            name = " ".join(part for part in parts if part) or None
        url = http_url(value.text("url"), base) or http_url(value.id, base)
        if name and http_url(name, base) == name:
            name = None
        return _clean_author(name), url
    if isinstance(value, str):
        if http_url(value, base) == value.strip():
            return None, value.strip()
        return _clean_author(value), None
    return None, None


def _clean_author(value: str | None) -> str | None:
    name = one_line(value)
    if name:
        name = re.sub(r"^(?:by|von|par|por|door)\s+", "", name, flags=re.IGNORECASE).strip()
    return name or None


_LIKE_ACTIONS = frozenset({"LikeAction", "AgreeAction", "VoteAction", "EndorseAction"})
_COMMENT_ACTIONS = frozenset({"CommentAction", "ReplyAction"})


def _interactions(node: _Node) -> tuple[int | None, int | None]:
    likes = _count(node.text("upvoteCount"))
    comments = _count(node.text("commentCount"))
    for statistic in node.nodes("interactionStatistic"):
        count = _count(statistic.text("userInteractionCount"))
        action = statistic.first("interactionType")
        if isinstance(action, _Node):
            kinds = set(action.types) | ({_local(action.id) or ""} if action.id else set())
        else:
            kinds = {_local(action or "") or ""}
        if count is None:
            continue
        if kinds & _LIKE_ACTIONS:
            likes = (likes or 0) + count
        elif kinds & _COMMENT_ACTIONS:
            comments = (comments or 0) + count
    return likes, comments


def _review(node: _Node, item: ReviewedItem | None, base: str) -> ExtractedReview:
    rating_node = node.first("reviewRating") or node.first("rating")
    if isinstance(rating_node, _Node):
        rating = rating_from(
            rating_node.text("ratingValue", "value"),  # value, best, worst: data-vocabulary
            rating_node.text("bestRating", "best"),
            rating_node.text("worstRating", "worst"),
        )
    else:
        rating = rating_from(rating_node)
    published = None
    # dtreviewed: Google's older data-vocabulary.org Review, still on many shop pages.
    for name in ("datePublished", "dateCreated", "dateModified", "dtreviewed"):
        published = _review_date(node.text(name))
        if published:
            break
    author_name, author_url = _author(node, base)
    likes, comments = _interactions(node)
    language = node.text("inLanguage")
    return ExtractedReview(
        item=item,
        title=one_line(node.text("name", "headline", "summary")),
        text=clean_text(node.text("reviewBody", "description", "text")),
        author_name=author_name,
        author_url=author_url,
        published=published[0] if published else None,
        has_time=published[1] if published else False,
        rating=rating,
        url=http_url(node.text("url"), base) or http_url(node.id, base),
        language=language.split("-")[0].lower() if language else None,
        likes=likes,
        comments=comments,
        syntax=node.syntax,
    )


def _is_review(node: _Node) -> bool:
    if node.types:
        return node.is_a(REVIEW_TYPES)
    # Untyped microdata/JSON-LD objects under "review" that are plainly reviews.
    return "reviewBody" in node.props or "reviewRating" in node.props


def _read_graph(graph: _Graph, base: str) -> tuple[list[ReviewedItem], list[ExtractedReview]]:
    """Items and their reviews: nested lists first, then ``itemReviewed`` links, then loners."""
    items: dict[int, ReviewedItem] = {}
    order: list[ReviewedItem] = []
    claimed: dict[int, tuple[_Node, ReviewedItem]] = {}

    def item_for(node: _Node) -> ReviewedItem:
        known = items.get(id(node))
        if known is None:
            known = items[id(node)] = _item(node, base)
            order.append(known)
        return known

    for node in graph.nodes:
        if node.is_reference or node.is_a(REVIEW_TYPES | AGGREGATE_TYPES):
            continue
        reviews = [r for r in node.nodes("review") + node.nodes("reviews") if _is_review(r)]
        has_aggregate = any(n.props for n in node.nodes("aggregateRating"))
        if not reviews and not has_aggregate:
            continue
        item = item_for(node)
        for review in reviews:
            claimed.setdefault(id(review), (review, item))

    loose: dict[int, _Node] = {}
    for node in graph.nodes:
        if node.is_a(REVIEW_TYPES) and not node.is_a(frozenset({"ClaimReview"})):
            if id(node) in claimed:
                continue
            reviewed = node.first("itemReviewed") or node.first("itemreviewed")
            if isinstance(reviewed, _Node) and not reviewed.is_reference:
                claimed[id(node)] = (node, item_for(reviewed))
            elif isinstance(reviewed, (str, _Node)):
                name = reviewed if isinstance(reviewed, str) else reviewed.id
                pseudo = ReviewedItem(
                    name=one_line(name), brand=None, url=http_url(name, base), types=()
                )
                order.append(pseudo)
                claimed[id(node)] = (node, pseudo)
            else:
                loose[id(node)] = node
        elif node.is_a(AGGREGATE_TYPES):
            reviewed = node.first("itemReviewed") or node.first("itemreviewed")
            if isinstance(reviewed, _Node) and not reviewed.is_reference:
                item = item_for(reviewed)
                if item.aggregate is None:
                    item.aggregate = _aggregate(node)

    sole = order[0] if len(order) == 1 else None
    extracted: list[ExtractedReview] = []
    seen: set[int] = set()
    # Document order of the review nodes, whichever way they were attached.
    for node in graph.nodes:
        key = id(node)
        if key in seen:
            continue
        if key in claimed:
            seen.add(key)
            review_node, item = claimed[key]
            extracted.append(_review(review_node, item, base))
        elif key in loose:
            seen.add(key)
            extracted.append(_review(node, sole, base))
    return order, extracted


def _merge_duplicates(reviews: list[ExtractedReview]) -> list[ExtractedReview]:
    """One review per (author, day, text), the first copy completed by the others."""
    kept: dict[tuple[str, str, str], ExtractedReview] = {}
    result: list[ExtractedReview] = []
    for review in reviews:
        key = review.key()
        if not any(key):
            result.append(review)  # nothing to compare: keep it as it is
            continue
        first = kept.get(key)
        if first is None:
            kept[key] = review
            result.append(review)
        else:
            first.merge(review)
    return result


def extract_reviews(body: bytes | str, url: str, content_type: str = "") -> PageReviews:
    """Read every schema.org review and reviewed item of one HTML page.

    ``body`` is the page as fetched from ``url`` (bytes, decoded with the
    Content-Type's charset or the page's own, or already decoded text).
    Raises :class:`ValueError` naming ``url`` when it is empty or not HTML.
    """
    if isinstance(body, bytes):
        text = decode_html(body, url, content_type)
    else:
        if not body.strip():
            raise ValueError(f"{url} returned an empty body, not an HTML page")
        text = body
    tree = parse_html(text, url)
    canonical = link_rel(tree, "canonical", url)
    if canonical is None or not same_site(canonical, url):
        canonical = url
    graph, counts = _structured_graph(tree, text, url, canonical)
    items, reviews = _read_graph(graph, canonical)
    return PageReviews(
        url=url,
        canonical_url=canonical,
        title=first_text(tree, "//title"),
        language=page_language(tree),
        next_url=link_rel(tree, "next", url),
        items=items,
        reviews=_merge_duplicates(reviews),
        syntaxes=counts,
        error_title=error_page_title(tree),
    )


# --------------------------------------------------------------------------- the source


def _anchored(url: str) -> str:
    """``url`` canonicalised, keeping its fragment (an anchor that tells reviews apart)."""
    return canonical_url(url, keep_fragment=True)


def _rating_sentence(rating: Rating | None) -> str:
    """The text of a review that is only a rating: ``"Rated 3 out of 5."``."""
    if rating is None:
        return ""
    return f"Rated {rating.raw:g} out of {rating.scale_max:g}."


class ReviewsOptions(SourceOptions):
    """Options of the ``reviews`` source."""

    urls: list[AbsoluteURL] = Field(
        min_length=1, description="product or business pages carrying schema.org reviews"
    )
    item_in_title: bool = Field(
        default=True,
        description="name the reviewed item in the title when the headline does not",
    )
    aggregate_ratings: bool = Field(
        default=False,
        description="one daily snapshot Mention per item that has an AggregateRating "
        "but no individual reviews on the page",
    )
    max_pages: int = Field(
        default=5, ge=1, description="pages read per URL, following rel=next review pages"
    )


class ReviewsSource(Source[ReviewsOptions]):
    """Reads schema.org Reviews (JSON-LD, microdata, RDFa) from product and business pages."""

    name = "reviews"
    kind = SourceKind.REVIEW
    api_version = 1
    # Shops are touchy about crawlers: one page at a time, at most one a second.
    download_delay = 1.0
    concurrency = 1
    example_options = {"urls": ["{base_url}/shop/rocket-14", "{base_url}/shop/anvil-50"]}
    #: A small recorded site shipped in the package, for ``listener plugins check reviews``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "reviews"

    def __init__(self, options: ReviewsOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Reviews left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        #: Pages read that carried no review at all.
        self.empty_pages = 0

    def start_requests(self) -> Iterable[Request]:
        """One request per configured page."""
        for url in self.options.urls:
            yield Request(url=url, headers={"Accept": ACCEPT_HTML}, meta={"origin": url, "page": 1})

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's reviews as Mentions, and the next review page while it has new ones."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}, not a review page")
        page = extract_reviews(
            response.body, response.url, response_header(response.headers, "content-type")
        )
        if page.error_title and not page.items and not page.reviews:
            raise ValueError(
                f"{response.url} is an error page ({page.error_title!r}), not a review page"
            )
        origin = str(response.meta.get("origin") or response.request.url)
        cutoff = self.newer_than(origin)
        results: list[Mention | Request] = []
        skips = SkipReport("reviews")
        anchors = self._anchors(page)
        fresh = 0
        for position, (review, (url, canonical)) in enumerate(
            zip(page.reviews, anchors, strict=True), 1
        ):
            if review.published is None:
                skips.skip("without a date", _review_name(review, position))
                continue
            if not (review.text or review.title or review.rating):
                skips.skip("without text, headline or rating", _review_name(review, position))
                continue
            mention = self._mention(review, page, url, canonical)
            if (
                cutoff is not None
                and review.published < cutoff
                and not self.is_new(origin, mention)
            ):
                skips.skip("older than the checkpoint", _review_name(review, position))
                continue
            results.append(mention)
            # A date in the future (a bad clock) must not hide every later review.
            self.checkpoint.advance(origin, min(review.published, datetime.now(UTC)), mention.id)
            fresh += 1
        if not page.reviews:
            self.empty_pages += 1
            if self.options.aggregate_ratings:
                results.extend(self._snapshots(page))
            rated = [item for item in page.items if item.aggregate is not None]
            log.warning(
                "%s: %s carries no schema.org review%s",
                self.label,
                response.url,
                f" (only an AggregateRating for {len(rated)} item(s))" if rated else "",
            )
        skips.log(
            log, self.label, response.url, len(page.reviews), into=self.skipped, level=logging.INFO
        )
        following = self._next_page(response, page, fresh)
        if following is not None:
            results.append(following)
        return results

    def _next_page(self, response: Response, page: PageReviews, fresh: int) -> Request | None:
        number = int(response.meta.get("page") or 1)
        target = page.next_url
        if target is None or number >= self.options.max_pages or fresh == 0:
            return None
        current = urlsplit(response.url)
        following = urlsplit(target)
        if not same_site(target, response.url):
            return None
        if not following.path.rstrip("/").startswith(current.path.rstrip("/")):
            return None  # a link to another product, not to more of this one's reviews
        if canonicalize_url(target) == canonicalize_url(response.url):
            return None
        return Request(
            url=target,
            headers={"Accept": ACCEPT_HTML},
            meta={**response.meta, "page": number + 1},
        )

    def _anchors(self, page: PageReviews) -> list[tuple[str, str]]:
        """Per review: the URL to show and the canonical URL its id derives from."""
        own = [review.url for review in page.reviews]
        counts = Counter(_anchored(url) for url in own if url)
        anchors: list[tuple[str, str]] = []
        used: Counter[str] = Counter()
        for review, url in zip(page.reviews, own, strict=True):
            if url and counts[_anchored(url)] == 1 and self._distinctive(url, review, page):
                anchors.append((url, _anchored(url)))
                continue
            thread = self._thread(review, page)
            digest = hashlib.sha1("\n".join(review.key()).encode()).hexdigest()[:12]
            anchor = f"review-{digest}"
            used[anchor] += 1
            if used[anchor] > 1:
                anchor = f"{anchor}-{used[anchor]}"
            base = thread.partition("#")[0] if "#" in thread else thread
            shown = f"{page.url.partition('#')[0]}#{anchor}"
            anchors.append((shown, f"{base}#{anchor}"))
        return anchors

    @staticmethod
    def _distinctive(url: str, review: ExtractedReview, page: PageReviews) -> bool:
        """Whether a review's own URL names the review, not just the page or item it is on."""
        taken = {canonicalize_url(page.url), canonicalize_url(page.canonical_url)}
        if review.item and review.item.url:
            taken |= {
                _anchored(review.item.url),
                canonicalize_url(review.item.url),
            }
        return _anchored(url) not in taken

    @staticmethod
    def _thread(review: ExtractedReview, page: PageReviews) -> str:
        item_url = review.item.url if review.item else None
        if item_url and same_site(item_url, page.url):
            return _anchored(item_url)
        return canonicalize_url(page.canonical_url)

    def _title(self, headline: str | None, item: ReviewedItem | None, text: str) -> str | None:
        name = item.display_name if item else None
        if not self.options.item_in_title or not name:
            return headline
        if headline is None:
            return f"Review of {name}"
        if name.casefold() in f"{headline}\n{text}".casefold():
            return headline
        return f"{headline} (review of {name})"

    def _mention(
        self, review: ExtractedReview, page: PageReviews, url: str, canonical: str
    ) -> Mention:
        assert review.published is not None
        author = Author(name=review.author_name, url=review.author_url)
        mention = Mention.create(
            source=self.name,
            source_kind=SourceKind.REVIEW,
            url=url,
            canonical_url=canonical,
            title=self._title(review.title, review.item, review.text),
            text=review.text or review.title or _rating_sentence(review.rating),
            published_at=review.published,
            author=author,
            engagement=Engagement(likes=review.likes, comments=review.comments),
            rating=review.rating,
            thread_id=self._thread(review, page),
            language=review.language or page.language,
            keep_fragment=True,
        )
        return mention

    def _snapshots(self, page: PageReviews) -> list[Mention]:
        """One Mention per item with an AggregateRating: today's snapshot of the average."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        mentions = []
        for item in page.items:
            score = item.aggregate
            if score is None or score.rating is None:
                continue
            name = item.display_name or page.title or page.canonical_url
            count = score.rating_count or score.review_count
            scale = f"{score.rating.raw:g} out of {score.rating.scale_max:g}"
            text = f"{name}: rated {scale}" + (f" from {count} ratings." if count else ".")
            base = item.url if item.url and same_site(item.url, page.url) else page.canonical_url
            canonical = f"{canonicalize_url(base)}#aggregate-rating-{today:%Y-%m-%d}"
            mention = Mention.create(
                source=self.name,
                source_kind=SourceKind.REVIEW,
                url=f"{page.url.partition('#')[0]}#aggregate-rating",
                canonical_url=canonical,
                title=f"Average rating of {name}",
                text=text,
                published_at=today,
                rating=score.rating,
                thread_id=_anchored(base),
                language=page.language,
                keep_fragment=True,
            )
            mentions.append(mention)
        return mentions


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``reviews`` source."""
    return [ReviewsSource]
