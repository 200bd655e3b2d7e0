"""Stored-data execution of a rule: the Elasticsearch query that selects its mentions.

Every operator has an exact query on the index fields, with one exception:

=====================  ==============================================================
rule                   query
=====================  ==============================================================
``acme``               ``term`` on ``text`` / ``title`` (tokens analysed as indexed)
``"acme corp"``        ``span_near`` of ``span_term`` (slop 0, in order)
``acme*``              ``prefix`` (``span_multi`` inside phrases and NEAR)
``#acme``, ``@acme``   ``term`` on ``text.tags`` / ``title.tags`` (``_ht_acme``, ``_at_acme``)
``a NEAR/5 b``         ``span_near`` (slop 5), ``in_order`` for ``NEAR/5f``
``(a OR b)`` in NEAR   ``span_or``
``site:x.com``         ``term`` on ``domain`` or ``wildcard`` ``*.x.com`` (case-insensitive)
``author:x``           ``term`` on ``author.name`` / ``author.handle`` (case-insensitive)
``lang:en``            ``term`` on ``language`` or ``prefix`` ``en-`` (case-insensitive)
``source:x``           ``term`` on ``source`` (case-insensitive)
AND, OR, NOT           ``bool`` ``filter`` / ``should`` / ``must_not``
=====================  ==============================================================

The exception is a NEAR whose operand can match spans of different lengths: an
OR of phrases of different lengths, or a nested NEAR. Span queries search for
matches lazily, and with such operands they can miss a document that has a
match. Such a NEAR compiles to a pre-filter (both operands occur in the same
field) and :attr:`listener.rules.Rule.exact_in_engine` is False: the rematch
lets the engine pre-filter and the matcher decide.
"""

from __future__ import annotations

from typing import Any

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

Query = dict[str, Any]
_MARKS = (analysis.HASHTAG_MARK, analysis.HANDLE_MARK)


def _any(queries: list[Query]) -> Query:
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _field(name: str, tags: bool) -> str:
    return f"{name}.{analysis.TAGS_SUBFIELD}" if tags else name


def _forms(pattern: Pattern, tags: bool) -> list[str]:
    if tags and pattern.plain:
        return [pattern.token, *(mark + pattern.token for mark in _MARKS)]
    return [pattern.token]


def _pattern_query(pattern: Pattern, field: str, tags: bool) -> Query:
    forms = _forms(pattern, tags)
    if pattern.prefix:
        return _any([{"prefix": {field: {"value": form}}} for form in forms])
    if len(forms) == 1:
        return {"term": {field: {"value": forms[0]}}}
    return {"terms": {field: forms}}


def _span_pattern(pattern: Pattern, field: str, tags: bool) -> Query:
    clauses: list[Query] = [
        {"span_multi": {"match": {"prefix": {field: {"value": form}}}}}
        if pattern.prefix
        else {"span_term": {field: {"value": form}}}
        for form in _forms(pattern, tags)
    ]
    return clauses[0] if len(clauses) == 1 else {"span_or": {"clauses": clauses}}


def _span(node: SpanNode, field: str, tags: bool) -> Query:
    """A span query for a span node; only called for exact nodes."""
    if isinstance(node, Words):
        clauses = [_span_pattern(p, field, tags) for p in node.patterns]
        if len(clauses) == 1:
            return clauses[0]
        return {"span_near": {"clauses": clauses, "slop": 0, "in_order": True}}
    if isinstance(node, SpanOr):
        return {"span_or": {"clauses": [_span(item, field, tags) for item in node.items]}}
    return {
        "span_near": {
            "clauses": [_span(node.left, field, tags), _span(node.right, field, tags)],
            "slop": node.slop,
            "in_order": node.ordered,
        }
    }


def _occurs(node: SpanNode, field: str, tags: bool, wider: bool) -> Query:
    """A query for the documents where a span node matches in ``field``.

    Exact except for a NEAR that is not: then it matches more documents when
    ``wider`` (both operands occur: a pre-filter) or fewer (the lazy span
    query), so that a NOT around it still leaves a pre-filter.
    """
    if isinstance(node, Words):
        if len(node.patterns) == 1:
            return _pattern_query(node.patterns[0], field, tags)
        return _span(node, field, tags)
    if isinstance(node, SpanOr):
        return _any([_occurs(item, field, tags, wider) for item in node.items])
    if node.exact or not wider:
        return _span(node, field, tags)
    both = [_occurs(node.left, field, tags, wider), _occurs(node.right, field, tags, wider)]
    return {"bool": {"filter": both}}


def _filter_query(node: FieldFilter) -> Query:
    value = node.value
    if node.field == "site":
        return _any(
            [
                {"term": {"domain": {"value": value, "case_insensitive": True}}},
                {"wildcard": {"domain": {"value": f"*.{value}", "case_insensitive": True}}},
            ]
        )
    if node.field == "author":
        return _any(
            [
                {"term": {"author.name": {"value": value, "case_insensitive": True}}},
                {"term": {"author.handle": {"value": value, "case_insensitive": True}}},
                {"term": {"author.handle": {"value": f"@{value}", "case_insensitive": True}}},
            ]
        )
    if node.field == "lang":
        return _any(
            [
                {"term": {"language": {"value": value, "case_insensitive": True}}},
                {"prefix": {"language": {"value": f"{value}-", "case_insensitive": True}}},
            ]
        )
    return {"term": {"source": {"value": value, "case_insensitive": True}}}


def compile_query(node: Node, *, wider: bool = True) -> Query:
    """The Elasticsearch query (filter context) for a parsed rule.

    Exact when :func:`is_exact`; otherwise it matches more documents than the
    rule (a pre-filter), never fewer.
    """
    if isinstance(node, (Words, Near)):
        return _any(
            [_occurs(node, _field(name, node.tags), node.tags, wider) for name in node.fields]
        )
    if isinstance(node, FieldFilter):
        return _filter_query(node)
    if isinstance(node, Or):
        return _any([compile_query(item, wider=wider) for item in node.items])
    if isinstance(node, Not):
        return {"bool": {"must_not": [compile_query(node.item, wider=not wider)]}}
    assert isinstance(node, And)
    must = [compile_query(item, wider=wider) for item in node.items if not isinstance(item, Not)]
    must_not = [
        compile_query(item.item, wider=not wider) for item in node.items if isinstance(item, Not)
    ]
    query: dict[str, Any] = {}
    if must:
        query["filter"] = must
    if must_not:
        query["must_not"] = must_not
    return {"bool": query}


def is_exact(node: Node) -> bool:
    """Whether :func:`compile_query` selects exactly the documents the matcher accepts."""
    if isinstance(node, Near):
        return node.exact
    if isinstance(node, (And, Or)):
        return all(is_exact(item) for item in node.items)
    if isinstance(node, Not):
        return is_exact(node.item)
    return True


def uses_tags(node: Node) -> bool:
    """Whether the query needs the ``.tags`` sub-fields (a #tag or @handle in the rule)."""
    if isinstance(node, (Words, Near)):
        return node.tags
    if isinstance(node, (And, Or)):
        return any(uses_tags(item) for item in node.items)
    if isinstance(node, Not):
        return uses_tags(node.item)
    return False
