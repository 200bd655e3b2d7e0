"""The weekly/monthly report: every measure for a range against the range before.

This module computes; it writes no HTML. :func:`build_report` gathers the
figures into a :class:`Report` (plain data, exportable as tables), and
:meth:`Report.document` lays them out as a typed model of the page: a header,
then sections of blocks (tables, charts' data, headline cards, spike cards).
:mod:`listener.analytics.report_html` renders that model with the Jinja
templates in ``listener/analytics/templates/`` into one self-contained HTML
file: inline CSS, inline SVG charts (:mod:`listener.analytics.charts`), every
table downloadable as CSV and JSON through ``data:`` links, and a few lines of
inline script that only mark which charts the browser laid out. Nothing is
fetched from the network, so the file opens offline and can be mailed as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from elasticsearch import Elasticsearch

from listener import __version__
from listener.analytics import charts
from listener.analytics.measures import (
    EARNED_NOTE,
    EMV_FORMULA,
    NET_SENTIMENT_FORMULA,
    SOV_FORMULA,
    EarnedRow,
    SentimentRow,
    ShareOfVoiceRow,
    earned_media,
    sentiment,
    share_of_voice,
    top_earned_mentions,
    weighted_formula,
)
from listener.analytics.periods import check_interval, period_label
from listener.analytics.scope import Filters
from listener.analytics.settings import EarnedMediaConfig, SentimentWeights, SpikeSettings
from listener.analytics.spikes import SpikeAnalysis, detect_spikes
from listener.analytics.tables import (
    AUTHOR_COLUMNS,
    BASELINE_COLUMNS,
    DOMAIN_COLUMNS,
    EARNED_COLUMNS,
    ENTITY_COLUMNS,
    MENTION_COLUMNS,
    SENTIMENT_COLUMNS,
    SOURCE_COLUMNS,
    SOV_COLUMNS,
    SPIKE_COLUMNS,
    TRENDING_COLUMNS,
    Table,
    records,
    with_period,
)
from listener.analytics.top import (
    AUTHORS_NOTE,
    ENTITIES_NOTE,
    TopList,
    top_authors,
    top_domains,
    top_entities,
    top_sources,
)
from listener.analytics.trending import TRENDING_FORMULA, Trending, trending_terms
from listener.config import ProjectConfig
from listener.store.queries import TimeLike, parse_time, parse_zone, to_utc

SUMMARY_COLUMNS = [
    "brand",
    "mentions",
    "mentions_before",
    "mentions_change",
    "share",
    "share_before",
    "share_change_pp",
    "engagement_share",
    "reach_share",
    "net_sentiment",
    "net_sentiment_before",
    "net_sentiment_change",
    "weighted_share",
    "earned_share",
    "emv",
]


SUMMARY_SHOWN = [
    "brand",
    "mentions",
    "mentions_before",
    "mentions_change",
    "share",
    "share_change_pp",
    "net_sentiment",
    "net_sentiment_change",
    "earned_share",
    "emv",
]
EARNED_SHOWN = [c for c in EARNED_COLUMNS if c not in ("formula", "currency")]
MENTIONS_SHOWN = [c for c in MENTION_COLUMNS if c not in ("url", "id")]
SPIKES_SHOWN = [c for c in SPIKE_COLUMNS if c != "samples"]


def auto_interval(start: datetime, end: datetime) -> str:
    """Hours up to 3 days, days up to ~3 months, weeks up to 2 years, then months."""
    length = end - start
    if length <= timedelta(days=3):
        return "hour"
    if length <= timedelta(days=92):
        return "day"
    if length <= timedelta(days=731):
        return "week"
    return "month"


@dataclass
class Report:
    """Everything the report shows, as data."""

    title: str
    generated_at: datetime
    start: datetime
    end: datetime
    previous: tuple[datetime, datetime]
    interval: str
    tz: str
    zone: tzinfo
    filters: Filters
    brands: list[str]
    sov: list[ShareOfVoiceRow]
    sov_before: list[ShareOfVoiceRow]
    sov_periods: list[ShareOfVoiceRow]
    sentiment: list[SentimentRow]
    sentiment_before: list[SentimentRow]
    sentiment_periods: list[SentimentRow]
    earned: list[EarnedRow]
    top_earned: list[dict[str, Any]]
    authors: TopList
    domains: TopList
    sources: TopList
    entities: TopList
    trending: Trending
    spikes: SpikeAnalysis
    negative_spikes: SpikeAnalysis
    rates: EarnedMediaConfig
    weights: SentimentWeights = field(default_factory=SentimentWeights)
    notes: list[str] = field(default_factory=list)

    def document(self) -> Document:
        """The page as a typed model: sections of tables, charts' data and cards."""
        return report_document(self)

    def local(self, moment: datetime) -> str:
        """A moment in the report's zone, to the minute."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def summary_rows(self) -> list[dict[str, Any]]:
        """Per brand: the current figures, the previous range's, and the change."""
        before_sov = {row.brand: row for row in self.sov_before}
        before_sent = {row.brand: row for row in self.sentiment_before}
        sentiments = {row.brand: row for row in self.sentiment}
        earned = {row.brand: row for row in self.earned}
        totals = {
            by: sum(getattr(row, by) for row in self.sov) or 0 for by in ("engagement", "reach")
        }
        rows = []
        for row in self.sov:
            old = before_sov.get(row.brand)
            now_sent, old_sent = sentiments.get(row.brand), before_sent.get(row.brand)
            earned_row = earned.get(row.brand)
            rows.append(
                {
                    "brand": row.brand,
                    "mentions": row.mentions,
                    "mentions_before": old.mentions if old else 0,
                    "mentions_change": _relative(row.mentions, old.mentions if old else 0),
                    "share": row.share,
                    "share_before": old.share if old else 0.0,
                    "share_change_pp": 100 * (row.share - (old.share if old else 0.0)),
                    "engagement_share": _ratio(row.engagement, totals["engagement"]),
                    "reach_share": _ratio(row.reach, totals["reach"]),
                    "net_sentiment": now_sent.net_sentiment if now_sent else 0.0,
                    "net_sentiment_before": old_sent.net_sentiment if old_sent else 0.0,
                    "net_sentiment_change": (now_sent.net_sentiment if now_sent else 0.0)
                    - (old_sent.net_sentiment if old_sent else 0.0),
                    "weighted_share": now_sent.weighted_share if now_sent else 0.0,
                    "earned_share": earned_row.earned_share if earned_row else 0.0,
                    "emv": earned_row.emv if earned_row else None,
                }
            )
        return rows

    def tables(self) -> list[Table]:
        """Every table in the report, in order, with the notes that explain it."""
        tz = self.zone
        sov_note = SOV_FORMULA.format(by="mentions")
        spike_note = self.spikes.formula
        return [
            Table(
                "summary",
                "Summary: this range against the previous one",
                SUMMARY_COLUMNS,
                self.summary_rows(),
                [sov_note, NET_SENTIMENT_FORMULA],
            ),
            Table(
                "share_of_voice",
                f"Share of voice per {self.interval}",
                with_period(SOV_COLUMNS, True),
                records(self.sov_periods, tz),
                [sov_note],
            ),
            Table(
                "sentiment",
                "Sentiment per brand (whole range)",
                SENTIMENT_COLUMNS,
                records(self.sentiment, tz),
                [NET_SENTIMENT_FORMULA, weighted_formula(self.weights)],
            ),
            Table(
                "sentiment_over_time",
                f"Sentiment per {self.interval}",
                with_period(SENTIMENT_COLUMNS, True),
                records(self.sentiment_periods, tz),
                [NET_SENTIMENT_FORMULA],
            ),
            Table(
                "earned_media",
                "Earned media",
                EARNED_COLUMNS,
                records(self.earned, tz),
                [
                    EARNED_NOTE,
                    EMV_FORMULA
                    if self.rates.has_rates
                    else "earned media value: not computed (no rates in [earned_media])",
                ],
            ),
            Table(
                "top_earned_mentions",
                "Top earned mentions by engagement",
                MENTION_COLUMNS,
                self.top_earned,
            ),
            Table(
                "top_authors",
                "Top authors by engagement",
                AUTHOR_COLUMNS,
                self.authors.rows,
                [AUTHORS_NOTE],
            ),
            Table("top_domains", "Top domains", DOMAIN_COLUMNS, self.domains.rows),
            Table("top_sources", "Top sources", SOURCE_COLUMNS, self.sources.rows),
            Table(
                "top_entities",
                "Entities co-mentioned with each brand",
                ENTITY_COLUMNS,
                self.entities.rows,
                [ENTITIES_NOTE],
            ),
            Table(
                "trending_terms",
                f"Trending terms ({'phrases' if self.trending.field == 'phrases' else 'entities'})",
                TRENDING_COLUMNS,
                self.trending.records(),
                [TRENDING_FORMULA],
            ),
            Table(
                "spikes",
                "Spikes",
                SPIKE_COLUMNS,
                [s.record(tz) for s in [*self.spikes.spikes, *self.negative_spikes.spikes]],
                [spike_note],
            ),
            Table(
                "spike_baselines",
                f"Mentions per {self.interval} with their spike thresholds",
                BASELINE_COLUMNS,
                records(self.spikes.series, tz),
                [spike_note],
            ),
        ]


