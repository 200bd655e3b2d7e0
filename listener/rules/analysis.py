"""The rule matcher's tokenizer: the index's text analysis, reproduced in Python.

A rule selects the same mentions at crawl time (this tokenizer) and on stored
data (the index) only if both cut text into the same tokens. The index
analyses ``text`` and ``title`` with ``listener_text`` (the standard tokenizer,
``lowercase``, ``asciifolding``) and their ``.tags`` sub-fields with
``listener_tags``, the same plus a character filter that keeps hashtags and
handles apart from plain words (``#acme`` is indexed as ``_ht_acme``, ``@acme``
as ``_at_acme``; ``e@mail`` and ``a#1`` stay plain because a letter precedes
the sign).

The standard tokenizer follows Unicode word segmentation (UAX #29): letters,
digits and connecting punctuation form words (``don't``, ``e.g``, ``3.5``,
``a_b``, ``foo.com``), hyphens and most punctuation separate them, ideographs
are one token each, emoji sequences are tokens, runs of Thai, Lao, Khmer or
Myanmar script are one token, and tokens longer than 255 characters are cut.
The per-character properties and the folding table in ``_tables`` were measured
on the embedded engine (see ``tablegen``), so this module reproduces its output
token for token, offsets included; a test compares the two on real and random
text.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from typing import Any, Final

from listener.rules import _tables

# Word-break classes (UAX #29 names where there is one). "Core" characters make
# a token worth keeping; a segment without one (punctuation, a lone "_") is dropped.
OT: Final = 0  # other, not kept
OC: Final = 1  # other, kept as a token of its own (ideographs, kana, symbols)
EP: Final = 2  # Extended_Pictographic (emoji)
AL: Final = 3  # ALetter
ALN: Final = 4  # ALetter that is not kept alone (modifier symbols, roman numerals)
HL: Final = 5  # Hebrew_Letter
NU: Final = 6  # Numeric
NUN: Final = 7  # Numeric, not kept alone
KA: Final = 8  # Katakana
ENL: Final = 9  # ExtendNumLet ("_")
ML: Final = 10  # MidLetter (":")
MN: Final = 11  # MidNum (",")
MNL: Final = 12  # MidNumLet (".")
SQ: Final = 13  # Single_Quote
DQ: Final = 14  # Double_Quote
EX: Final = 15  # Extend / Format (combining marks, variation selectors)
ZWJ: Final = 16  # zero-width joiner
EXC: Final = 17  # Extend, kept alone (alphabetic marks, skin tones)
SA: Final = 18  # Southeast Asian letters (grouped into runs)
RI: Final = 19  # regional indicators (flag pairs)
NL: Final = 20  # line breaks
WSS: Final = 21  # WSegSpace

CORE_CLASSES: Final = frozenset({AL, HL, NU, KA, OC, EP, SA, RI, EXC})
_IGNORED = frozenset({EX, EXC, ZWJ})  # WB4: attach to the previous character
_LETTER = frozenset({AL, HL, ALN})
_NUMBER = frozenset({NU, NUN})
_MID_LETTER = frozenset({ML, MNL, SQ})
_MID_NUMBER = frozenset({MN, MNL, SQ})
_BEFORE_ENL = _LETTER | _NUMBER | {KA, ENL}
_AFTER_ENL = _LETTER | _NUMBER | {KA}
_JOIN = -1  # look-ahead result: ZWJ + emoji, which the engine treats as joining

SEGMENT_SPACES: Final = frozenset(
    {0x20, 0x1680, *range(0x2000, 0x2007), 0x2008, 0x2009, 0x200A, 0x205F, 0x3000}
)

MAX_TOKEN_LENGTH: Final = 255
HASHTAG_MARK: Final = "_ht_"
HANDLE_MARK: Final = "_at_"
HASHTAG_FILTER: Final = "listener_hashtag"
HANDLE_FILTER: Final = "listener_handle"
TEXT_ANALYZER: Final = "listener_text"
TAGS_ANALYZER: Final = "listener_tags"
TAGS_SUBFIELD: Final = "tags"


def _sign_filter(sign: str, mark: str) -> dict[str, str]:
    # A sign starts a tag when no letter, digit, "_", "&" (HTML entities) or sign
    # precedes it and a letter, digit or "_" follows.
    return {
        "type": "pattern_replace",
        "pattern": rf"(?<![\p{{L}}\p{{N}}_&#@]){sign}(?=[\p{{L}}\p{{N}}_])",
        "replacement": mark,
    }


ANALYSIS: Final[dict[str, Any]] = {
    "char_filter": {
        HASHTAG_FILTER: _sign_filter("#", HASHTAG_MARK),
        HANDLE_FILTER: _sign_filter("@", HANDLE_MARK),
    },
    "analyzer": {
        TEXT_ANALYZER: {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        TAGS_ANALYZER: {
            "type": "custom",
            "char_filter": [HASHTAG_FILTER, HANDLE_FILTER],
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
    },
}
"""The index settings the tokenizer reproduces (``settings.analysis`` of the template)."""


def pack(word_break: int, southeast_asian: bool, vetoes: bool, letter: bool) -> int:
    """Pack a character's properties into one int (the ``_tables`` format)."""
    return word_break | southeast_asian << 5 | vetoes << 6 | letter << 7


