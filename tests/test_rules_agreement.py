"""The two executions of a rule agree: the crawl-time matcher and the engine query.

Everything here runs against the real engine (the session's embedded engine,
or the cluster in LISTENER_TEST_ES_URL):

* the tokenizer reproduces the index analysis on random and real text;
* generated rules (hypothesis, derandomised) select the same documents through
  :meth:`Rule.matches` and :meth:`Rule.to_query`, on a fixed generated corpus
  and on generated documents;
* hand-written rules select the same real tweets both ways.

Where a rule is not exact in the engine (``exact_in_engine`` False), the engine
result must contain the matcher's (it is a pre-filter).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import SHARED_FIXTURES
from elasticsearch import Elasticsearch, helpers
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from listener.mention import Author, Mention
from listener.rules import Rule, RuleInput, analysis, find_matches, parse_rule, tokenize
from listener.store.indexer import load_templates

pytestmark = pytest.mark.engine

FIXTURES = SHARED_FIXTURES
TWEETS = FIXTURES / "sentiment_ground_truth" / "tweeteval_semeval2017"

# -- the vocabulary shared by generated rules and texts ----------------------

WORDS = ["acme", "shell", "oil", "gas", "cafe", "naive", "jobs", "tesla", "launch", "deal", "corp"]
ACCENTED = {
    "acme": "acmé",
    "cafe": "café",
    "naive": "naïve",
    "oil": "öil",
    "jobs": "jöbs",
    "deal": "déal",
}
FILLERS = ["the", "a", "is", "new", "and", "we", "😀", "👍🏽", "$TSLA", "e-mail", "don't", "3.5"]
DOMAINS = ["acme.com", "news.acme.com", "notacme.com", "example.org", "blog.example.org"]
AUTHORS = [("Bob", "bob"), ("Alice Smith", "@alice"), ("ACME News", "acmenews"), (None, None)]
LANGUAGES = ["en", "en-US", "pt", "pt-BR", "fr", None]
SOURCES = ["reddit", "twitter", "hackernews"]


def word_forms(word: str) -> list[str]:
    """Ways a word shows up in text: case, accents, tags, affixes, punctuation."""
    forms = [
        word,
        word.capitalize(),
        word.upper(),
        f"#{word}",
        f"#{word.capitalize()}",
        f"@{word}",
        f"{word}'s",
        f"{word}s",
        f"{word}corp",
        f"#{word}corp",
        f"{word}-corp",
        f"{word}.com",
        f"({word})",
        f"{word},",
        f"x#{word}",
        f"&#{word}",
        f"bob@{word}",
    ]
    if word in ACCENTED:
        forms += [ACCENTED[word], ACCENTED[word].upper(), f"#{ACCENTED[word]}"]
    return forms


PIECES = [form for word in WORDS for form in word_forms(word)] + FILLERS
SEPARATORS = [" ", " ", " ", ", ", ". ", "\n", " - ", "  "]


def join(pieces: list[str], separators: list[str]) -> str:
    """Join text pieces with the given separators (cycled)."""
    out = ""
    for i, piece in enumerate(pieces):
        out += (separators[i % len(separators)] if i else "") + piece
    return out


@dataclass(frozen=True)
class Doc:
    """A generated mention: what the matcher sees and what the index stores."""

    mention: Mention
    input: RuleInput


def make_doc(
    key: str,
    text: str,
    title: str | None,
    domain: str,
    author: tuple[str | None, str | None],
    language: str | None,
    source: str,
    thread: str = "corpus",
) -> Doc:
    """Build a generated document as a Mention, the way sources do."""
    mention = Mention.create(
        source=source,
        source_kind="social",
        url=f"https://{domain}/posts/{key}",
        text=text,
        title=title,
        language=language,
        author=Author(name=author[0], handle=author[1]),
        published_at=datetime(2024, 5, 1, tzinfo=UTC),
        crawled_at=datetime(2024, 5, 1, tzinfo=UTC),
        thread_id=thread,
    )
    return Doc(mention, RuleInput.from_mention(mention))


def random_corpus(size: int, seed: int = 20240501) -> list[Doc]:
    """A fixed corpus of generated documents over the vocabulary."""
    rng = random.Random(seed)
    docs = []
    for i in range(size):
        text = join(
            [rng.choice(PIECES) for _ in range(rng.randint(0, 14))],
            [rng.choice(SEPARATORS) for _ in range(4)],
        )
        title = None
        if rng.random() < 0.4:
            title = join([rng.choice(PIECES) for _ in range(rng.randint(1, 6))], [" "])
        docs.append(
            make_doc(
                f"c{i}",
                text,
                title,
                rng.choice(DOMAINS),
                rng.choice(AUTHORS),
                rng.choice(LANGUAGES),
                rng.choice(SOURCES),
            )
        )
    return docs


# -- generated rules ---------------------------------------------------------


def spelled(word: str) -> st.SearchStrategy[str]:
    """A vocabulary word as a user might type it in a rule."""
    options = [word, word.capitalize(), word.upper()]
    if word in ACCENTED:
        options.append(ACCENTED[word])
    return st.sampled_from(options)


words_st = st.sampled_from(WORDS)


@st.composite
def word_leaf(draw: st.DrawFn) -> str:
    """A word, phrase, wildcard, hashtag or handle."""
    kind = draw(st.sampled_from(["term", "term", "phrase", "wildcard", "tag", "handle", "tagged"]))
    word = draw(words_st)
    if kind == "term":
        return draw(spelled(word))
    if kind == "phrase":
        rest = draw(st.lists(words_st, min_size=1, max_size=2))
        if draw(st.booleans()):
            rest[-1] = rest[-1][: draw(st.integers(3, len(rest[-1])))] + "*"
        return '"' + " ".join([draw(spelled(word)), *rest]) + '"'
    stem = word[: draw(st.integers(3, len(word)))] + "*" if draw(st.booleans()) else word
    if kind == "wildcard":
        return word[: draw(st.integers(3, len(word)))] + "*"
    if kind == "tag":
        return "#" + stem
    if kind == "handle":
        return "@" + stem
    return f'"{draw(words_st)} #{word}"'


filter_leaf = st.sampled_from(
    [
        "site:acme.com",
        "site:example.org",
        "site:news.acme.com",
        "author:bob",
        "author:@alice",
        'author:"Alice Smith"',
        "lang:en",
        "lang:pt",
        "source:reddit",
        "source:Twitter",
    ]
)


def near_operator() -> st.SearchStrategy[str]:
    """NEAR/n or NEAR/nf with a small n."""
    return st.builds(
        lambda n, ordered: f"NEAR/{n}{'f' if ordered else ''}",
        st.integers(0, 4),
        st.booleans(),
    )


def span_operand(depth: int) -> st.SearchStrategy[str]:
    """An operand of NEAR: a word leaf, an OR-group of them, or a nested NEAR."""
    group = st.lists(word_leaf(), min_size=2, max_size=3).map(lambda xs: f"({' OR '.join(xs)})")
    options = [word_leaf(), word_leaf(), group]
    if depth > 0:
        options.append(near(depth - 1).map(lambda x: f"({x})"))
    return st.one_of(options)


def near(depth: int) -> st.SearchStrategy[str]:
    """``a NEAR/n b``."""
    return st.builds(
        lambda a, op, b: f"{a} {op} {b}", span_operand(depth), near_operator(), span_operand(depth)
    )


def scoped() -> st.SearchStrategy[str]:
    """``title:`` or ``text:`` around a word leaf or a NEAR."""
    return st.builds(
        lambda field, inner: f"{field}:({inner})",
        st.sampled_from(["title", "text"]),
        st.one_of(word_leaf(), near(0)),
    )


def positive(depth: int) -> st.SearchStrategy[str]:
    """A rule that selects something (not only exclusions)."""
    leaves = st.one_of(word_leaf(), word_leaf(), filter_leaf, near(1), scoped())
    if depth == 0:
        return leaves
    sub = positive(depth - 1)
    either = st.one_of(sub, sub.map(lambda x: f"NOT {x}"))
    return st.one_of(
        leaves,
        st.builds(lambda a, op, b: f"({a}{op}{b})", sub, st.sampled_from([" ", " AND "]), either),
        st.builds(lambda a, b: f"({a} OR {b})", sub, sub),
    )


rules_st = positive(2)

# -- engine fixtures -----------------------------------------------------------


@pytest.fixture(scope="module")
def make_index(session_client: Elasticsearch) -> Iterator[Callable[[], str]]:
    """Create indices from the shipped mentions template (with its .tags sub-fields)."""
    prefix = f"r{uuid.uuid4().hex[:10]}"
    body = load_templates(prefix)[f"{prefix}-mentions"]["template"]
    names: list[str] = []

    def create() -> str:
        name = f"{prefix}-mentions-{len(names)}"
        session_client.indices.create(
            index=name, settings=body["settings"], mappings=body["mappings"]
        )
        names.append(name)
        return name

    yield create
    if names:
        session_client.options(ignore_status=404).indices.delete(index=",".join(names))


@pytest.fixture(scope="module")
def rules_index(make_index: Callable[[], str]) -> str:
    """An empty index for analysis checks and generated documents."""
    return make_index()


def index_docs(client: Elasticsearch, index: str, docs: list[Doc]) -> None:
    """Bulk-index documents with their mention ids and make them searchable."""
    actions = (
        {"_index": index, "_id": doc.mention.id, "_source": doc.mention.to_document()}
        for doc in docs
    )
    helpers.bulk(client, actions, refresh="wait_for")


def engine_ids(
    client: Elasticsearch, index: str, rule: Rule, thread: str | None = None
) -> set[str]:
    """The ids the engine selects for a rule (optionally within one generated batch)."""
    filters: list[dict[str, Any]] = [rule.to_query()]
    if thread:
        filters.append({"term": {"thread_id": thread}})
    response = client.search(
        index=index, query={"bool": {"filter": filters}}, size=10_000, source=False
    )
    return {hit["_id"] for hit in response["hits"]["hits"]}


def matcher_ids(rule: Rule, docs: list[Doc]) -> set[str]:
    """The ids the crawl-time matcher accepts."""
    return {doc.mention.id for doc in docs if rule.matches(doc.input) is not None}


def check_agreement(rule: Rule, engine: set[str], matcher: set[str]) -> None:
    """Equal sets when exact; otherwise the engine's pre-filter contains the matcher's set."""
    if rule.exact_in_engine:
        assert engine == matcher, (
            f"rule {rule.text!r}: only engine {sorted(engine - matcher)[:5]}, "
            f"only matcher {sorted(matcher - engine)[:5]}"
        )
    else:
        assert matcher <= engine, f"rule {rule.text!r}: pre-filter missed {matcher - engine}"


# -- the tokenizer reproduces the index analysis -----------------------------


def _utf16(text: str, offset: int) -> int:
    return len(text[:offset].encode("utf-16-le")) // 2


def _analyze(client: Elasticsearch, index: str, analyzer: str, texts: list[str]) -> list[Any]:
    """Tokens per text from the engine's _analyze, many texts per call."""
    out: list[list[tuple[str, int, int]]] = []
    for i in range(0, len(texts), 200):
        batch = texts[i : i + 200]
        bases = []
        base = 0
        for text in batch:
            bases.append(base)
            base += _utf16(text, len(text)) + 1
        response = client.indices.analyze(index=index, analyzer=analyzer, text=batch)
        grouped: list[list[tuple[str, int, int]]] = [[] for _ in batch]
        for token in response["tokens"]:
            j = max(k for k, b in enumerate(bases) if b <= token["start_offset"])
            grouped[j].append(
                (token["token"], token["start_offset"] - bases[j], token["end_offset"] - bases[j])
            )
        out.extend(grouped)
    return out


