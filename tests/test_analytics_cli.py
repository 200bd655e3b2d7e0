"""The analytics commands end to end: project file, real engine, table/JSON/CSV output."""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import _delete_prefix
from elasticsearch import Elasticsearch

from listener.analytics import (
    Filters,
    earned_media,
    sentiment,
    top_authors,
    top_earned_mentions,
)
from listener.analytics.sample import sample_mentions, sample_project
from listener.analytics.settings import EarnedMediaConfig
from listener.analytics.tables import records
from listener.cli import main
from listener.config import ProjectConfig, load_project, parse_project
from listener.store.indexer import Indexer
from listener.store.queries import parse_zone

PROJECT = """\
[elasticsearch]
url = "{url}"
index_prefix = "{prefix}"

[[brands]]
name = "Acme"
keywords = ["acme", "acme corp"]
owned_domains = ["acme.com"]
owned_accounts = ["@acme"]

[[brands]]
name = "Globex"
keywords = ["globex"]
owned_domains = ["globex.example"]

[[brands]]
name = "Initech"

[earned_media]
currency = "EUR"
cost_per_engagement = 0.02

[earned_media.cpm]
social = 8.0
"""


SCOPED = {"sov", "sentiment", "earned", "top", "trending", "spikes"}


@dataclass
class Setup:
    path: Path
    project: ProjectConfig
    client: Elasticsearch

    def run(self, *args: str) -> Result:
        # The CLI counts unique mentions by default; the API's default is raw, and
        # these tests compare the two, so ask for raw unless a test says otherwise.
        scoped = args[0] in SCOPED and not {"--unique", "--raw"} & set(args)
        # The commands cover the last 30 days by default; the sample is from 2024, and these
        # tests compare with the API's whole range, so ask for everything unless told.
        everything = args[0] in SCOPED | {"report"} and "--since" not in args
        extra = [*(["--raw"] if scoped else []), *(["--since", "all"] if everything else [])]
        return CliRunner().invoke(main, [*args, *extra, "-c", str(self.path)])


