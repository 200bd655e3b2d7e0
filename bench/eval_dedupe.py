"""Precision and recall of the near-duplicate detector on real texts with controlled edits.

Texts: real tweets (TweetEval test, ../shared/fixtures) of at least ``--min-words``
words. For each sampled text, one copy is made with a controlled edit (the
positives, by kind) and one unrelated real text is added (negatives), plus a
"same opening, different ending" hard negative. All go through one
Deduplicator (the crawl-time code path) in a shuffled order; a pair counts as
detected when both end in the same cluster.

``--stored`` makes every batch find the earlier ones only as stored mentions:
each batch is indexed in a fresh embedded engine and the Deduplicator
remembers nothing beyond its own batch, so copies are found through the band
record (:class:`BandRecord`), as a later crawl finds an earlier one's.

    python bench/eval_dedupe.py [--samples 1000] [--min-words 12] [--stored]

The tweets are read from ``$LISTENER_FIXTURES`` or ``../shared/fixtures``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from listener.crawl.dedupe import BandRecord, Deduplicator
from listener.mention import Mention

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = (
    Path(os.environ["LISTENER_FIXTURES"])
    if os.environ.get("LISTENER_FIXTURES")
    else ROOT.parent / "shared" / "fixtures"
)
TWEETS = FIXTURES / "sentiment_ground_truth" / "tweeteval_semeval2017" / "test_text.txt"


def edits(text: str, rng: random.Random) -> dict[str, str]:
    """One copy of ``text`` per kind of controlled edit."""
    words = text.split()
    replaced = list(words)
    replaced[rng.randrange(len(words))] = "indeed"
    dropped = list(words)
    del dropped[rng.randrange(len(words))]
    two = list(words)
    for index in rng.sample(range(len(words)), 2):
        two[index] = "something"
    return {
        "exact copy": text,
        "case + punctuation": text.upper().replace(",", "").replace(".", "!"),
        "syndication tag + link": f"{text} via @newsdesk https://t.co/{rng.randrange(10**6)}",
        "one word replaced": " ".join(replaced),
        "one word dropped": " ".join(dropped),
        "two words replaced": " ".join(two),
    }


def mention(number: int, text: str) -> Mention:
    return Mention.create(
        source="bench",
        source_kind="social",
        url=f"https://bench.example/{number}",
        text=text,
        published_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


@contextlib.contextmanager
def stored_lookup() -> Iterator[tuple[BandRecord, object]]:
    """A band record over a fresh embedded engine, and the indexer that stores each batch."""
    from elasticsearch import Elasticsearch

    from listener.config import parse_project
    from listener.store.engine import EmbeddedEngine
    from listener.store.indexer import Indexer

    with (
        tempfile.TemporaryDirectory(prefix="listener-eval-dedupe-") as scratch,
        EmbeddedEngine(Path(scratch) / "engine") as engine,
    ):
        os.environ["LISTENER_HOME"] = str(Path(scratch) / "home")
        client = Elasticsearch(engine.url, request_timeout=120)
        project = parse_project(
            {
                "elasticsearch": {"url": engine.url, "index_prefix": "evaldedupe"},
                "brands": [{"name": "Acme"}],
            },
            Path(scratch) / "listener.toml",
        )
        indexer = Indexer(client, project)
        indexer.install_templates()
        yield BandRecord(indexer), indexer
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--min-words", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stored", action="store_true", help="find copies through the record")
    arguments = parser.parse_args()
    if not TWEETS.is_file():
        print(f"SKIP: {TWEETS} not found")
        return
    rng = random.Random(arguments.seed)
    corpus = list(
        dict.fromkeys(
            line.strip()
            for line in TWEETS.read_text(encoding="utf-8").splitlines()
            if len(line.split()) >= arguments.min_words
        )
    )
    rng.shuffle(corpus)
    originals = corpus[: arguments.samples]
    others = corpus[arguments.samples : 2 * arguments.samples]
    items: list[tuple[int, str]] = []  # (number, text)
    positives: list[tuple[int, int, str]] = []  # (original, copy, kind)
    negatives: list[tuple[int, int, str]] = []
    number = 0
    for original, other in zip(originals, others, strict=False):
        head = number
        items.append((head, original))
        number += 1
        for kind, copy in edits(original, rng).items():
            items.append((number, copy))
            positives.append((head, number, kind))
            number += 1
        items.append((number, other))
        negatives.append((head, number, "unrelated text"))
        number += 1
        half = original.split()[: len(original.split()) // 2]
        hard = " ".join(half + other.split()[len(half) :])
        items.append((number, hard))
        negatives.append((head, number, "same opening, other ending"))
        number += 1
    order = list(items)
    rng.shuffle(order)
    clusters: dict[int, str] = {}
    batch = [mention(n, text) for n, text in order]
    with stored_lookup() if arguments.stored else contextlib.nullcontext() as stored:
        deduplicator = Deduplicator(lookup=stored[0], window=0) if stored else Deduplicator()
        for start in range(0, len(batch), 64):
            assigned = deduplicator.assign(batch[start : start + 64])
            if stored:
                assert stored[1].index(assigned).indexed == len(assigned)  # type: ignore[attr-defined]
                deduplicator.stored(assigned)
            for item in assigned:
                clusters[int(item.url.rsplit("/", 1)[1])] = item.cluster_id or item.id
    found = Counter(kind for a, b, kind in positives if clusters[a] == clusters[b])
    total = Counter(kind for _, _, kind in positives)
    false = Counter(kind for a, b, kind in negatives if clusters[a] == clusters[b])
    negative_total = Counter(kind for _, _, kind in negatives)
    tp = sum(found.values())
    fp = sum(false.values())
    fn = len(positives) - tp
    print(f"{len(originals)} real tweets of >= {arguments.min_words} words, {len(items)} texts")
    print(f"{'positive pairs (edit)':<30}{'detected':>12}")
    for kind in total:
        print(f"{kind:<30}{found[kind]:>6}/{total[kind]:<5} {found[kind] / total[kind]:6.1%}")
    print(f"{'negative pairs':<30}{'linked':>12}")
    for kind in negative_total:
        count = negative_total[kind]
        print(f"{kind:<30}{false[kind]:>6}/{count:<5} {false[kind] / count:6.1%}")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print(f"pairwise precision {precision:.3f}  recall {recall:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
