"""Spikes: periods where a brand's mentions (or negative mentions) jump above their recent norm.

For each brand and period ``t`` (hour, day, week or month in the report's
time zone), with ``x`` the zero-filled counts per period::

    mean(t)      = mean of x over the ``window`` periods before t
    sd(t)         = sample standard deviation of the same periods (n - 1)
    threshold(t) = mean(t) + k*sd(t)
    spike        when x(t) > threshold(t) and x(t) >= min_count

Counts come from a zero-filled ``date_histogram`` (see
:mod:`listener.analytics.periods`); the statistics are computed here. A
period is only judged when its whole trailing window lies at or after the
period of the project's first stored mention (before that, zeros mean "not
crawled yet", not "quiet"). Each spike is explained by the terms that rose
in it against its trailing window (the trending formula), its top sources
and domains, and its most engaging mentions.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from listener.analytics.measures import search_rows
from listener.analytics.periods import (
    Period,
    check_interval,
    count_cells,
    fit_to_data,
    period_bounds,
    period_label,
    period_of,
    period_start,
    periods_between,
    previous_period,
    resolve_open_range,
)
from listener.analytics.scope import Filters, Query, Scope, brand_query, sentiment_query
from listener.analytics.settings import SpikeSettings
from listener.analytics.trending import TrendingTerm, resolve_field, rising_terms
from listener.config import ProjectConfig
from listener.store.queries import TimeLike, data_range

SPIKE_METRICS: tuple[str, ...] = ("mentions", "negative")
SPIKE_FORMULA = (
    "spike when count > mean + k*sd of the previous {window} periods and count >= {min_count}"
)


@dataclass(frozen=True)
class SpikePoint:
    """One brand's count in one period, with its trailing baseline (None: not judged)."""

    brand: str
    period: Period
    count: int
    mean: float | None
    std: float | None
    threshold: float | None
    spike: bool

    def record(self, tz: Any = None) -> dict[str, Any]:
        """A plain dict for tables and exports."""
        return {
            "period": period_label(self.period, tz),
            "brand": self.brand,
            "count": self.count,
            "mean": None if self.mean is None else round(self.mean, 3),
            "std": None if self.std is None else round(self.std, 3),
            "threshold": None if self.threshold is None else round(self.threshold, 3),
            "spike": self.spike,
        }


