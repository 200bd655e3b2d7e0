"""The weekly/monthly report: every measure for a range against the range before, as HTML.

:func:`build_report` gathers the figures (plain data, exportable as tables);
:func:`render_html` turns them into one self-contained HTML file: inline CSS,
inline SVG charts (:mod:`listener.analytics.charts`), every table downloadable
as CSV and JSON through ``data:`` links, and a few lines of inline script that
only mark which charts the browser laid out. Nothing is fetched from the
network, so the file opens offline and can be mailed as is.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from typing import Any

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


# -- HTML ---------------------------------------------------------------------------

_CSS = """
:root { --ink:#1d232b; --muted:#5f6b7a; --line:#e3e7ec; --bg:#ffffff; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: var(--bg); margin: 0; }
header.top { padding: 24px 32px 12px; border-bottom: 1px solid var(--line); }
header.top h1 { margin: 0 0 4px; font-size: 24px; }
.meta { color: var(--muted); font-size: 13px; }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; }
main { padding: 8px 32px 48px; max-width: 1200px; }
section { margin: 28px 0; }
h2 { font-size: 19px; margin: 0 0 10px; border-left: 4px solid #0072B2; padding-left: 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.headlines { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
             gap: 12px; margin: 12px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
        padding: 12px 14px; }
.card .brand { font-weight: 600; }
.card .big { font-size: 26px; font-weight: 650; }
.up { color: #087443; } .down { color: #b42318; } .flat { color: var(--muted); }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 5px 8px;
                               text-align: left; vertical-align: top; }
