"""Evaluate listener's sentiment model against VADER on every labelled set, in one run.

    OMP_NUM_THREADS=1 python bench/eval_sentiment.py

Prints one table: set, n, VADER macro-F1, listener macro-F1, delta, and for the sets with
VADER-style human mean ratings the Pearson r of each model's score with the human mean.
Only examples the model was not trained on are scored: the test fold of the VADER sets
(see ``sentiment_data``) and every other set in full (none of them is trained on).

Labels: VADER's label comes from its documented compound thresholds (>= 0.05 positive,
<= -0.05 negative); listener's is the argmax of its three probabilities. SST-2 has no
neutral class, so both models make a forced positive-vs-negative decision there (VADER:
compound >= 0; listener: P(positive) >= P(negative)) and macro-F1 is over the two classes.

Then, per target, on the SemEval-2014 aspect sets: the accuracy of giving every aspect
term the label of its whole sentence, against scoring the clause around the term
(``listener.models.sentiment.clause_around``), for VADER and for listener.

Skips cleanly (exit code 0) when the shared fixtures are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment_data as sd

from listener.models.sentiment import LABELS, SentimentModel, clause_around

Scorer = Callable[[Sequence[str]], list[tuple[str, float]]]


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 over ``labels``."""
    scores = []
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p != lab)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def vader_scorer() -> Scorer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def score(texts: Sequence[str]) -> list[tuple[str, float]]:
        out = []
        for t in texts:
            c = analyzer.polarity_scores(t)["compound"]
            out.append(("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral", c))
        return out

    return score


@dataclass
class Row:
    name: str
    n: int
    vader_f1: float
    model_f1: float
    vader_r: float | None = None
    model_r: float | None = None
    kind: str | None = None
    #: listener's macro-F1 without the kind's offsets (only where the kind has some).
    model_f1_no_kind: float | None = None


def evaluate_set(
    name: str, examples: Sequence[sd.Example], vader: Scorer, model: SentimentModel
) -> Row:
    texts = [e.text for e in examples]
    gold = [e.label for e in examples]
    v = vader(texts)
    if name.startswith("sst2"):
        proba = model.predict_proba(texts)
        m_bin = ["positive" if p[2] >= p[0] else "negative" for p in proba]
        v_bin = ["positive" if s >= 0 else "negative" for _, s in v]
        pair = ("negative", "positive")
        return Row(name, len(texts), macro_f1(gold, v_bin, pair), macro_f1(gold, m_bin, pair))
    m = model.score_texts(texts)
    row = Row(
        name,
        len(texts),
        macro_f1(gold, [lab for lab, _ in v], LABELS),
        macro_f1(gold, [lab for lab, _ in m], LABELS),
    )
    ratings = [e.rating for e in examples]
    if all(r is not None for r in ratings):
        row.vader_r = pearson([s for _, s in v], ratings)  # type: ignore[arg-type]
        row.model_r = pearson([s for _, s in m], ratings)  # type: ignore[arg-type]
    return row


#: The source kind (``Mention.source_kind``) each evaluation set's texts would come from in
#: listener: Reddit comments are "forum" posts (the reddit source), tweets "social", headlines
#: and news sentences "news", review sentences and snippets "review". XED's movie subtitles
#: are no kind listener crawls (None). A kind changes a score only where the artefact has
#: offsets for it (``SentimentModel.kind_offsets``).
SET_KINDS: dict[str, str | None] = {
    "goemotions_test": "forum",
    "fin_tweets_valid": "social",
    "newsmtsc_devtest (mt+rw)": "news",
    "finentity (test fold)": "news",
    "xed_en (test fold)": None,
    "vader_tweets (test fold)": "social",
    "vader_movies (test fold)": "review",
    "tweeteval_test": "social",
    "tweeteval_val": "social",
    "sst2_dev (binary)": "review",
    "fpb_allagree": "news",
    "fpb_75agree": "news",
    "semeval14_laptops_sent": "review",
    "semeval14_restaurants_sent": "review",
}


