"""Indexing speed as history grows: the Indexer against raw ``helpers.bulk`` of the same documents.

For each history length (default 1 and 24 monthly indices) two index prefixes
in one fresh embedded engine get the same history (``--history`` mentions
spread over the months, written by the Indexer so its record of where each
mention lives, a SQLite file in the scratch ``LISTENER_HOME``, is filled).
Then ``--new`` fresh mentions of the current month are written to one prefix
by :meth:`Indexer.index` (in batches of ``--batch``, the crawl's batch size)
and to the other by ``helpers.bulk`` (same batches, no cross-month check),
taking turns batch by batch, ``--rounds`` times. Prints docs per second of the
median batch's wall time and docs per CPU second (this process and the engine)
over all batches, for both, and the ratios; ``paired`` is the median over
batches of raw bulk's wall time over the Indexer's for the same batch, taken
back to back (steadier than the ratio of medians when the machine's load
moves during the run). Then the median cost of the
location record's read-and-add for a batch of new ids, and the median CPU each
batch cost this process (the client) for both. The Indexer also keeps a
re-crawled mention whose date moved to another month from being stored twice;
raw bulk does not, which is the work being priced here. The Indexer's own bulk
path (documents written as JSON by pydantic, the request body built directly)
costs the client less than ``helpers.bulk`` does, which pays for the record:
the last two lines show both sides.

Usage::

    python bench/index_history.py [--months 1 24] [--history 3000] [--new 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from listener.config import ProjectConfig, parse_project
from listener.mention import Mention
from listener.store.engine import EmbeddedEngine
from listener.store.indexer import Indexer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TEXT = (
    "Post {n}: the new Acme phone is great, battery lasts two days and the camera beats "
    "last year's model #acme"
)


def mentions(tag: str, count: int, months: int) -> list[Mention]:
    """``count`` mentions spread evenly over the last ``months`` months."""
    return [
        Mention.create(
            source="bench",
            source_kind="social",
            url=f"https://social.example/{tag}/{n}",
            text=TEXT.format(n=n),
            published_at=NOW - timedelta(days=31 * (n % months), minutes=n),
        )
        for n in range(count)
    ]


def project(url: str, folder: Path, prefix: str) -> ProjectConfig:
    data = {"elasticsearch": {"url": url, "index_prefix": prefix}, "brands": [{"name": "Acme"}]}
    return parse_project(data, folder / "listener.toml")


def actions(indexer: Indexer, batch: list[Mention]) -> Iterator[dict[str, Any]]:
    for mention in batch:
        yield {
            "_op_type": "index",
            "_index": indexer.index_name_for(mention),
            "_id": mention.id,
            "_source": mention.to_document(),
        }


def cpu_seconds(pid: int | None) -> float:
    """CPU time used so far by this process and the engine process (Linux /proc)."""
    total = time.process_time()
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return total
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


Cost = tuple[float, float, float]


def interleaved(
    client: Elasticsearch,
    listener: Indexer,
    raw: Indexer,
    docs: list[Mention],
    batch: int,
    engine_pid: int | None,
) -> tuple[list[Cost], list[Cost]]:
    """Wall seconds, CPU seconds (client + engine) and the client's own CPU seconds of each
    batch, raw bulk and Indexer.

    They take turns batch by batch so both see the same machine load.
    """
    raw_costs: list[Cost] = []
    listener_costs: list[Cost] = []
    for number, start in enumerate(range(0, len(docs), batch)):
        chunk = docs[start : start + batch]
        for turn in (0, 1) if number % 2 else (1, 0):
            started, cpu = time.perf_counter(), cpu_seconds(engine_pid)
            own = time.process_time()
            if turn:
                helpers.bulk(client, actions(raw, chunk), chunk_size=500)
                costs = raw_costs
            else:
                result = listener.index(chunk)
                assert result.indexed == len(chunk), result
                costs = listener_costs
            costs.append(
                (
                    time.perf_counter() - started,
                    cpu_seconds(engine_pid) - cpu,
                    time.process_time() - own,
                )
            )
    return raw_costs, listener_costs


def rates(costs: list[Cost], batch: int) -> tuple[float, float]:
    """Docs/s from the median batch's wall time (spikes from a busy machine or the engine's
    background merges fall outside it), and docs per CPU second over all batches."""
    return batch / statistics.median(wall for wall, _, _ in costs), batch * len(costs) / sum(
        cpu for _, cpu, _ in costs
    )


def client_ms(costs: list[Cost]) -> float:
    """Median milliseconds of this process's own CPU per batch (no engine)."""
    return statistics.median(own for _, _, own in costs) * 1000


