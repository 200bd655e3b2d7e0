"""A synthetic, deterministic corpus with known answers: for tests, demos and the docs.

``sample_mentions()`` builds about 750 enriched mentions of three brands over
March-April 2024 (Initech is never mentioned), with everything the analytics
look at: several sources and kinds, languages and countries, authors with and
without follower counts, engagement, per-brand and document sentiment (some
missing), owned mentions (flagged, on a sub-domain, or from an owned account),
duplicate copies, key phrases and entities. Built in:

* three quiet days (:data:`QUIET_DAYS`) without any mention;
* an Acme spike on :data:`SPIKE_DAY`: :data:`SPIKE_EXTRA` extra, mostly
  negative mentions about a "battery recall", mostly on reddit;
* Globex's "price cut" phrase rising over the last week;
* mentions at exact midnights, one millisecond before, and around the
  Europe/Paris daylight-saving change (2024-03-31 01:00 UTC).

Run ``python -m listener.analytics.sample -c listener.toml`` to index it into a
project (for trying the commands and the report).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from listener.mention import Author, BrandMatch, Engagement, Entity, Mention, Sentiment

SAMPLE_BRANDS: list[dict[str, Any]] = [
    {
        "name": "Acme",
        "keywords": ["acme", "acme corp"],
        "owned_domains": ["acme.com"],
        "owned_accounts": ["@acme"],
    },
    {"name": "Globex", "keywords": ["globex"], "owned_domains": ["globex.example"]},
    {"name": "Initech", "keywords": ["initech"]},
]
START = date(2024, 3, 1)
DAYS = 61
QUIET_DAYS = (date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 12))
SPIKE_DAY = date(2024, 4, 20)
SPIKE_EXTRA = 40
TRENDING_FROM = date(2024, 4, 24)

# (plugin, kind, domains, followers known)
_SOURCES: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("rss", "news", ("news.example", "dailytech.example", "acme.com", "globex.example"), False),
    ("rss", "blog", ("blog.example", "blog.acme.com", "medium.example"), False),
    ("mastodon", "social", ("mastodon.example",), True),
    ("reddit", "forum", ("reddit.com",), False),
    ("reviews", "review", ("reviews.example",), False),
    ("video", "video", ("video.example",), True),
]
_SOURCE_WEIGHTS = (4, 2, 4, 3, 2, 1)
_AUTHORS = [
    "Ada Park", "Ben Ortiz", "Chloé Martin", "Dev Rao", "Eva Novak", "Femi Ade", "Gus Lind",
    "Hana Sato", "Ivan Petrov", "Jo Kim", "Kai Berg", "Lena Vogel", "Max Roth", "Nia Okafor",
    "Omar Haddad", "Pia Lund", "Quinn Ray", "Rosa Diaz", "Sam Cole", "Tom Weber",
]  # fmt: skip
_OWNED_AUTHOR = ("Acme Official", "acme")
_PHRASES = {
    "Acme": ["anvil quality", "rocket skates", "customer service", "free shipping", "acme"],
    "Globex": ["cloud platform", "customer service", "pricing", "globex"],
}
_ENTITIES = [
    ("Bob Smith", "PERSON"), ("Berlin", "GPE"), ("Paris", "GPE"), ("Acme", "ORG"),
    ("Globex", "ORG"), ("Wile E. Coyote", "PERSON"), ("Hank Scorpio", "PERSON"),
]  # fmt: skip
_SCORES = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}


def _sentiment(label: str | None) -> Sentiment | None:
    return None if label is None else Sentiment(score=_SCORES[label], label=label)  # type: ignore[arg-type]


class _Builder:
    """Keeps the random state and counters while the corpus is built."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.number = 0
        self.followers = {
            name: (self.rng.choice([120, 800, 2500, 15000, 60000]) if i % 4 else None)
            for i, name in enumerate(_AUTHORS)
        }

    def label(self, weights: Sequence[int] = (5, 3, 2)) -> str:
        return self.rng.choices(["positive", "neutral", "negative"], weights=weights)[0]

    def mention(
        self,
        published: datetime,
        brands: Sequence[str],
        *,
        source: tuple[str, str, tuple[str, ...], bool] | None = None,
        negative_bias: bool = False,
        phrases: Sequence[str] = (),
    ) -> Mention:
        rng = self.rng
        self.number += 1
        plugin, kind, domains, has_followers = (
            source or rng.choices(_SOURCES, weights=_SOURCE_WEIGHTS)[0]
        )
        domain = rng.choice(domains)
        name = rng.choice(_AUTHORS)
        handle = None
        if kind in ("social", "forum", "video"):
            handle = name.split()[0].lower()
        if kind == "social" and "Acme" in brands and rng.random() < 0.15:
            name, handle = _OWNED_AUTHOR
        followers = None
        if has_followers:
            followers = 42_000 if name == _OWNED_AUTHOR[0] else self.followers.get(name)
        weights = (1, 2, 7) if negative_bias else (5, 3, 2)
        matches = []
        for brand in brands:
            owned_domains = {"Acme": "acme.com", "Globex": "globex.example"}
            label = self.label(weights) if rng.random() > 0.15 else None
            matches.append(
                BrandMatch(
                    brand=brand,
                    keyword=brand.lower(),
                    sentiment=_sentiment(label),
                    owned=domain == owned_domains.get(brand),
                )
            )
        document = self.label(weights) if rng.random() > 0.1 else None
        chosen_phrases = list(phrases)
        for brand in brands:
            chosen_phrases += rng.sample(_PHRASES.get(brand, []), k=rng.randint(0, 2))
        entities = [Entity(text=t, label=lbl) for t, lbl in rng.sample(_ENTITIES, k=2)]
        likes = rng.randrange(0, 40)
        comments = rng.randrange(0, 12) if kind != "news" else None
        shares = rng.randrange(0, 6) if kind in ("social", "video") else None
        text = (
            f"Post {self.number}: {' and '.join(brands)} "
            f"{' / '.join(chosen_phrases) or 'in the news'}."
        )
        return Mention.create(
            source=plugin,
            source_kind=kind,
            url=f"https://{domain}/p/{self.number}",
            title=f"About {' and '.join(brands)} #{self.number}",
            text=text,
            published_at=published,
            crawled_at=published + timedelta(hours=1),
            language=rng.choice(["en", "en", "en", "en", "de", "fr"]),
            country=rng.choice(["US", "GB", "DE", "FR", None]),
            author=Author(name=name, handle=handle, followers=followers),
            engagement=Engagement(likes=likes, comments=comments, shares=shares),
            brands=matches,
            brand_names=list(brands),
            entities=entities,
            phrases=list(dict.fromkeys(chosen_phrases)),
            sentiment=_sentiment(document),
        )

    def duplicate(self, original: Mention) -> Mention:
        """A later copy of ``original``'s text elsewhere (syndication)."""
        self.number += 1
        copy = Mention.create(
            source="rss",
            source_kind="news",
            url=f"https://syndicated.example/p/{self.number}",
            title=original.title,
            text=original.text,
            published_at=original.published_at + timedelta(minutes=self.rng.randrange(1, 90)),
            language=original.language,
            country=original.country,
            author=Author(name="Wire Desk"),
            engagement=Engagement(likes=self.rng.randrange(0, 5)),
            brands=original.brands,
            brand_names=original.brand_names,
            entities=original.entities,
            phrases=original.phrases,
            sentiment=original.sentiment,
            cluster_id=original.id,
            duplicate=True,
        )
        return copy


