"""Faults with a known truth: how many generated mentions are lost, how long a crawl takes to stop.

Each scenario crawls generated RSS feeds (every item mentions Acme, each with its
own URL, text and date) through the real ``listener crawl`` in a subprocess and
counts where every mention ended: the index, the spool, the dead-letter file,
or nowhere (lost). Run::

    python bench/faults.py kill            # embedded engine SIGKILLed mid-crawl
    python bench/faults.py empty404        # "Elasticsearch" answering 404, empty body
    python bench/faults.py html_bulk       # bulk answered 200 with an HTML page
    python bench/faults.py unwritable      # cluster 404 and the spool directory unwritable
    python bench/faults.py bomb            # a 0.5 MB gzip bomb (512 MB): peak memory of the crawl
    python bench/faults.py sigterm         # SIGTERM during a 100,000-item feed: seconds to stop
    python bench/faults.py all

Prints one line per scenario. Needs the embedded engine (noida-db) installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from listener.mention import canonicalize_url, mention_id
from listener.sdk.replay import ReplayServer, Route
from listener.store.engine import EmbeddedEngine

START = datetime(2026, 11, 1, tzinfo=UTC)
INFO = json.dumps(
    {"name": "stand-in", "cluster_name": "x", "version": {"number": "8.15.3"}, "tagline": "x"}
).encode()
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")


def feed(count: int, first: int = 0) -> bytes:
    """RSS with ``count`` items numbered from ``first``: own link, date and wording each."""
    items = []
    for number in range(first, first + count):
        words = " ".join(WORDS[(number >> shift) % len(WORDS)] for shift in range(0, 24, 3))
        published = format_datetime(START + timedelta(minutes=number), usegmt=True)
        items.append(
            f"<item><title>Acme note {number}</title>"
            f"<link>https://news.example/acme/{number}</link>"
            f"<description>Acme {words} number {number}.</description>"
            f"<pubDate>{published}</pubDate></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Generated</title>'
        f"<link>https://news.example/</link>{''.join(items)}</channel></rss>"
    ).encode()


def project_file(folder: Path, feeds: list[str], prefix: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "listener.toml"
    path.write_text(
        f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[crawl]\nautothrottle = false\n'
        f"retry_times = 0\n{extra}\n"
        '[[brands]]\nname = "Acme"\n\n[[sources]]\nplugin = "rss"\nname = "gen"\n'
        f"feeds = {json.dumps(feeds)}\n",
        encoding="utf-8",
    )
    return path


def environment(home: Path, es_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(LISTENER_HOME=str(home), PYTHONUNBUFFERED="1")
    if es_url:
        env["LISTENER_ES_URL"] = es_url
    return env


def crawl_command(project: Path) -> list[str]:
    return [sys.executable, "-m", "listener.cli", "crawl", "-c", str(project)]


def ids_in(paths: list[Path], key: str = "id") -> set[str]:
    found = set()
    for path in paths:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    found.add(json.loads(line).get(key) or "")
    return found


def indexed_ids(url: str, prefix: str) -> set[str]:
    client = Elasticsearch(url, request_timeout=60)
    try:
        client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
        body = (
            client.options(ignore_status=404)
            .search(index=f"{prefix}-mentions", size=10000, source_includes=["id"])
            .body
        )
        return {hit["_id"] for hit in body.get("hits", {}).get("hits", [])}
    finally:
        client.close()


class StandIn:
    """A misbehaving "Elasticsearch": ``empty404`` for everything, or ``html_bulk`` via a proxy."""

    def __init__(self, mode: str, upstream: str | None = None) -> None:
        stand_in = self
        self.mode, self.upstream = mode, upstream
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if stand_in.mode == "empty404":
                    if self.path == "/":  # passes the start-up check, then fails every write
                        return self._answer(200, INFO, "application/json")
                    return self._answer(404, b"", "text/plain")
                if self.path.split("?")[0].endswith("/_bulk"):
                    return self._answer(200, b"<html>sign in</html>", "text/html")
                request = urllib.request.Request(
                    f"{stand_in.upstream}{self.path}", data=body, method=self.command
                )
                if self.headers.get("Content-Type"):
                    request.add_header("Content-Type", self.headers["Content-Type"])
                try:
                    with direct.open(request, timeout=60) as response:
                        answer = (response.status, response.read(), "application/json")
                except urllib.error.HTTPError as error:
                    answer = (error.code, error.read(), "application/json")
                return self._answer(*answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scenario_kill(folder: Path, total: int = 2000, kill_after: int = 600) -> dict[str, Any]:
    """SIGKILL the crawl's embedded engine once item ``kill_after`` is acknowledged."""
    home = folder / "home"
    feeds = total // 100
    rss = {"Content-Type": "application/rss+xml"}
    routes = [Route(f"/feed{n}.xml", body=feed(100, n * 100), headers=rss) for n in range(feeds)]
    wanted = mention_id("rss", canonicalize_url(f"https://news.example/acme/{kill_after}"))
    index = f"killed-mentions-{START + timedelta(minutes=kill_after):%Y.%m}"
    with ReplayServer(routes) as site:
        project = project_file(
            folder / "p",
            [f"{site.url}/feed{n}.xml" for n in range(feeds)],
            "killed",
            "concurrent_requests = 1\ndownload_delay = 0.5\nbatch_size = 32\n",
        )
        env = environment(home, None)
        state_file = home / "engine" / "listener-engine.json"
        with subprocess.Popen(
            crawl_command(project), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        ) as crawler:  # fmt: skip
            killed = False
            while crawler.poll() is None and not killed:
                if state_file.is_file():
                    state = json.loads(state_file.read_text())
                    client = Elasticsearch(state["url"], request_timeout=5)
                    try:
                        if client.options(ignore_status=404).get(index=index, id=wanted)["found"]:
                            os.kill(int(state["pid"]), signal.SIGKILL)
                            killed = True
                    except Exception:
                        pass
                    finally:
                        client.close()
                time.sleep(0.02)
            crawler.communicate()
        first_exit = crawler.returncode
        with EmbeddedEngine(home / "engine") as restarted:
            survived = len(indexed_ids(restarted.url, "killed"))
        spooled = len(ids_in(sorted((home / "spool").glob("*.ndjson"))))
        again = subprocess.run(crawl_command(project), env=env, capture_output=True, check=False)
        with EmbeddedEngine(home / "engine") as restarted:
            final = len(indexed_ids(restarted.url, "killed"))
    return {
        "scenario": "kill",
        "generated": total,
        "engine_killed_after_item": kill_after,
        "first_exit": first_exit,
        "in_index_after_restart": survived,
        "in_spool_after_restart": spooled,
        "second_exit": again.returncode,
        "in_index_after_recrawl": final,
        "lost": total - final,
    }


