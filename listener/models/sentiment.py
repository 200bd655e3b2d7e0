"""Three-class sentiment model that runs on CPU inside the spaCy pipeline.

A multinomial logistic regression over

* VADER's own scores (compound, pos, neg, neu, the raw sums behind them, the compound in
  buckets), which carry its 7,500-entry human-rated lexicon and its emoji, booster,
  negation and "but" rules, and so generalise to words the training data never saw;
* Pattern's adjective lexicon (polarity and subjectivity, public domain);
* hashed word unigrams/bigrams (negation-marked), which learn the words, slang and
  constructions VADER misjudges.

The weights are trained by ``bench/train_sentiment.py`` and shipped in
``listener/models/sentiment_data/`` (no download at run time); inference is numpy over a
batch. See ``docs/model-card-sentiment.md`` for data, licences, scores and limits.
"""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SentimentLabel = Literal["negative", "neutral", "positive"]
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")

ARTEFACT_PACKAGE = "listener.models"
ARTEFACT_DIR = "sentiment_data"
ARTEFACT_WEIGHTS = "sentiment_weights.npz"
ARTEFACT_CONFIG = "sentiment_config.json"

FloatArray = np.ndarray[Any, np.dtype[np.float32]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

# --------------------------------------------------------------------------------------
# Tokenisation and features
# --------------------------------------------------------------------------------------

_URL = re.compile(r"https?://\S+|www\.\S+|\burl_removed\b", re.IGNORECASE)
_USER = re.compile(r"@\w+")
_NUM = re.compile(r"\d+(?:[.,:]\d+)*%?")
# A signed percentage ("-5%", "+11.7%", "-3 %") in a post or headline is a move of a price
# or a figure: its sign is kept as a token of its own.
_SIGNED_PCT = re.compile("(?<![\\w.%])([-+\u2212])\\s?\\d+(?:[.,]\\d+)?\\s?%")
_ELONG = re.compile(r"(\w)\1{2,}")
_EMOTICON = r"(?:<3+|</3|[:;=8xX][-'o^]?[)(\]\[dDpP/\\|*oO3@$]|[)(\]\[dD/\\|][-'^]?[:;=])"
_EMOJI = r"[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\U0001F000-\U0001F2FF]"
_TOKEN = re.compile(
    rf"(?P<emo>{_EMOTICON})|(?P<emoji>{_EMOJI})|(?P<tag>#\w+)"
    r"|(?P<word>[^\W\d_]+(?:['\u2019][^\W\d_]+)*|<url>|<user>|<num>|<pctup>|<pctdown>)|(?P<punct>[!?]+|[.,;:]+|--+)"
)
_NEGATORS = frozenset(
    """
    not no never nothing nobody none nor neither without cannot cant dont doesnt didnt isnt
    arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt aint don't doesn't
    didn't isn't aren't wasn't weren't won't wouldn't shouldn't couldn't hasn't haven't
    hadn't ain't can't n't
    """.split()  # noqa: SIM905
)
_SCOPE_END = frozenset(["but", "however", "although", "though", "yet", "except"])
_COMPOUND_BINS = np.linspace(-1.0, 1.0, 11)
_COMPOUND_BIN_EDGES = [float(x) for x in _COMPOUND_BINS]
# Function words carry style (long narrative sentences, plot summaries), not sentiment, and
# their training-set correlations do not travel across domains: they get no feature of
# their own. Intensifiers, contrast words and negators are kept on purpose.
_STOP = frozenset(
    """
    a an the this that these those of in on at by for from to with into onto about as and
    or nor if than then there here it its it's itself he him his she her hers they them
    their theirs we us our ours i me my mine you your yours i'm im you're we're they're
    he's she's that's there's is am are was were be been being do does did done have has
    had having will would shall should can could may might must which who whom whose what
    when where why how all each both any some such own same other another s t d ll re ve m
    up out off over under again further once
    """.split()  # noqa: SIM905
)


def normalise(text: str) -> str:
    """Lower-case and replace URLs, user handles and numbers by placeholders."""
    text = html.unescape(text)
    text = _URL.sub(" <url> ", text)
    text = _USER.sub(" <user> ", text)
    text = _SIGNED_PCT.sub(lambda m: " <pctup> " if m.group(1) == "+" else " <pctdown> ", text)
    text = _NUM.sub(" <num> ", text)
    text = _ELONG.sub(r"\1\1", text)
    return text.lower().replace("\u2019", "'")


def tokenize(text: str) -> list[str]:
    """Tokens of the normalised text; words in a negation's scope are prefixed ``not_``."""
    out: list[str] = []
    negated = False
    for m in _TOKEN.finditer(normalise(text)):
        kind = m.lastgroup
        tok = m.group()
        if kind == "punct":
            negated = False
            if tok[0] in "!?":
                out.append(tok[:2])
            continue
        if kind == "word":
            if tok in _SCOPE_END:
                negated = False
                out.append(tok)
                continue
            if tok in _NEGATORS or tok.endswith("n't"):
                negated = True
                out.append("<neg>")
                continue
            out.append("not_" + tok if negated else tok)
            continue
        if kind == "tag":
            out.append(tok)
            out.append("not_" + tok[1:] if negated else tok[1:])
            continue
        out.append(tok)
    return out


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Everything that shapes the feature space; stored beside the weights."""

    hash_bits: int = 18
    word_bigrams: bool = True
    char_ngrams: tuple[int, int] | None = None
    vader: bool = True
    # Length, numbers, links, person: measured to hurt across domains, off by default.
    cues: bool = False
    stopwords: bool = True
    pattern: bool = True
    # AFINN-en-165 word valences (Apache-2.0) and the brand-risk terms (outages, breaches,
    # recalls, lawsuits, layoffs, insider selling, price hikes, ...), counted per category.
    afinn: bool = False
    risk: bool = False

    @property
    def n_hashed(self) -> int:
        return 1 << self.hash_bits

    @property
    def n_dense(self) -> int:
        n = (_N_VADER + len(_COMPOUND_BINS) + 1) if self.vader else 0
        n += _N_PATTERN if self.pattern else 0
        n += _N_AFINN if self.afinn else 0
        n += len(RISK_CATEGORIES) + 1 if self.risk else 0
        return n + (_N_CUES if self.cues else 0)


_N_VADER = 11
_N_PATTERN = 7
_N_CUES = 9
_N_AFINN = 6
PATTERN_LEXICON = "pattern_lexicon.tsv"
AFINN_LEXICON = "afinn_lexicon.tsv"
RISK_TERMS = "brand_risk_terms.tsv"
#: Words that lean bearish or bullish in financial news, learned from the training split
#: of the financial sets by ``bench/train_sentiment.py`` (same format as ``RISK_TERMS``).
NEWS_TERMS = "news_terms.tsv"
RISK_CATEGORIES = (
    "outage",
    "security",
    "safety",
    "legal",
    "workforce",
    "insider",
    "price",
    "market",
    "service",
    "news_negative",
    "news_positive",
)
_RISK_WORD = re.compile(r"<num>|[a-z]+(?:'[a-z]+)*")
_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")
_RISK_GAP = 4


def _artefact_root() -> Any:
    return resources.files(ARTEFACT_PACKAGE).joinpath(ARTEFACT_DIR)


@functools.cache
def load_afinn_lexicon() -> dict[str, float]:
    """AFINN-en-165 (Finn Årup Nielsen, Apache-2.0): single words -> valence -5..5."""
    out: dict[str, float] = {}
    for line in _artefact_root().joinpath(AFINN_LEXICON).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        word, value = line.split("\t")
        out[word] = float(value)
    return out


@functools.cache
def load_risk_terms() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Brand-risk phrases by first word: ``{first: [(category, words), ...]}``."""
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    root = _artefact_root()
    for name in (RISK_TERMS, NEWS_TERMS):
        path = root.joinpath(name)
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            category, phrase = line.split("\t")
            if category not in RISK_CATEGORIES:
                raise ValueError(f"{name}: unknown category {category!r} in {line!r}")
            words = tuple(phrase.split())
            out.setdefault(words[0], []).append((category, words))
    return out


def _match_at(words: Sequence[str], i: int, pattern: tuple[str, ...]) -> int:
    """End index when ``pattern`` matches ``words`` from ``i`` ("*" = up to 4 words), else -1."""
    if not pattern:
        return i
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        for gap in range(_RISK_GAP + 1):
            end = _match_at(words, i + gap, rest)
            if end >= 0:
                return end
        return -1
    if i < len(words) and _same_word(words[i], head):
        return _match_at(words, i + 1, rest)
    return -1


_SUFFIXES = ("s", "es", "d", "ed", "ing")


def _same_word(word: str, term: str) -> bool:
    """``word`` is ``term`` or a regular inflection of it ("probes", "recalled", "crashing")."""
    if word == term:
        return True
    if len(term) < 4 or not word.startswith(term):
        return False
    return word[len(term) :] in _SUFFIXES


def _candidates(
    terms: dict[str, list[tuple[str, tuple[str, ...]]]], word: str
) -> list[tuple[str, tuple[str, ...]]]:
    found = list(terms.get(word, ()))
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            found += terms.get(word[: -len(suffix)], ())
    return found


def risk_hits(text: str) -> list[tuple[str, str]]:
    """``(category, phrase)`` for every brand-risk phrase in ``text`` (see ``RISK_TERMS``)."""
    terms = load_risk_terms()
    # "lay-offs", "price-hike": hyphenated compounds match the closed or spaced form.
    words = _RISK_WORD.findall(_HYPHEN.sub("", normalise(text)))
    hits: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        best = -1
        found: tuple[str, str] | None = None
        for category, pattern in _candidates(terms, words[i]):
            end = _match_at(words, i, pattern)
            if end > best:
                best, found = end, (category, " ".join(pattern))
        if found is not None:
            hits.append(found)
            i = best
        else:
            i += 1
    return hits


@functools.cache
def load_pattern_lexicon() -> dict[str, tuple[float, float]]:
    """Pattern's adjective lexicon (PDDL): word -> (polarity -1..1, subjectivity 0..1)."""
    root = resources.files(ARTEFACT_PACKAGE).joinpath(ARTEFACT_DIR)
    out: dict[str, tuple[float, float]] = {}
    for line in root.joinpath(PATTERN_LEXICON).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        word, pol, subj = line.split("\t")
        out[word] = (float(pol), float(subj))
    return out


_FIRST_PERSON = frozenset(["i", "me", "my", "mine", "we", "us", "our", "im", "i'm", "i've"])
_SECOND_PERSON = frozenset(["you", "your", "yours", "u", "ur", "you're"])


class _Vader(SentimentIntensityAnalyzer):
    """VADER that also reports the raw sums and counts behind its normalised scores."""

    def score_valence(self, sentiments: list[float], text: str) -> dict[str, float]:
        out: dict[str, float] = super().score_valence(sentiments, text)
        pos = [s for s in sentiments if s > 0]
        neg = [s for s in sentiments if s < 0]
        out["pos_sum"] = float(sum(pos))
        out["neg_sum"] = float(sum(neg))
        out["n_pos"] = float(len(pos))
        out["n_neg"] = float(len(neg))
        out["max"] = float(max(sentiments, default=0.0))
        out["min"] = float(min(sentiments, default=0.0))
        return out


class Featurizer:
    """Turns texts into a sparse hashed block (CSR arrays) and a dense block.

    The dense block holds VADER's scores (plus the raw sums behind them), Pattern lexicon
    statistics and, if ``FeatureConfig.cues`` is on, surface cues (first/second person,
    ``!``/``?``, emoticons, numbers, links, length).
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._mask = config.n_hashed - 1
        self._vader = _Vader() if config.vader else None
        self._pattern = load_pattern_lexicon() if config.pattern else {}
        self._afinn = load_afinn_lexicon() if config.afinn else {}

    def hashed_features(self, toks: Sequence[str]) -> list[str]:
        cfg = self.config
        stop = _STOP if cfg.stopwords else frozenset()
        feats = ["w:" + t for t in toks if t not in stop and t != "<neg>"]
        if cfg.word_bigrams:
            padded = ["<s>", *toks, "</s>"]
            feats.extend(
                f"b:{a} {b}"
                for a, b in itertools.pairwise(padded)
                if not ((a in stop or a == "<s>") and (b in stop or b == "</s>"))
            )
        if cfg.char_ngrams is not None:
            lo, hi = cfg.char_ngrams
            for t in toks:
                if t[0] == "<" or not t[-1].isalpha():
                    continue
                w = f"<{t}>"
                for n in range(lo, min(hi, len(w)) + 1):
                    feats.extend("c:" + w[i : i + n] for i in range(len(w) - n + 1))
        return feats

    def _pattern_features(self, toks: Sequence[str]) -> tuple[float, ...]:
        lex = self._pattern
        pols: list[float] = []
        subjs: list[float] = []
        for t in toks:
            negated = t.startswith("not_")
            hit = lex.get(t[4:] if negated else t)
            if hit is None:
                continue
            # Pattern's own rule: a negated adjective flips and halves its polarity.
            pols.append(-0.5 * hit[0] if negated else hit[0])
            subjs.append(hit[1])
        if not pols:
            return (0.0,) * _N_PATTERN
        k = len(pols)
        return (
            1.0,
            sum(pols) / k,
            max(pols),
            min(pols),
            sum(subjs) / k,
            sum(1 for x in subjs if x >= 0.5) / max(len(toks), 1),
            sum(p * q for p, q in zip(pols, subjs, strict=True)) / k,
        )

    def _afinn_features(self, toks: Sequence[str]) -> tuple[float, ...]:
        lex = self._afinn
        vals: list[float] = []
        for t in toks:
            negated = t.startswith("not_")
            hit = lex.get(t[4:] if negated else t)
            if hit is not None:
                vals.append(-0.5 * hit if negated else hit)
        if not vals:
            return (0.0,) * _N_AFINN
        return (
            1.0,
            sum(vals) / len(vals) / 5.0,
            max(vals) / 5.0,
            min(vals) / 5.0,
            math.log1p(sum(1 for v in vals if v > 0)),
            math.log1p(sum(1 for v in vals if v < 0)),
        )

    @staticmethod
    def _risk_features(text: str) -> list[float]:
        row = [0.0] * (len(RISK_CATEGORIES) + 1)
        hits = risk_hits(text)
        for category, _ in hits:
            row[RISK_CATEGORIES.index(category)] += 1.0
        row = [min(x, 2.0) for x in row]
        row[-1] = math.log1p(len(hits))
        return row

    def _vader_features(self, text: str) -> list[float]:
        assert self._vader is not None
        s = self._vader.polarity_scores(text)
        c = s["compound"]
        row = [0.0] * (_N_VADER + len(_COMPOUND_BINS) + 1)
        row[:_N_VADER] = (
            c,
            s["pos"],
            s["neg"],
            s["neu"],
            1.0 if c != 0.0 else 0.0,
            math.log1p(s["pos_sum"]),
            -math.log1p(-s["neg_sum"]),
            min(s["n_pos"], 5.0),
            min(s["n_neg"], 5.0),
            s["max"] / 4.0,
            s["min"] / 4.0,
        )
        row[_N_VADER + bisect.bisect_left(_COMPOUND_BIN_EDGES, c)] = 1.0
        return row

    def _cue_features(self, toks: Sequence[str]) -> tuple[float, ...]:
        n = max(len(toks), 1)
        return (
            sum(t in _FIRST_PERSON for t in toks) / n,
            sum(t in _SECOND_PERSON for t in toks) / n,
            float(any(t.startswith("!") for t in toks)),
            float(any(t.startswith("?") for t in toks)),
            sum(t == "<num>" for t in toks) / n,
            float("<url>" in toks),
            float("<user>" in toks),
            math.log1p(len(toks)),
            float(any(t[0] in ":;=<8xX" and len(t) <= 3 and t != "<3" for t in toks)),
        )

    def transform(self, texts: Sequence[str]) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
        """CSR ``(indptr, indices, values)`` of binary, L2-normalised features, and dense."""
        mask = self._mask
        cfg = self.config
        crc32 = zlib.crc32
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        dense: list[list[float]] = []
        for text in texts:
            toks = tokenize(text)
            idx = sorted({crc32(f.encode("utf-8")) & mask for f in self.hashed_features(toks)})
            indices.extend(idx)
            if idx:
                values.extend([1.0 / math.sqrt(len(idx))] * len(idx))
            indptr.append(len(indices))
            row: list[float] = self._vader_features(text) if cfg.vader else []
            if cfg.pattern:
                row.extend(self._pattern_features(toks))
            if cfg.afinn:
                row.extend(self._afinn_features(toks))
            if cfg.risk:
                row.extend(self._risk_features(text))
            if cfg.cues:
                row.extend(self._cue_features(toks))
            dense.append(row)
        return (
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(values, dtype=np.float32),
            np.asarray(dense, dtype=np.float32).reshape(len(texts), cfg.n_dense),
        )


def sparse_matmul(
    indptr: IntArray, indices: IntArray, values: FloatArray, weights: FloatArray
) -> FloatArray:
    """``X @ W`` for CSR ``X`` without scipy."""
    n = len(indptr) - 1
    out = np.zeros((n, weights.shape[1]), dtype=np.float32)
    if len(indices) == 0:
        return out
    contrib = weights[indices] * values[:, None]
    rows = np.repeat(np.arange(n), np.diff(indptr))
    for k in range(weights.shape[1]):
        out[:, k] = np.bincount(rows, weights=contrib[:, k], minlength=n)
    return out


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentimentResult:
    label: SentimentLabel
    score: float


class SentimentModel:
    """Logistic regression over hashed n-grams and VADER scores; score = P(pos) - P(neg)."""

    def __init__(
        self,
        config: FeatureConfig,
        sparse_weights: FloatArray,
        dense_weights: FloatArray,
        bias: FloatArray,
        dense_mean: FloatArray,
        dense_scale: FloatArray,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.featurizer = Featurizer(config)
        self.sparse_weights = sparse_weights.astype(np.float32)
        self.dense_weights = dense_weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.dense_mean = dense_mean.astype(np.float32)
        self.dense_scale = dense_scale.astype(np.float32)
        self.meta: dict[str, Any] = dict(meta or {})

    # -- persistence -------------------------------------------------------------------

    @classmethod
    def load(cls, variant: str | None = None) -> SentimentModel:
        """Load the artefact shipped in ``listener/models/sentiment_data/``.

        ``variant`` None is the English model; ``"multilingual"`` the model for
        German, Spanish, French, Italian, Dutch and Portuguese (positive/negative only).
        """
        root = resources.files(ARTEFACT_PACKAGE).joinpath(ARTEFACT_DIR)
        if variant:
            root = root.joinpath(variant)
        return cls.load_from(root)

    @classmethod
    def load_from(cls, root: Any) -> SentimentModel:
        """Load the artefact in ``root`` (a ``pathlib.Path`` or an importlib resource)."""
        config_doc = json.loads(root.joinpath(ARTEFACT_CONFIG).read_text(encoding="utf-8"))
        with root.joinpath(ARTEFACT_WEIGHTS).open("rb") as fh:
            arrays = np.load(fh, allow_pickle=False)
            return cls._from_parts(config_doc, {k: arrays[k] for k in arrays.files})

    @classmethod
    def _from_parts(cls, config_doc: dict[str, Any], arrays: dict[str, Any]) -> SentimentModel:
        fc = dict(config_doc["features"])
        if fc.get("char_ngrams") is not None:
            fc["char_ngrams"] = tuple(fc["char_ngrams"])
        config = FeatureConfig(**fc)
        sparse = np.zeros((config.n_hashed, len(LABELS)), dtype=np.float32)
        sparse[arrays["sparse_rows"]] = arrays["sparse_values"].astype(np.float32)
        return cls(
            config,
            sparse,
            arrays["dense_weights"],
            arrays["bias"],
            arrays["dense_mean"],
            arrays["dense_scale"],
            meta=config_doc.get("meta", {}),
        )

    def save(self, directory: str) -> None:
        """Write the artefact: non-zero weight rows (float16) plus a JSON config."""
        from pathlib import Path

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        rows = np.flatnonzero(np.any(self.sparse_weights != 0.0, axis=1)).astype(np.int32)
        np.savez_compressed(
            path / ARTEFACT_WEIGHTS,
            sparse_rows=rows,
            sparse_values=self.sparse_weights[rows].astype(np.float16),
            dense_weights=self.dense_weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
            dense_mean=self.dense_mean.astype(np.float32),
            dense_scale=self.dense_scale.astype(np.float32),
        )
        features = asdict(self.config)
        doc = {"labels": list(LABELS), "features": features, "meta": self.meta}
        (path / ARTEFACT_CONFIG).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    # -- inference ---------------------------------------------------------------------

    def logits(self, texts: Sequence[str]) -> FloatArray:
        indptr, indices, values, dense = self.featurizer.transform(texts)
        out = sparse_matmul(indptr, indices, values, self.sparse_weights)
        if self.config.n_dense:
            out += ((dense - self.dense_mean) / self.dense_scale) @ self.dense_weights
        out += self.bias
        return out

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, columns in ``LABELS`` order."""
        if not texts:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        z = self.logits(texts)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def score_texts(self, texts: Sequence[str]) -> list[tuple[SentimentLabel, float]]:
        """``(label, score)`` per text; score = P(positive) - P(negative), in -1..1."""
        proba = self.predict_proba(list(texts))
        labels = proba.argmax(axis=1)
        scores = np.clip(proba[:, 2] - proba[:, 0], -1.0, 1.0)
        return [(LABELS[int(k)], round(float(s), 4)) for k, s in zip(labels, scores, strict=True)]

    def score(self, text: str) -> SentimentResult:
        label, score = self.score_texts([text])[0]
        return SentimentResult(label, score)

    def score_targets(
        self, text: str, spans: Sequence[tuple[int, int]], *, mask: bool = False
    ) -> list[tuple[SentimentLabel, float]]:
        """Sentiment towards each target ``text[start:end]`` (e.g. a brand mention).

        Each target is scored on its clause (``target_clause``); when that reads neutral
        ("... and the service too"), the target takes the sentiment of its sentence
        (``sentence_around``). With ``mask``, the target's own words are then taken out of
        the clause and the sentence, so the model reads what is said about the target, not
        a prior learned for its name (the hashed weight of a name such as "trump" or
        "tesla" leans one way from the training data): use it when targets are names
        (brands, people), not when they are things whose words carry meaning ("the battery
        life"). Chosen on
        aspect-level development data (``bench/dev_targets.py``; see the model card).
        """
        if not spans:
            return []
        texts: list[str] = []
        for start, end in spans:
            for unit in (target_clause_span(text, start, end), sentence_span(text, start, end)):
                if mask:
                    texts.append(without_target(text, unit, start, end))
                else:
                    texts.append(text[unit[0] : unit[1]])
        scored = self.score_texts(texts)
        return [
            clause if clause[0] != "neutral" else sentence
            for clause, sentence in zip(scored[0::2], scored[1::2], strict=True)
        ]


# --------------------------------------------------------------------------------------
# Per-target sentiment: the clause around a mention
# --------------------------------------------------------------------------------------

_CLAUSE_BREAK = re.compile(
    "[.;!?]+\\s|\\s[-\u2013\u2014]+\\s|"
    r",?\s+\b(?:but|however|although|though|whereas|while|except|yet)\b"
    r"|\(|\)",
    re.IGNORECASE,
)


def _breaks(pattern: re.Pattern[str], text: str, start: int, end: int) -> tuple[int, int]:
    """The stretch of ``text`` around ``start:end`` between two matches of ``pattern``."""
    lo, hi = 0, len(text)
    for m in pattern.finditer(text):
        if m.end() <= start:
            lo = m.start() if m.group().strip(" ,").lower().isalpha() else m.end()
        elif m.start() >= end:
            hi = m.start()
            break
    return lo, hi


def _strip(text: str, lo: int, hi: int, chars: str | None) -> tuple[int, int]:
    """``lo:hi`` without the leading and trailing ``chars`` (white space when None)."""
    piece = text[lo:hi]
    left = len(piece) - len(piece.lstrip(chars))
    right = len(piece.rstrip(chars))
    return (lo + left, lo + right) if right > left else (0, len(text))


def clause_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``clause_around`` as character offsets into ``text``."""
    lo, hi = _breaks(_CLAUSE_BREAK, text, start, end)
    return _strip(text, lo, hi, " ,")


def clause_around(text: str, start: int, end: int) -> str:
    """The clause of ``text`` that holds the span ``start:end``.

    Clauses are cut at sentence punctuation, dashes, brackets and contrastive conjunctions
    ("but", "although", "while", ...), so in "the food was great but the service was slow"
    the target "service" gets "but the service was slow".
    """
    lo, hi = clause_span(text, start, end)
    return text[lo:hi]


_NARROW_BREAK = re.compile(
    "[.;:!?]+\\s|,\\s|\\s[-\u2013\u2014]+\\s|"
    r"\s+\b(?:but|however|although|though|whereas|while|except|yet|and|or)\b"
    r"|\(|\)",
    re.IGNORECASE,
)


def target_clause_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``target_clause`` as character offsets into ``text``."""
    lo, hi = _breaks(_NARROW_BREAK, text, start, end)
    clause = text[lo:hi].strip(" ,")
    rest = (clause[: start - lo] + " " + clause[end - lo :]).split()
    if len(rest) <= 2:
        return clause_span(text, start, end)
    return _strip(text, lo, hi, " ,")


def target_clause(text: str, start: int, end: int) -> str:
    """The clause around ``start:end`` for per-target scoring.

    Like ``clause_around``, but also cut at commas, colons, "and" and "or" ("Acme fixed the
    outage, Globex is still down"); when that leaves at most two words besides the target
    ("Acme and Globex are great": "Acme"), ``clause_around``'s wider clause is used.
    """
    lo, hi = target_clause_span(text, start, end)
    return text[lo:hi]


_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(]*[A-Z0-9])")


