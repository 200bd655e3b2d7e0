"""Times, time ranges and the plain questions asked of the index: search and full export.

The time helpers here (:func:`parse_time`, :func:`parse_zone`, :func:`to_utc`,
:func:`time_filter`, :func:`check_range`, :func:`data_range`) are the ones every
command and the analytics use. Share of voice and every per-period figure live
in :mod:`listener.analytics` (one implementation, with one period bucketing in
:mod:`listener.analytics.periods`).

Everything here uses plain queries (no pipeline aggregations, no scripts; see
ENGINE.md), so it runs the same on Elasticsearch 8.x/9.x and on the embedded
engine.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from listener.config import ProjectConfig
from listener.store.indexer import mentions_alias

TimeLike = datetime | date | str

SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")

# The import paths of the share of voice before it moved to listener.analytics (one
# implementation; resolved on first use because listener.analytics imports this module).
_MOVED = {
    "share_of_voice": ("listener.analytics.measures", "share_of_voice"),
    "SovRow": ("listener.analytics.measures", "ShareOfVoiceRow"),
}


def __getattr__(name: str) -> Any:
    moved = _MOVED.get(name)
    if moved is None:
        raise AttributeError(f"module 'listener.store.queries' has no attribute {name!r}")
    return getattr(importlib.import_module(moved[0]), moved[1])


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MS = timedelta(milliseconds=1)
_SNIPPET_CHARS = 160


# -- time ---------------------------------------------------------------------


def parse_zone(name: str) -> tzinfo:
    """A time zone from an IANA name (``Europe/Paris``), ``UTC`` or an offset (``+02:00``)."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        offset = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return timezone(sign * offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris, UTC, "
            "or an offset such as +02:00"
        ) from None


def parse_time(value: str, now: datetime | None = None, tz: str = "UTC") -> datetime:
    """A timezone-aware UTC datetime from ISO text or a relative time before ``now``.

    Accepts ``2024-05-01`` (midnight), ``2024-05-01T12:30:00Z`` (or with an
    offset), ``now``, and ``30m``, ``12h``, ``7d``, ``2w`` (minutes, hours,
    days, weeks ago). Dates and datetimes without an offset are read in ``tz``.
    """
    zone = parse_zone(tz)
    text = value.strip()
    reference = now or datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    lowered = text.lower()
    if lowered == "now":
        return reference.astimezone(UTC)
    relative = _RELATIVE.match(lowered)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        try:
            return (reference - timedelta(**{_UNITS[unit]: amount})).astimezone(UTC)
        except OverflowError:
            raise ValueError(
                f"the time {value!r} is before the year 1; use a smaller number or an ISO date "
                "such as 2024-05-01"
            ) from None
    parsed: datetime | None = None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        with contextlib.suppress(ValueError):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    elif re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text)
    if parsed is None:
        raise ValueError(
            f"cannot read the time {value!r}: use an ISO date (2024-05-01), an ISO datetime "
            "(2024-05-01T12:00:00Z) or a relative time such as 30m, 12h, 7d or 2w"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"the time {value!r} in {tz} falls outside the years 1 to 9999 in UTC; "
            "use a date inside them"
        ) from None


def to_utc(value: TimeLike | None, tz: str) -> datetime | None:
    """A ``since``/``until`` argument as an aware UTC datetime (naive values read in ``tz``).

    Text goes through :func:`parse_time`; a date means its midnight in ``tz``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, tz=tz)
    try:
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=parse_zone(tz))
            return moment.astimezone(UTC)
        return datetime.combine(value, datetime.min.time(), tzinfo=parse_zone(tz)).astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"the time {value!s} in {tz} falls outside the years 1 to 9999 in UTC"
        ) from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_filter(since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """Filter clauses keeping ``since <= published_at < until`` (either bound may be None)."""
    bounds: dict[str, str] = {}
    if since is not None:
        bounds["gte"] = _iso(since)
    if until is not None:
        bounds["lt"] = _iso(until)
    return [{"range": {"published_at": bounds}}] if bounds else []


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Raise ValueError naming both times unless ``since`` is before ``until``."""
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({_iso(since)}) must be before until ({_iso(until)})")


