"""Periods (hour, day, ISO week, month) in a time zone, and counting per period.

A period is named by its start: a :class:`~datetime.date` for days, weeks
(Monday) and months, read in the report's time zone; for hours, the aware UTC
instant the local hour starts at (local hours repeat when clocks go back, UTC
instants do not).

:func:`count_cells` is the one primitive the measures share: it counts
mentions, and sums engagement and reach, for a set of named filters
("cells"), overall or per period. This is the one period bucketing in
listener: share of voice, sentiment, earned media, spikes and the report all
count through it.

Time zones: the embedded engine ignores named zones (``Europe/Paris``) in a
``date_histogram`` and only honours fixed offsets (``+01:00``). So the range is
cut where the zone's UTC offset changes (:func:`offset_segments`), each stretch
is histogrammed with its fixed offset, and buckets are merged by period. That
is exact on every engine, across daylight-saving changes too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal

from elasticsearch import Elasticsearch

from listener.store.queries import data_range, time_filter

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: tuple[str, ...] = ("hour", "day", "week", "month")
Period = date  # a datetime (UTC instant) for hourly periods
MAX_PERIODS = 2000  # the default of [analytics] max_periods

_MS = timedelta(milliseconds=1)
# The shortest length of each period: the upper bound of how many fit in a range.
_SHORTEST = {
    "hour": timedelta(hours=1),
    "day": timedelta(hours=23),
    "week": timedelta(days=7) - timedelta(hours=1),
    "month": timedelta(days=28) - timedelta(hours=1),
}
_ADJECTIVE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}


class PeriodLimitError(ValueError):
    """A per-period request would produce more periods than the limit (the API answers 422)."""

    def __init__(self, count: int, limit: int, interval: str, start: datetime, end: datetime):
        self.count, self.limit, self.interval = count, limit, interval
        longer = [name for name in INTERVALS[INTERVALS.index(interval) + 1 :]]
        hint = f" or a longer interval ({', '.join(longer)})" if longer else ""
        super().__init__(
            f"{count:,} {_ADJECTIVE[interval]} periods between the first and the last mention "
            f"in the range ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) is more than "
            f"the limit of {limit:,} periods per request; ask for a shorter range "
            f"(since/until){hint}, or raise [analytics] max_periods in the project file"
        )


def offset_segments(
    zone: tzinfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, timedelta]]:
    """Split ``[start, end)`` into stretches where ``zone`` keeps one UTC offset."""

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


def es_offset(offset: timedelta) -> str:
    """``+HH:MM`` for Elasticsearch's ``time_zone``."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def check_interval(interval: str | None) -> None:
    """Raise ValueError naming the choices when ``interval`` is not one of :data:`INTERVALS`."""
    if interval is not None and interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; use one of: {', '.join(INTERVALS)}")


