"""``listener run``: crawl each source entry at its own interval, for as long as it runs.

One machine (no Redis): every due entry is crawled in a child process of its
own (Scrapy's reactor cannot restart; a failing source fails its own process
only), at most ``[crawl] parallel_crawls`` at once. Clustered (``[cluster]
redis_url``): the scheduler only enqueues due entries in Redis and ``listener
worker`` processes on any machine crawl them; several schedulers may run,
one leads (a lease in Redis) and the others wait to take over.

An entry is due ``every`` after its last crawl started (the entry's own
``every``, else ``[crawl] every``); a crawl still running when it is due again
is not started twice. After each crawl the alert rules run. SIGTERM or Ctrl-C
stops the running crawls gracefully (each finishes or spools its batch and
saves its checkpoint); an entry whose crawl was cut short is due again at
once, so a restart catches up from the checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from listener.config import ProjectConfig
from listener.errors import ConfigError
from listener.service.child import LOG_LEVEL_ENV, CrawlResult, RunningCrawl
from listener.service.jobs import JobQueue, consumer_name
from listener.service.state import RedisState, StateStore, namespace, redis_client, state_for

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
STOP_TIMEOUT = 120.0
#: How often `listener run` applies `[retention] days` (dropping whole months is cheap).
RETENTION_EVERY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def intervals(project: ProjectConfig) -> dict[str, timedelta]:
    """Every entry's label and interval; a clear error when two entries share a label."""
    found: dict[str, timedelta] = {}
    for index, entry in enumerate(project.sources):
        if entry.label in found:
            raise ConfigError(
                f"{project.path}: sources[{index}] ({entry.plugin}): two entries are both called "
                f'{entry.label!r}; give one a distinct name = "..." (the schedule, checkpoints '
                "and run records are kept per entry name)"
            )
        found[entry.label] = entry.every or project.crawl.every
    if not found:
        raise ConfigError(f"{project.path}: no [[sources]] configured; add at least one")
    return found


class Alerts:
    """Runs the alert rules in a background thread after crawls (one evaluation at a time)."""

    def __init__(self, project: ProjectConfig, client: Any) -> None:
        self.project = project
        self.client = client
        self.wanted = threading.Event()
        self.thread: threading.Thread | None = None
        self.runs = 0
        #: Clustered: the recorded-runs count the wanted evaluation covers, and what to tell
        #: once it has ended (so a leader that dies before that leaves it to the next one).
        self.covering = 0
        self._ended: Callable[[int], None] | None = None
        if project.alerts.rules and client is not None:
            self.thread = threading.Thread(target=self._loop, name="listener-alerts", daemon=True)
            self.thread.start()

    def trigger(self, covering: int = 0, ended: Callable[[int], None] | None = None) -> None:
        """Evaluate the rules (again) soon; ``ended(covering)`` is called when that has run."""
        if self.thread is not None:
            self.covering, self._ended = covering, ended
            self.wanted.set()

    def _loop(self) -> None:
        from listener.analytics.alerts import run_alerts

        while True:
            self.wanted.wait()
            self.wanted.clear()
            covering, ended = self.covering, self._ended
            try:
                run = run_alerts(self.client, self.project)
                self.runs += 1
                if run.sent:
                    log.warning("alerts: %d sent, %d suppressed", len(run.sent),
                                len(run.suppressed))  # fmt: skip
            except Exception as error:  # an alert failure must not stop the service
                log.error("alert rules failed: %s: %s", type(error).__name__, error)
            if ended is not None:
                try:
                    ended(covering)
                except Exception as error:  # the next leader evaluates once more
                    log.warning("alerts: could not note the evaluation: %s", error)


class Retention:
    """Applies ``[retention] days`` when the service starts and every ``RETENTION_EVERY`` after.

    Dropping whole monthly indices is cheap, so it runs inline on the scheduler's
    tick (on the leader only when clustered); a failure is logged and retried at the
    next pass, never stopping the service.
    """

    def __init__(self, project: ProjectConfig, client: Any) -> None:
        self.project = project
        self.client = client
        self.next_pass: datetime | None = None
        self.passes = 0

    @property
    def enabled(self) -> bool:
        return self.client is not None and self.project.retention.days is not None

    def maybe_apply(self, now: datetime) -> None:
        if not self.enabled or (self.next_pass is not None and now < self.next_pass):
            return
        from listener.store.lifecycle import apply_retention

        self.next_pass = now + RETENTION_EVERY
        try:
            result = apply_retention(self.client, self.project, now=now)
        except Exception as error:  # retention must not stop the service
            log.error("retention failed: %s: %s", type(error).__name__, error)
            return
        self.passes += 1
        if result.dropped:
            log.warning(
                "retention: dropped %d monthly index(es) older than %d days: %s",
                len(result.dropped), result.days, ", ".join(result.dropped),
            )  # fmt: skip