def sentence_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``sentence_around`` as character offsets into ``text``."""
    lo, hi = 0, len(text)
    for m in _SENTENCE_END.finditer(text):
        if m.end() <= start:
            lo = m.end()
        elif m.start() >= end:
            hi = m.start() + len(m.group().rstrip())
            break
    return _strip(text, lo, hi, None)


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence of ``text`` that holds ``start:end`` (cut after ``.``, ``!`` or ``?``
    and white space before a capital or a digit)."""
    lo, hi = sentence_span(text, start, end)
    return text[lo:hi]


def without_target(text: str, unit: tuple[int, int], start: int, end: int) -> str:
    """``text[unit]`` with the target ``start:end`` taken out; whole if nothing else is left."""
    lo, hi = unit
    cut = text[lo : max(lo, start)] + text[min(hi, end) : hi] if start < hi and end > lo else ""
    return cut if cut.strip() else text[lo:hi]


# --------------------------------------------------------------------------------------
# spaCy component
# --------------------------------------------------------------------------------------

EXTENSION = "listener_sentiment"


@functools.cache
def _shared_model() -> SentimentModel:
    """One loaded copy per process, shared by every component instance."""
    return SentimentModel.load()


def _ensure_extension() -> None:
    if not Doc.has_extension(EXTENSION):
        Doc.set_extension(EXTENSION, default=None)


