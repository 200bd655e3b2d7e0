"""Crawl-time execution of a rule: does a mention match, and where.

The semantics are the engine's, reproduced token for token, so that the same
rule selects the same mentions here and in the index (see
:mod:`listener.rules.query`):

* a word, phrase, wildcard, ``#tag`` or ``@handle`` matches consecutive
  tokens of ``text`` or ``title`` (``title:``/``text:`` pick one field);
* ``a NEAR/n b`` matches when an occurrence of ``a`` and one of ``b`` lie in
  the same field with at most ``n`` tokens between them, in any order (the two
  may even overlap, as in Lucene's span queries: ``acme NEAR/3 acme`` matches a
  single ``acme``); ``NEAR/nf`` wants ``a`` before ``b`` without overlap;
* ``site:`` matches the domain and its subdomains, ``author:`` the author's
  name or handle, ``lang:`` the language and its regional variants,
  ``source:`` the source plugin, all ignoring case;
* AND, OR and NOT combine matches over the whole mention.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from listener.mention import Mention, Span
from listener.rules import analysis
from listener.rules.syntax import (
    And,
    FieldFilter,
    Near,
    Node,
    Not,
    Or,
    Pattern,
    SpanOr,
    Words,
)
from listener.rules.syntax import Span as SpanNode

_MARKED = (analysis.HASHTAG_MARK, analysis.HANDLE_MARK)


@dataclass(frozen=True)
class RuleInput:
    """The parts of a mention a rule looks at."""

    text: str
    title: str | None = None
    domain: str | None = None
    author_name: str | None = None
    author_handle: str | None = None
    language: str | None = None
    source: str | None = None
    _cache: dict[tuple[str, bool], _Field] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_mention(cls, mention: Mention) -> RuleInput:
        """The rule input of a Mention."""
        return cls(
            text=mention.text,
            title=mention.title,
            domain=mention.domain,
            author_name=mention.author.name,
            author_handle=mention.author.handle,
            language=mention.language,
            source=mention.source,
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RuleInput:
        """The rule input of a stored mention (an index document's ``_source``)."""
        author = document.get("author") or {}
        return cls(
            text=document.get("text") or "",
            title=document.get("title"),
            domain=document.get("domain"),
            author_name=author.get("name"),
            author_handle=author.get("handle"),
            language=document.get("language"),
            source=document.get("source"),
        )

    def tokens(self, name: str, *, tags: bool = False) -> list[analysis.Token]:
        """The tokens of ``text`` or ``title`` (computed once per input and analyser)."""
        return self._field(name, tags).tokens

    def _field(self, name: str, tags: bool) -> _Field:
        key = (name, tags)
        cached = self._cache.get(key)
        if cached is None:
            value = self.text if name == "text" else self.title
            cached = _Field(analysis.tokenize(value or "", tags=tags))
            self._cache[key] = cached
        return cached


class _Field:
    """A field's tokens, with the positions of each distinct token text."""

    __slots__ = ("positions", "tokens")

    def __init__(self, tokens: list[analysis.Token]) -> None:
        self.tokens = tokens
        self.positions: dict[str, list[int]] = {}
        for i, token in enumerate(tokens):
            self.positions.setdefault(token.text, []).append(i)

    def find(self, pattern: Pattern, tags: bool) -> set[int]:
        """Positions of the tokens a pattern matches."""
        forms = _forms(pattern, tags)
        if not pattern.prefix:
            return {i for form in forms for i in self.positions.get(form, ())}
        return {
            i for text, found in self.positions.items() if text.startswith(forms) for i in found
        }


@dataclass(frozen=True)
class RuleMatch:
    """Why a mention matched: the first matched term and where the terms are in its text."""

    keyword: str
    positions: tuple[Span, ...] = ()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Hit:
    start: int  # token positions, end exclusive
    end: int
    chars: tuple[tuple[int, int], ...]  # character spans of the words taking part


class _Evaluation:
    """One rule on one input, collecting what matched outside NOT."""

    def __init__(self, document: RuleInput) -> None:
        self.document = document
        self.positions: set[tuple[int, int]] = set()
        self.terms: list[str] = []

    def node(self, node: Node, record: bool) -> bool:
        if isinstance(node, And):
            return all(self.node(item, record) for item in node.items)
        if isinstance(node, Or):
            if not record:
                return any(self.node(item, False) for item in node.items)
            found = [self.node(item, True) for item in node.items]  # all: collect positions
            return any(found)
        if isinstance(node, Not):
            return not self.node(node.item, False)
        if isinstance(node, FieldFilter):
            matched = filter_matches(node, self.document)
            if matched and record:
                self.terms.append(node.source)
            return matched
        matched = False
        for name in node.fields:
            hits = list(spans(node, self.document._field(name, node.tags)))
            if hits:
                matched = True
                if not record:
                    break
                if name == "text":
                    self.positions.update(chars for hit in hits for chars in hit.chars)
        if matched and record:
            self.terms.append(node.source)
        return matched


def evaluate(root: Node, document: RuleInput) -> RuleMatch | None:
    """Match a parsed rule against one input."""
    evaluation = _Evaluation(document)
    if not evaluation.node(root, True):
        return None
    terms = tuple(dict.fromkeys(evaluation.terms))
    positions = tuple(Span(start=s, end=e) for s, e in sorted(evaluation.positions))
    return RuleMatch(keyword=terms[0] if terms else "", positions=positions, terms=terms)


@functools.cache
def _forms(pattern: Pattern, tags: bool) -> tuple[str, ...]:
    """The token texts a pattern stands for: plain words also match their tagged forms."""
    if tags and pattern.plain:
        return (pattern.token, *(mark + pattern.token for mark in _MARKED))
    return (pattern.token,)


def spans(node: SpanNode, field: _Field, tags: bool | None = None) -> Iterator[_Hit]:
    """Every match of a span node in a field (NEAR included), as Lucene defines them."""
    mode = node.tags if tags is None else tags
    if isinstance(node, Words):
        tokens = field.tokens
        width = len(node.patterns)
        starts = field.find(node.patterns[0], mode)
        for j, pattern in enumerate(node.patterns[1:], start=1):
            if not starts:
                return
            starts &= {i - j for i in field.find(pattern, mode)}
        for i in sorted(starts):
            yield _Hit(i, i + width, ((tokens[i].start, tokens[i + width - 1].end),))
        return
    if isinstance(node, SpanOr):
        for item in node.items:
            yield from spans(item, field, mode)
        return
    assert isinstance(node, Near)
    rights = list(spans(node.right, field, mode))
    if not rights:
        return
    for a in spans(node.left, field, mode):
        for b in rights:
            if node.ordered:
                if b.start >= a.end and b.start - a.end <= node.slop:
                    yield _Hit(a.start, b.end, a.chars + b.chars)
            else:
                start, end = min(a.start, b.start), max(a.end, b.end)
                if end - start - (a.end - a.start) - (b.end - b.start) <= node.slop:
                    yield _Hit(start, end, a.chars + b.chars)


def _lower(value: str | None) -> str:
    return (value or "").lower()


def filter_matches(node: FieldFilter, document: RuleInput) -> bool:
    """Whether a site:, author:, lang: or source: filter holds (ignoring case)."""
    value = node.value.lower()
    if node.field == "site":
        domain = _lower(document.domain)
        return domain == value or domain.endswith("." + value)
    if node.field == "author":
        handle = _lower(document.author_handle)
        return _lower(document.author_name) == value or handle in (value, "@" + value)
    if node.field == "lang":
        language = _lower(document.language)
        return language == value or language.startswith(value + "-")
    return _lower(document.source) == value
