"""Scale-out: a crawl with enrichment and indexing against each stage alone, 1 and 2 workers.

One replay site (``--feeds`` RSS feeds of ``--items`` real tweets each, split
into ``--entries`` source entries) and one embedded engine serve every run of
this script, so all figures come from the same run on the same machine:

* each stage alone, on the same mentions: fetch + parse (a crawl that only
  collects), enrichment in 1 process and in 2 worker processes (the crawl's
  ``EnrichmentPool``), and dedupe + indexing (what the crawl's indexing thread
  does, per found mention);
* ``listener crawl`` with enrichment and indexing, ``[crawl] enrich_processes``
  1 and 2, over the crawl's own time (model and engine start-up excluded);
* a fleet: ``listener run`` (the scheduler) and 1, then 2, ``listener worker``
  processes over a real ``redis-server`` (skipped if it is not installed),
  each worker crawling with one enrichment process, over the wall time from
  the scheduler's start to the last entry finished (each job is a child
  process that loads the model: start-up included).

Usage::

    python bench/scale_out.py [--feeds 10] [--items 100] [--entries 4] [--skip-fleet]

Ratios printed: each crawl against its slowest stage alone, 2 against 1. The
figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawl_throughput import BRANDS, feed, texts

from listener.config import ProjectConfig, load_project
from listener.mention import Mention
from listener.sdk.replay import ReplayServer, Route
from listener.store.engine import EmbeddedEngine
from listener.testing import write_project

FINISHED = re.compile(r"crawl finished in ([\d.]+) s: (\d+) mentions found")
BATCH = 64  # the crawl's default batch size


def base_env(home: Path, es_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    return {**env, "LISTENER_HOME": str(home), "LISTENER_ES_URL": es_url, **extra}


def project_file(
    folder: Path, server_url: str, routes: list[Route], entries: int, prefix: str, processes: int
) -> Path:
    """A project whose feeds are split over ``entries`` source entries."""
    sources = [
        {
            "plugin": "rss",
            "name": f"entry{entry}",
            "feeds": [f"{server_url}{r.path}" for r in routes[entry::entries]],
            "every": "1h",
        }
        for entry in range(entries)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = write_project(
        folder / "listener.toml",
        sources,
        BRANDS,
        {"concurrent_requests": 16, "enrich_processes": processes},
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(
        f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[cluster]\npoll = "0.2s"\n\n{text}',
        encoding="utf-8",
    )
    return path


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


# -- stages alone -------------------------------------------------------------


def collect_worker(project_path: str, output: str) -> None:
    """Subprocess side of the fetch + parse run: crawl, collect, print found and elapsed."""
    from listener.crawl.runner import run_crawl

    summary = run_crawl(load_project(project_path), collect_to=Path(output))
    print(json.dumps({"found": summary.found, "elapsed": summary.elapsed}))


def fetch_parse(project: Path, env: dict[str, str], output: Path) -> tuple[float, list[Mention]]:
    """Fetch + parse only (no enrichment, no index): mentions/s and the mentions found."""
    out = run([sys.executable, __file__, "--collect", str(project), str(output)], env)
    figures = json.loads(next(line for line in out.splitlines() if line.startswith('{"found"')))
    mentions = [
        Mention.model_validate(json.loads(line)["mention"])
        for line in output.read_text(encoding="utf-8").splitlines()
    ]
    return figures["found"] / figures["elapsed"], mentions


def batches(mentions: list[Mention]) -> Iterator[list[Mention]]:
    for start in range(0, len(mentions), BATCH):
        yield mentions[start : start + BATCH]


def enrichment(project: ProjectConfig, mentions: list[Mention]) -> dict[int, Any]:
    """Enrichment alone, in batches as the crawl hands them over: 1 process, then 2."""
    from listener.enrichment import Enricher
    from listener.enrichment.pool import EnrichmentPool

    figures: dict[int, Any] = {}
    enricher = Enricher(project, batch_size=BATCH)
    enricher.nlp  # noqa: B018  (model load is not enrichment)
    started = time.perf_counter()
    enriched = [m for batch in batches(mentions) for m in enricher.enrich(batch)]
    figures[1] = (len(mentions) / (time.perf_counter() - started), enriched)
    with EnrichmentPool(enricher, 2) as pool:
        started = time.perf_counter()
        in_flight = []
        done: list[Mention] = []
        for batch in batches(mentions):
            in_flight.append(pool.submit(batch))
            if len(in_flight) > 3:  # the crawl's bound: 2 batches + 1 per extra process
                done += in_flight.pop(0).result()
        for future in in_flight:
            done += future.result()
        figures[2] = (len(mentions) / (time.perf_counter() - started), done)
    return figures


def indexing(client: Any, project: ProjectConfig, enriched: list[Mention], found: int) -> float:
    """Dedupe + index as the crawl's indexing thread does, per found mention."""
    from listener.crawl.dedupe import Deduplicator, index_lookup
    from listener.store.indexer import Indexer

    indexer = Indexer(client, project)
    indexer.install_templates()
    deduplicator = Deduplicator(lookup=index_lookup(client, indexer.alias))
    kept = [m for m in enriched if m.brands]
    started = time.perf_counter()
    for batch in batches(kept):
        indexer.index(deduplicator.assign(batch))
    indexer.refresh()
    return found / (time.perf_counter() - started)


# -- the crawl and the fleet ----------------------------------------------------


def crawl(project: Path, env: dict[str, str]) -> tuple[float, int]:
    """``listener crawl``: mentions/s over the crawl's own time, and how many it found."""
    output = run([sys.executable, "-m", "listener.cli", "crawl", "-c", str(project)], env)
    match = FINISHED.search(output)
    if match is None:
        sys.exit(f"no 'crawl finished' line in:\n{output[-3000:]}")
    return int(match.group(2)) / float(match.group(1)), int(match.group(2))


