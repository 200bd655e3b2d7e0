"""The ``listener`` command line."""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import click

from listener import __version__
from listener.analytics.settings import DEFAULT_SINCE
from listener.cli.options import (
    config_option,
    format_option,
    parse_time,
    store,
    table_or_json_option,
    with_options,
)
from listener.cli.output import (
    EXIT_PARTIAL,
    EXIT_SPOOLED,
    EXIT_UNSAVED,
    EXIT_USAGE,
    emit,
    err,
    fail,
    highlighted,
    print_json,
    print_sov,
    reports_errors,
    short_time,
    show_table,
)
from listener.config import ProjectConfig, load_project
from listener.errors import ConfigError, ListenerError
from listener.mention import SOURCE_KINDS
from listener.store.exporting import EXPORT_COLUMNS, csv_cells

F = TypeVar("F", bound=Callable[..., Any])


# Libraries that log every retry and failure with a traceback; listener reports the
# condition itself in one line, so they are heard only with -v.
_CHATTY_LOGGERS = (
    "elastic_transport",
    "urllib3",
    "scrapy.downloadermiddlewares.retry",
    "scrapy.downloadermiddlewares.robotstxt",
)


# Loggers that repeat one condition per batch (the cluster is down: every batch is spooled);
# the end-of-crawl summary gives the totals, so without -v each message is shown once.
_ONCE_LOGGERS = ("listener.store.indexer", "listener.crawl.pipelines")


class _QuietFilter(logging.Filter):
    """Without -v: libraries' retry chatter hidden, per-batch repeats shown once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, object]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        chatty = any(name == c or name.startswith(c + ".") for c in _CHATTY_LOGGERS)
        if chatty and record.levelno < logging.CRITICAL:
            return False
        if name in _ONCE_LOGGERS:
            key = (name, record.msg)
            if key in self.seen:
                return False
            self.seen.add(key)
        return True


class _LogFormatter(logging.Formatter):
    """One line per record; tracebacks only when asked for (``-v``)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="listener")
