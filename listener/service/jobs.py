"""Due work in Redis: one stream of jobs (one job = one crawl of one source entry), with leases.

Why a Redis stream with a consumer group (redis-py, no job framework): a job
read with ``XREADGROUP`` stays in the group's pending list until the worker
acknowledges it, so a worker killed with SIGKILL loses nothing: once the
entry has been idle longer than the lease, ``XAUTOCLAIM`` hands it to another
worker. A worker renews its lease while it crawls (``XCLAIM`` of its own
entry resets the idle time), so a long crawl is never taken over while its
worker lives. A small lease key per source entry, renewed with the same beat
and only by its holder, makes the crawl of one entry exclusive even if two
jobs for it ever existed. Each step that touches several keys is one Lua
script, so it is atomic.

Keys (prefix ``listener:<namespace>:``): ``jobs`` (the stream, group
``workers``), ``outstanding:<label>`` (the id of the entry's queued job: the
scheduler enqueues at most one), ``lease:<label>`` (the worker crawling it).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

GROUP = "workers"

# KEYS: stream, outstanding   ARGV: label, enqueued_at
_ENQUEUE_ONCE = """
local current = redis.call('GET', KEYS[2])
if current then
  local found = redis.call('XRANGE', KEYS[1], current, current)
  if #found > 0 then return false end
end
local id = redis.call('XADD', KEYS[1], '*', 'label', ARGV[1], 'enqueued_at', ARGV[2])
redis.call('SET', KEYS[2], id)
return id
"""

# KEYS: lease, stream   ARGV: consumer, lease_ms, group, job id
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[1], 0, ARGV[4], 'JUSTID')
return 1
"""

# KEYS: stream, outstanding, lease   ARGV: group, job id, consumer
_FINISH = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""

# KEYS: stream, outstanding, lease   ARGV: group, job id, consumer, label, enqueued_at
_REQUEUE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local id = redis.call('XADD', KEYS[1], '*', 'label', ARGV[4], 'enqueued_at', ARGV[5])
redis.call('SET', KEYS[2], id)
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return id
"""

# KEYS: leader   ARGV: me, ttl_ms
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def consumer_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Job:
    """One crawl of one source entry, as read from the stream."""

    id: str
    label: str
    enqueued_at: str | None = None
    reclaimed: bool = False


class JobQueue:
    """The job stream of one project namespace; ``consumer`` names this worker."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        lease: timedelta = timedelta(seconds=60),
        consumer: str | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.stream = prefix + "jobs"
        self.lease_ms = max(1, int(lease.total_seconds() * 1000))
        self.consumer = consumer or consumer_name()
        self._enqueue = client.register_script(_ENQUEUE_ONCE)
        self._renew = client.register_script(_RENEW)
        self._finish = client.register_script(_FINISH)
        self._requeue = client.register_script(_REQUEUE)
        self._lead = client.register_script(_LEAD)
        self._group_ready = False

    def _key(self, kind: str, label: str) -> str:
        return f"{self.prefix}{kind}:{label}"

    def forget_group(self) -> None:
        """Check the group again on next use (after a Redis outage, which may have lost it)."""
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist yet."""
        if self._group_ready:
            return
        import redis as redis_module

        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis_module.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    # -- scheduler side -------------------------------------------------------------------

    def enqueue_once(self, label: str, now: datetime | None = None) -> str | None:
        """Queue a crawl of ``label`` unless one is already queued or running; its id, or None."""
        self.ensure_group()
        stamp = (now or datetime.now(UTC)).isoformat()
        result = self._enqueue(
            keys=[self.stream, self._key("outstanding", label)], args=[label, stamp]
        )
        return str(result) if result else None

    def lead(self, me: str, ttl: timedelta) -> bool:
        """Become or stay the one scheduler of this namespace (a lease of ``ttl``)."""
        ttl_ms = max(1, int(ttl.total_seconds() * 1000))
        return bool(self._lead(keys=[self.prefix + "leader"], args=[me, ttl_ms]))

    def pending(self) -> int:
        """Jobs queued or in progress (not yet acknowledged)."""
        self.ensure_group()
        return int(cast(int, self.client.xlen(self.stream)))

    # -- worker side ----------------------------------------------------------------------

    def claim(self, block: timedelta) -> Job | None:
        """The next job: one a dead worker left (idle beyond the lease) first, else a new one."""
        self.ensure_group()
        reclaimed: Any = self.client.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=self.lease_ms, start_id="0-0", count=1
        )
        for entry_id, fields in reclaimed[1]:
            if fields:
                log.warning(
                    "taking over job %s (%s): its worker stopped renewing the lease",
                    entry_id,
                    fields.get("label"),
                )
                return Job(entry_id, fields.get("label", ""), fields.get("enqueued_at"), True)
        answer: Any = self.client.xreadgroup(
            GROUP,
            self.consumer,
            {self.stream: ">"},
            count=1,
            block=max(1, int(block.total_seconds() * 1000)),
        )
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                if fields:
                    return Job(entry_id, fields.get("label", ""), fields.get("enqueued_at"))
                self.client.xack(self.stream, GROUP, entry_id)
        return None

    def acquire(self, job: Job) -> bool:
        """Take the lease on ``job``'s source entry; False when another worker holds it."""
        return bool(
            self.client.set(self._key("lease", job.label), self.consumer, nx=True, px=self.lease_ms)
        )

    def renew(self, job: Job) -> bool:
        """Extend the lease (call well within it); False when it was lost to another worker."""
        return bool(
            self._renew(
                keys=[self._key("lease", job.label), self.stream],
                args=[self.consumer, self.lease_ms, GROUP, job.id],
            )
        )

    def finish(self, job: Job) -> None:
        """The job is done (whatever the crawl's outcome): acknowledge it, free the entry."""
        self._finish(
            keys=[self.stream, self._key("outstanding", job.label), self._key("lease", job.label)],
            args=[GROUP, job.id, self.consumer],
        )

    def requeue(self, job: Job) -> str:
        """Put the job back at the end of the queue now (a worker stopping mid-crawl)."""
        return str(
            self._requeue(
                keys=[
                    self.stream,
                    self._key("outstanding", job.label),
                    self._key("lease", job.label),
                ],
                args=[GROUP, job.id, self.consumer, job.label, datetime.now(UTC).isoformat()],
            )
        )

    def lease_holder(self, label: str) -> str | None:
        """Which worker holds the lease on ``label`` (None: nobody)."""
        holder = self.client.get(self._key("lease", label))
        return str(holder) if holder is not None else None