def _sample_texts(count: int, seed: int) -> list[str]:
    """Random strings mixing every character class the tokenizer knows."""
    rng = random.Random(seed)
    by_class: dict[int, list[str]] = {}
    for point in [*range(0x20, 0xD800), *range(0xE000, 0x30000)]:
        char = chr(point)
        by_class.setdefault(analysis._properties(char) & 0x1F, []).append(char)
    pool = [c for chars in by_class.values() for c in rng.sample(chars, min(len(chars), 30))]
    pool += list("abcdeXYZéüßø0123456789    ..,,''\"-_#@:;!?\n&") * 2
    pool += ["\u200d", "\u0301", "😀", "👍", "🏽", "🇫", "🇷", "\ufe0f", "ภ", "\u0e31", "カ", "日"]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(count)]


def _tweets(limit: int) -> list[str]:
    path = TWEETS / "test_text.txt"
    if not path.is_file():
        pytest.skip(f"real tweets not available at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines[:limit]]


@pytest.mark.parametrize("tags", [False, True], ids=["listener_text", "listener_tags"])
def test_tokenizer_reproduces_the_index_analysis(
    session_client: Elasticsearch, rules_index: str, tags: bool
) -> None:
    # Random text over every character class checks the measured tables, which are the
    # embedded engine's; a Lucene cluster differs on rare scripts, so there only real text.
    embedded = session_client.info()["name"] == "noida-db"
    texts = (_sample_texts(3000, seed=7) if embedded else []) + _tweets(2000)
    analyzer = analysis.TAGS_ANALYZER if tags else analysis.TEXT_ANALYZER
    engine = _analyze(session_client, rules_index, analyzer, texts)
    mismatches = []
    for text, expected in zip(texts, engine, strict=True):
        ours = [
            (t.text, _utf16(text, t.start), _utf16(text, t.end)) for t in tokenize(text, tags=tags)
        ]
        if tags:  # the engine's offsets after a character filter are approximate
            ours = [(t, 0, 0) for t, _, _ in ours]
            expected = [(t, 0, 0) for t, _, _ in expected]
        if ours != expected:
            mismatches.append((text, ours, expected))
    assert not mismatches, mismatches[:3]


# -- generated rules on a generated corpus ----------------------------------

CORPUS_SIZE = 500


@pytest.fixture(scope="module")
def corpus(session_client: Elasticsearch, make_index: Callable[[], str]) -> tuple[str, list[Doc]]:
    """The fixed generated corpus, in an index of its own."""
    docs = random_corpus(CORPUS_SIZE)
    index = make_index()
    index_docs(session_client, index, docs)
    return index, docs


@pytest.mark.slow
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=rules_st)
def test_generated_rules_select_the_same_documents_both_ways(
    session_client: Elasticsearch, corpus: tuple[str, list[Doc]], text: str
) -> None:
    index, docs = corpus
    rule = parse_rule(text)
    engine = engine_ids(session_client, index, rule)
    matcher = matcher_ids(rule, docs)
    event("exact" if rule.exact_in_engine else "pre-filter")
    event("matches none" if not matcher else "matches some")
    check_agreement(rule, engine, matcher)


