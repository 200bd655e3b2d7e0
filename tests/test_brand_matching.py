"""Brand matching: case, accents, hashtags, handles, exclusions, positions, owned, real tweets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import SHARED_FIXTURES

from listener.config import BrandConfig, ProjectConfig, parse_project
from listener.enrichment import Enricher, fold
from listener.enrichment.brands import OwnedRule
from listener.mention import Author, BrandMatch, Mention
from listener.sdk import hookspecs

TWEETS = SHARED_FIXTURES / "sentiment_ground_truth/tweeteval_semeval2017/test_text.txt"

BRANDS: list[dict[str, Any]] = [
    {
        "name": "Acme",
        "keywords": ["acme", "acme corp", "#acme"],
        "exclude": ["acme anvil"],
        "owned_domains": ["acme.com"],
        "owned_accounts": ["@AcmeSupport"],
    },
    {"name": "Globex"},
    {"name": "Cafe Nero", "keywords": ["cafe nero"]},
    {"name": "Initech", "keywords": ["#initech", "@initech_hq"]},
    {"name": "Creme", "keywords": ["Crème Brûlée Co"]},
]


def plain_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with listener's hookspecs and no plugins."""
    manager = pluggy.PluginManager("listener")
    manager.add_hookspecs(hookspecs)
    return manager


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    config = ProjectConfig.model_validate({"brands": BRANDS})
    return Enricher(config, plugin_manager=plain_plugin_manager())


def mention(text: str, **fields: Any) -> Mention:
    url = fields.pop("url", "https://forum.example.org/t/1")
    return Mention.create(
        source="test",
        source_kind="social",
        url=url,
        text=text,
        published_at=datetime(2026, 1, 5, tzinfo=UTC),
        **fields,
    )


def enrich_one(enricher: Enricher, text: str, **fields: Any) -> Mention:
    return next(enricher.enrich([mention(text, **fields)]))


def brand(result: Mention, name: str) -> BrandMatch | None:
    return next((match for match in result.brands if match.brand == name), None)


def matched_texts(result: Mention, name: str) -> list[str]:
    found = brand(result, name)
    assert found is not None, f"{name} not matched in {result.text!r}"
    return [result.text[span.start : span.end] for span in found.positions]


# -- case and accents ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Acme ships on Monday", "ACME ships on Monday", "acme ships on Monday"]
)
def test_keywords_match_in_any_case(enricher: Enricher, text: str) -> None:
    result = enrich_one(enricher, text)
    assert result.brand_names == ["Acme"]
    assert matched_texts(result, "Acme") == [text[:4]]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Café Nero on the high street", "Café Nero"),
        ("CAFÉ NERO on the high street", "CAFÉ NERO"),
        ("Cafe\u0301 Nero on the high street", "Cafe\u0301 Nero"),  # decomposed accent
        ("cafe nero on the high street", "cafe nero"),
    ],
)
def test_accents_are_ignored_in_the_text(enricher: Enricher, text: str, expected: str) -> None:
    assert matched_texts(enrich_one(enricher, text), "Cafe Nero") == [expected]


def test_accents_are_ignored_in_the_keyword(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Dessert from creme brulee co was perfect")
    assert matched_texts(result, "Creme") == ["creme brulee co"]


def test_fold_lowercases_and_strips_accents() -> None:
    assert fold("Café") == "cafe"
    assert fold("Straße") == "strasse"
    assert fold("Øresund Łódź") == "oresund lodz"
    assert fold("Macy\u2019s") == "macy's"


# -- whole tokens, hashtags, handles ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["Welcome to acmeville", "The #acmeville fair", "Ask @acme_labs", "acmes everywhere"],
)
def test_only_whole_tokens_match(enricher: Enricher, text: str) -> None:
    assert enrich_one(enricher, text).brands == []


def test_a_brand_matches_its_plus_product() -> None:
    # "Disney+" and "Apple TV+" were one token each, so "Disney" and "TV" never matched.
    config = ProjectConfig.model_validate(
        {
            "brands": [
                {"name": "Disney"},
                {"name": "Apple TV+", "keywords": ["apple tv+"]},
                {"name": "Cpp", "keywords": ["c++"]},
            ]
        }
    )
    enricher = Enricher(config, plugin_manager=plain_plugin_manager())
    found = enrich_one(enricher, "Disney+ raised prices again; Apple TV+ did not. I code C++.")
    assert matched_texts(found, "Disney") == ["Disney"]
    assert matched_texts(found, "Apple TV+") == ["Apple TV+"]
    assert matched_texts(found, "Cpp") == ["C++"]
    # The plus keyword needs its plus: plain "Apple TV" is not the product.
    assert brand(enrich_one(enricher, "Apple TV is a box"), "Apple TV+") is None


