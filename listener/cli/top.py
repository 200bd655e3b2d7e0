"""``listener top``: top authors, domains, sources, co-mentioned entities and earned mentions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import click

from listener.cli.options import format_option, store
from listener.cli.output import reports_errors, show_table
from listener.cli.scope import (
    analytics_options,
    analytics_scope,
    by_option,
    empty_hint,
    limit_option,
)
from listener.config import load_project


@click.group("top")
def top_group() -> None:
    """Top authors, domains, sources, co-mentioned entities and earned mentions."""


def _show_top(
    config_path: Path,
    options: dict[str, Any],
    rank: Callable[..., Any],
    table: tuple[str, str, list[str]],
    output_format: str,
    text_columns: Sequence[str] | None = None,
) -> None:
    """Rank with ``rank(client, project, **scope)`` and print the result as ``table``
    (name, title, columns)."""
    from listener.analytics.tables import Table

    project = load_project(config_path)
    scope = analytics_scope(project, options)
    with store(project) as client:
        result = rank(client, project, **scope)
        hint = empty_hint(client, project, scope, not result.rows)
    notes = []
    if result.truncated:
        notes.append("ranked among the most frequent keys only (there were more)")
    show_table(Table(*table, result.rows, notes), output_format, text_columns, hint)


@top_group.command("authors")
@analytics_options(interval=False)
@by_option
@limit_option
@format_option
@reports_errors
def top_authors_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Authors with the most mentions, engagement or reach (their largest follower count)."""
    from listener.analytics.tables import AUTHOR_COLUMNS
    from listener.analytics.top import AUTHORS_NOTE, top_authors

    shown = ["rank", "author", "sources", "mentions", "engagement", "reach", "brands"]
    _show_top(
        config_path,
        options,
        partial(top_authors, by=by, limit=limit),
        ("top_authors", f"Top authors by {by}", AUTHOR_COLUMNS),
        output_format,
        shown,
    )
    if output_format == "table":
        click.echo(AUTHORS_NOTE)


@top_group.command("domains")
@analytics_options(interval=False)
@by_option
@limit_option
@format_option
@reports_errors
def top_domains_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Domains carrying the most mentions, engagement or reach."""
    from listener.analytics.tables import DOMAIN_COLUMNS
    from listener.analytics.top import top_domains

    _show_top(
        config_path,
        options,
        partial(top_domains, by=by, limit=limit),
        ("top_domains", f"Top domains by {by}", DOMAIN_COLUMNS),
        output_format,
    )


@top_group.command("sources")
@analytics_options(interval=False)
@by_option
@limit_option
@click.option("--kinds", "by_kind", is_flag=True, help="Group by source kind instead of plugin.")
@format_option
@reports_errors
def top_sources_command(
    config_path: Path, by: str, limit: int, by_kind: bool, output_format: str, **options: Any
) -> None:
    """Source plugins (or, with --kinds, source kinds) by mentions, engagement or reach."""
    from listener.analytics.tables import KIND_COLUMNS, SOURCE_COLUMNS
    from listener.analytics.top import top_sources

    field = "source_kind" if by_kind else "source"
    table = (
        "top_source_kinds" if by_kind else "top_sources",
        f"Top {'source kinds' if by_kind else 'sources'} by {by}",
        KIND_COLUMNS if by_kind else SOURCE_COLUMNS,
    )
    rank = partial(top_sources, by=by, limit=limit, field=field)
    _show_top(config_path, options, rank, table, output_format)


@top_group.command("entities")
@analytics_options(interval=False)
@limit_option
@format_option
@reports_errors
def top_entities_command(config_path: Path, limit: int, output_format: str, **options: Any) -> None:
    """Named entities most often co-mentioned with each brand."""
    from listener.analytics.tables import ENTITY_COLUMNS
    from listener.analytics.top import ENTITIES_NOTE, top_entities

    _show_top(
        config_path,
        options,
        partial(top_entities, limit=limit),
        ("top_entities", "Entities co-mentioned", ENTITY_COLUMNS),
        output_format,
    )
    if output_format == "table":
        click.echo(ENTITIES_NOTE)


@top_group.command("earned")
@analytics_options(interval=False)
@click.option(
    "--by",
    type=click.Choice(["engagement", "reach", "recent"]),
    default="engagement",
    show_default=True,
)
@limit_option
@format_option
@reports_errors
def top_earned_command(
    config_path: Path, by: str, limit: int, output_format: str, **options: Any
) -> None:
    """Each brand's top earned mentions (not on its own domains or accounts)."""
    from listener.analytics.measures import top_earned_mentions
    from listener.analytics.tables import MENTION_COLUMNS, Table

    project = load_project(config_path)
    with store(project) as client:
        scope = analytics_scope(project, options)
        rows = top_earned_mentions(client, project, by=by, limit=limit, **scope)
    show_table(Table("top_earned_mentions", f"Top earned mentions by {by}", MENTION_COLUMNS, rows),
          output_format, ["brand", "rank", "published_at", "source", "author", "engagement",
                          "sentiment", "url"])  # fmt: skip
