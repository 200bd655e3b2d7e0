"""The sentiment model's development protocol, as one reproducible command.

    OMP_NUM_THREADS=1 python bench/dev_sentiment.py                 # the shipped settings
    OMP_NUM_THREADS=1 python bench/dev_sentiment.py --set train.l2_sparse=3e-5 \\
        --set features.char_ngrams='[4,4]' --weight movies=2 --iterations 300

Trains the English model with ``bench/train_sentiment.py``'s own functions and settings
(``ENGLISH_FEATURES``, ``ENGLISH_TRAIN``, lexicon and brand-risk texts) on development
training data, 250 steps, and prints macro-F1 on four development sets that are never
trained on here and are not evaluation sets:

* GoEmotions dev (the shipped model trains on it; this protocol does not),
* the VADER tweets dev fold and the VADER movie-snippet dev fold (``assign_split``),
* XED English dev: a fixed 10 % hash fold (``xed_dev_fold``) of XED's *training* fold.

Training data: the VADER *train* folds, the other sets' training parts without GoEmotions
dev and without the XED dev fold, the lexicon entries and brand-risk phrases; a training
text equal (after normalisation) to a development text is dropped as well. The held-back
evaluation splits stay out as in the training script. Settings are chosen on this sum
only, never on the evaluation sets or the brand-risk challenge set.

``--leave-out DOMAIN`` (repeatable) also drops a training set and scores its rows as an
unseen domain: the held-out rows above come from the training sets' own domains and
reward fitting them, while the evaluation sets include domains the model never trains on
(reviews, other tweets, financial news), so a change should hold up on left-out sets too.

``--card-protocol`` is the protocol of docs/model-card-sentiment.md at stop 12 (XED dev
fold trained on, no de-duplication against the dev sets): it reproduces the card's
GoEmotions dev / tweets dev / movies dev figures.

Featurised matrices are cached under ``bench/.cache/dev_sentiment/`` (git-ignored), keyed
on the feature configuration, the term lists and the texts; ``--no-cache`` skips it.
Skips cleanly (exit code 0) when the shared data is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment_data as sd
import train_sentiment as ts
from eval_sentiment import macro_f1, vader_scorer

from listener.models.sentiment import (
    LABELS,
    NEWS_TERMS,
    RISK_TERMS,
    FeatureConfig,
    Featurizer,
    SentimentModel,
)

CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "dev_sentiment"
DEV_ITERATIONS = 250
Row = tuple[str, str, str, float | None]
Transformed = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def xed_dev_fold(text: str) -> bool:
    """A fixed 10 % of XED English's training fold, by a hash of the normalised text."""
    digest = hashlib.sha1(f"xed-dev:{sd._normalise_key(text)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10 == 0


def dev_sets() -> list[tuple[str, list[sd.Example]]]:
    """The four development sets (none is an evaluation set)."""
    return [
        ("GoEmotions dev", sd.load_goemotions("dev")),
        ("VADER tweets dev", [e for e in sd.load_vader_tweets() if e.split == "dev"]),
        ("VADER movies dev", [e for e in sd.load_vader_movies() if e.split == "dev"]),
        (
            "XED-en dev (10 % of train)",
            [e for e in sd.load_xed_en() if e.split == "train" and xed_dev_fold(e.text)],
        ),
    ]


def protocol_training_data(card_protocol: bool = False) -> list[Row]:
    """Training rows of the development protocol (see the module docstring)."""
    data = ts.training_examples(("train",), with_dev=False)
    if ts.USE_LEXICON_TEXTS:
        data += ts.lexicon_examples() + ts.risk_term_examples()
    if card_protocol:
        return data
    dev_keys = {sd._normalise_key(e.text) for _, examples in dev_sets() for e in examples}
    return [
        row
        for row in data
        if not (row[2] == "xed_en" and xed_dev_fold(row[0]))
        and sd._normalise_key(row[0]) not in dev_keys
    ]


def leave_out(
    data: Sequence[Row], domains: Sequence[str]
) -> tuple[list[Row], list[tuple[str, list[sd.Example]]]]:
    """Training rows without ``domains``, and each left-out domain's rows as a dev set.

    A left-out training set stands for a domain the model has never seen (as the review,
    TweetEval and Financial PhraseBank evaluation sets are): e.g. ``movies`` for reviews,
    ``fin_tweets`` for financial news, ``tweets`` for other tweets.
    """
    known = sorted({row[2] for row in data})
    unknown = [d for d in domains if d not in known]
    if unknown:
        raise SystemExit(f"--leave-out {unknown}: not a training set; choose from {known}")
    kept = [row for row in data if row[2] not in domains]
    sets = [
        (
            f"{d} (left out)",
            [sd.Example(t, y, r, "train") for t, y, dom, r in data if dom == d],  # type: ignore[arg-type]
        )
        for d in domains
    ]
    return kept, sets


def _cache_key(config: FeatureConfig, texts: Sequence[str]) -> str:
    from listener.models.sentiment import _artefact_root

    h = hashlib.sha1(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    root = _artefact_root()
    for name in (RISK_TERMS, NEWS_TERMS):
        path = root.joinpath(name)
        h.update(path.read_bytes() if path.is_file() else b"")
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    return h.hexdigest()[:20]


def featurise(config: FeatureConfig, texts: Sequence[str], use_cache: bool = True) -> Transformed:
    """``Featurizer(config).transform(texts)``, cached on disk."""
    path = CACHE_DIR / f"{_cache_key(config, texts)}.npz"
    if use_cache and path.is_file():
        with np.load(path) as z:
            return z["indptr"], z["indices"], z["values"], z["dense"]
    t0 = time.perf_counter()
    indptr, indices, values, dense = Featurizer(config).transform(texts)
    print(f"featurised {len(texts)} texts in {time.perf_counter() - t0:.0f}s")
    if use_cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, indptr=indptr, indices=indices, values=values, dense=dense)
        tmp.replace(path)
    return indptr, indices, values, dense


def take(x: Transformed, rows: Sequence[int]) -> Transformed:
    """Rows ``rows`` of a featurised CSR + dense block."""
    indptr, indices, values, dense = x
    idx = np.asarray(rows, dtype=np.int64)
    starts, ends = indptr[idx], indptr[idx + 1]
    lengths = ends - starts
    gather = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    gather = gather.astype(np.int64) if len(gather) else np.zeros(0, dtype=np.int64)
    new_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return new_ptr, indices[gather], values[gather], dense[idx]


def predict_labels(model: SentimentModel, x: Transformed, neutral_offset: float = 0.0) -> list[str]:
    """The model's labels for pre-featurised rows (as ``SentimentModel.logits``), with
    ``neutral_offset`` added to the neutral logit (a class-prior experiment)."""
    from listener.models.sentiment import sparse_matmul

    indptr, indices, values, dense = x
    z = sparse_matmul(indptr, indices, values, model.sparse_weights)
    if model.config.n_dense:
        z += ((dense - model.dense_mean) / model.dense_scale) @ model.dense_weights
    z += model.bias
    z[:, LABELS.index("neutral")] += neutral_offset
    return [LABELS[int(k)] for k in z.argmax(axis=1)]


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(
    features: FeatureConfig, train: ts.TrainConfig, sets: Sequence[str], weights: Sequence[str]
) -> tuple[FeatureConfig, ts.TrainConfig]:
    """``features.NAME=VALUE`` / ``train.NAME=VALUE`` (JSON values) and ``DOMAIN=WEIGHT``."""
    f_changes: dict[str, Any] = {}
    t_changes: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        scope, _, name = key.partition(".")
        target = {"features": (FeatureConfig, f_changes), "train": (ts.TrainConfig, t_changes)}
        if not sep or scope not in target:
            raise SystemExit(f"--set {item!r}: expected features.NAME=VALUE or train.NAME=VALUE")
        cls, changes = target[scope]
        fields = {f.name for f in dataclasses.fields(cls)}
        if name not in fields:
            raise SystemExit(
                f"--set {item!r}: {cls.__name__} has no field {name!r} (has: {sorted(fields)})"
            )
        value = _parse_value(raw)
        changes[name] = tuple(value) if isinstance(value, list) else value
    if weights:
        merged = dict(train.domain_weights)
        for item in weights:
            domain, sep, raw = item.partition("=")
            if not sep:
                raise SystemExit(f"--weight {item!r}: expected DOMAIN=WEIGHT, e.g. movies=2")
            merged[domain] = float(raw)
        t_changes["domain_weights"] = tuple(sorted(merged.items()))
    return dataclasses.replace(features, **f_changes), dataclasses.replace(train, **t_changes)


def run(
    features: FeatureConfig,
    train: ts.TrainConfig,
    card_protocol: bool = False,
    use_cache: bool = True,
    verbose: bool = False,
    left_out: Sequence[str] = (),
    neutral_offsets: Sequence[float] = (),
) -> dict[str, float]:
    """Train on the protocol's data and return macro-F1 per development set (and VADER's).

    ``left_out`` training sets are dropped from training and scored as extra dev sets. Each
    of ``neutral_offsets`` adds ``"{set} neutral{offset:+}"`` entries: macro-F1 with that
    offset on the neutral logit.
    """
    data, extra = leave_out(protocol_training_data(card_protocol), left_out)
    devs = dev_sets() + extra
    texts = [r[0] for r in data]
    dev_texts = [e.text for _, examples in devs for e in examples]
    x_all = featurise(features, texts + dev_texts, use_cache)
    x_train = take(x_all, range(len(texts)))
    t0 = time.perf_counter()
    model = ts.fit(
        texts,
        [r[1] for r in data],
        [r[2] for r in data],
        features,
        train,
        ratings=[r[3] for r in data],
        verbose=verbose,
        transformed=x_train,
    )
    took = time.perf_counter() - t0
    print(f"trained on {len(texts)} texts, {train.iterations} steps, {took:.0f}s")
    vader = vader_scorer()
    results: dict[str, float] = {}
    start = len(texts)
    for name, examples in devs:
        rows = range(start, start + len(examples))
        start += len(examples)
        gold = [e.label for e in examples]
        results[name] = macro_f1(gold, predict_labels(model, take(x_all, rows)), LABELS)
        for offset in neutral_offsets:
            labels = predict_labels(model, take(x_all, rows), offset)
            results[f"{name} neutral{offset:+}"] = macro_f1(gold, labels, LABELS)
        results[f"VADER {name}"] = macro_f1(
            gold, [lab for lab, _ in vader([e.text for e in examples])], LABELS
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCOPE.NAME=VALUE",
        help="override a FeatureConfig (features.*) or TrainConfig (train.*) field; JSON value",
    )
    parser.add_argument(
        "--weight", action="append", default=[], metavar="DOMAIN=W", help="set weight"
    )
    parser.add_argument("--iterations", type=int, default=DEV_ITERATIONS)
    parser.add_argument(
        "--card-protocol",
        action="store_true",
        help="the model card's stop-12 protocol (XED dev fold trained on; no dev de-duplication)",
    )
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="drop a training set (movies, tweets, fin_tweets, newsmtsc, ...) and score it"
        " as an unseen domain",
    )
    parser.add_argument(
        "--neutral-offsets",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[],
        metavar="D1,D2,...",
        help="also print each set's macro-F1 with these offsets added to the neutral logit",
    )
    parser.add_argument("--no-cache", action="store_true", help="featurise without the cache")
    parser.add_argument("--verbose", action="store_true", help="print the training loss")
    args = parser.parse_args(argv)

    if not sd.fixtures_available() or not sd.training_available():
        print(f"SKIP: no labelled sets at {sd.sentiment_root()} or {sd.training_root()}")
        return 0
    train = dataclasses.replace(ts.ENGLISH_TRAIN, iterations=args.iterations)
    features, train = apply_overrides(ts.ENGLISH_FEATURES, train, args.set, args.weight)
    print(f"features: {features}\ntrain: {train}")
    results = run(
        features,
        train,
        args.card_protocol,
        not args.no_cache,
        args.verbose,
        args.leave_out,
        args.neutral_offsets,
    )
    names = [name for name, _ in dev_sets()]
    extra = [f"{d} (left out)" for d in args.leave_out]
    print(f"\n{'development set':28s} {'VADER':>6s} {'model':>6s}")
    for name in names + extra:
        print(f"{name:28s} {results[f'VADER {name}']:6.3f} {results[name]:6.3f}")
    three = sum(results[n] for n in names[:3])
    print(f"{'sum of the first three':28s} {'':6s} {three:6.3f}")
    print(f"{'sum of all four':28s} {'':6s} {three + results[names[3]]:6.3f}")
    if extra:
        print(f"{'sum of the left-out sets':28s} {'':6s} {sum(results[n] for n in extra):6.3f}")
    if args.neutral_offsets:
        print(
            "\nmacro-F1 with an offset on the neutral logit: "
            + ", ".join(f"{d:+}" for d in args.neutral_offsets)
        )
        for name in names + extra:
            row = " ".join(f"{results[f'{name} neutral{d:+}']:6.3f}" for d in args.neutral_offsets)
            print(f"{name:28s} {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
