"""A parsed rule with its two executions: the matcher and the Elasticsearch query."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from listener.rules import matcher, query, syntax
from listener.rules.matcher import RuleInput, RuleMatch


@dataclass(frozen=True)
class Rule:
    """A brand's query rule, parsed once, run on mentions and on stored data."""

    text: str
    root: syntax.Node

    def matches(self, document: RuleInput) -> RuleMatch | None:
        """Match one mention at crawl time: the match (keyword, positions) or None."""
        return matcher.evaluate(self.root, document)

    def to_query(self) -> dict[str, Any]:
        """The Elasticsearch query (use it in filter context) selecting the rule's mentions.

        Exact when :attr:`exact_in_engine`; otherwise a pre-filter that the
        matcher must confirm.
        """
        return query.compile_query(self.root)

    @functools.cached_property
    def exact_in_engine(self) -> bool:
        """Whether :meth:`to_query` selects exactly what :meth:`matches` accepts."""
        return query.is_exact(self.root)

    @functools.cached_property
    def uses_tags(self) -> bool:
        """Whether the query needs the ``text.tags``/``title.tags`` sub-fields."""
        return query.uses_tags(self.root)

    def search_terms(self) -> list[str]:
        """What sources search for: one anchor term per alternative of the rule.

        Every OR alternative contributes; inside an AND or NEAR only the first
        positive operand does (searching for "oil" alone would bring back noise
        the matcher then drops). Wildcards lose their ``*``; NOT parts and field
        filters contribute nothing.
        """

        def terms(node: object) -> list[str]:
            if isinstance(node, (syntax.Or, syntax.SpanOr)):
                return [term for item in node.items for term in terms(item)]
            if isinstance(node, syntax.And):
                for item in node.items:
                    found = terms(item)
                    if found:
                        return found
                return []
            if isinstance(node, syntax.Near):
                return terms(node.left)
            if isinstance(node, syntax.Words):
                term = node.source.strip()
                if ":" in term and not term.startswith(("#", "@", '"')):
                    term = term.split(":", 1)[1]
                term = term.strip().strip('"').rstrip("*").strip()
                return [term] if term else []
            return []

        return list(dict.fromkeys(terms(self.root)))

    def __str__(self) -> str:
        return self.text


def parse_rule(text: str, *, label: str = "query") -> Rule:
    """Parse a rule; raises :class:`RuleSyntaxError` naming the position and what was expected.

    ``label`` starts the error message (the project-file key, ``query`` by default).
    """
    return Rule(text, syntax.parse(text, label=label))
