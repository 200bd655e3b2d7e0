"""What several ``listener`` commands share: the options they take and the store they open."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from listener.config import ProjectConfig

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    default="listener.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project file.",
)
#: ``--format`` for commands whose rows fit a table, JSON and CSV.
format_option = click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table"
)
#: ``--format`` for commands whose output is a table or a JSON document.
table_or_json_option = click.option(
    "--format", "output_format", type=click.Choice(["table", "json"]), default="table"
)


def with_options(options: Sequence[Callable[[F], F]]) -> Callable[[F], F]:
    """Apply several click options at once, in the order they are listed."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@contextmanager
def store(project: ProjectConfig) -> Iterator[Any]:
    """A connected Elasticsearch client (the embedded engine is started when no URL is set)."""
    from listener.store.engine import connect

    with connect(project) as client:
        yield client


def parse_time(value: str | None, option: str, tz: str = "UTC") -> datetime | None:
    """An option's time (ISO or relative, e.g. 7d), or a usage error naming the option."""
    if value is None:
        return None
    from listener.store.queries import parse_time as parse

    try:
        return parse(value, tz=tz)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None
