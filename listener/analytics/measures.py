"""Share of voice, sentiment and earned media per brand and period.

All three count named subsets of mentions ("cells") with
:func:`listener.analytics.periods.count_cells` and do the arithmetic here, in
Python, so the figures are the same on every engine. Formulas (also in
docs/analytics.md):

* share of voice: ``share(b) = measure(b) / sum of measure(all project brands)``
  where the measure is mentions, engagement (likes + comments + shares) or
  reach (the authors' followers, where known); 0 when the sum is 0;
* net sentiment: ``(positive - negative) / mentions`` of the brand; 0 without
  mentions;
* sentiment-weighted share of voice: ``w(b) = w_pos*positive + w_neu*neutral +
  w_neg*negative``, ``share = w(b) / sum of w(all project brands)``;
* earned media: mentions of the brand not on its owned domains/accounts;
  earned media value, only with user rates: ``sum over kinds of earned reach / 1000 *
  CPM(kind) + earned engagement * cost per engagement``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from listener.analytics.periods import Counts, Period, check_interval, count_cells, period_label
from listener.analytics.scope import (
    SENTIMENT_LABELS,
    Filters,
    Query,
    Scope,
    brand_query,
    earned_query,
    owned_query,
    sentiment_query,
)
from listener.analytics.settings import SOURCE_KINDS, EarnedMediaConfig, SentimentWeights
from listener.config import ProjectConfig
from listener.store.queries import TimeLike

SOV_MEASURES: tuple[str, ...] = ("mentions", "engagement", "reach")
SOV_FORMULA = "share = brand's {by} / sum of {by} over all project brands (0 when that sum is 0)"
NET_SENTIMENT_FORMULA = "net sentiment = (positive - negative) / mentions (0 without mentions)"
WEIGHTED_SOV_FORMULA = (
    "weighted share = w(brand) / sum of w(all project brands), "
    "w = {positive}*positive + {neutral}*neutral + {negative}*negative"
)
EARNED_NOTE = (
    "earned = mentions not on the brand's owned domains or accounts; "
    "earned share = earned / mentions"
)
EMV_FORMULA = (
    "EMV = sum over source kinds (earned reach / 1000 * CPM of the kind) "
    "+ earned engagement * cost per engagement"
)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


# -- share of voice -------------------------------------------------------------


@dataclass(frozen=True)
class ShareOfVoiceRow:
    """One brand's share of voice in one period (``period`` None: the whole range).

    ``value`` is the measure divided (mentions, engagement or reach) and
    ``total`` the sum over all project brands. (``listener.store.queries.SovRow``,
    the old import path, names this class.)
    """

    brand: str
    mentions: int
    engagement: int
    share: float
    period: Period | None = None
    reach: int = 0
    reach_known: int = 0
    measure: str = "mentions"
    value: int = 0
    total: int = 0

    def record(self, tz: Any = None) -> dict[str, Any]:
        """A plain dict for tables and exports."""
        return {
            "period": period_label(self.period, tz),
            "brand": self.brand,
            "mentions": self.mentions,
            "engagement": self.engagement,
            "reach": self.reach,
            "reach_known": self.reach_known,
            "measure": self.measure,
            "value": self.value,
            "total": self.total,
            "share": round(self.share, 6),
        }


def share_of_voice(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    interval: str | None = None,
    by: str = "mentions",
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> list[ShareOfVoiceRow]:
    """Each brand's share of mentions, engagement or reach, overall or per period.

    The one share-of-voice implementation (the CLI, the API, the report and
    the demo call it; ``listener.store.queries.share_of_voice`` is the old import
    path of this function). Rows are ordered by period, then brands in
    project-file order; ``filters`` (sources, kinds, languages, countries,
    unique) and ``brands`` list only some brands — shares are always of the
    sum over *all* project brands. A mention naming
    two brands counts for both. ``until`` is exclusive.
    """
    if by not in SOV_MEASURES:
        raise ValueError(
            f"unknown share-of-voice measure {by!r}; use one of: {', '.join(SOV_MEASURES)}"
        )
    check_interval(interval)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    everyone = scope.all_names
    table = count_cells(
        client,
        scope.alias,
        scope.base_filters(everyone),
        {name: brand_query(name) for name in everyone},
        start=scope.start,
        end=scope.end,
        zone=scope.zone,
        interval=interval,
        since_given=scope.since_given,
        max_periods=config.analytics.max_periods,
    )
    rows: list[ShareOfVoiceRow] = []
    for period, cells in table.items():
        total = sum(cells[name].measure(by) for name in everyone)
        for name in scope.names:
            counts = cells[name]
            value = counts.measure(by)
            rows.append(
                ShareOfVoiceRow(
                    brand=name,
                    mentions=counts.mentions,
                    engagement=counts.engagement,
                    share=_ratio(value, total),
                    period=period,
                    reach=counts.reach,
                    reach_known=counts.reach_known,
                    measure=by,
                    value=value,
                    total=total,
                )
            )
    return rows


# -- sentiment --------------------------------------------------------------------


@dataclass(frozen=True)
class SentimentRow:
    """A brand's sentiment distribution in one period, net sentiment and weighted share."""

    brand: str
    mentions: int
    positive: int
    neutral: int
    negative: int
    unknown: int
    net_sentiment: float
    weighted: float
    weighted_share: float
    period: Period | None = None

    def record(self, tz: Any = None) -> dict[str, Any]:
        """A plain dict for tables and exports."""
        return {
            "period": period_label(self.period, tz),
            "brand": self.brand,
            "mentions": self.mentions,
            "positive": self.positive,
            "neutral": self.neutral,
            "negative": self.negative,
            "unknown": self.unknown,
            "net_sentiment": round(self.net_sentiment, 6),
            "weighted": round(self.weighted, 6),
            "weighted_share": round(self.weighted_share, 6),
        }