# -- generated rules on generated documents ----------------------------------


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A handful of generated documents (text, title and metadata)."""
    texts = st.lists(st.sampled_from(PIECES), max_size=10).flatmap(
        lambda pieces: st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=3).map(
            lambda seps: join(pieces, seps)
        )
    )
    return draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "text": texts,
                    "title": st.one_of(st.none(), texts),
                    "domain": st.sampled_from(DOMAINS),
                    "author": st.sampled_from(AUTHORS),
                    "language": st.sampled_from(LANGUAGES),
                    "source": st.sampled_from(SOURCES),
                }
            ),
            min_size=1,
            max_size=8,
        )
    )


@pytest.mark.slow
@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=rules_st, fields=documents())
def test_generated_rules_on_generated_documents(
    session_client: Elasticsearch, rules_index: str, text: str, fields: list[dict[str, Any]]
) -> None:
    thread = f"gen-{uuid.uuid4().hex[:12]}"
    docs = [make_doc(f"{thread}-{i}", thread=thread, **f) for i, f in enumerate(fields)]
    index_docs(session_client, rules_index, docs)
    rule = parse_rule(text)
    check_agreement(
        rule, engine_ids(session_client, rules_index, rule, thread), matcher_ids(rule, docs)
    )


# -- hand-written rules on real tweets ---------------------------------------

TWEET_RULES = [
    "tesla NOT (job* OR hiring OR stock)",
    '"google earth" NEAR/3 vr',
    "microsoft NEAR/5f linux",
    "#uber OR (uber NEAR/4 (driver* OR ride* OR taxi))",
    '(obama OR trump) NEAR/8 (obamacare OR healthcare OR "health care")',
    "(#israel OR israel*) AND (#palestine OR palestin* OR gaza) NOT @user",
    '"fantastic beasts" OR #fantasticbeasts',
    "(beauty NEAR/2f beast) OR #beautyandthebeast",
    '"mannequin challenge" OR #mannequinchallenge OR title:mannequin*',
    "trump site:twitter.com lang:en NOT author:newsbot",
    "isis NOT #isis source:reddit",
    '(clinton OR hillary) NEAR/3 (email* OR "e-mail" OR emails)',
    'hatchimal* OR "hatchimals"',
    "author:@newsbot (trump OR obama)",
    "#onedirection OR (harry NEAR/1f styles)",
    "site:example.org title:(trump OR #trump OR obama*)",
]


@pytest.fixture(scope="module")
def tweets(session_client: Elasticsearch, make_index: Callable[[], str]) -> tuple[str, list[Doc]]:
    """About 2,000 real tweets with deterministic metadata (some with a real tweet as title)."""
    texts = _tweets(2000)
    titles_path = TWEETS / "val_text.txt"
    titles = titles_path.read_text(encoding="utf-8").splitlines() if titles_path.is_file() else []
    docs = []
    for i, text in enumerate(texts):
        docs.append(
            make_doc(
                f"tweet{i}",
                text,
                titles[i].strip() if titles and i % 5 == 0 else None,
                ["twitter.com", "mobile.twitter.com", "example.org", "reddit.com"][i % 4],
                [("News Bot", "@newsbot"), ("Jane Doe", "jane"), (None, None)][i % 3],
                ["en", "en-GB", "es"][i % 7 % 3],
                ["twitter", "reddit"][i % 2],
                thread="tweets",
            )
        )
    index = make_index()
    index_docs(session_client, index, docs)
    return index, docs


@pytest.mark.slow
def test_hand_written_rules_agree_on_real_tweets(
    session_client: Elasticsearch, tweets: tuple[str, list[Doc]]
) -> None:
    index, docs = tweets
    report = []
    for text in TWEET_RULES:
        rule = parse_rule(text)
        engine = engine_ids(session_client, index, rule)
        matcher = matcher_ids(rule, docs)
        check_agreement(rule, engine, matcher)
        report.append((text, len(engine), len(matcher), rule.exact_in_engine))
    print(f"\n{len(docs)} tweets, {len(TWEET_RULES)} rules (engine / matcher / exact):")
    for text, in_engine, in_matcher, exact in report:
        print(f"  {in_engine:4d} {in_matcher:4d} {'exact' if exact else 'pre-filter':10s} {text}")
    assert all(in_matcher > 0 for _, _, in_matcher, _ in report), "every rule should match"


def test_find_matches_applies_a_rule_to_stored_mentions(
    session_client: Elasticsearch, tweets: tuple[str, list[Doc]]
) -> None:
    index, docs = tweets
    rule = parse_rule('(obama OR trump) NEAR/8 (obamacare OR healthcare OR "health care")')
    assert not rule.exact_in_engine
    hits = list(
        find_matches(
            session_client, index, rule, restrict={"term": {"thread_id": "tweets"}}, page_size=2
        )
    )
    expected = {d.mention.id: rule.matches(d.input) for d in docs}
    assert hits
    assert {h.id for h in hits} == {i for i, m in expected.items() if m is not None}
    for hit in hits:
        assert hit.match == expected[hit.id]
        assert hit.match.positions
