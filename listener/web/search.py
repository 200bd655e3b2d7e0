"""Mention search for the API: filters, brand rules, sorting, cursors and highlighting.

User input never becomes raw Elasticsearch DSL. Full text goes into a fixed
``simple_query_string`` clause on ``title`` and ``text`` (its syntax cannot
reach other fields or query types); a brand rule is parsed by
:func:`listener.rules.parse_rule` and compiled by :meth:`Rule.to_query`; every
filter is a ``terms``/``range`` clause on a known field.

Deep pagination uses ``search_after`` with a total order (the chosen sort,
then ``id``). The cursor handed to clients is opaque: base64 of JSON holding
the sort values of the last mention, the sort name and a fingerprint of the
search, so a cursor cannot be replayed against a different search.

Highlighting is computed here, not by the engine: the query's words (and a
rule's positive words) are matched against the tokens of the mention's text
with the index's own analysis (:mod:`listener.rules.analysis`), and the text is
returned as segments ``{text, match}`` for the client to render as text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from listener.analytics.scope import sentiment_query, source_clause
from listener.config import ProjectConfig
from listener.mention import SourceKind
from listener.rules import Rule, RuleInput, parse_rule, tokenize
from listener.rules import syntax as rule_syntax
from listener.store.indexer import mentions_alias
from listener.web.batch import SORTABLE, Page, SearchBatcher
from listener.web.models import (
    AuthorOut,
    EngagementOut,
    MentionBrand,
    MentionOut,
    SearchOut,
    Segment,
    SentimentOut,
)

SORTS: dict[str, list[dict[str, Any]]] = {
    "newest": [{"published_at": {"order": "desc"}}, {"id": {"order": "asc"}}],
    "oldest": [{"published_at": {"order": "asc"}}, {"id": {"order": "asc"}}],
    "engagement": [
        {"engagement.total": {"order": "desc"}},
        {"published_at": {"order": "desc"}},
        {"id": {"order": "asc"}},
    ],
    "relevance": [
        {"_score": {"order": "desc"}},
        {"published_at": {"order": "desc"}},
        {"id": {"order": "asc"}},
    ],
}
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
MAX_QUERY_CHARS = 500
MAX_RULE_CHARS = 2000
MAX_PAGE_SIZE = 100
EXCERPT_CHARS = 600
TRACK_TOTAL = 10_000
_RULE_BATCH = 200
_RULE_BATCHES = 25  # at most this many batches are examined for one page of a pre-filtered rule
_CURSOR_VERSION = 1
SOURCE_EXCLUDES = ["entities", "phrases", "brands.positions", "cluster_id"]


class SearchInputError(ValueError):
    """A search parameter is invalid; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


# -- links ---------------------------------------------------------------------------


def safe_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None (never a ``javascript:`` link)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


# -- highlighting --------------------------------------------------------------------

