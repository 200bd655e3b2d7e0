"""The Redis job queue and shared state, against a real redis-server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from listener.config import parse_project
from listener.service.jobs import JobQueue
from listener.service.state import LocalState, RedisState, state_for
from listener.source import Checkpoint

LEASE = timedelta(milliseconds=300)


def _queue(url: str, name: str, lease: timedelta = LEASE) -> JobQueue:
    return JobQueue(
        redis.Redis.from_url(url, decode_responses=True), "listener:t:", lease=lease, consumer=name
    )


def test_an_entry_is_queued_once_until_its_job_is_finished(redis_url: str) -> None:
    scheduler = _queue(redis_url, "scheduler")
    first = scheduler.enqueue_once("feeds")
    assert first is not None
    assert scheduler.enqueue_once("feeds") is None  # still queued
    assert scheduler.enqueue_once("news") is not None  # another entry is independent
    worker = _queue(redis_url, "w1")
    job = worker.claim(block=timedelta(milliseconds=10))
    assert job is not None and job.label == "feeds" and not job.reclaimed
    assert worker.acquire(job)
    assert scheduler.enqueue_once("feeds") is None  # running
    worker.finish(job)
    assert worker.lease_holder("feeds") is None
    assert scheduler.enqueue_once("feeds") is not None


def test_a_dead_workers_job_is_taken_over_after_the_lease_and_only_then(redis_url: str) -> None:
    _queue(redis_url, "scheduler").enqueue_once("feeds")
    dead = _queue(redis_url, "dead")
    job = dead.claim(block=timedelta(milliseconds=10))
    assert job is not None and dead.acquire(job)
    other = _queue(redis_url, "alive")
    # Within the lease: nothing to take, and the entry's lease is held.
    assert other.claim(block=timedelta(milliseconds=10)) is None
    assert not other.acquire(job)
    time.sleep(LEASE.total_seconds() * 1.5)  # the dead worker renews nothing
    taken = other.claim(block=timedelta(milliseconds=10))
    assert taken is not None and taken.id == job.id and taken.reclaimed
    assert other.acquire(taken)
    # The dead worker, had it only been paused, finds its lease gone and must stop.
    assert not dead.renew(job)
    other.finish(taken)
    assert other.claim(block=timedelta(milliseconds=10)) is None


def test_a_renewed_lease_keeps_a_long_job_with_its_worker(redis_url: str) -> None:
    _queue(redis_url, "scheduler").enqueue_once("feeds")
    busy = _queue(redis_url, "busy")
    job = busy.claim(block=timedelta(milliseconds=10))
    assert job is not None and busy.acquire(job)
    other = _queue(redis_url, "other")
    for _ in range(6):  # twice the lease in all, renewed every quarter
        time.sleep(LEASE.total_seconds() / 4)
        assert busy.renew(job)
        assert other.claim(block=timedelta(milliseconds=1)) is None
    busy.finish(job)


def test_a_requeued_job_goes_to_the_next_worker_at_once(redis_url: str) -> None:
    _queue(redis_url, "scheduler").enqueue_once("feeds")
    stopping = _queue(redis_url, "stopping", lease=timedelta(hours=1))
    job = stopping.claim(block=timedelta(milliseconds=10))
    assert job is not None and stopping.acquire(job)
    new_id = stopping.requeue(job)
    assert new_id != job.id
    nxt = _queue(redis_url, "next", lease=timedelta(hours=1)).claim(
        block=timedelta(milliseconds=10)
    )
    assert nxt is not None and nxt.id == new_id and nxt.label == "feeds"
    assert _queue(redis_url, "scheduler").enqueue_once("feeds") is None


def test_one_scheduler_leads(redis_url: str) -> None:
    a, b = _queue(redis_url, "a"), _queue(redis_url, "b")
    assert a.lead("a", LEASE)
    assert not b.lead("b", LEASE)
    assert a.lead("a", LEASE)
    time.sleep(LEASE.total_seconds() * 1.5)
    assert b.lead("b", LEASE)
    assert not a.lead("a", LEASE)


def _project(tmp_path: Path, redis_url: str | None) -> object:
    data = {
        "brands": [{"name": "Acme"}],
        "sources": [{"plugin": "rss", "feeds": ["http://x.test/f"], "every": "1s"}],
        "cluster": {"redis_url": redis_url} if redis_url else {},
    }
    return parse_project(data, tmp_path / "listener.toml")


@pytest.mark.parametrize("clustered", [False, True])
def test_checkpoints_runs_and_schedule_round_trip(
    tmp_path: Path, redis_url: str, clustered: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    project = _project(tmp_path, redis_url if clustered else None)
    store = state_for(project)  # type: ignore[arg-type]
    assert isinstance(store, RedisState if clustered else LocalState)
    checkpoint = store.checkpoint("rss")
    assert checkpoint.newest("k") is None
    when = datetime(2026, 1, 2, tzinfo=UTC)
    checkpoint.advance("k", when, "id-1")
    checkpoint.save()
    again = store.checkpoint("rss")
    assert again.newest("k") == when
    assert again.seen("k", "id-1") and not again.seen("k", "id-2")
    for number in range(3):
        finished = (when + timedelta(minutes=number)).isoformat()
        store.record_run({"finished_at": finished, "sources": {"rss": {"health": "healthy"}}})
    runs = store.load_runs(2)
    assert [run["finished_at"] for run in runs] == [
        (when + timedelta(minutes=n)).isoformat() for n in (1, 2)
    ]
    store.update_schedule("rss", next_due="2026-01-02T00:00:00+00:00", running="w1")
    store.update_schedule("rss", running=None, last_result="ok")
    assert store.schedule() == {
        "rss": {"next_due": "2026-01-02T00:00:00+00:00", "last_result": "ok"}
    }
    if clustered:  # nothing went to local files
        assert not (tmp_path / "home").exists()


def test_seen_ids_are_bounded_and_keep_what_is_still_seen(tmp_path: Path) -> None:
    from listener.sdk import source as source_module

    path = tmp_path / "c.json"
    first = Checkpoint(path)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    limit = source_module.SEEN_PER_KEY
    for number in range(limit + 10):
        first.advance("k", when, f"id-{number}")
    first.save()
    second = Checkpoint(path)
    assert not second.seen("k", "id-0")  # the oldest fell out
    assert second.seen("k", "id-10")  # touched: now the most recent
    second.advance("k", when, "new")
    second.save()
    third = Checkpoint(path)
    assert third.seen("k", "id-10") and third.seen("k", "new")
    assert not third.seen("k", "id-11")  # pushed out by the two above


def test_entries_are_due_at_their_own_interval_on_an_injected_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from listener.service.scheduler import Scheduler

    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    data = {
        "crawl": {"every": "10m"},
        "brands": [{"name": "Acme"}],
        "sources": [
            {"plugin": "rss", "name": "fast", "feeds": ["http://x.test/a"], "every": "90s"},
            {"plugin": "rss", "name": "slow", "feeds": ["http://x.test/b"]},
        ],
    }
    project = parse_project(data, tmp_path / "listener.toml")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    scheduler = Scheduler(project, clock=lambda: now)
    assert scheduler.intervals == {"fast": timedelta(seconds=90), "slow": timedelta(minutes=10)}
    assert scheduler.due(now) == ["fast", "slow"]  # never crawled: due at once
    for label, every in scheduler.intervals.items():
        scheduler.state.update_schedule(label, next_due=(now + every).isoformat())
    assert scheduler.due(now + timedelta(seconds=89)) == []
    assert scheduler.due(now + timedelta(seconds=90)) == ["fast"]
    assert scheduler.due(now + timedelta(minutes=11)) == ["fast", "slow"]  # most overdue first
    # A crawl left "running" by a killed scheduler is due again when one starts.
    scheduler.state.update_schedule("slow", running="pid 1")
    scheduler.recover()
    assert scheduler.due(now) == ["slow"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"every": "soon"}, "sources[0] (rss).every: cannot read the duration 'soon'"),
        ({"every": "0s"}, "sources[0] (rss).every: must be longer than zero"),
    ],
)
def test_a_bad_interval_names_the_file_and_the_key(
    tmp_path: Path, entry: dict[str, str], message: str
) -> None:
    from listener.errors import ConfigError

    data = {
        "brands": [{"name": "Acme"}],
        "sources": [{"plugin": "rss", "feeds": ["http://x.test/a"], **entry}],
    }
    with pytest.raises(ConfigError) as error:
        parse_project(data, tmp_path / "listener.toml")
    assert f"listener.toml: {message}" in str(error.value)


def test_two_entries_with_one_name_cannot_be_scheduled(tmp_path: Path) -> None:
    from listener.errors import ConfigError
    from listener.service.scheduler import intervals

    data = {
        "brands": [{"name": "Acme"}],
        "sources": [{"plugin": "rss", "feeds": [f"http://x.test/{n}"]} for n in "ab"],
    }
    with pytest.raises(ConfigError, match="both called 'rss'; give one a distinct name"):
        intervals(parse_project(data, tmp_path / "listener.toml"))


def test_is_new_keeps_late_unseen_items_and_trusts_older_checkpoints(tmp_path: Path) -> None:
    from listener.config import BrandConfig
    from listener.mention import Mention
    from listener.sdk.plugin_manager import get_registry

    rss = get_registry().source("rss")
    source = rss(rss.Options(plugin="rss", feeds=["http://x.test/f"]), [BrandConfig(name="Acme")])
    when = datetime(2026, 1, 10, tzinfo=UTC)

    def item(name: str, at: datetime) -> Mention:
        return Mention.create(
            source="rss", source_kind="news", url=f"https://x.test/{name}", text="Acme",
            published_at=at,
        )  # fmt: skip

    old, late = item("old", when), item("late", when - timedelta(days=3))
    newer = item("newer", when + timedelta(hours=1))
    assert source.is_new("k", old)  # no checkpoint yet
    path = tmp_path / "checkpoint.json"
    earlier = Checkpoint(path)
    earlier.advance("k", when, old.id)
    earlier.save()
    source.checkpoint = Checkpoint(path)
    assert source.is_new("k", newer)
    assert not source.is_new("k", old)  # an earlier run had it
    assert source.is_new("k", late)  # dated before the checkpoint, but never seen
    # A checkpoint written before ids were kept: its date alone decides, as it did.
    legacy = tmp_path / "legacy.json"
    legacy.write_text('{"newest": {"k": "2026-01-10T00:00:00+00:00"}}', encoding="utf-8")
    source.checkpoint = Checkpoint(legacy)
    assert not source.is_new("k", late) and source.is_new("k", newer)
    # A backfill (--since) goes by date only.
    source.since = when - timedelta(days=1)
    assert not source.is_new("k", late) and source.is_new("k", old)
