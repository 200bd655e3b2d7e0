"""The enrichment stage: sentiment, language, entities, streaming, hooks, multiprocessing."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pluggy
import pytest
from spacy.language import Language
from spacy.tokens import Doc

import listener.sdk.plugin_manager as plugin_manager_module
from listener import hookimpl
from listener.config import ProjectConfig
from listener.enrichment import Enricher, VaderScorer, label_for, sentiment_from_score
from listener.enrichment.language import LanguageDetector
from listener.enrichment.sentiment import SentimentScorer, brand_risk_state, sentence_bounds
from listener.mention import BrandMatch, Mention, Sentiment
from listener.sdk import hookspecs

BRANDS: list[dict[str, Any]] = [
    {"name": "Acme", "keywords": ["acme", "acme corp"], "owned_domains": ["acme.com"]},
    {"name": "Globex"},
    {"name": "Initech"},
]

TEXTS_EN = "I love my new Acme phone, the battery lasts for days and the screen is gorgeous."
TEXTS_FR = "J'adore mon nouveau téléphone Acme, la batterie tient des jours et l'écran est superbe."
TEXTS_DE = "Ich liebe mein neues Acme-Telefon, der Akku hält tagelang und der Bildschirm ist toll."


def plain_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with listener's hookspecs and no plugins."""
    manager = pluggy.PluginManager("listener")
    manager.add_hookspecs(hookspecs)
    return manager


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return ProjectConfig.model_validate({"brands": BRANDS})


@pytest.fixture(scope="module")
def enricher(config: ProjectConfig) -> Enricher:
    return Enricher(config, scorer=VaderScorer(), plugin_manager=plain_plugin_manager())


def mention(text: str, number: int = 0, **fields: Any) -> Mention:
    return Mention.create(
        source="test",
        source_kind="social",
        url=f"https://social.example/p/{number}",
        text=text,
        published_at=datetime(2026, 1, 5, tzinfo=UTC),
        **fields,
    )


def enrich_one(enricher: Enricher, text: str, **fields: Any) -> Mention:
    return next(enricher.enrich([mention(text, **fields)]))


def brand(result: Mention, name: str) -> BrandMatch:
    found = next((match for match in result.brands if match.brand == name), None)
    assert found is not None, f"{name} not matched in {result.text!r}"
    return found


def brand_label(result: Mention, name: str) -> str:
    sentiment = brand(result, name).sentiment
    assert sentiment is not None
    return sentiment.label


# -- sentiment -------------------------------------------------------------------------


