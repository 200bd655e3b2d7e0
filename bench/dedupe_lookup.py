"""The in-crawl duplicate lookup as the index grows: milliseconds per batch at 1k, 20k, 100k stored.

A fresh embedded engine is filled, step by step, with the generated mentions
of ``bench/faults.py`` (every text shares most of its words with the others,
the worst case for a band lookup), each with its duplicate fingerprint as a
crawl stores it. The filler bulk-writes them to the engine and adds them to
the band record (:mod:`listener.store.bands`) directly, as a crawl's
:meth:`BandRecord.record` would, so that 100,000 are stored in minutes. At
each size, ``--batches`` new batches of ``--batch`` mentions then go through
the real path, timed: a :class:`Deduplicator` with a new :class:`BandRecord`
(the record's answer and, once the batch is bulk-written (not timed), the
batch recorded). The median and slowest milliseconds per batch are printed,
and the median CPU milliseconds of this process (less sensitive to the
machine's load; the SQLite record is read and written in-process, Redis's
own CPU is not counted).
``--rebuild`` also times refilling the record from the index at each size
(a lost record, or a home upgraded from the band index in the engine).
``--lookup search`` measures the search over the mentions that the crawl used
before the band index (:func:`index_lookup`). Usage::

    python bench/dedupe_lookup.py [--sizes 1000 20000 100000] [--batch 64] [--batches 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from listener.config import parse_project
from listener.crawl.dedupe import BandRecord, Deduplicator, index_lookup
from listener.mention import Mention
from listener.service.testing import RedisServer
from listener.store.bands import BANDS_FILE
from listener.store.engine import EmbeddedEngine
from listener.store.indexer import Indexer

sys.path.insert(0, str(Path(__file__).parent))
from faults import START, WORDS


def generated(number: int) -> Mention:
    """The ``number``-th mention of bench/faults.py's generated feed."""
    words = " ".join(WORDS[(number >> shift) % len(WORDS)] for shift in range(0, 24, 3))
    return Mention.create(
        source="rss",
        source_kind="news",
        url=f"https://news.example/acme/{number}",
        title=f"Acme note {number}",
        text=f"Acme {words} number {number}.",
        published_at=START + timedelta(minutes=number),
        crawled_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=number),
    )


def store(client: Elasticsearch, indexer: Indexer, batch: list[Mention]) -> None:
    """Bulk-write ``batch`` to its monthly indices."""
    actions = (
        {"_index": indexer.index_name_for(m), "_id": m.id, "_source": m.to_document()}
        for m in batch
    )
    helpers.bulk(client.options(request_timeout=120), actions, chunk_size=1000)


def record_bytes(home: Path) -> int:
    """The size of the band record's SQLite file (with its write-ahead log)."""
    return sum(path.stat().st_size for path in home.glob(f"{BANDS_FILE}*"))


def redis_mb(cluster: dict[str, Any]) -> float | None:
    """Redis's used memory (the band and location records), when clustered."""
    if not cluster:
        return None
    import redis

    info = redis.Redis.from_url(cluster["cluster"]["redis_url"]).info("memory")
    return round(int(info["used_memory"]) / 1e6, 1)


def fill(client: Elasticsearch, record: BandRecord, first: int, last: int) -> None:
    """Store mentions ``first``..``last - 1`` as a crawl would (fingerprints, clusters, bands)."""
    deduplicator = Deduplicator(lookup=None)
    indexer = record.indexer
    for start in range(first, last, 2000):
        batch = deduplicator.assign([generated(n) for n in range(start, min(last, start + 2000))])
        store(client, indexer, batch)
        record.record(batch)  # straight to the record, as BandRecord does after a lookup
    client.indices.refresh(index=indexer.alias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--lookup", choices=["record", "search"], default="record")
    parser.add_argument("--rebuild", action="store_true", help="time a refill from the index")
    parser.add_argument(
        "--clustered", action="store_true", help="keep the record in a real redis-server"
    )
    arguments = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="listener-dedupe-") as scratch,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
        contextlib.ExitStack() as stack,
    ):
        os.environ["LISTENER_HOME"] = str(Path(scratch) / "home")
        client = Elasticsearch(engine.url, request_timeout=120)
        cluster: dict[str, Any] = {}
        if arguments.clustered:
            server = stack.enter_context(RedisServer(Path(scratch) / "redis"))
            cluster = {"cluster": {"redis_url": server.url}}
        project = parse_project(
            {
                "elasticsearch": {"url": engine.url, "index_prefix": "dedupebench"},
                "brands": [{"name": "Acme"}],
                **cluster,
            },
            Path(scratch) / "listener.toml",
        )
        indexer = Indexer(client, project)
        indexer.install_templates()
        filler = BandRecord(indexer)
        filler([])  # paired with the (empty) engine, so the measured lookups do not refill it
        stored = 0
        fresh = 10_000_000  # numbers no stored mention has
        for size in sorted(arguments.sizes):
            started = time.monotonic()
            fill(client, filler, stored, size)
            filled = time.monotonic() - started
            stored = size
            rebuilt = None
            if arguments.rebuild:
                began = time.monotonic()
                read = filler.rebuild(indexer.engine_token())
                rebuilt = round(time.monotonic() - began, 1)
                assert read >= size, (read, size)  # and the batches measured before
            timings, cpu_timings = [], []
            for _ in range(arguments.batches):
                lookup: Any = (
                    BandRecord(indexer)
                    if arguments.lookup == "record"
                    else index_lookup(client, indexer.alias)
                )
                deduplicator = Deduplicator(lookup=lookup)
                batch = [generated(fresh + n) for n in range(arguments.batch)]
                fresh += arguments.batch
                began, cpu = time.perf_counter(), time.process_time()
                result = deduplicator.assign(batch)
                took = time.perf_counter() - began
                used = time.process_time() - cpu
                store(client, indexer, result)  # as the crawl does next (not timed)
                began, cpu = time.perf_counter(), time.process_time()
                deduplicator.stored(result)  # the batch's mentions become candidates
                timings.append((took + time.perf_counter() - began) * 1000)
                cpu_timings.append((used + time.process_time() - cpu) * 1000)
            row: dict[str, Any] = {
                "lookup": arguments.lookup,
                "stored": size,
                "batch": arguments.batch,
                "lookup_ms_median": round(statistics.median(timings), 1),
                "lookup_ms_max": round(max(timings), 1),
                "lookup_cpu_ms_median": round(statistics.median(cpu_timings), 1),
                "duplicates_found_last_batch": sum(1 for m in result if m.duplicate),
                "fill_seconds": round(filled, 1),
                "heads_recorded": filler.store.count(),
                "record_mb": round(record_bytes(Path(scratch) / "home") / 1e6, 1),
                "redis_used_mb": redis_mb(cluster),
                "rebuild_seconds": rebuilt,
            }
            print(json.dumps(row), flush=True)
        client.close()


if __name__ == "__main__":
    main()