_SOUTHEAST_ASIAN = 1 << 5
_VETO = 1 << 6  # a kept character that stops a segment from counting as Southeast Asian
_LETTER_OR_DIGIT = 1 << 7  # \p{L} or \p{N} for the hashtag filter


@functools.cache
def _runs() -> tuple[list[int], list[int]]:
    starts: list[int] = []
    values: list[int] = []
    for item in _tables.RUNS.split():
        start, value = item.split(":")
        starts.append(int(start, 16))
        values.append(int(value, 16))
    return starts, values


@functools.cache
def _folding() -> dict[int, str]:
    table: dict[int, str] = {}
    for item in _tables.FOLDING.split():
        point, replacement = item.split(":")
        table[int(point, 16)] = "".join(chr(int(c, 16)) for c in replacement.split("+"))
    return table


@functools.cache
def _properties(char: str) -> int:
    starts, values = _runs()
    return values[bisect.bisect_right(starts, ord(char)) - 1]


def fold(text: str) -> str:
    """Lowercase and fold to ASCII as the index does: ``"Straße"`` → ``"strasse"``."""
    return text.translate(_folding())


@dataclass(frozen=True, slots=True)
class Token:
    """One indexed token: its normalised text and where it sits in the original text."""

    text: str
    start: int
    end: int


def _segments(classes: list[int]) -> list[tuple[int, int]]:
    """UAX #29 word segments as (start, end) over a list of word-break classes."""
    n = len(classes)
    if n == 0:
        return []

    def ahead(i: int) -> int | None:
        # The class of the next character that is not ignored (WB4), for WB6/7b/12.
        if i + 2 < n and classes[i + 1] == ZWJ and classes[i + 2] == EP:
            return _JOIN
        j = i + 1
        while j < n and classes[j] in _IGNORED:
            j += 1
        return classes[j] if j < n else None

    segments: list[tuple[int, int]] = []
    start = 0
    last = None if classes[0] in _IGNORED else 0  # last character not ignored
    before_last: int | None = None
    regional = 1 if classes[0] == RI else 0
    for i in range(1, n):
        cur = classes[i]
        raw = classes[i - 1]
        joined = False
        if raw == NL or cur == NL:
            joined = False
        elif (raw == ZWJ and cur == EP) or cur in _IGNORED or (raw == WSS and cur == WSS):
            joined = True
        else:
            p = classes[last] if last is not None else OT
            pp = classes[before_last] if before_last is not None else None
            if p in _LETTER:
                joined = (
                    cur in _LETTER
                    or cur in _NUMBER
                    or cur == ENL
                    or (cur in _MID_LETTER and ahead(i) in (_LETTER | {_JOIN}))
                    or (p == HL and cur == SQ)
                    or (p == HL and cur == DQ and ahead(i) == HL)
                )
            elif p in _NUMBER:
                joined = (
                    cur in _NUMBER
                    or cur in _LETTER
                    or cur == ENL
                    or (cur in _MID_NUMBER and ahead(i) in (_NUMBER | {_JOIN}))
                )
            elif p == KA:
                joined = cur in (KA, ENL)
            elif p == ENL:
                joined = cur in _AFTER_ENL or cur == ENL
            elif p == RI:
                joined = cur == RI and regional % 2 == 1
            if not joined and pp is not None:
                joined = (
                    (pp in _LETTER and p in _MID_LETTER and cur in _LETTER)
                    or (pp == HL and p == DQ and cur == HL)
                    or (pp in _NUMBER and p in _MID_NUMBER and cur in _NUMBER)
                )
        if not joined:
            segments.append((start, i))
            start = i
        if cur == NL:
            last = before_last = None
            regional = 0
        elif cur not in _IGNORED:
            before_last, last = last, i
            regional = regional + 1 if cur == RI else 0
    segments.append((start, n))
    return segments


