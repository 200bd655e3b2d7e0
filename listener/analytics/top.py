"""Top authors, domains, sources and co-mentioned entities.

Each list comes from one ``terms`` aggregation with ``sum``/``max``
sub-aggregations. The embedded engine ignores a ``terms`` ``order`` on a
sub-aggregation (and ``include``/``exclude``), so rankings by engagement or
reach are made here from up to ``candidates`` buckets (the most frequent
keys); ``truncated`` in the result says when keys beyond those existed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from listener.analytics.scope import Filters, Query, Scope, brand_query
from listener.config import ProjectConfig
from listener.store.queries import TimeLike

TOP_ORDERS: tuple[str, ...] = ("mentions", "engagement", "reach")
DEFAULT_CANDIDATES = 2000
AUTHORS_NOTE = (
    "engagement = sum of the author's mentions' interactions (likes + comments + shares); "
    "reach = the author's largest follower count"
)
ENTITIES_NOTE = "share = the brand's mentions naming the entity / the brand's mentions"


@dataclass(frozen=True)
class TopList:
    """Ranked rows and whether the ranking saw every key (``truncated`` False)."""

    rows: list[dict[str, Any]]
    truncated: bool = False
    total_mentions: int = 0


def _check(by: str, limit: int) -> None:
    if by not in TOP_ORDERS:
        raise ValueError(f"unknown order {by!r}; use one of: {', '.join(TOP_ORDERS)}")
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000 (got {limit})")


def _brand_filters(names: Sequence[str]) -> dict[str, Any]:
    return {"filters": {"filters": {f"b{i}": brand_query(name) for i, name in enumerate(names)}}}


def _brand_counts(bucket: dict[str, Any], names: Sequence[str]) -> dict[str, int]:
    found = (bucket.get("brands") or {}).get("buckets") or {}
    return {
        name: int(found.get(f"b{i}", {}).get("doc_count") or 0)
        for i, name in enumerate(names)
        if found.get(f"b{i}", {}).get("doc_count")
    }


def _value(bucket: dict[str, Any], name: str) -> float:
    return float((bucket.get(name) or {}).get("value") or 0)


def _first_key(bucket: dict[str, Any], name: str) -> Any:
    buckets = (bucket.get(name) or {}).get("buckets") or []
    return buckets[0]["key"] if buckets else None


def _keys(bucket: dict[str, Any], name: str) -> list[Any]:
    return [b["key"] for b in (bucket.get(name) or {}).get("buckets") or []]


def _terms(
    client: Elasticsearch,
    scope: Scope,
    query: Query,
    field: str,
    size: int,
    aggs: dict[str, Any],
    order_by: str | None = None,
) -> tuple[list[dict[str, Any]], bool, int]:
    """Buckets of a ``terms`` aggregation, whether keys were left out, and the hit count."""
    terms: dict[str, Any] = {"field": field, "size": size}
    if order_by:  # honoured by Elasticsearch, ignored by the embedded engine: sorted here too
        terms["order"] = [{order_by: "desc"}, {"_count": "desc"}]
    response = client.search(
        index=scope.alias,
        size=0,
        query=query,
        track_total_hits=True,
        aggs={"keys": {"terms": terms, "aggs": aggs}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    body = response.body
    aggregation = (body.get("aggregations") or {}).get("keys") or {}
    total = body.get("hits", {}).get("total", {})
    hits = int(total.get("value", 0) if isinstance(total, dict) else total or 0)
    return (
        list(aggregation.get("buckets") or []),
        bool(aggregation.get("sum_other_doc_count")),
        hits,
    )


def _rank(rows: list[dict[str, Any]], by: str, key: str, limit: int) -> list[dict[str, Any]]:
    metric = {"mentions": "mentions", "engagement": "engagement", "reach": "reach"}[by]

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row.get(metric)
        return (
            -(value if value is not None else -1),
            -row["mentions"],
            -row["engagement"],
            str(row[key]),
        )

    ranked = sorted(rows, key=order)[:limit]
    return [{"rank": rank, **row} for rank, row in enumerate(ranked, 1)]


def top_authors(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    by: str = "mentions",
    limit: int = 10,
    candidates: int = DEFAULT_CANDIDATES,
) -> TopList:
    """Authors of the brands' mentions, ranked by mentions, engagement or reach.

    An author is an ``author.name`` (the same name on two sources counts as
    one; ``sources`` lists them). ``engagement`` sums the author's mentions'
    interactions; ``reach`` is the author's largest follower count seen
    (followers are a property of the author, not summed per mention).
    """
    _check(by, limit)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    aggs = {
        "engagement": {"sum": {"field": "engagement.total"}},
        "reach": {"max": {"field": "author.followers"}},
        "handle": {"terms": {"field": "author.handle", "size": 1}},
        "url": {"terms": {"field": "author.url", "size": 1}},
        "sources": {"terms": {"field": "source", "size": 5}},
        "brands": _brand_filters(scope.names),
    }
    order = None if by == "mentions" else by
    buckets, truncated, total = _terms(
        client, scope, scope.query(), "author.name", candidates, aggs, order
    )
    rows = []
    for bucket in buckets:
        followers = (bucket.get("reach") or {}).get("value")
        rows.append(
            {
                "author": bucket["key"],
                "handle": _first_key(bucket, "handle"),
                "sources": _keys(bucket, "sources"),
                "mentions": int(bucket["doc_count"]),
                "engagement": round(_value(bucket, "engagement")),
                "reach": None if followers is None else round(followers),
                "brands": _brand_counts(bucket, scope.names),
                "url": _first_key(bucket, "url"),
            }
        )
    return TopList(_rank(rows, by, "author", limit), truncated, total)


def _top_field(
    client: Elasticsearch,
    scope: Scope,
    field: str,
    key: str,
    by: str,
    limit: int,
    candidates: int,
    extra: dict[str, Any] | None = None,
) -> TopList:
    aggs = {
        "engagement": {"sum": {"field": "engagement.total"}},
        "reach": {"sum": {"field": "author.followers"}},
        "reach_known": {"value_count": {"field": "author.followers"}},
        # Followers where known, else the project's [audience] estimate (never both).
        "audience": {"sum": {"field": "audience"}},
        "audience_known": {"value_count": {"field": "audience"}},
        "authors": {"cardinality": {"field": "author.name"}},
        "brands": _brand_filters(scope.names),
        **(extra or {}),
    }
    order = None if by == "mentions" else by
    buckets, truncated, total = _terms(client, scope, scope.query(), field, candidates, aggs, order)
    rows = []
    for bucket in buckets:
        mentions = int(bucket["doc_count"])
        row: dict[str, Any] = {
            key: bucket["key"],
            "mentions": mentions,
            "share": mentions / total if total else 0.0,
            "engagement": round(_value(bucket, "engagement")),
            "reach": round(_value(bucket, "reach") + _value(bucket, "audience")),
            "reach_known": int(_value(bucket, "reach_known") + _value(bucket, "audience_known")),
            "authors": int(_value(bucket, "authors")),
            "brands": _brand_counts(bucket, scope.names),
        }
        if "kind" in (extra or {}):
            row["kind"] = _first_key(bucket, "kind")
        rows.append(row)
    return TopList(_rank(rows, by, key, limit), truncated, total)


def top_domains(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    by: str = "mentions",
    limit: int = 10,
    candidates: int = DEFAULT_CANDIDATES,
) -> TopList:
    """Domains carrying the brands' mentions; ``share`` is of all mentions in scope.

    ``reach`` sums the followers of the mentions' authors where known.
    """
    _check(by, limit)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    return _top_field(client, scope, "domain", "domain", by, limit, candidates)


def top_sources(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    by: str = "mentions",
    limit: int = 10,
    field: str = "source",
) -> TopList:
    """Source plugins (``field="source"``) or source kinds (``"source_kind"``) by volume."""
    _check(by, limit)
    if field not in ("source", "source_kind"):
        raise ValueError(f"unknown source field {field!r}; use source or source_kind")
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    extra = {"kind": {"terms": {"field": "source_kind", "size": 1}}} if field == "source" else None
    key = "source" if field == "source" else "kind"
    return _top_field(client, scope, field, key, by, limit, 1000, extra)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lstrip("#@"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def own_terms(scope: Scope, name: str) -> set[str]:
    """A brand's name and keywords, folded: left out of its entities and trending terms."""
    brand = scope.config.brand(name)
    return {_folded(term) for term in (brand.name, *brand.keywords)}


def top_entities(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    limit: int = 10,
    candidates: int = 500,
) -> TopList:
    """Named entities most often found in each brand's mentions (the brand itself left out).

    ``mentions`` counts the brand's mentions naming the entity; ``share`` is
    that divided by the brand's mentions. Rows are grouped by brand in
    project-file order.
    """
    _check("mentions", limit)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    rows: list[dict[str, Any]] = []
    truncated_any = False
    grand_total = 0
    for name in scope.names:
        buckets, truncated, total = _terms(
            client,
            scope,
            scope.query(names=[name]),
            "entities.text",
            candidates + 20,
            {},
        )
        truncated_any = truncated_any or truncated
        grand_total += total
        skip = own_terms(scope, name)
        kept = [
            {
                "brand": name,
                "entity": bucket["key"],
                "mentions": int(bucket["doc_count"]),
                "share": int(bucket["doc_count"]) / total if total else 0.0,
                "engagement": 0,
            }
            for bucket in buckets
            if _folded(str(bucket["key"])) not in skip
        ]
        for row in _rank(kept, "mentions", "entity", limit):
            del row["engagement"]
            rows.append(row)
    return TopList(rows, truncated_any, grand_total)
