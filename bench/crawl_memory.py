"""Memory per process of one worker job: the worker, its crawl child, the enrichment processes.

For each size in ``--items`` (mentions in one source entry, split into RSS
feeds of ``--per-feed`` real tweets on one replay site), this starts a
``redis-server``, queues one job, and lets a real ``listener worker`` crawl
it with enrichment (``--processes`` forked enrichment processes) and indexing
into one embedded engine. While the job runs it reads, every 0.1 s from
``/proc``, each process of the worker's tree:

* peak RSS (``VmHWM``: the most resident memory the process ever had; a
  forked enrichment process counts the model pages it shares with the crawl
  child, so these do not add up);
* PSS at its highest sample (``smaps_rollup``: shared pages divided among
  the processes sharing them; these add up to what the job costs the machine).

Each job's figures are printed as soon as it ends. Growth with the number of
items is what matters: a process whose peak grows with the items is not
bounded. Up to ``listener.crawl.dedupe.WINDOW`` mentions the crawl child grows
with the in-crawl duplicate memory (``Deduplicator``), so the script then
measures that alone (``tracemalloc``, in this process) after ``--dedupe``
mentions, with its window and without one (``--dedupe`` with no number skips
it). With ``--tracemalloc FILE`` the crawl child traces its allocations
(``LISTENER_TRACEMALLOC``, :mod:`listener.crawl.memtrace`; several times
slower) and ``FILE.ITEMS`` gives the lines holding the most memory at its
peak. Usage (Linux only)::

    python bench/crawl_memory.py [--items 500 2000 8000] [--per-feed 250] [--processes 2]
        [--dedupe [2000 8000 32000]] [--dedupe-only] [--tracemalloc FILE]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawl_throughput import BRANDS
from crawl_throughput import texts as demo_texts

from listener.config import load_project
from listener.sdk.replay import ReplayServer, Route
from listener.store.engine import EmbeddedEngine
from listener.testing import write_project


def texts() -> list[str]:
    """Real tweets from a ``shared/fixtures`` folder beside the checkout or a parent of it."""
    for folder in Path(__file__).resolve().parents:
        path = folder / "shared/fixtures/sentiment_ground_truth/tweeteval_semeval2017/test_text.txt"
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip()]
    return demo_texts()


def feed(number: int, items: int, corpus: list[str]) -> bytes:
    """One RSS feed; every item names a brand (so it is indexed) and has words of its own.

    Each item's own hashtag and handle stand for what social posts bring to
    a long-running service: words no model has seen, which grow spaCy's
    string store and any per-crawl set of ids.
    """
    start = datetime(2026, 11, 1, tzinfo=UTC)
    names = [brand["name"] for brand in BRANDS]
    entries = []
    for index in range(items):
        serial = number * items + index
        text = (
            f"{corpus[serial % len(corpus)]} {names[serial % len(names)]} "
            f"#topic{serial}x @fan{serial}z"
        )
        when = start - timedelta(minutes=serial)
        entries.append(
            f"<item><title>Post {number}-{index}</title>"
            f"<link>https://bench{number}.example/posts/{index}</link>"
            f"<description>{html.escape(text)}</description>"
            f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Bench {number}</title><link>https://bench{number}.example/</link>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode()


@dataclass
class Seen:
    """What was read of one process while the job ran."""

    role: str
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    samples: int = 0


@dataclass
class Tree:
    """The processes of one worker's tree, by pid."""

    root: int
    seen: dict[int, Seen] = field(default_factory=dict)


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def _kb(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(tree: Tree) -> None:
    """Read every process under the worker once."""
    children = _children()
    todo = [(tree.root, "worker")]
    while todo:
        pid, role = todo.pop()
        seen = tree.seen.setdefault(pid, Seen(role))
        rss = _kb(f"/proc/{pid}/status", "VmHWM")
        pss = _kb(f"/proc/{pid}/smaps_rollup", "Pss")
        if rss:
            seen.peak_rss_kb = max(seen.peak_rss_kb, rss)
            seen.peak_pss_kb = max(seen.peak_pss_kb, pss)
            seen.samples += 1
        below = "crawl child" if role == "worker" else "enrichment"
        todo += [(child, below) for child in children.get(pid, [])]


def one_job(
    folder: Path, engine_url: str, items: int, per_feed: int, processes: int,
    trace: Path | None = None,
) -> Tree:  # fmt: skip
    """Queue one job of ``items`` mentions, run one ``listener worker`` on it, watch its tree."""
    import redis

    from listener.service.jobs import JobQueue
    from listener.service.state import RedisState, namespace
    from listener.service.testing import RedisServer, start_listener, stop_listener

    corpus = texts()
    feeds = max(1, items // per_feed)
    routes = [
        Route(f"/feeds/{n}.xml", body=feed(n, per_feed, corpus),
              headers={"Content-Type": "application/rss+xml"})
        for n in range(feeds)
    ]  # fmt: skip
    with ReplayServer(routes) as server, RedisServer(folder / "redis") as redis_server:
        path = write_project(
            folder / "listener.toml",
            [{"plugin": "rss", "name": "big", "feeds": [f"{server.url}{r.path}" for r in routes]}],
            BRANDS,
            {"concurrent_requests": 16, "enrich_processes": processes},
            delays=False,
        )
        prefix = f"mem{uuid.uuid4().hex[:6]}"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[cluster]\npoll = "0.2s"\n\n{text}',
            encoding="utf-8",
        )
        project = load_project(path)
        project.cluster.redis_url = redis_server.url
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        state = RedisState(client, namespace(project))
        JobQueue(client, namespace(project)).enqueue_once("big")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        env.update(
            LISTENER_HOME=str(folder / "home"),
            LISTENER_ES_URL=engine_url,
            LISTENER_REDIS_URL=redis_server.url,
        )
        if trace is not None:  # the crawl child writes where its memory is at its peak
            env["LISTENER_TRACEMALLOC"] = str(trace.with_name(f"{trace.name}.{items}"))
        log = folder / "worker.log"
        worker = start_listener(["worker", "-c", str(path)], env, log)
        tree = Tree(worker.pid)
        started = time.monotonic()
        try:
            while not state.schedule().get("big", {}).get("last_finished"):
                if worker.poll() is not None or time.monotonic() - started > max(1800, items):
                    sys.exit(f"the worker ended or took longer than max(1800, items) s; see {log}")
                sample(tree)
                time.sleep(0.1)
            result = state.schedule()["big"].get("last_result", "")
        finally:
            stop_listener(worker, log)
        print(f"  {items} items: {result}", flush=True)
    return tree


def dedupe_memory(counts: list[int]) -> None:
    """MB the in-crawl Deduplicator holds after ``counts`` distinct mentions, bounded or not."""
    import tracemalloc

    from listener.crawl.dedupe import WINDOW, Deduplicator
    from listener.mention import Mention

    corpus = texts()
    names = [brand["name"] for brand in BRANDS]

    def mention(serial: int) -> Mention:
        return Mention.create(
            source="rss",
            source_kind="news",
            url=f"https://bench.example/posts/{serial}",
            text=f"{corpus[serial % len(corpus)]} {names[serial % len(names)]} "
            f"#topic{serial}x @fan{serial}z",
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
        )

    print("in-crawl duplicate memory (Deduplicator, batches of 64, no lookup)")
    print(f"{'mentions':>9}{'window ' + str(WINDOW) + ' MB':>18}{'no window MB':>15}")
    for count in counts:
        figures = []
        for window in (WINDOW, 10**12):
            deduplicator = Deduplicator(window=window)
            tracemalloc.start()
            for start in range(0, count, 64):
                deduplicator.assign([mention(n) for n in range(start, min(start + 64, count))])
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del deduplicator
            figures.append(held / 2**20)
        print(f"{count:>9}{figures[0]:>18.1f}{figures[1]:>15.1f}", flush=True)


def report(items: int, tree: Tree, processes: int, header: bool = True) -> None:
    """Print one job's processes, as soon as it ends (a long run still shows the earlier ones)."""
    if header:
        print(
            f"one worker job, [crawl] enrich_processes = {processes}; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} now"
        )
        print(f"{'items':>6}  {'process':<14}{'pid':>8}{'peak RSS MB':>13}{'peak PSS MB':>13}")
    total_pss = 0.0
    for pid, seen in sorted(tree.seen.items(), key=lambda kv: (kv[1].role != "worker", kv[0])):
        if not seen.samples:
            continue
        total_pss += seen.peak_pss_kb / 1024
        print(f"{items:>6}  {seen.role:<14}{pid:>8}{seen.peak_rss_kb / 1024:>13.0f}"
              f"{seen.peak_pss_kb / 1024:>13.0f}")  # fmt: skip
    print(f"{items:>6}  {'sum of PSS':<14}{'':>8}{'':>13}{total_pss:>13.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--per-feed", type=int, default=250)
    parser.add_argument("--processes", type=int, default=2, help="[crawl] enrich_processes")
    parser.add_argument(
        "--dedupe", type=int, nargs="*", default=[2000, 8000, 32000],
        help="mentions for the duplicate-memory figures (none: skip them)",
    )  # fmt: skip
    parser.add_argument("--dedupe-only", action="store_true", help="skip the worker jobs")
    parser.add_argument(
        "--tracemalloc", type=Path, metavar="FILE",
        help="trace the crawl child's allocations (slow); its peak picture goes to FILE.ITEMS",
    )  # fmt: skip
    arguments = parser.parse_args()
    if arguments.dedupe_only:
        dedupe_memory(arguments.dedupe)
        return
    if not Path("/proc/self/smaps_rollup").exists():
        sys.exit("this benchmark reads /proc (Linux 4.14+)")
    trees: dict[int, Tree] = {}
    with (
        tempfile.TemporaryDirectory(prefix="listener-bench-memory-") as scratch,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
    ):
        for items in arguments.items:
            folder = Path(scratch) / f"job{items}"
            folder.mkdir()
            trees[items] = one_job(
                folder, engine.url, items, arguments.per_feed, arguments.processes,
                arguments.tracemalloc,
            )  # fmt: skip
            report(items, trees[items], arguments.processes)
    if len(trees) > 1:
        print("all jobs:")
        for items, tree in trees.items():
            report(items, tree, arguments.processes, header=items == next(iter(trees)))
    if arguments.dedupe:
        dedupe_memory(arguments.dedupe)


if __name__ == "__main__":
    main()
