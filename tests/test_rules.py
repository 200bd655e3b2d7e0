"""Query rules without an engine: syntax, errors, tokenizer, matcher semantics, query shape."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listener.errors import ListenerError
from listener.mention import Author, Mention, Span
from listener.rules import (
    RuleInput,
    RuleSyntaxError,
    analysis,
    fold,
    parse_rule,
    syntax,
    tokenize,
)


def doc(text: str = "", **fields: Any) -> RuleInput:
    return RuleInput(text=text, **fields)


def matches(rule: str, text: str = "", **fields: Any) -> bool:
    return parse_rule(rule).matches(doc(text, **fields)) is not None


# -- the tokenizer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Café #Acme @Bob's e-mail", ["cafe", "acme", "bob's", "e", "mail"]),
        ("foo.bar 3.5 don't U.S.A. 1,000.5", ["foo.bar", "3.5", "don't", "u.s.a", "1,000.5"]),
        ("Straße Æon œuvre ø ł naïve", ["strasse", "aeon", "oeuvre", "o", "l", "naive"]),
        ("a_b x1y2 12ab34 ½ x²", ["a_b", "x1y2", "12ab34", "x"]),
        ("hello😩world 👍🏽 🇫🇷", ["hello", "😩", "world", "👍🏽", "🇫🇷"]),
        ("日本語 カタカナ ภาษาไทย", ["日", "本", "語", "カタカナ", "ภาษาไทย"]),
        ("http://acme.com/x?y=1 joe@example.com", ["http", "acme.com", "x", "y", "1", "joe"]),
    ],
)
def test_tokenizer_cuts_text_like_the_standard_tokenizer(text: str, tokens: list[str]) -> None:
    assert [t.text for t in tokenize(text)][: len(tokens)] == tokens


def test_tags_analysis_keeps_hashtags_and_handles_apart() -> None:
    text = "#Acme @bob e@mail.com x#y &#39; ##z (#Acme) #_x"
    assert [t.text for t in tokenize(text, tags=True)] == [
        "_ht_acme",
        "_at_bob",
        "e",
        "mail.com",
        "x",
        "y",
        "39",
        "z",
        "_ht_acme",
        "_ht__x",
    ]


def test_token_offsets_are_character_offsets_into_the_original_text() -> None:
    text = "😀 #Acme and ACME"
    assert [(t.start, t.end) for t in tokenize(text)] == [(0, 1), (3, 7), (8, 11), (12, 16)]
    tagged = tokenize(text, tags=True)
    assert (tagged[1].text, tagged[1].start, tagged[1].end) == ("_ht_acme", 2, 7)


def test_long_tokens_are_cut_at_255_characters() -> None:
    assert [len(t.text) for t in tokenize("a" * 600)] == [255, 255, 90]


def test_fold_lowercases_and_folds_to_ascii() -> None:
    assert fold("Ǆemal ÀÉÎÕÜ ß ﬁ") == "dzemal aeiou ss fi"


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=60))
def test_tokens_are_ordered_folded_slices_of_the_text(text: str) -> None:
    for tags in (False, True):
        tokens = tokenize(text, tags=tags)
        ends = [0] + [t.end for t in tokens]
        for previous_end, token in zip(ends, tokens, strict=False):
            assert previous_end <= token.start < token.end <= len(text)
            if not tags:
                assert token.text == fold(text[token.start : token.end])


def test_the_analysis_settings_are_those_of_the_index_template() -> None:
    raw = files("listener.index_templates").joinpath("mentions.json").read_text(encoding="utf-8")
    template = json.loads(raw)["template"]
    assert template["settings"]["analysis"] == analysis.ANALYSIS
    properties = template["mappings"]["properties"]
    for name in ("text", "title"):
        assert properties[name]["analyzer"] == analysis.TEXT_ANALYZER
        sub = properties[name]["fields"][analysis.TAGS_SUBFIELD]
        assert sub == {"type": "text", "analyzer": analysis.TAGS_ANALYZER}


# -- syntax ------------------------------------------------------------------


def shape(node: syntax.Node | syntax.Span) -> Any:
    """A compact picture of a syntax tree."""
    if isinstance(node, syntax.Words):
        return node.source
    if isinstance(node, syntax.FieldFilter):
        return f"{node.field}={node.value}"
    if isinstance(node, syntax.Not):
        return ("NOT", shape(node.item))
    if isinstance(node, syntax.And):
        return ("AND", *map(shape, node.items))
    if isinstance(node, (syntax.Or, syntax.SpanOr)):
        return ("OR", *map(shape, node.items))
    near = f"NEAR/{node.slop}{'f' if node.ordered else ''}"
    return (near, shape(node.left), shape(node.right))


@pytest.mark.parametrize(
    ("rule", "tree"),
    [
        ("acme corp", ("AND", "acme", "corp")),
        ("a b OR c", ("OR", ("AND", "a", "b"), "c")),
        ("a AND (b OR c)", ("AND", "a", ("OR", "b", "c"))),
        ("a NOT b", ("AND", "a", ("NOT", "b"))),
        ("a AND NOT b", ("AND", "a", ("NOT", "b"))),
        ("a NOT b NEAR/2 c", ("AND", "a", ("NOT", ("NEAR/2", "b", "c")))),
        ("a NEAR/2 b NEAR/3f c", ("NEAR/3f", ("NEAR/2", "a", "b"), "c")),
        ('"shell" NEAR/5 (oil OR gas)', ("NEAR/5", '"shell"', ("OR", "oil", "gas"))),
        ("x site:Acme.com", ("AND", "x", "site=acme.com")),
        ("x author:@Bob", ("AND", "x", "author=Bob")),
        ('x author:"Jane Doe"', ("AND", "x", "author=Jane Doe")),
        ("x lang:pt_BR source:reddit", ("AND", "x", "lang=pt-br", "source=reddit")),
        ("site:https://www.acme.com", "site=acme.com"),
        ('title:"acme corp"', '"acme corp"'),
        ("re:invent", "re:invent"),
    ],
)
def test_rules_parse_with_the_documented_precedence(rule: str, tree: Any) -> None:
    assert shape(parse_rule(rule).root) == tree


def test_field_operators_scope_words_and_nears() -> None:
    root = parse_rule("title:(acme OR a NEAR/2 b) text:x y").root
    assert isinstance(root, syntax.And)
    scoped_or, text_x, plain_y = root.items
    assert isinstance(scoped_or, syntax.Or)
    assert all(item.fields == ("title",) for item in scoped_or.items)  # type: ignore[union-attr]
    assert text_x.fields == ("text",)  # type: ignore[union-attr]
    assert plain_y.fields == ("text", "title")  # type: ignore[union-attr]


def test_words_are_analysed_into_token_patterns() -> None:
    words = parse_rule('"Acme-Corp café*"').root
    assert isinstance(words, syntax.Words)
    assert [(p.token, p.prefix) for p in words.patterns] == [
        ("acme", False),
        ("corp", False),
        ("cafe", True),
    ]
    tag = parse_rule('"love #Acme"').root
    assert isinstance(tag, syntax.Words) and tag.tags
    assert [(p.token, p.plain) for p in tag.patterns] == [("love", True), ("_ht_acme", False)]


def test_the_error_message_names_the_position_and_what_was_expected() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule("acme AND (foo")
    error = caught.value
    assert isinstance(error, ListenerError)
    assert (error.position, error.expected) == (13, "')'")
    assert str(error).splitlines() == [
        "query: expected ')' at position 13: \"acme AND (foo\"",
        "    acme AND (foo",
        "                 ^",
        "    to close the '(' at position 9",
    ]


def test_rules_and_errors_survive_pickling() -> None:
    rule = parse_rule('"shell" NEAR/5 (oil OR gas) NOT site:shell.com')
    assert pickle.loads(pickle.dumps(rule)) == rule
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule("acme or x", label="brands[1].query")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.position, copy.hint) == (
        str(caught.value),
        caught.value.position,
        caught.value.hint,
    )


def test_the_error_label_names_the_key() -> None:
    with pytest.raises(RuleSyntaxError, match=r"^brands\[0\]\.query: expected") as caught:
        parse_rule("acme OR", label="brands[0].query")
    assert caught.value.detail.startswith("expected a word, a phrase or '(' after OR at position 7")


@pytest.mark.parametrize(
    ("rule", "position", "expected"),
    [
        ("", 0, "a word, a phrase or '('"),
        ("acme)", 4, "an operator or the end of the rule"),
        ("acme AND", 8, "a word, a phrase or '(' after AND"),
        ("AND acme", 0, "a word, a phrase or '('"),
        ("acme OR OR b", 8, "a word, a phrase or '(' after OR"),
        ("acme NOT", 8, "a word, a phrase or '(' after NOT"),
        ('say "acme', 9, "'\"'"),
        ("()", 1, "a word, a phrase or '('"),
        ("a NEAR/x b", 7, "a number of words, as in NEAR/5 or NEAR/5f"),
        ("a NEAR b", 6, "a number of words, as in NEAR/5 or NEAR/5f"),
        ("a NEAR/500 b", 7, "a distance of at most 100 words"),
        ("a NEAR/5 NOT b", 9, "a word, a phrase or '(' after NEAR/5"),
        ("x NEAR/3 (a AND b)", 9, "a word, a phrase, a wildcard or an OR-group of them"),
        ("x NEAR/3 (a OR site:x.com)", 9, "a word, a phrase, a wildcard or an OR-group of them"),
        ("title:a NEAR/3 b", 0, "a word, a phrase or an OR-group"),
        ("acme or globex", 5, "an operator in capitals (OR)"),
        ("acme near/3 x", 5, "an operator in capitals (NEAR/3)"),
        ("site:", 5, "a value right after site:"),
        ("site: acme.com", 5, "a value right after site:"),
        ("site:acme.com/blog", 5, "a domain such as example.com"),
        ("site:*.acme.com", 5, "an exact site: value"),
        ("lang:english", 5, "a language code such as en or pt-br"),
        ("title:", 6, "a word, a phrase or '(' right after title:"),
        ("title:(site:x.com)", 7, "a word, a phrase or '('"),
        ("title:(text:x)", 7, "a word, a phrase or '('"),
        ("acme*x", 5, "a space or the end of the word after '*'"),
        ("*acme", 0, "a letter or digit before '*'"),
        ("ac*", 2, "at least 3 letters before '*'"),
        ("#ac*", 3, "at least 3 letters before '*'"),
        ('"ac*me corp"', 4, "a space or the end of the word after '*'"),
        ("#", 0, "a word with letters or digits"),
        ("acme -", 5, "a word with letters or digits"),
        ("NOT acme", 0, "a word or filter to match, not only exclusions"),
        ("jobs OR NOT acme", 8, "a word or filter to match, not only exclusions"),
    ],
)
def test_bad_rules_are_rejected_precisely(rule: str, position: int, expected: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(rule)
    assert (caught.value.position, caught.value.expected) == (position, expected)
    assert f"at position {position}" in str(caught.value)


# -- matching ----------------------------------------------------------------


def test_terms_ignore_case_and_accents_on_both_sides() -> None:
    assert matches("café", "CAFE au lait")
    assert matches("CAFE", "un café")
    assert matches("Straße", "STRASSE")
    assert not matches("cafe", "cafeteria")


def test_a_plain_word_matches_whole_tokens_including_hashtags_and_handles() -> None:
    for text in ("Acme!", "#Acme", "@ACME", "(acme)", "foo-acme"):
        assert matches("acme", text), text
    for text in ("acmes", "acme's", "acmecorp", "acme.com", "acme_corp"):
        assert not matches("acme", text), text
    assert matches("acme*", "Acme's new thing")
    assert matches("acme*", "#AcmeCorp")


def test_hashtags_and_handles_are_literal() -> None:
    assert matches("#acme", "love #Acme")
    assert not matches("#acme", "love acme")
    assert not matches("#acme", "love @acme")
    assert not matches("#acme", "x#acme or &#acme")
    assert matches("@acme", "cc @ACME")
    assert not matches("@acme", "mail bob@acme")
    assert matches("#acme*", "#AcmeCorp rocks")
    assert not matches("#acme*", "AcmeCorp rocks")


def test_phrases_are_consecutive_words() -> None:
    assert matches('"acme corp"', "Acme Corp. announced")
    assert matches('"acme corp"', "acme-corp")
    assert not matches('"acme corp"', "acme big corp")
    assert matches('"love #acme"', "I love #acme")
    assert not matches('"love #acme"', "I love acme")
    assert matches("e-mail", "send an E mail")


def test_near_counts_the_words_between_in_any_order() -> None:
    text = "Shell said the price of oil rose"
    assert matches('"shell" NEAR/4 (oil OR gas)', text)
    assert not matches('"shell" NEAR/3 (oil OR gas)', text)
    assert matches("oil NEAR/4 shell", text)
    assert matches("shell NEAR/4f oil", text)
    assert not matches("oil NEAR/4f shell", text)
    assert matches("shell NEAR/0 said", text)


def test_near_operands_may_overlap_as_in_span_queries() -> None:
    assert matches("acme NEAR/2 acme", "only one acme here")
    assert not matches("acme NEAR/2f acme", "only one acme here")
    assert matches("acme NEAR/2f acme", "acme and acme")


def test_near_stays_within_one_field() -> None:
    assert not matches("acme NEAR/3 oil", "oil", title="acme")
    assert matches("acme oil", "oil", title="acme")
    assert matches("title:(acme NEAR/1 oil)", "", title="acme oil")
    assert not matches("title:acme", "acme", title="other")


def test_field_filters() -> None:
    assert matches("site:acme.com", domain="acme.com")
    assert matches("site:acme.com", domain="news.ACME.com")
    assert not matches("site:acme.com", domain="notacme.com")
    assert matches("author:bob", author_handle="@Bob")
    assert matches("author:@bob", author_handle="bob")
    assert matches('author:"jane doe"', author_name="Jane Doe")
    assert not matches("author:jane", author_name="Jane Doe")
    assert matches("lang:en", language="en-US")
    assert not matches("lang:en", language="eng")
    assert matches("source:Reddit", source="reddit")
    assert not matches("source:reddit")


def test_not_excludes() -> None:
    assert matches("acme NOT jobs", "acme launches")
    assert not matches("acme NOT jobs", "acme jobs")
    assert not matches("acme NOT site:acme.com", "acme", domain="blog.acme.com")
    assert matches("acme NOT title:jobs", "acme jobs", title="news")


def test_a_match_carries_the_keyword_and_the_positions_in_text() -> None:
    rule = parse_rule('(globex OR "acme corp" OR #acme) NOT jobs* title:news')
    match = rule.matches(doc("Acme Corp and #acme, again Acme Corp", title="news about acme"))
    assert match is not None
    assert match.keyword == '"acme corp"'
    assert match.terms == ('"acme corp"', "#acme", "news")
    assert match.positions == (Span(start=0, end=9), Span(start=14, end=19), Span(start=27, end=36))


def test_near_positions_are_the_words_taking_part() -> None:
    match = parse_rule("shell NEAR/2 (oil OR gas)").matches(doc("Shell oil, then gas. Oil"))
    assert match is not None
    assert [(p.start, p.end) for p in match.positions] == [(0, 5), (6, 9), (16, 19)]


def test_filter_only_rules_match_without_positions() -> None:
    match = parse_rule("site:acme.com lang:en").matches(
        doc("hello", domain="acme.com", language="en")
    )
    assert match is not None
    assert (match.keyword, match.positions) == ("site:acme.com", ())


def test_rule_input_from_a_mention_and_from_its_stored_document() -> None:
    mention = Mention.create(
        source="reddit",
        source_kind="forum",
        url="https://www.Acme.com/r/1",
        text="Acme rocks",
        title="News",
        language="en",
        author=Author(name="Bob", handle="bob"),
        published_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    from_mention = RuleInput.from_mention(mention)
    assert from_mention == RuleInput.from_document(mention.to_document())
    assert (from_mention.domain, from_mention.author_handle) == ("acme.com", "bob")


# -- the engine query ----------------------------------------------------------


def test_queries_target_the_analysed_fields_with_analysed_tokens() -> None:
    assert parse_rule("Café").to_query() == {
        "bool": {
            "should": [
                {"term": {"text": {"value": "cafe"}}},
                {"term": {"title": {"value": "cafe"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert parse_rule("text:#Acme").to_query() == {"term": {"text.tags": {"value": "_ht_acme"}}}
    near = parse_rule("text:(acme NEAR/3f oil*)").to_query()
    assert near == {
        "span_near": {
            "clauses": [
                {"span_term": {"text": {"value": "acme"}}},
                {"span_multi": {"match": {"prefix": {"text": {"value": "oil"}}}}},
            ],
            "slop": 3,
            "in_order": True,
        }
    }


def test_plain_words_next_to_hashtags_match_every_tagged_form() -> None:
    query = parse_rule("text:(acme NEAR/2 #deal)").to_query()
    first = query["span_near"]["clauses"][0]
    assert first == {
        "span_or": {
            "clauses": [
                {"span_term": {"text.tags": {"value": form}}}
                for form in ("acme", "_ht_acme", "_at_acme")
            ]
        }
    }


def test_not_becomes_must_not_and_filters_are_case_insensitive() -> None:
    query = parse_rule("text:acme NOT site:Acme.com").to_query()
    assert query["bool"]["filter"] == [{"term": {"text": {"value": "acme"}}}]
    site = query["bool"]["must_not"][0]["bool"]["should"]
    assert site == [
        {"term": {"domain": {"value": "acme.com", "case_insensitive": True}}},
        {"wildcard": {"domain": {"value": "*.acme.com", "case_insensitive": True}}},
    ]


@pytest.mark.parametrize(
    ("rule", "exact"),
    [
        ("a NEAR/3 (b OR cat*)", True),
        ('a NEAR/3 ("b c" OR "d e")', True),
        ('a NEAR/3 (b OR "c d")', False),
        ("(a NEAR/1 b) NEAR/3 c", False),
        ('x NOT (a NEAR/3 (b OR "c d"))', False),
        ("a b site:x.com NOT c", True),
    ],
)
def test_exactness_in_the_engine(rule: str, exact: bool) -> None:
    assert parse_rule(rule).exact_in_engine is exact


def test_an_inexact_near_is_widened_outside_not_and_narrowed_inside() -> None:
    rule = parse_rule('text:(a NEAR/3 (b OR "c d"))')
    widened = rule.to_query()
    assert '"slop": 3' not in json.dumps(widened)  # both operands present: a pre-filter
    negated = parse_rule('x NOT text:(a NEAR/3 (b OR "c d"))').to_query()
    assert '"slop": 3' in json.dumps(negated["bool"]["must_not"])  # the lazy span query


def test_uses_tags() -> None:
    assert parse_rule("acme NOT #jobs").uses_tags
    assert not parse_rule('acme "x y" site:a.com').uses_tags


def _documented_rules() -> list[str]:
    docs = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    rules: list[str] = []
    inside = False
    for line in docs.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line == "```rule"
        elif inside and line.strip():
            rules.append(line.strip())
    return rules


@pytest.mark.parametrize("rule", _documented_rules())
def test_every_rule_in_the_documentation_parses(rule: str) -> None:
    parse_rule(rule)


def test_the_cookbook_rules_do_what_they_say() -> None:
    apple = '(apple NEAR/5 (iphone* OR ipad* OR macbook* OR ios OR "tim cook")) OR #apple OR @apple'
    assert matches(apple, "The new Apple iPhone 15 is here")
    assert not matches(apple, "apple pie with cinnamon")
    jobs = 'acme NOT (hiring OR "we\'re hiring" OR "job opening*" OR apply OR career* OR #job*)'
    assert matches(jobs, "Acme's new anvil is great, says ACME")
    assert not matches(jobs, "ACME: we\u2019re hiring! #jobs")
    assert matches('"we\'re"', "we\u2019re")  # asciifolding straightens the apostrophe
    tesla = 'tesla NOT (tsla OR stock* OR shares OR nasdaq OR "price target" OR earnings)'
    assert matches(tesla, "My Tesla drove itself home")
    assert not matches(tesla, "$TSLA up 5% as Tesla beats")