@dataclass(frozen=True)
class Explanation:
    """What was behind a spike."""

    terms: list[TrendingTerm] = field(default_factory=list)
    term_field: str = "phrases"
    sources: list[tuple[str, int]] = field(default_factory=list)
    domains: list[tuple[str, int]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: top terms, sources and domains."""
        parts = []
        if self.terms:
            parts.append("terms: " + ", ".join(f"{t.term} ({t.count})" for t in self.terms))
        if self.sources:
            parts.append("sources: " + ", ".join(f"{s} ({n})" for s, n in self.sources))
        if self.domains:
            parts.append("domains: " + ", ".join(f"{d} ({n})" for d, n in self.domains))
        return "; ".join(parts)


@dataclass(frozen=True)
class Spike:
    """A period where a brand's count exceeded its threshold, with the reasons."""

    brand: str
    metric: str
    interval: str
    period: Period
    start: datetime
    end: datetime
    count: int
    mean: float
    std: float
    threshold: float
    k: float
    explanation: Explanation = field(default_factory=Explanation)

    @property
    def z(self) -> float | None:
        """``(count - mean) / sd``; None when sd is 0."""
        return (self.count - self.mean) / self.std if self.std else None

    def record(self, tz: Any = None) -> dict[str, Any]:
        """A plain dict for tables and exports (explanation flattened)."""
        return {
            "period": period_label(self.period, tz),
            "brand": self.brand,
            "metric": self.metric,
            "count": self.count,
            "mean": round(self.mean, 3),
            "std": round(self.std, 3),
            "threshold": round(self.threshold, 3),
            "z": None if self.z is None else round(self.z, 2),
            "top_terms": [t.term for t in self.explanation.terms],
            "top_sources": [s for s, _ in self.explanation.sources],
            "top_domains": [d for d, _ in self.explanation.domains],
            "samples": [s.get("url") for s in self.explanation.samples],
            "explanation": self.explanation.summary(),
        }


@dataclass(frozen=True)
class SpikeAnalysis:
    """Per-brand series with baselines, and the spikes found in them."""

    metric: str
    interval: str
    tz: str
    settings: SpikeSettings
    series: list[SpikePoint]
    spikes: list[Spike]

    @property
    def formula(self) -> str:
        """The spike rule with this analysis's settings."""
        return SPIKE_FORMULA.format(
            window=self.settings.window, min_count=self.settings.min_count
        ).replace("k*sd", f"{self.settings.k:g}*sd")


def metric_query(name: str, metric: str) -> Query:
    """The brand's mentions (``mentions``) or its negative mentions (``negative``)."""
    if metric not in SPIKE_METRICS:
        raise ValueError(f"unknown spike metric {metric!r}; use one of: {', '.join(SPIKE_METRICS)}")
    return brand_query(name) if metric == "mentions" else sentiment_query(name, "negative")


def baseline(counts: Sequence[int]) -> tuple[float, float]:
    """Mean and sample standard deviation of a trailing window."""
    mean = statistics.fmean(counts)
    std = statistics.stdev(counts) if len(counts) > 1 else 0.0
    return mean, std


def _top_keys(
    client: Elasticsearch, scope: Scope, query: Query, field_name: str, size: int
) -> list[tuple[str, int]]:
    response = client.search(
        index=scope.alias,
        size=0,
        query=query,
        aggs={"keys": {"terms": {"field": field_name, "size": size}}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    buckets = ((response.body.get("aggregations") or {}).get("keys") or {}).get("buckets") or []
    pairs = [(str(b["key"]), int(b["doc_count"])) for b in buckets]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))[:size]


def explain(
    client: Elasticsearch,
    scope: Scope,
    name: str,
    metric: str,
    window: tuple[datetime, datetime],
    before: tuple[datetime, datetime],
    *,
    term_field: str,
    top: int = 5,
    samples: int = 3,
) -> Explanation:
    """Rising terms (against ``before``), top sources/domains and sample mentions of a window."""
    extra = [metric_query(name, metric)]
    terms, _, _ = rising_terms(
        client,
        scope,
        name,
        current=window,
        previous=before,
        field=term_field,
        min_count=2,
        limit=top,
        extra=extra,
    )
    query = scope.query(*extra, start=window[0], end=window[1], names=[name])
    return Explanation(
        terms=terms,
        term_field=term_field,
        sources=_top_keys(client, scope, query, "source", top),
        domains=_top_keys(client, scope, query, "domain", top),
        samples=search_rows(client, scope, query, limit=samples, by="engagement", brand=name)
        if samples
        else [],
    )


def detect_spikes(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    interval: str = "day",
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    metric: str = "mentions",
    k: float | None = None,
    window: int | None = None,
    min_count: int | None = None,
    explain_spikes: bool = True,
    term_field: str = "auto",
    top: int = 5,
    samples: int = 3,
) -> SpikeAnalysis:
    """Judge every period in ``[since, until)`` against its trailing window, per brand.

    ``k``, ``window`` and ``min_count`` default to the project's
    ``[analytics.spikes]``. The counts of the ``window`` periods before
    ``since`` are fetched too, so the first periods are judged. ``until``
    defaults to now (the current period is judged on its count so far);
    without ``since`` the range starts at the first stored mention.
    """
    check_interval(interval)
    defaults = config.analytics.spikes
    settings = SpikeSettings(
        k=k if k is not None else defaults.k,
        window=window if window is not None else defaults.window,
        min_count=min_count if min_count is not None else defaults.min_count,
    )
    if metric not in SPIKE_METRICS:
        raise ValueError(f"unknown spike metric {metric!r}; use one of: {', '.join(SPIKE_METRICS)}")
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    end = scope.end or datetime.now(UTC)
    start, end_resolved = resolve_open_range(
        client,
        scope.alias,
        {"bool": {"filter": scope.base_filters()}},
        scope.start,
        end,
        since_given=True,
    )
    empty = SpikeAnalysis(metric, interval, scope.tz, settings, [], [])
    if start is None or end_resolved is None:
        return empty
    limit = config.analytics.max_periods
    fitted = fit_to_data(
        client,
        scope.alias,
        scope.base_filters(),
        start,
        end_resolved,
        zone=scope.zone,
        interval=interval,
        limit=limit,
    )
    if fitted is None:
        return empty
    start, end = fitted
    judged = periods_between(scope.zone, start, end, interval)
    first = judged[0]
    for _ in range(settings.window):
        first = previous_period(first, interval)
    history_start = period_start(first, scope.zone, interval)
    table = count_cells(
        client,
        scope.alias,
        scope.base_filters(),
        {name: metric_query(name, metric) for name in scope.names},
        start=history_start,
        end=end,
        zone=scope.zone,
        interval=interval,
        max_periods=limit + settings.window,
        trim=False,
    )
    periods = [period for period in table if period is not None]
    # Zeros before the project's first stored mention mean "not crawled yet".
    first_stored, _ = data_range(client, scope.alias, {"match_all": {}})
    data_from = period_of(first_stored, scope.zone, interval) if first_stored else None
    field_name = (
        resolve_field(client, scope, term_field, history_start, end) if explain_spikes else ""
    )
    series: list[SpikePoint] = []
    spikes: list[Spike] = []
    for name in scope.names:
        counts = [table[period][name].mentions for period in periods]
        for index, period in enumerate(periods):
            if period < judged[0]:
                continue
            trailing_periods = periods[max(0, index - settings.window) : index]
            ready = (
                len(trailing_periods) == settings.window
                and data_from is not None
                and trailing_periods[0] >= data_from
            )
            count = counts[index]
            if not ready:
                series.append(SpikePoint(name, period, count, None, None, None, False))
                continue
            mean, std = baseline(counts[index - settings.window : index])
            threshold = mean + settings.k * std
            is_spike = count > threshold and count >= settings.min_count
            series.append(SpikePoint(name, period, count, mean, std, threshold, is_spike))
            if not is_spike:
                continue
            bounds = period_bounds(period, scope.zone, interval)
            window_range = (max(bounds[0], history_start), min(bounds[1], end))
            before = (period_start(trailing_periods[0], scope.zone, interval), bounds[0])
            explanation = (
                explain(
                    client,
                    scope,
                    name,
                    metric,
                    window_range,
                    before,
                    term_field=field_name,
                    top=top,
                    samples=samples,
                )
                if explain_spikes
                else Explanation()
            )
            spikes.append(
                Spike(
                    brand=name,
                    metric=metric,
                    interval=interval,
                    period=period,
                    start=window_range[0],
                    end=window_range[1],
                    count=count,
                    mean=mean,
                    std=std,
                    threshold=threshold,
                    k=settings.k,
                    explanation=explanation,
                )
            )
    return SpikeAnalysis(metric, interval, scope.tz, settings, series, spikes)
