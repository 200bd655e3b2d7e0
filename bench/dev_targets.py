"""Per-target (per-brand) sentiment on aspect-level development data: compare methods.

    OMP_NUM_THREADS=1 python bench/dev_targets.py --train-dev-model DIR   # once (~minutes)
    OMP_NUM_THREADS=1 python bench/dev_targets.py --dev-model DIR

Development data (licence-clean, never evaluation sets): the NewsMTSC training file
(sentiment toward a named person, with the person's span) and the FinEntity training fold
(entity-level sentiment in financial news paragraphs), through ``sentiment_data``.

The shipped model was trained on the sentences of both whose targets all agree, so its
whole-sentence scores are too good there. ``--train-dev-model DIR`` trains a *development
model* with the shipped settings (``train_sentiment.ENGLISH_*``) on the same data minus
NewsMTSC and FinEntity, and ``--dev-model DIR`` scores every target with it; the shipped
model is also reported, on the targets of sentences it never trained on (the "mixed"
sentences, whose targets disagree).

Prints, per method and set: accuracy and macro-F1 over the targets. SemEval-2014 (the
evaluation set of ``bench/eval_sentiment.py``) is never read here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment_data as sd

from listener.models.sentiment import (
    LABELS,
    SentimentModel,
    clause_span,
    sentence_span,
    target_clause_span,
    without_target,
)

NEG, NEU, POS = range(3)
Span = tuple[int, int]


# -- units of text around a target ------------------------------------------------------
#
# ``clause_around`` (the shipped clause until this script), ``target_clause`` ("+commas":
# also cut at commas, colons, "and", "or") and ``sentence_around`` live in
# listener.models.sentiment (``*_span``: as offsets); ``score_targets`` uses the method
# chosen here.


def window(k: int) -> Callable[[str, int, int], str]:
    """``k`` words each side of the target (white-space words, across punctuation)."""

    def around(text: str, start: int, end: int) -> str:
        left = text[:start].split()[-k:]
        right = text[end:].split()[:k]
        return " ".join([*left, text[start:end], *right])

    return around


SPANS: dict[str, Callable[[str, int, int], tuple[int, int]]] = {
    "whole": lambda text, start, end: (0, len(text)),
    "sentence": sentence_span,
    "clause": clause_span,
    "clause+commas": target_clause_span,
}
WINDOWS = {"window5": window(5), "window8": window(8)}


# -- scoring ----------------------------------------------------------------------------


class Cache:
    """Class probabilities per distinct text, scored in batches."""

    def __init__(self, model: SentimentModel) -> None:
        self.model = model
        self.known: dict[str, np.ndarray] = {}

    def need(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.known]
        for i in range(0, len(todo), 2048):
            chunk = todo[i : i + 2048]
            for t, p in zip(chunk, self.model.predict_proba(chunk), strict=True):
                self.known[t] = p

    def __call__(self, text: str) -> np.ndarray:
        return self.known[text]


Target = tuple[str, int, int, str]  # text, start, end, gold label


def units(targets: Sequence[Target], unit: str, placeholder: str | None) -> list[str]:
    """The text scored for each target: a key of ``SPANS`` or ``WINDOWS``.

    With a ``placeholder``, the unit is found with the target in place, then the target's
    words are replaced by it ("" deletes them, as ``score_targets(mask=True)`` does).
    """
    out = []
    for text, start, end, _ in targets:
        if unit in WINDOWS:
            out.append(WINDOWS[unit](text, start, end))
            continue
        lo, hi = SPANS[unit](text, start, end)
        if placeholder is None:
            out.append(text[lo:hi])
        elif placeholder == "":
            out.append(without_target(text, (lo, hi), start, end))
        else:
            out.append(text[lo:start] + placeholder + text[end:hi])
    return out


Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (clause P, fallback P) -> labels


def rule_fallback(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """The clause's label; the fallback's when the clause is neutral (the shipped rule)."""
    c, s = pc.argmax(1), ps.argmax(1)
    return np.where(c == NEU, s, c)


def rule_mix(w: float) -> Rule:
    def rule(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
        return np.asarray((w * pc + (1 - w) * ps).argmax(1))

    return rule


def rule_confident(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Whichever of the two is more confident (higher top probability)."""
    use_c = pc.max(1) >= ps.max(1)
    return np.where(use_c, pc.argmax(1), ps.argmax(1))