def scenario_broken(folder: Path, mode: str, engine_url: str, total: int = 300) -> dict[str, Any]:
    """Crawl ``total`` mentions into a broken "Elasticsearch"; count where each one went."""
    home = folder / "home"
    home.mkdir(parents=True)
    stand_in = StandIn("empty404" if mode == "unwritable" else mode, engine_url)
    if mode == "unwritable":
        (home / "spool").write_text("a file where the spool directory should be")
    routes = [Route("/feed.xml", body=feed(total), headers={"Content-Type": "application/rss+xml"})]
    prefix = f"bench{mode.replace('_', '')}{os.getpid()}"
    try:
        with ReplayServer(routes) as site:
            project = project_file(folder / "p", [f"{site.url}/feed.xml"], prefix)
            result = subprocess.run(
                crawl_command(project), env=environment(home, stand_in.url), capture_output=True,
                text=True, check=False,
            )  # fmt: skip
    finally:
        stand_in.close()
    spooled = ids_in(sorted((home / "spool").glob("*.ndjson"))) if mode != "unwritable" else set()
    dead = ids_in([home / "dead-letter.ndjson"])
    indexed = indexed_ids(engine_url, prefix) if mode == "html_bulk" else set()
    kept = spooled | dead | indexed
    return {
        "scenario": mode,
        "generated": total,
        "exit": result.returncode,
        "indexed": len(indexed),
        "spooled": len(spooled),
        "dead_lettered": len(dead),
        "lost": total - len(kept),
    }


def scenario_bomb(folder: Path, engine_url: str, megabytes: int = 512) -> dict[str, Any]:
    """Crawl a feed that is a gzip bomb; report the peak resident memory of the crawl process."""
    # Compressed a megabyte at a time: this process must stay small (children inherit its size).
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = b"\0" * (1024 * 1024)
    bomb = b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()
    headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    with ReplayServer([Route("/feed.xml", body=bomb, headers=headers)]) as site:
        project = project_file(folder / "p", [f"{site.url}/feed.xml"], f"bomb{os.getpid()}")
        started = time.monotonic()
        result = subprocess.run(
            crawl_command(project), env=environment(folder / "home", engine_url),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    # The largest resident set of any finished child so far: run this scenario on its own.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "scenario": "bomb",
        "gzip_bytes": len(bomb),
        "decompressed_mb": megabytes,
        "exit": result.returncode,
        "peak_rss_mb": round(peak),
        "seconds": round(elapsed, 1),
        "stopped_by_size_limit": "DOWNLOAD_MAXSIZE" in result.stderr,
    }


def checkpoint_covers(home: Path, label: str, feed_key: str) -> Any:
    """Whether the saved checkpoint makes the next run skip an item (so it had better be kept)."""
    path = home / "state" / f"{label}.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    value = (saved.get("newest") or {}).get(feed_key)
    newest = datetime.fromisoformat(value) if value else None
    seen = set((saved.get("seen") or {}).get(feed_key) or ())
    has_seen = feed_key in (saved.get("seen") or {})

    def covers(number: int) -> bool:
        published = START + timedelta(minutes=number)
        if newest is None or published > newest:
            return False
        if not has_seen:
            return True
        return mention_id("rss", canonicalize_url(f"https://news.example/acme/{number}")) in seen

    return covers


