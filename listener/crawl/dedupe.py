"""Duplicate detection: exact (normalised text) and near-duplicates (MinHash over word shingles).

Each mention's normalised text becomes a set of words and word pairs; a
64-value MinHash signature estimates the Jaccard similarity of two such sets,
and two texts are near-duplicates when it is at least ``THRESHOLD``. To find
candidates without comparing against every stored mention, the signature is
cut into ``BANDS`` bands of ``ROWS`` values (locality-sensitive hashing): two
texts at similarity 0.7 share a band with probability 0.99, at 0.3 with 0.12.
The bands are stored as keywords, so a plain ``terms`` query finds candidates
on any engine; the signature decides.

The first mention of a cluster (already stored, or earlier in the same crawl)
gives the cluster its id; later copies get ``duplicate = True`` so share of
voice can count unique mentions. Measured by ``bench/eval_dedupe.py``.

A :class:`Deduplicator` remembers the last :data:`WINDOW` mentions it
assigned (about 5.5 KB each), so a crawl's memory stays bounded however many
items it finds; older ones have been indexed by then and are found through
``lookup`` like any stored mention. Measured by ``bench/crawl_memory.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from listener.mention import Dedupe, Mention

PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
THRESHOLD = 0.6
#: Mentions of a crawl a Deduplicator compares with directly (the most recent ones).
WINDOW = 10_000
_PRIME = np.uint64(4294967311)  # > 2**32: a universal hash family on 32-bit values
_generator = np.random.default_rng(20261123)
_A = _generator.integers(1, 2**32 - 1, size=PERMUTATIONS, dtype=np.uint64)
_B = _generator.integers(0, 2**32 - 1, size=PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Boilerplate that syndication adds and that should not make copies look different.
_NOISE = re.compile(r"https?://\S+|(?:^|\s)(?:via|rt)\s+@\w+|@\w+\s*:", re.IGNORECASE)


def normalise(text: str) -> list[str]:
    """Lower-cased, accent-free words, without URLs and 'via @site' syndication tags."""
    cleaned = _NOISE.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", cleaned.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD.findall(plain)


def exact_key(words: Sequence[str]) -> str:
    """The same for texts equal after normalisation."""
    return hashlib.sha1(" ".join(words).encode()).hexdigest()


def signature(words: Sequence[str]) -> list[int]:
    """MinHash of the set of words and adjacent word pairs (empty text: all zeros)."""
    features = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    if not features:
        return [0] * PERMUTATIONS
    values = np.fromiter(
        (int.from_bytes(hashlib.blake2b(f.encode(), digest_size=4).digest(), "big")
         for f in features),
        dtype=np.uint64,
        count=len(features),
    )  # fmt: skip
    hashed = (_A[:, None] * values[None, :] + _B[:, None]) % _PRIME
    return [int(v) for v in hashed.min(axis=1)]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / PERMUTATIONS


def bands(values: Sequence[int]) -> list[str]:
    """The band keys stored with a mention: ``band:hash``."""
    keys = []
    for band in range(BANDS):
        chunk = ",".join(str(v) for v in values[band * ROWS : (band + 1) * ROWS])
        keys.append(f"{band}:{hashlib.blake2b(chunk.encode(), digest_size=6).hexdigest()}")
    return keys


def encode(values: Sequence[int]) -> str:
    """A signature as stored: fixed-width hex."""
    return "".join(f"{v:09x}" for v in values)


def decode(text: str) -> list[int]:
    """The inverse of :func:`encode`."""
    return [int(text[i : i + 9], 16) for i in range(0, len(text), 9)]


def fingerprint(mention: Mention) -> tuple[str, list[int]]:
    """The exact key and MinHash signature of a mention's title and text."""
    words = normalise(f"{mention.title or ''}\n{mention.text}")
    return exact_key(words), signature(words)


