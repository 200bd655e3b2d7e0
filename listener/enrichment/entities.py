"""Cleaning the statistical NER's spans of social-media debris.

The small English model was trained on edited text (OntoNotes). On posts it
often pulls the markup around a name into the entity: ``RT @user :`` before a
name, a link or handle after it, a possessive ``'s`` or a colon at the end
("Emile Harmon 's", "ProudOfLouis http://t.co/…"). The component
``listener_entity_cleanup`` runs after the NER and trims such tokens from both
ends of every entity; an entity left with nothing but markup, or with a link
inside it, is dropped. Measured on the labelled sets by ``bench/eval_entities.py``.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

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
        cleaned = [span for span in (clean_span(ent) for ent in original) if span is not None]
        if [(s.start, s.end) for s in cleaned] != [(s.start, s.end) for s in original]:
            doc.set_ents(cleaned, default="outside")
        return doc


@Language.factory("listener_entity_cleanup")
def make_entity_cleanup(nlp: Language, name: str) -> EntityCleanup:
    """Build the entity cleanup component."""
    return EntityCleanup(name)
