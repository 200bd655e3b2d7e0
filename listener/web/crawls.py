"""Crawls started from the API: one subprocess per crawl, its progress read from its output.

The Twisted reactor cannot be restarted, so a crawl never runs inside the
server: it runs as ``python -m listener.cli crawl -c FILE``, exactly as a user
would run it, sharing the server's engine (the embedded engine is reused
through its state file) and ``LISTENER_HOME`` (so its run summary feeds source
health). One crawl runs at a time. Progress is parsed from the progress lines
the crawl prints on stderr and its end-of-crawl summary.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from listener.errors import ListenerError
from listener.web.models import CrawlOut, CrawlProgress

_PROGRESS = re.compile(
    r"\[\s*\d+s\] pages (?P<pages>\d+)\s+found (?P<found>\d+)\s+indexed (?P<indexed>\d+)"
    r"\s+dropped (?P<dropped>\d+)\s+errors (?P<errors>\d+)"
)
# The summary line, read loosely so that added figures do not break it:
# "crawl finished in 4.3 s: 66 mentions found (15.3/s), 58 indexed, dropped: a 5, b 3, 0 errors"
_FINISHED = re.compile(
    r"crawl finished in [\d.]+ s: (?P<found>\d+) mentions found\b.*?(?P<indexed>\d+) indexed\b"
    r"(?P<rest>.*)$"
)
_DROPPED = re.compile(r"dropped: (?P<dropped>.*?)(?:, \d+ errors|$)")
_ERRORS = re.compile(r"(?P<errors>\d+) errors")
# Summary lines after the first (listener.crawl.progress.CrawlSummary.lines).
_LEFT = re.compile(r"^\s+stopped before it finished: (?P<n>\d+) mentions\b")
_SPOOLED = re.compile(r"^\s+(?P<n>\d+) mentions could not be indexed \(.*\) and were spooled")
_LOG_LINES = 200
_KEEP_JOBS = 20


class CrawlBusy(ListenerError):
    """A crawl is already running; one at a time."""


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


@dataclass
class CrawlJob:
    """One crawl subprocess and what it has reported so far."""

    id: str
    command: list[str]
    since: str | None
    started_at: datetime = field(default_factory=_now)
    finished_at: datetime | None = None
    exit_code: int | None = None
    cancelled: bool = False
    progress: CrawlProgress = field(default_factory=CrawlProgress)
    summary: list[str] = field(default_factory=list)
    error: str | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_LOG_LINES))
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        """Whether the subprocess has not finished yet."""
        return not self.done.is_set()

    def state(self) -> str:
        """running, succeeded, failed or cancelled."""
        if self.running:
            return "running"
        if self.cancelled:
            return "cancelled"
        # Exit 4: some sources failed, the rest were crawled (the summary names them).
        return "succeeded" if self.exit_code in (0, 4) else "failed"

    def feed(self, line: str) -> None:
        """Take one line of the crawl's output: progress, summary or an error."""
        text = line.rstrip("\r\n")
        # An interactive progress display rewrites one line with carriage returns.
        text = text.rsplit("\r", 1)[-1].rstrip()
        if not text:
            return
        with self.lock:
            self.lines.append(text)
            progress = _PROGRESS.search(text)
            if progress:
                self.progress = CrawlProgress(
                    **{k: int(v) for k, v in progress.groupdict().items()}
                )
                return
            finished = _FINISHED.search(text)
            if finished:
                rest = finished.group("rest")
                dropped = _DROPPED.search(rest)
                errors = _ERRORS.search(rest)
                self.progress = CrawlProgress(
                    pages=self.progress.pages,
                    found=int(finished.group("found")),
                    indexed=int(finished.group("indexed")),
                    dropped=sum(int(n) for n in re.findall(r"\d+", dropped.group("dropped")))
                    if dropped
                    else self.progress.dropped,
                    errors=int(errors.group("errors")) if errors else self.progress.errors,
                )
                self.summary = [text]
                return
            if self.summary and text.startswith("  "):
                self.summary.append(text)
                left, spooled = _LEFT.search(text), _SPOOLED.search(text)
                if left:
                    self.progress.left_for_next_run = int(left.group("n"))
                if spooled:
                    self.progress.spooled = int(spooled.group("n"))
            elif text.startswith("error: "):
                self.error = text.removeprefix("error: ")
            elif self.error and text.startswith("  "):
                self.error += " " + text.strip()

    def finish(self, code: int) -> None:
        """Record the exit code."""
        with self.lock:
            self.exit_code = code
            self.finished_at = _now()
            if code != 0 and not self.error and not self.cancelled:
                self.error = f"the crawl exited with code {code}; see log_tail"
        self.done.set()

    def view(self) -> CrawlOut:
        """The job as the API returns it."""
        with self.lock:
            end = self.finished_at or _now()
            return CrawlOut(
                id=self.id,
                state=self.state(),  # type: ignore[arg-type]
                since=self.since,
                started_at=_stamp(self.started_at) or "",
                finished_at=_stamp(self.finished_at),
                elapsed_seconds=round((end - self.started_at).total_seconds(), 1),
                exit_code=self.exit_code,
                progress=self.progress,
                summary=list(self.summary),
                error=self.error,
                log_tail=list(self.lines)[-40:],
            )


