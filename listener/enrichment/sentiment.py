"""Sentiment for the document and for each matched brand, behind a small scorer interface.

The scorer (:class:`SentimentScorer`) turns texts into :class:`~listener.mention.Sentiment`;
the default is VADER. A trained model can replace it by implementing ``score``
and registering a factory in ``spacy.registry.misc`` (or by passing an instance
to :class:`listener.enrichment.Enricher`).

What is scored:

- **Document**: each sentence once; the document score is the mean of the
  sentence scores (a whole-text VADER score saturates towards ±1 on long
  articles; on tweets the two agree within 0.3 % accuracy on TweetEval).
- **Brand**: the *clause* around each of the brand's matches, the clause ending
  at commas, semicolons, colons, dashes, parentheses and contrastive or
  coordinating words ("but", "and", "while", "vs", "than"...): "Acme is great,
  Globex is awful" scores each brand on its own half. When no other brand is in
  the sentence and the clause reads neutral, the brand takes the sentence's
  sentiment ("Acme shipped the update today and I love it"). A clause holding
  nothing but the match and function words ("Acme and Globex are great": the
  clause "Acme") falls back to the whole sentence, with the sign flipped when a
  contrast opens it ("Acme's support was great, unlike Globex"; "Acme is better
  than Globex"; "... except Globex"). Several sentences or clauses are averaged.
  The brand's own matches are taken out of what is scored (``mask_brands``): a
  name's learned weight is a prior from the training data, not something said
  about the brand. Chosen on NewsMTSC and FinEntity development data
  (``bench/dev_targets.py --pipeline``; see docs/model-card-sentiment.md).

Sentences are cut at runs of ``.``, ``!``, ``?``, ``…`` and at line breaks, so
a title joined to its text by a blank line is a sentence of its own.

When a brand's sentences or clauses read neutral:

- and they hold **brand-risk language** (an outage, breach, recall, lawsuit, layoffs,
  insider selling, a price hike, "down again", "not working": the hand-written terms of
  ``listener.models.sentiment.RISK_TERMS``), the brand's label is ``negative`` (English),
  unless a word saying the event is over stands next to every such phrase ("Strike ends at
  Acme's mine", "Acme agrees pay deal to end strikes", "Acme settles pricing probe"): then it
  is ``positive`` (``brand_risk_state``; chosen on ``bench/dev_brand_risk.py``);
- otherwise, when the brand is the only one the mention names, the brand takes the
  document's sentiment, read without the brand's name ("Slack is down again… I hate this
  outage.": the second sentence speaks about Slack too).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import spacy
from spacy.attrs import IDX, LENGTH, ORTH
from spacy.language import Language
from spacy.tokens import Doc, Token
from spacy.util import minibatch
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from listener.enrichment.brands import BRANDS_EXTENSION
from listener.enrichment.language import LANGUAGE_EXTENSION
from listener.mention import Sentiment, SentimentLabel

SENTIMENT_EXTENSION = "listener_document_sentiment"

#: VADER's standard thresholds on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

_SENTENCE_END_CHARS = frozenset(".!?…")
_CLAUSE_PUNCT = frozenset(
    {",", ";", ":", "\u2014", "\u2013", "--", "(", ")", "[", "]", "|", "/"}  # em and en dash
)
_CLAUSE_WORDS = frozenset(
    {
        "but",
        "however",
        "although",
        "though",
        "while",
        "whilst",
        "whereas",
        "yet",
        "and",
        "or",
        "nor",
        "unlike",
        "except",
        "plus",
        "vs",
        "vs.",
        "versus",
        "than",
        "&",
    }
)
# A bare clause opened by one of these is contrasted with the rest of its
# sentence: "Acme's support was great, unlike Globex", "Acme beats Globex
# and is better than Globex".
_CONTRASTING_WORDS = frozenset({"unlike", "except", "than"})


def register_extensions() -> None:
    """Register ``doc._.listener_document_sentiment`` once (guarded)."""
    if not Doc.has_extension(SENTIMENT_EXTENSION):
        Doc.set_extension(SENTIMENT_EXTENSION, default=None)


def label_for(score: float) -> SentimentLabel:
    """The three-way label for a score, by VADER's ±0.05 thresholds."""
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def sentiment_from_score(score: float) -> Sentiment:
    """A :class:`Sentiment` for a score in -1..1, labelled by the standard thresholds."""
    score = round(max(-1.0, min(1.0, score)), 4)
    return Sentiment(score=score, label=label_for(score))


