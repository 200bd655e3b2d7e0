"""Enrichment in long-lived worker processes: same results, fresh workers, a killed worker."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pluggy
import pytest

from listener import hookspecs
from listener.config import ProjectConfig
from listener.enrichment import Enricher, VaderScorer
from listener.enrichment.pool import EnrichmentPool, default_processes, fork_available
from listener.mention import Mention

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
        # A batch sent after the crash goes to the new workers.
        assert len(pool.submit(mentions(2)).result(timeout=120)) == 2
        assert pool.generations == 2


def test_one_process_is_not_a_pool(enricher: Enricher) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        EnrichmentPool(enricher, 1)
    assert 1 <= default_processes() <= 4
