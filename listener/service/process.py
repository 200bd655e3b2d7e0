"""The always-on processes: ``listener run`` (the scheduler) and ``listener worker``.

The click commands are in :mod:`listener.cli.service`; these functions do the work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from listener.config import ProjectConfig


@contextlib.contextmanager
def stop_on_signals(echo: Callable[[str], None]) -> Iterator[threading.Event]:
    """An event set by the first SIGTERM or Ctrl-C; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            echo("listener: second signal, exiting now (running crawls are redone next time)")
            os._exit(1)
        echo(f"listener: {signal.Signals(signum).name} received, stopping gracefully")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_service(
    project: ProjectConfig,
    *,
    serve: bool,
    host: str,
    port: int,
    log_level: str,
    echo: Callable[[str], None],
) -> None:
    """Crawl each source entry at its interval until SIGTERM or Ctrl-C (``listener run``).

    With ``serve`` the dashboard and API run beside it in a child process.
    """
    from listener.errors import ConfigError
    from listener.service.child import spawn
    from listener.service.scheduler import Scheduler, intervals
    from listener.store.engine import connect

    intervals(project)
    if project.cluster.redis_url and not project.elasticsearch.url:
        raise ConfigError(
            f"{project.path}: with [cluster] redis_url the workers need one shared "
            "Elasticsearch: set [elasticsearch] url or LISTENER_ES_URL"
        )
    if serve:
        from listener.web.auth import check_bind, token_from_env

        check_bind(host, token_from_env())  # the same rule as listener serve, before starting
    with stop_on_signals(echo) as stop, connect(project, verify=False) as client:
        # Holding the connection keeps the embedded engine up for every child crawl.
        server = None
        if serve:
            server = spawn(["cli", "serve", "-c", str(project.path), "--host", host,
                            "--port", str(port)])  # fmt: skip
        try:
            Scheduler(project, log_level=log_level, echo=echo, alerts_client=client).run(stop)
        finally:
            if server is not None and server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except Exception:
                    server.kill()
    echo("listener run: stopped")


def run_worker(project: ProjectConfig, *, log_level: str, echo: Callable[[str], None]) -> None:
    """Crawl queued jobs one at a time until SIGTERM or Ctrl-C (``listener worker``)."""
    from listener.service.worker import Worker

    with stop_on_signals(echo) as stop:
        Worker(project, stop=stop, log_level=log_level, echo=echo).run()
