"""The ``listener`` command line."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from listener import __version__
from listener.config import ProjectConfig, load_project
from listener.errors import ConfigError, ListenerError

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SPOOLED = 3


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print a one-line reason on stderr and exit."""
    first, *rest = message.splitlines() or [""]
    click.echo(f"error: {first}", err=True)
    for line in rest:
        click.echo(f"  {line}", err=True)
    sys.exit(code)


def reports_errors(command: F) -> F:
    """Turn listener's own errors into a one-line reason and a non-zero exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            fail(str(error), EXIT_USAGE)
        except ListenerError as error:
            fail(str(error))
        except ValueError as error:
            fail(str(error), EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "-c",
    "--config",
    "config_path",
    default="listener.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project file.",
)
format_option = click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table"
)


@contextmanager
def store(project: ProjectConfig) -> Iterator[Any]:
    """A connected Elasticsearch client (the embedded engine is started when no URL is set)."""
    from listener.engine import connect

    with connect(project) as client:
        yield client


def _time(value: str | None, option: str, tz: str = "UTC") -> datetime | None:
    if value is None:
        return None
    from listener.queries import parse_time

    try:
        return parse_time(value, tz=tz)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def _emit(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], output_format: str, title: str = ""
) -> None:
    if output_format == "json":
        click.echo(json.dumps(list(rows), indent=2, default=str, ensure_ascii=False))
        return
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        click.echo(buffer.getvalue(), nl=False)
        return
    table = Table(title=title or None, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="listener")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """listener: crawl public mentions of brands, enrich them, index them, report share of voice."""
    ctx.ensure_object(dict)
    level = ["WARNING", "INFO", "DEBUG"][min(verbose, 2)]
    ctx.obj["log_level"] = level
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.root.addHandler(handler)
    logging.root.setLevel(level)


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
    from listener.crawl import run_crawl

    project = _load(config_path)
    if not project.sources:
        raise ConfigError(f"{project.path}: no [[sources]] configured; add at least one")
    summary = run_crawl(project, log_level=ctx.obj["log_level"], since=_time(since, "--since"))
    _print_summary(summary)
    _exit_for(summary)


def _exit_for(summary: Any) -> None:
    if summary.spooled:
        fail(
            f"{summary.spooled} mentions were spooled because the engine was unreachable; "
            "run the crawl again once it is back to index them",
            EXIT_SPOOLED,
        )
    working = [s for s in summary.sources.values() if s.health != "broken"]
    if summary.sources and not working:
        names = ", ".join(summary.sources)
        fail(f"every source failed ({names}); see the summary above")


@main.command()
@config_option
@click.option("--since", help="ISO date/datetime or relative (7d, 12h, 2w).")
@click.option("--until", help="ISO date/datetime or relative.")
@click.option("--interval", type=click.Choice(["day", "week", "month"]))
@click.option("--by", "measure", type=click.Choice(["mentions", "engagement"]), default="mentions")
@click.option("--tz", default="UTC", show_default=True, help="Time zone for period boundaries.")
@format_option
@reports_errors
def sov(
    config_path: Path,
    since: str | None,
    until: str | None,
    interval: str | None,
    measure: str,
    tz: str,
    output_format: str,
) -> None:
    """Share of voice per brand (and per period with --interval)."""
    from listener.queries import share_of_voice

    project = _load(config_path)
    start, end = _time(since, "--since", tz), _time(until, "--until", tz)
    with store(project) as client:
        rows = share_of_voice(
            client, project, since=start, until=end, interval=interval, by=measure, tz=tz
        )
    print_sov(rows, interval, output_format)


def print_sov(rows: Iterable[Any], interval: str | None, output_format: str) -> None:
    """Share-of-voice rows as a table, JSON or CSV."""
    records = []
    for row in rows:
        record: dict[str, Any] = {
            "brand": row.brand,
            "mentions": row.mentions,
            "engagement": row.engagement,
            "share": round(row.share, 6),
        }
        if interval:
            record = {"period": row.period.isoformat() if row.period else None, **record}
        records.append(record)
    columns = (["period"] if interval else []) + ["brand", "mentions", "engagement", "share"]
    if output_format == "table":
        for record in records:
            record["share"] = f"{record['share'] * 100:.1f}%"
    _emit(records, columns, output_format, title="Share of voice")


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
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
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
    from listener.queries import search_mentions

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
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            limit=limit,
        )
    if output_format == "json":
        click.echo(json.dumps(hits, indent=2, ensure_ascii=False, default=str))
        return
    rows = [
        {
            "date": str(hit.get("published_at", ""))[:16].replace("T", " "),
            "source": hit.get("source"),
            "brands": ", ".join(hit.get("brand_names") or []),
            "sentiment": (hit.get("sentiment") or {}).get("label"),
            "snippet": hit.get("snippet") or (hit.get("text") or "")[:160],
            "url": hit.get("url"),
        }
        for hit in hits
    ]
    _emit(rows, ["date", "source", "brands", "sentiment", "snippet", "url"], "table")
    if not rows:
        err.print("no mentions matched")


EXPORT_COLUMNS = [
    "id",
    "source",
    "source_kind",
    "url",
    "canonical_url",
    "domain",
    "title",
    "text",
    "language",
    "published_at",
    "crawled_at",
    "author",
    "engagement",
    "rating",
    "thread_id",
    "parent_id",
    "brands",
    "brand_names",
    "entities",
    "phrases",
    "sentiment",
    "country",
    "cluster_id",
    "duplicate",
]


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
    from listener.queries import iter_mentions

    project = _load(config_path)
    count = 0
    with store(project) as client:
        writer = None
        if output_format == "csv":
            writer = csv.DictWriter(output, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
        for document in iter_mentions(
            client, project, since=_time(since, "--since"), until=_time(until, "--until")
        ):
            if writer is None:
                output.write(json.dumps(document, ensure_ascii=False) + "\n")
            else:
                writer.writerow(
                    {
                        key: json.dumps(value, ensure_ascii=False)
                        if isinstance(value, (dict, list))
                        else value
                        for key, value in document.items()
                    }
                )
            count += 1
    err.print(f"exported {count} mentions")


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
    from listener.demo import run_demo

    run_demo(home, log_level=ctx.obj["log_level"], console=err, on_sov=print_sov)


@main.group()
def plugins() -> None:
    """Source plugins: list them, scaffold a new one, check one against the contract."""


def _describe_field(name: str, info: Any) -> str:
    kind = info.annotation
    plain = isinstance(kind, type) and not getattr(kind, "__args__", None)
    annotation = kind.__name__ if plain else str(kind).replace("typing.", "")
    if info.is_required():
        return f"{name}: {annotation} (required)"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, Enum):
        default = default.value
    return f"{name}: {annotation} = {default!r}"


@plugins.command("list")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@reports_errors
def plugins_list(output_format: str) -> None:
    """Every source, built-in and third-party: version, package, options and hooks."""
    from importlib.metadata import PackageNotFoundError, version

    from listener.plugin_manager import get_registry

    registry = get_registry()
    rows = []
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
        click.echo(json.dumps({"sources": rows, "skipped": problems}, indent=2))
        return
    table_rows = [
        {**row, "options": "\n".join(row["options"]), "hooks": "\n".join(row["hooks"])}
        for row in rows
    ]
    _emit(
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
    from listener.scaffold import scaffold

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
    from listener.contract import check_plugin

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
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@reports_errors
def sources_status(config_path: Path, limit: int, output_format: str) -> None:
    """Which sources are healthy, degraded or broken over the last runs."""
    from dataclasses import asdict

    from listener.health import load_runs, source_health

    project = _load(config_path)
    runs = load_runs(project.home, limit)
    if not runs:
        raise ListenerError(f"no crawl has been recorded under {project.home / 'runs'} yet")
    report = [asdict(entry) for entry in source_health(runs)]
    if output_format == "json":
        click.echo(json.dumps(report, indent=2))
        return
    for row in report:
        row["history"] = " ".join(row["history"])
    _emit(
        report,
        ["source", "status", "history", "last_run_mentions", "last_run_errors", "last_success",
         "last_error"],
        "table",
        title=f"Source health over the last {len(runs)} run(s)",
    )  # fmt: skip


if __name__ == "__main__":
    main()