@pytest.fixture(scope="module")
def setup(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "listener.toml"
    path.write_text(PROJECT.format(url=engine.url, prefix=prefix), encoding="utf-8")
    project = load_project(path)
    assert [(b.name, b.owned_domains) for b in project.brands] == [
        (b["name"], b.get("owned_domains", [])) for b in sample_project(prefix)["brands"]
    ]
    indexer = Indexer(session_client, project)
    indexer.index(sample_mentions())
    indexer.refresh()
    yield Setup(path, project, session_client)
    _delete_prefix(session_client, prefix)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result.stdout


APRIL = ("--since", "2024-04-01", "--until", "2024-05-01")


def test_sentiment_json_is_the_api(setup: Setup) -> None:
    out = ok(setup.run("sentiment", *APRIL, "--interval", "week", "--tz", "Europe/Paris",
                       "--format", "json"))  # fmt: skip
    rows = sentiment(
        setup.client,
        setup.project,
        since=datetime(2024, 3, 31, 22, tzinfo=UTC),
        until=datetime(2024, 4, 30, 22, tzinfo=UTC),
        interval="week",
        tz="Europe/Paris",
    )
    assert json.loads(out) == records(rows, parse_zone("Europe/Paris"))
    assert json.loads(out)[0]["period"] == "2024-04-01"  # a Monday, local midnight


def test_sentiment_table_prints_the_formulas(setup: Setup) -> None:
    out = ok(setup.run("sentiment", "--brand", "acme", "--kind", "social", "--unique"))
    assert "Acme" in out and "Globex" not in out
    assert "net sentiment = (positive - negative) / mentions" in out
    assert "weighted share" in out


def test_earned_csv_and_rates_from_the_project_and_the_command_line(setup: Setup) -> None:
    out = ok(setup.run("earned", "--cpm", "video=12.5", "--format", "csv"))
    rows = list(csv.DictReader(io.StringIO(out)))
    rates = EarnedMediaConfig(
        currency="EUR", cpm={"social": 8.0, "video": 12.5}, cost_per_engagement=0.02
    )
    expected = earned_media(setup.client, setup.project, rates=rates)
    assert [r["brand"] for r in rows] == ["Acme", "Globex", "Initech"]
    for row, want in zip(rows, expected, strict=True):
        assert int(row["earned"]) == want.earned
        assert float(row["emv"]) == pytest.approx(round(want.emv or 0, 2))
        assert row["formula"] == want.formula
        assert row["currency"] == "EUR"
    table = ok(setup.run("earned", "--cpe", "0"))
    assert "EMV = sum over source kinds" in table
    assert "Acme: EMV = " in table and "EUR" in table


def test_top_commands(setup: Setup) -> None:
    out = ok(setup.run("top", "authors", *APRIL, "--by", "engagement", "--limit", "3",
                       "--format", "json"))  # fmt: skip
    expected = top_authors(
        setup.client,
        setup.project,
        since=datetime(2024, 4, 1, tzinfo=UTC),
        until=datetime(2024, 5, 1, tzinfo=UTC),
        by="engagement",
        limit=3,
    )
    assert json.loads(out) == json.loads(json.dumps(expected.rows))
    kinds = list(csv.DictReader(io.StringIO(ok(setup.run("top", "sources", "--kinds",
                                                         "--format", "csv")))))  # fmt: skip
    assert {row["kind"] for row in kinds} == {"news", "blog", "social", "forum", "review", "video"}
    entities = ok(setup.run("top", "entities", "--limit", "2"))
    assert "Bob Smith" in entities or "Berlin" in entities
    earned = json.loads(ok(setup.run("top", "earned", "--brand", "Acme", "--limit", "2",
                                      "--format", "json")))  # fmt: skip
    want = top_earned_mentions(setup.client, setup.project, brands=["Acme"], limit=2)
    assert [r["id"] for r in earned] == [r["id"] for r in want]
    domains = ok(setup.run("top", "domains", "--source", "rss", "--by", "reach"))
    assert "Top domains by reach" in domains


def test_trending_and_spikes(setup: Setup) -> None:
    trending = json.loads(ok(setup.run("trending", "--since", "2024-04-24", "--until",
                                       "2024-05-01", "--format", "json")))  # fmt: skip
    assert next(r for r in trending if r["brand"] == "Globex")["term"] == "price cut"
    spikes = json.loads(ok(setup.run("spikes", "--since", "2024-04-10", "--until",
                                     "2024-04-25", "--format", "json")))  # fmt: skip
    acme = next(s for s in spikes if s["brand"] == "Acme" and s["period"] == "2024-04-20")
    assert acme["top_terms"][0] == "battery recall"
    assert acme["samples"] and acme["count"] > acme["threshold"]
    negative = ok(setup.run("spikes", "--since", "2024-04-10", "--until", "2024-04-25",
                            "--metric", "negative"))  # fmt: skip
    assert "2024-04-20" in negative and "battery recall" in negative
    series = list(csv.DictReader(io.StringIO(ok(setup.run(
        "spikes", "--since", "2024-04-10", "--until", "2024-04-25", "--all", "--format", "csv",
        "--brand", "Globex")))))  # fmt: skip
    assert len(series) == 15 and {r["brand"] for r in series} == {"Globex"}


def test_report_writes_html_and_exports(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    exports = tmp_path / "tables"
    result = setup.run("report", *APRIL, "--out", str(out), "--export-dir", str(exports),
                       "--title", "April")  # fmt: skip
    text = ok(result)
    assert "Summary" in text and "Acme" in text
    assert out.exists() and "<svg" in out.read_text(encoding="utf-8")
    names = sorted(p.name for p in exports.iterdir())
    for table in ("summary", "share_of_voice", "sentiment", "earned_media", "top_authors",
                  "trending_terms", "spikes"):  # fmt: skip
        assert f"{table}.csv" in names and f"{table}.json" in names
    summary = json.loads((exports / "summary.json").read_text(encoding="utf-8"))
    assert [row["brand"] for row in summary] == ["Acme", "Globex", "Initech"]
    assert "wrote" in (result.stderr or "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sentiment", "--brand", "Umbrella"), "unknown brand"),
        (("sentiment", "--kind", "podcast"), "podcast"),
        (("earned", "--cpm", "social"), "KIND=RATE"),
        (("earned", "--cpm", "podcast=3"), "unknown source kind"),
        (("trending", "--since", "yesterday"), "cannot read the time"),
        (("spikes", "--window", "1"), "window"),
        (("report", "--since", "2024-05-01", "--until", "2024-04-01"), "before"),
        (("alerts",), "no [[alerts.rules]]"),
        (("sov", "--since", "99999999d"), "before the year 1"),
        (("spikes", "--since", "0001-01-01", "--tz", "+02:00"), "outside the years 1 to 9999"),
        (("search", "acme~10"), "0, 1 or 2 edits"),
        (("preview", "(" * 200 + "acme" + ")" * 200), "at most 40 levels of nested"),
    ],
)
def test_bad_input_is_a_usage_error(setup: Setup, args: tuple[str, ...], message: str) -> None:
    result = setup.run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output + (result.stderr or "")
    assert "Traceback" not in result.output