def count_indexed(url: str, prefix: str) -> int:
    client = Elasticsearch(url, request_timeout=30)
    try:
        client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
        body = client.options(ignore_status=404).count(index=f"{prefix}-mentions").body
        return int(body.get("count", 0))
    except Exception:
        return 0
    finally:
        client.close()


def all_indexed_ids(url: str, prefix: str) -> set[str]:
    client = Elasticsearch(url, request_timeout=120)
    found: set[str] = set()
    try:
        client.indices.refresh(index=f"{prefix}-mentions", ignore_unavailable=True)
        after: list[Any] | None = None
        while True:
            extra = {"search_after": after} if after else {}
            body = (
                client.options(ignore_status=404)
                .search(index=f"{prefix}-mentions", size=5000, source_includes=["id"],
                        sort=[{"id": "asc"}], **extra)
                .body
            )  # fmt: skip
            hits = body.get("hits", {}).get("hits", [])
            if not hits:
                return found
            found.update(hit["_id"] for hit in hits)
            after = hits[-1]["sort"]
    finally:
        client.close()


def scenario_sigterm(
    folder: Path, engine_url: str, total: int = 100_000, after: int = 300, patience: float = 180
) -> dict[str, Any]:
    """SIGTERM a crawl of one ``total``-item feed once ``after`` mentions are indexed.

    Reports the seconds from the signal to the exit, the exit code, what the
    summary and the run file claimed against what the index holds, and how many
    mentions were lost: neither indexed, spooled nor dead-lettered, yet covered
    by the saved checkpoint (so the next run would not fetch them again).
    """
    home = folder / "home"
    body = feed(total)
    prefix = f"sigterm{os.getpid()}"
    rss = {"Content-Type": "application/rss+xml"}
    with ReplayServer([Route("/big.xml", body=body, headers=rss)]) as site:
        url = f"{site.url}/big.xml"
        project = project_file(folder / "p", [url], prefix, "max_download_mb = 64\n")
        started = time.monotonic()
        with subprocess.Popen(
            crawl_command(project), env=environment(home, engine_url), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        ) as crawler:  # fmt: skip
            signalled = None
            while crawler.poll() is None and signalled is None:
                if count_indexed(engine_url, prefix) >= after:
                    crawler.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
                else:
                    time.sleep(0.5)
            try:
                out, err = crawler.communicate(timeout=patience)
            except subprocess.TimeoutExpired:
                crawler.kill()
                out, err = crawler.communicate()
            stopped = time.monotonic()
    indexed = all_indexed_ids(engine_url, prefix)
    spooled = ids_in(sorted((home / "spool").glob("*.ndjson")))
    dead = ids_in([home / "dead-letter.ndjson"])
    kept = indexed | spooled | dead
    covers = checkpoint_covers(home, "gen", url)
    lost = 0
    for number in range(total):
        key = mention_id("rss", canonicalize_url(f"https://news.example/acme/{number}"))
        if key not in kept and covers(number):
            lost += 1
    runs = sorted((home / "runs").glob("*.json"))
    run = json.loads(runs[-1].read_text()) if runs else {}
    summary = next((line for line in (out + err).splitlines() if "crawl finished" in line), "")
    return {
        "scenario": "sigterm",
        "generated": total,
        "feed_mb": round(len(body) / 1e6, 1),
        "sigterm_after_seconds": round(signalled - started, 1) if signalled else None,
        "seconds_to_stop": round(stopped - signalled, 1) if signalled else None,
        "killed_after_patience": crawler.returncode == -signal.SIGKILL,
        "exit": crawler.returncode,
        "in_index": len(indexed),
        "in_spool": len(spooled),
        "dead_lettered": len(dead),
        "run_file_indexed": run.get("indexed"),
        "run_file_seconds": run.get("elapsed_seconds"),
        "summary": summary.strip(),
        "lost": lost,
        "left_for_next_run": total - len(kept) - lost,
        # The largest finished child so far (the crawl; its enrichment workers are smaller).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scenarios = ["kill", "empty404", "html_bulk", "unwritable", "bomb", "sigterm", "all"]
    parser.add_argument("scenario", choices=scenarios)
    chosen = parser.parse_args().scenario
    names = ["empty404", "html_bulk", "unwritable", "kill"] if chosen == "all" else [chosen]
    with tempfile.TemporaryDirectory(prefix="listener-faults-") as scratch:
        base = Path(scratch)
        with EmbeddedEngine(base / "engine") as engine:
            for name in names:
                folder = base / name
                if name == "kill":
                    row = scenario_kill(folder)
                elif name == "bomb":
                    row = scenario_bomb(folder, engine.url)
                elif name == "sigterm":
                    row = scenario_sigterm(folder, engine.url)
                else:
                    row = scenario_broken(folder, name, engine.url)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