def record_cost(indexer: Indexer, batch: int, times: int = 50) -> float:
    """Median milliseconds of the location record's read-and-add for a batch of new ids
    (the Indexer's only work per batch besides the bulk request raw bulk also makes)."""
    index = indexer.index_name_for(mentions("record", 1, 1)[0])
    costs = []
    for _ in range(times):
        entries = {uuid.uuid4().hex: [index] for _ in range(batch)}
        started = time.perf_counter()
        indexer.location_store.merge(entries)
        costs.append(time.perf_counter() - started)
    return statistics.median(costs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--months", type=int, nargs="+", default=[1, 24])
    parser.add_argument("--history", type=int, default=3000, help="mentions already stored")
    parser.add_argument("--new", type=int, default=3000, help="mentions written per round")
    parser.add_argument("--batch", type=int, default=64, help="mentions per Indexer.index call")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    rows = []
    record_ms: list[float] = []
    own_ms: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="listener-bench-index-") as scratch:
        folder = Path(scratch)
        os.environ["LISTENER_HOME"] = str(folder / "home")  # never the user's own
        with EmbeddedEngine(folder / "engine") as engine:
            client = Elasticsearch(engine.url, request_timeout=120)
            for months in arguments.months:
                listener = Indexer(client, project(engine.url, folder, f"i{months}"))
                raw = Indexer(client, project(engine.url, folder, f"r{months}"))
                history = mentions(f"history{months}", arguments.history, months)
                for indexer in (listener, raw):
                    indexer.index(history)
                    indexer.refresh()
                raw_costs, listener_costs = [], []
                for round_ in range(arguments.rounds):
                    fresh = mentions(f"new{months}-{round_}", arguments.new, 1)
                    raw_cost, listener_cost = interleaved(
                        client, listener, raw, fresh, arguments.batch, engine._pid
                    )
                    raw_costs += raw_cost
                    listener_costs += listener_cost
                indices = len(client.indices.get_alias(name=listener.alias))
                raw_rate = rates(raw_costs, arguments.batch)
                listener_rate = rates(listener_costs, arguments.batch)
                paired = statistics.median(
                    raw[0] / mine[0] for raw, mine in zip(raw_costs, listener_costs, strict=True)
                )
                rows.append((months, indices, raw_rate, listener_rate, paired))
                record_ms.append(record_cost(listener, arguments.batch))
                own_ms.append((client_ms(raw_costs), client_ms(listener_costs)))
            client.close()
    print(
        f"{arguments.history} mentions of history, {arguments.new} new per round in batches of "
        f"{arguments.batch}, {arguments.rounds} rounds; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'months':>7}{'indices':>9}{'raw bulk/s':>12}{'Indexer/s':>11}{'ratio':>8}"
        f"{'raw/cpu-s':>11}{'Indexer/cpu-s':>15}{'ratio':>8}{'paired':>8}"
    )
    for months, indices, raw_rate, listener_rate, paired in rows:
        print(
            f"{months:>7}{indices:>9}{raw_rate[0]:>12.0f}{listener_rate[0]:>11.0f}"
            f"{listener_rate[0] / raw_rate[0]:>7.2f}x"
            f"{raw_rate[1]:>11.0f}{listener_rate[1]:>15.0f}{listener_rate[1] / raw_rate[1]:>7.2f}x"
            f"{paired:>7.2f}x"
        )
    print(
        "location record (read-and-add per batch of "
        f"{arguments.batch} new ids, median): "
        + ", ".join(
            f"{ms:.2f} ms at {m} months" for m, ms in zip(arguments.months, record_ms, strict=True)
        )
    )

    print(
        "client CPU per batch (this process, median): "
        + ", ".join(
            f"raw bulk {mine[0]:.2f} ms, Indexer {mine[1]:.2f} ms at {m} months"
            for m, mine in zip(arguments.months, own_ms, strict=True)
        )
    )


if __name__ == "__main__":
    main()
