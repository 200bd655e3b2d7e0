"""Per-brand sentiment on the brand-risk DEVELOPMENT set, with a model that never saw it.

    OMP_NUM_THREADS=1 python bench/dev_brand_risk.py --dev-model DIR   # trains DIR once (~3 min)
    OMP_NUM_THREADS=1 python bench/dev_brand_risk.py --dev-model DIR --show-errors

``tests/data/brand_risk_challenge.tsv`` is an evaluation set: per-brand rules must not be
tuned on it. ``tests/data/brand_risk_dev.tsv`` is the same kind of file (real sentences
about a brand, each brand's label read by hand, the same nine categories) taken from the
*training* parts of the financial tweets, FinEntity and GoEmotions. The shipped model
trained on those texts, so they are scored with a *development model*: the shipped
settings and data (``bench/dev_targets.py``'s ``train_dev_model``) without every set a
development sentence comes from (read from the file's ``source`` column: the financial
tweets, FinEntity, and GoEmotions *train*; GoEmotions dev stays), and without any text
equal to a development sentence. ``--dev-model DIR`` loads that model from DIR, training
and saving it there first when DIR holds none.

Prints, for VADER and the development model through the whole Enricher (every brand a
project brand, keyword = its name; ``eval_sentiment.evaluate_brand_challenge``): accuracy,
macro-F1, right/total per label and per category. ``--show-errors`` prints the development
set's wrong rows (gold, predicted, category, brand, text); it never reads the challenge set.
Skips cleanly (exit code 0) when the training data or the development file is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment_data as sd

from listener.models.sentiment import ARTEFACT_CONFIG, SentimentModel

#: ``source`` prefixes of the development file -> the training set (domain) it comes from.
SOURCE_SETS = {
    "training/sentiment/twitter_financial_news_sentiment/": "fin_tweets",
    "training/sentiment/finentity/": "finentity",
    "training/sentiment/newsmtsc/": "newsmtsc",
    "training/sentiment/goemotions/group/train.tsv": "goemotions train",
    "training/sentiment/xed_en/": "xed_en",
}

Row = tuple[str, str, str, float | None]


def source_sets(examples: Sequence[sd.BrandExample]) -> set[str]:
    """The training sets the development sentences come from (an unknown source stops)."""
    out: set[str] = set()
    for ex in examples:
        found = [name for prefix, name in SOURCE_SETS.items() if ex.source.startswith(prefix)]
        if not found:
            raise SystemExit(
                f"{sd.dev_path()}: source {ex.source!r} is not a training set this script can"
                f" leave out (known: {sorted(SOURCE_SETS)}); add it to SOURCE_SETS"
            )
        out.add(found[0])
    return out


def train_model(out: Path, examples: Sequence[sd.BrandExample]) -> SentimentModel:
    """The development model: the shipped settings, without the development texts' sets."""
    from dev_targets import train_dev_model

    sets = source_sets(examples)
    domains = {s for s in sets if s != "goemotions train"}
    goemotions_train: set[str] = set()
    if "goemotions train" in sets:
        goemotions_train = {sd._normalise_key(e.text) for e in sd.load_goemotions("train")}
    dev_keys = {sd._normalise_key(ex.text) for ex in examples}

    def keep(row: Row) -> bool:
        key = sd._normalise_key(row[0])
        if row[2] in domains or key in dev_keys:
            return False
        return not (row[2] == "goemotions" and key in goemotions_train)

    model = train_dev_model(out, keep, f"development model for brand risk (no {sorted(sets)})")
    model.meta["brand_risk_dev"] = stamp(examples)
    model.save(str(out))
    return model


def stamp(examples: Sequence[sd.BrandExample]) -> str:
    """What the development model left out: the development texts (and so their sets)."""
    keys = sorted({sd._normalise_key(ex.text) for ex in examples})
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()[:16]


def load_or_train(directory: Path, examples: Sequence[sd.BrandExample]) -> SentimentModel:
    """The development model in ``directory``; trained there first when absent or stale."""
    if (directory / ARTEFACT_CONFIG).is_file():
        model = SentimentModel.load_from(directory)
        if model.meta.get("brand_risk_dev") == stamp(examples):
            print(f"development model: {directory}")
            return model
        print(f"{directory} was trained for other development texts: training again")
    else:
        print(f"no development model in {directory}: training one")
    return train_model(directory, examples)


def print_errors(examples: Sequence[sd.BrandExample], pred: Sequence[str]) -> None:
    wrong = [(ex, p) for ex, p in zip(examples, pred, strict=True) if ex.label != p]
    print(f"\nDevelopment set rows the development model gets wrong ({len(wrong)}):")
    print(f"{'gold':8s} {'predicted':9s} {'category':9s} {'brand':18s} text")
    for ex, p in sorted(wrong, key=lambda w: (w[0].label, w[0].category)):
        print(f"{ex.label:8s} {p:9s} {ex.category:9s} {ex.brand[:18]:18s} {ex.text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dev-model",
        type=Path,
        metavar="DIR",
        default=Path(__file__).resolve().parent / ".cache" / "dev_brand_risk" / "model",
        help="the development model's directory (trained and saved there when absent;"
        " default bench/.cache/dev_brand_risk/model)",
    )
    parser.add_argument(
        "--retrain", action="store_true", help="train the development model even if DIR has one"
    )
    parser.add_argument(
        "--show-errors", action="store_true", help="print the development set's wrong rows"
    )
    args = parser.parse_args(argv)
    examples = sd.load_brand_examples(sd.dev_path())
    if not examples or not sd.training_available() or not sd.fixtures_available():
        print(f"SKIP: no {sd.dev_path()} or no data at {sd.training_root()}")
        return 0
    from eval_sentiment import ArtefactScorer, print_brand_challenge

    if args.retrain:
        model = train_model(args.dev_model, examples)
    else:
        model = load_or_train(args.dev_model, examples)
    t0 = time.perf_counter()
    results = print_brand_challenge(
        ArtefactScorer(model),
        examples,
        title="Brand-risk development set",
        model_name="dev model",
    )
    took = time.perf_counter() - t0
    print(f"({took:.0f} s; the shipped model trained on these texts, so it is not scored here)")
    if args.show_errors:
        print_errors(examples, results["dev model"]["pred"])  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
