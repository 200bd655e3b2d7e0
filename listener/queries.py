"""The questions asked of the index: share of voice, mention search, full export.

Everything here uses plain queries and aggregations (``filters``, ``sum``,
``date_histogram``) and computes ratios in Python, so it runs the same on
Elasticsearch 8.x/9.x and on the embedded engine (no pipeline aggregations,
no scripts; see ENGINE.md).

Time zones: the embedded engine ignores named zones (``Europe/Paris``) in a
``date_histogram`` and only honours fixed offsets (``+01:00``). So a period
breakdown is computed per stretch of constant UTC offset, each with the fixed
offset, and the buckets are merged by local date. That is exact on every
engine, across daylight-saving changes too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from listener.config import ProjectConfig
from listener.indexer import mentions_alias

Interval = Literal["day", "week", "month"]
Measure = Literal["mentions", "engagement"]
TimeLike = datetime | date | str

INTERVALS: tuple[str, ...] = ("day", "week", "month")
MEASURES: tuple[str, ...] = ("mentions", "engagement")
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MS = timedelta(milliseconds=1)
_SNIPPET_CHARS = 160


@dataclass(frozen=True)
class SovRow:
    """One brand's share of voice in one period (``period`` None: the whole range)."""

    brand: str
    mentions: int
    engagement: int
    share: float
    period: date | None = None


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
        return (reference - timedelta(**{_UNITS[unit]: amount})).astimezone(UTC)
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
    return parsed.astimezone(UTC)


