"""Identical read requests in flight at the same time are answered by one computation.

The embedded engine runs one search at a time (measured in
``bench/api_concurrency.py``: 10 concurrent clients straight at the engine get
no more searches per second than one), so ten dashboards asking for the same
share of voice used to queue ten identical aggregations behind each other.
:class:`CoalesceReads` is an ASGI middleware: while a ``GET`` for a path it
covers is being computed, every identical request (same path, query string,
``Authorization`` and ``Host``) waits for that answer instead of starting its
own, and gets a copy of it. Nothing is kept once the first request finishes,
so an answer is never older than the request that asked for it, and a
request arriving after an answer was sent starts a new computation.

If the first request fails (an exception rather than a response), or its
answer is larger than :data:`MAX_SHARED_BYTES` (a streamed export is never
held in memory), the waiting ones each run their own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
Key = tuple[str, bytes, bytes, bytes]

MAX_SHARED_BYTES = 8 * 1024 * 1024  # larger answers (a long export) are not copied

# The API's read routes whose answer depends only on the request (not the crawls' state).
READ_PATHS: tuple[str, ...] = (
    "/api/project",
    "/api/mentions",
    "/api/share-of-voice",
    "/api/sentiment",
    "/api/earned-media",
    "/api/top/",
    "/api/trending",
    "/api/spikes",
)


class Flights:
    """The requests being computed and how many wait for each (one per app)."""

    def __init__(self) -> None:
        self.running: dict[Key, asyncio.Future[Answer | None]] = {}
        self.waiters: dict[Key, int] = {}
        self.shared = 0  # requests answered with another request's computation

    def waiting(self) -> int:
        """How many requests wait for another one's answer right now."""
        return sum(self.waiters.values())


class CoalesceReads:
    """ASGI middleware sharing one computation among identical concurrent GETs."""

    def __init__(
        self, app: ASGIApp, flights: Flights | None = None, paths: Sequence[str] = READ_PATHS
    ) -> None:
        self.app = app
        self.flights = flights or Flights()
        self.paths = tuple(paths)

    def covers(self, scope: Scope) -> bool:
        """Whether ``scope`` is a GET on one of the covered paths (exact, or under a ``/``)."""
        if scope.get("type") != "http" or scope.get("method") != "GET":
            return False
        path = str(scope.get("path", ""))
        return any(
            path.startswith(p) if p.endswith("/") else path == p or path.startswith(p + "/")
            for p in self.paths
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.covers(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key: Key = (
            str(scope["path"]),
            bytes(scope.get("query_string") or b""),
            headers.get(b"authorization", b""),
            headers.get(b"host", b""),
        )
        flight = self.flights.running.get(key)
        if flight is not None:
            self.flights.waiters[key] = self.flights.waiters.get(key, 0) + 1
            try:
                answer = await asyncio.shield(flight)
            finally:
                self.flights.waiters[key] -= 1
                if not self.flights.waiters[key]:
                    del self.flights.waiters[key]
            if answer is None:  # the first request failed: run this one on its own
                await self.app(scope, receive, send)
                return
            self.flights.shared += 1
            status, response_headers, body = answer
            await send(
                {"type": "http.response.start", "status": status, "headers": response_headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        flight = asyncio.get_running_loop().create_future()
        self.flights.running[key] = flight
        start: Message = {}
        chunks: list[bytes] = []

        size = [0]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body" and size[0] <= MAX_SHARED_BYTES:
                body = bytes(message.get("body", b""))
                size[0] += len(body)
                chunks.append(body)
                if size[0] > MAX_SHARED_BYTES:
                    chunks.clear()  # too big to keep a copy: the waiting requests run their own
            await send(message)

        result: Answer | None = None
        try:
            await self.app(scope, receive, capture)
            if start and size[0] <= MAX_SHARED_BYTES:
                result = (int(start["status"]), list(start.get("headers") or []), b"".join(chunks))
        finally:
            del self.flights.running[key]
            flight.set_result(result)
