"""Getting mentions in: ``listener crawl``, ``demo``, ``enrich`` and ``reenrich``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from listener.cli.options import config_option, parse_time, store
from listener.cli.output import (
    EXIT_PARTIAL,
    EXIT_SPOOLED,
    EXIT_STOPPED,
    EXIT_UNSAVED,
    EXIT_USAGE,
    err,
    fail,
    print_sov,
    reports_errors,
)
from listener.config import ProjectConfig, load_project
from listener.errors import ConfigError


def _print_summary(summary: Any) -> None:
    for line in summary.lines():
        click.echo(line, err=True)


@click.command()
@config_option
@click.option(
    "--since",
    help="Backfill: ask sources for items since this time (ISO or 7d), ignoring what "
    "earlier runs remembered.",
)
@click.pass_context
@reports_errors
def crawl(ctx: click.Context, config_path: Path, since: str | None) -> None:
    """Crawl every configured source for the configured brands."""
    from listener.crawl.runner import run_crawl

    project = load_project(config_path)
    if not project.sources:
        raise ConfigError(f"{project.path}: no [[sources]] configured; add at least one")
    summary = run_crawl(project, log_level=ctx.obj["log_level"], since=parse_time(since, "--since"))
    _print_summary(summary)
    _exit_for(summary, project)


def _exit_for(summary: Any, project: ProjectConfig) -> None:
    """Exit 5 when mentions could not be spooled, 3 when they were (or wait in the spool),
    6 when the crawl was stopped by a signal, 1 when every source failed, 4 when some did."""
    if summary.lost:
        fail(
            f"{summary.lost} mentions could not be saved anywhere (index, spool or dead-letter "
            f"file): {summary.last_batch_error}; fix that, then run the crawl again (the "
            "checkpoints were not advanced)",
            EXIT_UNSAVED,
        )
    if summary.dead_lettered:
        fail(
            f"{summary.dead_lettered} mentions could be neither indexed nor spooled "
            f"({summary.last_batch_error}); they are kept in the dead-letter file under "
            "LISTENER_HOME (each line holds the document and the reason)",
            EXIT_UNSAVED,
        )
    if summary.spooled or summary.spool_waiting:
        from listener.store.engine import redact_url, url_setting

        settings = project.elasticsearch
        where = (
            f"Elasticsearch at {redact_url(settings.url)} (set by "
            f"{url_setting(settings, project.path)})"
            if settings.url
            else "the embedded engine"
        )
        waiting = max(summary.spooled, summary.spool_waiting)
        fail(
            f"{waiting} mentions wait in the spool because {where} was unreachable; "
            "run the crawl again once it is back to index them",
            EXIT_SPOOLED,
        )
    if summary.stopped:
        fail(
            f"the crawl was stopped before it finished (SIGTERM or Ctrl-C): {summary.indexed} "
            f"mentions indexed, {summary.left_for_next_run} left for the next run, which fetches "
            "them again",
            EXIT_STOPPED,
        )
    broken = [label for label, s in summary.sources.items() if s.health == "broken"]
    if summary.sources and len(broken) == len(summary.sources):
        fail(f"every source failed ({', '.join(broken)}); see the summary above")
    if broken:
        fail(
            f"{len(broken)} of {len(summary.sources)} sources failed ({', '.join(broken)}); "
            "the others were crawled, see the summary above",
            EXIT_PARTIAL,
        )


@click.command()
@config_option
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=64, show_default=True)
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 2 if any input line was bad (bad lines are always reported and skipped).",
)
@reports_errors
def enrich(config_path: Path, batch_size: int, processes: int, strict: bool) -> None:
    """Enrich NDJSON from stdin (``text`` required) and write enriched Mentions to stdout.

    A bad line (not JSON, no ``text``, a bad date) is reported on stderr with its
    number and skipped; the other lines are enriched.
    """
    from listener.enrichment import Enricher
    from listener.enrichment.textinput import read_ndjson_mentions

    project = load_project(config_path)
    enricher = Enricher(project, batch_size=batch_size, n_process=processes)
    stdout = sys.stdout
    bad: list[ConfigError] = []

    def skip(error: ConfigError) -> None:
        bad.append(error)
        click.echo(f"skipped {error}", err=True)

    written = 0
    for mention in enricher.enrich(read_ndjson_mentions(sys.stdin, on_error=skip)):
        stdout.write(mention.model_dump_json() + "\n")
        written += 1
    if bad:
        stdout.flush()
        message = f"{len(bad)} bad input line(s) skipped, {written} mention(s) enriched"
        if strict:
            fail(message, EXIT_USAGE)
        click.echo(f"warning: {message} (--strict makes this exit 2)", err=True)


@click.command()
@config_option
@click.option("--since")
@click.option("--until")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="worker processes for enrichment (as for `listener enrich`)",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=64, show_default=True)
@reports_errors
def reenrich(
    config_path: Path, since: str | None, until: str | None, processes: int, batch_size: int
) -> None:
    """Re-run enrichment over stored mentions (after a model or rule update), in place."""
    from listener.enrichment import Enricher
    from listener.store.indexer import mentions_alias
    from listener.store.relabel import reenrich as run_reenrich

    project = load_project(config_path)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    window: dict[str, Any] = {}
    if start:
        window["gte"] = start.isoformat()
    if end:
        window["lt"] = end.isoformat()
    query = {"range": {"published_at": window}} if window else None
    with store(project) as client:
        counted = client.options(ignore_status=404).count(
            index=mentions_alias(project.elasticsearch.index_prefix),
            query=query or {"match_all": {}},
        )
        body = counted.body
        total = int(body.get("count", 0)) if isinstance(body, dict) else 0
        result = run_reenrich(
            client,
            project,
            query=query,
            enricher=Enricher(project, batch_size=batch_size, n_process=processes),
            progress=lambda r: err.print(f"\rre-enriched {r.examined} of {total} mentions", end=""),
        )
    err.print("")
    click.echo(
        f"{result.examined} mentions re-enriched, {result.written} written; brands added: "
        f"{dict(result.added) or 'none'}, removed: {dict(result.removed) or 'none'}",
        err=True,
    )
    if result.spooled:
        fail(f"{result.spooled} mentions were spooled (engine unreachable)", EXIT_SPOOLED)


@click.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the demo project and its data go (default: $LISTENER_HOME or ./listener-demo).",
)
@click.pass_context
@reports_errors
def demo(ctx: click.Context, home: Path | None) -> None:
    """Crawl the bundled sample site into the embedded engine and print share of voice."""
    from listener.cli.demo import run_demo

    run_demo(home, log_level=ctx.obj["log_level"], console=err, on_sov=print_sov)
