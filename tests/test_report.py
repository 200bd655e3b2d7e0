"""The HTML report: self-contained, figures that match plain counting, and it renders in Chromium.

The browser test opens the report from a ``file://`` URL in headless Chromium,
dumps the DOM after the inline script has run (it marks every chart the
browser laid out with a non-empty box) and takes a screenshot, kept in
``artifacts/`` for CI. It is skipped only when ``/usr/bin/chromium`` is
absent (``.ci/install-chromium`` installs it).
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import _delete_prefix
from elasticsearch import Elasticsearch

from listener.analytics.measures import share_of_voice
from listener.analytics.report import (
    Headlines,
    LineChart,
    Report,
    SpikeCards,
    TableBlock,
    build_report,
    render_html,
)
from listener.analytics.sample import SPIKE_DAY, sample_mentions, sample_project
from listener.analytics.tables import records
from listener.config import ProjectConfig, parse_project
from listener.mention import Author, BrandMatch, Engagement, Entity, Mention
from listener.store.indexer import Indexer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
CHARTS = [
    "chart-sov",
    "chart-sentiment",
    "chart-sentiment-mix",
    "chart-top-authors",
    "chart-spikes-0",
    "chart-spikes-1",
    "chart-spikes-2",
]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(scope="module")
def sample(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProjectConfig, list[Mention]]]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    data = sample_project(prefix, engine.url)
    data["earned_media"] = {"currency": "EUR", "cpm": {"social": 8.0}, "cost_per_engagement": 0.02}
    project = parse_project(data, tmp_path_factory.mktemp("report") / "listener.toml")
    mentions = sample_mentions()
    indexer = Indexer(session_client, project)
    indexer.index(mentions)
    indexer.refresh()
    yield project, mentions
    _delete_prefix(session_client, prefix)


@pytest.fixture(scope="module")
def report(
    sample: tuple[ProjectConfig, list[Mention]], session_client: Elasticsearch
) -> tuple[Report, list[Mention]]:
    project, mentions = sample
    built = build_report(
        session_client,
        project,
        since="2024-04-01",
        until="2024-05-01",
        tz="Europe/Paris",
        title="Sample report <April>",
        now=utc(2024, 5, 2),
    )
    return built, mentions


class _Elements(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def test_report_is_self_contained(report: tuple[Report, list[Mention]]) -> None:
    html = render_html(report[0])
    tags = elements(html)
    # Nothing is loaded from anywhere: no external scripts, styles, images, fonts or frames.
    for tag, attrs in tags:
        assert not (tag in ("script", "img", "iframe", "source", "video") and attrs.get("src"))
        assert tag != "link", attrs
    assert "@import" not in html and "url(" not in html
    assert "Sample report &lt;April&gt;" in html  # escaped
    svgs = [attrs.get("id") for tag, attrs in tags if tag == "svg"]
    assert svgs == CHARTS
    series = [a.get("data-series") for t, a in tags if t == "g" and a.get("class") == "series"]
    assert series[:3] == ["Acme", "Globex", "Initech"]  # the share-of-voice chart
    markers = [a for t, a in tags if t == "circle" and a.get("class") == "spike-marker"]
    assert len(markers) == len(report[0].spikes.spikes) >= 1
    cards = [a for t, a in tags if t == "div" and a.get("class") == "spike"]
    assert len(cards) == len(report[0].spikes.spikes) + len(report[0].negative_spikes.spikes)


def test_every_table_is_downloadable(report: tuple[Report, list[Mention]]) -> None:
    built = report[0]
    html = render_html(built)
    links = {
        a["download"]: a["href"]
        for t, a in elements(html)
        if t == "a" and a.get("download") and a.get("href")
    }
    for table in built.tables():
        for suffix, text in ((".csv", table.to_csv()), (".json", table.to_json())):
            href = links[f"{table.name}{suffix}"]
            assert href is not None
            payload = href.split("base64,", 1)[1]
            assert base64.b64decode(payload).decode("utf-8") == text


def test_report_figures_match_counting(report: tuple[Report, list[Mention]]) -> None:
    built, mentions = report
    now = (utc(2024, 3, 31, 22), utc(2024, 4, 30, 22))  # Paris midnights (summer time)
    before = (utc(2024, 3, 1, 23), now[0])  # the 30 days before, Paris midnight (winter time)
    assert (built.start, built.end, built.previous) == (now[0], now[1], before)

    def count(brand: str, window: tuple[datetime, datetime]) -> int:
        return sum(
            brand in m.brand_names and window[0] <= m.published_at < window[1] for m in mentions
        )

    total_now = count("Acme", now) + count("Globex", now)
    total_before = count("Acme", before) + count("Globex", before)
    rows = {row["brand"]: row for row in built.summary_rows()}
    for brand in ("Acme", "Globex"):
        row = rows[brand]
        assert row["mentions"] == count(brand, now)
        assert row["mentions_before"] == count(brand, before)
        assert row["share"] == pytest.approx(count(brand, now) / total_now)
        assert row["share_change_pp"] == pytest.approx(
            100 * (count(brand, now) / total_now - count(brand, before) / total_before)
        )
    assert rows["Initech"]["mentions"] == 0 and rows["Initech"]["mentions_change"] is None
    assert built.interval == "day" and len({r.period for r in built.sov_periods}) == 30
    assert any(s.brand == "Acme" and s.period == SPIKE_DAY for s in built.spikes.spikes)
    assert built.earned[0].formula and built.earned[0].formula.endswith("EUR")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_colours(data: bytes) -> int:
    """How many distinct byte values the image data holds (a blank page has very few)."""
    chunks = []
    position = 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))))


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: run .ci/install-chromium (CI does) for the browser test",
)
def test_report_renders_in_headless_chromium(
    report: tuple[Report, list[Mention]], tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "report.html"
    page.write_text(render_html(report[0]), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    common = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dump = subprocess.run(
        [*common, "--window-size=1280,2000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = dump.stdout
    match = re.search(r'<html[^>]*data-charts-rendered="(\d+)"', dom)
    assert match, "the report's script did not run"
    assert int(match.group(1)) == len(CHARTS)
    rendered = [a.get("id") for t, a in elements(dom) if t == "svg" and a.get("data-rendered")]
    assert rendered == CHARTS
    assert len(re.findall(r'<circle class="point"', dom)) > 90  # 3 brands x 30 days, minus gaps

    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    screenshot = subprocess.run(
        [*common, "--window-size=1280,4000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]
    data = shot.read_bytes()
    assert _png_size(data) == (1280, 4000)
    assert _png_colours(data) > 100, "the screenshot looks blank"
    shutil.rmtree(profile, ignore_errors=True)


def test_the_model_carries_the_figures(
    report: tuple[Report, list[Mention]],
    sample: tuple[ProjectConfig, list[Mention]],
    session_client: Elasticsearch,
) -> None:
    built, project = report[0], sample[0]
    sections = {section.key: section.blocks for section in built.document().sections}
    window: dict[str, Any] = {"since": built.start, "until": built.end, "tz": "Europe/Paris"}
    per_day = share_of_voice(session_client, project, interval="day", **window)
    whole = share_of_voice(session_client, project, **window)

    [table] = [b for b in sections["share-of-voice"] if isinstance(b, TableBlock)]
    assert table.table.rows == records(per_day, built.zone)
    [chart] = [b for b in sections["share-of-voice"] if isinstance(b, LineChart)]
    assert len(chart.labels) == 30
    assert [line.name for line in chart.series] == ["Acme", "Globex", "Initech"]
    for line in chart.series:
        assert list(line.values) == [100 * row.share for row in per_day if row.brand == line.name]
    [headlines] = [b for b in sections["summary"] if isinstance(b, Headlines)]
    assert [(c.brand, c.mentions, c.share) for c in headlines.cards] == [
        (row.brand, row.mentions, row.share) for row in whole
    ]
    [cards] = [b for b in sections["spikes"] if isinstance(b, SpikeCards)]
    assert len(cards.cards) == len(built.spikes.spikes) + len(built.negative_spikes.spikes)


HOSTILE = '<script>alert("x")</script> & "quoted"'


class _Text(HTMLParser):
    """Every text node and attribute value, entities decoded (as a browser reads them)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.attributes: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(value for _, value in attrs if value)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def test_crawled_text_is_escaped(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    project = parse_project(
        sample_project(prefix, engine.url), tmp_path_factory.mktemp("hostile") / "listener.toml"
    )
    # One mention a day, then a spike of eight: the hostile text reaches every table and card.
    days = [*range(1, 15), *[15] * 8]
    mentions = [
        Mention.create(
            source="mastodon",
            source_kind="social",
            url=f"https://social.example/p/{n}?a=1&b=2",
            title=HOSTILE,
            text=f"Acme {HOSTILE}",
            published_at=utc(2024, 4, day, 12),
            author=Author(name=f"Eve {HOSTILE}", followers=10),
            engagement=Engagement(likes=n),
            brands=[BrandMatch(brand="Acme", keyword="acme")],
            brand_names=["Acme"],
            phrases=[HOSTILE],
            entities=[Entity(text=HOSTILE, label="ORG")],
        )
        for n, day in enumerate(days)
    ]
    indexer = Indexer(session_client, project)
    indexer.index(mentions)
    indexer.refresh()
    try:
        built = build_report(
            session_client, project, since="2024-04-01", until="2024-04-16", now=utc(2024, 5, 1)
        )
    finally:
        _delete_prefix(session_client, prefix)
    assert built.spikes.spikes, "the fixture should make a spike with samples"
    html = render_html(built)

    assert HOSTILE not in html and "onerror" not in html
    assert html.count("<script") == 1  # the report's own
    assert "&lt;script&gt;alert(" in html and "&amp;" in html
    parsed = _Text()
    parsed.feed(html)
    assert parsed.tags.count("script") == 1
    shown = [text for text in parsed.texts if HOSTILE in text]
    # top earned mentions, authors (table and chart), trending terms, entities, the spike card
    assert len(shown) >= 10, shown
    links = [a for a in parsed.attributes if a.startswith("https://social.example/p/")]
    assert links and all(a.endswith("?a=1&b=2") for a in links)
    assert "?a=1&amp;b=2" in html
