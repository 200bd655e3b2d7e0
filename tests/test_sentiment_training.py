"""The training objective of bench/train_sentiment.py: NB-scaled features, label smoothing."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from listener.models.sentiment import FeatureConfig, SentimentModel

BENCH = Path(__file__).resolve().parent.parent / "bench"
TOY = FeatureConfig(hash_bits=10, word_bigrams=False, vader=False, pattern=False)
TEXTS = [
    "superb lovely day",
    "superb lovely phone",
    "lovely superb screen",
    "dreadful awful day",
    "awful dreadful phone",
    "dreadful awful screen",
    "plain ordinary day",
    "ordinary plain phone",
    "plain ordinary screen",
]
LABELS3 = ["positive"] * 3 + ["negative"] * 3 + ["neutral"] * 3


@pytest.fixture(scope="module")
def ts() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return __import__("train_sentiment")
    finally:
        sys.path.remove(str(BENCH))


def _fit(ts: ModuleType, **changes: object) -> SentimentModel:
    train = ts.TrainConfig(iterations=200, tweets_weight=1.0, domain_bias=False, **changes)
    return ts.fit(TEXTS, LABELS3, ["toy"] * len(TEXTS), TOY, train, verbose=False)


def test_nb_ratios_favour_the_features_of_each_class(ts: ModuleType) -> None:
    # features: 0 only in class-2 texts, 1 only in class-0 texts, 2 in every text
    rows = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    inv = np.array([0, 2, 0, 2, 1, 2, 1, 2])
    y = np.array([2, 2, 0, 0])
    r = ts.nb_ratios(inv, rows, y, np.full(4, 0.25), 3, 3, 1.0)
    assert np.abs(r).mean() == pytest.approx(1.0)
    assert r[0, 2] > 0 > r[1, 2]
    assert r[1, 0] > 0 > r[0, 0]
    # a feature in every text separates nothing: its ratio is the smallest for each class
    assert all(abs(r[2, c]) < max(abs(r[0, c]), abs(r[1, c])) for c in (0, 2))


def test_nb_scaled_model_ships_plain_weights_and_learns_the_classes(
    ts: ModuleType, tmp_path: Path
) -> None:
    model = _fit(ts, nb_scale=True)
    labels = [label for label, _ in model.score_texts(TEXTS)]
    assert labels == LABELS3
    assert [label for label, _ in model.score_texts(["awful screen", "lovely day"])] == [
        "negative",
        "positive",
    ]
    # what is saved is an ordinary sparse weight matrix (float16): it loads and scores alike
    model.save(str(tmp_path))
    loaded = SentimentModel.load_from(tmp_path)
    assert loaded.predict_proba(TEXTS) == pytest.approx(model.predict_proba(TEXTS), abs=1e-3)


def test_nb_scale_and_domain_copies_are_refused_together(ts: ModuleType) -> None:
    with pytest.raises(ValueError, match="nb_scale and domain_copies"):
        _fit(ts, nb_scale=True, domain_copies=True)


def test_label_smoothing_keeps_the_model_less_certain(ts: ModuleType) -> None:
    sharp = _fit(ts).predict_proba(TEXTS).max(axis=1)
    smooth = _fit(ts, label_smoothing=0.3).predict_proba(TEXTS).max(axis=1)
    assert (smooth < sharp).all()
    # with smoothing 0.3 the best a model can do is put 0.8 on the right class
    assert smooth.max() < 0.85


def test_dense_alone_weight_teaches_the_dense_features_to_stand_alone(ts: ModuleType) -> None:
    # AFINN scores "superb"/"lovely" positive and "awful"/"dreadful" negative: the dense part
    # can tell those texts apart, but the hashed words fit them faster and take the credit.
    features = FeatureConfig(
        hash_bits=10, word_bigrams=False, vader=False, pattern=False, afinn=True
    )
    gold = np.array([["negative", "neutral", "positive"].index(label) for label in LABELS3])

    def loss_without_words(weight: float) -> float:
        train = ts.TrainConfig(
            iterations=200, tweets_weight=1.0, domain_bias=False, dense_alone_weight=weight
        )
        model = ts.fit(TEXTS, LABELS3, ["toy"] * len(TEXTS), features, train, verbose=False)
        assert [label for label, _ in model.score_texts(TEXTS)] == LABELS3
        model.sparse_weights[:] = 0.0  # the dense part alone
        proba = model.predict_proba(TEXTS)
        return float(-np.log(proba[np.arange(len(TEXTS)), gold]).mean())

    assert loss_without_words(1.0) < loss_without_words(0.0)