class CrawlManager:
    """Starts crawl subprocesses for one project file, one at a time, and tracks them."""

    def __init__(self, project_file: Path | None, home: Path, *, python: str | None = None):
        self.project_file = project_file
        self.home = home
        self.python = python or sys.executable
        self._jobs: dict[str, CrawlJob] = {}
        self._lock = threading.Lock()

    def start(self, since: str | None = None) -> CrawlJob:
        """Start a crawl of every configured source; CrawlBusy if one is running."""
        if self.project_file is None:
            raise ListenerError(
                "this server's project was not loaded from a file, so it cannot start a crawl"
            )
        with self._lock:
            for job in self._jobs.values():
                if job.running:
                    raise CrawlBusy(
                        f"crawl {job.id} is still running (started {_stamp(job.started_at)}); "
                        "wait for it to finish"
                    )
            command = [self.python, "-m", "listener.cli", "crawl", "-c", str(self.project_file)]
            if since:
                command += ["--since", since]
            env = dict(os.environ)
            env["LISTENER_HOME"] = str(self.home)
            env["PYTHONUNBUFFERED"] = "1"
            job = CrawlJob(id=uuid.uuid4().hex[:12], command=command, since=since)
            job.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                cwd=str(self.project_file.parent),
                # Its own session: a Ctrl-C meant for the server must not cut the crawl short
                # without the server knowing; the server stops it itself on shutdown.
                start_new_session=True,
            )
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(
            target=self._watch, args=(job,), name=f"crawl-{job.id}", daemon=True
        ).start()
        return job

    def _watch(self, job: CrawlJob) -> None:
        process = job.process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            job.feed(line)
        job.finish(process.wait())

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if not j.running]
        for job in finished[: max(0, len(self._jobs) - _KEEP_JOBS)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> CrawlJob | None:
        """A crawl by id."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[CrawlJob]:
        """Every tracked crawl, newest first."""
        return sorted(self._jobs.values(), key=lambda job: job.started_at, reverse=True)

    def cancel(self, job: CrawlJob) -> None:
        """Ask a running crawl to stop (SIGTERM: Scrapy closes the spider and flushes)."""
        process = job.process
        if process is None or not job.running:
            return
        with job.lock:
            job.cancelled = True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop running crawls: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        running = [job for job in self._jobs.values() if job.running]
        for job in running:
            self.cancel(job)
        deadline = time.monotonic() + timeout
        for job in running:
            if not job.done.wait(max(0.0, deadline - time.monotonic())):
                process = job.process
                if process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                job.done.wait(5)