def period_of(moment: datetime, zone: tzinfo, interval: str) -> Period:
    """The period containing ``moment`` (aware)."""
    local = moment.astimezone(zone)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_period(period: Period, interval: str) -> Period:
    """The period after ``period``."""
    if interval == "hour":
        return period + timedelta(hours=1)
    if interval == "day":
        return period + timedelta(days=1)
    if interval == "week":
        return period + timedelta(weeks=1)
    return (period.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_period(period: Period, interval: str) -> Period:
    """The period before ``period``."""
    if interval == "hour":
        return period - timedelta(hours=1)
    if interval == "day":
        return period - timedelta(days=1)
    if interval == "week":
        return period - timedelta(weeks=1)
    return (period - timedelta(days=1)).replace(day=1)


def period_start(period: Period, zone: tzinfo, interval: str) -> datetime:
    """When ``period`` starts, as an aware UTC datetime."""
    if interval == "hour":
        assert isinstance(period, datetime)
        return period.astimezone(UTC)
    return datetime.combine(period, time.min, tzinfo=zone).astimezone(UTC)


def period_bounds(period: Period, zone: tzinfo, interval: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``period`` in UTC."""
    return (
        period_start(period, zone, interval),
        period_start(next_period(period, interval), zone, interval),
    )


def periods_between(zone: tzinfo, start: datetime, end: datetime, interval: str) -> list[Period]:
    """Every period touching ``[start, end)``, in order."""
    if start >= end:
        return []
    first = period_of(start, zone, interval)
    last = period_of(end - _MS, zone, interval)
    periods = [first]
    while periods[-1] < last:
        periods.append(next_period(periods[-1], interval))
    return periods


def count_periods(zone: tzinfo, start: datetime, end: datetime, interval: str) -> int:
    """How many periods touch ``[start, end)``, without listing them.

    Exact for ranges inside the calendar; an upper bound (from the shortest
    period length) where local times would leave it (year 1, year 9999).
    """
    if start >= end:
        return 0
    try:
        first = period_of(start, zone, interval)
        last = period_of(end - _MS, zone, interval)
    except OverflowError:
        return (end - start) // _SHORTEST[interval] + 2
    if interval == "hour":
        assert isinstance(first, datetime) and isinstance(last, datetime)
        return int((last - first) // timedelta(hours=1)) + 1
    if interval == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    days = (last - first).days
    return days // 7 + 1 if interval == "week" else days + 1


def fit_to_data(
    client: Elasticsearch,
    alias: str,
    filters: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    *,
    zone: tzinfo,
    interval: str,
    limit: int,
) -> tuple[datetime, datetime] | None:
    """``[start, end)`` shrunk to the first and last matching mention when it has too many periods.

    A range with at most ``limit`` periods is returned as it is. A longer one
    (``since=0001-01-01`` per hour, say) is cut to the mentions inside it
    (None when there are none); if that still has more than ``limit``
    periods, :class:`PeriodLimitError` is raised before anything is built.
    """
    if count_periods(zone, start, end, interval) <= limit:
        return start, end
    query = {"bool": {"filter": [*filters, *time_filter(start, end)]}}
    first, last = data_range(client, alias, query)
    if first is None or last is None:
        return None
    start, end = max(start, first), min(end, last + _MS)
    count = count_periods(zone, start, end, interval)
    if count > limit:
        raise PeriodLimitError(count, limit, interval, start, end)
    return start, end


def period_label(period: Period | None, zone: tzinfo | None = None) -> str | None:
    """``2024-05-01`` for days, weeks and months; ``2024-05-01T14:00+02:00`` for hours."""
    if period is None:
        return None
    if isinstance(period, datetime):
        return period.astimezone(zone or UTC).isoformat(timespec="minutes")
    return period.isoformat()


@dataclass(frozen=True)
class Counts:
    """What a cell adds up to: mentions, engagement and reach (followers, else [audience])."""

    mentions: int = 0
    engagement: int = 0
    reach: int = 0
    reach_known: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))

    def measure(self, by: str) -> int:
        """The figure share of voice divides: ``mentions``, ``engagement`` or ``reach``."""
        if by not in ("mentions", "engagement", "reach"):
            raise ValueError(f"unknown measure {by!r}; use mentions, engagement or reach")
        return int(getattr(self, by))


CellTable = dict[Period | None, dict[str, Counts]]

_CELL_METRICS = {
    "engagement": {"sum": {"field": "engagement.total"}},
    "reach": {"sum": {"field": "author.followers"}},
    "reach_known": {"value_count": {"field": "author.followers"}},
    # A mention has followers or an [audience] estimate for its domain, never both.
    "audience": {"sum": {"field": "audience"}},
    "audience_known": {"value_count": {"field": "audience"}},
}


def _cells_agg(cells: Mapping[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """A ``filters`` aggregation over the cells (keys made safe) and the key → cell name map."""
    keys = {f"c{index}": name for index, name in enumerate(cells)}
    aggregation = {
        "filters": {"filters": {key: cells[name] for key, name in keys.items()}},
        "aggs": _CELL_METRICS,
    }
    return aggregation, keys


def _counts(bucket: dict[str, Any]) -> Counts:
    """Counts from a bucket carrying the ``_CELL_METRICS`` sub-aggregations."""
    return Counts(
        mentions=int(bucket.get("doc_count") or 0),
        engagement=round((bucket.get("engagement") or {}).get("value") or 0),
        reach=round(
            ((bucket.get("reach") or {}).get("value") or 0)
            + ((bucket.get("audience") or {}).get("value") or 0)
        ),
        reach_known=int((bucket.get("reach_known") or {}).get("value") or 0)
        + int((bucket.get("audience_known") or {}).get("value") or 0),
    )


def _read_cells(aggregation: dict[str, Any] | None, keys: dict[str, str]) -> dict[str, Counts]:
    if not aggregation:
        return {}
    return {
        keys[key]: _counts(bucket)
        for key, bucket in aggregation.get("buckets", {}).items()
        if key in keys
    }


def _search(client: Elasticsearch, alias: str, **body: Any) -> dict[str, Any]:
    response = client.search(
        index=alias, size=0, ignore_unavailable=True, allow_no_indices=True, **body
    )
    return dict(response.body)


def resolve_open_range(
    client: Elasticsearch,
    alias: str,
    query: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    *,
    since_given: bool,
) -> tuple[datetime | None, datetime | None]:
    """Fill a missing ``start``/``end`` from the first/last matching mention.

    With ``since`` given and no ``until``, the range ends now. Returns
    ``(None, None)`` when nothing is stored and a bound stays unknown.
    """
    if start is not None and end is not None:
        return start, end
    first, last = data_range(client, alias, query)
    start = start or first
    end = end or (last + _MS if last else None)
    if start is not None and end is None and since_given:
        end = max(datetime.now(UTC), start + _MS)
    if start is None or end is None or start >= end:
        return None, None
    return start, end


def count_cells(
    client: Elasticsearch,
    alias: str,
    filters: list[dict[str, Any]],
    cells: Mapping[str, dict[str, Any]],
    *,
    start: datetime | None,
    end: datetime | None,
    zone: tzinfo = UTC,
    interval: str | None = None,
    since_given: bool = False,
    max_periods: int = MAX_PERIODS,
    trim: bool = True,
) -> CellTable:
    """Counts per cell, overall (key ``None``) or per period, zero-filled between mentions.

    ``filters`` restrict every cell (brand set, source filters, duplicates);
    ``start``/``end`` bound the range (``end`` exclusive). With an interval,
    the periods run from the first to the last matching mention inside the
    range (``trim=False`` keeps every period of the range, zeros included),
    and periods without mentions between those are returned with zeros; an
    empty result means nothing matched. A range of more than ``max_periods``
    periods is first cut to its mentions, and refused with
    :class:`PeriodLimitError` if that is still too long.
    """
    check_interval(interval)
    aggregation, keys = _cells_agg(cells)
    empty = {name: Counts() for name in cells}
    if interval is None:
        query = {"bool": {"filter": [*filters, *time_filter(start, end)]}}
        response = _search(client, alias, query=query, aggs={"cells": aggregation})
        found = _read_cells(response.get("aggregations", {}).get("cells"), keys)
        return {None: {**empty, **found}}

    start, end = resolve_open_range(
        client, alias, {"bool": {"filter": filters}}, start, end, since_given=since_given
    )
    if start is None or end is None:
        return {}
    fitted = fit_to_data(
        client, alias, filters, start, end, zone=zone, interval=interval, limit=max_periods
    )
    if fitted is None:
        return {}
    start, end = fitted
    table: CellTable = {
        period: dict(empty) for period in periods_between(zone, start, end, interval)
    }
    for segment_start, segment_end, offset in offset_segments(zone, start, end):
        query = {"bool": {"filter": [*filters, *time_filter(segment_start, segment_end)]}}
        histogram = {
            "date_histogram": {
                "field": "published_at",
                "calendar_interval": interval,
                "time_zone": es_offset(offset),
                "min_doc_count": 0,
                "extended_bounds": {
                    "min": _millis(segment_start),
                    "max": _millis(segment_end) - 1,
                },
            },
            "aggs": _CELL_METRICS,
        }
        # Cells outside, periods inside: each filter is evaluated once (the other way
        # round, the embedded engine evaluates every filter again in every period).
        outer = {"filters": aggregation["filters"], "aggs": {"periods": histogram}}
        response = _search(client, alias, query=query, aggs={"cells": outer})
        cells_out = ((response.get("aggregations") or {}).get("cells") or {}).get("buckets") or {}
        fixed = timezone(offset)
        for key, cell_bucket in cells_out.items():
            name = keys.get(key)
            if name is None:
                continue
            for bucket in (cell_bucket.get("periods") or {}).get("buckets") or []:
                moment = datetime.fromtimestamp(bucket["key"] / 1000, fixed)
                period: Period = moment.astimezone(UTC) if interval == "hour" else moment.date()
                row = table.setdefault(period, dict(empty))
                row[name] = row[name] + _counts(bucket)
    ordered = sorted(table.items(), key=lambda item: item[0])  # type: ignore[arg-type,return-value]
    if trim:
        used = [i for i, (_, row) in enumerate(ordered) if any(c.mentions for c in row.values())]
        ordered = ordered[used[0] : used[-1] + 1] if used else []
    return dict(ordered)