def sentiment_cells(names: Sequence[str]) -> dict[str, Query]:
    """Cells ``brand|label`` for every sentiment label (and ``unknown``) and ``brand|all``."""
    cells: dict[str, Query] = {}
    for name in names:
        cells[f"{name}|all"] = brand_query(name)
        for label in (*SENTIMENT_LABELS, "unknown"):
            cells[f"{name}|{label}"] = sentiment_query(name, label)
    return cells


def sentiment(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    interval: str | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    weights: SentimentWeights | None = None,
) -> list[SentimentRow]:
    """Positive/neutral/negative mentions per brand and period, with net and weighted figures.

    A mention's sentiment *for a brand* is the brand match's sentiment, else
    the document's; ``unknown`` counts mentions with neither. Net sentiment is
    ``(positive - negative) / mentions``. The weighted share uses ``weights``
    (default: the project's ``[analytics.sentiment_weights]``).
    """
    check_interval(interval)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    w = weights or config.analytics.sentiment_weights
    everyone = scope.all_names
    table = count_cells(
        client,
        scope.alias,
        scope.base_filters(everyone),
        sentiment_cells(everyone),
        start=scope.start,
        end=scope.end,
        zone=scope.zone,
        interval=interval,
        since_given=scope.since_given,
        max_periods=config.analytics.max_periods,
    )
    rows: list[SentimentRow] = []
    for period, cells in table.items():

        def weighted(name: str, cells: dict[str, Counts] = cells) -> float:
            return (
                w.positive * cells[f"{name}|positive"].mentions
                + w.neutral * cells[f"{name}|neutral"].mentions
                + w.negative * cells[f"{name}|negative"].mentions
            )

        total = sum(weighted(name) for name in everyone)
        for name in scope.names:
            mentions = cells[f"{name}|all"].mentions
            positive = cells[f"{name}|positive"].mentions
            negative = cells[f"{name}|negative"].mentions
            rows.append(
                SentimentRow(
                    brand=name,
                    mentions=mentions,
                    positive=positive,
                    neutral=cells[f"{name}|neutral"].mentions,
                    negative=negative,
                    unknown=cells[f"{name}|unknown"].mentions,
                    net_sentiment=_ratio(positive - negative, mentions),
                    weighted=weighted(name),
                    weighted_share=_ratio(weighted(name), total),
                    period=period,
                )
            )
    return rows


