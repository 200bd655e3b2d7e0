"""Inline SVG charts for the HTML report: no JavaScript library, no CDN, no network.

Each function returns one ``<svg>`` element as text. Elements carry classes
(``chart``, ``series``, ``point``, ``bar``, ``spike-marker``, ``threshold``)
and ``data-*`` attributes naming the series, so tests and stylesheets can find
them; every point and bar has a ``<title>`` tooltip with its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#6B6B6B", "#F0E442")
SENTIMENT_COLOURS = {"positive": "#009E73", "neutral": "#B8B8B8", "negative": "#D55E00"}

_WIDTH = 760
_HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 44


def colour(index: int) -> str:
    """The palette colour for series ``index`` (colour-blind safe, Okabe-Ito)."""
    return PALETTE[index % len(PALETTE)]


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering ``[low, high]`` (whole numbers only with ``integer``)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _label_every(count: int, room: int = 8) -> int:
    return max(1, math.ceil(count / room))


@dataclass
class Series:
    """A named line: one value per x label (None: no value)."""

    name: str
    values: Sequence[float | None]
    colour: str | None = None
    dashed: bool = False
    kind: str = "series"
    markers: set[int] = field(default_factory=set)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_format: Callable[[float], str] = _fmt,
    y_min: float | None = None,
    y_max: float | None = None,
    zero_line: bool = False,
    legend: bool = True,
    integer: bool = False,
) -> str:
    """A multi-series line chart over periods, with optional spike markers.

    ``integer`` keeps the y ticks on whole numbers (for counts).
    """
    values = [v for s in series for v in s.values if v is not None]
    low = min(values + ([y_min] if y_min is not None else [])) if values else 0.0
    high = max(values + ([y_max] if y_max is not None else [])) if values else 1.0
    if y_min is not None:
        low = min(low, y_min)
    ticks = nice_ticks(low, high, integer=integer)
    low, high = ticks[0], ticks[-1]
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    n = len(labels)

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - (v - low) / (high - low))

    parts = [
        f'<svg class="chart" id="{_attr(chart_id)}" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-labelledby="{_attr(chart_id)}-title" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
        '<g class="grid">',
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="tick y" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}">{escape(y_format(tick))}'
            "</text>"
        )
    if zero_line and low < 0 < high:
        parts.append(
            f'<line class="zero" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" '
            f'y1="{y(0):.1f}" y2="{y(0):.1f}"/>'
        )
    every = _label_every(n)
    for i, label in enumerate(labels):
        if i % every == 0 or (i == n - 1 and n > 1 and (n - 1) % every > every / 2):
            parts.append(
                f'<text class="tick x" x="{x(i):.1f}" y="{_HEIGHT - _BOTTOM + 18}">'
                f"{escape(label)}</text>"
            )
    parts.append("</g>")
    for index, line in enumerate(series):
        stroke = line.colour or colour(index)
        points = [(x(i), y(v), v, i) for i, v in enumerate(line.values) if v is not None]
        if not points:
            continue
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
        parts.append(
            f'<g class="{_attr(line.kind)}" data-series="{_attr(line.name)}">'
            f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="2"{dash}/>'
        )
        if line.kind == "series":
            for px, py, v, i in points:
                parts.append(
                    f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{stroke}">'
                    f"<title>{escape(line.name)} · {escape(labels[i])}: {escape(y_format(v))}"
                    "</title></circle>"
                )
        for px, py, v, i in points:
            if i in line.markers:
                parts.append(
                    f'<circle class="spike-marker" cx="{px:.1f}" cy="{py:.1f}" r="7" '
                    f'fill="none" stroke="#C00000" stroke-width="2.5">'
                    f"<title>spike · {escape(line.name)} · {escape(labels[i])}: "
                    f"{escape(y_format(v))}</title></circle>"
                )
        parts.append("</g>")
    if not values:
        parts.append(
            f'<text class="empty" x="{_WIDTH / 2}" y="{_HEIGHT / 2}">'
            "no mentions in this range</text>"
        )
    parts.append("</svg>")
    svg = "".join(parts)
    if legend:
        svg += _legend([s for s in series if s.kind == "series"], series)
    return svg


def _legend(shown: Sequence[Series], every: Sequence[Series]) -> str:
    items = []
    for line in shown:
        index = list(every).index(line)
        items.append(
            f'<span class="legend-item" data-series="{_attr(line.name)}">'
            f'<span class="swatch" style="background:{line.colour or colour(index)}"></span>'
            f"{escape(line.name)}</span>"
        )
    extra = [s for s in every if s.kind != "series"]
    for line in extra:
        index = list(every).index(line)
        items.append(
            f'<span class="legend-item {_attr(line.kind)}">'
            f'<span class="swatch dashed" style="border-color:{line.colour or colour(index)}">'
            f"</span>{escape(line.name)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


def stacked_bars(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, dict[str, int]]],
    colours: dict[str, str],
) -> str:
    """Horizontal 100% stacked bars, one per row (e.g. a brand's sentiment mix)."""
    height = 34 * max(len(rows), 1) + 20
    label_w = 120
    plot_w = _WIDTH - label_w - _RIGHT
    parts = [
        f'<svg class="chart" id="{_attr(chart_id)}" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="{_attr(chart_id)}-title" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
    ]
    for index, (name, parts_by_key) in enumerate(rows):
        top = 10 + index * 34
        total = sum(parts_by_key.values())
        parts.append(
            f'<g class="stack" data-series="{_attr(name)}">'
            f'<text class="bar-label" x="{label_w - 8}" y="{top + 17}">{escape(name)}</text>'
        )
        if not total:
            parts.append(
                f'<rect class="bar empty" x="{label_w}" y="{top}" width="{plot_w}" height="24"/>'
                f'<text class="bar-note" x="{label_w + 8}" y="{top + 17}">no mentions</text>'
            )
        left = float(label_w)
        for key, value in parts_by_key.items():
            if not total or not value:
                continue
            width = plot_w * value / total
            parts.append(
                f'<rect class="bar" data-key="{_attr(key)}" x="{left:.1f}" y="{top}" '
                f'width="{width:.1f}" height="24" fill="{colours.get(key, "#888")}">'
                f"<title>{escape(name)} · {escape(key)}: {value} ({100 * value / total:.1f}%)"
                "</title></rect>"
            )
            if width > 36:
                parts.append(
                    f'<text class="bar-value" x="{left + width / 2:.1f}" y="{top + 17}">'
                    f"{100 * value / total:.0f}%</text>"
                )
            left += width
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend-item"><span class="swatch" style="background:{c}"></span>'
        f"{escape(k)}</span>"
        for k, c in colours.items()
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    value_format: Callable[[float], str] = _fmt,
    bar_colour: str = PALETTE[0],
) -> str:
    """Horizontal bars, largest first as given (e.g. top authors by engagement)."""
    height = 26 * max(len(bars), 1) + 20
    label_w = 200
    plot_w = _WIDTH - label_w - 80
    top_value = max((v for _, v in bars), default=0) or 1
    parts = [
        f'<svg class="chart" id="{_attr(chart_id)}" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="{_attr(chart_id)}-title" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
    ]
    if not bars:
        parts.append(f'<text class="empty" x="{_WIDTH / 2}" y="24">nothing to show</text>')
    for index, (name, value) in enumerate(bars):
        top = 10 + index * 26
        width = max(plot_w * value / top_value, 1)
        shown = name if len(name) <= 28 else name[:27] + "…"
        parts.append(
            f'<g class="bar-row" data-series="{_attr(name)}">'
            f'<text class="bar-label" x="{label_w - 8}" y="{top + 14}">{escape(shown)}</text>'
            f'<rect class="bar" x="{label_w}" y="{top}" width="{width:.1f}" height="18" '
            f'fill="{bar_colour}"><title>{escape(name)}: {escape(value_format(value))}</title>'
            "</rect>"
            f'<text class="bar-value" x="{label_w + width + 6:.1f}" y="{top + 14}" '
            f'style="text-anchor:start;fill:#333">{escape(value_format(value))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
