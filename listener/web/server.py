"""Running the web app: ``listener serve`` in the foreground, or a server in a thread.

:func:`serve` is what the command runs: it refuses to listen beyond loopback
without a token, then runs uvicorn until Ctrl-C. :class:`BackgroundServer`
runs an app on a free loopback port in a thread, for tests, benchmarks and
notebooks.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from listener.config import ProjectConfig
from listener.errors import ConfigError, ListenerError
from listener.web.app import create_app
from listener.web.auth import TOKEN_ENV, check_bind, is_loopback, token_from_env


def dashboard_url(host: str, port: int) -> str:
    """The address to open in a browser for a server bound to ``host``:``port``."""
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = "127.0.0.1"
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(
    project: ProjectConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    verbose: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the API and dashboard for ``project`` until interrupted.

    The token defaults to ``LISTENER_API_TOKEN``; without one the server only
    binds to loopback (:func:`listener.web.auth.check_bind` raises ConfigError).
    """
    token = token if token is not None else token_from_env()
    check_bind(host, token)
    app = create_app(project, token=token)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    # Bind before saying anything: a busy port is a one-line refusal, not a banner and a trace.
    listening = bind_socket(host, port)
    where = "the embedded engine" if not project.elasticsearch.url else "Elasticsearch"
    echo(f"listener: serving {project.path or 'the project'} on {where}")
    echo(f"dashboard: {dashboard_url(host, port)}   API description: /openapi.json")
    if token:
        echo(f"API token required (from {TOKEN_ENV}); the dashboard asks for it once")
    elif is_loopback(host):
        echo(f"no API token: only this machine can connect (set {TOKEN_ENV} to require one)")
    echo("press Ctrl-C to stop")
    # uvicorn re-raises the Ctrl-C it caught once the app has shut down cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listening])
    listening.close()
    echo("listener: stopped")
    if not server.started:
        raise ListenerError(
            f"the server could not start on {host}:{port} (port in use, or the engine did not "
            "start); see the messages above"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port``; ConfigError naming the port when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another program listens there); "
                "choose another with --port, or stop that program"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {error.strerror}; check --host and --port"
        ) from None
    return sock


class BackgroundServer:
    """Serve an app on a free loopback port in a background thread (a context manager)."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", startup_timeout: float = 120):
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            name="listener-web",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Start serving; returns once the app has started (its engine connected)."""
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise ListenerError("the web server failed to start; see the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise ListenerError(f"the web server did not start in {self.startup_timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the app's shutdown (crawls stopped, engine left)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