_QUERY_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Highlighter:
    """Finds the words a search matched in a text, as the index analyses it."""

    words: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    tag_prefixes: tuple[str, ...] = ()

    @classmethod
    def build(cls, query: str | None, rule: Rule | None) -> Highlighter:
        """The words to highlight: the query's (not negated) and the rule's (outside NOT)."""
        words: set[str] = set()
        prefixes: set[str] = set()
        tags: set[str] = set()
        tag_prefixes: set[str] = set()
        for term, prefix in _query_terms(query or ""):
            tokens = tokenize(term)
            for i, token in enumerate(tokens):
                if prefix and i == len(tokens) - 1:
                    prefixes.add(token.text)
                else:
                    words.add(token.text)
        if rule is not None:
            for pattern in _rule_patterns(rule.root):
                if pattern.plain:
                    (prefixes if pattern.prefix else words).add(pattern.token)
                else:
                    (tag_prefixes if pattern.prefix else tags).add(pattern.token)
        return cls(
            frozenset(words), tuple(sorted(prefixes)), frozenset(tags), tuple(sorted(tag_prefixes))
        )

    def __bool__(self) -> bool:
        return bool(self.words or self.prefixes or self.tags or self.tag_prefixes)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans (end exclusive) of matched words in ``text``, merged and sorted."""
        if not self or not text:
            return []
        found: list[tuple[int, int]] = []
        if self.words or self.prefixes:
            for token in tokenize(text):
                if token.text in self.words or (
                    self.prefixes and token.text.startswith(self.prefixes)
                ):
                    found.append((token.start, token.end))
        if self.tags or self.tag_prefixes:
            for token in tokenize(text, tags=True):
                if token.text in self.tags or (
                    self.tag_prefixes and token.text.startswith(self.tag_prefixes)
                ):
                    found.append((token.start, token.end))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged


def _query_terms(query: str) -> Iterable[tuple[str, bool]]:
    """(term, is_prefix) for the words of a simple query that are not negated."""
    for match in _QUERY_PIECE.finditer(query):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if phrase is not None:
            if not negated:
                yield phrase, False
            continue
        for part in word.split("|"):
            part = part.lstrip("+(").rstrip(")")
            part = re.sub(r"~\d*$", "", part)
            if not part or part.startswith("-"):
                continue
            yield part.rstrip("*"), part.endswith("*")


def _rule_patterns(node: Any) -> Iterable[rule_syntax.Pattern]:
    """The token patterns of a rule outside NOT (field filters have none)."""
    if isinstance(node, rule_syntax.Words):
        yield from node.patterns
    elif isinstance(node, (rule_syntax.And, rule_syntax.Or, rule_syntax.SpanOr)):
        for item in node.items:
            yield from _rule_patterns(item)
    elif isinstance(node, rule_syntax.Near):
        yield from _rule_patterns(node.left)
        yield from _rule_patterns(node.right)


def segments(text: str, spans: Sequence[tuple[int, int]]) -> list[Segment]:
    """``text`` cut into unmatched and matched pieces (matched where ``spans`` say)."""
    out: list[Segment] = []
    position = 0
    for start, end in spans:
        if start > position:
            out.append(Segment(text=text[position:start]))
        out.append(Segment(text=text[start:end], match=True))
        position = end
    if position < len(text) or not out:
        out.append(Segment(text=text[position:]))
    return [s for s in out if s.text] or [Segment(text="")]


def excerpt(
    text: str, spans: Sequence[tuple[int, int]], limit: int = EXCERPT_CHARS
) -> tuple[list[Segment], bool]:
    """Segments of at most about ``limit`` characters around the first match; and if cut."""
    if len(text) <= limit:
        return segments(text, spans), False
    first = spans[0][0] if spans else 0
    start = max(0, first - limit // 4)
    if start:
        space = text.find(" ", start, first if first > start else start + 40)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + limit)
    if end < len(text):
        space = text.rfind(" ", start + limit // 2, end)
        end = space if space != -1 else end
    inside = [
        (max(s, start) - start, min(e, end) - start) for s, e in spans if e > start and s < end
    ]
    pieces = segments(text[start:end], inside)
    if start:
        pieces.insert(0, Segment(text="… "))
    if end < len(text):
        pieces.append(Segment(text=" …"))
    return pieces, True


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRequest:
    """A validated mention search."""

    query: str | None = None
    rule_text: str | None = None
    brands: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    since_text: str | None = None
    until_text: str | None = None
    unique: bool = False
    sort: str = "newest"
    size: int = 25
    cursor: str | None = None
    full: bool = False
    rule: Rule | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """A short hash of everything that decides which mentions match and in what order."""
        parts = [
            self.query or "",
            self.rule_text or "",
            *(",".join(v) for v in (self.brands, self.sources, self.kinds, self.languages)),
            ",".join(self.sentiments),
            self.since_text or "",
            self.until_text or "",
            str(self.unique),
            self.sort,
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def build_request(
    config: ProjectConfig,
    *,
    query: str | None = None,
    rule: str | None = None,
    brands: Sequence[str] = (),
    sources: Sequence[str] = (),
    kinds: Sequence[str] = (),
    languages: Sequence[str] = (),
    sentiments: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    unique: bool = False,
    sort: str = "newest",
    size: int = 25,
    cursor: str | None = None,
    full: bool = False,
) -> SearchRequest:
    """Validate raw parameters; raises :class:`SearchInputError` naming the bad one."""
    from listener.errors import ConfigError
    from listener.rules import RuleSyntaxError
    from listener.store.queries import check_search_text, parse_time

    query = (query or "").strip() or None
    if query is not None and len(query) > MAX_QUERY_CHARS:
        raise SearchInputError("q", f"the search text is longer than {MAX_QUERY_CHARS} characters")
    try:
        check_search_text(query)
    except ValueError as error:
        raise SearchInputError("q", str(error)) from None
    rule_text = (rule or "").strip() or None
    parsed: Rule | None = None
    if rule_text is not None:
        if len(rule_text) > MAX_RULE_CHARS:
            raise SearchInputError("rule", f"the rule is longer than {MAX_RULE_CHARS} characters")
        try:
            parsed = parse_rule(rule_text, label="rule")
        except RuleSyntaxError as error:
            raise SearchInputError("rule", str(error)) from None
    try:
        names = tuple(dict.fromkeys(config.brand(name).name for name in brands))
    except ConfigError as error:
        raise SearchInputError("brand", str(error)) from None
    known_kinds = [kind.value for kind in SourceKind]
    for kind in kinds:
        if kind not in known_kinds:
            raise SearchInputError(
                "kind", f"unknown source kind {kind!r}; use one of: {', '.join(known_kinds)}"
            )
    for label in sentiments:
        if label not in SENTIMENTS:
            raise SearchInputError(
                "sentiment", f"unknown sentiment {label!r}; use one of: {', '.join(SENTIMENTS)}"
            )
    if sort not in SORTS:
        raise SearchInputError("sort", f"unknown sort {sort!r}; use one of: {', '.join(SORTS)}")
    if sort == "relevance" and query is None:
        raise SearchInputError("sort", "sort=relevance needs search text (q)")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise SearchInputError("size", f"size must be between 1 and {MAX_PAGE_SIZE}")
    times: dict[str, datetime | None] = {}
    for name, value in (("since", since), ("until", until)):
        try:
            times[name] = parse_time(value, tz=tz) if value else None
        except ValueError as error:
            raise SearchInputError(name, str(error)) from None
    start, end = times["since"], times["until"]
    if start is not None and end is not None and start >= end:
        raise SearchInputError("until", "until must be after since")
    return SearchRequest(
        query=query,
        rule_text=rule_text,
        brands=names,
        sources=tuple(dict.fromkeys(sources)),
        kinds=tuple(dict.fromkeys(kinds)),
        languages=tuple(dict.fromkeys(lang.lower() for lang in languages)),
        sentiments=tuple(dict.fromkeys(sentiments)),
        since=start,
        until=end,
        since_text=since,
        until_text=until,
        unique=unique,
        sort=sort,
        size=size,
        cursor=cursor,
        full=full,
        rule=parsed,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_query(request: SearchRequest) -> dict[str, Any]:
    """The Elasticsearch query for a validated request (fixed clause shapes only)."""
    filters: list[dict[str, Any]] = []
    if request.brands:
        filters.append({"terms": {"brand_names": list(request.brands)}})
    if request.sources:
        filters.append(source_clause(request.sources))  # plugin or [[sources]] label
    for field_name, values in (
        ("source_kind", request.kinds),
        ("language", request.languages),
    ):
        if values:
            filters.append({"terms": {field_name: list(values)}})
    if request.sentiments:
        if request.brands:
            # Per-brand sentiment (the brand match's, else the document's), as the charts count.
            options = [
                sentiment_query(brand, label)
                for brand in request.brands
                for label in request.sentiments
            ]
            filters.append({"bool": {"should": options, "minimum_should_match": 1}})
        else:
            filters.append({"terms": {"sentiment.label": list(request.sentiments)}})
    bounds: dict[str, str] = {}
    if request.since is not None:
        bounds["gte"] = _iso(request.since)
    if request.until is not None:
        bounds["lt"] = _iso(request.until)
    if bounds:
        filters.append({"range": {"published_at": bounds}})
    if request.unique:
        filters.append({"bool": {"must_not": [{"term": {"duplicate": True}}]}})
    if request.rule is not None:
        filters.append(request.rule.to_query())
    must: list[dict[str, Any]] = []
    if request.query:
        must.append(
            {
                "simple_query_string": {
                    "query": request.query,
                    "fields": ["title", "text"],
                    "default_operator": "and",
                }
            }
        )
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


# -- cursors -------------------------------------------------------------------------


def encode_cursor(request: SearchRequest, after: Sequence[Any]) -> str:
    """An opaque cursor: the last mention's sort values, tied to this search."""
    payload = {
        "v": _CURSOR_VERSION,
        "s": request.sort,
        "f": request.fingerprint(),
        "a": list(after),
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: SearchRequest) -> list[Any] | None:
    """The ``search_after`` values in the request's cursor; SearchInputError when invalid."""
    if not request.cursor:
        return None
    text = request.cursor
    if len(text) > 2048:
        raise SearchInputError("cursor", "the cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise SearchInputError(
            "cursor", "the cursor is not valid; start again without it"
        ) from None
    if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION:
        raise SearchInputError("cursor", "the cursor is not valid; start again without it")
    if payload.get("s") != request.sort or payload.get("f") != request.fingerprint():
        raise SearchInputError(
            "cursor", "the cursor belongs to another search; start again without it"
        )
    after = payload.get("a")
    expected = len(SORTS[request.sort])
    if (
        not isinstance(after, list)
        or len(after) != expected
        or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in after)
    ):
        raise SearchInputError("cursor", "the cursor is not valid; start again without it")
    return after


