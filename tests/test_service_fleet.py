"""The clustered service's shared state: alerts once per crawl across schedulers, honest marks.

Schedulers and a worker run in this process (two schedulers stand for two
machines: one leads, one stands by) against a real ``redis-server``; the
worker's crawls are real child processes crawling a replay site into the
session's engine.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from elasticsearch import Elasticsearch

from listener.analytics import alerts
from listener.analytics.alerts import run_alerts
from listener.config import ProjectConfig, load_project
from listener.crawl.health import schedule_status, status_report
from listener.errors import ListenerError
from listener.sdk.replay import ReplayServer, Route
from listener.service.child import RunningCrawl
from listener.service.scheduler import Scheduler
from listener.service.state import LocalState, RedisState, namespace, redis_client
from listener.service.testing import (
    TimedReplayServer,
    rss_feed,
    service_env,
    start_listener,
    wait_for,
)
from listener.service.worker import Worker
from listener.testing import write_project

START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _local_project(path: Path) -> ProjectConfig:
    write_project(path, [{"plugin": "rss", "name": "feed", "feeds": ["http://127.0.0.1:9/x"]}])
    return load_project(path)


def _clustered_project(
    path: Path, sources: list[dict[str, Any]], prefix: str, extra: str = ""
) -> ProjectConfig:
    write_project(path, sources, crawl={"enrich_processes": 1}, delays=False)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[cluster]\nlease = "2s"\npoll = "0.2s"\n\n'
        f"{text}\n{extra}",
        encoding="utf-8",
    )
    return load_project(path)


def _crawl_one_job(worker: Worker) -> str:
    job = worker.queue.claim(block=timedelta(seconds=2))
    assert job is not None, "no job was queued"
    worker.run_job(job)
    return job.label


def test_an_alert_rule_fires_once_per_crawl_on_the_leading_scheduler_only(
    engine: Any,
    session_client: Elasticsearch,
    prefix: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    items = [
        (f"https://news.example/burst/{n}", f"Burst {n}: everyone talks about Acme.",
         now - timedelta(minutes=1 + n))
        for n in range(6)
    ]  # fmt: skip
    # A quiet baseline first: before the first stored mention, zeros mean "not crawled yet".
    items += [
        (f"https://news.example/quiet/{n}", "A quiet day for Acme.", now - timedelta(hours=n))
        for n in (6, 7)
    ]
    hook = Route("/hook", method="POST", body=b"ok")
    with ReplayServer([Route("/feed.xml", body=rss_feed(items)), hook]) as server:
        monkeypatch.setenv("LISTENER_ES_URL", engine.url)
        monkeypatch.setenv("LISTENER_REDIS_URL", redis_url)
        monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "machine-a"))
        project = _clustered_project(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "name": "burst", "feeds": [f"{server.url}/feed.xml"],
              "every": "1h"}],
            prefix,
            "[[alerts.rules]]\n"
            'name = "burst"\ninterval = "hour"\nwindow = 2\nk = 1.0\nmin_count = 3\n'
            "lookback = 2\n\n"
            f'[[alerts.webhooks]]\nurl = "{server.url}/hook"\nformat = "json"\n',
        )  # fmt: skip
        leader, standby = (
            Scheduler(project, alerts_client=session_client, echo=lambda _: None) for _ in range(2)
        )
        worker = Worker(project, echo=lambda _: None)

        leader.tick()
        standby.tick()
        assert leader.leading and not standby.leading
        assert _crawl_one_job(worker) == "burst"
        for _ in range(3):  # several ticks after one crawl: still one evaluation
            leader.tick()
            standby.tick()
        wait_for(lambda: leader.alerts.runs == 1, "the leader's alert evaluation")
        [posted] = server.requests_to("/hook")
        assert "burst" in posted.body.decode()
        assert standby.alerts.runs == 0  # neither the standby nor the worker evaluated

        # The leader's machine is lost; the standby, on a machine with its own
        # LISTENER_HOME, takes over once the leader lease is gone: it does not
        # evaluate again for the crawl the old leader already handled...
        monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "machine-b"))
        worker.queue.client.delete(namespace(project) + "leader")
        for _ in range(3):
            standby.tick()
        assert standby.leading
        assert standby.alerts.runs == 0
        # ...and an evaluation there (as after its next crawl, or `listener alerts`)
        # finds the same spike already posted: the alert state is the fleet's (Redis).
        again = run_alerts(session_client, project)
        assert [alert.rule for alert, _ in again.suppressed] == ["burst"] and not again.sent
        assert len(server.requests_to("/hook")) == 1
    for machine in ("machine-a", "machine-b"):
        assert not (tmp_path / machine / "alerts" / "state.json").exists()


def test_a_killed_workers_running_mark_ends_with_its_lease(
    engine: Any,
    prefix: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [(f"https://slow.example/{n}", f"Item {n} about Acme.", START) for n in range(3)]
    # The feed is answered after a while: the crawl is in flight when its worker dies.
    server = TimedReplayServer([Route("/feed.xml", body=rss_feed(items))], delay=3.0)
    with server:
        monkeypatch.setenv("LISTENER_ES_URL", engine.url)
        monkeypatch.setenv("LISTENER_REDIS_URL", redis_url)
        monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "scheduler"))
        project = _clustered_project(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "name": "slow", "feeds": [f"{server.url}/feed.xml"]}],
            prefix,
        )
        scheduler = Scheduler(project, echo=lambda _: None)
        scheduler.tick()
        log = tmp_path / "worker.log"
        worker = start_listener(
            ["worker", "-c", str(project.path)],
            service_env(tmp_path / "worker", engine.url, LISTENER_REDIS_URL=redis_url),
            log,
        )
        try:
            wait_for(lambda: bool(server.timeline({"/feed.xml"})), "the worker's crawl")
            [row] = schedule_status(project)
            assert row.running is not None and f":{worker.pid}:" in row.running
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        prefix_key = namespace(project)
        # The dead worker's mark stays in Redis (nobody is left to clear it)...
        assert f":{worker.pid}:" in str(client.hget(f"{prefix_key}schedule:slow", "running"))
        # ...but once its lease has expired, nobody shows the entry as running.
        wait_for(lambda: not client.exists(f"{prefix_key}lease:slow"), "the lease to expire")
        [row] = schedule_status(project)
        assert row.running is None
        [status] = status_report(project)[0]
        assert status["running"] is None


def test_a_pid_mark_is_running_only_while_that_pid_is_a_crawl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LISTENER_REDIS_URL", raising=False)
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    project = _local_project(tmp_path / "listener.toml")
    state = LocalState(project.home)
    # A killed `listener run` left its mark, and the pid now belongs to another program
    # (this test process), or to nothing at all.
    state.update_schedule("feed", running=f"pid {os.getpid()}")
    [row] = schedule_status(project)
    assert row.running is None
    crawl = RunningCrawl(project.path, "feed", tmp_path / "tmp")  # type: ignore[arg-type]
    try:
        state.update_schedule("feed", running=f"pid {crawl.pid}")
        [row] = schedule_status(project)
        assert row.running == f"pid {crawl.pid}"
    finally:
        crawl.kill()
    [row] = schedule_status(project)
    assert row.running is None


def test_the_alert_lock_is_renewed_while_held_and_expires_soon_after_its_holder_dies(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "REDIS_LOCK_TTL", 0.6)
    monkeypatch.setenv("LISTENER_REDIS_URL", redis_url)
    project = _local_project(tmp_path / "listener.toml")
    key = namespace(project) + "alerts:lock"
    client = redis.Redis.from_url(redis_url)
    with alerts._shared_state(project, timeout=0.1):
        time.sleep(1.5)  # over twice the lock's time: only renewal keeps it
        assert client.pttl(key) > 0
        with (
            pytest.raises(ListenerError, match="holds the Redis lock"),
            alerts._shared_state(project, timeout=0.1),
        ):
            pass
    assert not client.exists(key), "released when the evaluation ends"
    # A holder that died (took the lock, never renews or releases it) holds runs off only
    # until the lock's time is up.
    assert client.set(key, "a dead scheduler", nx=True, px=600)
    with alerts._shared_state(project, timeout=5.0):
        assert client.get(key) != b"a dead scheduler"
    client.close()


def test_runs_are_left_to_alert_on_until_an_evaluation_has_ended(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader that noticed new runs and died before judging them leaves them to the next."""
    monkeypatch.setenv("LISTENER_REDIS_URL", redis_url)
    project = _local_project(tmp_path / "listener.toml")
    state = RedisState(redis_client(redis_url), namespace(project))
    assert state.runs_to_alert_on() == 0
    state.record_run({"sources": {"feed": {"indexed": 3}}})
    assert state.runs_to_alert_on() == 1
    assert state.runs_to_alert_on() == 1, "noticing them does not mark them judged"
    state.alerted_on(1)
    assert state.runs_to_alert_on() == 0
    state.record_run({"sources": {"feed": {"indexed": 1}}})
    assert state.runs_to_alert_on() == 2
