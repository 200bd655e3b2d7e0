"""``listener run`` and ``listener worker``: the always-on service (listener.service,
docs/deployment.md)."""

from __future__ import annotations

from pathlib import Path

import click

from listener.cli.options import config_option
from listener.cli.output import reports_errors
from listener.config import load_project


def _echo(line: str) -> None:
    click.echo(line, err=True)


@click.command("run")
@config_option
@click.option("--serve", is_flag=True, help="Also serve the dashboard and API (as listener serve).")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="With --serve: port.")  # fmt: skip
@click.pass_context
@reports_errors
def run_command(ctx: click.Context, config_path: Path, serve: bool, host: str, port: int) -> None:
    """Stay up: crawl each source entry at its interval (every), run alerts after crawls.

    With [cluster] redis_url (or LISTENER_REDIS_URL) it only queues due work
    for `listener worker` processes. SIGTERM or Ctrl-C stops gracefully.
    """
    from listener.service.process import run_service

    run_service(
        load_project(config_path),
        serve=serve,
        host=host,
        port=port,
        log_level=ctx.obj["log_level"] if ctx.obj else "WARNING",
        echo=_echo,
    )


@click.command("worker")
@config_option
@click.pass_context
@reports_errors
def worker_command(ctx: click.Context, config_path: Path) -> None:
    """Crawl jobs queued by `listener run` in Redis ([cluster] redis_url), one at a time.

    Start any number, on any machine, with the same project file, Redis and
    Elasticsearch (LISTENER_REDIS_URL, LISTENER_ES_URL). SIGTERM or Ctrl-C
    lets the crawl in flight save its work and hands the job back.
    """
    from listener.service.process import run_worker

    run_worker(
        load_project(config_path),
        log_level=ctx.obj["log_level"] if ctx.obj else "WARNING",
        echo=_echo,
    )
