"""A local HTTP server replaying recorded responses, for ``listener demo``, tests and plugin kits.

Routes say what to answer for a method, a path and (optionally) some query
parameters. The server runs on 127.0.0.1 on a free port in a background thread
and records every request it receives, so a test can check what a crawl asked
for::

    with ReplayServer([Route("/feed.xml", body=feed_bytes)]) as server:
        fetch(server.url + "/feed.xml")
        assert server.requests_to("/feed.xml")

A recorded site on disk is a folder with a ``routes.json`` manifest (see
:func:`load_site`). Bodies and header values may contain ``{base_url}``, which
is replaced by the running server's URL, so a recorded feed can link back to
the server it is served from.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "PLACEHOLDER",
    "ROBOTS_ALLOW_ALL",
    "Hold",
    "RecordedRequest",
    "ReplayServer",
    "Route",
    "load_site",
]

#: Replaced in bodies and header values by the server's base URL.
PLACEHOLDER = "{base_url}"
#: What ``/robots.txt`` answers unless a route says otherwise.
ROBOTS_ALLOW_ALL = b"User-agent: *\nDisallow:\n"
MANIFEST = "routes.json"

_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def _guess_content_type(name: str) -> str:
    suffix = Path(urlsplit(name).path).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


class Hold:
    """Keeps a route's answers back until :meth:`release`: a test acts while a crawler waits.

    ``arrived`` is set when the first request for the route comes in, so a
    test can wait for the crawl to reach that point without polling or
    sleeping (``hold.arrived.wait(60)``), do what it tests (a cancel, say),
    then release the answers. Stopping the server releases them too.
    """

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        """Answer the requests waiting on this route, and later ones at once."""
        self.released.set()


@dataclass
class Route:
    """What to answer for one method and path, optionally only for some query parameters.

    ``query`` is a subset match: every listed parameter must be present with that
    value; others are ignored. A ``path`` written with ``?a=b`` adds to ``query``.
    With ``times``, the route answers that many times and then lets the request
    fall through to the next matching route (a 429 before a 200, say). With
    ``hold``, each answer waits until the :class:`Hold` is released.
    """

    path: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: dict[str, str] | None = None
    method: str = "GET"
    times: int | None = None
    hold: Hold | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.body, str):
            self.body = self.body.encode("utf-8")
        if "?" in self.path:
            path, _, raw = self.path.partition("?")
            extra = {
                key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()
            }
            self.path = path
            self.query = {**extra, **(self.query or {})}
        if not self.path.startswith("/"):
            self.path = "/" + self.path
        self.method = self.method.upper()
        if self.times is not None and self.times < 1:
            raise ValueError(f"route {self.path}: times must be at least 1 (got {self.times})")
        if not 100 <= self.status <= 599:
            raise ValueError(f"route {self.path}: {self.status} is not an HTTP status")

    def matches(self, method: str, path: str, query: dict[str, list[str]]) -> bool:
        """Whether this route answers ``method path?query`` (HEAD is answered like GET)."""
        wanted = "GET" if method == "HEAD" else method
        if self.method not in (wanted, "*") or self.path != path:
            return False
        if self.query:
            return all(value in query.get(key, ()) for key, value in self.query.items())
        return True

    def describe(self) -> str:
        """``GET /path?key=value`` for messages."""
        query = "&".join(f"{k}={v}" for k, v in (self.query or {}).items())
        limit = f" (x{self.times})" if self.times else ""
        return f"{self.method} {self.path}{'?' + query if query else ''}{limit}"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, and the status it answered."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int
    #: When the server received it (``time.monotonic()``), to check the spacing of requests.
    received: float = 0.0

    def param(self, name: str) -> str | None:
        """The last value of a query parameter, or None."""
        values = self.query.get(name)
        return values[-1] if values else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 makes a concurrent crawler wait a second for SYN retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a crawl cut a download short) is not an error to print."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "listener-replay/1"
    server: _Server
    # Idle keep-alive connections do not outlive a test for long.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        self.server.replay._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.replay._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``ReplayServer.requests`` instead of a log."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, headers, payload = self.server.replay._respond(self.command, self.path, body, self)
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _answer
    do_HEAD = _answer
    do_POST = _answer
    do_PUT = _answer
    do_PATCH = _answer
    do_DELETE = _answer
    do_OPTIONS = _answer


class ReplayServer:
    """Serves routes on ``127.0.0.1`` from a background thread; use it as a context manager.

    ``routes`` is a list of :class:`Route` or the folder of a recorded site
    (read with :func:`load_site`). Routes are tried in order; the first that
    matches (and has answers left) wins. ``/robots.txt`` allows everything
    unless a route serves it; anything else unmatched gets a plain-text 404
    naming the path and the known routes.
    """

    def __init__(
        self, routes: Sequence[Route] | Path | str, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if isinstance(routes, (str, Path)):
            routes = load_site(Path(routes))
        self._routes: list[Route] = list(routes)
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._used: dict[int, int] = {}
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ReplayServer:
        """Bind a free port and start serving; returns the server itself."""
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self)
        self._bound_port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replay-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        server, thread = self._server, self._thread
        if server is None:
            return
        for route in self._routes:
            if route.hold is not None:
                route.hold.release()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests read ------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (after :meth:`stop`, the one it listened on)."""
        if self._bound_port is None:
            raise RuntimeError("the replay server has not been started; use it in a with block")
        return self._bound_port

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    @property
    def routes(self) -> list[Route]:
        """A copy of the routes, in matching order."""
        with self._lock:
            return list(self._routes)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests received for one path (query string ignored)."""
        return [request for request in self.requests if request.path == path]

    def add(self, route: Route) -> None:
        """Add a route at the end of the list while the server runs."""
        with self._lock:
            self._routes.append(route)

    def reset(self) -> None:
        """Forget recorded requests and restore every ``times`` budget."""
        with self._lock:
            self._requests.clear()
            self._used.clear()

    # -- serving --------------------------------------------------------------------------

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _respond(
        self, method: str, target: str, body: bytes, handler: BaseHTTPRequestHandler
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = parts.path or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        base = self.url
        with self._lock:
            route = self._match(method, path, query)
            if route is not None:
                status = route.status
                headers = {k: v.replace(PLACEHOLDER, base) for k, v in route.headers.items()}
                payload = route.body.replace(PLACEHOLDER.encode(), base.encode())
                if not any(k.lower() == "content-type" for k in headers):
                    headers["Content-Type"] = _guess_content_type(path)
            elif path == "/robots.txt" and method in ("GET", "HEAD"):
                status, payload = 200, ROBOTS_ALLOW_ALL
                headers = {"Content-Type": "text/plain; charset=utf-8"}
            else:
                status = 404
                known = "\n".join(f"  {r.describe()}" for r in self._routes) or "  (none)"
                payload = f"no route for {method} {target}\nknown routes:\n{known}\n".encode()
                headers = {"Content-Type": "text/plain; charset=utf-8"}
            self._requests.append(
                RecordedRequest(
                    method=method,
                    target=target,
                    path=path,
                    query=query,
                    headers={k: v for k, v in handler.headers.items()},
                    body=body,
                    status=status,
                    received=time.monotonic(),
                )
            )
        if route is not None and route.hold is not None:  # outside the lock: others are served
            route.hold.arrived.set()
            route.hold.released.wait()
        return status, headers, payload

    def _match(self, method: str, path: str, query: dict[str, list[str]]) -> Route | None:
        """The first matching route with answers left; counts the answer (lock held)."""
        for index, route in enumerate(self._routes):
            if not route.matches(method, path, query):
                continue
            if route.times is not None:
                used = self._used.get(index, 0)
                if used >= route.times:
                    continue
                self._used[index] = used + 1
            return route
        return None


# ------------------------------------------------------------------------------ recorded sites


class _RouteSpec(BaseModel):
    """One entry of a ``routes.json`` manifest."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    method: str = "GET"
    query: dict[str, str] | None = None
    status: int = Field(default=200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    file: str | None = None
    body: str | None = None
    times: int | None = Field(default=None, ge=1)


def _read_manifest(manifest: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{manifest}: no {MANIFEST} manifest in this folder") from None
    except ValueError as error:
        raise ValueError(f"{manifest}: not valid JSON: {error}") from None
    entries = data.get("routes") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{manifest}: expected a list of routes or an object with 'routes'")
    return entries


def _read_site_file(manifest: Path, number: int, name: str, roots: Sequence[Path]) -> bytes:
    """The bytes of ``name`` from the first of ``roots`` holding it (never from outside them)."""
    for root in roots:
        file = (root / name).resolve()
        if not file.is_relative_to(root):
            raise ValueError(f"{manifest}: route {number}: {name} is outside {root}")
        if file.is_file():
            return file.read_bytes()
    where = " or ".join(str(root) for root in roots)
    raise ValueError(f"{manifest}: route {number}: file {name} does not exist in {where}")


def load_site(directory: Path, *, also: Sequence[Path] = ()) -> list[Route]:
    """Read a recorded site: ``directory/routes.json`` and the files it names.

    The manifest is a list (or ``{"routes": [...]}``) of objects with ``path``
    and optionally ``method``, ``query`` (subset match), ``status``,
    ``headers``, ``times`` and either ``file`` (relative to the folder) or
    ``body`` (text). Without a Content-Type header one is guessed from the file
    name. Errors name the manifest, the entry and the key.

    A file the folder does not hold is read from the first of the ``also``
    folders that does: a site extending another one (a plugin's tests adding
    routes to the recorded site it ships) names the shipped files without a copy.
    """
    directory = Path(directory)
    manifest = directory / MANIFEST
    roots = [Path(folder).resolve() for folder in (directory, *also)]
    routes: list[Route] = []
    for number, entry in enumerate(_read_manifest(manifest)):
        try:
            spec = _RouteSpec.model_validate(entry)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in problem['loc']) or 'entry'}: {problem['msg']}"
                for problem in error.errors()
            )
            raise ValueError(f"{manifest}: route {number}: {problems}") from None
        if spec.file is not None and spec.body is not None:
            raise ValueError(
                f"{manifest}: route {number} ({spec.path}): give file or body, not both"
            )
        headers = dict(spec.headers)
        body = b""
        if spec.file is not None:
            body = _read_site_file(manifest, number, spec.file, roots)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = _guess_content_type(spec.file)
        elif spec.body is not None:
            body = spec.body.encode("utf-8")
        routes.append(
            Route(
                path=spec.path,
                status=spec.status,
                headers=headers,
                body=body,
                query=spec.query,
                method=spec.method,
                times=spec.times,
            )
        )
    return routes