# -- results -------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def to_mention(document: dict[str, Any], highlighter: Highlighter, *, full: bool) -> MentionOut:
    """The API's view of a stored mention document, with highlight segments."""
    text = str(document.get("text") or "")
    title = document.get("title")
    spans = highlighter.spans(text)
    if full:
        text_segments, truncated = segments(text, spans), False
    else:
        text_segments, truncated = excerpt(text, spans)
    author = document.get("author") or {}
    engagement = document.get("engagement") or {}
    sentiment = document.get("sentiment") or None
    brands = []
    for match in document.get("brands") or []:
        label = (match.get("sentiment") or {}).get("label")
        brands.append(
            MentionBrand(
                brand=str(match.get("brand")),
                sentiment=label or (sentiment or {}).get("label"),
                owned=bool(match.get("owned")),
            )
        )
    rating = (document.get("rating") or {}).get("value")
    return MentionOut(
        id=str(document.get("id")),
        url=safe_url(document.get("url")),
        title=title if isinstance(title, str) else None,
        title_segments=segments(title, highlighter.spans(title)) if isinstance(title, str) else [],
        text_segments=text_segments,
        text_truncated=truncated,
        source=str(document.get("source") or ""),
        source_kind=str(document.get("source_kind") or ""),
        domain=str(document.get("domain") or ""),
        language=document.get("language"),
        country=document.get("country"),
        published_at=str(document.get("published_at") or ""),
        author=AuthorOut(
            name=author.get("name"),
            handle=author.get("handle"),
            url=safe_url(author.get("url")),
            followers=_int_or_none(author.get("followers")),
        ),
        engagement=EngagementOut(
            likes=_int_or_none(engagement.get("likes")),
            comments=_int_or_none(engagement.get("comments")),
            shares=_int_or_none(engagement.get("shares")),
            views=_int_or_none(engagement.get("views")),
            total=_int_or_none(engagement.get("total")) or 0,
        ),
        brands=brands,
        sentiment=SentimentOut(label=sentiment["label"], score=float(sentiment["score"]))
        if sentiment and sentiment.get("label")
        else None,
        rating=float(rating) if isinstance(rating, (int, float)) else None,
        duplicate=bool(document.get("duplicate")),
    )


