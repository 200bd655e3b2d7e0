"""What outlives one crawl: checkpoints and seen ids, run records, the schedule.

One machine (the default): files under ``LISTENER_HOME`` (``state/``,
``runs/``, ``service/schedule.json``). Clustered (``[cluster] redis_url`` or
``LISTENER_REDIS_URL``): Redis, so that every worker, the scheduler and
``listener sources status`` on any machine see the same fleet. Only one crawl
of an entry runs at a time (the job lease), so an entry's checkpoint has one
writer and is stored as one JSON value.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from listener.config import ProjectConfig
from listener.errors import ConfigError, ListenerError
from listener.sdk.source import Checkpoint, CheckpointStore, FileCheckpointStore

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

#: Run records kept per source entry.
RUNS_KEPT = 200
#: Run files kept under LISTENER_HOME/runs (oldest removed first).
RUN_FILES_KEPT = 2000


class RedisUnavailable(ListenerError):
    """Redis (``[cluster] redis_url``) cannot be reached."""


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    from listener.store.engine import redact_url

    return redact_url(url)


def redis_client(url: str) -> redis.Redis:
    """A connected redis-py client (strings in and out); a clear error when Redis is down."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, health_check_interval=15
        )
        client.ping()
    except ValueError as error:
        raise ConfigError(
            f"[cluster] redis_url / LISTENER_REDIS_URL {redact(url)!r} is not a Redis URL "
            f"({error}); use redis://HOST:6379/0"
        ) from None
    except redis.RedisError as error:
        raise RedisUnavailable(
            f"cannot reach Redis at {redact(url)} ({error}); start redis-server or fix "
            "[cluster] redis_url / LISTENER_REDIS_URL"
        ) from None
    return client


def namespace(project: ProjectConfig) -> str:
    """The prefix of this project's Redis keys: ``listener:<namespace>:``."""
    name = project.cluster.namespace or project.elasticsearch.index_prefix
    return f"listener:{name}:"


class StateStore(ABC):
    """Where the service keeps state between crawls (see the module docstring)."""

    clustered = False

    @abstractmethod
    def checkpoint_store(self, label: str) -> CheckpointStore:
        """Where the checkpoint (and seen ids) of source entry ``label`` lives."""

    def checkpoint(self, label: str) -> Checkpoint:
        """The checkpoint of source entry ``label``, loaded."""
        return Checkpoint(store=self.checkpoint_store(label))

    @abstractmethod
    def record_run(self, payload: dict[str, Any]) -> str:
        """Keep one crawl's run record (its per-source health); returns where it went."""

    @abstractmethod
    def load_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """Run records, oldest first, holding up to ``limit`` runs of each source entry."""

    @abstractmethod
    def schedule(self) -> dict[str, dict[str, Any]]:
        """The schedule per entry: next_due, last_started, last_finished, last_result, running."""

    @abstractmethod
    def update_schedule(self, label: str, **fields: Any) -> None:
        """Set some schedule fields of one entry (None removes a field)."""