_ensure_extension()


class SentimentComponent:
    """Sets ``doc._.listener_sentiment = {"label": str, "score": float}`` (plain values)."""

    def __init__(self, nlp: Language, name: str, batch_size: int) -> None:
        _ensure_extension()
        self.name = name
        self.batch_size = batch_size
        self._model: SentimentModel | None = None

    @property
    def model(self) -> SentimentModel:
        if self._model is None:
            self._model = _shared_model()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        # Workers of nlp.pipe(n_process=N) reload the shipped weights instead of
        # receiving a pickled copy of them.
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        _ensure_extension()
        self.__dict__.update(state)

    def __call__(self, doc: Doc) -> Doc:
        label, score = self.model.score_texts([doc.text])[0]
        doc._.set(EXTENSION, {"label": label, "score": score})
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        size = batch_size or self.batch_size
        batch: list[Doc] = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= size:
                yield from self._score_batch(batch)
                batch = []
        if batch:
            yield from self._score_batch(batch)

    def _score_batch(self, docs: list[Doc]) -> list[Doc]:
        results = self.model.score_texts([d.text for d in docs])
        for doc, (label, score) in zip(docs, results, strict=True):
            doc._.set(EXTENSION, {"label": label, "score": score})
        return docs


@Language.factory(
    "listener_sentiment",
    default_config={"batch_size": 256},
    assigns=[f"doc._.{EXTENSION}"],
)
def make_listener_sentiment(nlp: Language, name: str, batch_size: int) -> SentimentComponent:
    """spaCy factory: ``nlp.add_pipe("listener_sentiment")`` (import listener.models first)."""
    return SentimentComponent(nlp, name, batch_size)