def search(
    client: Elasticsearch,
    config: ProjectConfig,
    request: SearchRequest,
    batcher: SearchBatcher | None = None,
) -> SearchOut:
    """One page of mentions for a validated request, newest (or as sorted) first.

    With ``batcher``, a first page sorted by date may share one engine request with
    other searches running at the same moment (:mod:`listener.web.batch`).
    """
    started = time.perf_counter()
    after = decode_cursor(request)
    query = build_query(request)
    index = mentions_alias(config.elasticsearch.index_prefix)
    sort = SORTS[request.sort]
    exact = request.rule is None or request.rule.exact_in_engine
    common: dict[str, Any] = {
        "index": index,
        "query": query,
        "sort": sort,
        "source_excludes": SOURCE_EXCLUDES,
        "ignore_unavailable": True,
        "allow_no_indices": True,
    }
    kept: list[dict[str, Any]] = []
    total, relation = 0, "eq"
    resume: list[Any] | None = None  # sort values to continue after; None at the end
    if exact and batcher is not None and after is None and request.sort in SORTABLE:
        combined = batcher.run(Page(query, sort, request.size + 1, TRACK_TOTAL))
        total, relation = combined.total, combined.relation
        kept = combined.hits[: request.size]
        if len(combined.hits) > request.size:
            resume = kept[-1]["sort"]
    elif exact:
        extra: dict[str, Any] = {"search_after": after} if after is not None else {}
        response = client.search(
            size=request.size + 1, track_total_hits=TRACK_TOTAL, **common, **extra
        )
        total, relation = _total(response.body)
        hits = list(response.body["hits"]["hits"])
        kept = hits[: request.size]
        if len(hits) > request.size:
            resume = kept[-1]["sort"]
    else:
        # The engine pre-filters, the matcher confirms: read batches until the page is full.
        assert request.rule is not None
        position = after
        for batch in range(_RULE_BATCHES):
            page: dict[str, Any] = {"search_after": position} if position is not None else {}
            response = client.search(
                size=_RULE_BATCH,
                track_total_hits=TRACK_TOTAL if batch == 0 else False,
                **common,
                **page,
            )
            if batch == 0:
                total, relation = _total(response.body)
            hits = response.body["hits"]["hits"]
            full = False
            for hit in hits:
                if request.rule.matches(RuleInput.from_document(hit.get("_source") or {})):
                    if len(kept) == request.size:
                        full = True
                        break
                    kept.append(hit)
                position = hit["sort"]
            if full:
                resume = kept[-1]["sort"]
                break
            if len(hits) < _RULE_BATCH:
                break
        else:
            resume = position  # examined the cap without filling the page: let the client go on
    cursor = encode_cursor(request, resume) if resume is not None else None
    return _page(request, kept, total, relation, exact, cursor, started)