@runtime_checkable
class SentimentScorer(Protocol):
    """Scores texts; one :class:`Sentiment` per text, in order."""

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """Score a batch of texts (sentences or clauses, usually short)."""
        ...


class VaderScorer:
    """VADER (Hutto & Gilbert 2014): the compound score is the sentiment score."""

    def __init__(self) -> None:
        self.analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """Score each distinct text once with VADER's compound score."""
        scored: dict[str, Sentiment] = {}
        polarity = self.analyzer.polarity_scores
        for text in texts:
            if text not in scored:
                scored[text] = sentiment_from_score(polarity(text)["compound"])
        return [scored[text] for text in texts]


@spacy.registry.misc("listener.vader_scorer.v1")
def make_vader_scorer() -> VaderScorer:
    """The lexicon baseline (VADER)."""
    return VaderScorer()


class ModelScorer:
    """listener's trained sentiment model (``listener.models.sentiment``), shipped with it.

    ``variant`` None is the English model; ``"multilingual"`` the model for German,
    Spanish, French, Italian, Dutch and Portuguese (positive/negative, no neutral class).
    """

    def __init__(self, variant: str | None = None) -> None:
        from listener.models.sentiment import SentimentModel

        self.model = SentimentModel.load(variant)

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """Score each distinct text once."""
        unique = list(dict.fromkeys(texts))
        scored = {
            text: Sentiment(score=max(-1.0, min(1.0, score)), label=label)
            for text, (label, score) in zip(unique, self.model.score_texts(unique), strict=True)
        }
        return [scored[text] for text in texts]


@spacy.registry.misc("listener.model_scorer.v1")
def make_model_scorer() -> ModelScorer:
    """The default scorer, referenced from the component config: the trained model."""
    return ModelScorer()


#: Languages the multilingual model scores (trained on the XED projections, CC BY 4.0).
MULTILINGUAL_LANGUAGES = frozenset({"de", "es", "fr", "it", "nl", "pt"})


@spacy.registry.misc("listener.multilingual_scorer.v1")
def make_multilingual_scorer() -> ModelScorer:
    """The scorer for ``MULTILINGUAL_LANGUAGES``: listener's multilingual model."""
    return ModelScorer("multilingual")


#: Nigerian Pidgin (``pcm``) is English-lexified, and short English headlines are often
#: detected as it ("WeWork Faces Another Investigation Over Neumann"): the English
#: sentiment model scores it (the English NER does not: it lowered F1 on WNUT-17).
ENGLISH_SENTIMENT_LANGUAGES: frozenset[str | None] = frozenset({"en", "pcm", None})


def has_sentiment_model(language: str | None) -> bool:
    """Whether a document in ``language`` gets sentiment (English/undetermined or multilingual)."""
    return language in ENGLISH_SENTIMENT_LANGUAGES or language in MULTILINGUAL_LANGUAGES


# ORTH, IDX and LENGTH as plain ints: reading them through Token objects costs
# more than the rest of the segmentation.
_TOKEN_ATTRS = [ORTH, IDX, LENGTH]
_KINDS_LIMIT = 200_000


_CONTENT, _END, _SPACE, _BREAK = 0, 1, 2, 3


