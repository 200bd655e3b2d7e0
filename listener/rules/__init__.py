"""Query rules: a brand's boolean search language, run at crawl time and on stored data.

A rule such as ``"shell" NEAR/5 (oil OR gas) NOT site:shell.com`` is parsed
once (:func:`parse_rule`, which raises :class:`RuleSyntaxError` with the
position of the error and what was expected) and then run two ways that agree:

* :meth:`Rule.matches` decides, at crawl time, whether a mention belongs to the
  brand and where the matched words are (:class:`RuleMatch`);
* :meth:`Rule.to_query` is the Elasticsearch query selecting the same stored
  mentions, so a new or edited rule can be applied retroactively (exact unless
  :attr:`Rule.exact_in_engine` is False, when it is a pre-filter and
  :func:`find_matches` lets the matcher decide).

The language is documented in ``docs/rules.md``; the grammar is in
:mod:`listener.rules.syntax`.
"""

from listener.rules.analysis import Token, fold, tokenize
from listener.rules.matcher import RuleInput, RuleMatch
from listener.rules.rematch import RuleHit, find_matches
from listener.rules.rule import Rule, parse_rule
from listener.rules.syntax import RuleSyntaxError

__all__ = [
    "Rule",
    "RuleHit",
    "RuleInput",
    "RuleMatch",
    "RuleSyntaxError",
    "Token",
    "find_matches",
    "fold",
    "parse_rule",
    "tokenize",
]