class Scheduler:
    """Decides what is due and runs it (one machine) or enqueues it (clustered)."""

    def __init__(
        self,
        project: ProjectConfig,
        *,
        clock: Clock = utc_now,
        state: StateStore | None = None,
        log_level: str = "WARNING",
        echo: Callable[[str], None] = log.warning,
        alerts_client: Any = None,
    ) -> None:
        if project.path is None:
            raise ConfigError("listener run needs a project file (-c listener.toml)")
        self.project = project
        self.intervals = intervals(project)
        self.clock = clock
        self.echo = echo
        self.env = {LOG_LEVEL_ENV: log_level}
        self.queue: JobQueue | None = None
        if project.cluster.redis_url:
            client = redis_client(project.cluster.redis_url)
            self.state: StateStore = state or RedisState(client, namespace(project))
            self.queue = JobQueue(client, namespace(project), lease=project.cluster.lease)
        else:
            self.state = state or state_for(project)
        self.name = consumer_name()
        self.leading = False
        self.running: dict[str, RunningCrawl] = {}
        self.alerts = Alerts(project, alerts_client)
        self.retention = Retention(project, alerts_client)
        self.results: list[CrawlResult] = []

    # -- what is due --------------------------------------------------------------------

    def next_due(self, schedule: dict[str, dict[str, Any]], label: str, now: datetime) -> datetime:
        value = schedule.get(label, {}).get("next_due")
        return datetime.fromisoformat(value) if value else now

    def due(self, now: datetime) -> list[str]:
        """Entries due at ``now`` and not being crawled here, the most overdue first."""
        schedule = self.state.schedule()
        waiting = [
            (self.next_due(schedule, label, now), label)
            for label in self.intervals
            if label not in self.running and self.next_due(schedule, label, now) <= now
        ]
        return [label for _, label in sorted(waiting)]

    def recover(self) -> None:
        """At start-up (one machine): a crawl left running by a killed scheduler is due now."""
        if self.queue is not None:
            return
        now = self.clock()
        for label, entry in self.state.schedule().items():
            if entry.get("running") and label in self.intervals:
                self.state.update_schedule(label, running=None, next_due=_stamp(now))

    # -- one pass -----------------------------------------------------------------------

    def tick(self) -> None:
        """Reap finished crawls, then start (or enqueue) what is due."""
        if self.queue is not None:
            self._tick_clustered()
            if self.leading:
                self.retention.maybe_apply(self.clock())
        else:
            self._reap()
            self._start_due()
            self.retention.maybe_apply(self.clock())

    def _start_due(self) -> None:
        now = self.clock()
        room = self.project.crawl.parallel_crawls - len(self.running)
        for label in self.due(now)[: max(0, room)]:
            crawl = RunningCrawl(
                self.project.path,  # type: ignore[arg-type]
                label,
                self.project.home / "service" / "tmp",
                self.env,
            )
            self.running[label] = crawl
            self.state.update_schedule(
                label,
                running=f"pid {crawl.pid}",
                last_started=_stamp(now),
                next_due=_stamp(now + self.intervals[label]),
            )
            self.echo(f"{label}: crawling (pid {crawl.pid})")

    def _reap(self) -> None:
        for label, crawl in list(self.running.items()):
            if crawl.poll() is None:
                continue
            del self.running[label]
            self._finished(label, crawl.result())

    def _finished(self, label: str, result: CrawlResult) -> None:
        now = self.clock()
        self.results.append(result)
        fields: dict[str, Any] = {"running": None, "last_result": result.line()}
        if result.outcome == "interrupted":
            fields["next_due"] = _stamp(now)  # catch up at once on the next start
        else:
            fields["last_finished"] = _stamp(now)
            fields["last_outcome"] = result.outcome
        self.state.update_schedule(label, **fields)
        self.echo(f"{label}: {result.line()}")
        if result.indexed:
            self.alerts.trigger()

    def _tick_clustered(self) -> None:
        assert self.queue is not None
        lease = max(self.project.cluster.lease, self.project.cluster.poll * 3)
        leading = self.queue.lead(self.name, lease)
        if leading != self.leading:
            self.leading = leading
            self.echo(
                f"listener run {self.name}: "
                + ("scheduling" if leading else "another scheduler leads; standing by")
            )
        if not leading:
            return
        now = self.clock()
        for label in self.due(now):
            job = self.queue.enqueue_once(label, now)
            if job is not None:
                self.state.update_schedule(
                    label, next_due=_stamp(now + self.intervals[label]), last_enqueued=_stamp(now)
                )
                log.info("%s: queued as job %s", label, job)
        assert isinstance(self.state, RedisState)
        if self.alerts.thread is not None:
            recorded = self.state.runs_to_alert_on()
            if recorded and recorded != self.alerts.covering:
                self.alerts.trigger(recorded, ended=self.state.alerted_on)

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, then stop the running crawls gracefully."""
        self.recover()
        where = (
            f"queueing work in Redis for listener worker ({len(self.intervals)} entries)"
            if self.queue is not None
            else f"crawling {len(self.intervals)} entries here, "
            f"{self.project.crawl.parallel_crawls} at a time"
        )
        self.echo(f"listener run: {where}; Ctrl-C or SIGTERM stops")
        poll = self.project.cluster.poll.total_seconds()
        tick = min(poll, 0.2) if self.queue is None else poll
        import redis

        down = False
        while not stop.is_set():
            try:
                self.tick()
                if down:
                    self.echo("listener run: Redis is back")
                    down = False
            except redis.RedisError as error:
                if self.queue is not None:
                    self.queue.forget_group()  # a restarted Redis without persistence lost it
                if not down:
                    self.echo(f"listener run: Redis unreachable ({error}); retrying")
                    down = True
                stop.wait(min(5.0, poll * 5))
            stop.wait(tick)
        self.shutdown()

    def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the crawls in flight: each finishes or spools its batch and saves checkpoints."""
        if not self.running:
            return
        self.echo(f"listener run: stopping {len(self.running)} crawl(s) in flight")
        for crawl in self.running.values():
            crawl.stop()
        deadline = time.monotonic() + timeout
        for label, crawl in list(self.running.items()):
            if not crawl.wait(max(0.0, deadline - time.monotonic())):
                log.error("%s: still running %d s after SIGTERM; killing it", label, timeout)
                crawl.kill()
        self._reap()
        for label in list(self.running):
            with contextlib.suppress(Exception):
                self.state.update_schedule(label, running=None, next_due=_stamp(self.clock()))
