"""The rule language: lexer, parser and syntax tree.

Grammar (EBNF; operators in capitals, field names in lower case)::

    rule      = or_expr ;
    or_expr   = and_expr , { "OR" , and_expr } ;
    and_expr  = unary , { [ "AND" ] , unary } ;          (* juxtaposition is AND *)
    unary     = "NOT" , unary | near_expr ;
    near_expr = primary , { near , primary } ;           (* left-associative *)
    near      = "NEAR/" , digits , [ "f" ] ;             (* f: in this order *)
    primary   = "(" , or_expr , ")"
              | text_field , ":" , ( "(" , or_expr , ")" | phrase | word )
              | meta_field , ":" , ( phrase | word )
              | phrase | word ;
    text_field = "title" | "text" ;
    meta_field = "site" | "author" | "lang" | "source" ;
    phrase    = '"' , { any char but '"' and '\\' | '\\"' | '\\\\' } , '"' ;
    word      = [ "#" | "@" ] , wordchar , { wordchar } , [ "*" ] ;
    wordchar  = any char but white space, '(', ')', '"' ;

Words and phrases are analysed like the index analyses text (see
:mod:`listener.rules.analysis`), so matching ignores case and accents, and a
word that the tokenizer splits (``e-mail``, ``acme.com/x``) is a phrase.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from listener.errors import ListenerError
from listener.rules import analysis

TEXT_FIELDS: Final = ("text", "title")
META_FIELDS: Final = ("site", "author", "lang", "source")
MAX_NEAR: Final = 100
MIN_PREFIX: Final = 3

_NEAR = re.compile(r"NEAR/(\d+)(f?)")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")
_SOURCE = re.compile(r"[\w.-]+")
_DOMAIN_LABEL = re.compile(r"[\w-]+")
_OPERATORS = ("AND", "OR", "NOT")


class RuleSyntaxError(ListenerError):
    """A rule that does not parse: where (0-based ``position``) and what was ``expected``."""

    def __init__(
        self,
        rule: str,
        position: int,
        expected: str,
        *,
        found: str | None = None,
        hint: str | None = None,
        label: str = "query",
    ) -> None:
        self.rule = rule
        self.position = position
        self.expected = expected
        self.found = found
        self.hint = hint
        self.label = label
        super().__init__(self._message())

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Exceptions pickle as cls(*args); rebuild from the fields instead (multiprocessing).
        rebuild = functools.partial(
            RuleSyntaxError, found=self.found, hint=self.hint, label=self.label
        )
        return rebuild, (self.rule, self.position, self.expected)

    @property
    def detail(self) -> str:
        """The message without its ``label:`` prefix (for a validator that adds its own)."""
        return self._message(with_label=False)

    def _message(self, with_label: bool = True) -> str:
        found = f", found {self.found}" if self.found else ""
        line = self.rule.replace("\n", " ").replace("\t", " ")
        head = f"{self.label}: " if with_label else ""
        head += f'expected {self.expected} at position {self.position}{found}: "{line}"'
        # Show at most 70 characters around the position, with a caret under it.
        start = max(0, min(self.position - 35, len(line) - 70))
        excerpt = line[start : start + 70]
        caret = self.position - start
        lines = [head, f"    {excerpt}", f"    {' ' * caret}^"]
        if self.hint:
            lines.append(f"    {self.hint}")
        return "\n".join(lines)


# -- syntax tree -------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One token of a word or phrase: the indexed token text, or a prefix of it."""

    token: str
    prefix: bool = False
    plain: bool = True  # not a #tag/@handle token: also matches the tagged forms


@dataclass(frozen=True)
class Words:
    """A word, phrase, wildcard, #hashtag or @handle: consecutive token patterns."""

    patterns: tuple[Pattern, ...]
    tags: bool  # analysed with listener_tags (holds a #tag or @handle)
    source: str
    start: int
    fields: tuple[str, ...] = TEXT_FIELDS
    scoped: bool = False

    @property
    def width(self) -> int | None:
        """The number of tokens every match spans."""
        return len(self.patterns)