def test_two_brands_in_one_sentence_get_their_own_clause(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Acme is great, Globex is awful")
    assert brand_label(result, "Acme") == "positive"
    assert brand_label(result, "Globex") == "negative"


@pytest.mark.parametrize(
    "text, acme, globex",
    [
        ("I love Acme but Globex is terrible.", "positive", "negative"),
        ("Globex is useless; Acme works perfectly", "positive", "negative"),
        ("Acme is wonderful. Globex ruined my whole day.", "positive", "negative"),
        ("Acme and Globex are both excellent", "positive", "positive"),
        ("I bought an Acme, and Globex was a disaster", "neutral", "negative"),
        # Contrasts flip the sentence's sentiment for the brand they introduce.
        ("Acme's support was great, unlike Globex.", "positive", "negative"),
        ("Unlike Globex, Acme works great", "positive", "negative"),
        ("Acme is terrible, unlike Globex.", "negative", "positive"),
        ("Acme is better than Globex", "positive", "negative"),
    ],
)
def test_brand_sentiment(enricher: Enricher, text: str, acme: str, globex: str) -> None:
    result = enrich_one(enricher, text)
    assert (brand_label(result, "Acme"), brand_label(result, "Globex")) == (acme, globex)


def test_brand_sentiment_averages_its_sentences(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Acme is fantastic. I use Acme every day. Globex is bad.")
    acme = brand(result, "Acme").sentiment
    assert acme is not None and acme.label == "positive"
    fantastic = VaderScorer().score(["Acme is fantastic."])[0].score
    assert acme.score == pytest.approx(fantastic / 2, abs=1e-3)


def test_document_sentiment_is_the_mean_of_its_sentences(enricher: Enricher) -> None:
    text = "The update is brilliant. The old version was horrible and slow."
    result = enrich_one(enricher, text)
    parts = VaderScorer().score(
        ["The update is brilliant.", "The old version was horrible and slow."]
    )
    assert result.sentiment is not None
    assert result.sentiment.score == pytest.approx((parts[0].score + parts[1].score) / 2, abs=1e-3)


def test_sentiment_labels_use_vader_thresholds() -> None:
    assert label_for(0.05) == "positive"
    assert label_for(0.0499) == "neutral"
    assert label_for(-0.0499) == "neutral"
    assert label_for(-0.05) == "negative"
    assert sentiment_from_score(1.5) == Sentiment(score=1.0, label="positive")


def test_vader_scorer_scores_in_order() -> None:
    scores = VaderScorer().score(["This is awful.", "This is wonderful!", "This is a chair."])
    assert [s.label for s in scores] == ["negative", "positive", "neutral"]
    assert all(-1.0 <= s.score <= 1.0 for s in scores)


def test_title_is_its_own_sentence() -> None:
    enricher_doc = Enricher(
        ProjectConfig.model_validate({"brands": BRANDS}), plugin_manager=plain_plugin_manager()
    )
    doc = enricher_doc.nlp.make_doc("Acme recall\n\nThe phones are great. Really!")
    sentences = [doc[start:end].text for start, end in sentence_bounds(doc)]
    assert sentences == ["Acme recall", "The phones are great.", "Really!"]


def test_a_sentence_does_not_end_inside_an_exchange_code() -> None:
    enricher_doc = Enricher(
        ProjectConfig.model_validate({"brands": BRANDS}), plugin_manager=plain_plugin_manager()
    )
    doc = enricher_doc.nlp.make_doc(
        "Shares of Volkswagen <VOWG_p.DE> fell 3%. Acme is down.Anyone else? WOW."
    )
    sentences = [doc[start:end].text for start, end in sentence_bounds(doc)]
    assert sentences == [
        "Shares of Volkswagen <VOWG_p.DE> fell 3%.",
        "Acme is down.",
        "Anyone else?",
        "WOW.",
    ]


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Strike ends at Acme's copper mine in Chile", "resolved"),
        ("Acme agrees pay deal to end strikes", "resolved"),
        ("Acme settles VA pricing investigation; shares up 6%", "resolved"),
        ("Acme workers go on strike over pay", "open"),
        ("Acme lays off 2,000 workers by the end of the year", "open"),
        ("Acme fined after settlement talks fail, lawsuit goes ahead", "open"),
        ("Acme opens a store in Leeds", None),
    ],
)
def test_brand_risk_that_is_over_is_told_apart(text: str, state: str | None) -> None:
    assert brand_risk_state(text) == state


class NeutralScorer:
    """A stand-in for a model that reads every text as neutral."""

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        return [Sentiment(score=0.0, label="neutral") for _ in texts]


def test_a_neutral_brand_with_brand_risk_that_is_over_is_positive(config: ProjectConfig) -> None:
    enricher = Enricher(config, scorer=NeutralScorer(), plugin_manager=plain_plugin_manager())
    ended, started, plain = enricher.enrich(
        [
            mention("Strike ends at Acme's copper mine in Chile"),
            mention("Acme workers go on strike over pay", 1),
            mention("Acme opens a store in Leeds", 2),
        ]
    )
    assert brand_label(ended, "Acme") == "positive"
    assert brand_label(started, "Acme") == "negative"
    assert brand_label(plain, "Acme") == "neutral"


