"""Train listener's sentiment model and write the shipped artefact.

    OMP_NUM_THREADS=1 python bench/train_sentiment.py [--out listener/models/sentiment_data]

Training data: the two VADER ICWSM-14 sets (MIT licence): 4,200 tweets and 10,605
movie-review snippets with mean human ratings, mapped to three classes with the neutral
band of ``sentiment_data.VADER_NEUTRAL_BAND``. Only the train folds are used; the dev fold
chooses nothing at run time (hyper-parameters are fixed below, chosen on it) and the test
fold is left for ``bench/eval_sentiment.py``. Everything is deterministic (no random
initialisation, full-batch optimisation, fixed split hash), so a re-run writes the same
weights.

Skips cleanly (exit code 0) when the shared fixtures are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment_data as sd

from listener.models.sentiment import (
    LABELS,
    PATTERN_LEXICON,
    FeatureConfig,
    Featurizer,
    SentimentModel,
)

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "listener" / "models" / "sentiment_data"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation settings (chosen on the dev fold of the VADER sets)."""

    l2_sparse: float = 3e-4
    l2_dense: float = 1e-4
    iterations: int = 300
    learning_rate: float = 0.05
    # Each (domain, class) cell gets the same total weight, so the model is not tilted
    # towards the movie snippets' near-absence of neutral texts.
    balance: bool = True
    # Per-domain intercepts absorb each source's label prior (the movie snippets have
    # almost no neutral texts); at run time the "tweets" intercept is used.
    domain_bias: bool = True
    # "Frustratingly easy" domain adaptation (Daume 2007): every feature also gets a
    # per-domain copy during training, and only the shared copy is shipped, so the
    # shipped weights hold what the domains agree on.
    domain_copies: bool = False
    # Tweets are the closest of the two sources to what listener reads (social posts).
    tweets_weight: float = 3.0
    # Soft targets: the human mean is uncertain (about +-0.3 for 10-20 raters), so an item
    # rated 0.45 is trained as partly neutral, partly positive instead of all neutral.
    soft_sigma: float = 0.3
    # Which domain intercept is shipped: "tweets" or "mean" of the domains.
    intercept: str = "tweets"


def sample_weights(domains: Sequence[str], labels: Sequence[str], balance: bool) -> np.ndarray:
    n = len(labels)
    if not balance:
        return np.full(n, 1.0 / n)
    cells = Counter(zip(domains, labels, strict=True))
    w = np.array([1.0 / cells[(d, y)] for d, y in zip(domains, labels, strict=True)])
    return w / w.sum()


def soft_targets(ratings: np.ndarray, sigma: float) -> np.ndarray:
    """P(neg), P(neu), P(pos) when the true mean is N(rating, sigma) and cut at the band."""
    from math import erf, sqrt

    band = sd.VADER_NEUTRAL_BAND

    def cdf(x: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))

    p_neg = cdf((-band - ratings) / sigma)
    p_pos = 1.0 - cdf((band - ratings) / sigma)
    return np.stack([p_neg, 1.0 - p_neg - p_pos, p_pos], axis=1)