@click.option("-v", "--verbose", count=True, help="More log output, with tracebacks (-vv: debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """listener: crawl public mentions of brands, enrich them, index them, report share of voice."""
    ctx.ensure_object(dict)
    level = ["WARNING", "INFO", "DEBUG"][min(verbose, 2)]
    ctx.obj["log_level"] = level
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(_LogFormatter(tracebacks=verbose > 0))
    logging.root.addHandler(handler)
    logging.root.setLevel(level)
    if not verbose:
        handler.addFilter(_QuietFilter())


def _load(config_path: Path) -> ProjectConfig:
    return load_project(config_path)


def _print_summary(summary: Any) -> None:
    for line in summary.lines():
        click.echo(line, err=True)


@main.command()
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

    project = _load(config_path)
    if not project.sources:
        raise ConfigError(f"{project.path}: no [[sources]] configured; add at least one")
    summary = run_crawl(project, log_level=ctx.obj["log_level"], since=parse_time(since, "--since"))
    _print_summary(summary)
    _exit_for(summary, project)


def _exit_for(summary: Any, project: ProjectConfig) -> None:
    """Exit 5 when mentions could not be spooled, 3 when they were (or wait in the spool),
    1 when every source failed, 4 when some did."""
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
    broken = [label for label, s in summary.sources.items() if s.health == "broken"]
    if summary.sources and len(broken) == len(summary.sources):
        fail(f"every source failed ({', '.join(broken)}); see the summary above")
    if broken:
        fail(
            f"{len(broken)} of {len(summary.sources)} sources failed ({', '.join(broken)}); "
            "the others were crawled, see the summary above",
            EXIT_PARTIAL,
        )


@main.command()
@config_option
@click.argument("query", required=False, default="")
@click.option("--brand")
@click.option(
    "--sentiment",
    type=click.Choice(["pos", "neu", "neg", "positive", "neutral", "negative"]),
)
@click.option("--since")
@click.option("--until")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@table_or_json_option
@reports_errors
def search(
    config_path: Path,
    query: str,
    brand: str | None,
    sentiment: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    output_format: str,
) -> None:
    """Full-text search over stored mentions, newest first."""
    from listener.store.queries import search_mentions

    project = _load(config_path)
    if brand:
        brand = project.brand(brand).name
    label = {"pos": "positive", "neu": "neutral", "neg": "negative"}.get(sentiment or "", sentiment)
    with store(project) as client:
        hits = search_mentions(
            client,
            project,
            query or None,
            brand=brand,
            sentiment=label,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            limit=limit,
        )
    if output_format == "json":
        print_json(hits)
        return
    rows = [
        {
            "date": short_time(hit.get("published_at", "")),
            "source": hit.get("source"),
            "brands": ", ".join(hit.get("brand_names") or []),
            "sentiment": (hit.get("sentiment") or {}).get("label"),
            "snippet": highlighted(hit.get("snippet") or (hit.get("text") or "")[:160]),
            "url": hit.get("url"),
        }
        for hit in hits
    ]
    emit(rows, ["date", "source", "brands", "sentiment", "snippet", "url"], "table")
    if not rows:
        err.print("no mentions matched")


@main.command()
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

    project = _load(config_path)
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


@main.command()
@config_option
@click.option("--brand", "brands", multiple=True, help="Only this brand (repeatable).")
@reports_errors
def rematch(config_path: Path, brands: tuple[str, ...]) -> None:
    """Re-label stored mentions with the brands' current keywords and rules (no re-crawl)."""
    from listener.store.relabel import reenrich, rematch_query

    project = _load(config_path)
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


@main.command()
@config_option
@click.argument("rule")
@click.option("--samples", type=click.IntRange(0, 200), default=10, show_default=True)
@table_or_json_option
@reports_errors
def preview(config_path: Path, rule: str, samples: int, output_format: str) -> None:
    """How many stored mentions a draft brand rule matches, with the newest samples."""
    from listener.rules import RuleSyntaxError, parse_rule
    from listener.store.relabel import preview_rule

    project = _load(config_path)
    try:
        parsed = parse_rule(rule, label="rule")
    except RuleSyntaxError as error:
        raise ConfigError(str(error)) from None
    with store(project) as client:
        result = preview_rule(client, project, parsed, samples=samples)
    if output_format == "json":
        print_json({"count": result.count, "samples": result.samples})
        return
    click.echo(f"{result.count} stored mentions match {rule}")
    rows = [
        {
            "date": short_time(s.get("published_at", "")),
            "source": s.get("source"),
            "brands": ", ".join(s.get("brand_names") or []),
            "text": (s.get("title") or s.get("text") or "")[:120],
            "url": s.get("url"),
        }
        for s in result.samples
    ]
    if rows:
        emit(rows, ["date", "source", "brands", "text", "url"], "table")


@main.command()
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

    project = _load(config_path)
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


@main.command()
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

    project = _load(config_path)
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


@main.command()
@config_option
@click.option("--days", type=click.IntRange(min=1), help="Override [retention] days.")
@click.option("--dry-run", is_flag=True, help="Only list the indices that would be dropped.")
@reports_errors
def retention(config_path: Path, days: int | None, dry_run: bool) -> None:
    """Drop the monthly indices older than [retention] days (whole months only)."""
    from listener.store.lifecycle import apply_retention

    project = _load(config_path)
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


@main.command()
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
    project = _load(config_path)
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


@main.command()
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


@main.group()
def plugins() -> None:
    """Source plugins: list them, scaffold a new one, check one against the contract."""


def _describe_field(name: str, info: Any) -> str:
    from listener.sdk.contract import describe_field_type

    annotation = describe_field_type(info.annotation, info.metadata)
    if info.is_required():
        return f"{name}: {annotation} (required)"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, Enum):
        default = default.value
    return f"{name}: {annotation} = {default!r}"