def weighted_formula(weights: SentimentWeights) -> str:
    """The sentiment-weighted share-of-voice formula with the weights in use."""
    return WEIGHTED_SOV_FORMULA.format(
        positive=f"{weights.positive:g}",
        neutral=f"{weights.neutral:g}",
        negative=f"{weights.negative:g}",
    )


# -- earned media -------------------------------------------------------------------


@dataclass(frozen=True)
class EarnedRow:
    """A brand's owned and earned mentions in one period, and their value where rates are given."""

    brand: str
    mentions: int
    owned: int
    earned: int
    earned_share: float
    earned_engagement: int
    earned_reach: int
    earned_reach_known: int
    emv: float | None = None
    currency: str | None = None
    formula: str | None = None
    period: Period | None = None
    by_kind: dict[str, Counts] = field(default_factory=dict)

    def record(self, tz: Any = None) -> dict[str, Any]:
        """A plain dict for tables and exports."""
        return {
            "period": period_label(self.period, tz),
            "brand": self.brand,
            "mentions": self.mentions,
            "owned": self.owned,
            "earned": self.earned,
            "earned_share": round(self.earned_share, 6),
            "earned_engagement": self.earned_engagement,
            "earned_reach": self.earned_reach,
            "earned_reach_known": self.earned_reach_known,
            "emv": None if self.emv is None else round(self.emv, 2),
            "currency": self.currency,
            "formula": self.formula,
        }


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def earned_media_value(
    by_kind: dict[str, Counts], rates: EarnedMediaConfig
) -> tuple[float | None, str | None]:
    """EMV and the formula with the figures filled in; ``(None, None)`` without rates."""
    if not rates.has_rates:
        return None, None
    value = 0.0
    terms: list[str] = []
    for kind in SOURCE_KINDS:
        if kind not in rates.cpm:
            continue
        reach = by_kind.get(kind, Counts()).reach
        if not reach:
            continue
        value += reach / 1000 * rates.cpm[kind]
        terms.append(f"{reach:,} reach ({kind}) / 1000 * {_money(rates.cpm[kind])}")
    if rates.cost_per_engagement is not None:
        engagement = sum(counts.engagement for counts in by_kind.values())
        if engagement:
            value += engagement * rates.cost_per_engagement
            terms.append(f"{engagement:,} engagements * {_money(rates.cost_per_engagement)}")
    shown = " + ".join(terms) if terms else "0 (no earned reach or engagement at the given rates)"
    return value, f"EMV = {shown} = {_money(value)} {rates.currency}"


def earned_media(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    interval: str | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    rates: EarnedMediaConfig | None = None,
) -> list[EarnedRow]:
    """Owned vs earned mentions per brand (and period), with earned engagement, reach and value.

    Earned = mentions of the brand not on its owned domains/accounts (see
    :func:`listener.analytics.scope.owned_query`). ``earned_share`` is
    earned / mentions. Earned media value is computed only when ``rates``
    (default: the project's ``[earned_media]``) set a CPM or a cost per
    engagement; CPM applies to reach (followers) as impressions.
    """
    check_interval(interval)
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    money = rates or config.earned_media
    cells: dict[str, Query] = {}
    for brand in scope.brands:
        cells[f"{brand.name}|all"] = brand_query(brand.name)
        cells[f"{brand.name}|owned"] = {
            "bool": {"filter": [brand_query(brand.name), owned_query(brand)]}
        }
        not_owned = earned_query(brand)
        for kind in SOURCE_KINDS:
            cells[f"{brand.name}|earned|{kind}"] = {
                "bool": {"filter": [not_owned, {"term": {"source_kind": kind}}]}
            }
    table = count_cells(
        client,
        scope.alias,
        scope.base_filters(),
        cells,
        start=scope.start,
        end=scope.end,
        zone=scope.zone,
        interval=interval,
        since_given=scope.since_given,
        max_periods=config.analytics.max_periods,
    )
    rows: list[EarnedRow] = []
    for period, found in table.items():
        for name in scope.names:
            by_kind = {kind: found[f"{name}|earned|{kind}"] for kind in SOURCE_KINDS}
            earned = sum((counts for counts in by_kind.values()), Counts())
            mentions = found[f"{name}|all"].mentions
            emv, formula = earned_media_value(by_kind, money)
            rows.append(
                EarnedRow(
                    brand=name,
                    mentions=mentions,
                    owned=found[f"{name}|owned"].mentions,
                    earned=earned.mentions,
                    earned_share=_ratio(earned.mentions, mentions),
                    earned_engagement=earned.engagement,
                    earned_reach=earned.reach,
                    earned_reach_known=earned.reach_known,
                    emv=emv,
                    currency=money.currency if emv is not None else None,
                    formula=formula,
                    period=period,
                    by_kind={k: v for k, v in by_kind.items() if v.mentions},
                )
            )
    return rows