def index_lookup(client: Any, alias: str, limit: int = 1000) -> Any:
    """A ``lookup`` for :class:`Deduplicator` that asks the index; failures mean 'none found'."""

    def lookup(keys: list[str]) -> list[dict[str, Any]]:
        try:
            response = client.options(ignore_status=404).search(
                index=alias,
                query={"terms": {"dedupe.bands": keys}},
                size=limit,
                source_includes=["id", "cluster_id", "dedupe"],
                sort=[{"crawled_at": "asc"}, {"id": "asc"}],
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            body = response.body if hasattr(response, "body") else response
            hits = body.get("hits", {}).get("hits", [])
            return [hit["_source"] for hit in hits if isinstance(hit.get("_source"), dict)]
        except Exception:  # an unreachable index, or an answer that is not Elasticsearch's
            return []  # (a proxy's page): the crawl goes on, comparing within itself only

    return lookup


@dataclass
class _Known:
    id: str
    cluster_id: str
    exact: str
    signature: list[int]


@dataclass
class Deduplicator:
    """Links mentions to clusters within a crawl and, through ``lookup``, against the index.

    ``lookup(band_keys)`` returns stored documents (``id``, ``cluster_id``,
    ``dedupe``) sharing any band; pass None to compare within the crawl only.
    """

    lookup: Any = None
    seen: dict[str, list[_Known]] = field(default_factory=dict)
    exact_seen: dict[str, _Known] = field(default_factory=dict)
    #: How many of the last assigned mentions are remembered (see the module docstring).
    window: int = WINDOW
    _order: deque[tuple[_Known, list[str]]] = field(default_factory=deque, repr=False)

    def assign(self, mentions: Sequence[Mention]) -> list[Mention]:
        """Copies of ``mentions`` with ``cluster_id``, ``duplicate`` and ``dedupe`` set."""
        prints = [fingerprint(m) for m in mentions]
        stored = self._stored_candidates(prints)
        result = []
        for mention, (exact, values) in zip(mentions, prints, strict=True):
            keys = bands(values)
            known = self._match(mention.id, exact, values, keys, stored)
            if known is None:
                cluster, duplicate = mention.id, False
            else:
                cluster, duplicate = known.cluster_id, True
            entry = _Known(mention.id, cluster, exact, values)
            self.exact_seen.setdefault(exact, entry)
            for key in keys:
                self.seen.setdefault(key, []).append(entry)
            result.append(
                mention.model_copy(
                    update={
                        "cluster_id": cluster,
                        "duplicate": duplicate,
                        "dedupe": Dedupe(exact=exact, signature=encode(values), bands=keys),
                    }
                )
            )
            self._order.append((entry, keys))
        self._forget_oldest()
        return result

    def _forget_oldest(self) -> None:
        """Drop what is remembered of mentions beyond the window, oldest first."""
        while len(self._order) > self.window:
            entry, keys = self._order.popleft()
            if self.exact_seen.get(entry.exact) is entry:
                del self.exact_seen[entry.exact]
            for key in keys:
                kept = [known for known in self.seen.get(key, ()) if known is not entry]
                if kept:
                    self.seen[key] = kept
                else:
                    self.seen.pop(key, None)

    def _stored_candidates(self, prints: Iterable[tuple[str, list[int]]]) -> list[_Known]:
        if self.lookup is None:
            return []
        keys = sorted({key for _, values in prints for key in bands(values)})
        if not keys:
            return []
        found = []
        for document in self.lookup(keys):
            dedupe = document.get("dedupe") or {}
            if not dedupe.get("signature"):
                continue
            found.append(
                _Known(
                    id=document["id"],
                    cluster_id=document.get("cluster_id") or document["id"],
                    exact=dedupe.get("exact", ""),
                    signature=decode(dedupe["signature"]),
                )
            )
        return found

    def _match(
        self,
        own_id: str,
        exact: str,
        values: list[int],
        keys: list[str],
        stored: list[_Known],
    ) -> _Known | None:
        """The earliest known mention this one copies (stored ones first), if any."""

        def copies(candidate: _Known) -> bool:
            # Not itself (a re-crawl), and not a copy of itself (it heads that cluster).
            if candidate.id == own_id or candidate.cluster_id == own_id:
                return False
            return candidate.exact == exact or similarity(candidate.signature, values) >= THRESHOLD

        for candidate in stored:
            if copies(candidate):
                return candidate
        same = self.exact_seen.get(exact)
        if same is not None and copies(same):
            return same
        for key in keys:
            for candidate in self.seen.get(key, ()):
                if copies(candidate):
                    return candidate
        return None