class _TokenKinds:
    """What a token string is for segmentation, cached by its hash (bounded).

    ``_END``: a run of sentence-final punctuation; ``_BREAK``: whitespace with a
    line break; ``_SPACE``: other whitespace; ``_CONTENT``: anything else.
    """

    def __init__(self) -> None:
        self.known: dict[int, int] = {}

    def __call__(self, orth: int, strings: Any) -> int:
        known = self.known.get(orth)
        if known is None:
            text: str = strings[orth]
            if text.isspace():
                known = _BREAK if "\n" in text else _SPACE
            elif all(c in _SENTENCE_END_CHARS for c in text):
                known = _END
            else:
                known = _CONTENT
            if len(self.known) >= _KINDS_LIMIT:
                self.known.clear()
            self.known[orth] = known
        return known


_kind_of = _TokenKinds()


def token_table(doc: Doc) -> list[list[int]]:
    """``[orth, start char, length]`` for every token of ``doc``."""
    if not len(doc):
        return []
    table: list[list[int]] = doc.to_array(_TOKEN_ATTRS).tolist()
    return table


def sentence_bounds(doc: Doc, table: list[list[int]] | None = None) -> list[tuple[int, int]]:
    """Token ranges of the sentences, without leading or trailing whitespace tokens.

    A sentence ends after a run of ``.``/``!``/``?``/``…`` tokens and at line breaks, but
    not before a word in lower case on the same line ("Kellogg sees 2020 adj. currency-
    neutral EPS down": an abbreviation, not the end of a sentence), nor at a ``.`` glued to
    a following upper-case code ("Adidas AG <ADSGn.DE> cut its target": the tokenizer cuts
    the exchange code at its dot).
    """
    rows = token_table(doc) if table is None else table
    strings = doc.vocab.strings
    bounds: list[tuple[int, int]] = []
    start = -1
    last_content = -1
    ending = False
    broke = False
    run_end = -1
    for i, row in enumerate(rows):
        kind = _kind_of(row[0], strings)
        is_end = kind in (_END, _BREAK)
        word = strings[row[0]] if kind == _CONTENT else ""
        lower_word_follows = word[:1].islower()
        in_code = row[1] == run_end and len(word) > 1 and word.isupper()
        if (
            ending
            and not is_end
            and start >= 0
            and (broke or not (lower_word_follows or (word and in_code)))
        ):
            bounds.append((start, last_content + 1))
            start = -1
        if kind == _END:  # a "." glued to what follows
            run_end = row[1] + row[2] if strings[row[0]] == "." else -1
        if is_end and not ending:
            broke = False
        if kind == _BREAK:
            broke = True
        ending = is_end
        if kind >= _SPACE:
            continue
        if start < 0:
            start = i
        last_content = i
    if start >= 0:
        bounds.append((start, last_content + 1))
    return bounds


def _is_clause_boundary(token: Token) -> bool:
    return token.text in _CLAUSE_PUNCT or token.lower_ in _CLAUSE_WORDS


def _is_filler(token: Token) -> bool:
    return token.is_punct or token.is_space or token.is_stop or token.lower_ in _CLAUSE_WORDS


class Clause(NamedTuple):
    """The clause around a match: its token range, and whether it holds nothing else."""

    start: int
    end: int
    bare: bool
    #: The lower-cased boundary word that opens the clause ("but", "unlike"), if any.
    opener: str | None


def clause_bounds(doc: Doc, sentence: tuple[int, int], match: tuple[int, int]) -> Clause:
    """The clause of ``sentence`` around ``match``, cut at clause boundaries."""
    sentence_start, sentence_end = sentence
    left, right = match
    while left > sentence_start and not _is_clause_boundary(doc[left - 1]):
        left -= 1
    while right < sentence_end and not _is_clause_boundary(doc[right]):
        right += 1
    opener = doc[left - 1].lower_ if left > sentence_start else None
    context = [*range(left, match[0]), *range(match[1], right)]
    bare = all(_is_filler(doc[i]) for i in context)
    while left < right and doc[left].is_space:
        left += 1
    while right > left and doc[right - 1].is_space:
        right -= 1
    return Clause(left, right, bare, opener)


