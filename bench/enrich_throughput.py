"""Enrichment throughput against spaCy's own limit, on the same texts and cores.

(a) the limit: ``nlp.pipe`` of listener's own pipeline (same model, same
    components) on the bare texts, nothing else;
(b) listener's enrichment stage: ``Enricher.enrich`` (Mentions in, enriched
    Mentions out: metadata, brand rules, owned flags, phrases);
(c) a naive loop: ``nlp(text)`` one document at a time, then the same
    conversion to a Mention;
(c') for context, the loop as it is usually first written: the whole
    en_core_web_sm (every component loaded and run), ``nlp(text)`` per
    document, then VADER per document for sentiment.

Each is run with 1 process and, for (a) and (b), with 2 (``n_process=2``).
Peak memory is measured in fresh processes for a growing streamed input.

    OMP_NUM_THREADS=1 python bench/enrich_throughput.py [--texts 3000] [--rounds 3] [--branded]

Texts: real tweets (TweetEval test) from ../shared/fixtures (or $LISTENER_FIXTURES) when
present, else the demo site's texts repeated. Few of those tweets name one of the bench's
brands; ``--branded`` starts each with one ("Apple: ..."), so every mention also gets
per-brand sentiment, as every indexed mention does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# $LISTENER_FIXTURES as in the other benches (a git worktree has no ../shared beside it).
FIXTURES = (
    Path(os.environ["LISTENER_FIXTURES"])
    if os.environ.get("LISTENER_FIXTURES")
    else ROOT.parent / "shared" / "fixtures"
)
TWEETS = FIXTURES / "sentiment_ground_truth" / "tweeteval_semeval2017" / "test_text.txt"
BRANDS = [
    {"name": "Apple", "keywords": ["apple", "iphone", "#ios"], "exclude": ["apple pie"]},
    {"name": "Google", "keywords": ["google", "android"]},
    {"name": "Microsoft", "keywords": ["microsoft", "xbox", "windows 10"]},
    {"name": "Samsung", "keywords": ["samsung", "galaxy note"]},
]


def load_texts(count: int) -> list[str]:
    if TWEETS.is_file():
        lines = [line.strip() for line in TWEETS.read_text(encoding="utf-8").splitlines()]
        texts = [line for line in lines if line]
    else:
        texts = ["Apple and Google both shipped updates this week; Samsung did not."]
    return [texts[i % len(texts)] for i in range(count)]


def project() -> object:
    from listener.config import ProjectConfig

    return ProjectConfig.model_validate({"brands": BRANDS})


def mentions(texts: Iterable[str]) -> Iterator[object]:
    from listener.mention import Mention

    now = datetime(2026, 11, 1, tzinfo=UTC)
    for i, text in enumerate(texts):
        yield Mention.create(
            source="bench", source_kind="social", url=f"https://bench.example/{i}",
            text=text, published_at=now,
        )  # fmt: skip


def timed(run: Callable[[], int], rounds: int) -> float:
    """Median wall seconds of ``rounds`` runs (after one warm-up)."""
    run()
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def memory_child(count: int) -> None:
    """Subprocess: enrich ``count`` streamed mentions, print peak RSS in MB."""
    import resource

    from listener.enrichment import Enricher

    texts = load_texts(min(count, 2000))

    def stream() -> Iterator[object]:
        # Generated lazily: nothing proportional to the input is held here.
        yield from mentions(texts[i % len(texts)] for i in range(count))

    enricher = Enricher(project(), batch_size=64)  # type: ignore[arg-type]
    done = sum(1 for _ in enricher.enrich(stream()))  # type: ignore[arg-type]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"count": done, "peak_mb": round(peak, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--branded",
        action="store_true",
        help="start every text with a brand's name, so each mention gets per-brand sentiment "
        "(as every indexed mention does: one naming no brand is dropped); by default only "
        "the few tweets that name one do",
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory_child:
        memory_child(arguments.memory_child)
        return

    from listener.enrichment import Enricher, analysed_text

    texts = load_texts(arguments.texts)
    if arguments.branded:
        names = [brand["name"] for brand in BRANDS]
        texts = [f"{names[i % len(names)]}: {text}" for i, text in enumerate(texts)]
    corpus = list(mentions(texts))
    config = project()
    enricher = Enricher(config, batch_size=64)  # type: ignore[arg-type]
    enricher_2 = Enricher(config, batch_size=64, n_process=2)  # type: ignore[arg-type]
    nlp = enricher.nlp
    analysed = [analysed_text(m)[0] for m in corpus]  # type: ignore[arg-type]

    def naive() -> int:
        count = 0
        for mention in corpus:
            doc = nlp(analysed_text(mention)[0])  # type: ignore[arg-type]
            enricher.apply(mention, doc)  # type: ignore[arg-type]
            count += 1
        return count

    import spacy
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from listener.enrichment.pipeline import resolve_model

    untrimmed = spacy.load(resolve_model())
    vader = SentimentIntensityAnalyzer()

    def naive_untrimmed() -> int:
        count = 0
        for text in analysed:
            doc = untrimmed(text)
            vader.polarity_scores(doc.text)
            count += len(doc.ents) >= 0
        return count

    runs: dict[str, Callable[[], int]] = {
        "(a) limit: nlp.pipe, same pipeline, 1 process": lambda: sum(
            1 for _ in nlp.pipe(analysed, batch_size=64)
        ),
        "(b) listener Enricher.enrich, 1 process": lambda: sum(
            1
            for _ in enricher.enrich(iter(corpus))  # type: ignore[arg-type]
        ),
        "(c) naive loop, nlp(text) per document": naive,
        "(c') naive loop, untrimmed model + VADER": naive_untrimmed,
        "(a) limit: nlp.pipe, n_process=2": lambda: sum(
            1 for _ in nlp.pipe(analysed, batch_size=64, n_process=2)
        ),
        "(b) listener Enricher.enrich, n_process=2": lambda: sum(
            1
            for _ in enricher_2.enrich(iter(corpus))  # type: ignore[arg-type]
        ),
    }
    n = len(texts)
    rates = {label: n / timed(run, arguments.rounds) for label, run in runs.items()}
    kind = "real tweets" if TWEETS.is_file() else "demo text"
    kind += ", each starting with a brand's name" if arguments.branded else ""
    print(f"{n} texts ({kind}), batch 64, "
          f"median of {arguments.rounds} runs, wall clock")  # fmt: skip
    for label, rate in rates.items():
        print(f"  {label:<48} {rate:8.0f} docs/s")
    a1, b1, c1, c1u, a2, b2 = rates.values()
    print(f"  (b)/(a) one process: {b1 / a1:.2f}   target >= 0.90")
    print(f"  (b)/(c) one process: {b1 / c1:.2f}   target >= 3", end="")
    print(f" (the limit itself: (a)/(c) {a1 / c1:.2f})")
    print(f"  (b)/(c') one process: {b1 / c1u:.2f}")
    print(f"  2-process scaling: limit x{a2 / a1:.2f}, listener x{b2 / b1:.2f}")

    print("peak memory, streamed input, one process:")
    for count in (2000, 8000, 32000):
        output = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        result = json.loads(output.strip().splitlines()[-1])
        print(f"  {result['count']:>6} mentions: {result['peak_mb']:8.1f} MB")


if __name__ == "__main__":
    main()
