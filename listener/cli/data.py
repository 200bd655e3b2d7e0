"""Stored data: ``listener export``, ``rematch``, ``retention`` and ``forget`` (erasure)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import click

from listener.cli.options import config_option, parse_time, store
from listener.cli.output import EXIT_SPOOLED, EXIT_USAGE, emit, err, fail, reports_errors
from listener.config import load_project
from listener.store.exporting import EXPORT_COLUMNS, csv_cells


@click.command()
@config_option
@click.option("--format", "output_format", type=click.Choice(["ndjson", "csv"]), default="ndjson")
@click.option("--since")
@click.option("--until")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
@reports_errors
def export(
    config_path: Path, output_format: str, since: str | None, until: str | None, output: Any
) -> None:
    """Every stored mention, one per line, with all fields (nested fields as JSON in CSV)."""
    from listener.store.queries import iter_mentions

    project = load_project(config_path)
    count = 0
    with store(project) as client:
        writer = None
        if output_format == "csv":
            writer = csv.DictWriter(output, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
        for document in iter_mentions(
            client, project, since=parse_time(since, "--since"), until=parse_time(until, "--until")
        ):
            if writer is None:
                output.write(json.dumps(document, ensure_ascii=False) + "\n")
            else:
                writer.writerow(csv_cells(document))
            count += 1
    err.print(f"exported {count} mentions")


@click.command()
@config_option
@click.option("--brand", "brands", multiple=True, help="Only this brand (repeatable).")
@reports_errors
def rematch(config_path: Path, brands: tuple[str, ...]) -> None:
    """Re-label stored mentions with the brands' current keywords and rules (no re-crawl)."""
    from listener.store.relabel import reenrich, rematch_query

    project = load_project(config_path)
    names = [project.brand(b).name for b in brands] or [b.name for b in project.brands]
    with store(project) as client:
        result = reenrich(
            client,
            project,
            # Without --brand, labels of brands no longer in the project file go too.
            query=rematch_query(project, names, removed_brands=not brands),
            progress=lambda r: err.print(f"\rre-matched {r.examined} mentions", end=""),
        )
    err.print("")
    gone = sorted(name for name in result.removed if name not in names)
    rows = [
        {"brand": name, "added": result.added.get(name, 0), "removed": result.removed.get(name, 0)}
        for name in names
    ] + [
        {"brand": f"{name} (not in the project file)", "added": 0, "removed": result.removed[name]}
        for name in gone
    ]
    emit(rows, ["brand", "added", "removed"], "table", title="Rematch")
    click.echo(f"{result.examined} stored mentions examined, {result.written} rewritten", err=True)
    if result.spooled:
        fail(f"{result.spooled} mentions were spooled (engine unreachable)", EXIT_SPOOLED)


@click.command()
@config_option
@click.option("--days", type=click.IntRange(min=1), help="Override [retention] days.")
@click.option("--dry-run", is_flag=True, help="Only list the indices that would be dropped.")
@reports_errors
def retention(config_path: Path, days: int | None, dry_run: bool) -> None:
    """Drop the monthly indices older than [retention] days (whole months only)."""
    from listener.store.lifecycle import apply_retention

    project = load_project(config_path)
    if days is None and project.retention.days is None:
        fail(
            f"{project.path}: no retention set; add [retention] days = N (e.g. 365) "
            "or pass --days N",
            EXIT_USAGE,
        )
    with store(project) as client:
        result = apply_retention(client, project, days=days, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    cutoff = result.cutoff.date().isoformat() if result.cutoff else "-"
    for name in result.dropped:
        click.echo(f"{verb} {name}")
    click.echo(
        f"retention {result.days} days (months ending before {cutoff}): {verb} "
        f"{len(result.dropped)} monthly index(es), kept {len(result.kept)}",
        err=True,
    )


@click.command()
@config_option
@click.option("--author", help="Author handle or name (with or without @, any case).")
@click.option("--url", help="The mention's URL (or its canonical URL).")
@click.option("--brand", help="Every mention of this brand.")
@click.option("--before", help="Published before this date (2024-05-01, ISO time or 30d).")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@reports_errors
def forget(
    config_path: Path,
    author: str | None,
    url: str | None,
    brand: str | None,
    before: str | None,
    dry_run: bool,
) -> None:
    """Delete matching mentions from the index, the spool and the dead letters (erasure)."""
    from listener.store.lifecycle import ERASURE_LOG, Selector
    from listener.store.lifecycle import forget as run_forget

    if not any((author, url, brand, before)):
        raise click.UsageError(
            "say which mentions to forget: give at least one of --author, --url, --brand "
            "or --before (several must all match)"
        )
    selector = Selector(author=author, url=url, brand=brand, before=parse_time(before, "--before"))
    project = load_project(config_path)
    with store(project) as client:
        result = run_forget(client, project, selector, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for mention in result.mentions:
        click.echo(
            f"{verb} {mention.id} from {mention.where}: {mention.published_at or '-'} "
            f"{mention.author or '-'} {mention.url or '-'}"
        )
    logged = "" if dry_run else f"; logged in {project.home / ERASURE_LOG}"
    click.echo(
        f"{verb} {result.count('index')} mention(s) from the index, "
        f"{result.count('spool')} from the spool, {result.count('dead-letter')} from the "
        f"dead letters{logged}",
        err=True,
    )
