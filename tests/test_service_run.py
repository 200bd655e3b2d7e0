"""``listener run`` on one machine, and late (back-dated) items, against a replay site.

Crawls run through the real Scrapy engine, enrichment and the session's
engine; ``listener run`` runs as a user runs it, in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from listener.config import load_project
from listener.sdk.replay import ReplayServer, Route
from listener.service.testing import (
    rss_feed,
    service_env,
    start_listener,
    stop_listener,
    stored_urls,
    wait_for,
)
from listener.store.engine import free_port
from listener.testing import replay_crawl, write_project
from listener.web.app import create_app
from listener.web.server import BackgroundServer

START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _items(first: int, count: int, *, hours_back: int = 0) -> list[tuple[str, str, datetime]]:
    return [
        (
            f"https://news.example/post/{number}",
            f"Post {number}: Acme shipped something people talk about.",
            START + timedelta(minutes=number) - timedelta(hours=hours_back),
        )
        for number in range(first, first + count)
    ]


def test_a_back_dated_item_with_a_new_id_is_not_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    route = Route("/feed.xml", body=rss_feed(_items(0, 3)))
    with ReplayServer([route]) as server:
        options = {"feeds": ["{base_url}/feed.xml"]}
        first = replay_crawl("rss", options, [], home=home, server=server)
        assert len(first.mentions) == 3
        # The feed gains an entry dated before everything the first run saw (a new GUID).
        late = _items(100, 1, hours_back=5)
        route.body = rss_feed(_items(0, 3) + late)
        second = replay_crawl("rss", options, [], home=home, server=server)
        assert [m.url for m in second.mentions] == [late[0][0]]
        # Once seen, it is not yielded again; nothing else is either.
        third = replay_crawl("rss", options, [], home=home, server=server)
        assert third.mentions == []


# -- listener run ---------------------------------------------------------------------------


def test_listener_run_picks_up_new_items_and_resumes_after_sigterm(
    engine: Any,
    session_client: Elasticsearch,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed = Route("/feed.xml", body=rss_feed(_items(0, 5)))
    broken = Route("/broken.xml", status=500, body=b"down")
    with ReplayServer([feed, broken]) as server:
        project = write_project(
            tmp_path / "listener.toml",
            [
                # The broken source fails once and is not due again during the test: crawled
                # every second too, it kept a second crawl process busy for the whole test.
                {"plugin": "rss", "name": n, "feeds": [f"{server.url}/{n}.xml"], "every": every}
                for n, every in (("feed", "1s"), ("broken", "1h"))
            ],
            crawl={"retry_times": 0},
        )
        text = project.read_text(encoding="utf-8")
        project.write_text(f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n{text}', "utf-8")
        env = service_env(tmp_path / "home", engine.url)
        log = tmp_path / "run.log"
        truth = [url for url, _, _ in _items(0, 5)]

        service = start_listener(["run", "-c", str(project)], env, log)
        try:
            wait_for(lambda: len(stored_urls(session_client, prefix)) >= 5, "the first crawl")
            # New items arrive within an interval (plus a crawl), a failing source aside.
            feed.body = rss_feed(_items(0, 8))
            truth = [url for url, _, _ in _items(0, 8)]
            wait_for(lambda: len(stored_urls(session_client, prefix)) >= 8, "the new items")
        finally:
            code = stop_listener(service, log)
        assert code == 0, log.read_text()[-3000:]
        assert "broken" in log.read_text()

        # While it is down, more items are published; a restart catches up, no gap.
        feed.body = rss_feed(_items(0, 12))
        truth = [url for url, _, _ in _items(0, 12)]
        port = free_port()
        service = start_listener(["run", "-c", str(project), "--serve", "--port", str(port)],
                                 env, log)  # fmt: skip
        try:
            wait_for(lambda: len(stored_urls(session_client, prefix)) >= 12, "the catch-up")
            wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/healthz"), "the dashboard")
            status = subprocess.run(
                [sys.executable, "-m", "listener.cli", "sources", "status", "-c", str(project),
                 "--format", "json"],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        finally:
            code = stop_listener(service, log)
        assert code == 0, log.read_text()[-3000:]
        assert not _answers(f"http://127.0.0.1:{port}/api/healthz")  # served and stopped with it
    urls = stored_urls(session_client, prefix)
    assert sorted(urls) == sorted(truth)  # nothing lost, nothing twice
    assert status.returncode == 0, status.stderr
    rows = {row["source"]: row for row in json.loads(status.stdout)}
    assert rows["feed"]["status"] == "healthy" and rows["feed"]["next_run"]
    assert rows["feed"]["every_seconds"] == 1.0
    assert rows["broken"]["status"] == "broken"
    assert "500" in (rows["broken"]["last_error"] or "")

    # The API shows the same schedule.
    monkeypatch.setenv("LISTENER_HOME", env["LISTENER_HOME"])
    monkeypatch.setenv("LISTENER_ES_URL", engine.url)
    with (
        BackgroundServer(create_app(load_project(project))) as web,
        httpx.Client(base_url=web.url, timeout=60) as api,
    ):
        answer = api.get("/api/sources/schedule")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scheduled"] and not body["clustered"]
    by_source = {row["source"]: row for row in body["sources"]}
    assert set(by_source) == {"feed", "broken"}
    assert by_source["feed"]["every_seconds"] == 1.0
    # The last crawls may have been cut short by the SIGTERM ("interrupted").
    assert by_source["feed"]["last_result"] and by_source["broken"]["last_result"]
    assert by_source["feed"]["next_run"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serving_beyond_loopback_without_a_token_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    project = write_project(
        tmp_path / "listener.toml", [{"plugin": "rss", "feeds": ["http://127.0.0.1:9/feed.xml"]}]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env["LISTENER_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "listener.cli", "run", "-c", str(project), "--serve",
         "--host", "0.0.0.0"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "LISTENER_API_TOKEN" in result.stderr
    assert not (tmp_path / "home" / "service").exists()


def test_listener_run_runs_the_alert_rules_after_a_crawl(
    engine: Any, session_client: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    recent = [
        (f"https://news.example/burst/{n}", f"Burst {n}: everyone talks about Acme.",
         now - timedelta(minutes=1 + n))
        for n in range(6)
    ]  # fmt: skip
    # A quiet baseline first: before the first stored mention, zeros mean "not crawled yet".
    recent += [
        (f"https://news.example/quiet/{n}", "A quiet day for Acme.", now - timedelta(hours=n))
        for n in (6, 7)
    ]
    hook = Route("/hook", method="POST", body=b"ok")
    with ReplayServer([Route("/feed.xml", body=rss_feed(recent)), hook]) as server:
        project = write_project(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "name": "burst", "feeds": [f"{server.url}/feed.xml"]}],
        )
        text = project.read_text(encoding="utf-8")
        project.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n{text}\n'
            "[[alerts.rules]]\n"
            'name = "burst"\ninterval = "hour"\nwindow = 2\nk = 1.0\nmin_count = 3\n'
            "lookback = 2\n\n"
            f'[[alerts.webhooks]]\nurl = "{server.url}/hook"\nformat = "json"\n',
            "utf-8",
        )
        log = tmp_path / "run.log"
        service = start_listener(
            ["run", "-c", str(project)], service_env(tmp_path / "home", engine.url), log
        )
        try:
            wait_for(lambda: bool(server.requests_to("/hook")), "the alert webhook")
        finally:
            assert stop_listener(service, log) == 0, log.read_text()[-3000:]
    [posted] = server.requests_to("/hook")
    assert "burst" in posted.body.decode()


def test_listener_run_keeps_one_embedded_engine_up_for_all_its_crawls(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ReplayServer([Route("/feed.xml", body=rss_feed(_items(0, 4)))]) as server:
        project = write_project(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "name": "feed", "feeds": [f"{server.url}/feed.xml"],
              "every": "1s"}],
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        env["LISTENER_HOME"] = str(home)  # no LISTENER_ES_URL: the embedded engine
        log = tmp_path / "run.log"
        state = home / "engine" / "listener-engine.json"
        service = start_listener(["run", "-c", str(project)], env, log)
        engines = set()
        try:
            # The engine the first crawl found still serves the next (each crawl is a child
            # process costing about 3 s of CPU to start: a third one showed nothing more).
            for crawls in (1, 2):
                wait_for(
                    lambda n=crawls: len(list((home / "runs").glob("*.json"))) >= n,
                    f"{crawls} crawl(s)",
                )
                engines.add(json.loads(state.read_text(encoding="utf-8"))["pid"])
        finally:
            assert stop_listener(service, log) == 0, log.read_text()[-3000:]
    assert len(engines) == 1  # started once, used by every crawl
    assert not state.exists()  # and stopped cleanly with the service
    runs = sorted((home / "runs").glob("*.json"))
    first = json.loads(runs[0].read_text(encoding="utf-8"))
    assert first["indexed"] == 4