def _page(
    request: SearchRequest,
    hits: list[dict[str, Any]],
    total: int,
    relation: str,
    exact: bool,
    cursor: str | None,
    started: float,
) -> SearchOut:
    highlighter = Highlighter.build(request.query, request.rule)
    return SearchOut(
        total=total,
        total_relation="gte" if relation == "gte" else "eq",
        exact=exact,
        sort=request.sort,
        size=request.size,
        next_cursor=cursor,
        took_ms=round((time.perf_counter() - started) * 1000),
        mentions=[
            to_mention(hit.get("_source") or {}, highlighter, full=request.full) for hit in hits
        ],
    )


def _total(body: dict[str, Any]) -> tuple[int, str]:
    total = body.get("hits", {}).get("total", 0)
    if isinstance(total, dict):
        return int(total.get("value", 0)), str(total.get("relation", "eq"))
    return int(total or 0), "eq"


def get_mention(
    client: Elasticsearch,
    config: ProjectConfig,
    mention_id: str,
    *,
    query: str | None = None,
    rule: Rule | None = None,
) -> MentionOut | None:
    """One stored mention with its full text (highlighted for ``query``/``rule``), or None."""
    response = client.search(
        index=mentions_alias(config.elasticsearch.index_prefix),
        query={"term": {"id": mention_id}},
        size=1,
        source_excludes=SOURCE_EXCLUDES,
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    hits = response.body["hits"]["hits"]
    if not hits:
        return None
    return to_mention(hits[0]["_source"], Highlighter.build(query, rule), full=True)
