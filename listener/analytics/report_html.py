"""The report as one self-contained HTML file, rendered from templates.

:func:`render_html` renders the page model of :meth:`Report.document
<listener.analytics.report.Report.document>` with the Jinja templates in
``listener/analytics/templates/`` (shipped as package data): ``report.html``
lays out the page, ``blocks.html`` holds one macro per kind of block, and
``report.css``/``report.js`` are inlined, so nothing is fetched from the
network. Autoescaping is on for every template: titles, authors, terms and
URLs come from crawled pages. The only markup produced outside the templates
is the charts' SVG (:mod:`listener.analytics.charts` escapes what it embeds).

The filters below format values for people (percentages, signs, thousands);
they compute nothing the model does not already hold.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from listener.analytics import charts
from listener.analytics.report import BarChart, LineChart, Report, StackedBars

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


@dataclass(frozen=True)
class Cell:
    """One table cell as text: right-aligned if ``numeric``, linked to ``href``, in a ``span``."""

    text: str
    numeric: bool = False
    href: str | None = None
    span: str | None = None


def pct(value: float | None, digits: int = 1) -> str:
    """``0.4123`` as ``41.2%``; ``-`` for no value."""
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def signed_pct(value: float | None) -> str:
    """A relative change as ``+12%`` (None: there was nothing before)."""
    return "no mentions before" if value is None else f"{100 * value:+.0f}%"


def signed(value: float | None, digits: int = 2) -> str:
    """``0.25`` as ``+0.25``; ``-`` for no value."""
    return "-" if value is None else f"{value:+.{digits}f}"


def trend(value: float | None) -> str:
    """The CSS class of a change: ``up``, ``down`` or ``flat``."""
    if value is None or abs(value) < 1e-9:
        return "flat"
    return "up" if value > 0 else "down"


def cell(row: dict[str, Any], column: str) -> Cell:
    """How ``row[column]`` is shown in a report table."""
    value = row.get(column)
    url = row.get("url")
    shown = _cell(column, value)
    if column == "title" and isinstance(url, str) and url.startswith("http"):
        return Cell(shown.text or "link", shown.numeric, url, shown.span)
    if column == "published_at" and shown.text:
        return Cell(shown.text[:16].replace("T", " ") + " UTC", shown.numeric)
    return shown


def _cell(column: str, value: Any) -> Cell:
    if value is None:
        return Cell("")
    if column == "url" and isinstance(value, str) and value.startswith(("http://", "https://")):
        return Cell("link", href=value)
    if column == "mentions_change" and isinstance(value, (int, float)):
        return Cell(f"{100 * value:+.1f}%", True)
    if column in _PERCENT_COLUMNS and isinstance(value, (int, float)):
        return Cell(pct(float(value)), True)
    if column == "share_change_pp" and isinstance(value, (int, float)):
        return Cell(f"{value:+.1f} pp", True)
    if column in _SIGNED_COLUMNS and isinstance(value, (int, float)):
        return Cell(signed(float(value)), True)
    if isinstance(value, bool):
        return Cell("yes" if value else "")
    if isinstance(value, float):
        return Cell(f"{value:,.2f}" if column == "emv" else f"{value:,.3f}", True)
    if isinstance(value, int):
        return Cell(f"{value:,}", True)
    if isinstance(value, dict):
        return Cell(", ".join(f"{k}: {v}" for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return Cell(", ".join(str(v) for v in value))
    if column == "formula":
        return Cell(str(value), span="emv-formula")
    return Cell(str(value))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def chart(block: LineChart | BarChart | StackedBars) -> Markup:
    """A chart block's inline SVG (and legend)."""
    if isinstance(block, LineChart):
        svg = charts.line_chart(
            block.chart_id,
            block.title,
            block.labels,
            block.series,
            y_format=block.value_format.format,
            y_min=block.y_min,
            y_max=block.y_max,
            zero_line=block.zero_line,
            integer=block.integer,
        )
    elif isinstance(block, BarChart):
        svg = charts.bar_chart(
            block.chart_id, block.title, block.bars, value_format=block.value_format.format
        )
    else:
        svg = charts.stacked_bars(block.chart_id, block.title, block.rows, block.colours)
    # charts.py escapes every label and value it embeds.
    return Markup(svg)


@cache
def environment() -> Environment:
    """The templates' environment: autoescaping on, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("listener.analytics", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        b64=_b64,
        cell=cell,
        fmt=format,
        pct=pct,
        signed=signed,
        signed_pct=signed_pct,
        trend=trend,
    )
    env.globals["chart"] = chart
    return env


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    return environment().get_template("report.html").render(doc=report.document())