def test_filters_reach_the_api(setup: Setup) -> None:
    out = ok(setup.run("sentiment", "--source", "reddit", "--language", "de", "--country", "DE",
                       "--format", "json"))  # fmt: skip
    rows = sentiment(
        setup.client,
        setup.project,
        filters=Filters.of(sources=["reddit"], languages=["de"], countries=["DE"]),
    )
    assert json.loads(out) == [{k: v for k, v in r.items() if k != "period"} for r in records(rows)]


def test_docs_cover_the_commands_and_their_config_examples_parse(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "analytics.md").read_text(
        encoding="utf-8"
    )
    for command in ("sov", "sentiment", "earned", "trending", "spikes", "report", "alerts"):
        assert f"listener {command}" in docs, command
    for sub in ("authors", "domains", "sources", "entities", "earned"):
        assert f"listener top {sub}" in docs, sub
    blocks = re.findall(r"```toml\n(.*?)```", docs, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        data = tomllib.loads('[[brands]]\nname = "Acme"\n' + re.sub(r"\$\{\w+\}", "x", block))
        parse_project(data, tmp_path / "listener.toml")


def test_too_many_periods_is_a_usage_error_naming_the_limit(setup: Setup, tmp_path: Path) -> None:
    # From year 1 per month: cut to the sample's first and last mention (March, April 2024).
    months = json.loads(ok(setup.run("sov", "--since", "0001-01-01", "--interval", "month",
                                     "--format", "json")))  # fmt: skip
    assert sorted({row["period"] for row in months}) == ["2024-03-01", "2024-04-01"]
    # The sample spans 1,464 hours; with a limit of 1,000 per hour is refused (exit 2).
    limited = tmp_path / "limited.toml"
    text = setup.path.read_text(encoding="utf-8")
    limited.write_text(text + "\n[analytics]\nmax_periods = 1000\n", encoding="utf-8")
    for command in ("sov", "sentiment", "earned", "spikes"):
        result = CliRunner().invoke(
            main, [command, "--since", "0001-01-01", "--interval", "hour", "-c", str(limited)]
        )
        assert result.exit_code == 2, result.output
        assert "1,464 hourly periods" in result.stderr and "limit of 1,000" in result.stderr
        assert "Traceback" not in result.output


def test_a_rule_nested_200_deep_in_the_project_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "listener.toml"
    rule = "(" * 200 + "acme" + ")" * 200
    path.write_text(f'[[brands]]\nname = "Acme"\nquery = "{rule}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["sov", "-c", str(path)])
    assert result.exit_code == 2, result.output
    assert "at most 40 levels of nested parentheses" in result.stderr
    assert "Traceback" not in result.output


def test_one_default_range_and_a_hint_when_it_is_empty(setup: Setup) -> None:
    # Every analytics command covers the last 30 days unless --since says otherwise; the
    # sample is from 2024, so the default range is empty and the hint names what is stored.
    commands = [["sov"], ["sentiment"], ["earned"], ["trending"], ["spikes"], ["top", "authors"],
                ["top", "domains"], ["top", "sources"], ["top", "entities"]]  # fmt: skip
    for command in commands:
        result = CliRunner().invoke(main, [*command, "-c", str(setup.path)])
        assert result.exit_code == 0, result.output
        assert "the stored mentions run from 2024-03-01 to 2024-04-30" in result.stderr, command
        assert "try --since 2024-03-01" in result.stderr
    empty = ok(CliRunner().invoke(main, ["trending", "-c", str(setup.path)]))
    assert "no phrases stored" not in empty and "no key phrases in range" in empty
    for command in ("sov", "sentiment", "earned", "top", "trending", "spikes", "report"):
        help_text = ok(CliRunner().invoke(main, [command, "--help"] if command != "top" else
                                          ["top", "authors", "--help"]))  # fmt: skip
        assert "[default: 30d]" in " ".join(help_text.split()), command
    # With data in the range, no hint.
    result = CliRunner().invoke(main, ["sov", "--since", "all", "-c", str(setup.path)])
    assert result.exit_code == 0 and "stored mentions run" not in result.stderr
