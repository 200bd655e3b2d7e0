"""Start-up cost of a listener process: CPU and wall of what every command pays before working.

Every crawl, ``listener run`` crawl child, enrichment process, web server and CLI
command starts a Python process; this prints what that costs, each figure in a
fresh process (the median of ``--repeat`` runs):

* ``import listener.cli`` (what every command imports);
* ``listener --help`` (the console script, end to end);
* building the enrichment pipeline (``listener.enrichment.pipeline.build_pipeline``),
  after its imports, and the same in one figure with the imports;
* the embedded engine (noida-db) started until it answers, then stopped;
* a real ``listener crawl`` of one tiny replay feed (3 items) into a fresh embedded
  engine: the whole process tree (the crawl, its engine), end to end;
* ``python -X importtime -c "import listener.cli"``: the slowest imports.

CPU is user + system time of the process and every child it waited for (the
engine included), from ``resource.getrusage(RUSAGE_CHILDREN)``. Run it on a quiet
machine (it prints the load average before and after) with ``OMP_NUM_THREADS=1``::

    OMP_NUM_THREADS=1 python bench/startup.py [--repeat 3] [--steps import help pipeline ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from listener.sdk.replay import ReplayServer, Route
from listener.testing import write_project

BRANDS = [
    {"name": "Acme", "keywords": ["acme"]},
    {"name": "Globex", "keywords": ["globex"]},
]
FEED = (
    b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench</title>'
    b"<link>https://bench.example/</link>"
    b"<item><title>Acme ships a new phone</title><link>https://bench.example/1</link>"
    b"<description>Acme's new phone is great, says Jane Doe in London.</description>"
    b"<pubDate>Sun, 01 Nov 2026 10:00:00 +0000</pubDate></item>"
    b"<item><title>Globex outage</title><link>https://bench.example/2</link>"
    b"<description>Globex is down again; support did not answer.</description>"
    b"<pubDate>Sun, 01 Nov 2026 09:00:00 +0000</pubDate></item>"
    b"<item><title>Weather</title><link>https://bench.example/3</link>"
    b"<description>Rain in Paris tomorrow.</description>"
    b"<pubDate>Sun, 01 Nov 2026 08:00:00 +0000</pubDate></item>"
    b"</channel></rss>"
)

# Run in a fresh interpreter: prints the CPU and wall of its imports and of the build.
BUILD_PIPELINE = """
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
from listener.enrichment.pipeline import build_pipeline
c1, w1 = time.process_time(), time.perf_counter()
nlp = build_pipeline([{"name": "Acme", "keywords": ["acme"]},
                      {"name": "Globex", "keywords": ["globex"]}])
c2, w2 = time.process_time(), time.perf_counter()
nlp("Acme is great, Globex is not.")
c3, w3 = time.process_time(), time.perf_counter()
print(json.dumps({"import": [c1 - c0, w1 - w0], "build": [c2 - c1, w2 - w1],
                  "first_doc": [c3 - c2, w3 - w2]}))
"""

ENGINE = """
import json, sys, time
from pathlib import Path
from listener.store.engine import EmbeddedEngine
c0, w0 = time.process_time(), time.perf_counter()
engine = EmbeddedEngine(Path(sys.argv[1])).start()
c1, w1 = time.process_time(), time.perf_counter()
engine.stop()
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"start": [c1 - c0, w1 - w0], "stop": [c2 - c1, w2 - w1]}))
"""


STEPS = ("import", "help", "pipeline", "engine", "crawl", "importtime")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(CPU s of the process tree, wall s, stdout) of one run of ``command``."""
    cpu = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return children_cpu() - cpu, wall, result.stdout