class FixedScorer:
    """A stand-in for a trained model: every text is mildly negative."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        self.calls.append(list(texts))
        return [Sentiment(score=-0.3, label="negative") for _ in texts]


def test_the_scorer_can_be_replaced(config: ProjectConfig) -> None:
    scorer = FixedScorer()
    assert isinstance(scorer, SentimentScorer)
    enricher = Enricher(config, scorer=scorer, batch_size=8, plugin_manager=plain_plugin_manager())
    texts = [f"Acme is great number {i}, Globex is fine." for i in range(10)]
    results = list(enricher.enrich(mention(text, i) for i, text in enumerate(texts)))
    assert all(r.sentiment == Sentiment(score=-0.3, label="negative") for r in results)
    assert all(brand_label(r, "Acme") == "negative" for r in results)
    # One scorer call per batch, not per document or clause.
    assert len(scorer.calls) == 2


# -- language --------------------------------------------------------------------------


@pytest.mark.parametrize("text, language", [(TEXTS_EN, "en"), (TEXTS_FR, "fr"), (TEXTS_DE, "de")])
def test_language_is_detected(enricher: Enricher, text: str, language: str) -> None:
    result = enrich_one(enricher, text)
    assert result.language == language
    assert result.brand_names == ["Acme"]  # every language gets brand matching


def test_non_english_mentions_get_no_english_only_steps(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Acme et Globex ont annoncé hier à Paris une fusion historique.")
    assert result.language == "fr"
    assert result.brand_names == ["Acme", "Globex"]
    # French has a sentiment model (the multilingual one) and the French NER.
    assert result.sentiment is not None
    assert all(match.sentiment is not None for match in result.brands)
    pairs = [(e.text, e.label) for e in result.entities]
    assert ("Acme", "ORG") in pairs and ("Globex", "ORG") in pairs and ("Paris", "LOC") in pairs
    assert result.unsupported == []


def test_french_entities_skip_post_markup_and_shouting(enricher: Enricher) -> None:
    # fr_core_news_sm alone: "RT @JensenAckles : Mon coeur" (MISC) and "Paris"; "OMG JE" and
    # "AVAIS" as organisations. Markup is masked and shouted words are not names.
    retweet = enrich_one(enricher, "RT @JensenAckles : Mon coeur est avec Paris .")
    assert retweet.language == "fr"
    assert [(e.text, e.label) for e in retweet.entities] == [("Paris", "LOC")]
    shouted = enrich_one(enricher, "OMG JE L'AVAIS PAS CELUI T'ES MON DIEU")
    assert shouted.language == "fr"
    assert shouted.entities == []


def test_the_french_model_loads_only_when_french_text_arrives(config: ProjectConfig) -> None:
    enricher = Enricher(config, scorer=VaderScorer(), plugin_manager=plain_plugin_manager())
    french = enricher.nlp.get_pipe("listener_french_entities")
    next(enricher.enrich([mention(TEXTS_EN)]))
    assert french._nlp is None  # an English-only crawl never pays for loading it
    result = next(enricher.enrich([mention("Acme a ouvert hier un magasin à Lyon.")]))
    assert result.language == "fr"
    assert french._nlp is not None
    assert ("Lyon", "LOC") in [(e.text, e.label) for e in result.entities]


def test_languages_without_a_model_say_so(config: ProjectConfig) -> None:
    enricher = Enricher(config, plugin_manager=plain_plugin_manager())
    result = next(enricher.enrich([mention("Acme の新しい電話は本当に素晴らしいと思います。")]))
    assert result.language == "ja"
    assert result.sentiment is None
    assert result.unsupported == ["entities", "sentiment"]
    english = next(enricher.enrich([mention(TEXTS_EN)]))
    assert english.unsupported == []


@pytest.mark.parametrize(
    "text",
    [
        "Acme hat mir heute ein neues Telefon geschickt, und der Akku hält ewig.",
        "Acme me ha enviado hoy un teléfono nuevo y la batería dura muchísimo.",
    ],
)
def test_multilingual_sentiment(config: ProjectConfig, text: str) -> None:
    enricher = Enricher(config, plugin_manager=plain_plugin_manager())
    result = next(enricher.enrich([mention(text)]))
    assert result.language in ("de", "es")
    assert result.unsupported == ["entities"]
    assert result.sentiment is not None
    assert result.sentiment.label in ("positive", "negative")  # no neutral class there
    assert brand_label(result, "Acme") in ("positive", "negative", "neutral")


def test_english_mentions_get_all_steps(enricher: Enricher) -> None:
    result = enrich_one(enricher, TEXTS_EN)
    assert result.language == "en"
    assert result.sentiment is not None and result.sentiment.label == "positive"
    assert brand_label(result, "Acme") == "positive"


@pytest.mark.parametrize("text", ["😍😍😍", "https://t.co/abc123 1234", "!!!"])
def test_texts_without_letters_have_no_language(enricher: Enricher, text: str) -> None:
    assert enrich_one(enricher, text).language is None


def test_short_uncertain_text_is_undetermined_but_still_analysed(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Thanks Acme!")
    # py3langid is unsure about three words; the text is treated as possibly English.
    assert result.language is None
    assert result.brand_names == ["Acme"]
    assert brand_label(result, "Acme") == "positive"


def test_detector_restricted_to_project_languages() -> None:
    detector = LanguageDetector("lang", min_confidence=0.3, max_chars=1000, languages=["en", "fr"])
    assert detector.detect("Merci beaucoup pour votre aide, à demain")[0] == "fr"
    assert detector.detect("Thanks a lot for your help, see you tomorrow")[0] == "en"


def test_enricher_can_restrict_languages(config: ProjectConfig) -> None:
    enricher = Enricher(config, languages=["en", "fr"], plugin_manager=plain_plugin_manager())
    result = next(enricher.enrich([mention("Merci Acme, à demain")]))
    assert result.language == "fr"
    assert result.brand_names == ["Acme"]


# -- entities --------------------------------------------------------------------------


def test_entities_come_from_english_ner_deduplicated(enricher: Enricher) -> None:
    text = (
        "Tim Cook said in London that Apple will open a new office in London next year. "
        "Tim Cook did not say when."
    )
    result = enrich_one(enricher, text)
    pairs = [(entity.text, entity.label) for entity in result.entities]
    assert ("Tim Cook", "PERSON") in pairs
    assert ("London", "GPE") in pairs
    assert len(pairs) == len(set(pairs))
    assert pairs.count(("London", "GPE")) == 1


@pytest.fixture(scope="module")
def model_enricher(config: ProjectConfig) -> Enricher:
    """The shipped pipeline with listener's own sentiment model."""
    return Enricher(config, plugin_manager=plain_plugin_manager())