def labelled_sets() -> list[tuple[str, list[sd.Example]]]:
    """Every set evaluated, restricted to examples never used for training."""
    held_back: list[tuple[str, list[sd.Example]]] = []
    if sd.training_available():
        held_back = [
            ("goemotions_test", sd.load_goemotions("test")),
            ("fin_tweets_valid", sd.load_fin_tweets("valid")),
            (
                "newsmtsc_devtest (mt+rw)",
                sd.load_newsmtsc("devtest_mt") + sd.load_newsmtsc("devtest_rw"),
            ),
            ("finentity (test fold)", [e for e in sd.load_finentity() if e.split == "test"]),
            ("xed_en (test fold)", [e for e in sd.load_xed_en() if e.split == "test"]),
        ]
    return [
        *held_back,
        ("vader_tweets (test fold)", [e for e in sd.load_vader_tweets() if e.split == "test"]),
        ("vader_movies (test fold)", [e for e in sd.load_vader_movies() if e.split == "test"]),
        ("tweeteval_test", sd.load_tweeteval("test")),
        ("tweeteval_val", sd.load_tweeteval("val")),
        ("sst2_dev (binary)", sd.load_sst2()),
        ("fpb_allagree", sd.load_fpb("AllAgree")),
        ("fpb_75agree", sd.load_fpb("75Agree")),
        ("semeval14_laptops_sent", sd.semeval_sentences("laptops")),
        ("semeval14_restaurants_sent", sd.semeval_sentences("restaurants")),
    ]


@dataclass
class TargetRow:
    name: str
    n: int
    n_mixed: int
    vader_doc: float
    vader_target: float
    model_doc: float
    model_target: float
    vader_doc_mixed: float
    vader_target_mixed: float
    model_doc_mixed: float
    model_target_mixed: float


def evaluate_targets(domain: str, vader: Scorer, model: SentimentModel) -> TargetRow:
    """Per-target accuracy: sentence label for every target vs the target's own clause.

    listener uses ``SentimentModel.score_targets``; VADER gets the same rule (its clause
    compound, or the sentence's when the clause is neutral).
    """
    sentences = [s for s in sd.load_semeval_aspects(domain) if s.aspects]  # type: ignore[arg-type]
    gold = [a[3] for s in sentences for a in s.aspects]
    mixed = [len({a[3] for a in s.aspects}) > 1 for s in sentences for _ in s.aspects]

    def acc(pred: Sequence[str], only_mixed: bool = False) -> float:
        pairs = [(p, g) for p, g, m in zip(pred, gold, mixed, strict=True) if m or not only_mixed]
        return float(np.mean([p == g for p, g in pairs]))

    v_doc: list[str] = []
    v_target: list[str] = []
    m_doc: list[str] = []
    m_target: list[str] = []
    for s in sentences:
        spans = [(a[0], a[1]) for a in s.aspects]
        whole, *clauses = vader([s.text, *(clause_around(s.text, a, b) for a, b in spans)])
        v_doc.extend(whole[0] for _ in spans)
        v_target.extend(c[0] if c[0] != "neutral" else whole[0] for c in clauses)
        doc_label = model.score_texts([s.text])[0][0]
        m_doc.extend(doc_label for _ in spans)
        m_target.extend(lab for lab, _ in model.score_targets(s.text, spans))
    return TargetRow(
        f"semeval14_{domain}",
        len(gold),
        sum(mixed),
        acc(v_doc),
        acc(v_target),
        acc(m_doc),
        acc(m_target),
        acc(v_doc, True),
        acc(v_target, True),
        acc(m_doc, True),
        acc(m_target, True),
    )


