"""Faults on the way to the index: every mention ends indexed, spooled or dead-lettered.

Each test crawls a generated feed with a known number of mentions through the
real CLI and Scrapy engine, against the real embedded engine or, where a fault
cannot be made with it, a stand-in HTTP server answering like a broken
Elasticsearch or a proxy in front of one.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from listener.mention import Mention, canonicalize_url, mention_id
from listener.sdk.replay import Hold, ReplayServer, Route
from listener.source import Checkpoint
from listener.store.engine import EmbeddedEngine
from listener.testing import replay_crawl

START = datetime(2026, 11, 1, tzinfo=UTC)
INFO = json.dumps(
    {"name": "stand-in", "cluster_name": "x", "version": {"number": "8.15.3"}, "tagline": "x"}
).encode()


def feed(count: int, *, first: int = 0, title: str = "Generated") -> bytes:
    """An RSS feed of ``count`` items, each mentioning Acme with its own text and date."""
    items = []
    for number in range(first, first + count):
        published = format_datetime(START + timedelta(minutes=number), usegmt=True)
        items.append(
            f"<item><title>Acme note {number}</title>"
            f"<link>https://news.example/acme/{number}</link>"
            f"<description>Acme shipped release {number} with change {number * 7919 % 10007} "
            f"for customer group {number % 97}.</description>"
            f"<pubDate>{published}</pubDate></item>"
        )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://news.example/</link>{''.join(items)}</channel></rss>"
    ).encode()


def feed_route(path: str, body: bytes, hold: Hold | None = None) -> Route:
    return Route(path, body=body, headers={"Content-Type": "application/rss+xml"}, hold=hold)


def write_project(folder: Path, feeds: list[str], prefix: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "listener.toml"
    listed = ", ".join(json.dumps(url) for url in feeds)
    path.write_text(
        f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[crawl]\nautothrottle = false\n'
        f"retry_times = 0\n{extra}\n"
        f'[[brands]]\nname = "Acme"\n\n[[sources]]\nplugin = "rss"\nname = "gen"\n'
        f"feeds = [{listed}]\n",
        encoding="utf-8",
    )
    return path


def environment(home: Path, es_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(LISTENER_HOME=str(home), PYTHONUNBUFFERED="1")
    if es_url:
        env["LISTENER_ES_URL"] = es_url
    return env


def crawl(project: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listener.cli", "crawl", "-c", str(project), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ndjson_lines(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines() if line]


def count(url: str, prefix: str) -> int:
    client = Elasticsearch(url)
    try:
        client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
        response = client.options(ignore_status=404).count(index=f"{prefix}-mentions")
        return int(response.body.get("count", 0))
    finally:
        client.close()


class StandIn:
    """An "Elasticsearch" that misbehaves in one way, forwarding the rest to a real engine.

    ``empty404``: every request but ``GET /`` is answered 404 with an empty body.
    ``html_bulk``: bulk requests get 200 with an HTML page (a proxy's login or error page).
    """

    def __init__(self, mode: str, upstream: str | None = None) -> None:
        self.mode, self.upstream = mode, upstream
        stand_in = self
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if stand_in.mode == "empty404":
                    if self.path == "/":  # passes the start-up check, then fails every write
                        self._answer(200, INFO, "application/json")
                    else:
                        self._answer(404, b"", "text/plain")
                    return
                if self.path.split("?")[0].endswith("/_bulk"):
                    page = b"<html><body><h1>Please sign in</h1></body></html>"
                    self._answer(200, page, "text/html; charset=utf-8")
                    return
                assert stand_in.upstream is not None
                request = urllib.request.Request(
                    stand_in.upstream + self.path, data=body, method=self.command
                )
                for name in ("Content-Type", "Accept"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with direct.open(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                        kind = response.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                    kind = error.headers.get("Content-Type", "application/json")
                self._answer(status, payload, kind)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["empty404", "html_bulk"])
def test_a_broken_cluster_gets_every_mention_spooled_then_indexed(
    mode: str, engine: Any, prefix: str, tmp_path: Path
) -> None:
    routes = [feed_route("/feed.xml", feed(150))]
    with ReplayServer(routes) as site, StandIn(mode, engine.url) as es:
        project = write_project(tmp_path / "p", [f"{site.url}/feed.xml"], prefix)
        home = tmp_path / "home"
        first = crawl(project, environment(home, es.url))
    assert first.returncode == 3, first.stderr
    assert "150 mentions wait in the spool" in first.stderr
    spooled = ndjson_lines(sorted((home / "spool").glob("*.ndjson")))
    assert len({document["id"] for document in spooled}) == 150
    assert not (home / "dead-letter.ndjson").exists()

    with ReplayServer([feed_route("/feed.xml", feed(150))]) as site:
        project = write_project(tmp_path / "p", [f"{site.url}/feed.xml"], prefix)
        second = crawl(project, environment(home, engine.url))
    assert second.returncode == 0, second.stderr
    assert "150 mentions from earlier runs' spool indexed" in second.stderr
    assert count(engine.url, prefix) == 150


def test_an_unwritable_spool_sends_mentions_to_the_dead_letter_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "spool").write_text("not a directory")  # mkdir fails, even for root
    with ReplayServer([feed_route("/feed.xml", feed(40))]) as site, StandIn("empty404") as es:
        project = write_project(tmp_path / "p", [f"{site.url}/feed.xml"], "unwritable")
        result = crawl(project, environment(home, es.url))
    assert result.returncode == 5, result.stderr
    assert "40 mentions could be neither indexed nor spooled" in result.stderr
    letters = ndjson_lines([home / "dead-letter.ndjson"])
    assert len({letter["id"] for letter in letters}) == 40
    assert all("spooling failed too" in letter["reason"] for letter in letters)


def test_mentions_saved_nowhere_keep_the_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "spool").write_text("not a directory")
    (home / "dead-letter.ndjson").mkdir()  # cannot be opened for appending
    with ReplayServer([feed_route("/feed.xml", feed(40))]) as site, StandIn("empty404") as es:
        project = write_project(tmp_path / "p", [f"{site.url}/feed.xml"], "nowhere")
        result = crawl(project, environment(home, es.url))
    assert result.returncode == 5, result.stderr
    assert "40 mentions could not be saved anywhere" in result.stderr
    assert "checkpoints were not advanced" in result.stderr
    assert not (home / "state" / "gen.json").exists()


#: The engine-kill test: the first item of feed 5 is in an acknowledged batch before the kill.
KILL_AFTER = 75


def _wait_for_acknowledged(home: Path, crawler: subprocess.Popen[str]) -> int:
    """Poll the crawl's engine until it acknowledged generated item KILL_AFTER; return its pid.

    A real-time GET sees a write as soon as it is acknowledged, before the
    engine saves it (a count or search would only see it after a refresh).
    """
    wanted = mention_id("rss", canonicalize_url(f"https://news.example/acme/{KILL_AFTER}"))
    index = f"killed-mentions-{START + timedelta(minutes=KILL_AFTER):%Y.%m}"
    state_file = home / "engine" / "listener-engine.json"
    deadline = time.monotonic() + 600
    while crawler.poll() is None and time.monotonic() < deadline:
        if state_file.is_file():
            state = json.loads(state_file.read_text())
            client = Elasticsearch(state["url"], request_timeout=5)
            try:
                if client.options(ignore_status=404).get(index=index, id=wanted).body.get("found"):
                    return int(state["pid"])
            except Exception:  # the engine is starting
                pass
            finally:
                client.close()
        time.sleep(0.02)  # fault injection: watch a crawl running in another process
    raise AssertionError(f"item {KILL_AFTER} was not indexed (crawl exit {crawler.poll()})")


@pytest.mark.slow
def test_engine_killed_mid_crawl_loses_no_acknowledged_mention(tmp_path: Path) -> None:
    """300 mentions in 20 feeds; the embedded engine is SIGKILLed once item 75 is indexed.

    Feeds 10 to 19 are held until the kill, so it lands mid-crawl, with several
    acknowledged bulk batches of 16 before it and 150 mentions fetched after it, and no
    download delays are needed to spread the crawl out (they cost 10 s of wall time per
    run). Feeds are asked for in order (Scrapy's start requests are first in, first out;
    one request at a time). 2,000 and 600 mentions proved nothing more and cost more
    enrichment CPU.
    """
    home = tmp_path / "home"
    held = Hold()
    routes = [
        feed_route(f"/feed{n}.xml", feed(15, first=n * 15), hold=held if n >= 10 else None)
        for n in range(20)
    ]
    with ReplayServer(routes) as site:
        project = write_project(
            tmp_path / "p",
            [f"{site.url}/feed{n}.xml" for n in range(20)],
            "killed",
            extra="concurrent_requests = 1\nbatch_size = 16\ndownload_timeout = 600\n",
        )
        env = environment(home, None)  # the project's own embedded engine, in home/engine
        command = [sys.executable, "-m", "listener.cli", "crawl", "-c", str(project)]
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as crawler:
            os.kill(_wait_for_acknowledged(home, crawler), signal.SIGKILL)
            held.release()
            _, stderr = crawler.communicate(timeout=600)
        assert crawler.returncode == 3, stderr
        assert held.arrived.is_set()  # the held feeds were fetched, after the kill
        again = crawl(project, env)  # a new engine on the same data; replays the spool
        assert again.returncode == 0, again.stderr
    with EmbeddedEngine(home / "engine") as restarted:
        assert count(restarted.url, "killed") == 300


def dated_feed(*items: tuple[int, str]) -> bytes:
    """RSS whose items (number, pubDate as written) mention Acme."""
    body = "".join(
        f"<item><title>Acme dated {number}</title><link>https://news.example/d/{number}</link>"
        f"<description>Acme item {number}.</description><pubDate>{date}</pubDate></item>"
        for number, date in items
    )
    channel = f"<channel><title>D</title>{body}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def test_a_far_future_date_never_moves_the_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    options = {"feeds": ["{base_url}/feed.xml"]}
    november = "Sun, 01 Nov 2026 10:00:00 GMT"
    first = replay_crawl(
        "rss",
        options,
        [feed_route("/feed.xml", dated_feed((1, november), (2, "9999-12-31T00:00:00Z")))],
        home=home,
    )
    assert len(first.mentions) == 2  # the source yields it; the index pipeline drops it
    [newest] = json.loads((home / "state" / "rss.json").read_text())["newest"].values()
    assert newest.startswith("2026-11-01")


def test_a_stored_future_checkpoint_is_ignored() -> None:
    checkpoint = Checkpoint()
    checkpoint.previous = {"feed": "9999-12-31T00:00:00+00:00"}
    checkpoint.values = dict(checkpoint.previous)
    assert checkpoint.newest("feed") is None  # a feed stuck by an earlier run recovers
    checkpoint.advance("feed", START)
    assert checkpoint.values["feed"] == START.isoformat()
    checkpoint.advance("feed", datetime.now(UTC) + timedelta(days=30))
    assert checkpoint.values["feed"] == START.isoformat()


def test_an_impossible_date_is_rejected_not_rolled_over() -> None:
    result = replay_crawl(
        "rss",
        {"feeds": ["{base_url}/feed.xml"]},
        [
            feed_route(
                "/feed.xml",
                dated_feed((1, "2026-13-45T10:00:00Z"), (2, "2026-11-02T10:00:00Z")),
            )
        ],
    )
    assert [m.url for m in result.mentions] == ["https://news.example/d/2"]


def test_future_dated_mentions_are_dropped_with_a_counted_reason(
    engine: Any, prefix: str, tmp_path: Path
) -> None:
    body = dated_feed((1, "Sun, 01 Nov 2026 10:00:00 GMT"), (2, "9999-12-31T00:00:00Z"))
    with ReplayServer([feed_route("/feed.xml", body)]) as site:
        project = write_project(tmp_path / "p", [f"{site.url}/feed.xml"], prefix)
        result = crawl(project, environment(tmp_path / "home", engine.url))
    assert result.returncode == 0, result.stderr
    assert "future_date 1" in result.stderr
    assert count(engine.url, prefix) == 1


ESCAPES = "\x1b[31mAcme\x1b[0m rocks \x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\x9b\x00"


def test_control_characters_are_stripped_at_ingestion() -> None:
    item = {
        "id": "1",
        "url": "https://news.example/esc",
        "title": ESCAPES,
        "content_text": f"line one\r\nline\ttwo {ESCAPES}",
        "date_published": "2026-11-02T10:00:00Z",
        "authors": [{"name": "\x1b[1mEve\x1b[0m"}],
    }
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]})
    route = Route("/feed.json", body=body, headers={"Content-Type": "application/feed+json"})
    result = replay_crawl("rss", {"feeds": ["{base_url}/feed.json"]}, [route])
    [mention] = result.mentions
    assert mention.title == "Acme rocks click"
    assert mention.text == "line one\nline two Acme rocks click"  # the feed reader tidies tabs
    assert mention.author.name == "Eve"


def test_the_mention_model_keeps_newlines_and_tabs_only() -> None:
    mention = Mention.create(
        source="test",
        source_kind="blog",
        url="https://blog.example/1",
        text=f"a\tb\r\nc\rd {ESCAPES}",
        title=ESCAPES,
        published_at=START,
    )
    assert mention.text == "a\tb\nc\nd Acme rocks click"
    assert mention.title == "Acme rocks click"


def test_an_entry_size_limit_stops_a_large_feed() -> None:
    big = feed(6000)  # about 1.6 MB
    assert len(big) > 1024 * 1024
    routes = [feed_route("/big.xml", big), feed_route("/small.xml", feed(3))]
    result = replay_crawl("rss", {"feeds": ["{base_url}/big.xml"], "max_download_mb": 1}, routes)
    assert result.mentions == []
    assert result.source["fetch_errors"] == 1
    small = replay_crawl("rss", {"feeds": ["{base_url}/small.xml"], "max_download_mb": 1}, routes)
    assert len(small.mentions) == 3


def test_a_gzip_bomb_is_stopped_by_the_size_limit() -> None:
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # 256 MB in ~250 KB
    route = Route(
        "/feed.xml",
        body=bomb,
        headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
    )
    result = replay_crawl(
        "rss", {"feeds": ["{base_url}/feed.xml"]}, [route], crawl={"max_download_mb": 8}
    )
    assert result.mentions == []
    assert result.source["fetch_errors"] == 1
    assert "exceeded DOWNLOAD_MAXSIZE" in (result.source["last_error"] or "")


def test_http_errors_pause_a_source_and_its_queued_requests_are_not_fetched() -> None:
    feeds = [f"{{base_url}}/down{n}.xml" for n in range(12)]
    routes = [Route(f"/down{n}.xml", status=500, body=b"oops") for n in range(12)]
    crawl_settings = {
        "max_consecutive_failures": 3,
        "retry_times": 1,
        "concurrent_requests": 1,
        "concurrent_requests_per_domain": 1,
    }
    options = {"feeds": feeds, "concurrency": 1}
    result = replay_crawl("rss", options, routes, crawl=crawl_settings)
    fetched = [r for r in result.requests if r.path.startswith("/down")]
    assert result.source["paused"] is True
    # Retries queue behind first attempts: 12 first tries, then the retries of down0..down2
    # fail and pause the source (one more was already being fetched); 8 retries are dropped.
    assert len(fetched) <= 16  # was 24: every URL tried twice
    assert result.source["fetch_errors"] <= 4


def test_a_redirect_loop_is_the_sources_error() -> None:
    routes = [
        Route("/a.xml", status=302, headers={"Location": "{base_url}/b.xml"}),
        Route("/b.xml", status=302, headers={"Location": "{base_url}/a.xml"}),
    ]
    result = replay_crawl("rss", {"feeds": ["{base_url}/a.xml"]}, routes)
    assert result.source["health"] == "broken"
    assert result.source["fetch_errors"] == 1
    assert "redirect loop" in result.source["last_error"]
    assert "/a.xml -> " in result.source["last_error"]


@pytest.mark.parametrize("allowed", [False, True])
def test_a_redirect_to_another_private_address_is_refused(allowed: bool) -> None:
    routes = [Route("/feed.xml", status=302, headers={"Location": "http://127.0.0.2:9/x.xml"})]
    options = {"feeds": ["{base_url}/feed.xml"], "allow_private_network": allowed}
    result = replay_crawl("rss", options, routes)
    last_error = result.source["last_error"] or ""
    assert result.source["fetch_errors"] == 1
    assert ("refused a redirect" in last_error) is not allowed


# -- stopping: a crawl asked to stop (SIGTERM, Ctrl-C, a web cancel) stops soon, loses nothing
# What was enriched is indexed; what was taken from a source but not kept is handed back to
# the source's checkpoint, so the next run fetches it again. The summary, the run file and
# the exit code say what happened.


def generated_id(number: int) -> str:
    return mention_id("rss", canonicalize_url(f"https://news.example/acme/{number}"))


def stored_ids(url: str, prefix: str) -> set[str]:
    client = Elasticsearch(url)
    try:
        client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
        body = client.search(index=f"{prefix}-mentions", size=1000, source_includes=["id"]).body
        return {hit["_id"] for hit in body["hits"]["hits"]}
    finally:
        client.close()


def skipped_next_time(home: Path, feed_url: str) -> set[int]:
    """Item numbers the saved checkpoint makes the next run skip (``Source.is_new``)."""
    checkpoint = Checkpoint(home / "state" / "gen.json")
    newest = checkpoint.newest(feed_url)
    skipped = set()
    for number in range(120):
        published = START + timedelta(minutes=number)
        if newest is None or published > newest:
            continue
        if feed_url not in checkpoint.previous_seen or checkpoint.seen(
            feed_url, generated_id(number)
        ):
            skipped.add(number)
    return skipped


@pytest.mark.slow
def test_sigterm_stops_the_crawl_and_every_mention_is_kept_or_fetched_again(
    engine: Any, prefix: str, tmp_path: Path
) -> None:
    total = 120
    home = tmp_path / "home"
    with ReplayServer([feed_route("/feed.xml", feed(total))]) as site:
        url = f"{site.url}/feed.xml"
        project = write_project(
            tmp_path / "p", [url], prefix, extra="batch_size = 8\nenrich_processes = 1\n"
        )
        command = [sys.executable, "-m", "listener.cli", "crawl", "-c", str(project)]
        with subprocess.Popen(
            command, env=environment(home, engine.url), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        ) as crawler:  # fmt: skip
            # The first batch is in: stop it, as systemd or a web cancel does.
            while crawler.poll() is None and count(engine.url, prefix) < 8:
                time.sleep(0.05)  # fault injection: watch a crawl running in another process
            crawler.send_signal(signal.SIGTERM)
            _, err = crawler.communicate(timeout=120)
        assert crawler.returncode == 6, err
        indexed = stored_ids(engine.url, prefix)
        assert 8 <= len(indexed) < total
        # The summary and the run file report what the index holds, and the real duration.
        assert f"{len(indexed)} indexed" in err
        assert "stopped before it finished" in err
        assert "left for the next run" in err
        run = json.loads(sorted((home / "runs").glob("*.json"))[-1].read_text())
        assert run["indexed"] == len(indexed)
        assert run["finish_reason"] == "shutdown"
        assert run["elapsed_seconds"] > 0
        # Nothing lost: every item is indexed or spooled, or the checkpoint lets it be fetched.
        spooled = {d["id"] for d in ndjson_lines(sorted((home / "spool").glob("*.ndjson")))}
        kept = indexed | spooled
        skipped = skipped_next_time(home, url)
        lost = [n for n in range(total) if generated_id(n) not in kept and n in skipped]
        assert lost == []
        assert run["left_for_next_run"] >= 1

        again = subprocess.run(
            command, env=environment(home, engine.url), capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
    assert stored_ids(engine.url, prefix) == {generated_id(n) for n in range(total)}


def test_a_checkpoint_gives_back_what_a_stopped_crawl_did_not_keep(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    before = Checkpoint(path)
    before.advance("feed", START, "old")
    before.save()

    checkpoint = Checkpoint(path)
    for number in range(1, 6):
        checkpoint.advance("feed", START + timedelta(minutes=number), f"item{number}")
    checkpoint.advance("other", START, "elsewhere")
    # Items 3 and 5 never reached the index: only items older than 3 stay covered.
    assert checkpoint.hand_back(["item5", "item3"]) == set()
    checkpoint.save()

    after = Checkpoint(path)
    assert after.newest("feed") == START + timedelta(minutes=2)
    assert after.seen("feed", "item2")
    assert not after.seen("feed", "item3")
    assert not after.seen("feed", "item5")
    assert after.newest("other") == START
    # An item no advance() named cannot be placed: the caller must not save.
    assert after.hand_back(["never-advanced"]) == {"never-advanced"}


def test_handing_back_everything_keeps_the_previous_run_s_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = Checkpoint(path)
    first.advance("feed", START + timedelta(minutes=10), "a")
    first.save()
    checkpoint = Checkpoint(path)
    checkpoint.advance("feed", START + timedelta(minutes=20), "b")
    checkpoint.advance("fresh", START, "c")
    checkpoint.hand_back(["b", "c"])
    assert checkpoint.to_dict()["newest"] == {"feed": (START + timedelta(minutes=10)).isoformat()}


def test_a_cancelled_web_crawl_reports_what_its_summary_counted() -> None:
    from listener.crawl.progress import CrawlSummary, SourceSummary
    from listener.web.crawls import CrawlJob

    summary = CrawlSummary(
        found=1304,
        indexed=1152,
        left_for_next_run=152,
        finish_reason="shutdown",
        sources={"gen": SourceSummary("gen", mentions=1304, indexed=1152, last_success="now")},
        elapsed=41.5,
    )
    job = CrawlJob(id="0" * 12, command=[], since=None)
    job.feed("[   30s] pages 1  found 1280  indexed 704  dropped 0  errors 0\n")
    job.cancelled = True
    for line in summary.lines():
        job.feed(line + "\n")
    job.finish(6)
    view = job.view()
    assert view.state == "cancelled" and view.exit_code == 6
    assert (view.progress.found, view.progress.indexed) == (1304, 1152)
    assert view.progress.left_for_next_run == 152
    assert view.summary[0].startswith("crawl finished in 41.5 s")
    assert "152 mentions taken but not kept are left for the next run" in view.summary[1]