def data_range(
    client: Elasticsearch, alias: str, query: dict[str, Any]
) -> tuple[datetime | None, datetime | None]:
    """The first and last ``published_at`` matching ``query``.

    Read from the sort values of the oldest and newest hit: the embedded engine
    answers ``min``/``max`` aggregations on date fields with null.
    """
    bounds: list[datetime | None] = []
    for order in ("asc", "desc"):
        response = client.search(
            index=alias,
            size=1,
            query=query,
            sort=[{"published_at": {"order": order}}],
            source=False,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        hits = response["hits"]["hits"]
        value = hits[0].get("sort", [None])[0] if hits else None
        bounds.append(datetime.fromtimestamp(value / 1000, UTC) if value is not None else None)
    return bounds[0], bounds[1]


# -- search and export --------------------------------------------------------


def _filters(
    config: ProjectConfig,
    *,
    brand: str | None,
    sentiment: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if brand is not None:
        filters.append({"term": {"brand_names": config.brand(brand).name}})
    if sentiment is not None:
        if sentiment not in SENTIMENTS:
            raise ValueError(
                f"unknown sentiment {sentiment!r}; use one of: {', '.join(SENTIMENTS)}"
            )
        filters.append({"term": {"sentiment.label": sentiment}})
    filters.extend(time_filter(since, until))
    return filters


_PHRASE = re.compile(r'"[^"]*"?(~\d*)?')
_FUZZY = re.compile(r"([^\s*~]+)~(\d+)")


def check_search_text(query: str | None) -> None:
    """Raise ValueError for search text the engines refuse (rather than a 400 from them).

    In the simple query syntax ``word~N`` asks for words within N edits, and
    Elasticsearch allows only 0, 1 or 2 (``"a phrase"~N``, a slop, takes any N).
    """
    if not query:
        return
    for match in _FUZZY.finditer(_PHRASE.sub(" ", query)):
        if int(match.group(2)) > 2:
            raise ValueError(
                f"cannot search for {match.group(0)!r}: word~N allows 0, 1 or 2 edits "
                f'(write {match.group(1)}~2, or put a phrase in quotes for "a b"~N)'
            )


def _snippet(hit: dict[str, Any]) -> str:
    """The best highlighted fragment, else the start of the text."""
    highlight = hit.get("highlight") or {}
    for field in ("text", "title"):
        fragments = highlight.get(field)
        if fragments:
            return str(fragments[0])
    text = str(hit.get("_source", {}).get("text") or "")
    if len(text) <= _SNIPPET_CHARS:
        return text
    return text[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"


def search_mentions(
    client: Elasticsearch,
    config: ProjectConfig,
    query: str | None,
    *,
    brand: str | None = None,
    sentiment: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Mentions matching ``query`` in title or text, newest first, each with a ``snippet``.

    ``query`` uses the simple query syntax (all words must match; ``"a
    phrase"``, ``-word``, ``a | b`` work); ``None`` or blank lists everything
    that passes the filters. The snippet marks matches with ``<em>``.
    """
    if not 1 <= limit <= 10_000:
        raise ValueError(f"limit must be between 1 and 10000 (got {limit})")
    check_search_text(query)
    start, end = to_utc(since, "UTC"), to_utc(until, "UTC")
    check_range(start, end)
    filters = _filters(config, brand=brand, sentiment=sentiment, since=start, until=end)
    must: list[dict[str, Any]] = []
    if query and query.strip():
        must.append(
            {
                "simple_query_string": {
                    "query": query,
                    "fields": ["title", "text"],
                    "default_operator": "and",
                }
            }
        )
    response = client.search(
        index=mentions_alias(config.elasticsearch.index_prefix),
        query={"bool": {"must": must or [{"match_all": {}}], "filter": filters}},
        sort=[{"published_at": {"order": "desc"}}, {"id": {"order": "asc"}}],
        size=limit,
        highlight={
            "fields": {"text": {}, "title": {}},
            "fragment_size": _SNIPPET_CHARS,
            "number_of_fragments": 1,
        },
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    results = []
    for hit in response["hits"]["hits"]:
        document = dict(hit["_source"])
        document["snippet"] = _snippet(hit)
        results.append(document)
    return results


def iter_mentions(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    batch_size: int = 500,
) -> Iterator[dict[str, Any]]:
    """Every stored mention (as its document), ordered by ``published_at`` then ``id``.

    Pages with ``search_after`` inside a point in time opened on the concrete
    monthly indices (the embedded engine's point in time on an alias covers
    only one of its indices), or without a point in time where the server has
    none; ``id`` is unique, so the order is total either way.
    """
    if not 1 <= batch_size <= 10_000:
        raise ValueError(f"batch_size must be between 1 and 10000 (got {batch_size})")
    start, end = to_utc(since, "UTC"), to_utc(until, "UTC")
    check_range(start, end)
    alias = mentions_alias(config.elasticsearch.index_prefix)
    try:
        indices = sorted(client.indices.get_alias(name=alias))
    except NotFoundError:
        return
    if not indices:
        return
    query = {"bool": {"filter": time_filter(start, end)}}
    sort = [{"published_at": {"order": "asc"}}, {"id": {"order": "asc"}}]
    pit_id: str | None = None
    try:
        pit_id = client.open_point_in_time(index=",".join(indices), keep_alive="2m")["id"]
    except ApiError:
        pit_id = None
    try:
        after: list[Any] | None = None
        while True:
            page: dict[str, Any] = {"size": batch_size, "query": query, "sort": sort}
            if after is not None:
                page["search_after"] = after
            if pit_id is not None:
                response = client.search(pit={"id": pit_id, "keep_alive": "2m"}, **page)
                pit_id = response.get("pit_id") or pit_id
            else:
                response = client.search(
                    index=alias, ignore_unavailable=True, allow_no_indices=True, **page
                )
            hits = response["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < batch_size:
                return
            after = hits[-1]["sort"]
    finally:
        if pit_id is not None:
            with contextlib.suppress(ApiError, NotFoundError):
                client.close_point_in_time(id=pit_id)
