"""``listener worker``: take crawl jobs from Redis and run them, one at a time, on any machine.

Start as many as the machines and the sources allow; each takes the next due
job from the stream (see :mod:`listener.service.jobs`), holds the entry's
lease while its child process crawls it, renews the lease every quarter of
it, and acknowledges the job when the crawl ends. Killed with SIGKILL, it
leaves its job pending: another worker takes it over once the lease expires,
and stable mention ids make the redo idempotent. Stopped with SIGTERM or
Ctrl-C, it lets the crawl finish or spool its batch and save its checkpoint,
then puts the job back in the queue so another worker carries on at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from listener.config import ProjectConfig
from listener.errors import ConfigError
from listener.service.child import LOG_LEVEL_ENV, RunningCrawl
from listener.service.jobs import Job, JobQueue
from listener.service.state import RedisState, namespace, redis_client

log = logging.getLogger(__name__)

#: How long a stopping crawl may take to finish its batch before it is killed.
STOP_TIMEOUT = 120.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Worker:
    """Runs jobs from the queue until ``stop`` is set."""

    def __init__(
        self,
        project: ProjectConfig,
        *,
        stop: threading.Event | None = None,
        log_level: str = "WARNING",
        echo: Callable[[str], None] = log.warning,
    ) -> None:
        if not project.cluster.redis_url:
            raise ConfigError(
                f"{project.path}: listener worker needs Redis: set [cluster] redis_url or "
                "LISTENER_REDIS_URL (one machine needs no worker: use listener run)"
            )
        if not project.elasticsearch.url:
            raise ConfigError(
                f"{project.path}: listener worker needs a shared Elasticsearch: set "
                "[elasticsearch] url or LISTENER_ES_URL (each worker's own embedded engine "
                "would hold a different part of the data)"
            )
        if project.path is None:
            raise ConfigError("listener worker needs a project file (-c listener.toml)")
        self.project = project
        self.config_path: Path = project.path
        client = redis_client(project.cluster.redis_url)
        prefix = namespace(project)
        self.state = RedisState(client, prefix)
        self.queue = JobQueue(client, prefix, lease=project.cluster.lease)
        self.stop = stop or threading.Event()
        self.env = {LOG_LEVEL_ENV: log_level}
        self.echo = echo
        self.labels = {entry.label for entry in project.sources}
        self.beat = max(0.05, project.cluster.lease.total_seconds() / 4)
        self.jobs_done = 0

    @property
    def name(self) -> str:
        return self.queue.consumer

    def run(self) -> None:
        """Take and run jobs until asked to stop."""
        import redis

        self.echo(f"listener worker {self.name}: waiting for jobs")
        down_since: float | None = None
        while not self.stop.is_set():
            try:
                job = self.queue.claim(block=min(self.project.cluster.poll, timedelta(seconds=5)))
                if job is not None:
                    self.run_job(job)
                if down_since is not None:
                    self.echo(f"listener worker {self.name}: Redis is back")
                    down_since = None
            except redis.RedisError as error:
                self.queue.forget_group()  # a restarted Redis without persistence lost it
                if down_since is None:
                    down_since = time.monotonic()
                    self.echo(f"listener worker {self.name}: Redis unreachable ({error}); "
                              "retrying")  # fmt: skip
                self.stop.wait(min(5.0, self.project.cluster.poll.total_seconds() * 5))
        self.echo(f"listener worker {self.name}: stopped after {self.jobs_done} job(s)")

    def run_job(self, job: Job) -> None:
        """Crawl one job's entry under its lease; acknowledge, requeue or abandon it."""
        import redis

        if job.label not in self.labels:
            log.error(
                "job %s names source entry %r, which %s does not define; dropping it "
                "(are all workers and the scheduler using the same project file?)",
                job.id,
                job.label,
                self.config_path,
            )
            self.queue.finish(job)
            return
        if not self.queue.acquire(job):
            log.info("%s is being crawled by %s; leaving job %s", job.label,
                     self.queue.lease_holder(job.label), job.id)  # fmt: skip
            return
        self.state.update_schedule(job.label, running=self.name, last_started=_now())
        crawl = RunningCrawl(
            self.config_path, job.label, self.project.home / "service" / "tmp", self.env
        )
        self.echo(f"{job.label}: crawling (job {job.id}, pid {crawl.pid})")
        lost = False
        stop_deadline: float | None = None
        renewed_at = time.monotonic()
        # Short waits, so a SIGTERM reaches the crawl at once; renewals every quarter lease.
        while not crawl.wait(min(self.beat, 0.25)):
            if time.monotonic() - renewed_at >= self.beat:
                try:
                    renewed = self.queue.renew(job)
                except redis.RedisError as error:
                    # Nobody can take the job over while Redis is down: let the crawl save
                    # its work; the job stays pending and is redone once its lease expired.
                    log.error("%s: cannot renew the lease (%s); stopping this crawl",
                              job.label, error)  # fmt: skip
                    crawl.stop()
                    crawl.wait(STOP_TIMEOUT)
                    crawl.kill()
                    crawl.result()
                    raise
                renewed_at = time.monotonic()
                if not renewed:
                    log.error("%s: lease lost to another worker; stopping this crawl", job.label)
                    lost = True
                    crawl.kill()
                    break
            if self.stop.is_set():
                if stop_deadline is None:
                    crawl.stop()
                    stop_deadline = time.monotonic() + STOP_TIMEOUT
                elif time.monotonic() > stop_deadline:
                    log.error("%s: still running %d s after SIGTERM; killing it", job.label,
                              STOP_TIMEOUT)  # fmt: skip
                    crawl.kill()
        result = crawl.result()
        if lost:
            self.state.update_schedule(job.label, running=None, last_result="lease lost")
            return
        if result.outcome == "interrupted":
            new_id = self.queue.requeue(job)
            self.echo(f"{job.label}: stopped mid-crawl; requeued as job {new_id}")
            self.state.update_schedule(job.label, running=None, last_result=result.line())
            return
        self.queue.finish(job)
        self.jobs_done += 1
        self.state.update_schedule(
            job.label,
            running=None,
            last_finished=_now(),
            last_result=result.line(),
            last_outcome=result.outcome,
            last_worker=self.name,
        )
        self.echo(f"{job.label}: {result.line()}")
