"""Where a crawl process's memory goes, for ``bench/crawl_memory.py`` and anyone chasing growth.

With ``LISTENER_TRACEMALLOC=FILE`` in its environment, a crawl traces its
allocations (``tracemalloc``; the crawl then runs several times slower) and
writes to ``FILE``, whenever the traced memory reaches a new high (10 % above
the last one written), the lines of code holding the most of it at that
moment. The file thus ends holding the picture at the crawl's peak. Nothing
happens without the variable.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

ENV = "LISTENER_TRACEMALLOC"
#: Seconds between looks at the traced total.
INTERVAL = 1.0
#: Lines written per picture.
TOP = 30


def start_from_environment() -> bool:
    """Start tracing if ``LISTENER_TRACEMALLOC`` names a file; whether it did."""
    target = os.environ.get(ENV)
    if not target:
        return False
    tracemalloc.start(8)
    thread = threading.Thread(
        target=_watch, args=(Path(target),), name="listener-memtrace", daemon=True
    )
    thread.start()
    return True


def _watch(target: Path) -> None:
    written = 0
    started = time.monotonic()
    while True:
        time.sleep(INTERVAL)
        current, _ = tracemalloc.get_traced_memory()
        if current < written * 1.1:
            continue
        written = current
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        by_line = snapshot.statistics("lineno")[:TOP]
        by_trace = snapshot.statistics("traceback")[:5]
        lines = [
            f"traced {current / 2**20:.1f} MB at {time.monotonic() - started:.0f} s "
            f"(pid {os.getpid()})",
            "",
            "by line:",
            *(f"{s.size / 2**20:8.1f} MB {s.count:>9} blocks  {s.traceback[0]}" for s in by_line),
            "",
            "largest call paths:",
        ]
        for stat in by_trace:
            lines.append(f"{stat.size / 2**20:8.1f} MB {stat.count:>9} blocks")
            lines += [f"    {frame}" for frame in stat.traceback]
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temporary.replace(target)