@dataclass(frozen=True)
class SpanOr:
    """``(a OR b)`` as an operand of NEAR."""

    items: tuple[Span, ...]
    source: str
    start: int

    @property
    def tags(self) -> bool:
        """Whether any alternative holds a #tag or @handle."""
        return any(item.tags for item in self.items)

    @property
    def width(self) -> int | None:
        """The common width of all alternatives, or None when they differ."""
        widths = {item.width for item in self.items}
        return widths.pop() if len(widths) == 1 else None


@dataclass(frozen=True)
class Near:
    """``left NEAR/n right``: at most ``slop`` words apart, in order when ``ordered``."""

    left: Span
    right: Span
    slop: int
    ordered: bool
    source: str
    start: int
    fields: tuple[str, ...] = TEXT_FIELDS
    scoped: bool = False

    @property
    def tags(self) -> bool:
        """Whether any operand holds a #tag or @handle."""
        return self.left.tags or self.right.tags

    @property
    def width(self) -> int | None:
        """Matches of a NEAR have no fixed width."""
        return None

    @property
    def exact(self) -> bool:
        """Whether the engine's span query finds exactly the matcher's matches.

        Span queries look for matches lazily; that finds every document with a
        match only when each operand's matches all have the same width.
        """
        return (
            self.left.width is not None
            and self.right.width is not None
            and all(n.exact for n in (self.left, self.right) if isinstance(n, Near))
        )


Span = Words | SpanOr | Near


@dataclass(frozen=True)
class FieldFilter:
    """``site:``, ``author:``, ``lang:`` or ``source:`` with its normalised value."""

    field: str
    value: str
    source: str
    start: int


@dataclass(frozen=True)
class And:
    """All items match."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one item matches."""

    items: tuple[Node, ...]
    source: str = ""
    start: int = 0


@dataclass(frozen=True)
class Not:
    """The item does not match."""

    item: Node
    start: int


Node = Words | Near | FieldFilter | And | Or | Not


# -- lexer -------------------------------------------------------------------


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # ( ) AND OR NOT NEAR FIELD PHRASE WORD EOF
    value: str
    start: int
    end: int
    slop: int = 0
    ordered: bool = False

    def describe(self) -> str:
        if self.kind == "EOF":
            return "the end of the rule"
        if self.kind in ("(", ")"):
            return f"'{self.kind}'"
        if self.kind == "FIELD":
            return f"{self.value}:"
        return self.value if self.kind != "PHRASE" else f'"{self.value}"'


