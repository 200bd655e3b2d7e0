"""The ``listener run`` and ``listener worker`` commands (registered by :mod:`listener.cli`)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_config_option = click.option(
    "-c",
    "--config",
    "config_path",
    default="listener.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project file.",
)


def _reports_errors(command: F) -> F:
    """listener.cli's error handling (imported late: cli imports this module)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from listener.cli import reports_errors

        return reports_errors(command)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _echo(line: str) -> None:
    click.echo(line, err=True)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGTERM or Ctrl-C; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            _echo("listener: second signal, exiting now (running crawls are redone next time)")
            os._exit(1)
        _echo(f"listener: {signal.Signals(signum).name} received, stopping gracefully")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command("run")
@_config_option
@click.option("--serve", is_flag=True, help="Also serve the dashboard and API (as listener serve).")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="With --serve: port.")  # fmt: skip
@click.pass_context
@_reports_errors
def run_command(ctx: click.Context, config_path: Path, serve: bool, host: str, port: int) -> None:
    """Stay up: crawl each source entry at its interval (every), run alerts after crawls.

    With [cluster] redis_url (or LISTENER_REDIS_URL) it only queues due work
    for `listener worker` processes. SIGTERM or Ctrl-C stops gracefully.
    """
    from listener.config import load_project
    from listener.errors import ConfigError
    from listener.service.child import spawn
    from listener.service.scheduler import Scheduler, intervals
    from listener.store.engine import connect

    project = load_project(config_path)
    intervals(project)
    if project.cluster.redis_url and not project.elasticsearch.url:
        raise ConfigError(
            f"{project.path}: with [cluster] redis_url the workers need one shared "
            "Elasticsearch: set [elasticsearch] url or LISTENER_ES_URL"
        )
    if serve:
        from listener.web.auth import check_bind, token_from_env

        check_bind(host, token_from_env())  # the same rule as listener serve, before starting
    log_level = ctx.obj["log_level"] if ctx.obj else "WARNING"
    with _stop_on_signals() as stop, connect(project, verify=False) as client:
        # Holding the connection keeps the embedded engine up for every child crawl.
        server = None
        if serve:
            server = spawn(["cli", "serve", "-c", str(project.path), "--host", host,
                            "--port", str(port)])  # fmt: skip
        try:
            Scheduler(project, log_level=log_level, echo=_echo, alerts_client=client).run(stop)
        finally:
            if server is not None and server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except Exception:
                    server.kill()
    _echo("listener run: stopped")


@click.command("worker")
@_config_option
@click.pass_context
@_reports_errors
def worker_command(ctx: click.Context, config_path: Path) -> None:
    """Crawl jobs queued by `listener run` in Redis ([cluster] redis_url), one at a time.

    Start any number, on any machine, with the same project file, Redis and
    Elasticsearch (LISTENER_REDIS_URL, LISTENER_ES_URL). SIGTERM or Ctrl-C
    lets the crawl in flight save its work and hands the job back.
    """
    from listener.config import load_project
    from listener.service.worker import Worker

    project = load_project(config_path)
    log_level = ctx.obj["log_level"] if ctx.obj else "WARNING"
    with _stop_on_signals() as stop:
        Worker(project, stop=stop, log_level=log_level, echo=_echo).run()
