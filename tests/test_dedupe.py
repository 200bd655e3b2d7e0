"""Duplicate detection: exact and near copies share a cluster, within a crawl and with the index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from listener.config import ProjectConfig
from listener.crawl.dedupe import (
    MENTIONS_PER_BAND,
    BandRecord,
    Deduplicator,
    index_lookup,
    normalise,
    old_bands_index,
    signature,
    similarity,
)
from listener.mention import Mention
from listener.store.bands import BANDS_FILE, BandStore, Head, RedisBands, SqliteBands
from listener.store.engine import free_port
from listener.store.indexer import Indexer, mentions_alias
from listener.store.lifecycle import Selector, apply_retention, forget

ORIGINAL = (
    "Globex's object storage went down on Thursday and took thousands of websites and apps "
    "offline for almost three hours, according to the company's status page."
)


def mention(number: int, text: str) -> Mention:
    return Mention.create(
        source="rss",
        source_kind="news",
        url=f"https://site{number}.example/story",
        text=text,
        published_at=datetime(2026, 11, 12, tzinfo=UTC),
    )


def test_similarity_estimates_jaccard() -> None:
    same = signature(normalise(ORIGINAL))
    edited = signature(normalise(ORIGINAL.replace("thousands", "hundreds")))
    other = signature(normalise("Acme opened a new office in Lyon and customers love it."))
    assert similarity(same, same) == 1.0
    assert similarity(same, edited) >= 0.6
    assert similarity(same, other) < 0.2


def test_copies_join_the_first_mentions_cluster() -> None:
    texts = [
        ORIGINAL,
        ORIGINAL.upper(),  # case only
        f"{ORIGINAL} via @techwire https://t.co/abc",  # syndication tag
        ORIGINAL.replace("almost three", "nearly three"),  # an edit
        "Acme opened a new office in Lyon and customers love it, says the mayor.",
    ]
    result = Deduplicator().assign([mention(i, t) for i, t in enumerate(texts)])
    head = result[0]
    assert head.cluster_id == head.id and not head.duplicate
    assert [m.cluster_id == head.id for m in result[1:4]] == [True, True, True]
    assert all(m.duplicate for m in result[1:4])
    assert result[4].cluster_id == result[4].id and not result[4].duplicate
    assert head.dedupe is not None and len(head.dedupe.bands) == 16


def test_recrawl_of_the_head_stays_the_head() -> None:
    deduplicator = Deduplicator()
    first = deduplicator.assign([mention(0, ORIGINAL), mention(1, ORIGINAL)])
    again = deduplicator.assign([mention(0, ORIGINAL)])
    assert first[1].duplicate and first[1].cluster_id == first[0].id
    assert not again[0].duplicate and again[0].cluster_id == again[0].id


def test_copies_of_stored_mentions_are_found_through_the_index(
    client: Elasticsearch, project: ProjectConfig, engine: Any
) -> None:
    indexer = Indexer(client, project)
    indexer.install_templates()
    [stored] = Deduplicator().assign([mention(0, ORIGINAL)])
    assert indexer.index([stored]).indexed == 1
    indexer.refresh()
    later = Deduplicator(
        lookup=index_lookup(client, mentions_alias(project.elasticsearch.index_prefix))
    )
    [copy, other] = later.assign(
        [mention(5, ORIGINAL.replace("Thursday", "Friday")), mention(6, "Initech hires 40 people.")]
    )
    assert copy.duplicate and copy.cluster_id == stored.id
    assert not other.duplicate


def test_a_crawl_remembers_only_its_last_mentions() -> None:
    # Memory stays bounded however many items a crawl finds: beyond the window, mentions
    # are stored in the index by then and found through the lookup instead.
    deduplicator = Deduplicator(window=40)
    texts = [f"Story {n}: " + " ".join(f"word{n}x{k}" for k in range(12)) for n in range(200)]
    for start in range(0, 200, 16):
        deduplicator.assign([mention(n, texts[n]) for n in range(start, min(start + 16, 200))])
    recent = {mention(n, texts[n]).id for n in range(160, 200)}
    remembered = {known.id for heads in deduplicator.seen.values() for known in heads}
    assert remembered == recent
    assert {known.id for known in deduplicator.exact_seen.values()} == recent
    [copy_of_recent, copy_of_forgotten] = deduplicator.assign(
        [mention(1000, texts[199].upper()), mention(1001, texts[3].upper())]
    )
    assert copy_of_recent.duplicate and copy_of_recent.cluster_id == mention(199, "").id
    assert not copy_of_forgotten.duplicate  # no lookup here: only the index would know it


def test_the_band_record_finds_stored_copies_and_only_accepted_heads(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    indexer = Indexer(client, project)
    indexer.install_templates()
    # Stored before the band record existed: its first use fills it from the mentions.
    [old] = Deduplicator().assign([mention(0, ORIGINAL)])
    assert indexer.index([old]).indexed == 1

    crawl = Deduplicator(lookup=BandRecord(indexer))
    [copy, fresh] = crawl.assign(
        [mention(1, ORIGINAL.replace("Thursday", "Friday")), mention(2, "Initech hires 40 people.")]
    )
    assert copy.duplicate and copy.cluster_id == old.id
    assert not fresh.duplicate
    assert indexer.index([copy, fresh]).indexed == 2
    crawl.stored([copy, fresh])
    # A batch the index did not accept (spooled, rejected) is not told: no candidate.
    [unaccepted] = crawl.assign([mention(3, "Umbrella Corp recalls 3,000 umbrellas in Ohio.")])
    assert not unaccepted.duplicate

    # A later crawl (another process: a new record object) finds the head this crawl recorded.
    [again, alone] = Deduplicator(lookup=BandRecord(Indexer(client, project))).assign(
        [
            mention(4, "Initech hires 40 people today."),
            mention(5, "Umbrella Corp recalls 3,000 umbrellas in Ohio today."),
        ]
    )
    assert again.duplicate and again.cluster_id == fresh.id
    assert not alone.duplicate and alone.cluster_id == alone.id


def test_mentions_indexed_by_a_spool_replay_become_candidates(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    """A crawl that found the engine down spooled its batch; the next crawl replays it, and a
    copy of a replayed mention is then found without rebuilding the band record."""
    live = Indexer(client, project)
    live.install_templates()
    crawl = Deduplicator(lookup=BandRecord(live))
    [first] = crawl.assign([mention(0, "Initech hires 40 people.")])  # the record is filled here
    down = Elasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0, request_timeout=2)
    outage = Indexer(down, project, max_retries=0)
    [spooled] = Deduplicator(lookup=BandRecord(outage)).assign([mention(1, ORIGINAL)])
    assert outage.index([spooled]).spooled == 1

    next_crawl = Deduplicator(lookup=BandRecord(Indexer(client, project)))
    assert live.replay_spool(on_indexed=next_crawl.stored).indexed == 1
    [copy] = next_crawl.assign([mention(2, ORIGINAL.replace("Thursday", "Friday"))])
    assert copy.duplicate and copy.cluster_id == spooled.id
    [later_copy] = Deduplicator(lookup=BandRecord(live)).assign([mention(3, ORIGINAL.upper())])
    assert later_copy.duplicate and later_copy.cluster_id == spooled.id
    assert not first.duplicate


def test_a_home_with_the_old_band_index_is_refilled_and_the_index_deleted(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    """Upgrade: an older listener kept band → heads in ``<prefix>-dedupe-bands``."""
    prefix = project.elasticsearch.index_prefix
    indexer = Indexer(client, project)
    [old] = Deduplicator().assign([mention(0, ORIGINAL)])
    assert indexer.index([old]).indexed == 1
    client.indices.create(index=old_bands_index(prefix), mappings={"dynamic": False})
    client.index(index=old_bands_index(prefix), id="_listener_bands_complete", document={})
    assert not (project.home / BANDS_FILE).exists()

    record = BandRecord(Indexer(client, project))
    [copy] = Deduplicator(lookup=record).assign([mention(1, ORIGINAL.upper())])
    assert copy.duplicate and copy.cluster_id == old.id
    assert not client.indices.exists(index=old_bands_index(prefix))
    assert (project.home / BANDS_FILE).is_file()
    assert record.store.token() == indexer.engine_token()


def test_a_lost_or_foreign_band_record_is_refilled(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    indexer = Indexer(client, project)
    [old] = Deduplicator().assign([mention(0, ORIGINAL)])
    assert indexer.index([old]).indexed == 1
    first = BandRecord(indexer)
    first([])  # filled and paired with this engine
    first.store.close()
    (project.home / BANDS_FILE).unlink()  # deleted, or a new LISTENER_HOME
    [copy] = Deduplicator(lookup=BandRecord(indexer)).assign([mention(1, ORIGINAL.upper())])
    assert copy.duplicate and copy.cluster_id == old.id

    # Filled against another engine behind the same prefix: its heads are not ours.
    store = SqliteBands(project.home / BANDS_FILE, project.elasticsearch.index_prefix, 4)
    store.clear()
    elsewhere = Head("f" * 40, "f" * 40, "x", "0" * 576, "other-index")
    assert copy.dedupe is not None
    store.add([(elsewhere, copy.dedupe.bands)])
    store.set_token("another-engine")
    record = BandRecord(indexer, store)
    [later] = Deduplicator(lookup=record).assign([mention(2, ORIGINAL.lower())])
    assert later.duplicate and later.cluster_id == old.id
    assert store.token() == indexer.engine_token()
    assert elsewhere.id not in {head.id for head in store.heads(copy.dedupe.bands)}


def _heads_of(project: ProjectConfig, indexer: Indexer, copy: Mention) -> set[str]:
    record = BandRecord(indexer)
    assert copy.dedupe is not None
    return {head.id for head in record.store.heads(copy.dedupe.bands)}


@pytest.mark.parametrize("clustered", [False, True], ids=["sqlite", "redis"])
def test_forgotten_and_expired_mentions_are_no_cluster_heads(
    client: Elasticsearch, project: ProjectConfig, request: pytest.FixtureRequest, clustered: bool
) -> None:
    if clustered:
        project.cluster.redis_url = request.getfixturevalue("redis_url")
    indexer = Indexer(client, project)
    erased = Mention.create(
        source="rss",
        source_kind="news",
        url="https://erased.example/story",
        text=ORIGINAL,
        published_at=datetime(2026, 11, 12, tzinfo=UTC),
        author={"handle": "erased"},
    )
    expired = mention(1, "Initech hires 40 people in Lyon, the company said on Monday.")
    expired = expired.model_copy(update={"published_at": datetime(2024, 1, 5, tzinfo=UTC)})
    crawl = Deduplicator(lookup=BandRecord(indexer))
    stored = crawl.assign([erased, expired])
    assert indexer.index(stored).indexed == 2
    crawl.stored(stored)
    assert erased.id in _heads_of(project, indexer, stored[0])

    forget(client, project, Selector(author="erased"))
    apply_retention(client, project, days=365, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert erased.id not in _heads_of(project, indexer, stored[0])
    assert expired.id not in _heads_of(project, indexer, stored[1])
    # A new copy of either starts its own cluster: neither is a candidate any more.
    later = Deduplicator(lookup=BandRecord(Indexer(client, project))).assign(
        [mention(2, ORIGINAL.upper()), mention(3, expired.text.upper())]
    )
    assert [m.duplicate for m in later] == [False, False]
    assert [m.cluster_id for m in later] == [m.id for m in later]
    assert (project.home / BANDS_FILE).exists() is not clustered


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BandStore]:
    if request.param == "sqlite":
        made: BandStore = SqliteBands(tmp_path / BANDS_FILE, "p", limit=2)
    else:
        from listener.service.state import redis_client

        made = RedisBands(redis_client(request.getfixturevalue("redis_url")), "t:dedupe-", 2)
    yield made
    made.close()


def _head(number: int, index: str = "m-2026.11") -> Head:
    return Head(f"{number:040x}", f"{number:040x}", f"e{number}", f"s{number}", index)


def test_a_band_store_keeps_the_first_heads_and_forgets_them_everywhere(store: BandStore) -> None:
    one, two, three = _head(1), _head(2), _head(3, "m-2026.10")
    assert store.add([(one, ["0:a", "1:b"]), (two, ["0:a"]), (three, ["0:a", "1:b"])]) == 4
    assert [h.id for h in store.heads(["0:a", "1:b"])] == [one.id, two.id, three.id]
    assert store.heads(["0:a"]) == [one, two]  # the band is full: three came too late
    moved = Head(one.id, one.id, "e1", "s1", "m-2026.12")
    assert store.add([(moved, ["0:a", "2:c"])]) == 1  # updated, and in one more band
    assert store.heads(["2:c"]) == [moved]
    assert store.count() == 3

    assert store.forget_ids([one.id, "unknown"]) == 1
    assert [h.id for h in store.heads(["0:a", "1:b", "2:c"])] == [two.id, three.id]
    assert store.add([(_head(4), ["0:a"])]) == 1  # room again
    assert store.forget_indices(["m-2026.10"]) == 1
    assert [h.id for h in store.heads(["0:a", "1:b"])] == [two.id, _head(4).id]

    assert store.token() is None
    store.set_token("t1")
    assert store.token() == "t1"
    store.clear()
    assert (store.count(), store.token(), store.heads(["0:a"])) == (0, None, [])


def test_a_band_keeps_a_bounded_number_of_heads() -> None:
    texts = [f"{ORIGINAL} Update number {n} adds detail {n * 7}." for n in range(30)]
    deduplicator = Deduplicator()
    deduplicator.assign([mention(n, text) for n, text in enumerate(texts)])
    assert max(len(heads) for heads in deduplicator.seen.values()) <= MENTIONS_PER_BAND
