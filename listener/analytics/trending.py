"""Trending terms: key phrases whose frequency for a brand rose most against the period before.

A portable method (the engine has no ``significant_text``): a ``terms``
aggregation on the keyword field ``phrases`` over the brand's mentions in the
current period gives candidate counts ``c``; a ``filters`` aggregation gives
the same terms' exact counts ``p`` in the previous period of equal length.
With ``N`` and ``Np`` the brand's mentions in each period::

    expected = p * N / Np            (0 when Np = 0)
    score    = (c - expected) / sqrt(expected + 1)

The expected count scales the previous count to the current volume, so a
term that merely grew with the brand scores 0; the score is the rise in
units of the Poisson noise of the expectation (+1 smooths terms never seen
before). Terms need ``c >= min_count`` and ``c > expected``; they rank by
score, then ``c``, then alphabetically. The brand's own name and keywords are
left out. ``phrases`` may be empty until enrichment fills it: with
``field="auto"`` the named entities (``entities.text``) are used instead, and
the result says which field ran.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from listener.analytics.scope import Filters, Query, Scope
from listener.analytics.top import _folded, own_terms
from listener.config import ProjectConfig
from listener.store.queries import TimeLike

TERM_FIELDS = {"phrases": "phrases", "entities": "entities.text"}
TRENDING_FORMULA = (
    "expected = previous * mentions now / mentions before (0 when none before); "
    "score = (count - expected) / sqrt(expected + 1)"
)
_CHUNK = 200


@dataclass(frozen=True)
class TrendingTerm:
    """One rising term for one brand."""

    brand: str
    term: str
    count: int
    previous: int
    expected: float
    score: float

    @property
    def ratio(self) -> float:
        """Smoothed growth ``(count + 1) / (expected + 1)``."""
        return (self.count + 1) / (self.expected + 1)

    def record(self) -> dict[str, Any]:
        """A plain dict for tables and exports."""
        return {
            "brand": self.brand,
            "term": self.term,
            "count": self.count,
            "previous": self.previous,
            "expected": round(self.expected, 3),
            "ratio": round(self.ratio, 3),
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class Trending:
    """Rising terms per brand, the field they came from, and the two periods compared."""

    terms: list[TrendingTerm]
    field: str
    current: tuple[datetime, datetime]
    previous: tuple[datetime, datetime]
    mentions: dict[str, tuple[int, int]]  # brand -> (now, before)

    def records(self) -> list[dict[str, Any]]:
        """Rows with a per-brand rank."""
        ranks: dict[str, int] = {}
        rows = []
        for term in self.terms:
            ranks[term.brand] = ranks.get(term.brand, 0) + 1
            rows.append({"rank": ranks[term.brand], **term.record()})
        return rows


def score_terms(
    brand: str,
    current: dict[str, int],
    previous: dict[str, int],
    mentions_now: int,
    mentions_before: int,
    *,
    min_count: int,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[TrendingTerm]:
    """Apply the trending formula to term counts; best first."""
    found = []
    for term, count in current.items():
        if count < min_count or _folded(term) in skip:
            continue
        before = previous.get(term, 0)
        expected = before * mentions_now / mentions_before if mentions_before else 0.0
        if count <= expected:
            continue
        score = (count - expected) / math.sqrt(expected + 1)
        found.append(TrendingTerm(brand, term, count, before, expected, score))
    found.sort(key=lambda t: (-t.score, -t.count, t.term))
    return found


def _count(client: Elasticsearch, scope: Scope, query: Query) -> int:
    response = client.count(
        index=scope.alias, query=query, ignore_unavailable=True, allow_no_indices=True
    )
    return int(response["count"])


def term_counts(
    client: Elasticsearch, scope: Scope, query: Query, field: str, size: int
) -> dict[str, int]:
    """The ``size`` most frequent values of ``field`` among mentions matching ``query``."""
    response = client.search(
        index=scope.alias,
        size=0,
        query=query,
        aggs={"terms": {"terms": {"field": field, "size": size}}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    buckets = ((response.body.get("aggregations") or {}).get("terms") or {}).get("buckets") or []
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}


def exact_counts(
    client: Elasticsearch, scope: Scope, query: Query, field: str, terms: Sequence[str]
) -> dict[str, int]:
    """Exact counts of the given ``terms`` among mentions matching ``query``."""
    counts: dict[str, int] = {}
    for offset in range(0, len(terms), _CHUNK):
        chunk = list(terms[offset : offset + _CHUNK])
        filters = {f"t{i}": {"term": {field: term}} for i, term in enumerate(chunk)}
        response = client.search(
            index=scope.alias,
            size=0,
            query=query,
            aggs={"terms": {"filters": {"filters": filters}}},
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        buckets = ((response.body.get("aggregations") or {}).get("terms") or {}).get(
            "buckets"
        ) or {}
        for i, term in enumerate(chunk):
            counts[term] = int(buckets.get(f"t{i}", {}).get("doc_count") or 0)
    return counts


def resolve_field(
    client: Elasticsearch, scope: Scope, field: str, start: datetime, end: datetime
) -> str:
    """The index field for ``phrases``/``entities``; ``auto`` picks phrases when any are stored."""
    if field in TERM_FIELDS:
        return TERM_FIELDS[field]
    if field != "auto":
        raise ValueError(f"unknown term field {field!r}; use auto, phrases or entities")
    has_phrases = _count(
        client, scope, scope.query({"exists": {"field": "phrases"}}, start=start, end=end)
    )
    return "phrases" if has_phrases else "entities.text"


def rising_terms(
    client: Elasticsearch,
    scope: Scope,
    brand: str,
    *,
    current: tuple[datetime, datetime],
    previous: tuple[datetime, datetime],
    field: str,
    min_count: int,
    limit: int,
    candidates: int = 500,
    extra: Sequence[Query] = (),
) -> tuple[list[TrendingTerm], int, int]:
    """The brand's rising terms between two windows, and its mentions in each."""
    now_query = scope.query(*extra, start=current[0], end=current[1], names=[brand])
    before_query = scope.query(*extra, start=previous[0], end=previous[1], names=[brand])
    mentions_now = _count(client, scope, now_query)
    mentions_before = _count(client, scope, before_query)
    if not mentions_now:
        return [], 0, mentions_before
    counts = term_counts(client, scope, now_query, field, candidates)
    skip = own_terms(scope, brand)
    eligible = [t for t, c in counts.items() if c >= min_count and _folded(t) not in skip]
    before = exact_counts(client, scope, before_query, field, eligible) if mentions_before else {}
    terms = score_terms(
        brand,
        {t: counts[t] for t in eligible},
        before,
        mentions_now,
        mentions_before,
        min_count=min_count,
        skip=skip,
    )
    return terms[:limit], mentions_now, mentions_before


def trending_terms(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    field: str = "auto",
    limit: int = 10,
    min_count: int | None = None,
    candidates: int = 500,
) -> Trending:
    """Each brand's terms that rose most in ``[since, until)`` against the window before it.

    The previous window has the same length and ends at ``since``. ``until``
    defaults to now. ``min_count`` defaults to the project's
    ``[analytics] trending_min_count``.
    """
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000 (got {limit})")
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    assert scope.start is not None
    end = scope.end or datetime.now(UTC)
    if end <= scope.start:
        raise ValueError("since must be before until (or before now)")
    length = end - scope.start
    current = (scope.start, end)
    previous = (scope.start - length, scope.start)
    chosen = resolve_field(client, scope, field, previous[0], end)
    threshold = min_count if min_count is not None else config.analytics.trending_min_count
    terms: list[TrendingTerm] = []
    mentions: dict[str, tuple[int, int]] = {}
    for name in scope.names:
        found, now, before = rising_terms(
            client,
            scope,
            name,
            current=current,
            previous=previous,
            field=chosen,
            min_count=threshold,
            limit=limit,
            candidates=candidates,
        )
        terms.extend(found)
        mentions[name] = (now, before)
    return Trending(terms, chosen, current, previous, mentions)
