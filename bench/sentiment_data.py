"""Loaders for the human-labelled sentiment sets in ``shared/fixtures/sentiment_ground_truth``.

Every loader returns plain records so the training script, the evaluation script and the
tests read the files the same way. Labels are ``negative`` / ``neutral`` / ``positive``
(SST-2 has only the two polar classes).

The VADER ICWSM-14 sets carry a mean human rating on -4..+4. Raters answer on an integer
scale, so a mean that rounds to 0 (``|mean| < 0.5``) is mapped to *neutral*; see
``VADER_NEUTRAL_BAND``.

The only sets the shipped model is trained on are the two VADER sets (MIT). They are split
deterministically, by a hash of the normalised text (so duplicate snippets always land in
the same split), into a test fold (20 %) that is never used for training or tuning, a dev
fold (10 %) used for model selection, and the training folds.

The VADER movie snippets and SST-2 come from the same Rotten Tomatoes sentences (833 of the
872 SST-2 dev sentences share an 8-word run with a snippet), so every snippet that overlaps
SST-2 is forced into the test fold: SST-2 then stays a set the model never trained on.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Label = Literal["negative", "neutral", "positive"]
Split = Literal["train", "dev", "test"]

#: Mean human ratings with an absolute value below this are "neutral": the rating rounds to
#: 0 on the raters' integer -4..+4 scale.
VADER_NEUTRAL_BAND = 0.5

_HERE = Path(__file__).resolve().parent


def fixtures_root() -> Path:
    """Where the shared fixtures live: ``$LISTENER_FIXTURES`` or ``../shared/fixtures``."""
    env = os.environ.get("LISTENER_FIXTURES")
    if env:
        return Path(env)
    return _HERE.parent.parent / "shared" / "fixtures"


def sentiment_root() -> Path:
    return fixtures_root() / "sentiment_ground_truth"


def fixtures_available() -> bool:
    return sentiment_root().is_dir()


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text. ``rating`` is the human mean (-4..+4) for the VADER sets."""

    text: str
    label: Label
    rating: float | None = None
    split: Split = "test"


