"""Failover: how long after a worker is killed with SIGKILL its job is redone, and what is lost.

A replay site with ``--entries`` slow feeds (one per source entry), one
embedded engine, a real ``redis-server``, ``listener run`` and two ``listener
worker`` processes, each with its own ``LISTENER_HOME``. Once worker 1 is
mid-crawl, it is killed with SIGKILL; the script prints when the other worker
fetched the killed entry again, how long the whole fleet took, and whether
the index equals the truth (no loss, no duplicates). The re-fetch time is the
lease (``--lease`` seconds) plus the wait for the other worker to finish the
crawl it holds (it runs one at a time) plus a new crawl process's start-up
(model loading). Figures are printed, never asserted.

Usage::

    python bench/failover.py [--entries 4] [--items 20] [--lease 5] [--delay 1.0]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from elasticsearch import Elasticsearch

from listener.config import load_project
from listener.sdk.replay import Route
from listener.service.state import RedisState, namespace
from listener.service.testing import (
    RedisServer,
    TimedReplayServer,
    rss_feed,
    service_env,
    start_listener,
    stop_listener,
    stored_urls,
    wait_for,
)
from listener.store.engine import EmbeddedEngine
from listener.testing import write_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=4)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--lease", type=float, default=5.0, help="seconds")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per feed response")
    args = parser.parse_args()

    start = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    routes, truth, paths = [], [], {}
    for entry in range(args.entries):
        items = [
            (f"https://site{entry}.example/{n}", f"Entry {entry} item {n}: Acme news.",
             start - timedelta(minutes=entry * 100 + n))
            for n in range(args.items)
        ]  # fmt: skip
        path = f"/e{entry}.xml"
        routes.append(Route(path, body=rss_feed(items)))
        truth += [url for url, _, _ in items]
        paths[f"entry{entry}"] = path

    with (
        tempfile.TemporaryDirectory(prefix="listener-failover-") as scratch,
        RedisServer(Path(scratch) / "redis") as redis_server,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
        TimedReplayServer(routes, delay=args.delay) as site,
    ):
        folder = Path(scratch)
        prefix = f"failover{uuid.uuid4().hex[:6]}"
        project_path = write_project(
            folder / "listener.toml",
            [
                {"plugin": "rss", "name": label, "feeds": [site.url + path], "every": "1h"}
                for label, path in paths.items()
            ],
        )
        project_path.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n'
            f'[cluster]\nlease = "{args.lease}s"\npoll = "0.2s"\n\n'
            + project_path.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        project = load_project(project_path)
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        state = RedisState(client, namespace(project))

        def env(name: str) -> dict[str, str]:
            return service_env(folder / name, engine.url, LISTENER_REDIS_URL=redis_server.url)

        logs = {name: folder / f"{name}.log" for name in ("scheduler", "w1", "w2")}
        began = time.monotonic()
        w1 = start_listener(["worker", "-c", str(project_path)], env("w1"), logs["w1"])
        w2 = start_listener(["worker", "-c", str(project_path)], env("w2"), logs["w2"])
        scheduler = start_listener(
            ["run", "-c", str(project_path)], env("scheduler"), logs["scheduler"]
        )
        killed = ""

        def w1_mid_crawl() -> bool:
            nonlocal killed
            for label, path in paths.items():
                holder = client.get(f"{namespace(project)}lease:{label}") or ""
                if f":{w1.pid}:" in holder and site.timeline({path}):
                    killed = label
                    return True
            return False

        try:
            wait_for(w1_mid_crawl, "worker 1 mid-crawl", timeout=300)
            w1.send_signal(signal.SIGKILL)
            w1.wait()
            killed_at = time.monotonic()

            def done() -> bool:
                schedule = state.schedule()
                return all(
                    schedule.get(label, {}).get("last_finished")
                    and not schedule.get(label, {}).get("running")
                    for label in paths
                )

            wait_for(done, "every entry", timeout=600)
            finished = time.monotonic()
        finally:
            for process, name in ((scheduler, "scheduler"), (w2, "w2")):
                if process.poll() is None:
                    stop_listener(process, logs[name])
        refetch = [s.started for s in site.timeline({paths[killed]}) if s.started > killed_at]
        urls = stored_urls(Elasticsearch(engine.url), prefix)
        print(f"entries {args.entries} x {args.items} items, lease {args.lease:g} s, "
              f"feed response {args.delay:g} s")  # fmt: skip
        if refetch:
            print(f"killed worker's entry ({killed}) fetched again {refetch[0] - killed_at:.1f} s "
                  "after the SIGKILL")  # fmt: skip
        else:
            print(f"killed worker's entry ({killed}) was not fetched again")
        print(f"fleet: all {args.entries} entries done {finished - began:.1f} s after start")
        print(f"index: {len(urls)} documents, {len(set(urls))} distinct, truth {len(truth)}: "
              + ("equal" if sorted(urls) == sorted(truth) else "DIFFERENT"))  # fmt: skip


if __name__ == "__main__":
    main()
