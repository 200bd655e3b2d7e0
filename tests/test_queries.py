"""Share of voice, search and export against the real engine, checked against plain counting."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from listener.analytics.measures import ShareOfVoiceRow as SovRow
from listener.analytics.measures import share_of_voice
from listener.config import ProjectConfig
from listener.errors import ConfigError
from listener.mention import Mention
from listener.store.indexer import Indexer
from listener.store.queries import iter_mentions, parse_time, search_mentions

MentionFactory = Callable[..., Mention]
BRANDS = ["Acme", "Globex", "Initech"]  # the project's brands, in file order
START = datetime(2024, 1, 1, tzinfo=UTC)
GAP = (datetime(2024, 2, 5, tzinfo=UTC), datetime(2024, 2, 19, tzinfo=UTC))  # two empty weeks


def _dataset(make_mention: MentionFactory) -> list[Mention]:
    """90 mentions over Jan-Mar 2024 (none in GAP); Initech is never mentioned."""
    rng = random.Random(20240101)
    mentions = []
    while len(mentions) < 90:
        published = START + timedelta(minutes=rng.randrange(91 * 24 * 60))
        if GAP[0] <= published < GAP[1]:
            continue
        brands = rng.choice([("Acme",), ("Acme",), ("Globex",), ("Acme", "Globex"), ()])
        mentions.append(
            make_mention(
                published,
                brands=brands,
                likes=rng.randrange(20),
                comments=rng.randrange(5),
                shares=rng.randrange(3),
                sentiment=rng.choice(["positive", "neutral", "negative"]),
            )
        )
    return mentions


def _store(client: Elasticsearch, project: ProjectConfig, mentions: list[Mention]) -> None:
    indexer = Indexer(client, project)
    assert indexer.index(mentions).indexed == len(mentions)
    indexer.refresh()


@pytest.fixture
def stored(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> list[Mention]:
    mentions = _dataset(make_mention)
    _store(client, project, mentions)
    return mentions


def _expected(
    mentions: Iterable[Mention],
    *,
    by: str = "mentions",
    since: datetime | None = None,
    until: datetime | None = None,
    period: Callable[[datetime], date | None] = lambda _: None,
    periods: Iterable[date | None] = (),
) -> list[tuple[date | None, str, int, int, float]]:
    """(period, brand, mentions, engagement, share) computed by plain counting."""
    table: dict[date | None, dict[str, list[int]]] = {
        p: {b: [0, 0] for b in BRANDS} for p in periods
    }
    for mention in mentions:
        if since is not None and mention.published_at < since:
            continue
        if until is not None and mention.published_at >= until:
            continue
        row = table.setdefault(period(mention.published_at), {b: [0, 0] for b in BRANDS})
        for brand in mention.brand_names:
            row[brand][0] += 1
            row[brand][1] += mention.engagement.total
    if not table:
        table[None] = {b: [0, 0] for b in BRANDS}
    measure = 0 if by == "mentions" else 1
    result = []
    for key in sorted(table, key=lambda p: p or date.min):
        total = sum(values[measure] for values in table[key].values())
        for brand in BRANDS:
            count, engagement = table[key][brand]
            share = (count, engagement)[measure] / total if total else 0.0
            result.append((key, brand, count, engagement, share))
    return result


def _actual(rows: list[SovRow]) -> list[tuple[date | None, str, int, int, float]]:
    return [(r.period, r.brand, r.mentions, r.engagement, pytest.approx(r.share)) for r in rows]


def _monday(moment: datetime, zone: ZoneInfo | None = None) -> date:
    day = (moment.astimezone(zone) if zone else moment).date()
    return day - timedelta(days=day.weekday())


# -- share of voice ---------------------------------------------------------------


def test_share_of_voice_overall_matches_counts(
    client: Elasticsearch, project: ProjectConfig, stored: list[Mention]
) -> None:
    rows = share_of_voice(client, project)
    assert _actual(rows) == _expected(stored)
    assert [r.brand for r in rows] == BRANDS
    initech = rows[2]
    assert (initech.mentions, initech.engagement, initech.share) == (0, 0, 0.0)
    assert sum(r.share for r in rows) == pytest.approx(1.0)


def test_share_of_voice_by_engagement(
    client: Elasticsearch, project: ProjectConfig, stored: list[Mention]
) -> None:
    rows = share_of_voice(client, project, by="engagement")
    assert _actual(rows) == _expected(stored, by="engagement")
    assert rows[0].share != share_of_voice(client, project)[0].share


def test_share_of_voice_since_until_is_half_open(
    client: Elasticsearch, project: ProjectConfig, stored: list[Mention]
) -> None:
    boundary = sorted(m.published_at for m in stored)[40]
    since, until = datetime(2024, 1, 20, tzinfo=UTC), boundary
    rows = share_of_voice(client, project, since=since, until=until)
    assert _actual(rows) == _expected(stored, since=since, until=until)
    text_rows = share_of_voice(client, project, since="2024-01-20", until=until.isoformat())
    assert text_rows == rows


def test_share_of_voice_per_month_runs_from_first_to_last_mention_in_the_range(
    client: Elasticsearch, project: ProjectConfig, stored: list[Mention]
) -> None:
    # The range starts two months before the data and ends two months after it: the
    # periods are those from the first to the last mention inside it, not empty months.
    since, until = datetime(2023, 11, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    rows = share_of_voice(client, project, since=since, until=until, interval="month")
    months = [date(2024, m, 1) for m in range(1, 4)]
    expected = _expected(
        stored, period=lambda t: t.date().replace(day=1), periods=months, since=since, until=until
    )
    assert _actual(rows) == expected
    assert sorted({r.period for r in rows}) == months


def test_share_of_voice_per_week_fills_the_gap_between_first_and_last_mention(
    client: Elasticsearch, project: ProjectConfig, stored: list[Mention]
) -> None:
    rows = share_of_voice(client, project, interval="week", by="engagement")
    branded = [m.published_at for m in stored if m.brand_names]
    first, last = _monday(min(branded)), _monday(max(branded))
    weeks = [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]
    assert sorted({r.period for r in rows}) == weeks
    assert _actual(rows) == _expected(stored, by="engagement", period=_monday, periods=weeks)
    empty = [r for r in rows if r.period in (date(2024, 2, 5), date(2024, 2, 12))]
    assert len(empty) == 6 and all(r.mentions == 0 and r.share == 0.0 for r in empty)


def test_share_of_voice_per_day_in_a_time_zone_across_dst(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    paris = ZoneInfo("Europe/Paris")
    times = [
        "2024-03-29T22:30:00Z",  # 23:30 CET on the 29th
        "2024-03-29T23:30:00Z",  # 00:30 CET on the 30th
        "2024-03-30T23:30:00Z",  # 00:30 CET on the 31st (clocks go forward at 01:00Z)
        "2024-03-31T21:30:00Z",  # 23:30 CEST on the 31st
        "2024-03-31T22:30:00Z",  # 00:30 CEST on 1 April
        "2024-04-02T12:00:00Z",
    ]
    mentions = [
        make_mention(datetime.fromisoformat(t), brands=("Acme",) if i % 2 else ("Globex",))
        for i, t in enumerate(times)
    ]
    _store(client, project, mentions)
    since = datetime(2024, 3, 29, tzinfo=paris)
    until = datetime(2024, 4, 4, tzinfo=paris)
    rows = share_of_voice(
        client, project, since=since, until=until, interval="day", tz="Europe/Paris"
    )
    days = [date(2024, 3, 29) + timedelta(days=n) for n in range(5)]  # to the last mention
    expected = _expected(mentions, period=lambda t: t.astimezone(paris).date(), periods=days)
    assert _actual(rows) == expected
    # Naive bounds are read in the requested zone.
    naive = share_of_voice(
        client, project, since="2024-03-29", until="2024-04-04", interval="day", tz="Europe/Paris"
    )
    assert naive == rows
    # The same data per month in New York: 31 March 21:30Z is still March there.
    new_york = ZoneInfo("America/New_York")
    monthly = share_of_voice(client, project, interval="month", tz="America/New_York")
    assert _actual(monthly) == _expected(
        mentions, period=lambda t: t.astimezone(new_york).date().replace(day=1)
    )


def test_share_of_voice_without_an_index_is_all_zero(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    rows = share_of_voice(client, project)
    assert [(r.brand, r.mentions, r.share) for r in rows] == [(b, 0, 0.0) for b in BRANDS]
    assert share_of_voice(client, project, interval="day") == []
    weekly = share_of_voice(
        client, project, since="2024-01-01", until="2024-01-15", interval="week"
    )
    assert weekly == []  # no mention in the range, so no periods


def test_share_of_voice_rejects_bad_arguments(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    with pytest.raises(ValueError, match="measure"):
        share_of_voice(client, project, by="likes")
    with pytest.raises(ValueError, match="interval"):
        share_of_voice(client, project, interval="year")
    with pytest.raises(ValueError, match="time zone"):
        share_of_voice(client, project, tz="Mars/Olympus")
    with pytest.raises(ValueError, match="before"):
        share_of_voice(client, project, since="2024-02-01", until="2024-01-01")


# -- search ---------------------------------------------------------------------


def test_search_mentions_full_text_newest_first_with_snippets(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    day = datetime(2024, 5, 1, tzinfo=UTC)
    rocket_old = make_mention(day, text="The Acme rocket skates are fast and loud.")
    rocket_new = make_mention(
        day + timedelta(days=2), title="Rocket review", text="Acme sells a rocket that works."
    )
    anvil = make_mention(day + timedelta(days=1), text="An anvil from Acme fell down.")
    globex = make_mention(
        day + timedelta(days=3),
        brands=("Globex",),
        text="Globex rocket launch",
        sentiment="negative",
    )
    _store(client, project, [rocket_old, rocket_new, anvil, globex])

    found = search_mentions(client, project, "acme rocket")
    assert [m["id"] for m in found] == [rocket_new.id, rocket_old.id]
    assert "<em>" in found[0]["snippet"] and "rocket" in found[0]["snippet"].lower()
    # Accents and case do not matter (asciifolding + lowercase analyzer).
    assert [m["id"] for m in search_mentions(client, project, "ROCKÉT")][:1] == [globex.id]
    assert search_mentions(client, project, "rocket anvil") == []
    # Filters.
    by_brand = search_mentions(client, project, "rocket", brand="globex")
    assert [m["id"] for m in by_brand] == [globex.id]
    negative = search_mentions(client, project, None, sentiment="negative")
    assert [m["id"] for m in negative] == [globex.id]
    window = search_mentions(
        client, project, None, since=day + timedelta(days=1), until="2024-05-03"
    )
    assert [m["id"] for m in window] == [anvil.id]
    everything = search_mentions(client, project, None, limit=3)
    assert [m["id"] for m in everything] == [globex.id, rocket_new.id, anvil.id]
    assert everything[2]["snippet"] == anvil.text


def test_search_mentions_bad_filters(client: Elasticsearch, project: ProjectConfig) -> None:
    with pytest.raises(ConfigError, match="unknown brand"):
        search_mentions(client, project, "x", brand="Umbrella")
    with pytest.raises(ValueError, match="sentiment"):
        search_mentions(client, project, "x", sentiment="angry")


def test_search_without_an_index_is_empty(client: Elasticsearch, project: ProjectConfig) -> None:
    assert search_mentions(client, project, "anything") == []
    assert list(iter_mentions(client, project)) == []


# -- export ---------------------------------------------------------------------


def test_iter_mentions_pages_over_everything_in_order(
    client: Elasticsearch,
    project: ProjectConfig,
    stored: list[Mention],
    make_mention: MentionFactory,
) -> None:
    # Same timestamps for several mentions: the id breaks the tie.
    tied = [make_mention(datetime(2024, 2, 1, tzinfo=UTC)) for _ in range(5)]
    _store(client, project, tied)
    everything = stored + tied
    expected = [m.id for m in sorted(everything, key=lambda m: (m.published_at, m.id))]

    exported = list(iter_mentions(client, project, batch_size=7))
    assert [d["id"] for d in exported] == expected
    assert Mention.model_validate(exported[0]) in everything

    since, until = datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    window = [
        d["id"] for d in iter_mentions(client, project, since=since, until=until, batch_size=4)
    ]
    assert window == [
        m.id
        for m in sorted(everything, key=lambda m: (m.published_at, m.id))
        if since <= m.published_at < until
    ]


# -- parse_time -----------------------------------------------------------------

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00+02:00", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01 10:30", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 7D ", NOW - timedelta(days=7)),
        ("now", NOW),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_time_reads_naive_values_in_the_given_zone() -> None:
    assert parse_time("2024-01-15", tz="Europe/Paris") == datetime(2024, 1, 14, 23, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "7", "7y", "-3d", "2024-13-01", "2024-02-30"])
def test_parse_time_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read the time"):
        parse_time(text, now=NOW)
