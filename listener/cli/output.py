"""What the ``listener`` commands print: tables, CSV, JSON, errors and exit codes.

Every command prints through these functions, so a table, a CSV file or a
JSON document looks the same whichever command wrote it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from listener.errors import ConfigError, ListenerError

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SPOOLED = 3
EXIT_PARTIAL = 4
EXIT_UNSAVED = 5
EXIT_STOPPED = 6


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


def print_json(value: Any, *, ensure_ascii: bool = False) -> None:
    """``value`` as indented JSON on stdout (what is not JSON, such as dates, as text)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=ensure_ascii, default=str))


def emit(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], output_format: str, title: str = ""
) -> None:
    """Rows as a terminal table, CSV (``columns`` only) or JSON (every key)."""
    if output_format == "json":
        print_json(list(rows))
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


def _cell(value: Any) -> str | Text:
    if value is None:
        return ""
    if isinstance(value, Text):
        return value
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def short_time(value: Any) -> str:
    """An ISO time as ``2024-05-01 12:30`` for a table cell."""
    return str(value)[:16].replace("T", " ")


def highlighted(snippet: str) -> Text:
    """A search snippet for the terminal: ``<em>`` marks as emphasis, nothing read as markup.

    The engine marks matched terms with ``<em>…</em>`` (kept as such in JSON output).
    """
    text = Text()
    emphasis = False
    for part in re.split(r"(</?em>)", snippet):
        if part in ("<em>", "</em>"):
            emphasis = part == "<em>"
        elif part:
            text.append(part, style="bold underline" if emphasis else "")
    return text


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
    emit(records, columns, output_format, title="Share of voice")


# Analytics tables (listener.analytics.tables.Table): figures shown as percentages.
_PERCENT = {
    "share",
    "weighted_share",
    "earned_share",
    "share_before",
    "engagement_share",
    "reach_share",
    "mentions_change",
}


# Columns left out of text tables (they stay in JSON and CSV): raw or secondary figures.
_TEXT_HIDDEN = {"formula", "weighted", "reach_known", "earned_reach_known", "currency", "value",
                "total", "id"}  # fmt: skip


# Reach columns: "unknown" in text tables when no mention counted had a figure (0 would
# read as "nobody saw it"); JSON and CSV keep the number with its *_known count.
_REACH = {"reach", "earned_reach"}
REACH_NOTE = (
    "reach: the authors' followers where the source reports them, else the project file's "
    '[audience] estimate for the domain (e.g. [audience] "techcrunch.com" = 12000000); '
    "unknown where no mention had either"
)


def show_table(
    table: Any, output_format: str, text_columns: Sequence[str] | None = None, hint: str = ""
) -> None:
    """Print an analytics Table: text with its notes, or JSON/CSV rows only; then ``hint``
    (why the range held nothing) on stderr.

    ``text_columns`` narrows what the text table shows (JSON and CSV have every column).
    """
    if output_format == "json":
        click.echo(table.to_json())
    elif output_format == "csv":
        click.echo(table.to_csv(), nl=False)
    else:
        _print_text(table, text_columns)
    if hint:
        click.echo(hint, err=True)


def _print_text(table: Any, text_columns: Sequence[str] | None) -> None:
    columns = list(text_columns or [c for c in table.columns if c not in _TEXT_HIDDEN])
    rows = []
    for row in table.rows:
        shown: dict[str, Any] = {}
        for column in columns:
            value = row.get(column)
            if column == "mentions_change" and isinstance(value, (int, float)):
                value = f"{value * 100:+.1f}%"
            elif column in _PERCENT and isinstance(value, (int, float)):
                value = f"{value * 100:.1f}%"
            elif column.startswith("net_sentiment") and isinstance(value, float):
                value = f"{value:+.3f}"
            elif column == "share_change_pp" and isinstance(value, float):
                value = f"{value:+.1f} pp"
            elif column == "emv" and isinstance(value, float):
                value = f"{value:,.2f}"
            elif column in _REACH and row.get(f"{column}_known") == 0:
                value = "unknown"  # no mention had followers or an [audience] estimate
            elif column == "published_at" and isinstance(value, str):
                value = short_time(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}: {v}" for k, v in value.items())
            # Headers with spaces wrap between words instead of squeezing the values.
            shown[column.replace("_", " ")] = value
        rows.append(shown)
    headers = [c.replace("_", " ") for c in columns]
    emit(rows, headers, "table", title=table.title)
    if not table.rows:
        err.print("nothing matched")
    for note in table.notes:
        click.echo(note)
    if any(column in _REACH for column in columns) and any(
        row.get(f"{column}_known") == 0 for row in table.rows for column in _REACH
    ):
        click.echo(REACH_NOTE)
