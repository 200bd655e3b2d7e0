"""``listener serve``: the REST API and dashboard (listener.web, docs/web.md)."""

from __future__ import annotations

from pathlib import Path

import click

from listener.cli.options import config_option
from listener.cli.output import reports_errors
from listener.config import load_project


@click.command("serve")
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
        load_project(config_path),
        host=host,
        port=port,
        verbose=ctx.obj["log_level"] != "WARNING",
        echo=lambda line: click.echo(line, err=True),
    )
