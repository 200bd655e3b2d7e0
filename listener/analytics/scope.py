"""What a measure looks at (brands, time range, filters) and the queries picking subsets.

Per-brand attributes live in the nested ``brands`` field, so per-brand
sentiment and owned/earned use ``nested`` queries inside root-level
``filters`` aggregations: the bucket then counts mentions (not brand
matches) and can sum root fields such as ``engagement.total`` (the engine has
no ``reverse_nested``). Plain brand membership uses the flat ``brand_names``,
as share of voice does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from listener.analytics.settings import SOURCE_KINDS
from listener.config import BrandConfig, ProjectConfig
from listener.store.indexer import mentions_alias
from listener.store.queries import (
    TimeLike,
    check_range,
    data_range,
    parse_zone,
    time_filter,
    to_utc,
)

SENTIMENT_LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
Query = dict[str, Any]


def _clean(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values or () if v and v.strip()))


def source_clause(names: Sequence[str]) -> Query:
    """Mentions found by any of ``names``: source plugins or ``[[sources]]`` labels."""
    return {
        "bool": {
            "should": [
                {"terms": {"source": list(names)}},
                {"terms": {"source_label": list(names)}},
            ],
            "minimum_should_match": 1,
        }
    }


def known_source_names(project: ProjectConfig) -> list[str]:
    """What ``--source`` accepts: the project's entry labels and plugins, and installed plugins."""
    from listener.sdk.plugin_manager import get_registry

    names = [entry.label for entry in project.sources]
    names += [entry.plugin for entry in project.sources]
    names += sorted(get_registry().sources)
    return list(dict.fromkeys(names))


def check_source_names(project: ProjectConfig, names: Iterable[str], client: Any = None) -> None:
    """Refuse a ``--source`` that is neither a label in the project file nor a source plugin.

    A typo would otherwise filter everything out and print zeros. With ``client``,
    a name found on stored mentions (a source since removed from the project
    file, say) is accepted too.
    """
    known = known_source_names(project)
    for name in _clean(names):
        if name in known or (client is not None and _stored_source(client, project, name)):
            continue
        labels = [entry.label for entry in project.sources]
        plugins = [n for n in known if n not in labels]
        raise ValueError(
            f"unknown source {name!r}; the project file's [[sources]] entries are: "
            f"{', '.join(labels) or 'none'}; source plugins: {', '.join(plugins)}"
        )


