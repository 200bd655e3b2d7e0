"""Test helpers for the service: a throwaway ``redis-server``, feeds, a timed replay server.

``redis-server`` is Debian's package.

::

    with RedisServer(tmp_path) as server:
        os.environ["LISTENER_REDIS_URL"] = server.url
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from listener.sdk.replay import ReplayServer, Route

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def redis_server_binary() -> str | None:
    """The ``redis-server`` executable, or None when it is not installed."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port with its files in ``directory``; stops on exit."""

    def __init__(self, directory: Path, *, port: int = 0, startup_timeout: float = 20.0) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not installed; on Debian/Ubuntu: apt-get install redis-server"
            )
        self.binary = binary
        self.directory = directory
        self.startup_timeout = startup_timeout
        #: 0: a free port is picked at start (and kept for a restart).
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--save", "", "--appendonly", "no"),
                *("--logfile", str(log)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"redis-server did not start on port {self.port}:\n{tail}"
                    ) from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def flush(self) -> None:
        """Empty every database (between tests)."""
        import redis

        with contextlib.closing(redis.Redis(port=self.port)) as client:
            client.flushall()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def rss_feed(items: list[tuple[str, str, datetime]], title: str = "Feed") -> bytes:
    """An RSS 2.0 feed of ``(link, text, published)`` items (links double as GUIDs)."""
    entries = "".join(
        f"<item><title>{html.escape(text[:40])}</title><link>{html.escape(link)}</link>"
        f"<guid>{html.escape(link)}</guid><description>{html.escape(text)}</description>"
        f"<pubDate>{when.astimezone(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        "</item>"
        for link, text, when in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>https://feeds.example/</link>"
        f"{entries}</channel></rss>"
    ).encode()


@dataclass
class Served:
    """One request as the timed server saw it: when it arrived and when it was answered."""

    path: str
    started: float
    finished: float = float("inf")  # still being answered


class TimedReplayServer(ReplayServer):
    """A replay server that answers every request after ``delay`` seconds and logs its timing.

    Used to see from the server's side whether two crawls of one source entry
    overlapped (an entry with one feed makes one request per crawl), and to
    keep a crawl running long enough to kill its worker.
    """

    def __init__(self, routes: Sequence[Route], *, delay: float = 0.0) -> None:
        super().__init__(routes)
        self.delay = delay
        self.served: list[Served] = []
        self._served_lock = threading.Lock()

    def _respond(
        self, method: str, target: str, body: bytes, handler: BaseHTTPRequestHandler
    ) -> tuple[int, dict[str, str], bytes]:
        served = Served(urlsplit(target).path, time.monotonic())
        with self._served_lock:
            self.served.append(served)
        if self.delay and served.path != "/robots.txt":
            time.sleep(self.delay)
        answer = super()._respond(method, target, body, handler)
        served.finished = time.monotonic()
        return answer

    def timeline(self, paths: set[str]) -> list[Served]:
        """The requests to ``paths`` (arrived, perhaps not answered yet), by arrival."""
        with self._served_lock:
            return sorted((s for s in self.served if s.path in paths), key=lambda s: s.started)


# -- running listener commands as a user does -------------------------------------------


def service_env(home: Path, es_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(LISTENER_HOME=str(home), LISTENER_ES_URL=es_url, PYTHONUNBUFFERED="1", **extra)
    return env


def stored_urls(client: Elasticsearch, prefix: str) -> list[str]:
    client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
    result = client.options(ignore_status=404).search(
        index=f"{prefix}-mentions", size=1000, query={"match_all": {}}, source_includes=["url"]
    )
    return [hit["_source"]["url"] for hit in result.body.get("hits", {}).get("hits", [])]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll an observable condition (the index, Redis) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def start_listener(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "listener.cli", *args], env=env, stdout=handle, stderr=handle
    )


def stop_listener(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"did not stop on SIGTERM:\n{log.read_text()[-3000:]}") from None
