"""Reading stored mentions: ``listener search`` and ``listener preview`` (a draft rule)."""

from __future__ import annotations

from pathlib import Path

import click

from listener.cli.options import config_option, parse_time, store, table_or_json_option
from listener.cli.output import emit, err, highlighted, print_json, reports_errors, short_time
from listener.config import load_project
from listener.errors import ConfigError


@click.command()
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

    project = load_project(config_path)
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


@click.command()
@config_option
@click.argument("rule")
@click.option("--samples", type=click.IntRange(0, 200), default=10, show_default=True)
@table_or_json_option
@reports_errors
def preview(config_path: Path, rule: str, samples: int, output_format: str) -> None:
    """How many stored mentions a draft brand rule matches, with the newest samples."""
    from listener.rules import RuleSyntaxError, parse_rule
    from listener.store.relabel import preview_rule

    project = load_project(config_path)
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