def _stored_source(client: Any, project: ProjectConfig, name: str) -> bool:
    """Whether any stored mention was found by a plugin or entry called ``name``."""
    response = client.count(
        index=mentions_alias(project.elasticsearch.index_prefix),
        query=source_clause([name]),
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    return int(response.get("count", 0)) > 0


@dataclass(frozen=True)
class Filters:
    """Which mentions count: by source plugin, source kind, language, country; unique or raw.

    Empty tuples mean "any". ``unique`` leaves out later copies of the same
    text (``duplicate: true``); raw (the default) counts every copy.
    """

    sources: tuple[str, ...] = ()
    source_kinds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    unique: bool = False

    @classmethod
    def of(
        cls,
        *,
        sources: Iterable[str] | None = None,
        source_kinds: Iterable[str] | None = None,
        languages: Iterable[str] | None = None,
        countries: Iterable[str] | None = None,
        unique: bool = False,
    ) -> Filters:
        """Filters from loose input: trimmed, deduplicated, kinds checked, countries upper-cased."""
        kinds = tuple(kind.lower() for kind in _clean(source_kinds))
        for kind in kinds:
            if kind not in SOURCE_KINDS:
                raise ValueError(
                    f"unknown source kind {kind!r}; use one of: {', '.join(SOURCE_KINDS)}"
                )
        return cls(
            sources=_clean(sources),
            source_kinds=kinds,
            languages=tuple(language.lower() for language in _clean(languages)),
            countries=tuple(country.upper() for country in _clean(countries)),
            unique=unique,
        )

    def clauses(self) -> list[Query]:
        """Filter clauses for a ``bool`` query."""
        clauses: list[Query] = []
        if self.sources:
            # A source is named by its plugin ("rss") or its [[sources]] entry's label.
            clauses.append(source_clause(self.sources))
        for field_name, values in (
            ("source_kind", self.source_kinds),
            ("language", self.languages),
            ("country", self.countries),
        ):
            if values:
                clauses.append({"terms": {field_name: list(values)}})
        if self.unique:
            clauses.append({"bool": {"must_not": [{"term": {"duplicate": True}}]}})
        return clauses

    def describe(self) -> str:
        """One line for report headers: ``source: rss; kind: news, blog; unique``."""
        parts = [
            f"{label}: {', '.join(values)}"
            for label, values in (
                ("source", self.sources),
                ("kind", self.source_kinds),
                ("language", self.languages),
                ("country", self.countries),
            )
            if values
        ]
        parts.append("unique (duplicates excluded)" if self.unique else "raw (duplicates counted)")
        return "; ".join(parts)


@dataclass(frozen=True)
class Scope:
    """A resolved request: project brands in file order, UTC range, zone and filters."""

    config: ProjectConfig
    brands: tuple[BrandConfig, ...]
    start: datetime | None
    end: datetime | None
    tz: str
    zone: tzinfo
    filters: Filters = field(default_factory=Filters)
    since_given: bool = False

    @classmethod
    def build(
        cls,
        config: ProjectConfig,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        tz: str = "UTC",
        brands: Sequence[str] | None = None,
        filters: Filters | None = None,
    ) -> Scope:
        """Resolve names and times; raises ValueError/ConfigError naming a bad value."""
        zone = parse_zone(tz)
        start, end = to_utc(since, tz), to_utc(until, tz)
        check_range(start, end)
        chosen = (
            tuple(config.brand(name) for name in dict.fromkeys(brands))
            if brands
            else tuple(config.brands)
        )
        return cls(
            config=config,
            brands=chosen,
            start=start,
            end=end,
            tz=tz,
            zone=zone,
            filters=filters or Filters(),
            since_given=since is not None,
        )

    @property
    def names(self) -> list[str]:
        """The chosen brands' names, in project-file order."""
        return [brand.name for brand in self.brands]

    @property
    def all_names(self) -> list[str]:
        """Every project brand's name (share of voice divides by all of them)."""
        return [brand.name for brand in self.config.brands]

    @property
    def alias(self) -> str:
        """The read alias of the project's mention indices."""
        return mentions_alias(self.config.elasticsearch.index_prefix)

    def base_filters(self, names: Sequence[str] | None = None) -> list[Query]:
        """Mentions of any of ``names`` (default: the chosen brands) passing the filters."""
        return [{"terms": {"brand_names": list(names or self.names)}}, *self.filters.clauses()]

    def query(
        self,
        *extra: Query,
        start: datetime | None = None,
        end: datetime | None = None,
        names: Sequence[str] | None = None,
    ) -> Query:
        """A ``bool`` query: the base filters, ``extra``, and the range (default: the scope's)."""
        since = start if start is not None else self.start
        until = end if end is not None else self.end
        return {"bool": {"filter": [*self.base_filters(names), *extra, *time_filter(since, until)]}}


# -- per-brand subsets ------------------------------------------------------------


def brand_query(name: str) -> Query:
    """Mentions of the brand."""
    return {"term": {"brand_names": name}}


def _nested(*clauses: Query, must_not: Sequence[Query] = ()) -> Query:
    return {
        "nested": {
            "path": "brands",
            "query": {"bool": {"filter": list(clauses), "must_not": list(must_not)}},
        }
    }


def sentiment_query(name: str, label: str) -> Query:
    """Mentions of the brand with this sentiment *for the brand*.

    The brand-level sentiment (``brands.sentiment.label``) decides; where the
    brand match has none, the document's sentiment is used. ``label``
    ``"unknown"`` selects mentions with neither.
    """
    brand = {"term": {"brands.brand": name}}
    unlabelled = _nested(brand, must_not=[{"exists": {"field": "brands.sentiment.label"}}])
    if label == "unknown":
        return {
            "bool": {
                "filter": [unlabelled],
                "must_not": [{"exists": {"field": "sentiment.label"}}],
            }
        }
    if label not in SENTIMENT_LABELS:
        raise ValueError(
            f"unknown sentiment {label!r}; use one of: {', '.join(SENTIMENT_LABELS)}, unknown"
        )
    return {
        "bool": {
            "should": [
                _nested(brand, {"term": {"brands.sentiment.label": label}}),
                {"bool": {"filter": [unlabelled, {"term": {"sentiment.label": label}}]}},
            ],
            "minimum_should_match": 1,
        }
    }


def owned_query(brand: BrandConfig) -> Query:
    """Mentions on the brand's own domains or accounts.

    Owned when enrichment flagged the brand match (``brands.owned``), or the
    domain is (under) one of ``owned_domains``, or the author's handle is one
    of ``owned_accounts`` (case-insensitive, with or without ``@``) in the
    current project file — so editing the project file takes effect without
    re-enriching stored mentions.
    """
    should: list[Query] = [
        _nested({"term": {"brands.brand": brand.name}}, {"term": {"brands.owned": True}})
    ]
    for domain in brand.owned_domains:
        if domain:
            should.append({"term": {"domain": domain}})
            should.append({"wildcard": {"domain": {"value": f"*.{domain}"}}})
    for account in brand.owned_accounts:
        bare = account.strip().removeprefix("@")
        if bare:
            for value in (bare, f"@{bare}"):
                should.append(
                    {"term": {"author.handle": {"value": value, "case_insensitive": True}}}
                )
    return {"bool": {"should": should, "minimum_should_match": 1}}


def earned_query(brand: BrandConfig) -> Query:
    """Mentions of the brand that are not on its own domains or accounts."""
    return {"bool": {"filter": [brand_query(brand.name)], "must_not": [owned_query(brand)]}}


# -- what is stored ------------------------------------------------------------------


def stored_range(client: Any, config: ProjectConfig) -> tuple[datetime | None, datetime | None]:
    """The ``published_at`` of the project's oldest and newest stored mention (None: none)."""
    return data_range(client, mentions_alias(config.elasticsearch.index_prefix), {"match_all": {}})


def empty_range_hint(
    client: Any,
    config: ProjectConfig,
    since: TimeLike | None,
    until: TimeLike | None,
    tz: str = "UTC",
) -> str:
    """Why a range shows nothing: what is stored, and a ``--since`` that would show it.

    For a command whose range held no mention: names the range and the dates
    of the oldest and newest stored mention (in ``tz``), or says nothing is
    stored yet.
    """
    first, last = stored_range(client, config)
    if first is None or last is None:
        return "no mentions are stored yet: run `listener crawl` (or `listener demo`) first"
    zone = parse_zone(tz)
    start, end = to_utc(since, tz), to_utc(until, tz)
    shown = (f"from {start.astimezone(zone):%Y-%m-%d %H:%M}" if start else "before") + (
        f" to {end.astimezone(zone):%Y-%m-%d %H:%M}" if end else " to now"
    )
    oldest, newest = first.astimezone(zone), last.astimezone(zone)
    return (
        f"no mentions {shown} ({tz}); the stored mentions run from {oldest:%Y-%m-%d} to "
        f"{newest:%Y-%m-%d}: try --since {oldest:%Y-%m-%d}"
    )
