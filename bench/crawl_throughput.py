"""Crawl throughput: mentions/s through the real Scrapy engine, with and without enrichment.

A local replay server serves N RSS feeds of M items each (texts are real tweets
from ../shared/fixtures when present, else the demo site's texts). Three runs,
each in a fresh process:

* fetch + parse only (the test kit's collect mode: no enrichment, no index);
* the full crawl: enrichment (spaCy) and indexing into a fresh embedded engine;
* the bundled demo crawl (``listener demo``'s site), full pipeline.

Usage::

    python bench/crawl_throughput.py [--feeds 20] [--items 100]

Prints wall time (process start to exit, including model and engine start-up)
and the crawl's own elapsed time, with mentions per second for both.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from listener import demo_site
from listener.sdk.replay import ReplayServer, Route
from listener.testing import write_project

ROOT = Path(__file__).resolve().parent.parent
TWEETS = ROOT.parent / "shared" / "fixtures" / "sentiment_ground_truth" / "tweeteval_semeval2017"
BRANDS = [
    {"name": "Apple", "keywords": ["apple", "iphone", "#apple"]},
    {"name": "Google", "keywords": ["google", "android", "#google"]},
    {"name": "Microsoft", "keywords": ["microsoft", "xbox", "windows"]},
    {"name": "Amazon", "keywords": ["amazon", "#amazon", "kindle"]},
    {"name": "Samsung", "keywords": ["samsung", "galaxy"]},
]
FINISHED = re.compile(r"crawl finished in ([\d.]+) s: (\d+) mentions found")


def texts() -> list[str]:
    """Real tweets when the shared fixtures are there, else the demo site's item texts."""
    path = TWEETS / "test_text.txt"
    if path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line]
    corpus = []
    for feed in (demo_site.DIRECTORY / "technews").glob("*.xml"):
        corpus += re.findall(r"<description><!\[CDATA\[(.*?)\]\]>", feed.read_text("utf-8"), re.S)
    return corpus or ["Apple and Google both shipped updates this week."]


def feed(number: int, items: int, corpus: list[str]) -> bytes:
    """One RSS 2.0 feed of ``items`` items."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    entries = []
    for index in range(items):
        text = corpus[(number * items + index) % len(corpus)]
        when = start - timedelta(minutes=number * items + index)
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


def run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0,):
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed, result.stderr


def crawl_figures(stderr: str) -> tuple[float, int]:
    match = FINISHED.search(stderr)
    return (float(match.group(1)), int(match.group(2))) if match else (0.0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=100)
    arguments = parser.parse_args()
    corpus = texts()
    routes = [
        Route(f"/feeds/{n}.xml", body=feed(n, arguments.items, corpus),
              headers={"Content-Type": "application/rss+xml"})
        for n in range(arguments.feeds)
    ]  # fmt: skip
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="listener-bench-") as scratch,
        ReplayServer(routes) as server,
    ):
        folder = Path(scratch)
        source = {"plugin": "rss", "feeds": [f"{server.url}{r.path}" for r in routes]}
        project = write_project(
            folder / "listener.toml", [source], BRANDS, {"concurrent_requests": 16}
        )
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}

        env = {**base_env, "LISTENER_HOME": str(folder / "collect")}
        wall, stderr = run(
            [sys.executable, "-m", "listener.sdk.testing", str(project),
             str(folder / "out.ndjson"), str(folder / "summary.json")],
            env,
        )  # fmt: skip
        found = len((folder / "out.ndjson").read_text().splitlines())
        rows.append(("fetch + parse only", found, wall, None))

        env = {**base_env, "LISTENER_HOME": str(folder / "full")}
        wall, stderr = run([sys.executable, "-m", "listener.cli", "crawl", "-c", str(project)], env)
        crawl_seconds, found = crawl_figures(stderr)
        rows.append(("full: enrich + index", found, wall, crawl_seconds))

    with tempfile.TemporaryDirectory(prefix="listener-bench-demo-") as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        wall, stderr = run(
            [sys.executable, "-m", "listener.cli", "demo", "--home", str(Path(scratch) / "d")], env
        )
        crawl_seconds, found = crawl_figures(stderr)
        rows.append(("demo site (full)", found, wall, crawl_seconds))

    print(f"corpus: {len(corpus)} texts; synthetic site: {arguments.feeds} feeds x "
          f"{arguments.items} items; {os.cpu_count()} cores")  # fmt: skip
    print(
        f"{'run':<24}{'mentions':>10}{'wall s':>10}{'/s wall':>10}{'crawl s':>10}{'/s crawl':>10}"
    )
    for name, found, wall, crawl in rows:
        per_crawl = f"{found / crawl:10.1f}" if crawl else f"{'-':>10}"
        crawl_text = f"{crawl:10.1f}" if crawl else f"{'-':>10}"
        print(f"{name:<24}{found:>10}{wall:>10.1f}{found / wall:>10.1f}{crawl_text}{per_crawl}")


if __name__ == "__main__":
    main()
