"""Duplicate detection: exact and near copies share a cluster, within a crawl and with the index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from listener.config import ProjectConfig
from listener.crawl.dedupe import (
    MENTIONS_PER_BAND,
    BandIndex,
    Deduplicator,
    index_lookup,
    normalise,
    signature,
    similarity,
)
from listener.mention import Mention
from listener.store.indexer import Indexer, mentions_alias

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


def test_the_band_index_finds_stored_copies_by_id_and_skips_removed_heads(
    client: Elasticsearch, project: ProjectConfig, engine: Any
) -> None:
    prefix = project.elasticsearch.index_prefix
    indexer = Indexer(client, project)
    indexer.install_templates()
    # Stored before the band index existed: its first use fills it from the mentions.
    [old] = Deduplicator().assign([mention(0, ORIGINAL)])
    assert indexer.index([old]).indexed == 1
    indexer.refresh()

    crawl = Deduplicator(lookup=BandIndex(client, prefix))
    [copy, fresh] = crawl.assign(
        [mention(1, ORIGINAL.replace("Thursday", "Friday")), mention(2, "Initech hires 40 people.")]
    )
    assert copy.duplicate and copy.cluster_id == old.id
    assert not fresh.duplicate
    assert indexer.index([copy, fresh]).indexed == 2

    # A later crawl finds the head this crawl recorded, through a new lookup.
    [again] = Deduplicator(lookup=BandIndex(client, prefix)).assign(
        [mention(3, "Initech hires 40 people today.")]
    )
    assert again.duplicate and again.cluster_id == fresh.id

    # A head no longer stored (retention, erasure) is no candidate.
    client.delete(index=indexer.index_name_for(fresh), id=fresh.id, refresh=True)
    [alone] = Deduplicator(lookup=BandIndex(client, prefix)).assign(
        [mention(4, "Initech hires 40 people today.")]
    )
    assert not alone.duplicate


def test_a_band_keeps_a_bounded_number_of_heads() -> None:
    texts = [f"{ORIGINAL} Update number {n} adds detail {n * 7}." for n in range(30)]
    deduplicator = Deduplicator()
    deduplicator.assign([mention(n, text) for n, text in enumerate(texts)])
    assert max(len(heads) for heads in deduplicator.seen.values()) <= MENTIONS_PER_BAND