def evaluate_brand_challenge(
    scorer: object | None = None, examples: Sequence[sd.BrandExample] | None = None
) -> dict[str, object]:
    """Per-brand sentiment on the brand-risk challenge set, through the whole Enricher.

    Every brand of the set is a project brand (keyword = its name); each sentence is one
    mention; the prediction is the sentiment of the sentence's brand. ``scorer`` None is
    listener's model; pass ``VaderScorer()`` for VADER in the same pipeline. ``examples``
    (default: the challenge set) scores another brand-risk file, e.g. the development set
    (``bench/dev_brand_risk.py``); the result's ``pred`` holds each example's label.
    """
    from datetime import UTC, datetime

    import pluggy

    from listener.config import ProjectConfig
    from listener.enrichment import Enricher
    from listener.mention import Mention
    from listener.sdk import hookspecs

    if examples is None:
        examples = sd.load_brand_challenge()
    names: dict[str, str] = {}
    for ex in examples:
        names.setdefault(ex.brand.casefold(), ex.brand)
    config = ProjectConfig.model_validate(
        {"brands": [{"name": name, "keywords": [name]} for name in names.values()]}
    )
    manager = pluggy.PluginManager("listener")
    manager.add_hookspecs(hookspecs)
    enricher = Enricher(config, scorer=scorer, plugin_manager=manager)  # type: ignore[arg-type]
    mentions = [
        Mention.create(
            source="challenge",
            source_kind="social",
            url=f"https://challenge.example/{i}",
            text=ex.text,
            published_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for i, ex in enumerate(examples)
    ]
    pred: list[str] = []
    for ex, mention in zip(examples, enricher.enrich(mentions), strict=True):
        name = names[ex.brand.casefold()]
        match = next((b for b in mention.brands if b.brand == name), None)
        pred.append(match.sentiment.label if match and match.sentiment else "unmatched")
    gold = [ex.label for ex in examples]
    by_label = {
        lab: (
            sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab),
            sum(1 for g in gold if g == lab),
        )
        for lab in LABELS
    }
    by_category: dict[str, tuple[int, int]] = {}
    for ex, p in zip(examples, pred, strict=True):
        right, total = by_category.get(ex.category, (0, 0))
        by_category[ex.category] = (right + (p == ex.label), total + 1)
    return {
        "n": len(examples),
        "accuracy": float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])),
        "macro_f1": macro_f1(gold, pred, LABELS),
        "by_label": by_label,
        "by_category": by_category,
        "unmatched": pred.count("unmatched"),
        "pred": pred,
    }


class OffsetModel(SentimentModel):
    """A model with fixed logit offsets added: a class prior for one source kind.

    An experiment (``--kind-offset``), not part of listener: see the model card's "Tried and
    not kept" (a neutral offset for reviews).
    """

    def __init__(self, model: SentimentModel, offsets: dict[str, float]) -> None:
        self.__dict__.update(model.__dict__)
        self.offsets = np.array([offsets.get(lab, 0.0) for lab in LABELS], dtype=np.float32)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return super().logits(texts) + self.offsets


def for_kind(
    model: SentimentModel, kind_offsets: dict[str, dict[str, float]], kind: str | None
) -> SentimentModel:
    """``model``, with ``kind``'s offsets added when ``--kind-offset`` gave some."""
    offsets = kind_offsets.get(kind or "")
    return OffsetModel(model, offsets) if offsets else model


