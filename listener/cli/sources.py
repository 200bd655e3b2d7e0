"""``listener sources``: the configured sources' health over the last runs."""

from __future__ import annotations

from pathlib import Path

import click

from listener.cli.options import config_option, table_or_json_option
from listener.cli.output import emit, print_json, reports_errors
from listener.config import load_project
from listener.errors import ListenerError


@click.group()
def sources() -> None:
    """Configured sources: their health over the last runs."""


@sources.command("status")
@config_option
@click.option("--runs", "limit", type=click.IntRange(1, 100), default=5, show_default=True)
@table_or_json_option
@reports_errors
def sources_status(config_path: Path, limit: int, output_format: str) -> None:
    """Which sources are healthy, degraded or broken; with listener run, when each runs next."""
    from listener.crawl.health import status_report

    project = load_project(config_path)
    report, runs = status_report(project, limit)
    if not report:
        raise ListenerError(
            f"no crawl has been recorded for {project.path} yet (under {project.home / 'runs'}, "
            "or in Redis when clustered)"
        )
    if output_format == "json":
        print_json(report, ensure_ascii=True)
        return
    for row in report:
        row["history"] = " ".join(row["history"])
    emit(
        report,
        ["source", "status", "history", "last_run_mentions", "last_run_errors", "last_success",
         "last_error"],
        "table",
        title=f"Source health over the last {runs} run(s) per source",
    )  # fmt: skip
    scheduled = [row for row in report if row.get("every_seconds")]
    if scheduled:
        emit(
            scheduled,
            ["source", "every_seconds", "next_run", "lag_seconds", "running", "last_result"],
            "table",
            title="Schedule (listener run)",
        )