def rule_polar_fallback(margin: float) -> Rule:
    """The shipped rule, then a neutral answer whose polar runner-up is within ``margin``
    of neutral (in the clause's or the fallback's probabilities) takes that polarity."""

    def rule(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
        out = rule_fallback(pc, ps)
        p = (pc + ps) / 2
        polar = np.where(p[:, POS] >= p[:, NEG], POS, NEG)
        close = p[:, NEU] - np.maximum(p[:, POS], p[:, NEG]) < margin
        return np.where((out == NEU) & close, polar, out)

    return rule


def rule_clause_only(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
    return np.asarray(pc.argmax(1))


def rule_fallback_only(pc: np.ndarray, ps: np.ndarray) -> np.ndarray:
    return np.asarray(ps.argmax(1))


def macro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    scores = []
    for k in range(3):
        tp = int(((gold == k) & (pred == k)).sum())
        fp = int(((gold != k) & (pred == k)).sum())
        fn = int(((gold == k) & (pred != k)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


# (name, clause unit, fallback unit, placeholder, rule)
Method = tuple[str, str, str, str | None, Rule]

METHODS: list[Method] = [
    ("whole text", "clause", "whole", None, rule_fallback_only),
    ("sentence", "clause", "sentence", None, rule_fallback_only),
    ("SHIPPED: clause, neutral -> whole text", "clause", "whole", None, rule_fallback),
    ("window5, neutral -> sentence", "window5", "sentence", None, rule_fallback),
    ("window8, neutral -> sentence", "window8", "sentence", None, rule_fallback),
    ("more confident of clause/sentence", "clause", "sentence", None, rule_confident),
    (
        "clause, neutral -> sentence, polar if within 0.1",
        "clause",
        "sentence",
        None,
        rule_polar_fallback(0.1),
    ),
]
for _unit in ("clause", "clause+commas"):
    for _ph, _ph_name in ((None, ""), ("it", "masked 'it': "), ("", "masked '': ")):
        METHODS.append(
            (f"{_ph_name}{_unit}, neutral -> sentence", _unit, "sentence", _ph, rule_fallback)
        )
        for _w in (0.5, 0.6, 0.75, 0.9, 1.0):
            METHODS.append(
                (
                    f"{_ph_name}{_unit} x {_w} + sentence x {1 - _w:.2g}",
                    _unit,
                    "sentence",
                    _ph,
                    rule_mix(_w),
                )
            )


SCORE_TARGETS = {
    False: "listener's score_targets now",
    True: "listener's score_targets now, mask=True",
}


def evaluate(cache: Cache, targets: Sequence[Target]) -> dict[str, tuple[float, float]]:
    gold = np.array([LABELS.index(t[3]) for t in targets])
    texts: dict[tuple[str, str | None], list[str]] = {}
    for _, cu, fu, ph, _ in METHODS:
        for unit in (cu, fu):
            if (unit, ph) not in texts:
                texts[(unit, ph)] = units(targets, unit, ph)
                cache.need(texts[(unit, ph)])
    out = {}
    for mask in (False, True):
        pred = np.array(
            [  # one call per target: slower, but exactly the API
                LABELS.index(cache.model.score_targets(text, [(start, end)], mask=mask)[0][0])
                for text, start, end, _ in targets
            ]
        )
        out[SCORE_TARGETS[mask]] = (float((pred == gold).mean()), macro_f1(gold, pred))
    for name, cu, fu, ph, rule in METHODS:
        pc = np.array([cache(t) for t in texts[(cu, ph)]])
        ps = np.array([cache(t) for t in texts[(fu, ph)]])
        pred = rule(pc, ps)
        out[name] = (float((pred == gold).mean()), macro_f1(gold, pred))
    return out


def dev_sets(shipped: bool) -> list[tuple[str, list[Target]]]:
    """(name, targets). With ``shipped``, only texts the shipped model never trained on."""
    news = sd.load_newsmtsc_targets("train")
    fin = [t for t in sd.load_finentity_targets() if t.split == "train"]

    def flat(texts: Sequence[sd.TargetText]) -> list[Target]:
        return [(t.text, a[0], a[1], a[3]) for t in texts for a in t.targets]

    if shipped:
        return [
            ("NewsMTSC train, mixed sentences", flat([t for t in news if not t.agree])),
            ("FinEntity train fold, mixed paragraphs", flat([t for t in fin if not t.agree])),
        ]
    return [("NewsMTSC train", flat(news)), ("FinEntity train fold", flat(fin))]


def pipeline_labels(
    model: SentimentModel, texts: Sequence[sd.TargetText], mask_brands: bool
) -> list[str]:
    """Each target's label from the enrichment pipeline's per-brand sentiment.

    Every target is a brand of its own, matched exactly at its span (the brand matcher is
    not run); the text is tokenized by the pipeline's tokenizer and read as English.
    """
    import spacy
    from eval_sentiment import ArtefactScorer

    from listener.enrichment import brands, language, sentiment
    from listener.enrichment.pipeline import resolve_model, split_glued_words

    nlp = spacy.load(
        resolve_model(),
        exclude=["tok2vec", "tagger", "parser", "ner", "attribute_ruler", "lemmatizer", "senter"],
    )
    split_glued_words(nlp)
    for module in (language, brands, sentiment):
        module.register_extensions()
    component = sentiment.SentimentComponent(
        "sentiment",
        ArtefactScorer(model),
        mask_brands=mask_brands,  # type: ignore[arg-type]
    )
    docs = []
    for t in texts:
        doc = nlp.make_doc(t.text)
        doc._.set(language.LANGUAGE_EXTENSION, "en")
        found = []
        for i, (start, end, mention, _) in enumerate(t.targets):
            span = doc.char_span(start, end, alignment_mode="expand")
            assert span is not None, (t.text, start, end)
            match = {
                "start": start,
                "end": end,
                "token_start": span.start,
                "token_end": span.end,
                "keyword": mention,
            }
            found.append({"brand": f"target {i}", "matches": [match]})
        doc._.set(brands.BRANDS_EXTENSION, found)
        docs.append(doc)
    out = []
    for doc in component.pipe(docs):
        out.extend(b["sentiment"]["label"] for b in doc._.get(brands.BRANDS_EXTENSION))
    return out


def print_pipeline(title: str, model: SentimentModel, shipped: bool) -> None:
    news = sd.load_newsmtsc_targets("train")
    fin = [t for t in sd.load_finentity_targets() if t.split == "train"]
    if shipped:
        news = [t for t in news if not t.agree]
        fin = [t for t in fin if not t.agree]
    print(f"\n{title}: the enrichment pipeline's per-brand sentiment, accuracy / macro-F1")
    for name, texts in (("NewsMTSC train", news), ("FinEntity train fold", fin)):
        gold = np.array([LABELS.index(a[3]) for t in texts for a in t.targets])
        cells = []
        for mask_brands in (False, True):
            pred = np.array([LABELS.index(x) for x in pipeline_labels(model, texts, mask_brands)])
            cells.append(
                f"mask_brands={mask_brands}: {(pred == gold).mean():.3f} / "
                f"{macro_f1(gold, pred):.3f}"
            )
        print(f"  {name:22s} ({len(gold):5d})  " + "   ".join(cells))


def _not_news_targets(row: tuple[str, str, str, float | None]) -> bool:
    return row[2] not in ("newsmtsc", "finentity")


def train_dev_model(
    out: Path,
    keep: Callable[[tuple[str, str, str, float | None]], bool] = _not_news_targets,
    title: str = "development model (no NewsMTSC, no FinEntity)",
) -> SentimentModel:
    """The shipped model's settings and data, minus NewsMTSC and FinEntity.

    ``keep`` chooses the training rows ``(text, label, set, rating)`` instead (e.g.
    ``bench/dev_brand_risk.py`` leaves out the sets its development sentences come from).
    """
    import train_sentiment as ts

    data = [row for row in ts.training_examples(("train", "dev"), with_dev=True) if keep(row)]
    data += ts.lexicon_examples() + ts.risk_term_examples()
    ts.print_sizes(title, data)
    t0 = time.perf_counter()
    model = ts.fit(
        [x[0] for x in data],
        [x[1] for x in data],
        [x[2] for x in data],
        ts.ENGLISH_FEATURES,
        ts.ENGLISH_TRAIN,
        ratings=[x[3] for x in data],
    )
    model.save(str(out))
    print(f"trained in {time.perf_counter() - t0:.0f} s; wrote {out}")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-dev-model", type=Path, metavar="DIR")
    parser.add_argument("--dev-model", type=Path, metavar="DIR")
    parser.add_argument(
        "--pipeline", action="store_true", help="also the enrichment pipeline's per-brand rules"
    )
    args = parser.parse_args(argv)
    if not sd.training_available():
        print(f"SKIP: no training data at {sd.training_root()}")
        return 0
    if args.train_dev_model:
        train_dev_model(args.train_dev_model)
        return 0
    runs: list[tuple[str, SentimentModel, bool]] = [("shipped model", SentimentModel.load(), True)]
    if args.dev_model:
        from eval_sentiment import load_artefact

        runs.insert(0, ("development model", load_artefact(args.dev_model), False))
    for title, model, shipped in runs:
        cache = Cache(model)
        results = [
            (name, evaluate(cache, targets), len(targets)) for name, targets in dev_sets(shipped)
        ]
        print(f"\n{title}: per-target accuracy / macro-F1")
        header = f"{'method':52s}" + "".join(f" {n[:24]:>24s} ({k:5d})" for n, _, k in results)
        print(header + "  mean F1")
        print("-" * (len(header) + 9))
        for name in [*SCORE_TARGETS.values(), *(m[0] for m in METHODS)]:
            row = "".join(f" {r[name][0]:17.3f} / {r[name][1]:.3f}" for _, r, _ in results)
            mean = np.mean([r[name][1] for _, r, _ in results])
            print(f"{name:52s}{row}  {mean:7.3f}")
        if args.pipeline:
            print_pipeline(title, model, shipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