def fleet(project_path: Path, folder: Path, es_url: str, workers: int, total: int) -> float | None:
    """``listener run`` + ``workers`` x ``listener worker`` over redis-server: mentions/s (wall)."""
    try:
        import redis

        from listener.service.state import RedisState, namespace
        from listener.service.testing import (
            RedisServer,
            redis_server_binary,
            start_listener,
            stop_listener,
        )
    except ImportError:
        return None
    if redis_server_binary() is None:
        return None
    with RedisServer(folder / "redis") as server:
        project = load_project(project_path)
        project.cluster.redis_url = server.url
        state = RedisState(
            redis.Redis.from_url(server.url, decode_responses=True), namespace(project)
        )
        labels = [source.label for source in project.sources]

        def env(name: str) -> dict[str, str]:
            return base_env(folder / name, es_url, LISTENER_REDIS_URL=server.url)

        logs = {
            name: folder / f"{name}.log" for name in ["run", *(f"w{n}" for n in range(workers))]
        }
        processes = {
            f"w{n}": start_listener(
                ["worker", "-c", str(project_path)], env(f"w{n}"), logs[f"w{n}"]
            )
            for n in range(workers)
        }
        started = time.perf_counter()
        processes["run"] = start_listener(["run", "-c", str(project_path)], env("run"), logs["run"])
        try:
            while True:
                schedule = state.schedule()
                if all(
                    schedule.get(label, {}).get("last_finished")
                    and not schedule.get(label, {}).get("running")
                    for label in labels
                ):
                    break
                if time.perf_counter() - started > 900:
                    sys.exit(f"the fleet did not finish in 900 s; see {folder}/*.log")
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            for name, process in processes.items():
                if process.poll() is None:
                    stop_listener(process, logs[name])
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--entries", type=int, default=4, help="source entries (fleet jobs)")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--collect", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.collect:
        collect_worker(*arguments.collect)
        return
    from elasticsearch import Elasticsearch

    corpus = texts()
    routes = [
        Route(f"/feeds/{n}.xml", body=feed(n, arguments.items, corpus),
              headers={"Content-Type": "application/rss+xml"})
        for n in range(arguments.feeds)
    ]  # fmt: skip
    total = arguments.feeds * arguments.items
    with (
        tempfile.TemporaryDirectory(prefix="listener-bench-scale-") as scratch,
        ReplayServer(routes) as server,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
    ):
        folder = Path(scratch)
        client = Elasticsearch(engine.url, request_timeout=120)

        def setup(name: str, processes: int) -> tuple[Path, dict[str, str]]:
            prefix = f"{name}{uuid.uuid4().hex[:6]}"
            path = project_file(
                folder / name, server.url, routes, arguments.entries, prefix, processes
            )
            return path, base_env(folder / name / "home", engine.url)

        path, env = setup("collect", 1)
        fetch_rate, mentions = fetch_parse(path, env, folder / "collected.ndjson")
        project = load_project(path)
        enrich = enrichment(project, mentions)
        index_rate = indexing(
            client, load_project(setup("index", 1)[0]), enrich[1][1], len(mentions)
        )
        kept = sum(1 for m in enrich[1][1] if m.brands)

        crawls = {}
        for processes in (1, 2):
            crawls[processes] = crawl(*setup(f"crawl{processes}p", processes))
        fleets: dict[int, float | None] = {1: None, 2: None}
        if not arguments.skip_fleet:
            for workers in (1, 2):
                path, _ = setup(f"fleet{workers}w", 1)
                fleets[workers] = fleet(
                    path, folder / f"fleet{workers}w", engine.url, workers, total
                )
        client.close()

    slowest = {p: min(fetch_rate, enrich[p][0], index_rate) for p in (1, 2)}
    print(
        f"site: {arguments.feeds} feeds x {arguments.items} items = {total} mentions in "
        f"{arguments.entries} source entries ({len(mentions)} found, {kept} match a brand); "
        f"corpus {len(corpus)} texts; {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (figures are for a machine that busy)"
    )
    print(f"{'stage alone':<44}{'mentions/s':>11}")
    print(f"{'  fetch + parse':<44}{fetch_rate:>11.0f}")
    print(f"{'  enrichment, 1 process':<44}{enrich[1][0]:>11.0f}")
    print(f"{'  enrichment, 2 worker processes':<44}{enrich[2][0]:>11.0f}")
    print(f"{'  dedupe + indexing (per found mention)':<44}{index_rate:>11.0f}")
    heading = "crawl with enrichment + indexing"
    print(f"{heading:<44}{'mentions/s':>11}{'slowest alone':>15}{'ratio':>8}")
    for processes in (1, 2):
        rate = crawls[processes][0]
        label = f"  [crawl] enrich_processes = {processes}"
        alone = slowest[processes]
        print(f"{label:<44}{rate:>11.0f}{alone:>15.0f}{rate / alone:>7.2f}x")
    print(f"  2 enrichment processes vs 1: {crawls[2][0] / crawls[1][0]:.2f}x")
    if fleets[1] and fleets[2]:
        print(f"{'fleet: listener run + N x listener worker':<44}{'mentions/s':>11}")
        for workers in (1, 2):
            print(f"{f'  {workers} worker(s), wall':<44}{fleets[workers]:>11.0f}")
        print(f"  2 workers vs 1: {fleets[2] / fleets[1]:.2f}x")
    elif not arguments.skip_fleet:
        print("fleet: skipped (redis-server or listener.service not available)")


if __name__ == "__main__":
    main()
