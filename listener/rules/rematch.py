"""Apply a rule to stored mentions: the engine selects, the matcher confirms and locates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from listener.rules.matcher import RuleInput, RuleMatch
from listener.rules.rule import Rule

SOURCE_FIELDS = ("text", "title", "domain", "author.name", "author.handle", "language", "source")


@dataclass(frozen=True)
class RuleHit:
    """A stored mention the rule matches: where it is and how it matched."""

    index: str
    id: str
    match: RuleMatch


def find_matches(
    client: Elasticsearch,
    index: str,
    rule: Rule,
    *,
    restrict: dict[str, Any] | None = None,
    page_size: int = 500,
    keep_alive: str = "2m",
) -> Iterator[RuleHit]:
    """Every stored mention in ``index`` (an index, alias or pattern) that ``rule`` matches.

    The engine runs :meth:`Rule.to_query` (plus ``restrict``, e.g. a date
    range) through a point in time; the matcher runs on each hit's text, which
    drops the pre-filter's extra hits when the rule is not exact in the engine
    and gives the match positions in every case. Pages are ``page_size`` hits.
    """
    filters = [rule.to_query()]
    if restrict:
        filters.append(restrict)
    body_query = {"bool": {"filter": filters}}
    pit = client.open_point_in_time(index=index, keep_alive=keep_alive)
    pit_id = pit["id"]
    try:
        search_after: list[Any] | None = None
        while True:
            extra: dict[str, Any] = {"search_after": search_after} if search_after else {}
            response = client.search(
                pit={"id": pit_id, "keep_alive": keep_alive},
                query=body_query,
                size=page_size,
                sort=["_shard_doc"],
                source_includes=list(SOURCE_FIELDS),
                track_total_hits=False,
                **extra,
            )
            pit_id = response.get("pit_id", pit_id)
            hits = response["hits"]["hits"]
            for hit in hits:
                match = rule.matches(RuleInput.from_document(hit.get("_source") or {}))
                if match is not None:
                    yield RuleHit(hit["_index"], hit["_id"], match)
            if len(hits) < page_size:
                return
            search_after = hits[-1]["sort"]
    finally:
        client.close_point_in_time(id=pit_id)