def _lex(text: str, label: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            lexemes.append(_Lexeme(char, char, i, i + 1))
            i += 1
        elif char == '"':
            i = _lex_phrase(text, i, lexemes, label)
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            lexemes.append(_classify_word(text, text[i:j], i, j, label))
            field = lexemes[-1]
            if field.kind == "FIELD" and j > field.end:
                lexemes.append(_Lexeme("WORD", text[field.end : j], field.end, j))
            i = j
    lexemes.append(_Lexeme("EOF", "", n, n))
    return lexemes


def _lex_phrase(text: str, start: int, lexemes: list[_Lexeme], label: str) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            chars.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            lexemes.append(_Lexeme("PHRASE", "".join(chars), start, i + 1))
            return i + 1
        chars.append(char)
        i += 1
    raise RuleSyntaxError(
        text,
        len(text),
        "'\"'",
        hint=f"the phrase opened at position {start} is not closed",
        label=label,
    )


def _classify_word(text: str, word: str, start: int, end: int, label: str) -> _Lexeme:
    if word in _OPERATORS:
        return _Lexeme(word, word, start, end)
    near = _NEAR.fullmatch(word)
    if near:
        slop = int(near.group(1))
        if slop > MAX_NEAR:
            raise RuleSyntaxError(
                text, start + 5, f"a distance of at most {MAX_NEAR} words", found=word, label=label
            )
        return _Lexeme("NEAR", word, start, end, slop=slop, ordered=bool(near.group(2)))
    if word.startswith("NEAR/") or word == "NEAR":
        raise RuleSyntaxError(
            text,
            min(start + 5, end),
            "a number of words, as in NEAR/5 or NEAR/5f",
            found=word,
            label=label,
        )
    upper = word.upper()
    if upper in _OPERATORS or _NEAR.fullmatch(upper):
        raise RuleSyntaxError(
            text,
            start,
            f"an operator in capitals ({upper})",
            found=word,
            hint=f'to search for the word itself, quote it: "{word}"',
            label=label,
        )
    name, colon, _ = word.partition(":")
    if colon and name.lower() in TEXT_FIELDS + META_FIELDS:
        return _Lexeme("FIELD", name.lower(), start, start + len(name) + 1)
    return _Lexeme("WORD", word, start, end)


# -- parser ------------------------------------------------------------------

_STARTS = ("(", "NOT", "FIELD", "PHRASE", "WORD")
_TERM = "a word, a phrase or '('"


MAX_NESTING = 40  # parentheses, NOTs and NEARs inside each other


class _Parser:
    def __init__(self, text: str, label: str) -> None:
        self.text = text
        self.label = label
        self.lexemes = _lex(text, label)
        self.i = 0
        self.depth = 0

    def nest(self, at: _Lexeme) -> None:
        """Count one more level of nesting; refuse a rule nested deeper than MAX_NESTING.

        Parsing, compiling and matching walk the tree recursively, so a rule nested
        hundreds of levels deep would exhaust Python's stack (RecursionError).
        """
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(
                f"at most {MAX_NESTING} levels of nested parentheses, NOTs and NEARs",
                at,
                hint="write the rule flatter: a OR b OR c needs no parentheses around each part",
            )

    @property
    def peek(self) -> _Lexeme:
        return self.lexemes[self.i]

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.i]
        self.i += 1
        return lexeme

    def fail(
        self, expected: str, at: _Lexeme | None = None, hint: str | None = None
    ) -> RuleSyntaxError:
        lexeme = at or self.peek
        found = None if lexeme.kind == "EOF" else lexeme.describe()
        return RuleSyntaxError(
            self.text, lexeme.start, expected, found=found, hint=hint, label=self.label
        )

    def parse(self) -> Node:
        if self.peek.kind == "EOF":
            raise self.fail(_TERM, hint="the rule is empty")
        node = self.or_expr()
        if self.peek.kind != "EOF":
            if self.peek.kind == ")":
                raise self.fail("an operator or the end of the rule", hint="this ')' has no '('")
            raise self.fail("an operator or the end of the rule")
        return node

    def or_expr(self) -> Node:
        start = self.peek.start
        items = [self.and_expr()]
        while self.peek.kind == "OR":
            operator = self.take()
            if self.peek.kind not in _STARTS:
                raise self.fail(f"{_TERM} after {operator.value}")
            items.append(self.and_expr())
        if len(items) == 1:
            return items[0]
        end = self.lexemes[self.i - 1].end
        return Or(tuple(items), self.text[start:end], start)

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.peek.kind in ("AND", *_STARTS):
            if self.peek.kind == "AND":
                operator = self.take()
                if self.peek.kind not in _STARTS:
                    raise self.fail(f"{_TERM} after {operator.value}")
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        if self.peek.kind == "NOT":
            operator = self.take()
            if self.peek.kind not in _STARTS:
                raise self.fail(f"{_TERM} after NOT")
            self.nest(operator)
            node = Not(self.unary(), operator.start)
            self.depth -= 1
            return node
        return self.near_expr()

    def near_expr(self) -> Node:
        first = self.peek
        left = self.primary()
        depth = self.depth
        while self.peek.kind == "NEAR":
            operator = self.take()
            self.nest(operator)  # a NEAR chain nests to the left
            if self.peek.kind not in ("(", "FIELD", "PHRASE", "WORD"):
                raise self.fail(f"{_TERM} after {operator.value}")
            right_lexeme = self.peek
            right = self.primary()
            end = self.lexemes[self.i - 1].end
            left = Near(
                self._operand(left, first, operator),
                self._operand(right, right_lexeme, operator),
                operator.slop,
                operator.ordered,
                self.text[first.start : end],
                first.start,
            )
        self.depth = depth
        return left

    def _operand(self, node: Node, at: _Lexeme, operator: _Lexeme) -> Span:
        """Check and convert an operand of NEAR to a span."""
        if isinstance(node, (Words, Near)) and node.scoped:
            raise self.fail(
                "a word, a phrase or an OR-group",
                at,
                hint=f"put the field around the whole NEAR: {at.value}:(a {operator.value} b)",
            )
        span = _as_span(node)
        if span is None:
            raise self.fail(
                "a word, a phrase, a wildcard or an OR-group of them",
                at,
                hint=f"{operator.value} cannot take AND, NOT or field filters as operands",
            )
        return span

    def primary(self) -> Node:
        lexeme = self.peek
        if lexeme.kind == "(":
            self.take()
            if self.peek.kind == ")":
                raise self.fail(_TERM, hint="the parentheses are empty")
            self.nest(lexeme)
            node = self.or_expr()
            if self.peek.kind != ")":
                raise self.fail("')'", hint=f"to close the '(' at position {lexeme.start}")
            self.take()
            self.depth -= 1
            return node
        if lexeme.kind == "FIELD":
            return self.field()
        if lexeme.kind in ("PHRASE", "WORD"):
            self.take()
            return self.words(lexeme)
        raise self.fail(_TERM)

    def field(self) -> Node:
        field = self.take()
        value = self.peek
        adjacent = value.start == field.end
        if field.value in TEXT_FIELDS:
            if not adjacent or value.kind not in ("(", "PHRASE", "WORD"):
                raise self.fail(
                    f"a word, a phrase or '(' right after {field.value}:",
                    value if adjacent else _Lexeme("EOF", "", field.end, field.end),
                )
            node = self.primary()
            return self.scope(node, field.value, field)
        if not adjacent or value.kind not in ("PHRASE", "WORD"):
            raise self.fail(
                f"a value right after {field.value}:",
                value if adjacent else _Lexeme("EOF", "", field.end, field.end),
            )
        self.take()
        normalised = self.meta_value(field.value, value)
        return FieldFilter(field.value, normalised, self.text[field.start : value.end], field.start)

    def scope(self, node: Node, name: str, field: _Lexeme) -> Node:
        """Restrict the words and NEARs in ``node`` to one text field."""
        if isinstance(node, (Words, Near)):
            if node.scoped:
                raise self.fail(
                    "a word, a phrase or '('",
                    _Lexeme("FIELD", name, node.start, node.start),
                    hint=f"field operators cannot be nested inside {name}:",
                )
            # A scoped node starts at its field operator (for error positions).
            if isinstance(node, Words):
                return Words(
                    node.patterns, node.tags, node.source, field.start, (name,), scoped=True
                )
            return Near(
                node.left,
                node.right,
                node.slop,
                node.ordered,
                node.source,
                field.start,
                (name,),
                scoped=True,
            )
        if isinstance(node, FieldFilter):
            raise self.fail(
                "a word, a phrase or '('",
                _Lexeme("FIELD", node.field, node.start, node.start),
                hint=f"{node.field}: cannot be used inside {name}:(...)",
            )
        if isinstance(node, And):
            return And(tuple(self.scope(item, name, field) for item in node.items))
        if isinstance(node, Or):
            return Or(
                tuple(self.scope(item, name, field) for item in node.items),
                node.source,
                node.start,
            )
        return Not(self.scope(node.item, name, field), node.start)

    def meta_value(self, field: str, lexeme: _Lexeme) -> str:
        """Validate and normalise the value of a site:, author:, lang: or source: filter."""
        raw = lexeme.value.strip()

        def bad(expected: str, hint: str | None = None) -> RuleSyntaxError:
            return self.fail(expected, lexeme, hint)

        if not raw:
            raise bad(f"a value for {field}:")
        if "*" in raw:
            raise bad(f"an exact {field}: value", hint=f"wildcards are not supported in {field}:")
        if field == "site":
            return _normalise_domain(raw, lambda expected: bad(expected, _SITE_HINT))
        if field == "author":
            value = raw.removeprefix("@")
            if not value:
                raise bad("an author name or handle after author:")
            return value
        if field == "lang":
            value = raw.lower().replace("_", "-")
            if not _LANGUAGE.fullmatch(value):
                raise bad("a language code such as en or pt-br")
            return value
        if not _SOURCE.fullmatch(raw):
            raise bad("a source plugin name such as reddit or hackernews")
        return raw

    def words(self, lexeme: _Lexeme) -> Words:
        """Analyse a word or phrase into token patterns."""
        raw = lexeme.value
        offset = lexeme.start + (1 if lexeme.kind == "PHRASE" else 0)
        stars = [i for i, char in enumerate(raw) if char == "*"]
        tags = analysis.has_tags(raw)
        tokens = analysis.tokenize(raw, tags=tags)

        def fail(
            at: int, expected: str, found: str | None = None, hint: str | None = None
        ) -> NoReturn:
            raise RuleSyntaxError(
                self.text, offset + at, expected, found=found, hint=hint, label=self.label
            )

        for star in stars:
            if not any(token.end == star for token in tokens):
                fail(star, "a letter or digit before '*'", hint=_WILDCARD_HINT)
            if star + 1 < len(raw) and not raw[star + 1].isspace():
                fail(star + 1, "a space or the end of the word after '*'", hint=_WILDCARD_HINT)
        if not tokens:
            raise RuleSyntaxError(
                self.text,
                lexeme.start,
                "a word with letters or digits",
                found=lexeme.describe(),
                label=self.label,
            )
        patterns: list[Pattern] = []
        for token in tokens:
            prefix = token.end in stars
            plain = not (tags and raw[token.start] in "#@" and token.text.startswith(_MARKS))
            pattern = Pattern(token.text, prefix, plain)
            if prefix and len(pattern.token.removeprefix(_marks_of(pattern))) < MIN_PREFIX:
                fail(
                    token.end,
                    f"at least {MIN_PREFIX} letters before '*'",
                    found=raw[token.start : token.end + 1],
                    hint="short wildcards would match too many words",
                )
            patterns.append(pattern)
        source = self.text[lexeme.start : lexeme.end]
        return Words(tuple(patterns), tags, source, lexeme.start)