@pytest.mark.parametrize(
    "text",
    [
        "Acme is down again… I hate this outage.",
        "Acme recalls 40,000 heaters.",
        "Acme lays off 2,000 workers.",
        "Acme CFO sold 12,000 shares of Acme stock last week.",
    ],
)
def test_brand_risk_language_is_negative_for_the_brand(model_enricher: Enricher, text: str) -> None:
    assert brand_label(enrich_one(model_enricher, text), "Acme") == "negative"


def test_a_neutral_brand_sentence_takes_the_document_only_when_alone(
    model_enricher: Enricher,
) -> None:
    alone = enrich_one(model_enricher, "I went to Acme. What a horrible, rude, awful experience!")
    assert brand_label(alone, "Acme") == "negative"
    two = enrich_one(
        model_enricher, "Globex was wonderful, I loved it. Acme opens at nine on Mondays."
    )
    assert brand_label(two, "Globex") == "positive"
    assert brand_label(two, "Acme") != "positive"


def brand_sentiments(text: str, names: Sequence[str], *, mask_brands: bool = True) -> list[Any]:
    """Per-brand sentiment from the component with listener's model, each name a brand
    matched where it stands (the tokenizer only: no spaCy model needed)."""
    import spacy

    from listener.enrichment import brands as brands_module
    from listener.enrichment import language as language_module
    from listener.enrichment import sentiment as sentiment_module

    nlp = spacy.blank("en")
    for module in (language_module, brands_module, sentiment_module):
        module.register_extensions()
    component = sentiment_module.SentimentComponent(
        "sentiment", model_scorer(), mask_brands=mask_brands
    )
    doc = nlp.make_doc(text)
    doc._.set(language_module.LANGUAGE_EXTENSION, "en")
    found = []
    for name in names:
        start = text.index(name)
        span = doc.char_span(start, start + len(name))
        assert span is not None
        match = {"start": start, "end": span.end_char, "token_start": span.start}
        found.append({"brand": name, "matches": [{**match, "token_end": span.end}]})
    doc._.set(brands_module.BRANDS_EXTENSION, found)
    list(component.pipe([doc]))
    return [b["sentiment"] for b in found]


@functools.cache
def model_scorer() -> Any:
    from listener.enrichment.sentiment import ModelScorer

    return ModelScorer()


def test_a_brands_name_does_not_decide_its_sentiment() -> None:
    # The model learned weights for names ("tesla" leans positive in financial tweets);
    # the brand's matches are taken out of what is scored, so only what is said counts.
    texts = ["{} opened a new office in Berlin.", "{} opened an office. It is huge, I love it."]
    for text in texts:
        scores = [brand_sentiments(text.format(name), [name]) for name in ("Tesla", "Acme")]
        assert scores[0] == scores[1], text
    unmasked = [
        brand_sentiments(texts[0].format(name), [name], mask_brands=False)
        for name in ("Tesla", "Acme")
    ]
    assert unmasked[0] != unmasked[1]