def fit(
    texts: Sequence[str],
    labels: Sequence[str],
    domains: Sequence[str],
    features: FeatureConfig,
    train: TrainConfig,
    ratings: Sequence[float] | None = None,
    verbose: bool = True,
) -> SentimentModel:
    """Full-batch Adam on weighted multinomial cross-entropy with L2."""
    fz = Featurizer(features)
    indptr, indices, values, dense32 = fz.transform(texts)
    dense = dense32.astype(np.float64)
    n, k = len(texts), len(LABELS)
    y = np.array([LABELS.index(lab) for lab in labels])
    onehot = np.eye(k)[y]
    if train.soft_sigma > 0 and ratings is not None:
        onehot = soft_targets(np.asarray(ratings, dtype=np.float64), train.soft_sigma)
    sw = sample_weights(domains, labels, train.balance)
    dom_names = sorted(set(domains))
    dom = np.array([dom_names.index(d) for d in domains])
    if train.tweets_weight != 1.0:
        sw = sw * np.where(np.asarray(domains) == "tweets", train.tweets_weight, 1.0)
        sw /= sw.sum()
    n_dom = len(dom_names)

    mean = dense.mean(axis=0) if dense.shape[1] else np.zeros(0)
    scale = dense.std(axis=0) if dense.shape[1] else np.zeros(0)
    scale[scale < 1e-6] = 1.0
    dense_std = (dense - mean) / scale if dense.shape[1] else dense

    # Only hashed rows seen in training can get a gradient: optimise a compact copy.
    uniq, inv = np.unique(indices, return_inverse=True)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    vals = values.astype(np.float64)
    u = len(uniq)
    if train.domain_copies:
        # feature j of a text in domain d also fires column u * (1 + d) + j
        inv = np.concatenate([inv, u * (1 + dom[rows]) + inv])
        rows = np.concatenate([rows, rows])
        vals = np.concatenate([vals, vals])
        dense_std = np.concatenate(
            [dense_std] + [dense_std * (dom == d)[:, None] for d in range(n_dom)], axis=1
        )
        u_all = u * (1 + n_dom)
    else:
        u_all = u
    if train.domain_bias:
        dense_std = np.concatenate([dense_std, np.eye(n_dom)[dom]], axis=1)
    n_dense_all = dense_std.shape[1]
    params = np.zeros(u_all * k + n_dense_all * k + k)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = p[: u_all * k].reshape(u_all, k)
        v = p[u_all * k : u_all * k + n_dense_all * k].reshape(n_dense_all, k)
        return w, v, p[-k:]

    def loss_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
        w, v, b = unpack(p)
        contrib = w[inv] * vals[:, None]
        z = np.stack([np.bincount(rows, contrib[:, j], minlength=n) for j in range(k)], 1)
        z += dense_std @ v + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float((sw * (logp * onehot).sum(axis=1)).sum())
        loss += 0.5 * train.l2_sparse * float((w * w).sum())
        loss += 0.5 * train.l2_dense * float((v * v).sum())
        r = (np.exp(logp) - onehot) * sw[:, None]
        gw = (
            np.stack([np.bincount(inv, vals * r[rows, j], minlength=u_all) for j in range(k)], 1)
            + train.l2_sparse * w
        )
        gv = dense_std.T @ r + train.l2_dense * v
        gb = r.sum(axis=0)
        return loss, np.concatenate([gw.ravel(), gv.ravel(), gb])

    # Adam, full batch: deterministic and needs no tuning of a schedule per data size.
    m = np.zeros_like(params)
    s = np.zeros_like(params)
    b1, b2, eps = 0.9, 0.999, 1e-8
    t0 = time.perf_counter()
    loss = float("nan")
    for it in range(1, train.iterations + 1):
        loss, g = loss_grad(params)
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        params -= train.learning_rate * (m / (1 - b1**it)) / (np.sqrt(s / (1 - b2**it)) + eps)
        if verbose and (it % 100 == 0 or it == 1):
            print(f"  iter {it:4d}  loss {loss:.5f}  ({time.perf_counter() - t0:.1f}s)")

    w, v, b = unpack(params)
    n_base = dense.shape[1]
    if train.domain_bias:
        dom_v = v[-n_dom:]
        if train.intercept == "tweets" and "tweets" in dom_names:
            b = b + dom_v[dom_names.index("tweets")]
        else:
            b = b + dom_v.mean(axis=0)
    v = v[:n_base]
    sparse = np.zeros((features.n_hashed, k), dtype=np.float32)
    sparse[uniq] = w[:u]
    meta: dict[str, Any] = {
        "final_loss": round(loss, 6),
        "train_config": {
            "l2_sparse": train.l2_sparse,
            "l2_dense": train.l2_dense,
            "iterations": train.iterations,
            "learning_rate": train.learning_rate,
            "balance": train.balance,
        },
    }
    return SentimentModel(
        features,
        sparse,
        v.astype(np.float32),
        b.astype(np.float32),
        mean.astype(np.float32),
        scale.astype(np.float32),
        meta=meta,
    )