def test_plain_keyword_matches_hashtag_and_handle(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Loving #Acme today, thanks @acme!")
    assert matched_texts(result, "Acme") == ["#Acme", "@acme"]


def test_hashtag_keyword_matches_only_the_hashtag(enricher: Enricher) -> None:
    assert matched_texts(enrich_one(enricher, "Go #Initech go"), "Initech") == ["#Initech"]
    assert brand(enrich_one(enricher, "Initech is hiring"), "Initech") is None
    assert brand(enrich_one(enricher, "cc @initech"), "Initech") is None
    # A space breaks a hashtag.
    assert brand(enrich_one(enricher, "Go # initech go"), "Initech") is None


def test_handle_keyword_matches_only_the_handle(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Thanks @Initech_HQ for the swag")
    assert matched_texts(result, "Initech") == ["@Initech_HQ"]
    assert brand(enrich_one(enricher, "Thanks initech_hq"), "Initech") is None


def test_multi_word_keyword_and_its_joined_hashtag_or_handle(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Acme Corp, aka #AcmeCorp or @acme_corp, not acmecorp")
    assert matched_texts(result, "Acme") == ["Acme Corp", "#AcmeCorp", "@acme_corp"]
    assert brand(result, "Acme") is not None
    assert brand(result, "Acme").keyword == "acme corp"  # type: ignore[union-attr]


def test_extra_spaces_inside_a_keyword_still_match(enricher: Enricher) -> None:
    assert matched_texts(enrich_one(enricher, "Acme  Corp again"), "Acme") == ["Acme  Corp"]


def test_brand_without_keywords_matches_its_name(enricher: Enricher) -> None:
    result = enrich_one(enricher, "globex and GLOBEX")
    assert matched_texts(result, "Globex") == ["globex", "GLOBEX"]


# -- exclusions ------------------------------------------------------------------------


def test_match_inside_an_excluded_phrase_does_not_count(enricher: Enricher) -> None:
    assert enrich_one(enricher, "My Acme Anvil broke again").brands == []


def test_exclusion_removes_only_the_matches_inside_it(enricher: Enricher) -> None:
    text = "The acme anvil fell, but Acme rockets still fly"
    result = enrich_one(enricher, text)
    assert matched_texts(result, "Acme") == ["Acme"]
    assert brand(result, "Acme").positions[0].start == text.index("Acme r")  # type: ignore[union-attr]


# -- positions and titles --------------------------------------------------------------


def test_positions_are_offsets_into_text_even_with_a_title(enricher: Enricher) -> None:
    text = "Yesterday Globex and Acme merged."
    result = enrich_one(enricher, text, title="Big news")
    acme = brand(result, "Acme")
    assert acme is not None
    assert [(p.start, p.end) for p in acme.positions] == [(21, 25)]
    assert result.brand_names == ["Acme", "Globex"]  # project-file order


def test_title_only_match_has_no_positions(enricher: Enricher) -> None:
    result = enrich_one(enricher, "The shares rose 4% today.", title="Acme beats forecasts")
    acme = brand(result, "Acme")
    assert acme is not None
    assert acme.keyword == "acme"
    assert acme.positions == []


def test_keywords_do_not_match_across_title_and_text(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Nero opens a new shop", title="Cafe")
    assert result.brands == []


def test_mention_without_brands_is_still_yielded(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Nothing to see here")
    assert result.brands == []
    assert result.brand_names == []


# -- owned -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, handle, owned",
    [
        ("https://acme.com/blog/launch", None, True),
        ("https://www.acme.com/blog/launch", None, True),
        ("https://news.acme.com/launch", None, True),
        ("https://notacme.com/launch", None, False),
        ("https://acme.com.evil.example/launch", None, False),
        ("https://social.example/p/1", "acmesupport", True),
        ("https://social.example/p/1", "@AcmeSupport", True),
        ("https://social.example/p/1", "acme_fan", False),
    ],
)
def test_owned_flag(enricher: Enricher, url: str, handle: str | None, owned: bool) -> None:
    result = enrich_one(enricher, "Acme and Globex", url=url, author=Author(handle=handle))
    assert brand(result, "Acme").owned is owned  # type: ignore[union-attr]
    assert brand(result, "Globex").owned is False  # type: ignore[union-attr]


def test_owned_rule_without_owned_settings() -> None:
    rule = OwnedRule(BrandConfig(name="Globex"))
    assert not rule.owns("globex.com", "globex")


# -- real tweets -----------------------------------------------------------------------

TWEET_BRANDS: list[dict[str, Any]] = [
    {"name": "Apple", "keywords": ["apple", "iphone"]},
    {"name": "Google", "keywords": ["google"]},
    {"name": "Microsoft", "keywords": ["microsoft"]},
    {"name": "Samsung", "keywords": ["samsung", "galaxy note"]},
    {"name": "Android", "keywords": ["#android"]},
]

_URL = re.compile(r"https?://\S+")


def _word(word: str) -> str:
    # Not preceded by a word character, '.' or '/' (inside a domain or path), and not
    # followed by a word character or by '.'/'/' and more letters (a domain).
    return rf"(?<![\w./]){word}(?![\w]|[./]\w)"


# An independent, regex-only statement of what each brand should match.
TWEET_CHECKS = {
    "Apple": re.compile(_word(r"[#@]?(?:apple|iphone)"), re.IGNORECASE),
    "Google": re.compile(_word(r"[#@]?google"), re.IGNORECASE),
    "Microsoft": re.compile(_word(r"[#@]?microsoft"), re.IGNORECASE),
    "Samsung": re.compile(
        _word(r"(?:[#@]?samsung|[#@]?galaxy\s+note|[#@]galaxy_?note)"), re.IGNORECASE
    ),
    "Android": re.compile(_word(r"#android"), re.IGNORECASE),
}


def _tweets() -> list[str]:
    if not TWEETS.is_file():
        pytest.skip(f"shared fixtures absent: {TWEETS}")
    lines = [line.strip() for line in TWEETS.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    # The first 300 tweets as they come, plus every tweet that contains a brand-like
    # string anywhere (inside words and hashtags too, to test whole-token matching).
    loose = re.compile(r"apple|iphone|google|microsoft|samsung|galaxy|android", re.IGNORECASE)
    chosen = lines[:300] + [line for line in lines[300:] if loose.search(line)]
    return chosen


def _stream(texts: list[str]) -> Iterator[Mention]:
    for i, text in enumerate(texts):
        yield mention(text, url=f"https://twitter.example/status/{i}")


def test_real_tweets_match_brands_like_an_independent_check() -> None:
    texts = _tweets()
    config = ProjectConfig.model_validate({"brands": TWEET_BRANDS})
    enricher = Enricher(config, batch_size=128, plugin_manager=plain_plugin_manager())
    results = list(enricher.enrich(_stream(texts)))
    assert [r.text for r in results] == texts
    matched = {name: 0 for name in TWEET_CHECKS}
    for result in results:
        expected = {
            name for name, check in TWEET_CHECKS.items() if check.search(_URL.sub(" ", result.text))
        }
        assert set(result.brand_names) == expected, result.text
        for match in result.brands:
            for span in match.positions:
                assert TWEET_CHECKS[match.brand].fullmatch(result.text[span.start : span.end])
        for name in result.brand_names:
            matched[name] += 1
    # The selection really exercises every brand, including hashtags and handles.
    assert all(count > 0 for count in matched.values()), matched
    assert matched["Google"] > 50 and matched["Microsoft"] > 50
    assert any(r.language == "en" and r.sentiment is not None for r in results)


def _rule_project(*brands: dict[str, object]) -> ProjectConfig:
    return parse_project({"brands": list(brands)}, Path("listener.toml"))


def test_brand_rules_decide_at_crawl_time() -> None:
    from datetime import UTC, datetime

    from listener.enrichment import Enricher
    from listener.mention import Author

    project = _rule_project(
        {"name": "Shell", "query": '"shell" NEAR/5 (oil OR gas OR petrol) NOT site:shell.com'},
        {"name": "Apple", "query": "(apple NEAR/3 (iphone OR mac OR ios)) OR @apple"},
        {"name": "Globex", "keywords": ["globex"], "query": "author:globexfan"},
    )

    def mention(
        text: str, url: str = "https://news.example/1", handle: str | None = None
    ) -> Mention:
        return Mention.create(
            source="rss", source_kind="news", url=url, text=text,
            published_at=datetime(2026, 11, 1, tzinfo=UTC), author=Author(handle=handle),
        )  # fmt: skip

    texts = [
        mention("Shell raised petrol prices again this week."),
        mention("I found a pretty shell on the beach."),
        mention("Shell says oil output is up.", url="https://www.shell.com/news/1"),
        mention("The new Apple iPhone is out; apple pie later."),
        mention("Apple pie with cinnamon is the best."),
        mention("Thanks @Apple for the quick fix!"),
        mention("Nothing about brands here.", handle="globexfan"),
    ]
    enriched = list(Enricher(project).enrich(texts))
    assert [m.brand_names for m in enriched] == [
        ["Shell"], [], [], ["Apple"], [], ["Apple"], ["Globex"],
    ]  # fmt: skip
    shell = enriched[0].brands[0]
    assert shell.keyword.startswith('"shell" NEAR/5')
    assert [enriched[0].text[p.start : p.end] for p in shell.positions] == ["Shell", "petrol"]
    assert shell.sentiment is not None
    assert enriched[6].brands[0].positions == []
    assert enriched[6].brands[0].sentiment is not None