def test_a_lone_brand_gets_its_clause_or_else_its_sentence() -> None:
    (acme,) = brand_sentiments("The support was great, but Acme's update broke my phone.", ["Acme"])
    assert acme["label"] == "negative"
    (acme,) = brand_sentiments("Acme shipped the update today and I love it.", ["Acme"])
    assert acme["label"] == "positive"


def test_entities_never_cross_the_title_or_a_paragraph(enricher: Enricher) -> None:
    result = enrich_one(
        enricher,
        "Initech CEO sold 20,000 shares of Acme Corp.\n\nGlobex Holdings said nothing.",
        title="Insider Selling: Stock",
    )
    texts = [e.text for e in result.entities]
    assert all("\n" not in t for t in texts), texts
    assert not any("Stock" in t and ("Initech" in t or "Globex" in t) for t in texts), texts


def test_brands_are_organisations_in_any_spelling(enricher: Enricher) -> None:
    result = enrich_one(enricher, "honestly initech and GLOBEX are both fine today")
    pairs = [(e.text, e.label) for e in result.entities]
    assert ("initech", "ORG") in pairs and ("GLOBEX", "ORG") in pairs


def test_dates_numbers_and_money_are_values_not_entities(enricher: Enricher) -> None:
    result = enrich_one(
        enricher, "Acme's CEO sold $1.2 million of shares today, one week after Tim Cook left."
    )
    labels = {e.label for e in result.entities}
    assert not labels & {"DATE", "TIME", "MONEY", "CARDINAL", "PERCENT", "QUANTITY", "ORDINAL"}
    values = {(e.text, e.label) for e in result.values}
    assert ("$1.2 million", "MONEY") in values
    assert any(label == "DATE" for _, label in values)
    assert "$1.2 million" not in result.phrases and "today" not in result.phrases


def test_entities_cover_the_title(enricher: Enricher) -> None:
    result = enrich_one(enricher, "The company said nothing more.", title="Acme opens in Berlin")
    assert ("Berlin", "GPE") in [(e.text, e.label) for e in result.entities]


# -- streaming and the Mention contract --------------------------------------------------


def test_enrich_streams_without_reading_all_input(enricher: Enricher) -> None:
    consumed: list[int] = []

    def endless() -> Iterator[Mention]:
        for number in itertools.count():
            consumed.append(number)
            yield mention("Acme news" if number % 2 else "No brand here", number)

    first = list(itertools.islice(enricher.enrich(endless()), 5))
    assert [m.brand_names for m in first] == [[], ["Acme"], [], ["Acme"], []]
    assert len(consumed) <= 2 * enricher.batch_size


def test_enrich_keeps_order_and_yields_copies(enricher: Enricher) -> None:
    inputs = [mention(f"Globex report {i}", i) for i in range(5)]
    results = list(enricher.enrich(inputs))
    assert [r.id for r in results] == [m.id for m in inputs]
    assert all(m.brands == [] and m.language is None for m in inputs)  # inputs untouched
    assert all(r.brand_names == ["Globex"] for r in results)


def test_enriched_mention_is_valid_and_serialisable(enricher: Enricher) -> None:
    result = enrich_one(enricher, "Acme is great, Globex is awful", title="Review")
    assert Mention.model_validate(result.to_document()) == result


def test_long_texts_are_analysed_up_to_the_limit(config: ProjectConfig) -> None:
    enricher = Enricher(config, max_text_chars=60, plugin_manager=plain_plugin_manager())
    text = "Globex opened a shop. " + "Nothing else happened that day. " * 5 + "Acme too."
    result = next(enricher.enrich([mention(text)]))
    assert result.text == text  # the stored text is never cut
    assert result.brand_names == ["Globex"]


def test_enricher_validates_its_settings(config: ProjectConfig) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Enricher(config, batch_size=0)
    with pytest.raises(ValueError, match="n_process"):
        Enricher(config, n_process=0)


# -- the pipeline --------------------------------------------------------------------------


