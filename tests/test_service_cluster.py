"""Scale-out end to end: a scheduler and two workers over a real Redis, one engine, kill -9.

Each process has its own ``LISTENER_HOME`` (as if on separate machines) and
is configured through ``LISTENER_REDIS_URL`` and ``LISTENER_ES_URL``. The
replay server answers slowly and logs when each request arrived and was
answered; every source entry is one feed, so one crawl makes one request to
it, and two requests for one entry in flight at once would mean two workers
crawled it at once.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from elasticsearch import Elasticsearch

from listener.config import load_project
from listener.sdk.replay import Route
from listener.service.state import RedisState, namespace
from listener.service.testing import (
    TimedReplayServer,
    rss_feed,
    service_env,
    start_listener,
    stop_listener,
    stored_urls,
    wait_for,
)
from listener.testing import write_project

START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


# One entry per worker: each crawl is a child process costing about 3 s of CPU to start, so
# every entry beyond the workers' two (plus the killed one's redo) only repeated that cost.
ENTRIES = 2
FEEDS_PER_ENTRY = 1
ITEMS_PER_FEED = 10


def _feed(entry: int, feed: int) -> tuple[str, list[tuple[str, str, Any]]]:
    items = [
        (
            f"https://site{entry}.example/{feed}/{number}",
            f"Entry {entry} feed {feed} item {number}: Acme is doing well.",
            START - timedelta(minutes=entry * 100 + feed * 10 + number),
        )
        for number in range(ITEMS_PER_FEED)
    ]
    return f"/e{entry}/f{feed}.xml", items


def test_two_workers_one_killed_mid_crawl_lose_nothing_and_never_overlap(
    engine: Any, session_client: Elasticsearch, prefix: str, redis_url: str, tmp_path: Path
) -> None:
    routes, truth, paths_of = [], [], {}
    for entry in range(ENTRIES):
        paths_of[f"entry{entry}"] = set()
        for feed in range(FEEDS_PER_ENTRY):
            path, items = _feed(entry, feed)
            routes.append(Route(path, body=rss_feed(items)))
            truth += [url for url, _, _ in items]
            paths_of[f"entry{entry}"].add(path)
    with TimedReplayServer(routes, delay=1.0) as server:
        project_path = write_project(
            tmp_path / "listener.toml",
            [
                {
                    "plugin": "rss",
                    "name": f"entry{entry}",
                    "feeds": [f"{server.url}{p}" for p in sorted(paths_of[f"entry{entry}"])],
                    "every": "1h",
                }
                for entry in range(ENTRIES)
            ],
        )
        text = project_path.read_text(encoding="utf-8")
        project_path.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n'
            '[cluster]\nlease = "2s"\npoll = "0.2s"\n\n' + text,
            encoding="utf-8",
        )

        def env(name: str) -> dict[str, str]:
            return service_env(tmp_path / name, engine.url, LISTENER_REDIS_URL=redis_url)

        project = load_project(project_path)
        project.cluster.redis_url = redis_url
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        state = RedisState(client, namespace(project))
        logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "w1", "w2")}
        w1 = start_listener(["worker", "-c", str(project_path)], env("w1"), logs["w1"])
        w2 = start_listener(["worker", "-c", str(project_path)], env("w2"), logs["w2"])
        scheduler = start_listener(
            ["run", "-c", str(project_path)], env("scheduler"), logs["scheduler"]
        )
        killed_label = ""
        try:
            # Wait until w1 holds a lease and its crawl has fetched at least one feed.
            def w1_mid_crawl() -> bool:
                nonlocal killed_label
                for label, paths in paths_of.items():
                    holder = client.get(f"{namespace(project)}lease:{label}") or ""
                    if f":{w1.pid}:" in holder and server.timeline(paths):
                        killed_label = label
                        return True
                return False

            wait_for(w1_mid_crawl, "worker 1 to be mid-crawl")
            w1.send_signal(signal.SIGKILL)
            w1.wait(timeout=30)
            killed_at = time.monotonic()

            def all_done() -> bool:
                schedule = state.schedule()
                return all(
                    schedule.get(label, {}).get("last_finished")
                    and not schedule.get(label, {}).get("running")
                    for label in paths_of
                )

            wait_for(all_done, "every entry to be crawled", timeout=240)
        finally:
            for process, name in ((scheduler, "scheduler"), (w2, "w2")):
                if process.poll() is None:
                    assert stop_listener(process, logs[name]) == 0, logs[name].read_text()[-3000:]
            if w1.poll() is None:
                w1.kill()
        urls = stored_urls(session_client, prefix)
        assert sorted(urls) == sorted(truth), "the index differs from the truth"
        assert len(urls) == len(set(urls)) == ENTRIES * FEEDS_PER_ENTRY * ITEMS_PER_FEED
        # The killed worker's entry was redone by the other, after the lease expired.
        redone = server.timeline(paths_of[killed_label])
        assert len(redone) >= 2
        assert redone[0].started < killed_at < redone[-1].started
        # No entry ever had two requests in flight: no two workers crawled it at once.
        for label, paths in paths_of.items():
            timeline = server.timeline(paths)
            for before, after in itertools.pairwise(timeline):
                assert after.started >= before.finished, f"{label} was crawled twice at once"
        worker_log = logs["w2"].read_text()
        assert "taking over job" in worker_log or killed_label in worker_log
        runs = state.load_runs(10)
        assert {label for run in runs for label in run["sources"]} == set(paths_of)
        # Nothing a second machine needs stayed in a worker's local files...
        for name in ("w1", "w2"):
            assert not (tmp_path / name / "state").exists()
            assert not (tmp_path / name / "runs").exists()
        # ...and any machine with the project file and Redis sees the whole fleet.
        status = subprocess.run(
            [sys.executable, "-m", "listener.cli", "sources", "status", "-c", str(project_path),
             "--format", "json"],
            env=env("elsewhere"), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        rows = {row["source"]: row for row in json.loads(status.stdout)}
        assert set(rows) == set(paths_of)
        assert all(row["status"] == "healthy" and row["next_run"] for row in rows.values())


def test_a_worker_stopped_with_sigterm_hands_its_job_back_at_once(
    engine: Any, session_client: Elasticsearch, prefix: str, redis_url: str, tmp_path: Path
) -> None:
    path, items = _feed(0, 0)
    truth = [url for url, _, _ in items]
    with TimedReplayServer([Route(path, body=rss_feed(items))], delay=3.0) as server:
        project_path = write_project(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "name": "only", "feeds": [server.url + path], "every": "1h"}],
        )
        text = project_path.read_text(encoding="utf-8")
        # A long lease: only the hand-back, not a lease expiry, can move the job on quickly.
        project_path.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n'
            '[cluster]\nlease = "10m"\npoll = "0.2s"\n\n' + text,
            encoding="utf-8",
        )
        project = load_project(project_path)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        state = RedisState(client, namespace(project))
        logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "a", "b")}

        def env(name: str) -> dict[str, str]:
            return service_env(tmp_path / name, engine.url, LISTENER_REDIS_URL=redis_url)

        first = start_listener(["worker", "-c", str(project_path)], env("a"), logs["a"])
        scheduler = start_listener(
            ["run", "-c", str(project_path)], env("scheduler"), logs["scheduler"]
        )
        second = None
        try:
            wait_for(lambda: bool(server.timeline({path})), "the first worker's request")
            second = start_listener(["worker", "-c", str(project_path)], env("b"), logs["b"])
            assert stop_listener(first, logs["a"]) == 0, logs["a"].read_text()[-3000:]
            assert "requeued" in logs["a"].read_text()
            wait_for(
                lambda: bool(state.schedule().get("only", {}).get("last_finished")),
                "the second worker to finish the job",
            )
        finally:
            for process, name in ((scheduler, "scheduler"), (second, "b"), (first, "a")):
                if process is not None and process.poll() is None:
                    stop_listener(process, logs[name])
    assert sorted(stored_urls(session_client, prefix)) == sorted(truth)
    assert f":{second.pid}:" in (state.schedule()["only"].get("last_worker") or "")


def test_a_worker_waits_out_a_redis_outage(engine: Any, tmp_path: Path) -> None:
    from listener.service.testing import RedisServer

    project_path = write_project(
        tmp_path / "listener.toml", [{"plugin": "rss", "feeds": ["http://127.0.0.1:9/f.xml"]}]
    )
    # A short poll as in the tests above: the worker retries every poll x 5 while Redis is
    # down (5 s with the default poll), so the test waited seconds for the reconnection.
    text = project_path.read_text(encoding="utf-8")
    project_path.write_text('[cluster]\npoll = "0.2s"\n\n' + text, encoding="utf-8")
    log = tmp_path / "worker.log"
    with RedisServer(tmp_path / "redis") as server:
        env = service_env(tmp_path / "w", engine.url, LISTENER_REDIS_URL=server.url)
        worker = start_listener(["worker", "-c", str(project_path)], env, log)
        try:
            wait_for(lambda: "waiting for jobs" in log.read_text(), "the worker to start")
            server.stop()
            wait_for(lambda: "Redis unreachable" in log.read_text(), "the worker to notice")
            assert worker.poll() is None  # still up, retrying
            server.start()  # the same port
            wait_for(lambda: "Redis is back" in log.read_text(), "the worker to reconnect")
        finally:
            code = stop_listener(worker, log)
    assert code == 0, log.read_text()[-3000:]
