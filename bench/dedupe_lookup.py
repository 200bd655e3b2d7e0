"""The in-crawl duplicate lookup as the index grows: milliseconds per batch at 1k, 20k, 100k stored.

A fresh embedded engine is filled, step by step, with the generated mentions
of ``bench/faults.py`` (every text shares most of its words with the others,
the worst case for a band lookup), each with its duplicate fingerprint as a
crawl stores it. At each size, ``--batches`` new batches of ``--batch``
mentions are looked up the way the crawl does (:class:`Deduplicator` with
:class:`BandIndex`, filled from the stored mentions by its first use, which
is timed apart as ``backfill_seconds``), and the median and slowest
milliseconds per batch are printed. ``--lookup search`` measures the search
over the mentions that the crawl used before (:func:`index_lookup`). Usage::

    python bench/dedupe_lookup.py [--sizes 1000 20000 100000] [--batch 64] [--batches 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from listener.config import parse_project
from listener.crawl.dedupe import BandIndex, Deduplicator, bands_index, index_lookup
from listener.mention import Mention
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


def fill(client: Elasticsearch, indexer: Indexer, first: int, last: int) -> None:
    """Store mentions ``first``..``last - 1`` as a crawl would (fingerprints, clusters)."""
    deduplicator = Deduplicator(lookup=None)
    for start in range(first, last, 2000):
        batch = deduplicator.assign([generated(n) for n in range(start, min(last, start + 2000))])
        actions = (
            {"_index": indexer.index_name_for(m), "_id": m.id, "_source": m.to_document()}
            for m in batch
        )
        helpers.bulk(client.options(request_timeout=120), actions, chunk_size=1000)
    client.indices.refresh(index=indexer.alias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--lookup", choices=["band", "search"], default="band")
    arguments = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="listener-dedupe-") as scratch,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
    ):
        client = Elasticsearch(engine.url, request_timeout=120)
        project = parse_project(
            {
                "elasticsearch": {"url": engine.url, "index_prefix": "dedupebench"},
                "brands": [{"name": "Acme"}],
            },
            Path(scratch) / "listener.toml",
        )
        indexer = Indexer(client, project)
        indexer.install_templates()
        stored = 0
        fresh = 10_000_000  # numbers no stored mention has
        for size in sorted(arguments.sizes):
            started = time.monotonic()
            fill(client, indexer, stored, size)
            filled = time.monotonic() - started
            stored = size
            backfill = 0.0
            if arguments.lookup == "band":  # first use in a project with mentions: filled once
                client.options(ignore_status=404).indices.delete(index=bands_index("dedupebench"))
                began = time.monotonic()
                BandIndex(client, "dedupebench")(["warm-up"])
                backfill = time.monotonic() - began
            timings = []
            for _ in range(arguments.batches):
                lookup: Any = (
                    BandIndex(client, "dedupebench")
                    if arguments.lookup == "band"
                    else index_lookup(client, indexer.alias)
                )
                deduplicator = Deduplicator(lookup=lookup)
                batch = [generated(fresh + n) for n in range(arguments.batch)]
                fresh += arguments.batch
                began = time.perf_counter()
                result = deduplicator.assign(batch)
                timings.append((time.perf_counter() - began) * 1000)
            row: dict[str, Any] = {
                "lookup": arguments.lookup,
                "stored": size,
                "batch": arguments.batch,
                "lookup_ms_median": round(statistics.median(timings), 1),
                "lookup_ms_max": round(max(timings), 1),
                "duplicates_found_last_batch": sum(1 for m in result if m.duplicate),
                "fill_seconds": round(filled, 1),
                "backfill_seconds": round(backfill, 1),
            }
            print(json.dumps(row), flush=True)
        client.close()


if __name__ == "__main__":
    main()