def _token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the tokens the standard tokenizer keeps."""
    props = [_properties(ch) for ch in text]
    classes = [p & 0x1F for p in props]
    kept: list[list[int]] = []  # [start, end, southeast_asian]
    for start, end in _segments(classes):
        core = [props[i] for i in range(start, end) if classes[i] in CORE_CLASSES]
        if not core:
            continue
        asian = any(p & _SOUTHEAST_ASIAN for p in core) and not any(p & _VETO for p in core)
        if asian and kept and kept[-1][2] and kept[-1][1] == start:
            kept[-1][1] = end  # adjacent Southeast Asian segments form one run
        else:
            kept.append([start, end, int(asian)])
    spans: list[tuple[int, int]] = []
    for start, end, _ in kept:
        while end - start > MAX_TOKEN_LENGTH:
            spans.append((start, start + MAX_TOKEN_LENGTH))
            start += MAX_TOKEN_LENGTH
        spans.append((start, end))
    return spans


def _is_letter_or_digit(char: str) -> bool:
    return bool(_properties(char) & _LETTER_OR_DIGIT)


def mark_tags(text: str) -> tuple[str, list[int]]:
    """Apply the hashtag/handle character filter; returns the new text and an offset map.

    ``offsets[i]`` is the position in ``text`` of character ``i`` of the result
    (with one extra entry for the end).
    """
    out: list[str] = []
    offsets: list[int] = []
    n = len(text)
    for i, char in enumerate(text):
        if char in "#@" and i + 1 < n and _is_letter_or_digit(text[i + 1]):
            before = text[i - 1] if i else None
            if before is None or not (before in "_&#@" or _is_letter_or_digit(before)):
                mark = HASHTAG_MARK if char == "#" else HANDLE_MARK
                out.append(mark)
                offsets.extend([i] * len(mark))
                continue
        out.append(char)
        offsets.append(i)
    offsets.append(n)
    return "".join(out), offsets


def has_tags(text: str) -> bool:
    """Whether the hashtag/handle filter changes ``text`` (it holds a ``#tag`` or ``@handle``)."""
    return mark_tags(text)[0] != text


def tokenize(text: str, *, tags: bool = False) -> list[Token]:
    """Tokens of ``text`` as ``listener_text`` (or, with ``tags``, ``listener_tags``) indexes them.

    Offsets are character offsets into ``text``; a token's position is its index
    in the list.
    """
    if not tags:
        return [Token(fold(text[s:e]), s, e) for s, e in _token_spans(text)]
    marked, offsets = mark_tags(text)
    return [
        Token(fold(marked[s:e]), offsets[s], offsets[e] if e < len(marked) else len(text))
        for s, e in _token_spans(marked)
    ]
