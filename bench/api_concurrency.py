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


def _engine(config: Path) -> tuple[str, int] | None:
    """The embedded engine's URL and pid, from its state file (None: not embedded)."""
    import json

    from listener.config import load_project

    state = load_project(config).home / "engine" / "listener-engine.json"
    if not state.exists():
        return None
    data = json.loads(state.read_text())
    return f"http://127.0.0.1:{data['port']}", int(data["pid"])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid``, its finished threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _engine_runs(
    config: Path, engine: tuple[str, int], words: list[str], clients: int, seconds: float
) -> None:
    """The API's own search requests sent straight to the engine: 1 vs N clients.

    Each client sends the body ``GET /api/mentions?q=WORD&size=25`` sends (its own word), so
    the API's figures can be set beside the engine's. Also prints the engine's CPU time
    per search, which the machine's load does not change much.
    """
    from listener.config import load_project
    from listener.store.indexer import mentions_alias
    from listener.web import search as mention_search

    project = load_project(config)
    url, pid = engine
    alias = mentions_alias(project.elasticsearch.index_prefix)

    def body(word: str) -> dict[str, Any]:
        request = mention_search.build_request(project, query=word, size=25)
        return {
            "query": mention_search.build_query(request),
            "sort": mention_search.SORTS[request.sort],
            "size": request.size + 1,
            "track_total_hits": mention_search.TRACK_TOTAL,
            "_source": {"excludes": list(mention_search.SOURCE_EXCLUDES)},
        }

    bodies = {word: body(word) for word in words}
    counter = iter(range(1_000_000))

    class Distinct(httpx.Client):
        word = ""

    def distinct() -> Distinct:
        session = Distinct(base_url=url, timeout=120)
        session.word = words[next(counter) % len(words)]
        return session

    for name, make, pick in (
        ("engine: a word per client", distinct, lambda session: bodies[session.word]),
        ("engine: all the same word", distinct, lambda session: bodies[words[0]]),
    ):
        ratio = []
        for count in (1, clients):
            before = _cpu_seconds(pid)
            figures = _drive(
                lambda session, pick=pick: (
                    session.post(f"/{alias}/_search", json=pick(session)).status_code
                ),
                make,
                count,
                seconds,
            )
            used = _cpu_seconds(pid) - before
            _row(name, count, figures)
            per = used / max(1, int(figures["requests"])) * 1000
            print(f"{'':<28} engine CPU {per:5.0f} ms per search, load {os.getloadavg()[0]:.1f}")
            ratio.append(figures["rps"])
        print(f"{'':<28} throughput {clients} vs 1 clients: {ratio[1] / ratio[0]:.2f}x")


def _breakdown(config: Path, engine_url: str, served: str, repeat: int) -> None:
    """Where one API request's time goes: engine round trips against Python, per endpoint.

    Runs the app in this process on the same engine (one client, one request at a time)
    with an Elasticsearch client that times every request it sends.
    """
    from elasticsearch import Elasticsearch

    from listener.config import load_project
    from listener.web.app import create_app
    from listener.web.bench import _cases
    from listener.web.server import BackgroundServer

    project = load_project(config)
    spent = {"requests": 0, "seconds": 0.0}
    with Elasticsearch(engine_url, request_timeout=300) as client:
        real = client.transport.perform_request

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent["requests"] += 1
                spent["seconds"] += time.perf_counter() - started

        client.transport.perform_request = timed  # type: ignore[method-assign]
        with (
            BackgroundServer(create_app(project, client=client)) as server,
            httpx.Client(base_url=server.url, timeout=300) as session,
        ):
            print(f"{'endpoint (1 client, ms per request)':<36} {'total':>7} {'engine':>7} "
                  f"{'python':>7}  engine requests")  # fmt: skip
            for name, path, params in _cases(session):
                session.get(path, params=params)
                spent.update(requests=0, seconds=0.0)
                started = time.perf_counter()
                for _ in range(repeat):
                    session.get(path, params=params)
                total = (time.perf_counter() - started) / repeat * 1000
                engine = spent["seconds"] / repeat * 1000
                print(
                    f"{name:<36} {total:7.0f} {engine:7.0f} {total - engine:7.0f}  "
                    f"{spent['requests'] / repeat:.0f}",
                    flush=True,
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/listener-bench-demo"))
    parser.add_argument("--synthetic", type=int, default=5000, help="generated mentions to add")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--engine", action="store_true", help="also drive the engine directly")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time each endpoint's engine requests against its Python work",
    )
    parser.add_argument("--repeat", type=int, default=3, help="calls per endpoint (--breakdown)")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve argument")
    args = parser.parse_args()
    config = _ensure_demo(args.home.resolve(), args.synthetic)
    with _serve(config, args.serve_arg) as url:
        info = httpx.get(f"{url}/api/project", timeout=60).json()
        first, last = info["data"]["first"][:10], info["data"]["last"][:10]
        print(
            f"{info['data']['mentions']} mentions ({first} .. {last}), {os.cpu_count()} CPUs, "
            f"{args.seconds:g} s per run, load average {os.getloadavg()[0]:.1f}"
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
        if args.engine or args.breakdown:
            engine = _engine(config)
            if engine is None:
                print("no embedded engine state file; skipped the engine runs")
                return 0
            if args.engine:
                _engine_runs(config, engine, words, args.clients, args.seconds)
            if args.breakdown:
                _breakdown(config, engine[0], url, args.repeat)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