def _as_datetime(value: TimeLike | None, tz: str) -> datetime | None:
    """``since``/``until`` arguments as aware UTC datetimes (naive values are read in ``tz``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, tz=tz)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=parse_zone(tz))
        return moment.astimezone(UTC)
    return datetime.combine(value, datetime.min.time(), tzinfo=parse_zone(tz)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _time_filter(since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    bounds: dict[str, str] = {}
    if since is not None:
        bounds["gte"] = _iso(since)
    if until is not None:
        bounds["lt"] = _iso(until)
    return [{"range": {"published_at": bounds}}] if bounds else []


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({_iso(since)}) must be before until ({_iso(until)})")


def _offset_segments(
    zone: tzinfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, timedelta]]:
    """Split [start, end) into stretches where ``zone`` keeps one UTC offset."""

    def offset(moment: datetime) -> timedelta:
        return moment.astimezone(zone).utcoffset() or timedelta(0)

    segments: list[tuple[datetime, datetime, timedelta]] = []
    current, current_offset = start, offset(start)
    probe = start
    while probe < end:
        step = min(probe + timedelta(days=1), end)
        check = step if step < end else end - _MS
        if check > probe and offset(check) != current_offset:
            # The offset changes in (probe, check]: find the first second with the new one.
            low, high = probe, check
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == current_offset:
                    low = middle
                else:
                    high = middle
            change = max(high.replace(microsecond=0), low + _MS)
            segments.append((current, change, current_offset))
            current, current_offset, probe = change, offset(change), change
            continue
        probe = step
    segments.append((current, end, current_offset))
    return segments


def _es_offset(offset: timedelta) -> str:
    """``+HH:MM`` for Elasticsearch's ``time_zone``."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def _period_start(local: datetime, interval: str) -> date:
    day = local.date()
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _next_period(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(weeks=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _periods_between(zone: tzinfo, start: datetime, end: datetime, interval: str) -> list[date]:
    """Every period (calendar day, ISO week or month in ``zone``) touching [start, end)."""
    first = _period_start(start.astimezone(zone), interval)
    last = _period_start((end - _MS).astimezone(zone), interval)
    periods = [first]
    while periods[-1] < last:
        periods.append(_next_period(periods[-1], interval))
    return periods


# -- share of voice -----------------------------------------------------------


def _brand_aggs(names: list[str]) -> dict[str, Any]:
    return {
        "brands": {
            "filters": {"filters": {name: {"term": {"brand_names": name}} for name in names}},
            "aggs": {"engagement": {"sum": {"field": "engagement.total"}}},
        }
    }


def _brand_counts(aggregation: dict[str, Any] | None) -> dict[str, tuple[int, int]]:
    """(mentions, engagement) by brand from a ``brands`` filters aggregation."""
    if not aggregation:
        return {}
    counts = {}
    for name, bucket in aggregation["buckets"].items():
        engagement = bucket.get("engagement", {}).get("value") or 0
        counts[name] = (int(bucket["doc_count"]), round(engagement))
    return counts


def _rows(
    names: list[str], counts: dict[str, tuple[int, int]], by: str, period: date | None
) -> list[SovRow]:
    measure = 0 if by == "mentions" else 1
    total = sum(counts.get(name, (0, 0))[measure] for name in names)
    rows = []
    for name in names:
        mentions, engagement = counts.get(name, (0, 0))
        value = (mentions, engagement)[measure]
        share = value / total if total else 0.0
        rows.append(SovRow(name, mentions, engagement, share, period))
    return rows


def share_of_voice(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    interval: Interval | str | None = None,
    by: Measure | str = "mentions",
    tz: str = "UTC",
) -> list[SovRow]:
    """Each project brand's share of the chosen measure, overall or per period.

    A mention naming two brands counts for both. ``share`` is the brand's
    mentions (or engagement) divided by the sum over all project brands in the
    period, 0 when that sum is 0. Every brand appears in every period; with an
    ``interval``, periods without mentions between ``since``/``until`` (or the
    first and last stored mention) are included with zeros. ``until`` is
    exclusive. Rows are ordered by period, then by the brands' order in the
    project file.
    """
    if by not in MEASURES:
        raise ValueError(
            f"unknown share-of-voice measure {by!r}; use one of: {', '.join(MEASURES)}"
        )
    if interval is not None and interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; use one of: {', '.join(INTERVALS)}")
    zone = parse_zone(tz)
    start, end = _as_datetime(since, tz), _as_datetime(until, tz)
    _check_range(start, end)
    names = [brand.name for brand in config.brands]
    alias = mentions_alias(config.elasticsearch.index_prefix)
    query = {"bool": {"filter": [{"terms": {"brand_names": names}}, *_time_filter(start, end)]}}
    if interval is None:
        response = client.search(
            index=alias,
            size=0,
            query=query,
            aggs=_brand_aggs(names),
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        counts = _brand_counts(response.get("aggregations", {}).get("brands"))
        return _rows(names, counts, by, None)

    if start is None or end is None:
        first, last = _data_range(client, alias, query)
        start = start or first
        end = end or (last + _MS if last else None)
        if start is not None and end is None and since is not None:
            end = max(datetime.now(UTC), start + _MS)
        if start is None or end is None or start >= end:
            return []

    by_period: dict[date, dict[str, tuple[int, int]]] = {}
    for segment_start, segment_end, offset in _offset_segments(zone, start, end):
        segment_query = {
            "bool": {
                "filter": [
                    {"terms": {"brand_names": names}},
                    *_time_filter(segment_start, segment_end),
                ]
            }
        }
        histogram = {
            "date_histogram": {
                "field": "published_at",
                "calendar_interval": interval,
                "time_zone": _es_offset(offset),
                "min_doc_count": 0,
                "extended_bounds": {
                    "min": _millis(segment_start),
                    "max": _millis(segment_end) - 1,
                },
            },
            "aggs": _brand_aggs(names),
        }
        response = client.search(
            index=alias,
            size=0,
            query=segment_query,
            aggs={"periods": histogram},
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        buckets = response.get("aggregations", {}).get("periods", {}).get("buckets")
        if buckets is None:  # no index yet: nothing stored, every period is zero
            for period in _periods_between(timezone(offset), segment_start, segment_end, interval):
                by_period.setdefault(period, {})
            continue
        fixed = timezone(offset)
        for bucket in buckets:
            period = datetime.fromtimestamp(bucket["key"] / 1000, fixed).date()
            merged = by_period.setdefault(period, {})
            for name, (mentions, engagement) in _brand_counts(bucket.get("brands")).items():
                before = merged.get(name, (0, 0))
                merged[name] = (before[0] + mentions, before[1] + engagement)
    rows: list[SovRow] = []
    for period in sorted(by_period):
        rows.extend(_rows(names, by_period[period], by, period))
    return rows


def _data_range(
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
    filters.extend(_time_filter(since, until))
    return filters


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
    start, end = _as_datetime(since, "UTC"), _as_datetime(until, "UTC")
    _check_range(start, end)
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
    start, end = _as_datetime(since, "UTC"), _as_datetime(until, "UTC")
    _check_range(start, end)
    alias = mentions_alias(config.elasticsearch.index_prefix)
    try:
        indices = sorted(client.indices.get_alias(name=alias))
    except NotFoundError:
        return
    if not indices:
        return
    query = {"bool": {"filter": _time_filter(start, end)}}
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
