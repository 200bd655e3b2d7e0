"""Re-running enrichment on stored mentions: after a model update, or a new or edited brand rule.

Both ``listener reenrich`` and ``listener rematch`` read stored mentions, run
them through the same :class:`~listener.enrichment.Enricher` a crawl uses
(so brands, positions, per-brand sentiment and owned flags are computed one
way only), and write them back under the same ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from listener.config import ProjectConfig
from listener.mention import Mention
from listener.rules import Rule, RuleInput, parse_rule
from listener.store.indexer import Indexer, mentions_alias

BATCH = 256


@dataclass
class RelabelResult:
    """What a re-enrichment changed."""

    examined: int = 0
    written: int = 0
    spooled: int = 0
    rejected: int = 0
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)


def concrete_indices(client: Elasticsearch, project: ProjectConfig) -> list[str]:
    """The monthly indices behind the read alias (points in time need concrete names)."""
    alias = mentions_alias(project.elasticsearch.index_prefix)
    found = client.options(ignore_status=404).indices.get_alias(name=alias)
    body = found.body if hasattr(found, "body") else found
    if not isinstance(body, dict) or "error" in body:
        return []
    return sorted(name for name in body if isinstance(body.get(name), dict))


def stored_documents(
    client: Elasticsearch, project: ProjectConfig, query: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored document matching ``query`` (all when None), paged with search_after."""
    indices = concrete_indices(client, project)
    if not indices:
        return
    search_after: list[Any] | None = None
    while True:
        extra: dict[str, Any] = {"search_after": search_after} if search_after else {}
        response = client.search(
            index=",".join(indices),
            query=query or {"match_all": {}},
            size=BATCH,
            sort=[{"id": "asc"}],
            track_total_hits=False,
            **extra,
        )
        hits = response["hits"]["hits"]
        for hit in hits:
            yield hit["_source"]
        if len(hits) < BATCH:
            return
        search_after = hits[-1]["sort"]


def _batches(items: Iterable[Mention], size: int) -> Iterator[list[Mention]]:
    batch: list[Mention] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def reenrich(
    client: Elasticsearch,
    project: ProjectConfig,
    *,
    query: dict[str, Any] | None = None,
    enricher: Any = None,
    progress: Callable[[RelabelResult], None] | None = None,
) -> RelabelResult:
    """Re-enrich stored mentions (those matching ``query``, else all) and write them back."""
    from listener.enrichment import Enricher

    enricher = enricher or Enricher(project)
    indexer = Indexer(client, project)
    result = RelabelResult()
    before: dict[str, set[str]] = {}

    def mentions() -> Iterator[Mention]:
        for document in stored_documents(client, project, query):
            mention = Mention.model_validate(document)
            before[mention.id] = set(mention.brand_names)
            yield mention

    from listener.crawl.dedupe import BandRecord, Deduplicator

    deduplicator = Deduplicator(lookup=BandRecord(indexer))
    for batch in _batches(enricher.enrich(mentions()), BATCH):
        batch = deduplicator.assign(batch)
        for mention in batch:
            old = before.pop(mention.id, set())
            new = set(mention.brand_names)
            result.added.update(new - old)
            result.removed.update(old - new)
        outcome = indexer.index(batch)
        deduplicator.stored([m for m in batch if m.id in outcome.indexed_ids])
        result.examined += len(batch)
        result.written += outcome.indexed
        result.spooled += outcome.spooled
        result.rejected += outcome.rejected
        if progress is not None:
            progress(result)
    indexer.refresh()
    return result


def rematch_query(
    project: ProjectConfig, brands: list[str], *, removed_brands: bool = False
) -> dict[str, Any]:
    """Stored mentions a rematch of ``brands`` must look at: labelled now, or selected now.

    ``removed_brands``: also those labelled only with brands the project file no
    longer defines, so their labels go (a rematch of every brand does this).
    """
    should: list[dict[str, Any]] = [{"terms": {"brand_names": brands}}]
    if removed_brands:
        current = [brand.name for brand in project.brands]
        should.append(
            {
                "bool": {
                    "filter": [{"exists": {"field": "brand_names"}}],
                    "must_not": [{"terms": {"brand_names": current}}],
                }
            }
        )
    for name in brands:
        brand = project.brand(name)
        if brand.query:
            should.append(parse_rule(brand.query).to_query())
        for keyword in brand.keywords or ([] if brand.query else [brand.name]):
            term = keyword.lstrip("#@")
            should.append({"multi_match": {"query": term, "fields": ["title", "text"],
                                           "type": "phrase"}})  # fmt: skip
    return {"bool": {"should": should, "minimum_should_match": 1}}


@dataclass
class Preview:
    """How many stored mentions a draft rule selects, with the newest samples."""

    count: int
    samples: list[dict[str, Any]]
    exact_in_engine: bool


def preview_rule(
    client: Elasticsearch, project: ProjectConfig, rule: Rule, *, samples: int = 10
) -> Preview:
    """Count the stored mentions ``rule`` matches (the matcher decides) and keep the newest."""
    matched: list[dict[str, Any]] = []
    for document in stored_documents(client, project, {"bool": {"filter": [rule.to_query()]}}):
        if rule.matches(RuleInput.from_document(document)) is not None:
            matched.append(document)
    matched.sort(key=lambda d: (d.get("published_at") or "", d.get("id") or ""), reverse=True)
    return Preview(
        count=len(matched), samples=matched[:samples], exact_in_engine=rule.exact_in_engine
    )
