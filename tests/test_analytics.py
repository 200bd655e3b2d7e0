"""Analytics against the real engine, checked against plain counting over the indexed documents.

The sample corpus (``listener.analytics.sample``) is indexed once for the
module. The expected figures are computed here, in plain Python loops over
the documents read back from the index with ``iter_mentions`` (the export
path, no aggregations), so the two sides share no code beyond the documented
definitions.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import _delete_prefix
from elasticsearch import Elasticsearch

from listener.analytics import (
    Filters,
    detect_spikes,
    earned_media,
    sentiment,
    share_of_voice,
    top_authors,
    top_domains,
    top_earned_mentions,
    top_entities,
    top_sources,
    trending_terms,
)
from listener.analytics.periods import PeriodLimitError, count_periods
from listener.analytics.sample import QUIET_DAYS, SPIKE_DAY, sample_mentions, sample_project
from listener.analytics.settings import EarnedMediaConfig, SentimentWeights
from listener.config import BrandConfig, ProjectConfig, parse_project
from listener.errors import ConfigError
from listener.mention import Mention
from listener.store.indexer import Indexer
from listener.store.queries import iter_mentions, parse_zone

BRANDS = ["Acme", "Globex", "Initech"]
UTC_MS = timedelta(milliseconds=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass
class Corpus:
    """The indexed sample: its project and the documents read back from the index."""

    project: ProjectConfig
    docs: list[Mention]
    client: Elasticsearch


@pytest.fixture(scope="module")
def corpus(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    folder = tmp_path_factory.mktemp("analytics")
    project = parse_project(sample_project(prefix, engine.url), folder / "listener.toml")
    mentions = sample_mentions()
    indexer = Indexer(session_client, project)
    assert indexer.index(mentions).indexed == len(mentions)
    indexer.refresh()
    docs = [Mention.model_validate(d) for d in iter_mentions(session_client, project)]
    assert sorted(d.id for d in docs) == sorted(m.id for m in mentions)
    yield Corpus(project, docs, session_client)
    _delete_prefix(session_client, prefix)


# -- the oracle: definitions in plain Python -------------------------------------------


def zone_of(tz: str) -> tzinfo:
    return parse_zone(tz)


def period_key(moment: datetime, tz: str, interval: str | None) -> Any:
    """Calendar day, ISO week (Monday), month, or hour (UTC instant) in ``tz``."""
    if interval is None:
        return None
    local = moment.astimezone(zone_of(tz))
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def all_periods(since: datetime, until: datetime, tz: str, interval: str | None) -> list[Any]:
    if interval is None:
        return [None]
    keys = []
    moment = since
    while moment < until:
        keys.append(period_key(moment, tz, interval))
        moment += timedelta(minutes=30)
    keys.append(period_key(until - UTC_MS, tz, interval))
    return sorted(set(keys))


def in_range(doc: Mention, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or doc.published_at >= since) and (
        until is None or doc.published_at < until
    )


def passes(doc: Mention, filters: Filters) -> bool:
    return (
        (not filters.sources or doc.source in filters.sources)
        and (not filters.source_kinds or str(doc.source_kind) in filters.source_kinds)
        and (not filters.languages or doc.language in filters.languages)
        and (not filters.countries or doc.country in filters.countries)
        and not (filters.unique and doc.duplicate)
    )


def followers(doc: Mention) -> int:
    return doc.author.followers or 0


def label_for(doc: Mention, brand: str) -> str:
    for match in doc.brands:
        if match.brand == brand and match.sentiment is not None:
            return match.sentiment.label
    return doc.sentiment.label if doc.sentiment else "unknown"


def is_owned(doc: Mention, brand: BrandConfig) -> bool:
    flagged = any(m.brand == brand.name and m.owned for m in doc.brands)
    host = doc.domain
    on_domain = any(host == d or host.endswith("." + d) for d in brand.owned_domains)
    handle = (doc.author.handle or "").lstrip("@").lower()
    accounts = {a.lstrip("@").lower() for a in brand.owned_accounts}
    return flagged or on_domain or (bool(handle) and handle in accounts)


def select(
    corpus: Corpus,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: Filters = Filters(),  # noqa: B008
    brand: str | None = None,
) -> list[Mention]:
    return [
        d
        for d in corpus.docs
        if in_range(d, since, until)
        and passes(d, filters)
        and (brand is None or brand in d.brand_names)
    ]


def trimmed(table: dict[Any, Any]) -> dict[Any, Any]:
    """The periods from the first to the last one with a mention (what the measures return)."""
    if None in table:
        return table

    def busy(row: Any) -> bool:
        return any((sum(v.values()) if isinstance(v, Counter) else v) for v in row.values())

    keys = sorted(table)
    used = [k for k in keys if busy(table[k])]
    return {k: table[k] for k in keys if used and used[0] <= k <= used[-1]}


def tally(
    docs: Iterable[Mention],
    since: datetime,
    until: datetime,
    tz: str,
    interval: str | None,
    value: Callable[[Mention, str], float],
) -> dict[Any, dict[str, float]]:
    table: dict[Any, dict[str, float]] = {
        p: dict.fromkeys(BRANDS, 0.0) for p in all_periods(since, until, tz, interval)
    }
    for doc in docs:
        for brand in doc.brand_names:
            table[period_key(doc.published_at, tz, interval)][brand] += value(doc, brand)
    return table


# -- share of voice --------------------------------------------------------------------

RANGE = (utc(2024, 3, 1), utc(2024, 5, 1))


@pytest.mark.parametrize("by", ["mentions", "engagement", "reach"])
@pytest.mark.parametrize("unique", [False, True])
def test_share_of_voice_overall_matches_counts(corpus: Corpus, by: str, unique: bool) -> None:
    client_rows = share_of_voice(
        corpus.client, corpus.project, by=by, filters=Filters(unique=unique)
    )
    docs = select(corpus, filters=Filters(unique=unique))
    mentions = Counter(b for d in docs for b in d.brand_names)
    engagement = Counter()
    reach = Counter()
    for d in docs:
        for b in d.brand_names:
            engagement[b] += d.engagement.total
            reach[b] += followers(d)
    measure = {"mentions": mentions, "engagement": engagement, "reach": reach}[by]
    total = sum(measure[b] for b in BRANDS)
    assert [r.brand for r in client_rows] == BRANDS
    for row in client_rows:
        assert row.period is None
        assert row.mentions == mentions[row.brand]
        assert row.engagement == engagement[row.brand]
        assert row.reach == reach[row.brand]
        assert row.value == measure[row.brand]
        assert row.total == total
        assert row.share == pytest.approx(measure[row.brand] / total)
    assert client_rows[2].mentions == 0 and client_rows[2].share == 0  # Initech
    assert sum(r.share for r in client_rows) == pytest.approx(1.0)
    if unique:
        assert sum(d.duplicate for d in corpus.docs) > 10  # the filter is exercised


@pytest.mark.parametrize(
    ("tz", "interval", "since", "until"),
    [
        ("UTC", "day", utc(2024, 3, 5), utc(2024, 3, 16)),  # covers the quiet days
        ("Europe/Paris", "day", utc(2024, 3, 28), utc(2024, 4, 3)),  # DST change on 03-31
        ("America/New_York", "week", utc(2024, 3, 1), utc(2024, 5, 1)),  # DST on 03-10
        ("Asia/Kolkata", "hour", utc(2024, 4, 20), utc(2024, 4, 21, 6)),  # +05:30, the spike
        ("+05:30", "day", utc(2024, 4, 18), utc(2024, 4, 23)),
        ("Europe/Paris", "month", utc(2024, 2, 15), utc(2024, 5, 10)),  # empty months
    ],
)
def test_share_of_voice_per_period_in_time_zones(
    corpus: Corpus, tz: str, interval: str, since: datetime, until: datetime
) -> None:
    rows = share_of_voice(
        corpus.client, corpus.project, since=since, until=until, interval=interval, tz=tz
    )
    docs = select(corpus, since=since, until=until)
    counts = trimmed(tally(docs, since, until, tz, interval, lambda d, b: 1))
    engagement = tally(docs, since, until, tz, interval, lambda d, b: d.engagement.total)
    expected = []
    for period, by_brand in sorted(counts.items()):
        total = sum(by_brand.values())
        for brand in BRANDS:
            share = by_brand[brand] / total if total else 0.0
            expected.append(
                (period, brand, by_brand[brand], engagement[period][brand], round(share, 9))
            )
    got = [(r.period, r.brand, r.mentions, r.engagement, round(r.share, 9)) for r in rows]
    assert got == expected


def test_quiet_days_are_zero_filled(corpus: Corpus) -> None:
    rows = share_of_voice(
        corpus.client,
        corpus.project,
        since=utc(2024, 3, 9),
        until=utc(2024, 3, 14),
        interval="day",
    )
    quiet = {r.period for r in rows if r.mentions == 0 and r.brand == "Acme"}
    assert quiet == set(QUIET_DAYS)
    assert len(rows) == 5 * 3


def test_one_share_of_voice_implementation() -> None:
    """The old import path names the analytics function; nothing else computes it."""
    import listener.store.queries
    from listener.analytics.measures import ShareOfVoiceRow

    assert listener.store.queries.share_of_voice is share_of_voice
    assert listener.store.queries.SovRow is ShareOfVoiceRow
    assert not hasattr(listener.store.queries, "_periods_between")


@pytest.mark.parametrize(
    "filters",
    [
        Filters.of(sources=["reddit"]),
        Filters.of(source_kinds=["social", "news"]),
        Filters.of(languages=["DE"]),
        Filters.of(countries=["fr"], unique=True),
        Filters.of(sources=["rss"], source_kinds=["blog"], languages=["en"]),
    ],
)
def test_share_of_voice_filters(corpus: Corpus, filters: Filters) -> None:
    rows = share_of_voice(
        corpus.client, corpus.project, since=RANGE[0], until=RANGE[1], filters=filters
    )
    docs = select(corpus, since=RANGE[0], until=RANGE[1], filters=filters)
    expected = Counter(b for d in docs for b in d.brand_names)
    assert {r.brand: r.mentions for r in rows} == {b: expected[b] for b in BRANDS}
    assert 0 < sum(expected.values()) < len(corpus.docs)


def test_share_of_voice_lists_chosen_brands_against_all(corpus: Corpus) -> None:
    rows = share_of_voice(corpus.client, corpus.project, brands=["globex"])
    counts = Counter(b for d in corpus.docs for b in d.brand_names)
    assert [r.brand for r in rows] == ["Globex"]
    assert rows[0].share == pytest.approx(counts["Globex"] / (counts["Acme"] + counts["Globex"]))


def test_since_until_are_half_open_at_exact_timestamps(corpus: Corpus) -> None:
    midnight = next(
        d.published_at
        for d in sorted(corpus.docs, key=lambda d: d.published_at)
        if d.published_at.hour == d.published_at.minute == d.published_at.second == 0
        and d.published_at.microsecond == 0
        and "Acme" in d.brand_names
    )
    at_boundary = [d for d in corpus.docs if d.published_at == midnight]
    assert at_boundary
    client = corpus.client
    before = share_of_voice(
        client, corpus.project, since=midnight - timedelta(days=1), until=midnight
    )
    after = share_of_voice(
        client, corpus.project, since=midnight, until=midnight + timedelta(days=1)
    )
    day_before = select(corpus, since=midnight - timedelta(days=1), until=midnight)
    day_after = select(corpus, since=midnight, until=midnight + timedelta(days=1))
    assert before[0].mentions == sum("Acme" in d.brand_names for d in day_before)
    assert after[0].mentions == sum("Acme" in d.brand_names for d in day_after)
    assert all(d.published_at < midnight for d in day_before)
    # A mention one millisecond before midnight falls in the earlier day (per day, UTC).
    late = next(d for d in corpus.docs if d.published_at.microsecond == 999_000)
    day = late.published_at.date()
    rows = share_of_voice(
        client,
        corpus.project,
        since=late.published_at - timedelta(hours=1),
        until=late.published_at + timedelta(hours=1),
        interval="day",
    )
    # Periods run from the first to the last mention in the range: the late one is in ``day``.
    assert [r.period for r in rows][::3][0] == day
    assert rows[0].mentions == sum(
        "Acme" in d.brand_names
        for d in select(
            corpus,
            since=late.published_at - timedelta(hours=1),
            until=late.published_at + timedelta(hours=1),
        )
        if d.published_at.date() == day
    )


def test_share_of_voice_rejects_bad_arguments(corpus: Corpus) -> None:
    client = corpus.client
    with pytest.raises(ValueError, match="measure"):
        share_of_voice(client, corpus.project, by="likes")
    with pytest.raises(ValueError, match="interval"):
        share_of_voice(client, corpus.project, interval="year")
    with pytest.raises(ConfigError, match="unknown brand"):
        share_of_voice(client, corpus.project, brands=["Umbrella"])
    with pytest.raises(ValueError, match="source kind"):
        Filters.of(source_kinds=["podcast"])
    with pytest.raises(ValueError, match="before"):
        share_of_voice(client, corpus.project, since=utc(2024, 4, 1), until=utc(2024, 3, 1))


# -- sentiment --------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "interval"), [("UTC", None), ("Europe/Paris", "week")])
def test_sentiment_matches_counts(corpus: Corpus, tz: str, interval: str | None) -> None:
    weights = SentimentWeights(positive=1.0, neutral=0.25, negative=0.0)
    since, until = utc(2024, 3, 4), utc(2024, 4, 29)
    rows = sentiment(
        corpus.client,
        corpus.project,
        since=since,
        until=until,
        interval=interval,
        tz=tz,
        weights=weights,
    )
    docs = select(corpus, since=since, until=until)
    table: dict[Any, dict[str, Counter[str]]] = {
        p: {b: Counter() for b in BRANDS} for p in all_periods(since, until, tz, interval)
    }
    for d in docs:
        for b in d.brand_names:
            table[period_key(d.published_at, tz, interval)][b][label_for(d, b)] += 1
    table = trimmed(table)
    got = {(r.period, r.brand): r for r in rows}
    assert len(got) == len(rows) == len(table) * 3
    for period, by_brand in table.items():
        w = {
            b: c["positive"] * 1.0 + c["neutral"] * 0.25 + c["negative"] * 0.0
            for b, c in by_brand.items()
        }
        for brand, c in by_brand.items():
            row = got[(period, brand)]
            total = sum(c.values())
            assert (row.positive, row.neutral, row.negative, row.unknown, row.mentions) == (
                c["positive"],
                c["neutral"],
                c["negative"],
                c["unknown"],
                total,
            )
            assert row.net_sentiment == pytest.approx(
                (c["positive"] - c["negative"]) / total if total else 0.0
            )
            assert row.weighted == pytest.approx(w[brand])
            all_w = sum(w.values())
            assert row.weighted_share == pytest.approx(w[brand] / all_w if all_w else 0.0)


def test_sentiment_is_per_brand_with_document_fallback(corpus: Corpus) -> None:
    """The corpus has the cases that tell the rules apart; the counts above follow them."""
    differs = unlabelled_brand = unknown = 0
    for d in corpus.docs:
        for m in d.brands:
            if m.sentiment and d.sentiment and m.sentiment.label != d.sentiment.label:
                differs += 1
            if m.sentiment is None and d.sentiment is not None:
                unlabelled_brand += 1
            if m.sentiment is None and d.sentiment is None:
                unknown += 1
    assert differs > 20 and unlabelled_brand > 20 and unknown > 0
    rows = sentiment(corpus.client, corpus.project)
    assert sum(r.unknown for r in rows) == unknown


# -- earned media ------------------------------------------------------------------------


def test_earned_media_matches_counts_and_shows_the_formula(corpus: Corpus) -> None:
    rates = EarnedMediaConfig(
        currency="EUR", cpm={"social": 8.0, "video": 12.5}, cost_per_engagement=0.02
    )
    rows = earned_media(corpus.client, corpus.project, rates=rates)
    for row, brand in zip(rows, corpus.project.brands, strict=True):
        docs = [d for d in corpus.docs if brand.name in d.brand_names]
        earned = [d for d in docs if not is_owned(d, brand)]
        assert row.brand == brand.name
        assert row.mentions == len(docs)
        assert row.owned == len(docs) - len(earned)
        assert row.earned == len(earned)
        assert row.earned_engagement == sum(d.engagement.total for d in earned)
        assert row.earned_reach == sum(followers(d) for d in earned)
        reach = Counter()
        for d in earned:
            reach[str(d.source_kind)] += followers(d)
        value = reach["social"] / 1000 * 8.0 + reach["video"] / 1000 * 12.5
        value += row.earned_engagement * 0.02
        if brand.name == "Initech":
            assert row.emv == 0 and row.earned_share == 0
            continue
        assert row.emv == pytest.approx(value)
        assert row.currency == "EUR"
        assert row.formula is not None
        assert f"{reach['social']:,} reach (social) / 1000 * 8.00" in row.formula
        assert f"{row.earned_engagement:,} engagements * 0.02" in row.formula
        assert row.formula.endswith(f"= {value:,.2f} EUR")
    acme = rows[0]
    # Owned through the flag, the sub-domain rule and the owned account all occur.
    acme_docs = [d for d in corpus.docs if "Acme" in d.brand_names]
    assert any(d.domain == "acme.com" for d in acme_docs)
    assert any(d.domain == "blog.acme.com" for d in acme_docs)
    assert any(d.author.handle == "acme" for d in acme_docs)
    assert 0 < acme.owned < acme.mentions


def test_earned_media_value_needs_rates(corpus: Corpus) -> None:
    rows = earned_media(corpus.client, corpus.project, interval="month")
    assert {r.period for r in rows} == {date(2024, 3, 1), date(2024, 4, 1)}
    assert all(r.emv is None and r.formula is None for r in rows)


def test_top_earned_mentions_are_earned_and_ordered(corpus: Corpus) -> None:
    rows = top_earned_mentions(corpus.client, corpus.project, brands=["Acme"], limit=5)
    brand = corpus.project.brand("Acme")
    earned = sorted(
        (d for d in corpus.docs if "Acme" in d.brand_names and not is_owned(d, brand)),
        key=lambda d: (-d.engagement.total, -d.published_at.timestamp(), d.id),
    )
    assert [r["id"] for r in rows] == [d.id for d in earned[:5]]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]


# -- top lists -------------------------------------------------------------------------


def _ranked(rows: dict[str, dict[str, Any]], by: str, limit: int) -> list[str]:
    def order(item: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
        key, row = item
        value = row[by] if row[by] is not None else -1
        return (-value, -row["mentions"], -row["engagement"], key)

    return [key for key, _ in sorted(rows.items(), key=order)[:limit]]


@pytest.mark.parametrize("by", ["mentions", "engagement", "reach"])
def test_top_authors(corpus: Corpus, by: str) -> None:
    since, until = utc(2024, 4, 1), utc(2024, 5, 1)
    result = top_authors(corpus.client, corpus.project, since=since, until=until, by=by, limit=8)
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"mentions": 0, "engagement": 0, "reach": None, "brands": Counter()}
    )
    for d in select(corpus, since=since, until=until):
        if not d.author.name:
            continue
        row = expected[d.author.name]
        row["mentions"] += 1
        row["engagement"] += d.engagement.total
        if d.author.followers is not None:
            row["reach"] = max(row["reach"] or 0, d.author.followers)
        row["brands"].update(d.brand_names)
    names = _ranked(expected, by, 8)
    assert [r["author"] for r in result.rows] == names
    for row in result.rows:
        want = expected[row["author"]]
        assert (row["mentions"], row["engagement"], row["reach"]) == (
            want["mentions"],
            want["engagement"],
            want["reach"],
        )
        assert row["brands"] == {b: n for b, n in want["brands"].items() if n}
    assert not result.truncated


def test_top_domains_sources_and_kinds(corpus: Corpus) -> None:
    client = corpus.client
    docs = corpus.docs
    for key, call in [
        ("domain", lambda: top_domains(client, corpus.project, by="engagement", limit=5)),
        ("source", lambda: top_sources(client, corpus.project, limit=10)),
        ("kind", lambda: top_sources(client, corpus.project, field="source_kind", limit=10)),
    ]:
        result = call()
        attribute = {"domain": "domain", "source": "source", "kind": "source_kind"}[key]
        expected: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"mentions": 0, "engagement": 0, "reach": 0}
        )
        for d in docs:
            row = expected[str(getattr(d, attribute))]
            row["mentions"] += 1
            row["engagement"] += d.engagement.total
            row["reach"] += followers(d)
        by = "engagement" if key == "domain" else "mentions"
        limit = 5 if key == "domain" else 10
        assert [r[key] for r in result.rows] == _ranked(expected, by, limit)
        for row in result.rows:
            want = expected[row[key]]
            assert (row["mentions"], row["engagement"], row["reach"]) == (
                want["mentions"],
                want["engagement"],
                want["reach"],
            )
            assert row["share"] == pytest.approx(want["mentions"] / len(docs))


def test_top_entities_leave_out_the_brand_itself(corpus: Corpus) -> None:
    result = top_entities(corpus.client, corpus.project, limit=3)
    for brand in ("Acme", "Globex"):
        docs = [d for d in corpus.docs if brand in d.brand_names]
        counts = Counter(e.text for d in docs for e in {e.text: e for e in d.entities}.values())
        del counts[brand]
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        rows = [r for r in result.rows if r["brand"] == brand]
        assert [(r["entity"], r["mentions"]) for r in rows] == ranked
        assert rows[0]["share"] == pytest.approx(ranked[0][1] / len(docs))
    assert not [r for r in result.rows if r["brand"] == "Initech"]


# -- trending terms -------------------------------------------------------------------


def test_trending_terms_match_the_formula(corpus: Corpus) -> None:
    since, until = utc(2024, 4, 24), utc(2024, 5, 1)
    result = trending_terms(
        corpus.client, corpus.project, since=since, until=until, min_count=2, limit=50
    )
    assert result.field == "phrases"
    assert result.previous == (since - (until - since), since)
    for brand in ("Acme", "Globex"):
        now = [d for d in select(corpus, since=since, until=until, brand=brand)]
        before = [d for d in select(corpus, since=result.previous[0], until=since, brand=brand)]
        c = Counter(p for d in now for p in set(d.phrases))
        p = Counter(p for d in before for p in set(d.phrases))
        expected = []
        for term, count in c.items():
            if count < 2 or term.lower() == brand.lower():
                continue
            exp = p[term] * len(now) / len(before) if before else 0.0
            if count > exp:
                expected.append((term, count, p[term], (count - exp) / math.sqrt(exp + 1)))
        expected.sort(key=lambda t: (-t[3], -t[1], t[0]))
        got = [t for t in result.terms if t.brand == brand]
        assert [(t.term, t.count, t.previous) for t in got] == [e[:3] for e in expected]
        for term, want in zip(got, expected, strict=True):
            assert term.score == pytest.approx(want[3])
        assert result.mentions[brand] == (len(now), len(before))
    globex = [t for t in result.terms if t.brand == "Globex"]
    assert globex[0].term == "price cut"
    assert not [t for t in result.terms if t.brand == "Initech"]


def test_trending_falls_back_to_entities_without_phrases(
    client: Elasticsearch, project: ProjectConfig, make_mention: Callable[..., Mention]
) -> None:
    from listener.mention import Entity

    mentions = []
    start = utc(2024, 6, 1)
    for day in range(14):
        names = ["Zed Corp"] if day < 7 else ["Zed Corp", "Quark"]
        for i in range(3):
            mentions.append(
                make_mention(
                    start + timedelta(days=day, hours=i),
                    entities=[Entity(text=n, label="ORG") for n in names],
                )
            )
    indexer = Indexer(client, project)
    indexer.index(mentions)
    indexer.refresh()
    result = trending_terms(
        client, project, since=start + timedelta(days=7), until=start + timedelta(days=14)
    )
    assert result.field == "entities.text"
    assert [(t.brand, t.term, t.count, t.previous) for t in result.terms] == [
        ("Acme", "Quark", 21, 0)
    ]


# -- spikes ---------------------------------------------------------------------------


def expected_series(
    corpus: Corpus,
    brand: str,
    predicate: Callable[[Mention], bool],
    since: datetime,
    until: datetime,
    tz: str,
    interval: str,
    window: int,
    k: float,
    min_count: int,
) -> list[tuple[Any, int, float | None, bool]]:
    """(period, count, threshold, spike) per judged period, from the definition."""
    judged = all_periods(since, until, tz, interval)
    history = []
    first = judged[0]
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[
        interval
    ]
    for n in range(window, 0, -1):
        history.append(first - step * n)
    periods = history + judged
    counts = Counter(
        period_key(d.published_at, tz, interval)
        for d in corpus.docs
        if brand in d.brand_names and predicate(d) and d.published_at < until
    )
    data_from = period_key(min(d.published_at for d in corpus.docs), tz, interval)
    out = []
    for index in range(window, len(periods)):
        trailing = periods[index - window : index]
        count = counts[periods[index]]
        if trailing[0] < data_from:
            out.append((periods[index], count, None, False))
            continue
        values = [counts[p] for p in trailing]
        threshold = statistics.fmean(values) + k * statistics.stdev(values)
        out.append((periods[index], count, threshold, count > threshold and count >= min_count))
    return out


@pytest.mark.parametrize(
    ("metric", "tz", "interval", "since", "until"),
    [
        ("mentions", "UTC", "day", utc(2024, 3, 1), utc(2024, 5, 1)),
        ("negative", "Europe/Paris", "day", utc(2024, 4, 1), utc(2024, 5, 1)),
        ("mentions", "Asia/Kolkata", "hour", utc(2024, 4, 19, 12), utc(2024, 4, 21)),
    ],
)
def test_spikes_match_the_definition(
    corpus: Corpus, metric: str, tz: str, interval: str, since: datetime, until: datetime
) -> None:
    window, k, min_count = (7, 2.0, 5) if interval == "day" else (12, 3.0, 4)
    analysis = detect_spikes(
        corpus.client,
        corpus.project,
        since=since,
        until=until,
        interval=interval,
        tz=tz,
        metric=metric,
        k=k,
        window=window,
        min_count=min_count,
        explain_spikes=False,
    )

    def predicate(d: Mention) -> bool:
        return metric == "mentions"

    for brand in BRANDS:
        want = expected_series(
            corpus,
            brand,
            (lambda d, b=brand: label_for(d, b) == "negative")
            if metric == "negative"
            else predicate,
            since,
            until,
            tz,
            interval,
            window,
            k,
            min_count,
        )
        got = [p for p in analysis.series if p.brand == brand]
        assert [(p.period, p.count, p.spike) for p in got] == [(w[0], w[1], w[3]) for w in want]
        for point, (_, _, threshold, _) in zip(got, want, strict=True):
            if threshold is None:
                assert point.threshold is None
            else:
                assert point.threshold == pytest.approx(threshold)
    acme_spikes = {s.period for s in analysis.spikes if s.brand == "Acme"}
    if interval == "day":
        assert date(2024, 4, 20) in acme_spikes or (
            tz != "UTC" and date(2024, 4, 21) in acme_spikes
        )
    if since == utc(2024, 3, 1):  # the first week has no full baseline of stored data
        assert all(p.threshold is None for p in analysis.series[:7])


def test_spike_explanation(corpus: Corpus) -> None:
    analysis = detect_spikes(
        corpus.client,
        corpus.project,
        since=utc(2024, 4, 10),
        until=utc(2024, 4, 25),
        brands=["Acme"],
        window=7,
        k=2,
        min_count=5,
    )
    spike = next(s for s in analysis.spikes if s.period == SPIKE_DAY)
    day = [d for d in corpus.docs if "Acme" in d.brand_names and d.published_at.date() == SPIKE_DAY]
    assert spike.count == len(day)
    assert spike.explanation.terms[0].term == "battery recall"
    sources = Counter(d.source for d in day)
    assert spike.explanation.sources[0] == sources.most_common(1)[0]
    assert spike.explanation.sources == sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    top = sorted(day, key=lambda d: (-d.engagement.total, -d.published_at.timestamp(), d.id))
    assert [s["id"] for s in spike.explanation.samples] == [d.id for d in top[:3]]
    assert (spike.start, spike.end) == (utc(2024, 4, 20), utc(2024, 4, 21))
    assert "battery recall" in spike.explanation.summary()


# -- nothing stored --------------------------------------------------------------------


def test_measures_without_an_index(client: Elasticsearch, project: ProjectConfig) -> None:
    since, until = utc(2024, 1, 1), utc(2024, 1, 4)
    # Nothing stored: no periods (they run from the first to the last mention in the range).
    assert share_of_voice(client, project, since=since, until=until, interval="day") == []
    assert share_of_voice(client, project, interval="day") == []
    assert all(r.mentions == 0 and r.net_sentiment == 0 for r in sentiment(client, project))
    assert all(r.earned == 0 for r in earned_media(client, project))
    assert top_authors(client, project).rows == []
    assert top_entities(client, project).rows == []
    assert trending_terms(client, project, since=since, until=until).terms == []
    analysis = detect_spikes(client, project, since=since, until=until)
    assert analysis.spikes == [] and len(analysis.series) == 9
    assert all(p.threshold is None and p.count == 0 for p in analysis.series)


def test_corpus_has_what_the_sample_promises(corpus: Corpus) -> None:
    days = {d.published_at.date() for d in corpus.docs}
    assert not days & set(QUIET_DAYS)
    assert SPIKE_DAY in days
    assert not [d for d in corpus.docs if "Initech" in d.brand_names]


# -- how many periods a request may build ------------------------------------------------


def _limited(project: ProjectConfig, limit: int) -> ProjectConfig:
    analytics = project.analytics.model_copy(update={"max_periods": limit})
    return project.model_copy(update={"analytics": analytics})


def test_a_range_far_before_the_data_is_cut_to_the_first_and_last_mention(corpus: Corpus) -> None:
    # Hourly from year 1 would be 17.7 million periods (the server once grew to 19.6 GB
    # on it); the range is cut to the sample's mentions, March and April 2024.
    rows = share_of_voice(corpus.client, corpus.project, since="0001-01-01", interval="month")
    assert sorted({r.period for r in rows}) == [date(2024, 3, 1), date(2024, 4, 1)]
    first = min(d.published_at for d in corpus.docs)
    last = max(d.published_at for d in corpus.docs)
    hourly = share_of_voice(corpus.client, corpus.project, since="0001-01-01", interval="hour")
    hours = {r.period for r in hourly}
    assert min(hours) == first.replace(minute=0, second=0, microsecond=0)
    assert max(hours) == last.replace(minute=0, second=0, microsecond=0)
    assert sum(r.mentions for r in hourly) == sum(len(d.brand_names) for d in corpus.docs)


def test_more_periods_than_the_limit_are_refused_naming_the_limit(corpus: Corpus) -> None:
    small = _limited(corpus.project, 1000)  # the sample spans 1,464 hours
    calls: list[Callable[..., Any]] = [share_of_voice, sentiment, earned_media]
    for call in calls:
        with pytest.raises(PeriodLimitError, match="limit of 1,000 periods") as caught:
            call(corpus.client, small, since="0001-01-01", interval="hour")
        assert caught.value.count == 1464
    with pytest.raises(PeriodLimitError, match="longer interval \\(day, week, month\\)"):
        detect_spikes(corpus.client, small, since="2000-01-01", interval="hour")
    # Within the limit, per day: answered.
    assert share_of_voice(corpus.client, small, since="2000-01-01", interval="day")


def test_count_periods_does_not_list_them() -> None:
    start, end = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)
    assert count_periods(UTC, start, end, "hour") == 87_649_392
    assert count_periods(UTC, start, end, "month") == 9999 * 12
    paris = ZoneInfo("Europe/Paris")
    # Local times before year 1 do not exist: an upper bound instead of an OverflowError.
    assert count_periods(ZoneInfo("America/New_York"), start, end, "day") >= 3_652_058
    assert count_periods(paris, utc(2024, 3, 30), utc(2024, 4, 1), "hour") == 48
    assert count_periods(UTC, utc(2024, 3, 4), utc(2024, 3, 18), "week") == 2
    assert count_periods(paris, utc(2024, 3, 4), utc(2024, 3, 18), "week") == 3  # 01:00 local