def sample_mentions(seed: int = 20240301) -> list[Mention]:
    """The sample corpus (same seed, same mentions)."""
    builder = _Builder(seed)
    rng = builder.rng
    mentions: list[Mention] = []
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        if day in QUIET_DAYS:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        plan = ["Acme"] * rng.randint(3, 8) + ["Globex"] * rng.randint(1, 5)
        plan += ["Acme+Globex"] * rng.randint(0, 2)
        for index, entry in enumerate(plan):
            if index == 0 and offset % 5 == 0:
                published = midnight  # exactly on the day boundary
            elif index == 1 and offset % 7 == 0:
                published = midnight + timedelta(days=1) - timedelta(milliseconds=1)
            else:
                published = midnight + timedelta(seconds=rng.randrange(86_400))
            phrases: list[str] = []
            if "Globex" in entry and day >= TRENDING_FROM and rng.random() < 0.7:
                phrases.append("price cut")
            mention = builder.mention(published, entry.split("+"), phrases=phrases)
            mentions.append(mention)
            if rng.random() < 0.08:
                mentions.append(builder.duplicate(mention))
    # Around the Paris daylight-saving change (2024-03-31 01:00 UTC).
    change = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    for delta in (timedelta(minutes=-30), timedelta(0), timedelta(minutes=30)):
        mentions.append(builder.mention(change + delta, ["Acme"]))
    # The Acme spike.
    spike = datetime(SPIKE_DAY.year, SPIKE_DAY.month, SPIKE_DAY.day, tzinfo=UTC)
    reddit = _SOURCES[3]
    for _ in range(SPIKE_EXTRA):
        published = spike + timedelta(seconds=rng.randrange(6 * 3600, 22 * 3600))
        source = reddit if rng.random() < 0.8 else None
        mentions.append(
            builder.mention(
                published,
                ["Acme"],
                source=source,
                negative_bias=True,
                phrases=["battery recall"],
            )
        )
    return mentions


def sample_project(index_prefix: str = "sample", url: str | None = None) -> dict[str, Any]:
    """Project-file data (as parsed TOML) for the sample brands."""
    elasticsearch: dict[str, Any] = {"index_prefix": index_prefix}
    if url:
        elasticsearch["url"] = url
    return {"elasticsearch": elasticsearch, "brands": SAMPLE_BRANDS}


def main(argv: Sequence[str] | None = None) -> int:
    """Index the sample corpus into the project given with ``-c``."""
    import argparse

    from listener.config import load_project
    from listener.store.engine import connect
    from listener.store.indexer import Indexer

    parser = argparse.ArgumentParser(description="Index listener's sample analytics corpus.")
    parser.add_argument("-c", "--config", default="listener.toml")
    arguments = parser.parse_args(argv)
    project = load_project(arguments.config)
    mentions = sample_mentions()
    with connect(project) as client:
        indexer = Indexer(client, project)
        result = indexer.index(mentions)
        indexer.refresh()
    print(f"indexed {result.indexed} of {len(mentions)} sample mentions")
    return 0 if result.indexed == len(mentions) else 1


if __name__ == "__main__":
    raise SystemExit(main())