def write_pattern_lexicon(xml_path: Path, out: Path) -> int:
    """Average Pattern's per-sense polarity/subjectivity per word (the lexicon is PDDL)."""
    import xml.etree.ElementTree as ET
    from collections import defaultdict

    senses: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for w in ET.parse(xml_path).getroot().iter("word"):
        form = (w.get("form") or "").lower().strip()
        if form and " " not in form:
            senses[form].append((float(w.get("polarity", 0)), float(w.get("subjectivity", 0))))
    header = (
        "# Subjectivity lexicon for English adjectives, from Pattern 2.6 (Tom De Smedt, Walter"
        ' Daelemans),\n# license="PDDL" (Open Data Commons Public Domain Dedication and'
        " License), as shipped in\n# textblob 0.20.1 (textblob/en/en-sentiment.xml). Per word:"
        " mean polarity (-1..1) and mean\n# subjectivity (0..1) over the word's senses."
        " Regenerate with bench/train_sentiment.py --pattern-xml.\n"
    )
    lines = [
        f"{word}\t{sum(p for p, _ in v) / len(v):.3f}\t{sum(q for _, q in v) / len(v):.3f}\n"
        for word, v in sorted(senses.items())
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + "".join(lines), encoding="utf-8")
    return len(lines)


def training_examples(splits: Sequence[str] = ("train",)) -> list[tuple[str, str, str, float]]:
    """``(text, label, domain, rating)`` from the MIT-licensed VADER sets in ``splits``."""
    out: list[tuple[str, str, str, float]] = []
    for domain, loader in (("tweets", sd.load_vader_tweets), ("movies", sd.load_vader_movies)):
        out.extend(
            (e.text, e.label, domain, e.rating or 0.0) for e in loader() if e.split in splits
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="artefact directory")
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="train on the train folds only (default: train+dev; the test fold never)",
    )
    parser.add_argument(
        "--pattern-xml",
        type=Path,
        help="regenerate pattern_lexicon.tsv from textblob's en/en-sentiment.xml first",
    )
    args = parser.parse_args(argv)

    if args.pattern_xml is not None:
        n = write_pattern_lexicon(args.pattern_xml, args.out / PATTERN_LEXICON)
        print(f"wrote {n} words to {args.out / PATTERN_LEXICON}")

    if not sd.fixtures_available():
        print(f"SKIP: no labelled sets at {sd.sentiment_root()}")
        return 0

    splits = ("train",) if args.train_only else ("train", "dev")
    data = training_examples(splits)
    by_domain = Counter((d, y) for _, y, d, _ in data)
    print(f"training on folds {'+'.join(splits)} of the VADER ICWSM-14 sets: {len(data)} texts")
    for domain in ("tweets", "movies"):
        counts = {lab: by_domain[(domain, lab)] for lab in LABELS}
        print(f"  {domain:7s} {sum(counts.values()):6d}  {counts}")
    held_out = sum(
        1
        for loader in (sd.load_vader_tweets, sd.load_vader_movies)
        for e in loader()
        if e.split == "test"
    )
    print(f"  held out for evaluation (test fold, incl. SST-2 overlaps): {held_out}")

    features = FeatureConfig()
    train = TrainConfig()
    t0 = time.perf_counter()
    model = fit(
        [x[0] for x in data],
        [x[1] for x in data],
        [x[2] for x in data],
        features,
        train,
        ratings=[x[3] for x in data],
    )
    model.meta.update(
        {
            "training_data": "VADER ICWSM-14 tweets + movie-review snippets (MIT), folds "
            + "+".join(splits),
            "n_train": len(data),
            "neutral_band": sd.VADER_NEUTRAL_BAND,
        }
    )
    model.save(str(args.out))
    size = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"trained in {time.perf_counter() - t0:.1f}s; wrote {args.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
