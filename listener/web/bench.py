"""Measure the REST API's response times on a project's stored data.

Run ``python -m listener.web.bench -c listener.toml`` (for example after
``listener demo --home /tmp/demo``, with ``-c /tmp/demo/listener.toml``). It
starts ``listener serve`` for the project on a free loopback port in a
subprocess (a client in the server's own process would measure its own
thread switching), or times a running server given with ``--url``. Each
endpoint is called once to warm up, then ``--repeat`` times; the median and
the slowest time are printed, followed by a whole dashboard refresh (its ten
requests, six at a time as a browser sends them). Times are wall-clock times
seen by the client, on keep-alive connections.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from listener.store.engine import free_port
from listener.web.auth import TOKEN_ENV


def _time(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    return (time.perf_counter() - started) * 1000, response.status_code


def _cases(client: httpx.Client) -> list[tuple[str, str, dict[str, Any]]]:
    """The requests to time, with a date range and a word taken from the stored data."""
    info = client.get("/api/project").json()
    first, last = info["data"]["first"], info["data"]["last"]
    if not first or not last:
        raise SystemExit("the project has no stored mentions; crawl (or run listener demo) first")
    scope = {"since": first[:10], "until": last[:10], "tz": "UTC"}
    # The data's own last week (the demo data is dated; "7d" from today may hold nothing).
    end = datetime.date.fromisoformat(last[:10]) + datetime.timedelta(days=1)
    week_start, week_end = (end - datetime.timedelta(days=7)).isoformat(), end.isoformat()
    page = client.get("/api/mentions", params={"size": 25}).json()
    word = next(
        (w for m in page["mentions"] for w in (m["title"] or "").split() if len(w) > 5), "the"
    )
    brand = info["brands"][0]["name"]
    mention_id = page["mentions"][0]["id"]
    cursor = page["next_cursor"]
    return [
        ("project (brands, facets, range)", "/api/project", {}),
        ("mentions: newest, 25", "/api/mentions", {"size": 25}),
        ("mentions: next page (cursor)", "/api/mentions", {"size": 25, "cursor": cursor}),
        ("mentions: full text", "/api/mentions", {"q": word, "size": 25}),
        ("mentions: full text, relevance", "/api/mentions", {"q": word, "sort": "relevance"}),
        ("mentions: brand rule", "/api/mentions", {"rule": f"{brand.lower()} OR {word}"}),
        ("mentions: filters", "/api/mentions", {"brand": brand, "sentiment": "negative"}),
        ("mention by id (full text)", f"/api/mentions/{mention_id}", {}),
        ("share of voice per week", "/api/share-of-voice", {**scope, "interval": "week"}),
        ("sentiment per week", "/api/sentiment", {**scope, "interval": "week"}),
        ("earned media + top 5", "/api/earned-media", {**scope, "top": 5}),
        ("top authors", "/api/top/authors", {**scope, "limit": 8}),
        ("top domains", "/api/top/domains", {**scope, "limit": 8}),
        ("trending (last 7 days)", "/api/trending", {"since": week_start, "until": week_end}),
        ("spikes per day, explained", "/api/spikes", {**scope, "interval": "day"}),
        ("source health", "/api/sources/health", {}),
    ]


def _dashboard(client: httpx.Client, cases: list[tuple[str, str, dict[str, Any]]]) -> float:
    """One dashboard refresh: its requests, six at a time."""
    wanted = {
        "mentions: newest, 25",
        "share of voice per week",
        "sentiment per week",
        "earned media + top 5",
        "top authors",
        "top domains",
        "trending (last 7 days)",
        "spikes per day, explained",
        "source health",
        "project (brands, facets, range)",
    }
    chosen = [(path, params) for name, path, params in cases if name in wanted]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda case: client.get(case[0], params=case[1]), chosen))
    return (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def _serve(config: str) -> Iterator[str]:
    """``listener serve -c config`` on a free loopback port; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "listener.cli", "serve", "-c", config, "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"listener serve exited with code {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("listener serve did not start within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Time every endpoint of a served project and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-c", "--config", default="listener.toml", help="project file")
    parser.add_argument("--url", help="time this running server instead of starting one")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per endpoint")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "").strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    server = contextlib.nullcontext(args.url.rstrip("/")) if args.url else _serve(args.config)
    with server as url, httpx.Client(base_url=url, timeout=300, headers=headers) as client:
        info = client.get("/api/project").json()
        print(
            f"{info['data']['mentions']} mentions stored, engine: {info['engine']}; "
            f"{args.repeat} calls each after one warm-up (ms)"
        )
        cases = _cases(client)
        print(f"{'endpoint':<34} {'median':>8} {'max':>8}  status")
        for name, path, params in cases:
            _time(client, path, params)
            times, statuses = [], set()
            for _ in range(args.repeat):
                elapsed, status = _time(client, path, params)
                times.append(elapsed)
                statuses.add(status)
            shown = ",".join(str(s) for s in sorted(statuses))
            print(f"{name:<34} {statistics.median(times):8.1f} {max(times):8.1f}  {shown}")
        refreshes = [_dashboard(client, cases) for _ in range(max(3, args.repeat // 2))]
        print(
            f"{'dashboard refresh (10 requests)':<34} {statistics.median(refreshes):8.1f} "
            f"{max(refreshes):8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