TOP_MENTION_ORDERS: tuple[str, ...] = ("engagement", "reach", "recent")
_MENTION_SOURCE = [
    "id",
    "title",
    "text",
    "url",
    "source",
    "source_kind",
    "domain",
    "published_at",
    "author",
    "engagement",
    "brands",
    "sentiment",
    "duplicate",
]


def mention_row(document: dict[str, Any], brand: str | None = None) -> dict[str, Any]:
    """The columns shown for one mention: date, source, author, engagement, sentiment, text."""
    author = document.get("author") or {}
    engagement = document.get("engagement") or {}
    label = None
    for match in document.get("brands") or []:
        if match.get("brand") == brand and match.get("sentiment"):
            label = match["sentiment"].get("label")
    if label is None:
        label = (document.get("sentiment") or {}).get("label")
    text = " ".join(str(document.get("title") or document.get("text") or "").split())
    return {
        "brand": brand,
        "published_at": document.get("published_at"),
        "source": document.get("source"),
        "source_kind": document.get("source_kind"),
        "domain": document.get("domain"),
        "author": author.get("name") or author.get("handle"),
        "followers": author.get("followers"),
        "engagement": int(engagement.get("total") or 0),
        "sentiment": label,
        "title": text[:140] + ("…" if len(text) > 140 else ""),
        "url": document.get("url"),
        "id": document.get("id"),
    }


def _sort_for(by: str) -> list[dict[str, Any]]:
    if by not in TOP_MENTION_ORDERS:
        raise ValueError(f"unknown order {by!r}; use one of: {', '.join(TOP_MENTION_ORDERS)}")
    primary = {
        "engagement": {"engagement.total": {"order": "desc"}},
        "reach": {"author.followers": {"order": "desc", "missing": "_last"}},
        "recent": {"published_at": {"order": "desc"}},
    }[by]
    return [primary, {"published_at": {"order": "desc"}}, {"id": {"order": "asc"}}]


def search_rows(
    client: Elasticsearch,
    scope: Scope,
    query: Query,
    *,
    limit: int,
    by: str = "engagement",
    brand: str | None = None,
) -> list[dict[str, Any]]:
    """The top ``limit`` mentions matching ``query``, as :func:`mention_row` dicts."""
    response = client.search(
        index=scope.alias,
        query=query,
        sort=_sort_for(by),
        size=limit,
        source={"includes": _MENTION_SOURCE},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    return [mention_row(hit["_source"], brand) for hit in response["hits"]["hits"]]


def top_earned_mentions(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    tz: str = "UTC",
    brands: Sequence[str] | None = None,
    filters: Filters | None = None,
    by: str = "engagement",
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Each brand's top earned mentions (by engagement, reach or recency), brands in file order."""
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000 (got {limit})")
    scope = Scope.build(config, since=since, until=until, tz=tz, brands=brands, filters=filters)
    rows: list[dict[str, Any]] = []
    for brand in scope.brands:
        found = search_rows(
            client,
            scope,
            scope.query(earned_query(brand), names=[brand.name]),
            limit=limit,
            by=by,
            brand=brand.name,
        )
        rows.extend({"rank": rank, **row} for rank, row in enumerate(found, 1))
    return rows
