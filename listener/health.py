"""Source health over the last runs, from the run summaries under ``LISTENER_HOME/runs``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


def load_runs(home: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The newest ``limit`` run summaries, oldest first (unreadable files are skipped)."""
    files = sorted((home / "runs").glob("*.json"))[-limit:]
    runs = []
    for path in files:
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return runs


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