@dataclass(frozen=True, slots=True)
class AspectSentence:
    """A SemEval-2014 review sentence with its aspect terms ``(start, end, term, label)``."""

    text: str
    aspects: tuple[tuple[int, int, str, Label], ...]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _normalise_key(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def assign_split(text: str, salt: str = "listener-sentiment-v1") -> Split:
    """Deterministic 70/10/20 train/dev/test split keyed on the normalised text."""
    digest = hashlib.sha1(f"{salt}:{_normalise_key(text)}".encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 10
    if bucket < 2:
        return "test"
    if bucket == 2:
        return "dev"
    return "train"


def _word_ngrams(text: str, n: int = 8) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@functools.cache
def _sst2_ngrams() -> frozenset[str]:
    path = sentiment_root() / "sst2" / "sst2_glue_dev_872.tsv"
    if not path.is_file():
        return frozenset()
    grams: set[str] = set()
    for line in _read_text(path).splitlines()[1:]:
        grams |= _word_ngrams(line.rpartition("\t")[0])
    return frozenset(grams)


def rating_to_label(rating: float, band: float = VADER_NEUTRAL_BAND) -> Label:
    if rating <= -band:
        return "negative"
    if rating >= band:
        return "positive"
    return "neutral"


def _vader_file(name: str, guard: frozenset[str] = frozenset()) -> Iterator[Example]:
    path = sentiment_root() / "vader_hutto_icwsm2014" / name
    for line in _read_text(path).splitlines():
        parts = line.split("\t", 2)
        if len(parts) < 3 or not parts[2].strip():
            continue
        rating = float(parts[1])
        text = parts[2].strip()
        split = "test" if guard and _word_ngrams(text) & guard else assign_split(text)
        yield Example(text, rating_to_label(rating), rating, split)


def load_vader_tweets() -> list[Example]:
    """VADER ICWSM-14 tweets (4,200; MIT)."""
    return list(_vader_file("tweets_GroundTruth.txt"))


def load_vader_movies() -> list[Example]:
    """VADER ICWSM-14 movie-review snippets (10,605; MIT; text from Pang & Lee 2004)."""
    return list(_vader_file("movieReviewSnippets_GroundTruth.txt", _sst2_ngrams()))


_TWEETEVAL_LABELS: dict[str, Label] = {"0": "negative", "1": "neutral", "2": "positive"}


def load_tweeteval(part: Literal["test", "val"] = "test") -> list[Example]:
    """TweetEval sentiment (SemEval-2017 Task 4A). Evaluation only: no clear licence."""
    root = sentiment_root() / "tweeteval_semeval2017"
    texts = _read_text(root / f"{part}_text.txt").splitlines()
    labels = _read_text(root / f"{part}_labels.txt").splitlines()
    if len(texts) != len(labels):
        raise ValueError(f"tweeteval {part}: {len(texts)} texts but {len(labels)} labels")
    return [
        Example(t.strip(), _TWEETEVAL_LABELS[lab.strip()])
        for t, lab in zip(texts, labels, strict=True)
        if t.strip()
    ]


def load_sst2() -> list[Example]:
    """SST-2 GLUE dev (872 sentences, binary). Evaluation only: no explicit licence."""
    path = sentiment_root() / "sst2" / "sst2_glue_dev_872.tsv"
    out: list[Example] = []
    for i, line in enumerate(_read_text(path).splitlines()):
        if i == 0 or not line.strip():
            continue
        text, _, lab = line.rpartition("\t")
        out.append(Example(text.strip(), "positive" if lab.strip() == "1" else "negative"))
    return out


def load_fpb(agreement: Literal["AllAgree", "75Agree"] = "AllAgree") -> list[Example]:
    """Financial PhraseBank v1.0. CC BY-NC-SA 3.0: evaluation only, never shipped."""
    path = sentiment_root() / "financial_phrasebank" / f"Sentences_{agreement}.txt"
    out: list[Example] = []
    for line in _read_text(path).splitlines():
        text, sep, lab = line.rpartition("@")
        lab = lab.strip()
        if not sep or lab not in ("negative", "neutral", "positive"):
            continue
        out.append(Example(text.strip(), lab))  # type: ignore[arg-type]
    return out


def load_semeval_aspects(domain: Literal["laptops", "restaurants"]) -> list[AspectSentence]:
    """SemEval-2014 Task 4 test gold: sentences with per-aspect-term polarity.

    Aspect terms labelled ``conflict`` are dropped (they are neither of the three classes).
    """
    name = "Laptops_Test_Gold.xml" if domain == "laptops" else "Restaurants_Test_Gold.xml"
    tree = ET.parse(sentiment_root() / "semeval2014_absa" / name)
    out: list[AspectSentence] = []
    for sent in tree.getroot().iter("sentence"):
        text_el = sent.find("text")
        if text_el is None or text_el.text is None:
            continue
        aspects: list[tuple[int, int, str, Label]] = []
        for term in sent.iter("aspectTerm"):
            pol = term.get("polarity", "")
            if pol not in ("negative", "neutral", "positive"):
                continue
            start, end = int(term.get("from", "0")), int(term.get("to", "0"))
            aspects.append((start, end, term.get("term", ""), pol))  # type: ignore[arg-type]
        out.append(AspectSentence(text_el.text, tuple(aspects)))
    return out


def semeval_sentences(domain: Literal["laptops", "restaurants"]) -> list[Example]:
    """Sentence-level set from SemEval-2014: sentences whose aspect terms all agree.

    Sentences without aspect terms, or with mixed polarities, are left out: there is no
    single sentence label for them.
    """
    out: list[Example] = []
    for s in load_semeval_aspects(domain):
        labels = {a[3] for a in s.aspects}
        if len(labels) == 1:
            out.append(Example(s.text, labels.pop()))
    return out


# --------------------------------------------------------------------------------------
# Licence-clean training sets (../shared/training/sentiment; see its README.md)
# --------------------------------------------------------------------------------------
#
# Each loader returns Examples with the set's own held-back split marked "test": the
# official test/validation/devtest files where the set has them, else a fixed 20 % hash
# fold. Training never sees a "test" example.


def training_root() -> Path:
    """``$LISTENER_TRAINING_DATA`` or ``../shared/training/sentiment`` beside the repository."""
    env = os.environ.get("LISTENER_TRAINING_DATA")
    if env:
        return Path(env)
    here = _HERE.parent.parent / "shared" / "training" / "sentiment"
    if here.is_dir():
        return here
    fixtures = fixtures_root().parent / "training" / "sentiment"
    return fixtures


def training_available() -> bool:
    return (training_root() / "goemotions").is_dir()


def _hash_split(text: str, salt: str) -> Split:
    """80/20 train/test by a hash of the normalised text (for sets without a test file)."""
    digest = hashlib.sha1(f"{salt}:{_normalise_key(text)}".encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") % 5 == 0 else "train"


_GOEMO_GROUP = {"1": "negative", "2": "neutral", "3": "positive"}


def load_goemotions(part: Literal["train", "dev", "test"]) -> list[Example]:
    """GoEmotions (Demszky et al. 2020; CC BY 4.0), the authors' sentiment grouping.

    A row is kept when its labels, ``ambiguous`` removed, are exactly one of
    positive/negative/neutral (the README's rule). ``dev`` is marked "dev", ``test`` "test".
    """
    path = training_root() / "goemotions" / "group" / f"{part}.tsv"
    out: list[Example] = []
    split: Split = "train" if part == "train" else part
    for line in _read_text(path).splitlines():
        cols = line.split("\t")
        if len(cols) < 2:
            continue
        labels = {_GOEMO_GROUP[x] for x in cols[1].split(",") if x in _GOEMO_GROUP}
        if len(labels) == 1:
            out.append(Example(cols[0].strip(), labels.pop(), split=split))  # type: ignore[arg-type]
    return out


_FIN_LABELS: dict[str, Label] = {"0": "negative", "1": "positive", "2": "neutral"}


def load_fin_tweets(part: Literal["train", "valid"]) -> list[Example]:
    """Twitter Financial News Sentiment (zeroshot; MIT): bearish/bullish/neutral.

    The official validation split is the held-back "test" split here.
    """
    import csv
    import io

    path = training_root() / "twitter_financial_news_sentiment" / f"sent_{part}.csv"
    split: Split = "train" if part == "train" else "test"
    rows = csv.DictReader(io.StringIO(_read_text(path)))
    return [
        Example(r["text"].strip(), _FIN_LABELS[r["label"].strip()], split=split)
        for r in rows
        if r["text"].strip() and r["label"].strip() in _FIN_LABELS
    ]


_NEWSMTSC = {2.0: "negative", 4.0: "neutral", 6.0: "positive"}


def load_newsmtsc(part: Literal["train", "devtest_mt", "devtest_rw"]) -> list[Example]:
    """NewsMTSC (Hamborg & Donnay 2021; MIT): sentences whose targets all agree.

    The devtest files are the held-back "test" split; their sentences are removed from
    train (a few appear in both).
    """
    import json

    root = training_root() / "newsmtsc"

    def read(name: str) -> list[tuple[str, Label]]:
        out: list[tuple[str, Label]] = []
        for line in _read_text(root / f"{name}.jsonl").splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            pols = {_NEWSMTSC.get(float(t["polarity"])) for t in doc["targets"]}
            if len(pols) == 1 and None not in pols:
                out.append((doc["sentence_normalized"].strip(), pols.pop()))  # type: ignore[arg-type]
        return out

    if part != "train":
        return [Example(t, y, split="test") for t, y in read(part)]
    held = {_normalise_key(t) for name in ("devtest_mt", "devtest_rw") for t, _ in read(name)}
    return [Example(t, y, split="train") for t, y in read("train") if _normalise_key(t) not in held]


def load_finentity() -> list[Example]:
    """FinEntity (Tang et al. 2023; ODC-BY 1.0): paragraphs whose entities all agree.

    No official split: a fixed 20 % hash fold is "test".
    """
    import json

    doc = json.loads(_read_text(training_root() / "finentity" / "FinEntity.json"))
    out: list[Example] = []
    for item in doc:
        labels = {a["label"].lower() for a in item["annotations"]}
        if len(labels) == 1:
            text = re.sub(r"\s*\[n[A-Z0-9]+\]", "", item["content"]).strip()
            out.append(Example(text, labels.pop(), split=_hash_split(text, "finentity")))
    return out


@dataclass(frozen=True, slots=True)
class TargetText:
    """A text with labelled targets ``(start, end, mention, label)`` (per-target sentiment).

    ``split`` is the set's split of the whole text; ``agree`` says whether every target has
    the same label, i.e. whether the sentence-level loaders (and so the shipped model's
    training data, for a "train" text) hold the text.
    """

    text: str
    targets: tuple[tuple[int, int, str, Label], ...]
    split: Split

    @property
    def agree(self) -> bool:
        return len({t[3] for t in self.targets}) == 1


def load_newsmtsc_targets(part: Literal["train", "devtest_mt", "devtest_rw"]) -> list[TargetText]:
    """NewsMTSC sentences with every target person's span and polarity (Hamborg & Donnay 2021).

    Train sentences that also appear in a devtest file are left out, as in ``load_newsmtsc``.
    """
    import json

    root = training_root() / "newsmtsc"
    held: set[str] = set()
    if part == "train":
        for name in ("devtest_mt", "devtest_rw"):
            for line in _read_text(root / f"{name}.jsonl").splitlines():
                if line.strip():
                    held.add(_normalise_key(json.loads(line)["sentence_normalized"].strip()))
    split: Split = "train" if part == "train" else "test"
    out: list[TargetText] = []
    for line in _read_text(root / f"{part}.jsonl").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        text = doc["sentence_normalized"]
        if _normalise_key(text.strip()) in held:
            continue
        targets = tuple(
            (int(t["from"]), int(t["to"]), t["mention"], _NEWSMTSC[float(t["polarity"])])
            for t in doc["targets"]
            if float(t["polarity"]) in _NEWSMTSC
        )
        if targets:
            out.append(TargetText(text, targets, split))  # type: ignore[arg-type]
    return out


def load_finentity_targets() -> list[TargetText]:
    """FinEntity paragraphs with every entity's span and label (Tang et al. 2023).

    Reuters story codes are removed as in ``load_finentity`` (spans shifted to match), and
    the split is the same 20 % hash fold of the cleaned text ("test") as there.
    """
    import json

    doc = json.loads(_read_text(training_root() / "finentity" / "FinEntity.json"))
    out: list[TargetText] = []
    for item in doc:
        raw: str = item["content"]
        codes = list(re.finditer(r"\s*\[n[A-Z0-9]+\]", raw))
        text = re.sub(r"\s*\[n[A-Z0-9]+\]", "", raw)
        lead = len(text) - len(text.lstrip())
        text = text.strip()

        def shift(pos: int, codes: list[re.Match[str]] = codes, lead: int = lead) -> int:
            return pos - sum(len(m.group()) for m in codes if m.end() <= pos) - lead

        targets = []
        for a in item["annotations"]:
            start = raw.find(a["value"], max(int(a["start"]) - 2, 0))
            if start < 0:
                continue
            end = start + len(a["value"])
            label = a["label"].lower()
            targets.append((shift(start), shift(end), a["value"], label))
        if targets:
            out.append(TargetText(text, tuple(targets), _hash_split(text, "finentity")))
    return out


_XED_POS = {2, 5, 8}
_XED_NEG = {1, 3, 4, 6}


def _xed_label(ids: str) -> Label | None:
    got = {int(x) for x in re.findall(r"\d+", ids)}
    pos, neg = bool(got & _XED_POS), bool(got & _XED_NEG)
    if pos and not neg:
        return "positive"
    if neg and not pos:
        return "negative"
    return None


def load_xed_en() -> list[Example]:
    """XED English (Öhman et al. 2020; CC BY 4.0): emotions mapped to pos/neg, plus neutral lines.

    No official split: a fixed 20 % hash fold is "test".
    """
    root = training_root() / "xed_en"
    out: list[Example] = []
    for line in _read_text(root / "en-annotated.tsv").splitlines():
        text, _, ids = line.rpartition("\t")
        label = _xed_label(ids)
        if text.strip() and label is not None:
            out.append(Example(text.strip(), label, split=_hash_split(text, "xed")))
    seen: set[str] = set()
    for line in _read_text(root / "neu_en.txt").splitlines():
        _, _, text = line.partition("\t")
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            out.append(Example(text, "neutral", split=_hash_split(text, "xed")))
    return out


XED_LANGUAGES = ("de", "es", "fr", "it", "nl", "pt")


def load_xed_projection(lang: str) -> list[Example]:
    """XED projections (CC BY 4.0) for ``lang``: positive/negative only (no neutral lines).

    No official split: a fixed 20 % hash fold is "test".
    """
    path = training_root() / "xed_projections" / f"{lang}-projections.tsv"
    out: list[Example] = []
    seen: set[str] = set()
    for line in _read_text(path).splitlines():
        text, _, ids = line.rpartition("\t")
        text = text.strip()
        label = _xed_label(ids)
        if text and label is not None and text not in seen:
            seen.add(text)
            out.append(Example(text, label, split=_hash_split(text, f"xed-{lang}")))
    return out


def load_afinn() -> dict[str, int]:
    """AFINN-en-165 (Finn Årup Nielsen; Apache-2.0): word or phrase -> valence -5..5."""
    path = training_root() / "lexicons" / "afinn" / "AFINN-en-165.txt"
    out: dict[str, int] = {}
    for line in _read_text(path).splitlines():
        word, _, value = line.rpartition("\t")
        if word:
            out[word.strip().lower()] = int(value)
    return out


def pattern_xml_path() -> Path:
    return training_root() / "lexicons" / "pattern_textblob" / "en-sentiment.xml"


# --------------------------------------------------------------------------------------
# The brand-risk challenge set (tests/data/brand_risk_challenge.tsv)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrandExample:
    """A short real sentence, the brand it is about, and the brand's sentiment (read by hand)."""

    text: str
    brand: str
    label: Label
    category: str
    source: str


def challenge_path() -> Path:
    return _HERE.parent / "tests" / "data" / "brand_risk_challenge.tsv"


def dev_path() -> Path:
    """The brand-risk development set (training texts; see bench/dev_brand_risk.py)."""
    return _HERE.parent / "tests" / "data" / "brand_risk_dev.tsv"


def load_brand_challenge() -> list[BrandExample]:
    """The challenge set; empty when the file is absent."""
    return load_brand_examples(challenge_path())


def load_brand_examples(path: Path) -> list[BrandExample]:
    """A brand-risk file (label, brand, category, source, text); empty when it is absent."""
    if not path.is_file():
        return []
    out: list[BrandExample] = []
    for line in _read_text(path).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "label":
            continue
        label, brand, category, source, text = cols[:5]
        out.append(BrandExample(text, brand, label, category, source))  # type: ignore[arg-type]
    return out