def _char_span(table: list[list[int]], tokens: tuple[int, int]) -> tuple[int, int]:
    last = table[tokens[1] - 1]
    return table[tokens[0]][1], last[1] + last[2]


class _Unit(NamedTuple):
    """What decides a brand's sentiment at one match.

    ``text`` is scored; when it reads neutral and ``fallback`` is set, ``fallback`` is used
    instead. ``sign`` is -1 for a contrasted clause; ``risk`` is the text searched for
    brand-risk language.
    """

    text: str
    fallback: str | None
    sign: int
    risk: str


class _Plan:
    """What to score for one document: its sentences and each brand's units."""

    __slots__ = ("brands", "doc", "lone", "sentences", "text")

    def __init__(self, doc: Doc, *, mask_brands: bool = True) -> None:
        self.doc = doc
        self.text = text = doc.text
        table = token_table(doc)
        bounds = sentence_bounds(doc, table)
        self.sentences = [_char_span(table, b) for b in bounds]
        self.brands: list[list[_Unit]] = []
        #: The document's sentences with its only brand taken out (``mask_brands``).
        self.lone: list[str] = []
        brands: list[dict[str, Any]] = doc._.get(BRANDS_EXTENSION) or []
        if not brands or not bounds:
            return
        starts = [b[0] for b in bounds]
        # Which brands each sentence mentions decides between sentence and clause.
        located: list[list[tuple[int, tuple[int, int]]]] = []
        brands_in: dict[int, set[int]] = {}
        for index, brand in enumerate(brands):
            places = []
            for match in brand["matches"]:
                sentence = max(bisect.bisect_right(starts, match["token_start"]) - 1, 0)
                places.append((sentence, (match["token_start"], match["token_end"])))
                brands_in.setdefault(sentence, set()).add(index)
            located.append(places)
        for index, places in enumerate(located):
            units: dict[_Unit, None] = {}
            own = [_char_span(table, match) for _, match in places] if mask_brands else []
            for sentence, match in places:
                span = self.sentences[sentence]
                body = _without(text, span, own)
                clause = clause_bounds(doc, bounds[sentence], match)
                part = _without(text, _char_span(table, (clause.start, clause.end)), own)
                if brands_in[sentence] == {index}:
                    if clause.bare:
                        units[_Unit(body, None, 1, body)] = None
                    else:  # its clause; its sentence when the clause reads neutral
                        units[_Unit(part, body, 1, body)] = None
                elif not clause.bare:  # its clause, even when neutral
                    units[_Unit(part, None, 1, part)] = None
                else:  # "Acme is better than Globex": Globex gets the sentence, flipped
                    sign = -1 if clause.opener in _CONTRASTING_WORDS else 1
                    units[_Unit(body, None, sign, body)] = None
            self.brands.append(list(units))
            if own and len(brands) == 1:
                self.lone = [_without(text, sentence, own) for sentence in self.sentences]

    def texts(self) -> Iterator[str]:
        """The texts this plan always needs scored (may repeat): its sentences and each
        brand's units; fallbacks are scored only when they are needed."""
        text = self.text
        for start, end in self.sentences:
            yield text[start:end]
        for units in self.brands:
            for unit in units:
                yield unit.text


def _without(text: str, span: tuple[int, int], cuts: Sequence[tuple[int, int]]) -> str:
    """``text[span]`` with the character ranges ``cuts`` inside it taken out.

    A unit that would be left empty (the brand is the whole sentence) is kept whole.
    """
    start, end = span
    inside = sorted((max(a, start), min(b, end)) for a, b in cuts if a < end and b > start)
    if not inside:
        return text[start:end]
    parts, at = [], start
    for a, b in inside:
        if a > at:
            parts.append(text[at:a])
        at = max(at, b)
    parts.append(text[at:end])
    kept = "".join(parts)
    return kept if kept.strip() else text[start:end]


#: The score given to a brand whose neutral clause holds brand-risk language (the negative
#: threshold): the label says "negative", the score stays as weak as the evidence.
RISK_SCORE = -NEGATIVE_THRESHOLD