table.data th { background: var(--panel); font-weight: 600; white-space: nowrap; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.formula, .note { font-size: 12.5px; color: var(--muted); margin: 4px 0; }
ul.formulas { font-size: 12.5px; margin: 4px 0 8px; padding-left: 18px; }
.formula code, .emv-formula { font-family: ui-monospace, "DejaVu Sans Mono", monospace;
                              font-size: 12px; }
.table-block { overflow-x: auto; }
details > summary { cursor: pointer; color: #0b5cad; font-size: 13px; margin: 6px 0; }
.downloads { font-size: 12px; margin: 2px 0 10px; }
.downloads a { margin-right: 8px; color: #0b5cad; }
.chart { width: 100%; max-width: 900px; height: auto; display: block; }
.chart .grid line { stroke: #e6e9ee; stroke-width: 1; }
.chart .zero { stroke: #9aa4b2; stroke-width: 1.2; }
.chart text { font-size: 11px; fill: #5f6b7a; }
.chart .tick.y { text-anchor: end; }
.chart .tick.x { text-anchor: middle; }
.chart .bar-label { text-anchor: end; fill: #1d232b; font-size: 12px; }
.chart .bar-value { text-anchor: middle; fill: #fff; font-size: 11px; }
.chart .bar.empty { fill: #f0f2f5; }
.chart .bar-note { fill: #5f6b7a; }
.chart .empty { text-anchor: middle; font-size: 14px; }
.legend { font-size: 12px; margin: 4px 0 12px; }
.legend-item { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          margin-right: 5px; vertical-align: -1px; }
.swatch.dashed { border-top: 2px dashed; height: 0; border-radius: 0; vertical-align: 3px; }
.spike { background: var(--panel); border: 1px solid var(--line); border-left: 4px solid #C00000;
         border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.spike ul { margin: 4px 0; padding-left: 18px; }
.empty-note { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; padding: 16px 32px;
         border-top: 1px solid var(--line); }
@media print { nav, .downloads { display: none; } }
"""

# Marks each chart the browser actually laid out (tests read these attributes).
_SCRIPT = """
(function () {
  var done = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBBox(), rect = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && rect.width > 0) {
      svg.setAttribute("data-rendered", "true");
      done += 1;
    }
  });
  document.documentElement.setAttribute("data-charts-rendered", String(done));
})();
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _signed_pct(value: float | None) -> str:
    return "no mentions before" if value is None else f"{100 * value:+.0f}%"


def _signed(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}{suffix}"


def _trend_class(value: float | None) -> str:
    if value is None or abs(value) < 1e-9:
        return "flat"
    return "up" if value > 0 else "down"


_PERCENT_COLUMNS = {
    "share",
    "share_before",
    "engagement_share",
    "reach_share",
    "weighted_share",
    "earned_share",
    "mentions_change",
}
_SIGNED_COLUMNS = {"net_sentiment", "net_sentiment_before", "net_sentiment_change"}


def _cell(column: str, value: Any) -> tuple[str, bool]:
    """(HTML, is-number) for one table cell."""
    if value is None:
        return "", False
    if column == "url" and isinstance(value, str) and value.startswith(("http://", "https://")):
        return f'<a href="{escape(value)}" rel="noopener noreferrer">link</a>', False
    if column == "mentions_change" and isinstance(value, (int, float)):
        return f"{100 * value:+.1f}%", True
    if column in _PERCENT_COLUMNS and isinstance(value, (int, float)):
        return _pct(float(value)), True
    if column == "share_change_pp" and isinstance(value, (int, float)):
        return f"{value:+.1f} pp", True
    if column in _SIGNED_COLUMNS and isinstance(value, (int, float)):
        return _signed(float(value)), True
    if isinstance(value, bool):
        return ("yes" if value else ""), False
    if isinstance(value, float):
        return f"{value:,.2f}" if column == "emv" else f"{value:,.3f}", True
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items())), False
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value)), False
    if column == "formula":
        return f'<span class="emv-formula">{escape(str(value))}</span>', False
    return escape(str(value)), False


def _emv_formulas(report: Report) -> str:
    """Each brand's earned media value with its formula and figures."""
    lines = [
        f'<li data-brand="{escape(row.brand)}"><b>{escape(row.brand)}</b>: '
        f'<span class="emv-formula">{escape(row.formula)}</span></li>'
        for row in report.earned
        if row.formula
    ]
    if not lines:
        return ""
    return f'<ul class="formulas">{"".join(lines)}</ul>'


def _data_link(text: str, mime: str, filename: str, label: str) -> str:
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (
        f'<a download="{escape(filename)}" href="data:{mime};charset=utf-8;base64,{payload}">'
        f"{escape(label)}</a>"
    )


def render_table(
    table: Table,
    *,
    limit: int | None = None,
    downloads: bool = True,
    columns: Sequence[str] | None = None,
    collapsed: bool = False,
) -> str:
    """A table as HTML with its notes and CSV/JSON download links (which have every column).

    ``columns`` picks the columns shown; ``collapsed`` folds the table into a
    ``<details>`` element.
    """
    shown_columns = list(columns or table.columns)
    parts = [f'<div class="table-block" id="table-{escape(table.name)}">']
    if collapsed and table.rows:
        parts.append(f"<details><summary>{escape(table.title)}: {len(table.rows)} rows</summary>")
    if downloads:
        parts.append(
            '<div class="downloads">Download: '
            + _data_link(table.to_csv(), "text/csv", f"{table.name}.csv", "CSV")
            + _data_link(table.to_json(), "application/json", f"{table.name}.json", "JSON")
            + "</div>"
        )
    rows = table.rows if limit is None else table.rows[:limit]
    if limit == 0:
        parts.append(f'<p class="note">{len(table.rows)} rows: see the downloads.</p>')
    elif not rows:
        parts.append('<p class="empty-note">Nothing in this range.</p>')
    else:
        head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in shown_columns)
        body = []
        for row in rows:
            cells = []
            for column in shown_columns:
                html, numeric = _cell(column, row.get(column))
                url = row.get("url")
                if column == "title" and isinstance(url, str) and url.startswith("http"):
                    html = f'<a href="{escape(url)}" rel="noopener noreferrer">{html or "link"}</a>'
                if column == "published_at" and html:
                    html = html[:16].replace("T", " ") + " UTC"
                cells.append(f'<td class="num">{html}</td>' if numeric else f"<td>{html}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(
            f'<table class="data" data-table="{escape(table.name)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        if limit and len(table.rows) > limit:
            parts.append(
                f'<p class="note">Showing {limit} of {len(table.rows)} rows; '
                "the downloads have all of them.</p>"
            )
    if collapsed and table.rows:
        parts.append("</details>")
    parts.extend(f'<p class="formula">{escape(note)}</p>' for note in table.notes)
    parts.append("</div>")
    return "".join(parts)


def _headlines(report: Report) -> str:
    days = (report.end - report.start).total_seconds() / 86400
    span = f"{days:.0f} days" if days >= 1 else f"{days * 24:.0f} hours"
    cards = []
    for row in report.summary_rows():
        share_change = row["share_change_pp"]
        net_change = row["net_sentiment_change"]
        cards.append(
            f'<div class="card" data-brand="{escape(row["brand"])}">'
            f'<div class="brand">{escape(row["brand"])}</div>'
            f'<div class="big">{_pct(row["share"])}</div>'
            f'<div>share of voice <span class="{_trend_class(share_change)}">'
            f"{share_change:+.1f} pp</span> vs previous {span}</div>"
            f"<div>{row['mentions']:,} mentions "
            f'<span class="{_trend_class(row["mentions_change"])}">'
            f"({_signed_pct(row['mentions_change'])})"
            "</span></div>"
            f"<div>net sentiment {_signed(row['net_sentiment'])} "
            f'<span class="{_trend_class(net_change)}">({_signed(net_change)})</span></div>'
            f"<div>earned {_pct(row['earned_share'], 0)}"
            + (
                f" · EMV {row['emv']:,.2f} {escape(report.rates.currency)}"
                if row["emv"] is not None
                else ""
            )
            + "</div></div>"
        )
    return f'<div class="headlines">{"".join(cards)}</div>'


def _labels(report: Report, periods: Sequence[Any]) -> list[str]:
    return [period_label(p, report.zone) or "" for p in periods]


def _sov_chart(report: Report) -> str:
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
    return charts.line_chart(
        "chart-sov",
        f"Share of voice (mentions) per {report.interval}",
        _labels(report, periods),
        series,
        y_format=lambda v: f"{v:.0f}%",
        y_min=0,
        y_max=100,
    )


def _sentiment_chart(report: Report) -> str:
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
    return charts.line_chart(
        "chart-sentiment",
        f"Net sentiment per {report.interval}",
        _labels(report, periods),
        series,
        y_format=lambda v: f"{v:+.1f}",
        y_min=-1,
        y_max=1,
        zero_line=True,
    )


def _sentiment_mix(report: Report) -> str:
    rows = [
        (
            row.brand,
            {"positive": row.positive, "neutral": row.neutral, "negative": row.negative},
        )
        for row in report.sentiment
    ]
    return charts.stacked_bars(
        "chart-sentiment-mix",
        "Sentiment mix per brand",
        rows,
        charts.SENTIMENT_COLOURS,
    )


def _authors_chart(report: Report) -> str:
    bars = [(str(row["author"]), float(row["engagement"])) for row in report.authors.rows]
    return charts.bar_chart(
        "chart-top-authors",
        "Top authors by engagement",
        bars,
        value_format=lambda v: f"{v:,.0f}",
    )


def _spike_charts(report: Report) -> str:
    parts = []
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
        parts.append(f"<h3>{escape(name)}</h3>")
        parts.append(
            charts.line_chart(
                f"chart-spikes-{index}",
                f"{name}: mentions per {report.interval} and spike threshold",
                _labels(report, [p.period for p in points]),
                series,
                y_format=lambda v: f"{v:,.0f}",
                y_min=0,
                integer=True,
            )
        )
    return "".join(parts)


def _spike_cards(report: Report) -> str:
    found = [*report.spikes.spikes, *report.negative_spikes.spikes]
    if not found:
        return '<p class="empty-note">No spikes in this range.</p>'
    cards = []
    for spike in sorted(found, key=lambda s: (s.start, s.brand, s.metric)):
        what = "mentions" if spike.metric == "mentions" else "negative mentions"
        explanation = spike.explanation
        items = []
        if explanation.terms:
            items.append(
                "Rising terms: "
                + ", ".join(
                    f"<b>{escape(t.term)}</b> ({t.count} vs {t.expected:.1f} expected)"
                    for t in explanation.terms
                )
            )
        if explanation.sources:
            items.append(
                "Sources: " + ", ".join(f"{escape(s)} ({n})" for s, n in explanation.sources)
            )
        if explanation.domains:
            items.append(
                "Domains: " + ", ".join(f"{escape(d)} ({n})" for d, n in explanation.domains)
            )
        for sample in explanation.samples:
            url = str(sample.get("url") or "")
            items.append(
                f'Sample: <a href="{escape(url)}" rel="noopener noreferrer">'
                f"{escape(str(sample.get('title') or url))}</a> "
                f"({escape(str(sample.get('source')))}, {sample.get('engagement', 0):,} engagement)"
            )
        cards.append(
            f'<div class="spike" data-brand="{escape(spike.brand)}" data-metric="{spike.metric}">'
            f"<b>{escape(spike.brand)}</b> · {escape(what)} · "
            f"{escape(period_label(spike.period, report.zone) or '')}: "
            f"<b>{spike.count:,}</b> against a trailing mean of {spike.mean:.1f} "
            f"(threshold {spike.threshold:.1f} = {spike.mean:.1f} + {spike.k:g} * {spike.std:.1f})"
            f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul></div>"
        )
    return "".join(cards)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    tables = {table.name: table for table in report.tables()}
    range_text = (
        f"{report.local(report.start)} to {report.local(report.end)} ({escape(report.tz)}), "
        f"compared with {report.local(report.previous[0])} to {report.local(report.previous[1])}"
    )
    sections = [
        (
            "summary",
            "Summary",
            _headlines(report) + render_table(tables["summary"], columns=SUMMARY_SHOWN),
        ),
        (
            "share-of-voice",
            "Share of voice over time",
            _sov_chart(report) + render_table(tables["share_of_voice"], collapsed=True),
        ),
        (
            "sentiment",
            "Sentiment",
            _sentiment_chart(report)
            + _sentiment_mix(report)
            + render_table(tables["sentiment"])
            + render_table(tables["sentiment_over_time"], collapsed=True),
        ),
        (
            "earned-media",
            "Earned media",
            render_table(tables["earned_media"], columns=EARNED_SHOWN)
            + _emv_formulas(report)
            + "<h3>Top earned mentions</h3>"
            + render_table(tables["top_earned_mentions"], columns=MENTIONS_SHOWN),
        ),
        (
            "authors",
            "Top authors, domains and sources",
            _authors_chart(report)
            + render_table(tables["top_authors"])
            + "<h3>Domains</h3>"
            + render_table(tables["top_domains"])
            + "<h3>Sources</h3>"
            + render_table(tables["top_sources"])
            + "<h3>Entities co-mentioned</h3>"
            + render_table(tables["top_entities"]),
        ),
        ("trending", "Trending terms", render_table(tables["trending_terms"])),
        (
            "spikes",
            "Spikes",
            _spike_charts(report)
            + _spike_cards(report)
            + render_table(tables["spikes"], columns=SPIKES_SHOWN)
            + render_table(tables["spike_baselines"], collapsed=True),
        ),
    ]
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in report.notes)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><h1>{escape(report.title)}</h1>'
        f'<div class="meta">{range_text} · per {escape(report.interval)} · '
        f"{escape(report.filters.describe())} · brands: {escape(', '.join(report.brands))}</div>"
        f"{notes}</header><nav>{nav}</nav><main>{body}</main>"
        f"<footer>Generated {report.local(report.generated_at)} ({escape(report.tz)}) by listener "
        f"{escape(__version__)}. Every figure comes from plain aggregations over the stored "
        "mentions; the formulas are printed under each table.</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