@plugins.command("list")
@table_or_json_option
@reports_errors
def plugins_list(output_format: str) -> None:
    """Every source, built-in and third-party: version, package, options and hooks."""
    from importlib.metadata import PackageNotFoundError, version

    from listener.sdk.plugin_manager import get_registry

    registry = get_registry()
    rows: list[dict[str, Any]] = []
    for name, cls in sorted(registry.sources.items()):
        package = registry.packages.get(name, "?")
        try:
            package_version = version(package)
        except (PackageNotFoundError, ValueError):
            package_version = "?"
        own_options = {
            key: info
            for key, info in cls.Options.model_fields.items()
            if key not in ("plugin", "name")
        }
        rows.append(
            {
                "source": name,
                "kind": str(cls.kind),
                "package": package,
                "version": package_version,
                "module": cls.__module__,
                "api_version": cls.api_version,
                "options": [_describe_field(k, v) for k, v in own_options.items()],
                "hooks": registry.hooks_of(registry.plugin_of.get(name, "")),
            }
        )
    problems = [{"plugin": p.plugin, "reason": p.reason} for p in registry.problems]
    if output_format == "json":
        print_json({"sources": rows, "skipped": problems}, ensure_ascii=True)
        return
    table_rows = [
        {
            **row,
            "options": "\n".join(row["options"]),
            "hooks": "\n".join(row["hooks"]),
        }
        for row in rows
    ]
    emit(
        table_rows,
        ["source", "kind", "package", "version", "options", "hooks"],
        "table",
        title="Sources",
    )
    for problem in problems:
        err.print(f"skipped plugin {problem['plugin']}: {problem['reason']}", markup=False)


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the listener-NAME folder.",
)
@reports_errors
def plugins_new(name: str, directory: Path) -> None:
    """Scaffold an installable source plugin package with recorded responses and tests."""
    from listener.sdk.scaffold import scaffold

    root = scaffold(name, directory)
    click.echo(f"created {root}")
    click.echo(f"next:  pip install -e '{root}[test]'")
    click.echo(f"       listener plugins check {name}")
    click.echo(f"       (cd {root} && pytest)")


@plugins.command("check")
@click.argument("name")
@click.option(
    "--fixtures",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A recorded site (folder with routes.json) to replay; default: the plugin's own.",
)
@reports_errors
def plugins_check(name: str, fixtures: Path | None) -> None:
    """Run a source plugin's contract checks (options, requests, parsing recorded responses)."""
    from listener.sdk.contract import check_plugin

    checks = check_plugin(name, fixtures)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"{mark} {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        fail(f"{len(failed)} of {len(checks)} contract checks failed for source {name!r}")
    click.echo(f"all {len(checks)} contract checks passed for source {name!r}")


@main.group()
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

    project = _load(config_path)
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


# =====================================================================================
# Analytics commands: sentiment, earned, top …, trending, spikes, report, alerts.
# The figures come from listener.analytics (docs/analytics.md has the formulas).
# =====================================================================================

_SOURCE_KINDS = list(SOURCE_KINDS)


def _analytics_options(*, since: str = DEFAULT_SINCE, interval: bool = True) -> Callable[[F], F]:
    """The time range, brand and filter options shared by the analytics commands."""

    def decorate(command: F) -> F:
        options = [
            config_option,
            click.option(
                "--since",
                default=since,
                show_default=True,
                help="Start: ISO date/datetime or relative (7d, 12h, 2w); `all` for everything "
                "stored.",
            ),
            click.option("--until", help="End (exclusive): ISO date/datetime or relative."),
            *(
                [
                    click.option(
                        "--interval",
                        type=click.Choice(["hour", "day", "week", "month"]),
                        help="Break the figures down per period.",
                    )
                ]
                if interval
                else []
            ),
            click.option(
                "--tz", default="UTC", show_default=True, help="Time zone of dates and periods."
            ),
            click.option("--brand", "brands", multiple=True, help="Only this brand (repeatable)."),
            click.option(
                "--source",
                "sources",
                multiple=True,
                help="Only this source: a plugin or a [[sources]] entry's name (repeatable).",
            ),
            click.option(
                "--kind",
                "kinds",
                multiple=True,
                type=click.Choice(_SOURCE_KINDS),
                help="Only this source kind (repeatable).",
            ),
            click.option(
                "--language", "languages", multiple=True, help="Only this language (repeatable)."
            ),
            click.option(
                "--country", "countries", multiple=True, help="Only this country (repeatable)."
            ),
            click.option(
                "--unique/--raw",
                default=True,
                show_default=True,
                help="Count each duplicate cluster once (default), or count every copy.",
            ),
        ]
        return with_options(options)(command)

    return decorate


