"""Named entities on social-media text: precision, recall and F1 by type, in one run.

    OMP_NUM_THREADS=1 python bench/eval_entities.py [--limit N]

Runs listener's own enrichment pipeline (``listener.enrichment.pipeline``: the
small English model's NER behind the language gate) over the human-labelled NER
sets in ../shared/fixtures/entity_ground_truth, and prints per set and type the
exact-span precision, recall and F1, twice: for the pipeline as shipped (NER only
on documents detected as English or undetermined, then ``listener_entity_cleanup``)
and for the model's NER alone on every document (no language gate, no cleanup).

Then, on the social sets whose labels include companies and products, it checks
the claim that brand mentions the model misses are still caught by the brand
matcher: every labelled company/product name becomes a keyword, and the share of
its labelled occurrences found by NER (as ORG or PRODUCT) and by the matcher is
printed, split into lowercase, #hashtag, @handle and other spellings.

Type mapping (gold → common type; spaCy's OntoNotes labels → common type):

    PER  ← person, PER, musicartist is NOT mapped (bands and solo artists mix)
         ← spaCy PERSON
    LOC  ← geo-loc, facility, location, LOC
         ← spaCy GPE, LOC, FAC
    ORG  ← company, sportsteam, corporation, group, ORG
         ← spaCy ORG
    PRODUCT ← product                               ← spaCy PRODUCT
    CREATIVE ← movie, tvshow, creative-work          ← spaCy WORK_OF_ART

Gold spans of unmapped types (other, musicartist, MISC) are "don't care": a
prediction overlapping one is neither a true nor a false positive. spaCy labels
with no common type (DATE, CARDINAL, NORP, EVENT, ...) are not scored. A
prediction counts when its start, end and common type equal a gold span's.
Types a set does not annotate are not scored on that set.

Tokens are joined with single spaces, so the model sees each tweet as its
tokens (the sets ship tokens, not the original strings). Skips cleanly (exit
code 0) when the shared fixtures are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
GROUND_TRUTH = (
    Path(os.environ["LISTENER_FIXTURES"])
    if os.environ.get("LISTENER_FIXTURES")
    else ROOT.parent / "shared" / "fixtures"
) / "entity_ground_truth"

GOLD_TYPES = {
    "person": "PER",
    "per": "PER",
    "geo-loc": "LOC",
    "facility": "LOC",
    "location": "LOC",
    "loc": "LOC",
    "company": "ORG",
    "sportsteam": "ORG",
    "corporation": "ORG",
    "group": "ORG",
    "org": "ORG",
    "product": "PRODUCT",
    "movie": "CREATIVE",
    "tvshow": "CREATIVE",
    "creative-work": "CREATIVE",
}
SPACY_TYPES = {
    "PERSON": "PER",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "ORG": "ORG",
    "PRODUCT": "PRODUCT",
    "WORK_OF_ART": "CREATIVE",
}
TYPES = ("PER", "LOC", "ORG", "PRODUCT", "CREATIVE")

#: (name shown, file, social?, gold labels that are brands: company/product names)
SETS = (
    ("WNUT-16 test (tweets)", "wnut16_twitter_ner/test.conll", True),
    ("WNUT-17 dev (social)", "wnut17/emerging.dev.conll", True),
    ("Ritter 2011 (tweets)", "ritter2011_twitter_ner/ner.txt", True),
    ("Broad Twitter Corpus E", "broad_twitter_corpus/e.conll", True),
    ("Tweebank-NER dev", "tweebank_ner/dev.bio", True),
    ("CoNLL-2003 test, 50 docs (news)", "conll2003/eng.testb.first50docs.conll", False),
)
BRAND_LABELS = frozenset({"company", "product", "corporation"})


@dataclass(frozen=True, slots=True)
class GoldSpan:
    start: int  # character offsets into Sentence.text
    end: int
    label: str  # the set's own label, lower-cased


@dataclass(slots=True)
class Sentence:
    text: str
    spans: list[GoldSpan] = field(default_factory=list)


def read_bio(path: Path) -> Iterator[Sentence]:
    """Token-per-line files: the token first, the BIO (or IOB1) tag last; blank line ends one."""
    tokens: list[tuple[str, str]] = []
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        parts = raw.split()
        if parts and parts[0] == "-DOCSTART-":
            continue
        if len(parts) >= 2:
            tokens.append((parts[0], parts[-1]))
            continue
        if tokens:
            yield _sentence(tokens)
            tokens = []


def _sentence(tokens: list[tuple[str, str]]) -> Sentence:
    text_parts: list[str] = []
    spans: list[GoldSpan] = []
    offset = 0
    open_label: str | None = None
    open_start = 0
    open_end = 0
    for token, tag in tokens:
        start = offset
        end = start + len(token)
        text_parts.append(token)
        offset = end + 1
        prefix, _, label = tag.partition("-")
        label = label.lower()
        continues = prefix == "I" and open_label == label
        if open_label is not None and not continues:
            spans.append(GoldSpan(open_start, open_end, open_label))
            open_label = None
        if prefix in ("B", "I") and label:
            if open_label is None:
                open_label, open_start = label, start
            open_end = end
    if open_label is not None:
        spans.append(GoldSpan(open_start, open_end, open_label))
    return Sentence(" ".join(text_parts), spans)


@dataclass(slots=True)
class Tally:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def add(
        self, gold: Iterable[GoldSpan], predicted: Iterable[tuple[int, int, str]], scored: set[str]
    ) -> None:
        gold_list = list(gold)
        wanted = {(g.start, g.end, GOLD_TYPES[g.label]) for g in gold_list if g.label in GOLD_TYPES}
        ignored = [(g.start, g.end) for g in gold_list if g.label not in GOLD_TYPES]
        found = set()
        for start, end, label in predicted:
            if label not in scored:
                continue
            if (start, end, label) in wanted:
                found.add((start, end, label))
            elif not any(start < i_end and i_start < end for i_start, i_end in ignored):
                self.fp[label] += 1
        for item in wanted:
            (self.tp if item in found else self.fn)[item[2]] += 1

    def row(self, label: str | None) -> tuple[int, float, float, float]:
        keys = [label] if label else list(TYPES)
        tp = sum(self.tp[k] for k in keys)
        fp = sum(self.fp[k] for k in keys)
        fn = sum(self.fn[k] for k in keys)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return tp + fn, precision, recall, f1


def spelling(text: str) -> str:
    if text.startswith("#"):
        return "#hashtag"
    if text.startswith("@"):
        return "@handle"
    if text == text.lower():
        return "lowercase"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="sentences per set (0: all)")
    arguments = parser.parse_args()
    if not GROUND_TRUTH.is_dir():
        print(f"skipped: no labelled entity sets at {GROUND_TRUTH}")
        return 0

    import spacy

    from listener.enrichment.pipeline import build_pipeline, resolve_model, split_glued_words

    corpora: list[tuple[str, bool, list[Sentence]]] = []
    for name, relative, social in SETS:
        path = GROUND_TRUTH / relative
        if not path.is_file():
            print(f"  (missing: {path})")
            continue
        sentences = [s for s in read_bio(path) if s.text]
        if arguments.limit:
            sentences = sentences[: arguments.limit]
        corpora.append((name, social, sentences))

    # Brand keywords: every labelled company/product/corporation name in the social sets.
    brand_names = sorted(
        {
            s.text[g.start : g.end].lower().lstrip("#@")
            for _, social, sentences in corpora
            if social
            for s in sentences
            for g in s.spans
            if g.label in BRAND_LABELS
        }
    )
    brands = [{"name": "labelled brands", "keywords": brand_names}]
    # NER is scored with a project whose brand matches nothing: listener makes every brand
    # match an ORG entity, and brands taken from the gold names would score the labels.
    shipped = build_pipeline([{"name": "unrelated", "keywords": ["zzunrelatedbrandzz"]}])
    matcher_only = build_pipeline(brands)
    matcher_only.select_pipes(
        disable=[
            name
            for name in matcher_only.pipe_names
            if name not in ("listener_language", "listener_brands")
        ]
    )
    model_alone = spacy.load(resolve_model())
    split_glued_words(model_alone)
    model_alone.select_pipes(enable=["ner"])
    print(f"model: {resolve_model()}, {len(brand_names)} labelled brand names as keywords")

    prf = f"{'P':>5} {'R':>5} {'F1':>5}"
    header = f"  {'type':<9} {'gold':>5}   {prf}   |  {prf}"
    brand_found: dict[str, Counter[str]] = defaultdict(Counter)
    for name, social, sentences in corpora:
        scored = {GOLD_TYPES[g.label] for s in sentences for g in s.spans if g.label in GOLD_TYPES}
        texts = [s.text for s in sentences]
        started = time.perf_counter()
        shipped_docs = list(shipped.pipe(texts, batch_size=64))
        elapsed = time.perf_counter() - started
        alone_docs = list(model_alone.pipe(texts, batch_size=64))
        matched_docs = list(matcher_only.pipe(texts, batch_size=64)) if social else shipped_docs
        as_shipped, alone = Tally(), Tally()
        english = 0
        for sentence, doc, doc_alone, doc_matched in zip(
            sentences, shipped_docs, alone_docs, matched_docs, strict=True
        ):
            english += doc._.listener_language in ("en", None)
            for tally, d in ((as_shipped, doc), (alone, doc_alone)):
                predicted = [
                    (e.start_char, e.end_char, SPACY_TYPES[e.label_])
                    for e in d.ents
                    if e.label_ in SPACY_TYPES
                ]
                tally.add(sentence.spans, predicted, scored)
            if social:
                ner_spans = {
                    (e.start_char, e.end_char) for e in doc.ents if e.label_ in ("ORG", "PRODUCT")
                }
                matched = {
                    (m["start"], m["end"])
                    for entry in doc_matched._.listener_brands or []
                    for m in entry["matches"]
                }
                for g in sentence.spans:
                    if g.label not in BRAND_LABELS:
                        continue
                    kind = spelling(sentence.text[g.start : g.end])
                    counts = brand_found[kind]
                    counts["gold"] += 1
                    counts["ner"] += any(s <= g.start and g.end <= e for s, e in ner_spans)
                    counts["matcher"] += any(s <= g.start and g.end <= e for s, e in matched)
        print(
            f"\n{name}: {len(sentences)} texts, {english / len(sentences):.1%} English or "
            f"undetermined, {len(sentences) / elapsed:.0f} texts/s through the pipeline"
        )
        print(f"  {'':<9} {'':>5}   {'listener as shipped':<19}|  the model's NER alone")
        print(header)
        for label in [t for t in TYPES if t in scored] + [None]:
            n, p1, r1, f1 = as_shipped.row(label)
            _, p2, r2, f2 = alone.row(label)
            shown = label or "all"
            print(
                f"  {shown:<9} {n:>5}   {p1:5.3f} {r1:5.3f} {f1:5.3f}"
                f"   |  {p2:5.3f} {r2:5.3f} {f2:5.3f}"
            )

    print("\nlabelled company/product names in the social sets: found by NER vs the brand matcher")
    print(f"  {'spelling':<10} {'gold':>5}  {'NER':>6}  {'matcher':>7}")
    total: Counter[str] = Counter()
    for kind in ("other", "lowercase", "#hashtag", "@handle"):
        counts = brand_found.get(kind, Counter())
        total.update(counts)
        if counts["gold"]:
            print(
                f"  {kind:<10} {counts['gold']:>5}  {counts['ner'] / counts['gold']:6.1%}  "
                f"{counts['matcher'] / counts['gold']:7.1%}"
            )
    if total["gold"]:
        print(
            f"  {'all':<10} {total['gold']:>5}  {total['ner'] / total['gold']:6.1%}  "
            f"{total['matcher'] / total['gold']:7.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