def is_brand_risk(text: str) -> bool:
    """Whether ``text`` holds a hand-written brand-risk phrase (outage, breach, recall, ...).

    The phrases are ``listener/models/sentiment_data/brand_risk_terms.tsv``; the learned
    news terms are not used here.
    """
    from listener.models.sentiment import risk_hits

    return any(not category.startswith("news_") for category, _ in risk_hits(text))


#: Words that say a brand-risk event is over: "strike ends", "a pay deal to end strikes",
#: "settles pricing investigation", "resolves the outage".
_RESOLVING = frozenset(
    {
        *("end", "ends", "ended", "ending"),
        *("settle", "settles", "settled", "settling"),
        *("resolve", "resolves", "resolved", "resolving"),
    }
)
#: How far before a brand-risk phrase a resolving word may stand (right after: 1 word).
_RESOLVING_GAP = 3


def brand_risk_state(text: str) -> str | None:
    """``None`` without brand-risk phrases (``is_brand_risk``); ``"resolved"`` when a
    resolving word stands next to every one ("Strike ends at the mine", "talks to end the
    probes"); ``"open"`` otherwise."""
    from listener.models.sentiment import (
        _HYPHEN,
        _RISK_WORD,
        _candidates,
        _match_at,
        load_risk_terms,
        normalise,
    )

    terms = load_risk_terms()
    words = _RISK_WORD.findall(_HYPHEN.sub("", normalise(text)))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):  # as risk_hits, keeping where each phrase is
        best, category = -1, ""
        for found, pattern in _candidates(terms, words[i]):
            end = _match_at(words, i, pattern)
            if end > best:
                best, category = end, found
        if best < 0:
            i += 1
            continue
        if not category.startswith("news_"):
            spans.append((i, best))
        i = best
    if not spans:
        return None
    for start, end in spans:
        near = words[max(start - _RESOLVING_GAP, 0) : start] + words[end : end + 1]
        if not _RESOLVING.intersection(near):
            return "open"
    return "resolved"


def _combine(scores: list[Sentiment], signs: list[int] | None = None) -> Sentiment:
    if signs is None or all(sign == 1 for sign in signs):
        if len(scores) == 1:
            return scores[0]
        return sentiment_from_score(sum(s.score for s in scores) / len(scores))
    total = sum(sign * s.score for s, sign in zip(scores, signs, strict=True))
    return sentiment_from_score(total / len(scores))


def _as_dict(sentiment: Sentiment) -> dict[str, Any]:
    return {"score": sentiment.score, "label": sentiment.label}


