"""``listener report``: a self-contained HTML report, and optionally every table as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from listener.cli.options import store, with_options
from listener.cli.output import err, reports_errors, show_table
from listener.cli.scope import analytics_options, analytics_scope, earned_rates, rate_options
from listener.config import load_project

_REPORT_SUMMARY = [
    "brand",
    "mentions",
    "mentions_change",
    "share",
    "share_change_pp",
    "net_sentiment",
    "net_sentiment_change",
    "earned_share",
    "emv",
]


@click.command("report")
@analytics_options()
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write every table as CSV and JSON into this folder.",
)
@click.option("--title", help="Report title (default: the brands).")
@with_options(rate_options)
@click.option(
    "--k", type=click.FloatRange(min=0, min_open=True), help="Spike: standard deviations."
)
@click.option("--window", type=click.IntRange(2, 366), help="Spike: trailing periods.")
@click.option("--min-count", type=click.IntRange(1), help="Spike: smallest count.")
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True)
@reports_errors
def report_command(
    config_path: Path,
    out: Path,
    export_dir: Path | None,
    title: str | None,
    cpm: tuple[str, ...],
    cpe: float | None,
    currency: str | None,
    k: float | None,
    window: int | None,
    min_count: int | None,
    top: int,
    **options: Any,
) -> None:
    """Write a self-contained HTML report (charts, tables, formulas) for a time range."""
    from listener.analytics.report import build_report, render_html
    from listener.analytics.settings import SpikeSettings
    from listener.analytics.tables import Table, write_exports

    project = load_project(config_path)
    interval = options.pop("interval")
    scope = analytics_scope(project, options)
    defaults = project.analytics.spikes
    spikes = SpikeSettings(
        k=k if k is not None else defaults.k,
        window=window if window is not None else defaults.window,
        min_count=min_count if min_count is not None else defaults.min_count,
    )
    with store(project) as client:
        report = build_report(
            client,
            project,
            interval=interval,
            rates=earned_rates(project, cpm, cpe, currency),
            spikes=spikes,
            top=top,
            title=title,
            **scope,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    tables = report.tables()
    summary = tables[0]
    show_table(
        Table(summary.name, summary.title, _REPORT_SUMMARY, summary.rows, summary.notes), "table"
    )
    found = len(report.spikes.spikes) + len(report.negative_spikes.spikes)
    err.print(f"wrote {out} ({out.stat().st_size // 1024 or 1} KB; {found} spike(s))",
              markup=False)  # fmt: skip
    if export_dir is not None:
        written = write_exports(tables, export_dir)
        err.print(f"wrote {len(written)} files to {export_dir}", markup=False)
