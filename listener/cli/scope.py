"""What the analytics commands share: time range, brand and filter options, earned-media
rates, and the hint printed when a range held no mention.

The figures come from listener.analytics (docs/analytics.md has the formulas).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from listener.analytics.settings import DEFAULT_SINCE
from listener.cli.options import config_option, parse_time, with_options
from listener.config import ProjectConfig
from listener.mention import SOURCE_KINDS

F = TypeVar("F", bound=Callable[..., Any])


_SOURCE_KINDS = list(SOURCE_KINDS)


def analytics_options(*, since: str = DEFAULT_SINCE, interval: bool = True) -> Callable[[F], F]:
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


def analytics_scope(project: ProjectConfig, options: dict[str, Any]) -> dict[str, Any]:
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


def empty_hint(client: Any, project: ProjectConfig, scope: dict[str, Any], empty: bool) -> str:
    """When a range held no mention: the stored date range and a --since that shows it."""
    if not empty:
        return ""
    from listener.analytics.scope import empty_range_hint

    return empty_range_hint(client, project, scope["since"], scope["until"], scope["tz"])


def earned_rates(
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


rate_options = [
    click.option(
        "--cpm",
        multiple=True,
        metavar="KIND=RATE",
        help="Cost per 1000 impressions (reach) for a source kind, e.g. social=5 (repeatable).",
    ),
    click.option("--cpe", type=float, help="Cost per engagement (like, comment, share)."),
    click.option("--currency", help="Currency label for earned media value (default USD)."),
]

limit_option = click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Rows to show."
)
by_option = click.option(
    "--by",
    type=click.Choice(["mentions", "engagement", "reach"]),
    default="mentions",
    show_default=True,
    help="What to rank by.",
)