def parse_kind_offsets(items: Sequence[str]) -> dict[str, dict[str, float]]:
    """``["review:neutral=-0.5"]`` -> ``{"review": {"neutral": -0.5}}``."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        kind, _, rest = item.partition(":")
        label, _, value = rest.partition("=")
        if label not in LABELS or not kind:
            raise SystemExit(
                f"--kind-offset {item!r}: expected KIND:LABEL=VALUE with LABEL one of {LABELS}"
            )
        out.setdefault(kind, {})[label] = float(value)
    return out


class ArtefactScorer:
    """The enrichment scorer interface over a given :class:`SentimentModel`."""

    def __init__(self, model: SentimentModel) -> None:
        self.model = model

    def score(self, texts: Sequence[str]) -> list[object]:
        from listener.mention import Sentiment

        return [
            Sentiment(score=max(-1.0, min(1.0, score)), label=label)
            for label, score in self.model.score_texts(list(texts))
        ]


def load_artefact(directory: Path) -> SentimentModel:
    """A :class:`SentimentModel` from an artefact directory (config JSON + weights)."""
    return SentimentModel.load_from(directory)


def print_languages(vader: Scorer) -> None:
    """The model for de/es/fr/it/nl/pt on the held-back 20 % of each XED projection."""
    if not sd.training_available():
        print("languages: SKIP (no ../shared/training/sentiment)")
        return
    try:
        model = SentimentModel.load("multilingual")
    except FileNotFoundError:
        print("languages: SKIP (no multilingual artefact)")
        return
    print("Other languages: XED projections, held-back 20 % test fold, positive vs negative")
    header = (
        f"{'language':10s} {'train':>6s} {'test':>5s} {'VADER F1':>9s}"
        f" {'listener F1':>12s} {'listener acc':>13s}"
    )
    print(header)
    print("-" * len(header))
    pair = ("negative", "positive")
    for lang in sd.XED_LANGUAGES:
        examples = sd.load_xed_projection(lang)
        test = [e for e in examples if e.split == "test"]
        gold = [e.label for e in test]
        proba = model.predict_proba([e.text for e in test])
        pred = ["positive" if p[2] >= p[0] else "negative" for p in proba]
        v_pred = ["positive" if c >= 0 else "negative" for _, c in vader([e.text for e in test])]
        acc = float(np.mean([g == q for g, q in zip(gold, pred, strict=True)]))
        print(
            f"{lang:10s} {len(examples) - len(test):6d} {len(test):5d}"
            f" {macro_f1(gold, v_pred, pair):9.3f} {macro_f1(gold, pred, pair):12.3f} {acc:13.3f}"
        )
    print(
        "binary: both models choose positive or negative (VADER: compound >= 0);"
        " the projections have no neutral lines"
    )


def print_brand_challenge(
    scorer: object | None = None,
    examples: Sequence[sd.BrandExample] | None = None,
    title: str = "Brand-risk challenge set",
    model_name: str = "listener",
) -> dict[str, dict[str, object]]:
    """Print VADER's and the model's per-brand figures on ``examples`` (default: the
    challenge set) and return both results (``evaluate_brand_challenge``)."""
    from listener.enrichment import VaderScorer

    if examples is None:
        examples = sd.load_brand_challenge()
    if not examples:
        print(f"{title}: SKIP (no examples; tests/data/brand_risk_*.tsv absent)")
        return {}
    results = {
        "VADER": evaluate_brand_challenge(VaderScorer(), examples),
        model_name: evaluate_brand_challenge(scorer, examples),
    }
    n = results[model_name]["n"]
    print(f"{title} ({n} sentences, per-brand sentiment through the Enricher)")
    for name, res in results.items():
        parts = "  ".join(
            f"{lab} {right}/{total}"
            for lab, (right, total) in res["by_label"].items()  # type: ignore[attr-defined]
        )
        print(
            f"  {name:9s} accuracy {res['accuracy']:.3f}  macro-F1 {res['macro_f1']:.3f}"
            f"  ({parts}; brand not matched: {res['unmatched']})"
        )
    cats = results[model_name]["by_category"]
    vcats = results["VADER"]["by_category"]
    print(
        f"  by category (VADER -> {model_name}): "
        + ", ".join(
            f"{c} {vcats[c][0]}->{r}/{t}"  # type: ignore[index]
            for c, (r, t) in sorted(cats.items())  # type: ignore[attr-defined]
        )
    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--artefact",
        type=Path,
        help="evaluate the model in this directory instead of the shipped one (e.g. an older"
        " checkout's listener/models/sentiment_data)",
    )
    parser.add_argument(
        "--only", choices=["documents", "targets", "brands", "languages"], action="append"
    )
    parser.add_argument(
        "--kind-offset",
        action="append",
        default=[],
        metavar="KIND:LABEL=VALUE",
        help="experiment: add VALUE to LABEL's logit for the sets of source kind KIND (see"
        " SET_KINDS; the SemEval per-target sets are reviews), e.g. review:neutral=-0.5",
    )
    args = parser.parse_args(argv)
    kind_offsets = parse_kind_offsets(args.kind_offset)
    if not sd.fixtures_available():
        print(f"SKIP: no labelled sets at {sd.sentiment_root()}")
        return 0

    model = SentimentModel.load() if args.artefact is None else load_artefact(args.artefact)
    vader = vader_scorer()
    sections = set(args.only or ["documents", "targets", "brands", "languages"])
    timings = {"vader": [0.0, 0], "listener": [0.0, 0]}
    if "documents" in sections:
        rows: list[Row] = []
        for name, examples in labelled_sets():
            t0 = time.perf_counter()
            vader([e.text for e in examples])
            timings["vader"][0] += time.perf_counter() - t0
            t0 = time.perf_counter()
            model.score_texts([e.text for e in examples])
            timings["listener"][0] += time.perf_counter() - t0
            for key in timings:
                timings[key][1] += len(examples)
            kind = SET_KINDS.get(name)
            row = evaluate_set(name, examples, vader, for_kind(model, kind_offsets, kind))
            row.kind = kind
            if kind in kind_offsets:
                row.model_f1_no_kind = evaluate_set(name, examples, vader, model).model_f1
            rows.append(row)

        def r(x: float | None) -> str:
            return "" if x is None else f"{x:.3f}"

        header = (
            f"{'set':28s} {'kind':>6s} {'n':>6s} {'VADER F1':>9s} {'listener F1':>12s}"
            f" {'delta':>7s} {'VADER r':>8s} {'listener r':>11s} {'no kind':>8s}"
        )
        print("Document-level sentiment: macro-F1 on examples not used in training")
        print(header)
        print("-" * len(header))
        for row in rows:
            print(
                f"{row.name:28s} {row.kind or '-':>6s} {row.n:6d} {row.vader_f1:9.3f}"
                f" {row.model_f1:12.3f} {row.model_f1 - row.vader_f1:+7.3f}"
                f" {r(row.vader_r):>8s} {r(row.model_r):>11s} {r(row.model_f1_no_kind):>8s}"
            )
        print(
            "r = Pearson correlation of the score (VADER compound; listener P(pos)-P(neg)) with"
            " the human mean rating."
        )
        print(f"neutral band for VADER mean ratings: |mean| < {sd.VADER_NEUTRAL_BAND}")
        print(
            "kind = the source kind listener would give these texts (scored with it);"
            f" kind offsets (--kind-offset): {kind_offsets or 'none'};"
            " 'no kind' = listener's F1 scoring the same texts without them"
        )

    if "targets" in sections:
        print()
        print("Per-target sentiment (SemEval-2014 aspect terms, 'conflict' dropped): accuracy")
        theader = (
            f"{'set':34s} {'n':>5s} {'VADER doc':>10s} {'VADER target':>13s}"
            f" {'listener doc':>13s} {'listener target':>16s}"
        )
        print(theader)
        print("-" * len(theader))
        for domain in ("laptops", "restaurants"):
            t = evaluate_targets(domain, vader, for_kind(model, kind_offsets, "review"))
            print(
                f"{t.name:34s} {t.n:5d} {t.vader_doc:10.3f} {t.vader_target:13.3f}"
                f" {t.model_doc:13.3f} {t.model_target:16.3f}"
            )
            print(
                f"{'  targets in mixed sentences':34s} {t.n_mixed:5d} {t.vader_doc_mixed:10.3f}"
                f" {t.vader_target_mixed:13.3f} {t.model_doc_mixed:13.3f}"
                f" {t.model_target_mixed:16.3f}"
            )
            if "review" in kind_offsets:
                plain = evaluate_targets(domain, vader, model)
                print(
                    f"{'  listener without the kind':34s} {plain.n:5d} {'':10s} {'':13s}"
                    f" {plain.model_doc:13.3f} {plain.model_target:16.3f}"
                )
        print(
            "doc = every target gets its sentence's label; target = the clause around the target"
            " (the sentence's label when the clause is neutral); mixed = sentences whose aspect"
            " terms do not all share one polarity"
        )

    if "brands" in sections:
        print()
        print_brand_challenge(None if args.artefact is None else ArtefactScorer(model))
    if "languages" in sections:
        print()
        print_languages(vader)
    if timings["listener"][1]:
        print()
        for key, (secs, n) in timings.items():
            print(f"speed {key:9s} {n / secs:8.0f} texts/s (one process, {n} texts)")

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