def _since(value: str | None, tz: str) -> datetime | None:
    """``--since``: a time, or ``all`` for everything stored."""
    if value is None or value.strip().lower() == "all":
        return None
    return parse_time(value, "--since", tz)


def _scope(project: ProjectConfig, options: dict[str, Any]) -> dict[str, Any]:
    """since/until/tz/brands/filters keyword arguments for the analytics API."""
    from listener.analytics.scope import Filters, check_source_names

    tz = options.pop("tz")
    try:
        check_source_names(project, options["sources"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--source") from None
    return {
        "since": _since(options.pop("since"), tz),
        "until": parse_time(options.pop("until"), "--until", tz),
        "tz": tz,
        "brands": [project.brand(name).name for name in options.pop("brands")] or None,
        "filters": Filters.of(
            sources=options.pop("sources"),
            source_kinds=options.pop("kinds"),
            languages=options.pop("languages"),
            countries=options.pop("countries"),
            unique=options.pop("unique"),
        ),
    }


def _empty_hint(client: Any, project: ProjectConfig, scope: dict[str, Any], empty: bool) -> str:
    """When a range held no mention: the stored date range and a --since that shows it."""
    if not empty:
        return ""
    from listener.analytics.scope import empty_range_hint

    return empty_range_hint(client, project, scope["since"], scope["until"], scope["tz"])


def _rates(
    project: ProjectConfig, cpm: Sequence[str], cpe: float | None, currency: str | None
) -> Any:
    """The project's [earned_media] rates with --cpm/--cpe/--currency applied on top."""
    from listener.analytics.settings import EarnedMediaConfig

    rates = dict(project.earned_media.cpm)
    for entry in cpm:
        kind, sep, value = entry.partition("=")
        try:
            rates[kind.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{entry!r}: use KIND=RATE, e.g. social=5.0", param_hint="--cpm"
            ) from None
        if not sep:
            raise click.BadParameter(f"{entry!r}: use KIND=RATE", param_hint="--cpm")
    return EarnedMediaConfig(
        currency=currency or project.earned_media.currency,
        cpm=rates,
        cost_per_engagement=cpe if cpe is not None else project.earned_media.cost_per_engagement,
    )


_rate_options = [
    click.option(
        "--cpm",
        multiple=True,
        metavar="KIND=RATE",
        help="Cost per 1000 impressions (reach) for a source kind, e.g. social=5 (repeatable).",
    ),
    click.option("--cpe", type=float, help="Cost per engagement (like, comment, share)."),
    click.option("--currency", help="Currency label for earned media value (default USD)."),
]


@main.command("sentiment")
@_analytics_options()
@format_option
@reports_errors
def sentiment_command(config_path: Path, output_format: str, **options: Any) -> None:
    """Sentiment per brand: positive/neutral/negative, net sentiment, weighted share of voice."""
    from listener.analytics.measures import NET_SENTIMENT_FORMULA, sentiment, weighted_formula
    from listener.analytics.tables import SENTIMENT_COLUMNS, Table, records, with_period
    from listener.store.queries import parse_zone

    project = _load(config_path)
    interval = options.pop("interval")
    scope = _scope(project, options)
    with store(project) as client:
        rows = sentiment(client, project, interval=interval, **scope)
        hint = _empty_hint(client, project, scope, not any(row.mentions for row in rows))
    weights = project.analytics.sentiment_weights
    table = Table(
        "sentiment",
        "Sentiment" + (f" per {interval}" if interval else ""),
        with_period(SENTIMENT_COLUMNS, bool(interval)),
        records(rows, parse_zone(scope["tz"])),
        [NET_SENTIMENT_FORMULA, weighted_formula(weights)],
    )
    show_table(table, output_format)
    if hint:
        click.echo(hint, err=True)


@main.command("earned")
@_analytics_options()
@with_options(_rate_options)
@format_option
@reports_errors
def earned_command(
    config_path: Path,
    output_format: str,
    cpm: tuple[str, ...],
    cpe: float | None,
    currency: str | None,
    **options: Any,
) -> None:
    """Earned media per brand: mentions off its owned domains/accounts, and their value."""
    from listener.analytics.measures import EARNED_NOTE, EMV_FORMULA, earned_media
    from listener.analytics.tables import EARNED_COLUMNS, Table, records, with_period
    from listener.store.queries import parse_zone

    project = _load(config_path)
    interval = options.pop("interval")
    scope = _scope(project, options)
    rates = _rates(project, cpm, cpe, currency)
    with store(project) as client:
        rows = earned_media(client, project, interval=interval, rates=rates, **scope)
        hint = _empty_hint(client, project, scope, not any(row.mentions for row in rows))
    notes = [EARNED_NOTE]
    if rates.has_rates:
        notes.append(EMV_FORMULA)
        notes.extend(
            f"{row.brand}{' ' + str(row.period) if row.period else ''}: {row.formula}"
            for row in rows
        )
    else:
        notes.append("earned media value: not computed; give rates with --cpm/--cpe or in "
                     "the project file's [earned_media] section")  # fmt: skip
    table = Table(
        "earned_media",
        "Earned media" + (f" per {interval}" if interval else ""),
        with_period(EARNED_COLUMNS, bool(interval)),
        records(rows, parse_zone(scope["tz"])),
        notes if output_format == "table" else [],
    )
    show_table(table, output_format)
    if hint:
        click.echo(hint, err=True)


@main.group("top")
def top_group() -> None:
    """Top authors, domains, sources, co-mentioned entities and earned mentions."""


_limit_option = click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Rows to show."
)
_by_option = click.option(
    "--by",
    type=click.Choice(["mentions", "engagement", "reach"]),
    default="mentions",
    show_default=True,
    help="What to rank by.",
)


def _print_top(
    result: Any,
    name: str,
    title: str,
    columns: list[str],
    fmt: str,
    text_columns: Sequence[str] | None = None,
    hint: str = "",
) -> None:
    from listener.analytics.tables import Table

    notes = []
    if result.truncated:
        notes.append("ranked among the most frequent keys only (there were more)")
    show_table(Table(name, title, columns, result.rows, notes), fmt, text_columns)
    if hint:
        click.echo(hint, err=True)


@top_group.command("authors")
@_analytics_options(interval=False)
@_by_option
@_limit_option
@format_option
@reports_errors
def top_authors_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Authors with the most mentions, engagement or reach (their largest follower count)."""
    from listener.analytics.tables import AUTHOR_COLUMNS
    from listener.analytics.top import AUTHORS_NOTE, top_authors

    project = _load(config_path)
    scope = _scope(project, options)
    with store(project) as client:
        result = top_authors(client, project, by=by, limit=limit, **scope)
        hint = _empty_hint(client, project, scope, not result.rows)
    shown = ["rank", "author", "sources", "mentions", "engagement", "reach", "brands"]
    _print_top(result, "top_authors", f"Top authors by {by}", AUTHOR_COLUMNS, output_format, shown,
               hint)  # fmt: skip
    if output_format == "table":
        click.echo(AUTHORS_NOTE)


@top_group.command("domains")
@_analytics_options(interval=False)
@_by_option
@_limit_option
@format_option
@reports_errors
def top_domains_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Domains carrying the most mentions, engagement or reach."""
    from listener.analytics.tables import DOMAIN_COLUMNS
    from listener.analytics.top import top_domains

    project = _load(config_path)
    scope = _scope(project, options)
    with store(project) as client:
        result = top_domains(client, project, by=by, limit=limit, **scope)
        hint = _empty_hint(client, project, scope, not result.rows)
    _print_top(result, "top_domains", f"Top domains by {by}", DOMAIN_COLUMNS, output_format,
               hint=hint)  # fmt: skip


@top_group.command("sources")
@_analytics_options(interval=False)
@_by_option
@_limit_option
@click.option("--kinds", "by_kind", is_flag=True, help="Group by source kind instead of plugin.")
@format_option
@reports_errors
def top_sources_command(
    config_path: Path, by: str, limit: int, by_kind: bool, output_format: str, **options: Any
) -> None:
    """Source plugins (or, with --kinds, source kinds) by mentions, engagement or reach."""
    from listener.analytics.tables import KIND_COLUMNS, SOURCE_COLUMNS
    from listener.analytics.top import top_sources

    project = _load(config_path)
    field = "source_kind" if by_kind else "source"
    scope = _scope(project, options)
    with store(project) as client:
        result = top_sources(client, project, by=by, limit=limit, field=field, **scope)
        hint = _empty_hint(client, project, scope, not result.rows)
    columns = KIND_COLUMNS if by_kind else SOURCE_COLUMNS
    name = "top_source_kinds" if by_kind else "top_sources"
    _print_top(result, name, f"Top {'source kinds' if by_kind else 'sources'} by {by}", columns,
               output_format, hint=hint)  # fmt: skip


@top_group.command("entities")
@_analytics_options(interval=False)
@_limit_option
@format_option
@reports_errors
def top_entities_command(config_path: Path, limit: int, output_format: str, **options: Any) -> None:
    """Named entities most often co-mentioned with each brand."""
    from listener.analytics.tables import ENTITY_COLUMNS
    from listener.analytics.top import ENTITIES_NOTE, top_entities

    project = _load(config_path)
    scope = _scope(project, options)
    with store(project) as client:
        result = top_entities(client, project, limit=limit, **scope)
        hint = _empty_hint(client, project, scope, not result.rows)
    _print_top(result, "top_entities", "Entities co-mentioned", ENTITY_COLUMNS, output_format,
               hint=hint)  # fmt: skip
    if output_format == "table":
        click.echo(ENTITIES_NOTE)


@top_group.command("earned")
@_analytics_options(interval=False)
@click.option(
    "--by",
    type=click.Choice(["engagement", "reach", "recent"]),
    default="engagement",
    show_default=True,
)
@_limit_option
@format_option
@reports_errors
def top_earned_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Each brand's top earned mentions (not on its own domains or accounts)."""
    from listener.analytics.measures import top_earned_mentions
    from listener.analytics.tables import MENTION_COLUMNS, Table

    project = _load(config_path)
    with store(project) as client:
        rows = top_earned_mentions(client, project, by=by, limit=limit, **_scope(project, options))
    show_table(Table("top_earned_mentions", f"Top earned mentions by {by}", MENTION_COLUMNS, rows),
          output_format, ["brand", "rank", "published_at", "source", "author", "engagement",
                          "sentiment", "url"])  # fmt: skip


@main.command("trending")
@_analytics_options(interval=False)
@click.option(
    "--field",
    type=click.Choice(["auto", "phrases", "entities"]),
    default="auto",
    show_default=True,
    help="Terms from key phrases, or named entities (auto: phrases when stored).",
)
@_limit_option
@click.option("--min-count", type=click.IntRange(1), help="Smallest count in the current range.")
@format_option
@reports_errors
def trending_command(
    config_path: Path,
    field: str,
    limit: int,
    min_count: int | None,
    output_format: str,
    **options: Any,
) -> None:
    """Terms whose frequency for each brand rose most against the range before."""
    from listener.analytics.tables import TRENDING_COLUMNS, Table
    from listener.analytics.trending import TRENDING_FORMULA, trending_terms
    from listener.store.queries import parse_zone

    project = _load(config_path)
    scope = _scope(project, options)
    if scope["since"] is None:
        raise click.BadParameter(
            "trending compares a range with the one before it: give a start, e.g. 30d",
            param_hint="--since",
        )
    with store(project) as client:
        result = trending_terms(
            client, project, field=field, limit=limit, min_count=min_count, **scope
        )
        empty = not any(now for now, _ in result.mentions.values())
        hint = _empty_hint(client, project, scope, empty)
    zone = parse_zone(scope["tz"])
    start, end, before = (
        moment.astimezone(zone) for moment in (*result.current, result.previous[0])
    )
    notes = [
        f"compared {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} with the "
        f"{before:%Y-%m-%d %H:%M} to {start:%Y-%m-%d %H:%M} before it ({scope['tz']}); terms from "
        f"{'phrases' if result.field == 'phrases' else 'named entities (no key phrases in range)'}",
        TRENDING_FORMULA,
    ]
    show_table(Table("trending_terms", "Trending terms", TRENDING_COLUMNS, result.records(),
                notes if output_format == "table" else []), output_format)  # fmt: skip
    if hint:
        click.echo(hint, err=True)


@main.command("spikes")
@_analytics_options(interval=False)
@click.option(
    "--interval",
    type=click.Choice(["hour", "day", "week", "month"]),
    default="day",
    show_default=True,
)
@click.option(
    "--metric", type=click.Choice(["mentions", "negative"]), default="mentions", show_default=True
)
@click.option("--k", type=click.FloatRange(min=0, min_open=True), help="Standard deviations.")
@click.option("--window", type=click.IntRange(2, 366), help="Trailing periods in the baseline.")
@click.option("--min-count", type=click.IntRange(1), help="Smallest count that can be a spike.")
@click.option("--all", "show_all", is_flag=True, help="Print every period with its threshold.")
@format_option
@reports_errors
def spikes_command(
    config_path: Path,
    interval: str,
    metric: str,
    k: float | None,
    window: int | None,
    min_count: int | None,
    show_all: bool,
    output_format: str,
    **options: Any,
) -> None:
    """Periods where a brand's (negative) mentions exceed mean + k*sd of the trailing window."""
    from listener.analytics.spikes import detect_spikes
    from listener.analytics.tables import BASELINE_COLUMNS, SPIKE_COLUMNS, Table, records
    from listener.store.queries import parse_zone

    project = _load(config_path)
    scope = _scope(project, options)
    with store(project) as client:
        analysis = detect_spikes(
            client,
            project,
            interval=interval,
            metric=metric,
            k=k,
            window=window,
            min_count=min_count,
            **scope,
        )
        hint = _empty_hint(client, project, scope, not any(p.count for p in analysis.series))
    if hint:
        click.echo(hint, err=True)
    zone = parse_zone(scope["tz"])
    if show_all:
        table = Table("spike_baselines", f"{metric} per {interval}", BASELINE_COLUMNS,
                      records(analysis.series, zone), [analysis.formula])  # fmt: skip
    else:
        table = Table("spikes", f"Spikes in {metric} per {interval}", SPIKE_COLUMNS,
                      [s.record(zone) for s in analysis.spikes], [analysis.formula])  # fmt: skip
    if output_format != "table":
        table.notes = []
        show_table(table, output_format)
        return
    if not show_all:
        table.columns = ["period", "brand", "metric", "count", "mean", "std", "threshold"]
    show_table(table, output_format)
    for spike in analysis.spikes if not show_all else []:
        record = spike.record(zone)
        click.echo(
            f"\n{spike.brand} {record['period']} ({metric}): {spike.count} against a mean of "
            f"{spike.mean:.1f}, threshold {spike.threshold:.1f}"
        )
        explanation = spike.explanation
        if explanation.terms:
            click.echo(
                "  terms:   " + ", ".join(f"{t.term} ({t.count})" for t in explanation.terms)
            )
        if explanation.sources:
            click.echo("  sources: " + ", ".join(f"{s} ({n})" for s, n in explanation.sources))
        if explanation.domains:
            click.echo("  domains: " + ", ".join(f"{d} ({n})" for d, n in explanation.domains))
        for sample in explanation.samples:
            click.echo(f"  sample:  {sample.get('url')}  {sample.get('title') or ''}".rstrip())


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


@main.command("report")
@_analytics_options()
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
@with_options(_rate_options)
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

    project = _load(config_path)
    interval = options.pop("interval")
    scope = _scope(project, options)
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
            rates=_rates(project, cpm, cpe, currency),
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


@main.command("alerts")
@config_option
@click.option("--rule", "rules", multiple=True, help="Only this rule (repeatable).")
@click.option("--dry-run", is_flag=True, help="Evaluate and show; post and record nothing.")
@click.option("--at", help="Evaluate as of this time (ISO or relative), e.g. to replay a day.")
@table_or_json_option
@reports_errors
def alerts_command(
    config_path: Path, rules: tuple[str, ...], dry_run: bool, at: str | None, output_format: str
) -> None:
    """Evaluate the spike rules over the latest periods; post new alerts to the webhooks."""
    from listener.analytics.alerts import run_alerts

    project = _load(config_path)
    if not project.alerts.rules:
        raise ConfigError(f"{project.path}: no [[alerts.rules]] configured; see docs/analytics.md")
    with store(project) as client:
        run = run_alerts(
            client, project, rules=rules or None, dry_run=dry_run, now=parse_time(at, "--at")
        )
    if output_format == "json":
        print_json({
            "sent": [a.record() for a in run.sent],
            "suppressed": [{**a.record(), "reason": why} for a, why in run.suppressed],
            "deliveries": [d.__dict__ for d in run.deliveries],
            "dry_run": dry_run,
        })  # fmt: skip
    else:
        shown = run.sent if dry_run else run.printed
        for alert in shown:
            click.echo(alert.text())
            click.echo("")
        for delivery in run.deliveries:
            state = "sent" if delivery.ok else "FAILED"
            detail = f" ({delivery.error})" if delivery.error else ""
            err.print(f"{state}: {delivery.alert} -> {delivery.destination} after "
                      f"{delivery.attempts} attempt(s){detail}", markup=False)  # fmt: skip
        for alert, why in run.suppressed:
            err.print(f"suppressed: {alert.key} ({why})", markup=False)
        verb = "would send" if dry_run else "sent" if project.alerts.webhooks else "printed"
        err.print(f"{verb} {len(run.sent)} alert(s), suppressed {len(run.suppressed)}",
                  markup=False)  # fmt: skip
    if run.failed:
        fail(
            f"{len(run.failed)} of {len(run.deliveries)} webhook deliveries failed; "
            "they will be retried on the next run"
        )


# =====================================================================================
# listener serve: the REST API and dashboard (listener.web, docs/web.md).
# =====================================================================================


@main.command("serve")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.pass_context
@reports_errors
def serve_command(ctx: click.Context, config_path: Path, host: str, port: int) -> None:
    """Serve the REST API and the dashboard (token: LISTENER_API_TOKEN, needed beyond loopback)."""
    from listener.web.server import serve

    serve(
        _load(config_path),
        host=host,
        port=port,
        verbose=ctx.obj["log_level"] != "WARNING",
        echo=lambda line: click.echo(line, err=True),
    )


@main.command("sov")
@_analytics_options()
@click.option(
    "--by",
    "measure",
    type=click.Choice(["mentions", "engagement", "reach"]),
    default="mentions",
    show_default=True,
)
@format_option
@reports_errors
def sov(config_path: Path, measure: str, output_format: str, **options: Any) -> None:
    """Share of voice per brand (and per period with --interval)."""
    from listener.analytics.measures import share_of_voice

    project = _load(config_path)
    interval = options.pop("interval")
    scope = _scope(project, options)
    with store(project) as client:
        rows = share_of_voice(client, project, interval=interval, by=measure, **scope)
        hint = _empty_hint(client, project, scope, not any(row.mentions for row in rows))
    print_sov(rows, interval, output_format)
    if hint:
        click.echo(hint, err=True)


# listener run / listener worker: the always-on service (listener.service, docs/deployment.md).
from listener.service.commands import run_command, worker_command  # noqa: E402

main.add_command(run_command)
main.add_command(worker_command)
