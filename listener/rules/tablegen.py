"""Regenerate ``_tables.py``: the engine's text analysis, measured character by character.

The rule matcher must cut text into the same tokens as the index, or a rule
would select different mentions at crawl time and on stored data. Rather than
trusting a specification (the engine's standard tokenizer is a re-implementation
of Unicode word segmentation with its own Unicode version and quirks), this
module asks the engine's ``_analyze`` API about every code point in a handful
of contexts and records what it does:

* the word-break class of each character (letter, digit, mid-word punctuation,
  combining mark, emoji, ...), whether a token made of it alone is kept, and
  whether it joins or breaks runs of Southeast Asian script;
* whether the hashtag character filter counts it as a letter or digit;
* what ``lowercase`` + ``asciifolding`` turn it into.

Run it against the embedded engine when the pinned ``noida-db`` version changes::

    noida-db start --only elasticsearch --elasticsearch-port 19200 --data-dir /tmp/noida
    python -m listener.rules.tablegen --url http://127.0.0.1:19200 > listener/rules/_tables.py

It takes about three minutes (two million short ``_analyze`` texts).
"""

from __future__ import annotations

import argparse
import bisect
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from listener.rules import analysis as a

_PLANES = [*range(0x1, 0xD800), *range(0xE000, 0x40000), *range(0xE0000, 0xE1000)]
_BATCH = 600
_CORE_TYPES = {
    "<ALPHANUM>",
    "<NUM>",
    "<KATAKANA>",
    "<HANGUL>",
    "<IDEOGRAPHIC>",
    "<HIRAGANA>",
    "<SOUTHEAST_ASIAN>",
    "<EMOJI>",
}
_EMOJI = "\U0001f600"
_THAI_MARK = "\u0e31"
_THAI_LETTER = "\u0e01"

# Probe name -> how the character is embedded; "joined" means the whole text came back
# as one token.
_PROBES: dict[str, Callable[[str], str]] = {
    "ac": lambda c: "a" + c,
    "cb": lambda c: c + "b",
    "acb": lambda c: "a" + c + "b",
    "1c2": lambda c: "1" + c + "2",
    "ec": lambda c: _EMOJI + c,
    "cc": lambda c: c + c,
    "a.c": lambda c: "a." + c,
    "cq": lambda c: c + "'",
    "1.c": lambda c: "1." + c,
    "zwj": lambda c: "a\u200d" + c,
    "c_": lambda c: c + "_",
}

# Signature of the probes above (1 = joined) -> class, for characters that are not
# kept alone ...
_NON_CORE: dict[tuple[int, ...], int] = {
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0): a.OT,
    (1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0): a.ALN,
    (1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0): a.NUN,
    (1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0): a.ENL,
    (0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0): a.MN,
    (0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0): a.ML,
    (0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0): a.MNL,
    (1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0): a.EX,
}
# ... and for characters that make a token on their own.
_CORE: dict[tuple[int, ...], int] = {
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0): a.OC,
    (1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1): a.AL,
    (1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1): a.HL,
    (1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1): a.NU,
    (1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0): a.EXC,
    (0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1): a.KA,
}
_FIXED = {
    0x22: a.DQ,
    0x27: a.SQ,
    0x200D: a.ZWJ,
    **dict.fromkeys((0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029), a.NL),
    **dict.fromkeys(a.SEGMENT_SPACES, a.WSS),
}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def analyze_many(
    client: Elasticsearch, texts: Sequence[str], **analysis: Any
) -> list[list[tuple[str, str]]]:
    """``(token, type)`` lists for each text, many texts per ``_analyze`` call."""
    out: list[list[tuple[str, str]]] = []
    for i in range(0, len(texts), _BATCH):
        out.extend(_analyze_batch(client, texts[i : i + _BATCH], analysis))
    return out


def _analyze_batch(
    client: Elasticsearch, batch: Sequence[str], analysis: dict[str, Any]
) -> list[list[tuple[str, str]]]:
    # The engine joins a list of texts with one offset unit between them (UTF-16 offsets).
    bases: list[int] = []
    offset = 0
    for text in batch:
        bases.append(offset)
        offset += _utf16_len(text) + 1
    try:
        response = client.indices.analyze(text=list(batch), **analysis)
    except ApiError:
        if len(batch) == 1:
            raise
        half = len(batch) // 2
        return _analyze_batch(client, batch[:half], analysis) + _analyze_batch(
            client, batch[half:], analysis
        )
    result: list[list[tuple[str, str]]] = [[] for _ in batch]
    for token in response["tokens"]:
        index = bisect.bisect_right(bases, token["start_offset"]) - 1
        result[index].append((token["token"], token["type"]))
    return result