class SentimentComponent:
    """spaCy component: sentiment for the document and for each matched brand.

    The document's goes to ``doc._.listener_document_sentiment``, each brand's
    into its ``doc._.listener_brands`` entry, as ``{"score", "label"}`` dicts.

    English and undetermined-language documents go to ``scorer``; German, Spanish,
    French, Italian, Dutch and Portuguese ones to ``multilingual`` (loaded on first
    use); the rest keep ``None`` (and the Enricher lists "sentiment" in the mention's
    ``unsupported``). Each scorer sees one call per batch.
    """

    def __init__(
        self,
        name: str,
        scorer: SentimentScorer,
        multilingual: SentimentScorer | None = None,
        *,
        mask_brands: bool = True,
    ) -> None:
        self.name = name
        self.scorer = scorer
        self._multilingual = multilingual
        #: Score each brand's sentences and clauses with its own matches taken out.
        self.mask_brands = mask_brands

    @property
    def multilingual(self) -> SentimentScorer:
        if self._multilingual is None:
            self._multilingual = make_multilingual_scorer()
        return self._multilingual

    def __call__(self, doc: Doc) -> Doc:
        """Score one document."""
        for _ in self.pipe([doc]):
            pass
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Score documents a batch at a time, with one scorer call per batch."""
        for batch in minibatch(docs, size=batch_size):
            english: list[_Plan] = []
            other: list[_Plan] = []
            for doc in batch:
                language = doc._.get(LANGUAGE_EXTENSION)
                if language in ENGLISH_SENTIMENT_LANGUAGES:
                    english.append(_Plan(doc, mask_brands=self.mask_brands))
                elif language in MULTILINGUAL_LANGUAGES:
                    other.append(_Plan(doc, mask_brands=self.mask_brands))
            if english:
                self._apply(english, self.scorer, brand_risk=True)
            if other:
                self._apply(other, self.multilingual, brand_risk=False)
            yield from batch

    @staticmethod
    def _apply(plans: list[_Plan], scorer: SentimentScorer, *, brand_risk: bool) -> None:
        """Score the texts the plans need, a few scorer calls for all, and set the results.

        A brand's fallbacks (its sentence when its clause reads neutral; a lone brand's
        document without its name) are scored only for the units and brands that need them.
        """
        scored: dict[str, Sentiment] = {}

        def score(texts: Iterable[str]) -> None:
            missing = [t for t in dict.fromkeys(texts) if t not in scored]
            if missing:
                scored.update(zip(missing, scorer.score(missing), strict=True))

        score(t for plan in plans for t in plan.texts())
        score(
            unit.fallback
            for plan in plans
            for units in plan.brands
            for unit in units
            if unit.fallback is not None and scored[unit.text].label == "neutral"
        )
        # Per plan and brand: its sentiment from its units, and whether it is neutral with
        # no brand-risk language (it then takes the document's); None without units.
        judged = [
            [
                _judge(units, scored, brand_risk=brand_risk) if units else None
                for units in plan.brands
            ]
            for plan in plans
        ]
        score(
            sentence
            for plan, results in zip(plans, judged, strict=True)
            if plan.lone and any(result is not None and result[1] for result in results)
            for sentence in plan.lone
        )
        for plan, results in zip(plans, judged, strict=True):
            text = plan.text
            if plan.sentences:
                document = _combine([scored[text[s:e]] for s, e in plan.sentences])
                plan.doc._.set(SENTIMENT_EXTENSION, _as_dict(document))
            brands = plan.doc._.get(BRANDS_EXTENSION) or []
            document_sentiment = plan.doc._.get(SENTIMENT_EXTENSION)
            for brand, judgement in zip(brands, results, strict=False):
                if judgement is None:  # matched without positions (a rule on metadata)
                    brand["sentiment"] = document_sentiment
                    continue
                result, takes_document = judgement
                if takes_document:
                    if plan.lone:  # the document, without the brand's name
                        result = _combine([scored[sentence] for sentence in plan.lone])
                    elif len(brands) == 1 and document_sentiment is not None:
                        result = Sentiment(**document_sentiment)
                brand["sentiment"] = _as_dict(result)


def _judge(
    units: Sequence[_Unit], scored: dict[str, Sentiment], *, brand_risk: bool
) -> tuple[Sentiment, bool]:
    """A brand's sentiment from its scored units, and whether it is neutral with no brand-risk
    language (the caller then gives it the document's)."""
    scores = []
    for unit in units:
        score = scored[unit.text]
        if unit.fallback is not None and score.label == "neutral":
            score = scored[unit.fallback]
        scores.append(score)
    result = _combine(scores, [unit.sign for unit in units])
    if result.label != "neutral":
        return result, False
    if brand_risk:
        states = {brand_risk_state(unit.risk) for unit in units}
        if "open" in states:
            return Sentiment(score=min(result.score, -RISK_SCORE), label="negative"), False
        if "resolved" in states:
            return Sentiment(score=max(result.score, RISK_SCORE), label="positive"), False
    return result, True


@Language.factory(
    "listener_brand_sentiment",
    default_config={"scorer": {"@misc": "listener.model_scorer.v1"}},
)
def make_sentiment_component(
    nlp: Language, name: str, scorer: SentimentScorer
) -> SentimentComponent:
    """Build the sentiment component around a scorer from ``spacy.registry.misc``."""
    register_extensions()
    return SentimentComponent(name, scorer)