class LocalState(StateStore):
    """Files under ``LISTENER_HOME``: the single-machine default."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def checkpoint_store(self, label: str) -> CheckpointStore:
        return FileCheckpointStore(self.home / "state" / f"{label}.json")

    def record_run(self, payload: dict[str, Any]) -> str:
        runs = self.home / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        try:
            finished = datetime.fromisoformat(str(payload.get("finished_at")))
        except ValueError:
            finished = datetime.now(UTC)
        path = runs / f"{finished.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"
        if path.exists():  # two crawls finishing in the same microsecond
            path = path.with_name(f"{path.stem}-{os.getpid()}.json")
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        temporary.replace(path)
        for old in sorted(runs.glob("*.json"))[:-RUN_FILES_KEPT]:
            old.unlink(missing_ok=True)
        return str(path)

    def load_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        files = sorted((self.home / "runs").glob("*.json"), reverse=True)[:RUN_FILES_KEPT]
        kept: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        for path in files:
            try:
                run = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            sources = {
                label: entry
                for label, entry in (run.get("sources") or {}).items()
                if counts.get(label, 0) < limit
            }
            if not sources:
                continue
            for label in sources:
                counts[label] = counts.get(label, 0) + 1
            kept.append({**run, "sources": sources})
        kept.reverse()
        return kept

    @property
    def schedule_path(self) -> Path:
        return self.home / "service" / "schedule.json"

    def schedule(self) -> dict[str, dict[str, Any]]:
        try:
            loaded = json.loads(self.schedule_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def update_schedule(self, label: str, **fields: Any) -> None:
        schedule = self.schedule()
        entry = schedule.setdefault(label, {})
        for key, value in fields.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        self.schedule_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.schedule_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(schedule, indent=2), encoding="utf-8")
        temporary.replace(self.schedule_path)


class RedisCheckpointStore:
    """A checkpoint as one JSON value in Redis."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    def load(self) -> dict[str, Any] | None:
        raw = self.client.get(self.key)
        if raw is None:
            return None
        loaded = json.loads(str(raw))
        return loaded if isinstance(loaded, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        self.client.set(self.key, json.dumps(data))


class RedisState(StateStore):
    """Redis keys under ``listener:<namespace>:``: shared by every machine of the fleet."""

    clustered = True

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        """A key of this project: ``listener:<namespace>:part:part``."""
        return self.prefix + ":".join(parts)

    def checkpoint_store(self, label: str) -> CheckpointStore:
        return RedisCheckpointStore(self.client, self.key("checkpoint", label))

    def record_run(self, payload: dict[str, Any]) -> str:
        pipe = self.client.pipeline(transaction=True)
        for label, entry in (payload.get("sources") or {}).items():
            record = {**payload, "sources": {label: entry}}
            pipe.lpush(self.key("runs", label), json.dumps(record))
            pipe.ltrim(self.key("runs", label), 0, RUNS_KEPT - 1)
            pipe.sadd(self.key("sources"), label)
        pipe.incr(self.key("runs-recorded"))
        pipe.execute()
        return self.key("runs")

    def load_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        labels = cast(set[str], self.client.smembers(self.key("sources")))
        for label in sorted(labels):
            for raw in cast(list[str], self.client.lrange(self.key("runs", label), 0, limit - 1)):
                try:
                    runs.append(json.loads(raw))
                except ValueError:
                    continue
        runs.sort(key=lambda run: str(run.get("finished_at", "")))
        return runs

    def runs_recorded(self) -> int:
        """How many runs were recorded so far (a counter that only grows)."""
        return int(cast(str | None, self.client.get(self.key("runs-recorded"))) or 0)

    def runs_to_alert_on(self) -> int:
        """How many runs are recorded, if the alert rules have not yet been run after them; else 0.

        The mark (``alerts-seen``, set by :meth:`alerted_on` once an evaluation ended) lives
        in Redis, so each recorded run makes the leading scheduler evaluate the rules once:
        not once per scheduler, and not never when a standby takes over, the scheduler
        restarts, or the leader dies between noticing the runs and judging them.
        """
        recorded = self.runs_recorded()
        seen = int(cast(str | None, self.client.get(self.key("alerts-seen"))) or 0)
        return recorded if recorded > 0 and seen != recorded else 0

    def alerted_on(self, recorded: int) -> None:
        """Note that the alert rules were run after the first ``recorded`` runs."""
        self.client.set(self.key("alerts-seen"), recorded)

    def schedule(self) -> dict[str, dict[str, Any]]:
        """The schedule; ``running`` only while the worker that set it still holds the lease.

        A worker killed mid-crawl (SIGKILL, a second Ctrl-C, a lost machine)
        cannot clear its mark; its lease key expires after ``[cluster] lease``
        instead, and from then on the entry is no longer shown as running.
        """
        labels = sorted(cast(set[str], self.client.smembers(self.key("scheduled"))))
        pipe = self.client.pipeline(transaction=False)
        for label in labels:
            pipe.hgetall(self.key("schedule", label))
            pipe.get(self.key("lease", label))
        answers = pipe.execute()
        schedule: dict[str, dict[str, Any]] = {}
        for label, raw, holder in zip(labels, answers[::2], answers[1::2], strict=True):
            entry = {k: json.loads(v) for k, v in cast(dict[str, str], raw).items()}
            if entry.get("running") is not None and entry["running"] != holder:
                del entry["running"]  # its worker died: the lease it held has expired
            schedule[label] = entry
        return schedule

    def update_schedule(self, label: str, **fields: Any) -> None:
        key = self.key("schedule", label)
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(self.key("scheduled"), label)
        gone = [name for name, value in fields.items() if value is None]
        present: dict[str | bytes, str] = {
            name: json.dumps(value) for name, value in fields.items() if value is not None
        }
        if present:
            pipe.hset(key, mapping=cast(Any, present))
        if gone:
            pipe.hdel(key, *gone)
        pipe.execute()


def state_for(project: ProjectConfig) -> StateStore:
    """Redis when the project is clustered, else files under ``LISTENER_HOME``."""
    url = project.cluster.redis_url
    if url:
        return RedisState(redis_client(url), namespace(project))
    return LocalState(project.home)


def checkpoint_for(project: ProjectConfig, label: str) -> Checkpoint:
    """The checkpoint of one source entry, from wherever the project keeps state."""
    return state_for(project).checkpoint(label)