def _joined(tokens: list[tuple[str, str]], text: str) -> int:
    return int(len(tokens) == 1 and tokens[0][0] == text)


def measure(client: Elasticsearch, code_points: Iterable[int] = _PLANES) -> dict[str, Any]:
    """Ask the engine about every code point; returns the raw tables."""
    points = list(code_points)
    chars = [chr(c) for c in points]
    standard = {"tokenizer": "standard"}
    alone = analyze_many(client, chars, **standard)
    probes = {
        name: [
            _joined(tokens, build(ch))
            for tokens, ch in zip(
                analyze_many(client, [build(ch) for ch in chars], **standard), chars, strict=True
            )
        ]
        for name, build in _PROBES.items()
    }
    lead = analyze_many(client, [ch + _THAI_MARK + _THAI_LETTER for ch in chars], **standard)
    tagged = analyze_many(
        client,
        ["#" + ch for ch in chars],
        tokenizer="standard",
        char_filter=[a.ANALYSIS["char_filter"][a.HASHTAG_FILTER]],
    )
    folded = analyze_many(
        client,
        ["x" + ch + "x" for ch in chars],
        tokenizer="keyword",
        filter=["lowercase", "asciifolding"],
    )
    properties: dict[int, int] = {}
    folding: dict[int, str] = {}
    for i, (point, ch) in enumerate(zip(points, chars, strict=True)):
        single = alone[i]
        kind = single[0][1] if len(single) == 1 and single[0][0] == ch else None
        core = kind in _CORE_TYPES
        signature = tuple(probes[name][i] for name in _PROBES)
        if point in _FIXED:
            word_break = _FIXED[point]
        elif not core:
            word_break = _NON_CORE[signature]
        elif signature == (0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0) and kind == "<EMOJI>":
            word_break = a.EP
        elif signature == (0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0):
            word_break = a.SA if kind == "<SOUTHEAST_ASIAN>" else a.RI
        else:
            word_break = _CORE[signature]
        southeast_asian = kind == "<SOUTHEAST_ASIAN>"
        vetoes = word_break in a.CORE_CLASSES and [t for t, _ in lead[i]] != [
            ch + _THAI_MARK + _THAI_LETTER
        ]
        letter = any("_ht_" in t for t, _ in tagged[i])
        properties[point] = a.pack(word_break, southeast_asian, vetoes, letter)
        token = folded[i][0][0] if folded[i] else "x" + ch + "x"
        if token[1:-1] != ch:
            folding[point] = token[1:-1]
    return {"properties": properties, "folding": folding}


def render(tables: dict[str, Any], engine: str) -> str:
    """The source of ``_tables.py`` for measured tables."""
    properties: dict[int, int] = tables["properties"]
    runs: list[str] = []
    previous = None
    for point in range(0x110000):
        value = properties.get(point, a.pack(a.OT, False, False, False))
        if value != previous:
            runs.append(f"{point:x}:{value:x}")
            previous = value
    folding = [
        f"{point:x}:{'+'.join(f'{ord(c):x}' for c in text)}"
        for point, text in sorted(tables["folding"].items())
    ]
    lines = [
        '"""Measured text analysis of the embedded engine (generated: do not edit).',
        "",
        "Regenerate with ``python -m listener.rules.tablegen`` (see that module).",
        '"""',
        "",
        f'ENGINE = "{engine}"',
        "",
        "# Runs of code points with equal properties: 'start:packed' in hex (see analysis.pack).",
        "RUNS = (",
        *_wrap(runs),
        ")",
        "",
        "# lowercase + asciifolding: 'code point:replacement code points' in hex.",
        "FOLDING = (",
        *_wrap(folding),
        ")",
        "",
    ]
    return "\n".join(lines)


def _wrap(items: list[str], width: int = 90) -> list[str]:
    lines: list[str] = []
    current = ""
    for item in items:
        if current and len(current) + len(item) + 1 > width:
            lines.append(f'    "{current} "')
            current = item
        else:
            current = f"{current} {item}" if current else item
    if current:
        lines.append(f'    "{current}"')
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the engine at ``--url`` and print the tables module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the engine, e.g. http://127.0.0.1:19200")
    args = parser.parse_args(argv)
    client = Elasticsearch(args.url, request_timeout=300)
    info = client.info()
    try:
        name = f"noida-db {metadata.version('noida-db')}"
    except metadata.PackageNotFoundError:
        name = str(info["name"])
    engine = f"{name} (Elasticsearch API {info['version']['number']})"
    sys.stdout.write(render(measure(client), engine))


if __name__ == "__main__":
    main()
