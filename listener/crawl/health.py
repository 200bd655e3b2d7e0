"""Source health over the last runs, and the service's schedule per source entry.

Run summaries come from ``LISTENER_HOME/runs`` on one machine, or from Redis
when the project is clustered (see :mod:`listener.service.state`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from listener.config import ProjectConfig


@dataclass
class SourceHealth:
    """How one source did over the last runs."""

    source: str
    status: str
    runs: int
    history: list[str] = field(default_factory=list)
    last_run_mentions: int = 0
    last_run_errors: int = 0
    last_success: str | None = None
    last_error: str | None = None


def load_runs(home: Path | ProjectConfig, limit: int = 5) -> list[dict[str, Any]]:
    """Run summaries, oldest first, with up to ``limit`` runs of each source.

    Given a project, from wherever it keeps state (Redis when clustered);
    given a folder, from its ``runs/`` files. Unreadable records are skipped.
    """
    from listener.service.state import LocalState, state_for

    store = LocalState(home) if isinstance(home, Path) else state_for(home)
    return store.load_runs(limit)


@dataclass
class ScheduleStatus:
    """Where one source entry stands in ``listener run``'s schedule."""

    source: str
    every_seconds: float
    next_run: str | None
    lag_seconds: float
    running: str | None = None
    last_started: str | None = None
    last_finished: str | None = None
    last_result: str | None = None


def schedule_status(
    project: ProjectConfig, now: datetime | None = None, *, scheduled: bool = False
) -> list[ScheduleStatus]:
    """Next run, last result and lag per configured entry (lag: how far past due it is).

    With ``scheduled``, only the entries ``listener run`` has scheduled.
    """
    from listener.service.state import state_for

    now = now or datetime.now(UTC)
    schedule = state_for(project).schedule()
    rows = []
    for entry in project.sources:
        if scheduled and entry.label not in schedule:
            continue
        every = entry.every or project.crawl.every
        known = dict(schedule.get(entry.label, {}))
        # Clustered, the state hides a mark whose worker lost its lease (it died).
        if not project.cluster.redis_url and not _alive(known.get("running")):
            known.pop("running", None)  # left by a listener run that was killed
        next_run = known.get("next_due")
        lag = 0.0
        if next_run and not known.get("running"):
            lag = max(0.0, (now - datetime.fromisoformat(next_run)).total_seconds())
        rows.append(
            ScheduleStatus(
                source=entry.label,
                every_seconds=every.total_seconds(),
                next_run=next_run,
                lag_seconds=round(lag, 1),
                running=known.get("running"),
                last_started=known.get("last_started"),
                last_finished=known.get("last_finished"),
                last_result=known.get("last_result"),
            )
        )
    return rows


def source_health(runs: list[dict[str, Any]]) -> list[SourceHealth]:
    """healthy: last run clean, none broken before; broken: the last run got nothing."""
    names = sorted({name for run in runs for name in run.get("sources", {})})
    report = []
    for name in names:
        seen = [(run, run["sources"][name]) for run in runs if name in run.get("sources", {})]
        history = [entry.get("health", "unknown") for _, entry in seen]
        last = seen[-1][1]
        if history[-1] == "broken":
            status = "broken"
        elif history[-1] == "degraded" or "broken" in history:
            status = "degraded"
        else:
            status = "healthy"
        last_success = next(
            (run.get("finished_at") for run, entry in reversed(seen) if entry.get("last_success")),
            None,
        )
        report.append(
            SourceHealth(
                source=name,
                status=status,
                runs=len(seen),
                history=history,
                last_run_mentions=int(last.get("mentions", 0)),
                last_run_errors=int(last.get("parse_errors", 0)) + int(last.get("fetch_errors", 0)),
                last_success=last_success,
                last_error=last.get("last_error"),
            )
        )
    return report


def _alive(running: str | None) -> bool:
    """Whether ``pid N`` (how listener run marks a crawl on one machine) is still crawling.

    The pid must be alive and still be a crawl process: after a killed
    ``listener run`` the number may have been reused by another program.
    """
    if not running or not running.startswith("pid "):
        return bool(running)
    try:
        pid = int(running.removeprefix("pid "))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (not Linux): trust the pid
    except OSError:
        return True
    if not command:
        # Empty: a zombie (ended, not yet reaped), or a process still inside execve, whose
        # new command line is not set up yet (its parent's Popen has already returned).
        return not _is_zombie(pid)
    return b"listener.service.child" in command


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


def status_report(project: ProjectConfig, limit: int = 5) -> tuple[list[dict[str, Any]], int]:
    """``listener sources status``: health per source merged with the schedule of listener run.

    Returns the rows and the most runs any source has in them. A source the
    schedule knows but no run has recorded yet is listed with status
    ``pending``; the schedule columns are empty when ``listener run`` never ran.
    """
    from dataclasses import asdict

    from listener.service.state import state_for

    store = state_for(project)
    runs = store.load_runs(limit)
    rows: dict[str, dict[str, Any]] = {h.source: asdict(h) for h in source_health(runs)}
    scheduled = store.schedule()
    for entry in schedule_status(project):
        if entry.source not in scheduled:
            continue
        row = rows.setdefault(
            entry.source,
            asdict(SourceHealth(source=entry.source, status="pending", runs=0)),
        )
        row.update(
            next_run=entry.next_run,
            lag_seconds=entry.lag_seconds,
            running=entry.running,
            last_result=entry.last_result,
            every_seconds=entry.every_seconds,
        )
    most = max((row["runs"] for row in rows.values()), default=0)
    return [rows[name] for name in sorted(rows)], most
