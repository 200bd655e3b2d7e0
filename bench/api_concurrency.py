"""Does the REST API serve concurrent clients in parallel? 1 vs N clients, loopback only.

Builds the demo project (``listener demo --home DIR``) unless DIR already holds
one, optionally adds ``--synthetic N`` generated mentions (the analytics
sample corpus, several seeds) so queries have work to do, starts ``listener
serve`` for it on a free loopback port in a subprocess, and then, for each
endpoint, drives it with 1 client and with ``--clients`` concurrent clients
(threads, one keep-alive connection each) for ``--seconds`` each. Prints
requests/s, p50 and p99 latency and errors, and the ratio of the two
throughputs: first with every client searching its own word (no two
requests alike), then with all clients sending the same request (a
dashboard opened by several people). ``--engine`` also drives the same searches straight at the
embedded engine (no API), to tell the engine's own limit from the API's.

    python bench/api_concurrency.py --home /tmp/bench-demo --synthetic 5000

Nothing here leaves 127.0.0.1; every run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from listener.store.engine import free_port


def _ensure_demo(home: Path, synthetic: int) -> Path:
    config = home / "listener.toml"
    if not config.exists():
        subprocess.run(
            [sys.executable, "-m", "listener.cli", "demo", "--home", str(home)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    marker = home / f".bench-synthetic-{synthetic}"
    if synthetic and not marker.exists():
        from listener.analytics.sample import sample_mentions
        from listener.config import load_project
        from listener.store.engine import connect
        from listener.store.indexer import Indexer

        project = load_project(config)
        mentions = []
        seed = 1
        while len(mentions) < synthetic:
            mentions.extend(sample_mentions(seed))
            seed += 1
        with connect(project) as client:
            indexer = Indexer(client, project)
            result = indexer.index(mentions[:synthetic])
            indexer.refresh()
        print(f"added {result.indexed} synthetic mentions", file=sys.stderr)
        marker.touch()
    return config


@contextlib.contextmanager
def _serve(config: Path, extra: list[str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "listener.cli",
            "serve",
            "-c",
            str(config),
            "--port",
            str(port),
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
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


def _drive(
    call: Callable[[Any], int], make: Callable[[], Any], clients: int, seconds: float
) -> dict[str, float]:
    """Call ``call(session)`` from ``clients`` threads for ``seconds``; latency and errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        session = make()
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    ok = call(session) < 400
                except Exception:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors[0] += 1
        finally:
            with contextlib.suppress(Exception):
                session.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return {
        "requests": len(ordered),
        "rps": len(ordered) / wall,
        "p50": statistics.median(ordered) if ordered else 0.0,
        "p99": p99,
        "errors": errors[0],
    }


def _row(name: str, clients: int, figures: dict[str, float]) -> None:
    print(
        f"{name:<28} {clients:>3} clients  {figures['rps']:7.2f} req/s  "
        f"p50 {figures['p50'] * 1000:7.0f} ms  p99 {figures['p99'] * 1000:7.0f} ms  "
        f"errors {int(figures['errors'])}/{int(figures['requests'])}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/listener-bench-demo"))
    parser.add_argument("--synthetic", type=int, default=5000, help="generated mentions to add")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--engine", action="store_true", help="also drive the engine directly")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve argument")
    args = parser.parse_args()
    config = _ensure_demo(args.home.resolve(), args.synthetic)
    with _serve(config, args.serve_arg) as url:
        info = httpx.get(f"{url}/api/project", timeout=60).json()
        first, last = info["data"]["first"][:10], info["data"]["last"][:10]
        print(
            f"{info['data']['mentions']} mentions ({first} .. {last}), {os.cpu_count()} CPUs, "
            f"{args.seconds:g} s per run"
        )
        scope = {"since": first, "until": last}
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("search (full text)", "/api/mentions", {"q": "acme", "size": 25}),
            ("search (newest, no text)", "/api/mentions", {"size": 25}),
            ("share of voice per week", "/api/share-of-voice", {**scope, "interval": "week"}),
            ("project info", "/api/project", {}),
        ]
        words = ["acme", "globex", "initech", "price", "battery", "support", "review", "launch",
                 "recall", "great"]  # fmt: skip
        counter = iter(range(1_000_000))

        class Distinct(httpx.Client):
            """A client that searches its own word: no two clients ask the same thing."""

            word = ""

        def distinct() -> Distinct:
            session = Distinct(base_url=url, timeout=120)
            session.word = words[next(counter) % len(words)]
            return session

        ratio: list[float] = []
        for clients in (1, args.clients):
            figures = _drive(
                lambda session: (
                    session.get("/api/mentions", params={"q": session.word, "size": 25}).status_code
                ),
                distinct,
                clients,
                args.seconds,
            )
            _row("search, a word per client", clients, figures)
            ratio.append(figures["rps"])
        print(f"{'':<28} throughput {args.clients} vs 1 clients: {ratio[1] / ratio[0]:.2f}x")
        for name, path, params in cases:
            ratio = []
            for clients in (1, args.clients):
                figures = _drive(
                    lambda session, path=path, params=params: (
                        session.get(path, params=params).status_code
                    ),
                    lambda: httpx.Client(base_url=url, timeout=120),
                    clients,
                    args.seconds,
                )
                _row(name, clients, figures)
                ratio.append(figures["rps"])
            print(f"{'':<28} throughput {args.clients} vs 1 clients: {ratio[1] / ratio[0]:.2f}x")
        if args.engine:
            from listener.config import load_project
            from listener.store.indexer import mentions_alias

            project = load_project(config)
            state = project.home / "engine" / "listener-engine.json"
            if not state.exists():
                print("no embedded engine state file; skipped the direct engine runs")
                return 0
            import json

            engine_url = f"http://127.0.0.1:{json.loads(state.read_text())['port']}"
            alias = mentions_alias(project.elasticsearch.index_prefix)
            body = {
                "query": {
                    "simple_query_string": {
                        "query": "acme",
                        "fields": ["title", "text"],
                        "default_operator": "and",
                    }
                },
                "size": 25,
            }
            ratio = []
            for clients in (1, args.clients):
                figures = _drive(
                    lambda session: session.post(f"/{alias}/_search", json=body).status_code,
                    lambda: httpx.Client(base_url=engine_url, timeout=120),
                    clients,
                    args.seconds,
                )
                _row("engine: full-text search", clients, figures)
                ratio.append(figures["rps"])
            print(f"{'':<28} throughput {args.clients} vs 1 clients: {ratio[1] / ratio[0]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