_MARKS = (analysis.HASHTAG_MARK, analysis.HANDLE_MARK)
_SITE_HINT = "site: takes a domain and matches it and its subdomains, not paths"
_WILDCARD_HINT = "a wildcard goes at the end of a word, as in acme*"


def _marks_of(pattern: Pattern) -> str:
    if pattern.plain:
        return ""
    return next((mark for mark in _MARKS if pattern.token.startswith(mark)), "")


def _as_span(node: Node) -> Span | None:
    """The span form of a NEAR operand, or None when it is not one."""
    if isinstance(node, (Words, Near)):
        return node
    if isinstance(node, Or):
        items = [_as_span(item) for item in node.items]
        if any(item is None for item in items):
            return None
        spans = tuple(item for item in items if item is not None)
        if any(isinstance(item, (Words, Near)) and item.scoped for item in spans):
            return None
        return SpanOr(spans, node.source, node.start)
    return None


def _normalise_domain(raw: str, bad: Callable[[str], RuleSyntaxError]) -> str:
    value = raw.lower()
    value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value)
    host, _, path = value.partition("/")
    if path.strip("/") or "?" in value or "#" in value:
        raise bad("a domain such as example.com")
    value = host.rsplit("@", 1)[-1]
    value = re.sub(r":\d+$", "", value).rstrip(".").removeprefix("www.")
    labels = value.split(".")
    if not value or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise bad("a domain such as example.com")
    return value


def positive(node: Node) -> bool:
    """Whether ``node`` can only match by selecting something (not only by excluding)."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(positive(item) for item in node.items)
    if isinstance(node, Or):
        return all(positive(item) for item in node.items)
    return True


def _first_negative(node: Node) -> int:
    if isinstance(node, Not):
        return node.start
    if isinstance(node, (And, Or)):
        for item in node.items:
            if not positive(item):
                return _first_negative(item)
    return 0


def parse(text: str, *, label: str = "query") -> Node:
    """Parse rule ``text`` into a syntax tree; raises :class:`RuleSyntaxError`."""
    root = _Parser(text, label).parse()
    if not positive(root):
        raise RuleSyntaxError(
            text,
            _first_negative(root),
            "a word or filter to match, not only exclusions",
            hint="NOT alone would select almost every mention; write e.g. acme NOT jobs",
            label=label,
        )
    return root