def test_pipeline_runs_only_what_the_job_needs(enricher: Enricher) -> None:
    nlp = enricher.nlp
    assert nlp.pipe_names == [
        "listener_language",
        "listener_line_breaks",
        "listener_ner",
        "listener_french_entities",
        "listener_entity_cleanup",
        "listener_brands",
        "listener_brand_entities",
        "listener_brand_sentiment",
    ]
    for unused in ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"):
        assert unused in nlp.disabled
    assert enricher.nlp is nlp  # built once


def test_extension_values_are_plain_and_survive_serialisation(enricher: Enricher) -> None:
    doc = enricher.nlp("Acme is great, Globex is awful")
    restored = Doc(enricher.nlp.vocab).from_bytes(doc.to_bytes())
    for name in ("listener_language", "listener_brands", "listener_document_sentiment"):
        assert restored._.get(name) == doc._.get(name)
    brands = restored._.get("listener_brands")
    assert [entry["brand"] for entry in brands] == ["Acme", "Globex"]
    assert brands[0]["matches"][0]["start"] == 0


class EntityRulerPlugin:
    """A plugin adding patterns in ``listener_prepare_nlp``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Language, ProjectConfig]] = []

    @hookimpl
    def listener_prepare_nlp(self, nlp: Language, config: ProjectConfig) -> None:
        self.calls.append((nlp, config))
        ruler = nlp.add_pipe("entity_ruler", before="listener_ner")
        ruler.add_patterns(  # type: ignore[attr-defined]
            [{"label": "ORG", "pattern": brand.name} for brand in config.brands]
        )


def test_prepare_nlp_hook_changes_the_pipeline(config: ProjectConfig) -> None:
    plugin = EntityRulerPlugin()
    manager = plain_plugin_manager()
    manager.register(plugin)
    enricher = Enricher(config, plugin_manager=manager)
    result = next(enricher.enrich([mention("Initech hired three engineers from Globex")]))
    assert len(plugin.calls) == 1 and plugin.calls[0] == (enricher.nlp, config)
    pairs = [(e.text, e.label) for e in result.entities]
    assert ("Initech", "ORG") in pairs and ("Globex", "ORG") in pairs
    next(enricher.enrich([mention("Acme again")]))
    assert len(plugin.calls) == 1  # once per pipeline


def test_default_plugin_manager_is_the_registry(
    config: ProjectConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = EntityRulerPlugin()
    manager = plain_plugin_manager()
    manager.register(plugin)
    registry = plugin_manager_module.Registry(manager=manager)
    monkeypatch.setattr(plugin_manager_module, "get_registry", lambda: registry)
    enricher = Enricher(config)
    next(enricher.enrich([mention("Initech news")]))
    assert len(plugin.calls) == 1


@pytest.mark.slow
def test_two_processes_give_the_same_results(config: ProjectConfig) -> None:
    texts = [
        "Acme is great, Globex is awful",
        TEXTS_FR,
        "Tim Cook visited Berlin to meet Acme Corp engineers.",
        "No brand in this one at all.",
        "#acme @globex thanks!",
    ] * 6
    inputs = [mention(text, i) for i, text in enumerate(texts)]
    single = Enricher(config, batch_size=4, plugin_manager=plain_plugin_manager())
    double = Enricher(config, batch_size=4, n_process=2, plugin_manager=plain_plugin_manager())
    expected = list(single.enrich(inputs))
    got = list(double.enrich(iter(inputs)))
    assert [m.to_document() for m in got] == [m.to_document() for m in expected]
    assert any(m.entities for m in got) and any(m.brands for m in got)


@pytest.mark.slow
def test_two_processes_apply_brand_rules_with_their_metadata() -> None:
    rules = ProjectConfig.model_validate(
        {
            "brands": [
                {"name": "Shell", "query": '"shell" NEAR/3 (oil OR gas) NOT site:jobs.example'},
                {"name": "Acme", "query": "acme AND author:alice"},
            ]
        }
    )
    texts = [
        ("Shell raised oil output again", "news.example", "bob"),
        ("Shell raised oil output again", "jobs.example", "bob"),
        ("Acme shipped a fix", "blog.example", "alice"),
        ("Acme shipped a fix", "blog.example", "carol"),
        ("A sea shell on the beach", "news.example", "alice"),
    ] * 40
    inputs = [
        Mention.create(
            source="test",
            source_kind="news",
            url=f"https://{domain}/{i}",
            text=text,
            published_at=datetime(2026, 1, 5, tzinfo=UTC),
            author={"name": author},
        )
        for i, (text, domain, author) in enumerate(texts)
    ]
    single = Enricher(rules, batch_size=8, plugin_manager=plain_plugin_manager())
    double = Enricher(rules, batch_size=8, n_process=2, plugin_manager=plain_plugin_manager())
    expected = [m.brand_names for m in single.enrich(inputs)]
    got = [m.brand_names for m in double.enrich(iter(inputs))]
    assert got == expected
    assert expected[:5] == [["Shell"], [], ["Acme"], [], []]


def test_default_scorer_is_the_trained_model(config: ProjectConfig) -> None:
    from listener.enrichment.sentiment import ModelScorer

    enricher = Enricher(config, plugin_manager=plain_plugin_manager())
    component = enricher.nlp.get_pipe("listener_brand_sentiment")
    assert isinstance(component.scorer, ModelScorer)  # type: ignore[attr-defined]
    [happy, angry] = component.scorer.score(  # type: ignore[attr-defined]
        ["I love how fast the new Acme app is!", "Acme lost my parcel again, terrible service."]
    )
    assert happy.label == "positive" and angry.label == "negative"


def test_key_phrases_feed_trending_terms(enricher: Enricher) -> None:
    [result] = enricher.enrich(
        [mention("Acme's new Rocket laptop has great battery life. #AcmeRocket in São Paulo!")]
    )
    phrases = result.phrases
    assert {"rocket", "laptop", "battery life", "great battery", "#acmerocket"} <= set(phrases)
    assert "sao paulo" in phrases  # accent-folded
    assert not {"has", "in", "the"} & set(phrases)  # stop words and short words are left out
    assert len(phrases) == len(set(phrases)) <= 30


# -- entity cleanup ------------------------------------------------------------


def _doc_with_ents(enricher: Enricher, text: str, ents: list[tuple[str, str]]) -> Doc:
    """A tokenised Doc whose entities are the given (exact text, label) pairs."""
    doc = enricher.nlp.make_doc(text)
    spans = []
    for ent_text, label in ents:
        start = text.index(ent_text)
        span = doc.char_span(start, start + len(ent_text), label=label)
        assert span is not None, ent_text
        spans.append(span)
    doc.set_ents(spans)
    return doc


def test_entity_cleanup_trims_markup_from_entity_ends(enricher: Enricher) -> None:
    text = "RT @newsdesk : Emile Harmon 's new single ProudOfLouis http://t.co/HdswyedBIO"
    doc = _doc_with_ents(
        enricher,
        text,
        [
            ("RT @newsdesk : Emile Harmon 's", "PERSON"),
            ("ProudOfLouis http://t.co/HdswyedBIO", "ORG"),
        ],
    )
    cleaned = enricher.nlp.get_pipe("listener_entity_cleanup")(doc)
    assert [(e.text, e.label_) for e in cleaned.ents] == [
        ("Emile Harmon", "PERSON"),
        ("ProudOfLouis", "ORG"),
    ]
    # Trimmed tokens are outside any entity, not left dangling inside one.
    assert [t.ent_iob_ for t in cleaned[:3]] == ["O", "O", "O"]


def test_entity_cleanup_drops_entities_that_are_only_markup(enricher: Enricher) -> None:
    text = "RT @AndreaRussett : see https://t.co/YehZxttlQF and Paris"
    doc = _doc_with_ents(
        enricher,
        text,
        [("RT @AndreaRussett :", "PERSON"), ("https://t.co/YehZxttlQF", "ORG"), ("Paris", "GPE")],
    )
    cleaned = enricher.nlp.get_pipe("listener_entity_cleanup")(doc)
    assert [(e.text, e.label_) for e in cleaned.ents] == [("Paris", "GPE")]


def test_enriched_entities_carry_no_retweet_marks_or_links(enricher: Enricher) -> None:
    result = enrich_one(
        enricher,
        "RT @acmefans : Barack Obama 's speech at Acme in Chicago http://t.co/abc123",
    )
    texts = [entity.text for entity in result.entities]
    assert texts, "the model found no entity at all"
    for entity_text in texts:
        assert "http" not in entity_text
        assert not entity_text.startswith(("RT", "@"))
        assert not entity_text.endswith("'s")