def _relative(now: float, before: float) -> float | None:
    return (now - before) / before if before else None


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def previous_start(start: datetime, end: datetime, zone: tzinfo) -> datetime:
    """The start of the range before ``[start, end)``: as long on the local clock of ``zone``.

    In UTC that is ``start - (end - start)``; across a daylight-saving change
    it keeps local midnights at midnight.
    """
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    wall = local_start - (local_end - local_start)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def build_report(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike = "30d",
    until: TimeLike | None = None,
    interval: str | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    rates: EarnedMediaConfig | None = None,
    spikes: SpikeSettings | None = None,
    top: int = 10,
    title: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Compute every measure for ``[since, until)`` and the range of equal length before it.

    ``interval`` defaults to :func:`auto_interval`; ``rates`` and ``spikes``
    default to the project's ``[earned_media]`` and ``[analytics.spikes]``.
    """
    check_interval(interval)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    start = parse_time(since, now=moment, tz=tz) if isinstance(since, str) else None
    start = start or to_utc(since, tz)
    end = (
        parse_time(until, now=moment, tz=tz)
        if isinstance(until, str)
        else to_utc(until, tz) or moment
    )
    assert start is not None and end is not None
    if start >= end:
        raise ValueError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    zone = parse_zone(tz)
    previous = (previous_start(start, end, zone), start)
    step = interval or auto_interval(start, end)
    money = rates or config.earned_media
    settings = spikes or config.analytics.spikes
    common: dict[str, Any] = {"tz": tz, "brands": brands, "filters": filters}
    now_range = {"since": start, "until": end, **common}
    before_range = {"since": previous[0], "until": previous[1], **common}
    spike_args: dict[str, Any] = {
        **now_range,
        "interval": step,
        "k": settings.k,
        "window": settings.window,
        "min_count": settings.min_count,
    }
    report = Report(
        title=title or f"listener report: {', '.join(b.name for b in config.brands)}",
        generated_at=moment,
        start=start,
        end=end,
        previous=previous,
        interval=step,
        tz=tz,
        zone=zone,
        filters=filters or Filters(),
        brands=[config.brand(b).name for b in brands]
        if brands
        else [b.name for b in config.brands],
        sov=share_of_voice(client, config, **now_range),
        sov_before=share_of_voice(client, config, **before_range),
        sov_periods=share_of_voice(client, config, interval=step, **now_range),
        sentiment=sentiment(client, config, **now_range),
        sentiment_before=sentiment(client, config, **before_range),
        sentiment_periods=sentiment(client, config, interval=step, **now_range),
        earned=earned_media(client, config, rates=money, **now_range),
        top_earned=top_earned_mentions(client, config, limit=5, **now_range),
        authors=top_authors(client, config, by="engagement", limit=top, **now_range),
        domains=top_domains(client, config, limit=top, **now_range),
        sources=top_sources(client, config, limit=top, **now_range),
        entities=top_entities(client, config, limit=5, **now_range),
        trending=trending_terms(client, config, limit=5, **now_range),
        spikes=detect_spikes(client, config, metric="mentions", **spike_args),
        negative_spikes=detect_spikes(client, config, metric="negative", **spike_args),
        rates=money,
        weights=config.analytics.sentiment_weights,
    )
    if report.authors.truncated:
        report.notes.append(
            "Top authors were ranked among the most frequent authors only (many authors)."
        )
    return report


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (:mod:`listener.analytics.report_html`)."""
    # Imported here so that computing a report never loads the templates (or Jinja).
    from listener.analytics.report_html import render_html as render

    return render(report)


# -- the page, as a typed model (rendered by listener.analytics.report_html) ----------


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str
    kind: ClassVar[str] = "heading"


@dataclass(frozen=True)
class Headline:
    """One brand's headline card: this range's figures and their change."""

    brand: str
    share: float
    share_change_pp: float
    mentions: int
    mentions_change: float | None
    net_sentiment: float
    net_sentiment_change: float
    earned_share: float
    emv: float | None


@dataclass(frozen=True)
class Headlines:
    """The headline cards, one per brand; ``span`` names the range (``30 days``)."""

    span: str
    currency: str
    cards: list[Headline]
    kind: ClassVar[str] = "headlines"


@dataclass(frozen=True)
class TableBlock:
    """A table shown with ``columns`` (the downloads have every column).

    ``collapsed`` folds it; ``limit`` shows only the first rows (0: none).
    """

    table: Table
    columns: list[str]
    collapsed: bool = False
    limit: int | None = None
    downloads: bool = True
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class LineChart:
    """Lines over periods; ``value_format`` is a :meth:`str.format` pattern for y values."""

    chart_id: str
    title: str
    labels: list[str]
    series: list[charts.Series]
    value_format: str
    y_min: float | None = None
    y_max: float | None = None
    zero_line: bool = False
    integer: bool = False
    kind: ClassVar[str] = "line_chart"


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, largest first."""

    chart_id: str
    title: str
    bars: list[tuple[str, float]]
    value_format: str
    kind: ClassVar[str] = "bar_chart"


@dataclass(frozen=True)
class StackedBars:
    """One 100% bar per row (a brand's sentiment mix)."""

    chart_id: str
    title: str
    rows: list[tuple[str, dict[str, int]]]
    colours: dict[str, str]
    kind: ClassVar[str] = "stacked_bars"


@dataclass(frozen=True)
class Formulas:
    """Each brand's earned media value with its formula and figures."""

    items: list[tuple[str, str]]
    kind: ClassVar[str] = "formulas"


@dataclass(frozen=True)
class Sample:
    """A mention shown as an example of a spike."""

    url: str
    title: str
    source: str
    engagement: int


@dataclass(frozen=True)
class SpikeCard:
    """One spike with what explains it."""

    brand: str
    metric: str
    what: str
    period: str
    count: int
    mean: float
    std: float
    threshold: float
    k: float
    terms: list[tuple[str, int, float]]
    sources: list[tuple[str, int]]
    domains: list[tuple[str, int]]
    samples: list[Sample]


@dataclass(frozen=True)
class SpikeCards:
    """Every spike, by start, brand and metric (empty: none in this range)."""

    cards: list[SpikeCard]
    kind: ClassVar[str] = "spike_cards"


Block = (
    Heading | Headlines | TableBlock | LineChart | BarChart | StackedBars | Formulas | SpikeCards
)


@dataclass(frozen=True)
class Section:
    """One section of the page: an anchor, a title and its blocks in order."""

    key: str
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Document:
    """The whole page as data: what the templates render, and nothing they compute."""

    title: str
    range_start: str
    range_end: str
    previous_start: str
    previous_end: str
    tz: str
    interval: str
    filters: str
    brands: list[str]
    notes: list[str]
    sections: list[Section]
    generated_at: str
    version: str


def report_document(report: Report) -> Document:
    """Lay ``report`` out as the page: its sections, tables and charts' data."""
    tables = {table.name: table for table in report.tables()}

    def table(name: str, columns: Sequence[str] | None = None, **options: Any) -> TableBlock:
        shown = tables[name]
        return TableBlock(shown, list(columns or shown.columns), **options)

    sections = [
        Section(
            "summary",
            "Summary",
            [_headlines(report), table("summary", SUMMARY_SHOWN)],
        ),
        Section(
            "share-of-voice",
            "Share of voice over time",
            [_sov_chart(report), table("share_of_voice", collapsed=True)],
        ),
        Section(
            "sentiment",
            "Sentiment",
            [
                _sentiment_chart(report),
                _sentiment_mix(report),
                table("sentiment"),
                table("sentiment_over_time", collapsed=True),
            ],
        ),
        Section(
            "earned-media",
            "Earned media",
            [
                table("earned_media", EARNED_SHOWN),
                Formulas([(row.brand, row.formula) for row in report.earned if row.formula]),
                Heading("Top earned mentions"),
                table("top_earned_mentions", MENTIONS_SHOWN),
            ],
        ),
        Section(
            "authors",
            "Top authors, domains and sources",
            [
                _authors_chart(report),
                table("top_authors"),
                Heading("Domains"),
                table("top_domains"),
                Heading("Sources"),
                table("top_sources"),
                Heading("Entities co-mentioned"),
                table("top_entities"),
            ],
        ),
        Section("trending", "Trending terms", [table("trending_terms")]),
        Section(
            "spikes",
            "Spikes",
            [
                *_spike_charts(report),
                _spike_cards(report),
                table("spikes", SPIKES_SHOWN),
                table("spike_baselines", collapsed=True),
            ],
        ),
    ]
    return Document(
        title=report.title,
        range_start=report.local(report.start),
        range_end=report.local(report.end),
        previous_start=report.local(report.previous[0]),
        previous_end=report.local(report.previous[1]),
        tz=report.tz,
        interval=report.interval,
        filters=report.filters.describe(),
        brands=list(report.brands),
        notes=list(report.notes),
        sections=sections,
        generated_at=report.local(report.generated_at),
        version=__version__,
    )


def _headlines(report: Report) -> Headlines:
    days = (report.end - report.start).total_seconds() / 86400
    span = f"{days:.0f} days" if days >= 1 else f"{days * 24:.0f} hours"
    cards = [
        Headline(
            brand=row["brand"],
            share=row["share"],
            share_change_pp=row["share_change_pp"],
            mentions=row["mentions"],
            mentions_change=row["mentions_change"],
            net_sentiment=row["net_sentiment"],
            net_sentiment_change=row["net_sentiment_change"],
            earned_share=row["earned_share"],
            emv=row["emv"],
        )
        for row in report.summary_rows()
    ]
    return Headlines(span, report.rates.currency, cards)


def _labels(report: Report, periods: Sequence[Any]) -> list[str]:
    return [period_label(p, report.zone) or "" for p in periods]


def _sov_chart(report: Report) -> LineChart:
    periods = list(dict.fromkeys(row.period for row in report.sov_periods))
    series = [
        charts.Series(
            name,
            [
                100 * row.share
                for period in periods
                for row in report.sov_periods
                if row.period == period and row.brand == name
            ],
        )
        for name in report.brands
    ]
    return LineChart(
        "chart-sov",
        f"Share of voice (mentions) per {report.interval}",
        _labels(report, periods),
        series,
        value_format="{:.0f}%",
        y_min=0,
        y_max=100,
    )


def _sentiment_chart(report: Report) -> LineChart:
    periods = list(dict.fromkeys(row.period for row in report.sentiment_periods))
    series = []
    for name in report.brands:
        values: list[float | None] = []
        for period in periods:
            row = next(
                r for r in report.sentiment_periods if r.period == period and r.brand == name
            )
            values.append(row.net_sentiment if row.mentions else None)
        series.append(charts.Series(name, values))
    return LineChart(
        "chart-sentiment",
        f"Net sentiment per {report.interval}",
        _labels(report, periods),
        series,
        value_format="{:+.1f}",
        y_min=-1,
        y_max=1,
        zero_line=True,
    )


def _sentiment_mix(report: Report) -> StackedBars:
    rows = [
        (
            row.brand,
            {"positive": row.positive, "neutral": row.neutral, "negative": row.negative},
        )
        for row in report.sentiment
    ]
    return StackedBars(
        "chart-sentiment-mix", "Sentiment mix per brand", rows, dict(charts.SENTIMENT_COLOURS)
    )


def _authors_chart(report: Report) -> BarChart:
    bars = [(str(row["author"]), float(row["engagement"])) for row in report.authors.rows]
    return BarChart("chart-top-authors", "Top authors by engagement", bars, "{:,.0f}")


def _spike_charts(report: Report) -> list[Block]:
    blocks: list[Block] = []
    analysis = report.spikes
    for index, name in enumerate(report.brands):
        points = [p for p in analysis.series if p.brand == name]
        marked = {i for i, p in enumerate(points) if p.spike}
        series = [
            charts.Series(name, [p.count for p in points], charts.colour(index), markers=marked),
            charts.Series(
                f"threshold (mean + {analysis.settings.k:g}sd)",
                [p.threshold for p in points],
                "#C00000",
                dashed=True,
                kind="threshold",
            ),
        ]
        blocks.append(Heading(name))
        blocks.append(
            LineChart(
                f"chart-spikes-{index}",
                f"{name}: mentions per {report.interval} and spike threshold",
                _labels(report, [p.period for p in points]),
                series,
                value_format="{:,.0f}",
                y_min=0,
                integer=True,
            )
        )
    return blocks


def _spike_cards(report: Report) -> SpikeCards:
    found = [*report.spikes.spikes, *report.negative_spikes.spikes]
    cards = []
    for spike in sorted(found, key=lambda s: (s.start, s.brand, s.metric)):
        explanation = spike.explanation
        cards.append(
            SpikeCard(
                brand=spike.brand,
                metric=spike.metric,
                what="mentions" if spike.metric == "mentions" else "negative mentions",
                period=period_label(spike.period, report.zone) or "",
                count=spike.count,
                mean=spike.mean,
                std=spike.std,
                threshold=spike.threshold,
                k=spike.k,
                terms=[(t.term, t.count, t.expected) for t in explanation.terms],
                sources=list(explanation.sources),
                domains=list(explanation.domains),
                samples=[
                    Sample(
                        url=str(sample.get("url") or ""),
                        title=str(sample.get("title") or sample.get("url") or ""),
                        source=str(sample.get("source")),
                        engagement=int(sample.get("engagement", 0) or 0),
                    )
                    for sample in explanation.samples
                ],
            )
        )
    return SpikeCards(cards)