def median_of(repeat: int, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    runs = [run() for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def listener_script() -> str:
    beside = Path(sys.executable).with_name("listener")
    return str(beside) if beside.exists() else "listener"


def import_offenders(env: dict[str, str], top: int) -> list[tuple[int, int, str]]:
    """(self us summed, modules, package) of the costliest packages of ``import listener.cli``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import listener.cli"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: dict[str, list[int]] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            name = match.group(2)
            # listener's own modules by subpackage, everything else by top-level package
            parts = name.split(".")
            root = ".".join(parts[:2]) if parts[0] == "listener" else parts[0]
            package = by_package.setdefault(root, [0, 0])
            package[0] += int(match.group(1))
            package[1] += 1
    ranked = sorted(((us, n, name) for name, (us, n) in by_package.items()), reverse=True)
    return ranked[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median shown)")
    parser.add_argument(
        "--steps", nargs="+", choices=STEPS, default=list(STEPS), help="what to measure (all)"
    )
    parser.add_argument("--top", type=int, default=15, help="import offenders to list")
    arguments = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.setdefault("OMP_NUM_THREADS", "1")
    python = sys.executable
    rows: list[tuple[str, float, float]] = []
    print(f"load average before: {load()}  ({os.cpu_count()} cores, median of {arguments.repeat})")

    def plain(command: list[str]) -> Callable[[], tuple[float, float]]:
        def run() -> tuple[float, float]:
            cpu, wall, _ = measure(command, env)
            return cpu, wall

        return run

    steps = set(arguments.steps)
    if "import" in steps:
        command = [python, "-c", "import listener.cli"]
        rows.append(("import listener.cli", *median_of(arguments.repeat, plain(command))))
    if "help" in steps:
        command = [listener_script(), "--help"]
        rows.append(("listener --help", *median_of(arguments.repeat, plain(command))))

    inner: list[dict[str, list[float]]] = []

    def build() -> tuple[float, float]:
        cpu, wall, out = measure([python, "-c", BUILD_PIPELINE], env)
        inner.append(json.loads(out))
        return cpu, wall

    if "pipeline" in steps:
        rows.append(("build pipeline: process", *median_of(arguments.repeat, build)))
    for part in ("import", "build", "first_doc") if inner else ():
        rows.append(
            (
                f"  of which {part}",
                statistics.median(i[part][0] for i in inner),
                statistics.median(i[part][1] for i in inner),
            )
        )

    engine_inner: list[dict[str, list[float]]] = []

    def engine() -> tuple[float, float]:
        with tempfile.TemporaryDirectory(prefix="listener-bench-engine-") as scratch:
            cpu, wall, out = measure([python, "-c", ENGINE, scratch], env)
        engine_inner.append(json.loads(out))
        return cpu, wall

    if "engine" in steps:
        rows.append(("engine start+stop: process", *median_of(arguments.repeat, engine)))
    for part in ("start", "stop") if engine_inner else ():
        rows.append(
            (
                f"  {part} (python side)",
                statistics.median(i[part][0] for i in engine_inner),
                statistics.median(i[part][1] for i in engine_inner),
            )
        )

    if "crawl" in steps:
        feed = Route("/feed.xml", body=FEED, headers={"Content-Type": "application/rss+xml"})
        with ReplayServer([feed]) as server:

            def crawl() -> tuple[float, float]:
                with tempfile.TemporaryDirectory(prefix="listener-bench-crawl-") as scratch:
                    folder = Path(scratch)
                    source = {"plugin": "rss", "feeds": [f"{server.url}/feed.xml"]}
                    project = write_project(folder / "listener.toml", [source], BRANDS)
                    crawl_env = {**env, "LISTENER_HOME": str(folder / "home")}
                    cpu, wall, _ = measure(
                        [listener_script(), "crawl", "-c", str(project)], crawl_env
                    )
                    return cpu, wall

            rows.append(("listener crawl (3 items)", *median_of(arguments.repeat, crawl)))

    print(f"{'step':<30}{'CPU s':>8}{'wall s':>8}")
    for name, cpu, wall in rows:
        print(f"{name:<30}{cpu:>8.2f}{wall:>8.2f}")
    if "importtime" in steps:
        print("\ncostliest packages of `import listener.cli` (-X importtime, self time summed):")
        print(f"{'ms':>8}{'modules':>9}  package")
        for self_us, modules, name in import_offenders(env, arguments.top):
            print(f"{self_us / 1000:>8.0f}{modules:>9}  {name}")
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
