"""Enrichment in long-lived worker processes: same results, fresh workers, a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pluggy
import pytest
from elasticsearch import Elasticsearch

from listener.cli.demo import write_demo_project
from listener.config import ProjectConfig
from listener.enrichment import Enricher, VaderScorer
from listener.enrichment.pool import EnrichmentPool, default_processes, fork_available
from listener.mention import Mention
from listener.sdk import hookspecs
from listener.sdk.replay import ReplayServer, load_site

pytestmark = pytest.mark.skipif(not fork_available(), reason="worker processes need fork")

TEXTS = [
    "Acme is great, Globex is awful",
    "Tim Cook visited Berlin to meet Acme Corp engineers.",
    "No brand in this one at all.",
    "#acme @globex thanks!",
]


def plain_enricher() -> Enricher:
    manager = pluggy.PluginManager("listener")
    manager.add_hookspecs(hookspecs)
    config = ProjectConfig.model_validate(
        {"brands": [{"name": "Acme", "keywords": ["acme", "acme corp"]}, {"name": "Globex"}]}
    )
    return Enricher(config, batch_size=4, scorer=VaderScorer(), plugin_manager=manager)


def mentions(count: int, start: int = 0) -> list[Mention]:
    return [
        Mention.create(
            source="test",
            source_kind="social",
            url=f"https://social.example/p/{n}",
            text=TEXTS[n % len(TEXTS)],
            published_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        for n in range(start, start + count)
    ]


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return plain_enricher()


def test_batches_in_workers_match_enrichment_in_process(enricher: Enricher) -> None:
    batches = [mentions(6, 0), mentions(5, 6), mentions(7, 11)]
    expected = [[m.to_document() for m in enricher.enrich(batch)] for batch in batches]
    with EnrichmentPool(enricher, 2) as pool:
        futures = [pool.submit(batch) for batch in batches]  # all in flight at once
        got = [[m.to_document() for m in future.result(timeout=120)] for future in futures]
    assert got == expected
    assert any(m["brands"] for batch in got for m in batch)


def test_workers_are_replaced_after_their_share_of_mentions(enricher: Enricher) -> None:
    with EnrichmentPool(enricher, 2, mentions_per_generation=10) as pool:
        results = [pool.submit(mentions(4, 4 * n)).result(timeout=120) for n in range(6)]
        assert pool.generations == 3  # 24 mentions, at most 10 per set of workers
    assert [len(batch) for batch in results] == [4] * 6
    assert all(m.brands for batch in results for m in batch if "Acme" in m.text)


def test_a_killed_worker_loses_no_batch(enricher: Enricher) -> None:
    with EnrichmentPool(enricher, 2) as pool:
        batches = [mentions(3, 3 * n) for n in range(8)]
        futures = [pool.submit(batch) for batch in batches]
        executor = pool._executor
        assert executor is not None
        os.kill(next(iter(executor._processes)), signal.SIGKILL)
        got = [[m.id for m in future.result(timeout=120)] for future in futures]
        assert got == [[m.id for m in batch] for batch in batches]
        # The executor notices a dead worker only once no result is waiting, so on a quiet
        # machine the survivor may finish every batch first: wait until it has noticed.
        for _ in range(600):
            if executor._broken:
                break
            threading.Event().wait(0.05)
        assert executor._broken
        # A batch sent after the crash goes to the new workers.
        assert len(pool.submit(mentions(2)).result(timeout=120)) == 2
        assert pool.generations == 2


def test_one_process_is_not_a_pool(enricher: Enricher) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        EnrichmentPool(enricher, 1)
    assert 1 <= default_processes() <= 4


@pytest.mark.slow
def test_a_crawl_stores_the_same_mentions_with_one_or_two_enrichment_processes(
    engine: Any, session_client: Elasticsearch, tmp_path: Path
) -> None:
    """The demo site crawled with the pool and without it: the same documents in the index."""
    stored: dict[int, dict[str, dict[str, Any]]] = {}
    with ReplayServer(load_site(Path(str(files("listener.demo_site"))))) as server:
        for processes in (1, 2):
            prefix = f"pool{processes}{uuid.uuid4().hex[:8]}"
            path = write_demo_project(tmp_path / f"p{processes}", server.url)
            path.write_text(
                f'[elasticsearch]\nindex_prefix = "{prefix}"\n\n[crawl]\nautothrottle = false\n'
                f"enrich_processes = {processes}\n\n" + path.read_text(encoding="utf-8"),
                encoding="utf-8",
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
            env.update(LISTENER_HOME=str(tmp_path / f"h{processes}"), LISTENER_ES_URL=engine.url)
            result = subprocess.run(
                [sys.executable, "-m", "listener.cli", "crawl", "-c", str(path)],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr[-3000:]
            session_client.indices.refresh(index=f"{prefix}-mentions")
            hits = session_client.search(index=f"{prefix}-mentions", size=1000)["hits"]["hits"]
            stored[processes] = {
                hit["_id"]: {k: v for k, v in hit["_source"].items() if k != "crawled_at"}
                for hit in hits
            }
            quiet = session_client.options(ignore_status=404)
            names = list(quiet.indices.get(index=f"{prefix}-*", allow_no_indices=True).body)
            quiet.indices.delete(index=",".join(names))
            quiet.indices.delete_index_template(name=f"{prefix}-mentions")
    assert stored[1] and stored[2].keys() == stored[1].keys()
    # An article in two feeds (RSS and JSON Feed) is one mention, from whichever feed came
    # first: compare what enrichment made of the items that came from the same copy.
    enriched = ("language", "brands", "brand_names", "entities", "phrases", "sentiment")
    same_copy = [key for key in stored[1] if stored[1][key]["url"] == stored[2][key]["url"]]
    assert len(same_copy) >= len(stored[1]) - 5
    differing = {
        (key, field): (stored[1][key][field], stored[2][key][field])
        for key in same_copy
        for field in enriched
        if stored[1][key][field] != stored[2][key][field]
    }
    assert not differing


ORPHAN_SCRIPT = """
import sys
from tests.test_enrichment_pool import plain_enricher
from listener.enrichment.pool import EnrichmentPool
pool = EnrichmentPool(plain_enricher(), 2).start()
print(" ".join(str(pid) for pid in pool._executor._processes), flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split()[2] != "Z"  # a zombie is gone in all but name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_enrichment_workers_exit_when_their_crawl_is_killed() -> None:
    """A worker killed with SIGKILL once left its two enrichment processes idle for ever."""
    root = Path(__file__).resolve().parent.parent
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = 300  # polls of 0.1 s: the watch looks once a second
    while any(_alive(pid) for pid in workers) and deadline:
        subprocess.run(["sleep", "0.1"], check=True)
        deadline -= 1
    assert not any(_alive(pid) for pid in workers)
