"""Analytics commands: ``listener sov``, ``sentiment``, ``earned``, ``trending``, ``spikes``
and ``alerts``.

The figures come from listener.analytics (docs/analytics.md has the formulas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from listener.cli.options import (
    config_option,
    format_option,
    parse_time,
    store,
    table_or_json_option,
    with_options,
)
from listener.cli.output import err, fail, print_json, print_sov, reports_errors, show_table
from listener.cli.scope import (
    analytics_options,
    analytics_scope,
    earned_rates,
    empty_hint,
    limit_option,
    rate_options,
)
from listener.config import load_project
from listener.errors import ConfigError


@click.command("sentiment")
@analytics_options()
@format_option
@reports_errors
def sentiment_command(config_path: Path, output_format: str, **options: Any) -> None:
    """Sentiment per brand: positive/neutral/negative, net sentiment, weighted share of voice."""
    from listener.analytics.measures import NET_SENTIMENT_FORMULA, sentiment, weighted_formula
    from listener.analytics.tables import SENTIMENT_COLUMNS, Table, records, with_period
    from listener.store.queries import parse_zone

    project = load_project(config_path)
    interval = options.pop("interval")
    scope = analytics_scope(project, options)
    with store(project) as client:
        rows = sentiment(client, project, interval=interval, **scope)
        hint = empty_hint(client, project, scope, not any(row.mentions for row in rows))
    weights = project.analytics.sentiment_weights
    table = Table(
        "sentiment",
        "Sentiment" + (f" per {interval}" if interval else ""),
        with_period(SENTIMENT_COLUMNS, bool(interval)),
        records(rows, parse_zone(scope["tz"])),
        [NET_SENTIMENT_FORMULA, weighted_formula(weights)],
    )
    show_table(table, output_format, hint=hint)


@click.command("earned")
@analytics_options()
@with_options(rate_options)
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

    project = load_project(config_path)
    interval = options.pop("interval")
    scope = analytics_scope(project, options)
    rates = earned_rates(project, cpm, cpe, currency)
    with store(project) as client:
        rows = earned_media(client, project, interval=interval, rates=rates, **scope)
        hint = empty_hint(client, project, scope, not any(row.mentions for row in rows))
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
    show_table(table, output_format, hint=hint)


@click.command("trending")
@analytics_options(interval=False)
@click.option(
    "--field",
    type=click.Choice(["auto", "phrases", "entities"]),
    default="auto",
    show_default=True,
    help="Terms from key phrases, or named entities (auto: phrases when stored).",
)
@limit_option
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

    project = load_project(config_path)
    scope = analytics_scope(project, options)
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
        hint = empty_hint(client, project, scope, empty)
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
    shown = notes if output_format == "table" else []
    table = Table("trending_terms", "Trending terms", TRENDING_COLUMNS, result.records(), shown)
    show_table(table, output_format, hint=hint)


@click.command("spikes")
@analytics_options(interval=False)
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

    project = load_project(config_path)
    scope = analytics_scope(project, options)
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
        hint = empty_hint(client, project, scope, not any(p.count for p in analysis.series))
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


@click.command("alerts")
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

    project = load_project(config_path)
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


@click.command("sov")
@analytics_options()
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

    project = load_project(config_path)
    interval = options.pop("interval")
    scope = analytics_scope(project, options)
    with store(project) as client:
        rows = share_of_voice(client, project, interval=interval, by=measure, **scope)
        hint = empty_hint(client, project, scope, not any(row.mentions for row in rows))
    print_sov(rows, interval, output_format)
    if hint:
        click.echo(hint, err=True)
