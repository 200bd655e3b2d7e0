"""End to end: project file → Scrapy crawl of a local replay server → enrichment → engine → CLI.

Every crawl runs in a subprocess (the Twisted reactor cannot restart in one
process), exactly as a user runs it, against the session's real engine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from elasticsearch import Elasticsearch

from listener.cli.demo import write_demo_project
from listener.mention import Mention
from listener.sdk.replay import ReplayServer, Route, load_site
from listener.store.engine import EmbeddedEngine, free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = Path(str(files("listener.demo_site")))

# What the bundled demo site holds (see listener/demo_site/): 66 items across
# three feeds and the Hacker News pages, 5 of them returned twice by the HN
# API (once per matching term), 3 mentioning no brand, one only "acme anvil".
DEMO_FOUND = 66
DEMO_DUPLICATES = 5
DEMO_UNMATCHED = 3
DEMO_INDEXED = DEMO_FOUND - DEMO_DUPLICATES - DEMO_UNMATCHED


def listener_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``listener ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "listener.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def demo_server() -> Iterator[ReplayServer]:
    with ReplayServer(load_site(DEMO_SITE)) as server:
        yield server


def environment(home: Path, es_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(LISTENER_HOME=str(home), LISTENER_ES_URL=es_url, PYTHONUNBUFFERED="1")
    return env


def demo_project(folder: Path, server_url: str, prefix: str, extra: str = "") -> Path:
    path = write_demo_project(folder, server_url)
    text = path.read_text(encoding="utf-8")
    settings = f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[crawl]\nautothrottle = false\n'
    path.write_text(settings + extra + "\n" + text, encoding="utf-8")
    return path


def stored(client: Elasticsearch, prefix: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
    result = client.options(ignore_status=404).search(
        index=f"{prefix}-mentions", size=1000, query={"match_all": {}}
    )
    return [hit["_source"] for hit in result.body.get("hits", {}).get("hits", [])]


def test_crawl_enrich_index_and_query_the_demo_site(
    engine: Any,
    session_client: Elasticsearch,
    demo_server: ReplayServer,
    prefix: str,
    tmp_path: Path,
) -> None:
    project = demo_project(tmp_path / "project", demo_server.url, prefix)
    env = environment(tmp_path / "home", engine.url)

    crawl = listener_cli("crawl", "-c", str(project), env=env)
    assert crawl.returncode == 0, crawl.stderr
    assert f"{DEMO_FOUND} mentions found" in crawl.stderr
    assert f"{DEMO_INDEXED} indexed" in crawl.stderr
    assert f"no_brand_match {DEMO_UNMATCHED}" in crawl.stderr
    assert "hackernews: healthy" in crawl.stderr

    documents = stored(session_client, prefix)
    assert len(documents) == DEMO_INDEXED
    mentions = [Mention.model_validate(document) for document in documents]
    assert all(m.brand_names for m in mentions)
    assert all(m.published_at.tzinfo is not None for m in mentions)
    # Very short posts may stay undetected (language None); nearly all get one.
    assert sum(1 for m in mentions if m.language) >= 0.9 * len(mentions)
    assert {m.language for m in mentions} >= {"en", "fr", "de"}
    assert not any("acme anvil" in m.text.lower() and m.brand_names == ["Acme"] for m in mentions)
    # Robots.txt was asked for and the User-Agent is listener's.
    assert demo_server.requests_to("/robots.txt")
    agent = demo_server.requests_to("/technews/feed.xml")[0].headers.get("User-Agent", "")
    assert agent.startswith("listener/")
    # Per-brand sentiment differs inside one comment.
    [mixed] = [
        m
        for m in mentions
        if m.source == "hackernews" and "support was great, unlike Globex" in m.text
    ]
    per_brand = {b.brand: b.sentiment.label for b in mixed.brands if b.sentiment}
    assert per_brand == {"Acme": "positive", "Globex": "negative"}

    # A second crawl updates the same documents instead of duplicating them.
    again = listener_cli("crawl", "-c", str(project), env=env)
    assert again.returncode == 0, again.stderr
    assert len(stored(session_client, prefix)) == DEMO_INDEXED

    # Share of voice agrees with counts taken straight from the index.
    sov = run_cli("sov", "-c", str(project), "--since", "all", "--format", "json", env=env)
    assert sov.returncode == 0, sov.stderr
    rows = json.loads(sov.stdout)
    counted = {
        brand: sum(1 for d in documents if brand in d["brand_names"])
        for brand in ("Acme", "Globex", "Initech")
    }
    assert {row["brand"]: row["mentions"] for row in rows} == counted
    total = sum(counted.values())
    for row in rows:
        assert row["share"] == pytest.approx(counted[row["brand"]] / total, abs=1e-6)

    weekly = run_cli(
        "sov",
        "-c",
        str(project),
        "--since",
        "all",
        "--interval",
        "week",
        "--format",
        "csv",
        env=env,
    )
    assert weekly.returncode == 0, weekly.stderr
    weekly_rows = list(csv.DictReader(io.StringIO(weekly.stdout)))
    assert {r["brand"] for r in weekly_rows} == {"Acme", "Globex", "Initech"}
    assert sum(int(r["mentions"]) for r in weekly_rows) == total

    # Search: newest first, every hit contains the word, filters apply.
    search = run_cli(
        "search", "-c", str(project), "support", "--format", "json", "--limit", "50", env=env
    )
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    expected = [d for d in documents if "support" in f"{d['title'] or ''} {d['text']}".lower()]
    assert len(hits) == len(expected) > 0
    dates = [hit["published_at"] for hit in hits]
    assert dates == sorted(dates, reverse=True)
    negative = run_cli(
        "search", "-c", str(project), "support", "--brand", "globex", "--sentiment", "neg",
        "--format", "json", env=env,
    )  # fmt: skip
    assert negative.returncode == 0, negative.stderr
    for hit in json.loads(negative.stdout):
        assert "Globex" in hit["brand_names"]
        assert hit["sentiment"]["label"] == "negative"

    table = run_cli("search", "-c", str(project), "support", env=env)
    assert table.returncode == 0 and "http" in table.stdout

    # Export: every stored mention with all its fields.
    export = run_cli("export", "-c", str(project), "--format", "ndjson", env=env)
    assert export.returncode == 0, export.stderr
    exported = [Mention.model_validate_json(line) for line in export.stdout.splitlines()]
    assert sorted(m.id for m in exported) == sorted(m.id for m in mentions)
    as_csv = run_cli("export", "-c", str(project), "--format", "csv", env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(csv_rows) == DEMO_INDEXED
    assert set(csv_rows[0]) == set(Mention.model_fields)
    # Run summaries are kept for source health.
    assert len(list((tmp_path / "home" / "runs").glob("*.json"))) == 2


def news_feed(count: int) -> bytes:
    """An English RSS feed of ``count`` items, each mentioning Acme."""
    items = "".join(
        f"<item><title>Acme update {n}</title><link>https://news.example/news/{n}</link>"
        f"<description>Acme shipped update {n} to customers in region {n % 7}.</description>"
        f"<pubDate>Tue, 10 Nov 2026 {n % 24:02d}:00:00 GMT</pubDate></item>"
        for n in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
        f"<link>https://news.example/</link>{items}</channel></rss>"
    ).encode()


def test_scrapy_crawl_command_works_from_the_project_root(
    engine: Any, session_client: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    """``scrapy crawl mentions`` with the project in a setting (a small feed: the demo
    site's French and German cost seconds of enrichment and test nothing about the command).
    """
    routes = [
        Route("/news.xml", body=news_feed(5), headers={"Content-Type": "application/rss+xml"})
    ]
    with ReplayServer(routes) as server:
        project = tmp_path / "listener.toml"
        project.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[crawl]\nautothrottle = false\n\n'
            '[[brands]]\nname = "Acme"\n\n'
            f'[[sources]]\nplugin = "rss"\nname = "news"\nfeeds = ["{server.url}/news.xml"]\n',
            encoding="utf-8",
        )
        env = environment(tmp_path / "home", engine.url)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "scrapy",
                "crawl",
                "mentions",
                "-s",
                f"LISTENER_CONFIG={project}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(d["url"] for d in stored(session_client, prefix)) == [
        f"https://news.example/news/{n}" for n in range(5)
    ]


MALFORMED_FEED = b"<?xml version='1.0'?><rss><channel><item><title>Acme"
HTML_ERROR_PAGE = b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
GOOD_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Good news</title><link>https://good.example/</link>
<item><title>Acme opens a new office</title><link>https://good.example/acme-office</link>
<description>Acme opened a bright new office in Lyon and customers love it.</description>
<pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_broken_sources_are_reported_and_the_crawl_goes_on(
    engine: Any, session_client: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    routes = [
        Route("/good.xml", body=GOOD_FEED, headers={"Content-Type": "application/rss+xml"}),
        Route("/broken.xml", body=MALFORMED_FEED, headers={"Content-Type": "application/xml"}),
        Route(
            "/api/v1/search_by_date",
            body=HTML_ERROR_PAGE,
            headers={"Content-Type": "text/html; charset=utf-8"},
        ),
    ]
    with ReplayServer(routes) as server:
        project = tmp_path / "listener.toml"
        project.write_text(
            f"""
[elasticsearch]
index_prefix = "{prefix}"
[crawl]
autothrottle = false
[[brands]]
name = "Acme"
[[sources]]
plugin = "rss"
name = "good"
feeds = ["{server.url}/good.xml"]
[[sources]]
plugin = "rss"
name = "broken"
feeds = ["{server.url}/broken.xml"]
[[sources]]
plugin = "hackernews"
base_url = "{server.url}"
""",
            encoding="utf-8",
        )
        result = listener_cli("crawl", "-c", str(project), env=environment(tmp_path, engine.url))
    # Exit 4: some sources failed, the others were crawled (a cron job can tell).
    assert result.returncode == 4, result.stderr
    assert "error: 2 of 3 sources failed (broken, hackernews)" in result.stderr
    assert "good: healthy, 1 mentions, 1 indexed" in result.stderr
    assert "broken: broken, 0 mentions, 0 indexed" in result.stderr
    assert f"{server.url}/broken.xml" in result.stderr
    assert "hackernews: broken" in result.stderr
    assert "did not return JSON" in result.stderr
    [document] = stored(session_client, prefix)
    assert document["url"] == "https://good.example/acme-office"


def test_unknown_plugin_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "listener.toml"
    project.write_text('[[brands]]\nname = "Acme"\n[[sources]]\nplugin = "friendster"\n')
    result = listener_cli(
        "crawl", "-c", str(project), env=environment(tmp_path, "http://127.0.0.1:9")
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "sources[0] (friendster)" in result.stderr
    assert "unknown source plugin 'friendster'" in result.stderr


def test_invalid_project_file_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "listener.toml"
    project.write_text('[[brands]]\nname = "Acme"\nkeyword = ["acme"]\n')
    result = run_cli("sov", "-c", str(project), env=environment(tmp_path, "http://127.0.0.1:9"))
    assert result.returncode == 2
    assert f"error: {project}: brands[0] (Acme).keyword: unknown key" in result.stderr


def test_bad_time_option_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "listener.toml"
    project.write_text('[[brands]]\nname = "Acme"\n')
    result = run_cli(
        "sov",
        "-c",
        str(project),
        "--since",
        "last tuesday",
        env=environment(tmp_path, "http://127.0.0.1:9"),
    )
    assert result.returncode == 2
    assert "--since" in result.stderr and "last tuesday" in result.stderr


class _GateHandler(BaseHTTPRequestHandler):
    """Serves one feed; the first request stops the engine (an outage mid-crawl)."""

    server: _GateServer

    def do_GET(self) -> None:
        with self.server.lock:
            if not self.server.tripped:
                self.server.tripped = True
                self.server.engine.stop()
        body = GOOD_FEED if self.path.endswith(".xml") else b"User-agent: *\nDisallow:\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _GateServer(ThreadingHTTPServer):
    def __init__(self, engine: EmbeddedEngine) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        self.engine = engine
        self.tripped = False
        self.lock = threading.Lock()


#: Mentions in the feed crawled beside the gate (the demo site's 66 items, French and
#: German included, cost several seconds of enrichment CPU per crawl and tested nothing more).
OUTAGE_ITEMS = 20


def test_engine_down_mid_crawl_loses_nothing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("outage-engine")
    outage_engine = EmbeddedEngine(data).start()
    gate = _GateServer(outage_engine)
    thread = threading.Thread(target=gate.serve_forever, daemon=True)
    thread.start()
    routes = [
        Route(
            "/news.xml",
            body=news_feed(OUTAGE_ITEMS),
            headers={"Content-Type": "application/rss+xml"},
        )
    ]
    try:
        with ReplayServer(routes) as site:
            project = tmp_path / "project" / "listener.toml"
            project.parent.mkdir()
            project.write_text(
                '[elasticsearch]\nindex_prefix = "outage"\n\n[crawl]\nautothrottle = false\n'
                '\n[[brands]]\nname = "Acme"\n\n'
                f'[[sources]]\nplugin = "rss"\nname = "news"\nfeeds = ["{site.url}/news.xml"]\n\n'
                '[[sources]]\nplugin = "rss"\nname = "gate"\n'
                f'feeds = ["http://127.0.0.1:{gate.server_address[1]}/gate.xml"]\n',
                encoding="utf-8",
            )
            home = tmp_path / "home"
            first = listener_cli(
                "crawl", "-c", str(project), env=environment(home, outage_engine.url)
            )
            assert gate.tripped
            assert first.returncode == 3, first.stderr
            assert "spooled" in first.stderr
            spooled = list((home / "spool").glob("*.ndjson"))
            assert spooled
            spooled_count = sum(len(p.read_text().splitlines()) for p in spooled)
            assert spooled_count == OUTAGE_ITEMS + 1

            restarted = EmbeddedEngine(data, port=free_port()).start()
            try:
                gate.tripped = True  # the outage is over
                gate.engine = restarted
                second = listener_cli(
                    "crawl", "-c", str(project), env=environment(home, restarted.url)
                )
                assert second.returncode == 0, second.stderr
                assert f"{spooled_count} mentions from earlier runs' spool indexed" in second.stderr
                assert not list((home / "spool").glob("*.ndjson"))
                client = Elasticsearch(restarted.url)
                assert len(stored(client, "outage")) == OUTAGE_ITEMS + 1
                client.close()
            finally:
                restarted.stop()
    finally:
        gate.shutdown()
        gate.server_close()
        outage_engine.stop()


@pytest.mark.slow
def test_demo_command_prints_share_of_voice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    result = listener_cli("demo", "--home", str(tmp_path / "demo"), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Share of voice" in result.stdout
    for brand in ("Acme", "Globex", "Initech"):
        assert brand in result.stdout
    assert (tmp_path / "demo" / "listener.toml").is_file()
    assert (tmp_path / "demo" / ".listener" / "engine").is_dir()
