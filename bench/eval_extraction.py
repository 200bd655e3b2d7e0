"""Extraction quality of the ``web`` and ``reviews`` parsers on real pages, against human gold data.

Run from the project root::

    python bench/eval_extraction.py            # both parts
    python bench/eval_extraction.py --part web

**Articles** (``news_articles/trafilatura/evaldata_subset.json``, trafilatura's
own evaluation set filtered to the saved pages): each page goes through
:func:`listener.plugins.web.extract_article` exactly as a crawl would run it.
Per page, title, author and date are checked where the gold data gives them
(an empty or missing value is "not annotated" and left out): the title and
author must equal the gold after whitespace is collapsed, the date's UTC day
must equal the gold day. For the text, trafilatura's gold lists strings that
must appear ("with": recall-style, the share found) and boilerplate that must
not ("without": precision-style, the share absent); F1 is their harmonic mean.

**Product pages** (``product_pages/extruct/*.expected.json``, extruct's own
expected microdata output for those pages): every ``Review`` and
``AggregateRating`` in the expected data is compared with what
:func:`listener.plugins.reviews.extract_reviews` reads — number of reviews, and
for aggregates the rating value and the count; for reviews author, day,
rating value and body.

The fixtures live in ``$LISTENER_FIXTURES`` or ``../shared/fixtures``; a part
whose fixtures are absent is skipped with a note (exit status 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def fixtures_root() -> Path:
    """Where the shared fixtures live: ``$LISTENER_FIXTURES`` or ``../shared/fixtures``."""
    configured = os.environ.get("LISTENER_FIXTURES")
    return Path(configured) if configured else HERE.parent.parent / "shared" / "fixtures"


def _collapse(value: str | None) -> str:
    return " ".join((value or "").split())


def _mark(outcome: bool | None) -> str:
    return "-" if outcome is None else ("ok" if outcome else "MISS")


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:.1%}" if whole else "n/a"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, ["-" * width for width in widths], *rows]
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- articles


@dataclass
class FieldScore:
    """Correct answers out of the annotated pages, for one field."""

    correct: int = 0
    annotated: int = 0

    def add(self, outcome: bool | None) -> None:
        if outcome is None:
            return
        self.annotated += 1
        self.correct += int(outcome)


@dataclass
class ArticleReport:
    """Scores over all article pages."""

    fields: dict[str, FieldScore] = field(
        default_factory=lambda: {name: FieldScore() for name in ("title", "author", "date")}
    )
    with_found: int = 0
    with_total: int = 0
    without_absent: int = 0
    without_total: int = 0
    seconds: float = 0.0
    pages: int = 0
    rows: list[list[str]] = field(default_factory=list)


def _expected(gold: dict[str, Any], name: str) -> str | None:
    value = gold.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def evaluate_articles(folder: Path) -> ArticleReport | None:
    """Run the web source's article extractor over the gold pages; None without fixtures."""
    from listener.plugins.web import extract_article

    gold_path = folder / "evaldata_subset.json"
    if not gold_path.is_file():
        return None
    gold_pages: dict[str, dict[str, Any]] = json.loads(gold_path.read_text(encoding="utf-8"))
    report = ArticleReport()
    for url, gold in gold_pages.items():
        page = folder / gold["file"]
        if not page.is_file():
            continue
        started = time.perf_counter()
        article = extract_article(page.read_bytes(), url, "text/html")
        report.seconds += time.perf_counter() - started
        report.pages += 1

        outcomes: dict[str, bool | None] = {}
        title, author, day = (_expected(gold, name) for name in ("title", "author", "date"))
        outcomes["title"] = None if title is None else _collapse(article.title) == title
        outcomes["author"] = None if author is None else _collapse(article.author) == author
        outcomes["date"] = (
            None
            if day is None
            else article.published is not None and article.published.date().isoformat() == day
        )
        for name, outcome in outcomes.items():
            report.fields[name].add(outcome)

        text = article.text
        found = sum(1 for snippet in gold.get("with", []) if snippet in text)
        absent = sum(1 for snippet in gold.get("without", []) if snippet not in text)
        report.with_found += found
        report.with_total += len(gold.get("with", []))
        report.without_absent += absent
        report.without_total += len(gold.get("without", []))
        report.rows.append(
            [
                gold["file"],
                _mark(outcomes["title"]),
                _mark(outcomes["author"]),
                _mark(outcomes["date"]),
                f"{found}/{len(gold.get('with', []))}",
                f"{absent}/{len(gold.get('without', []))}",
                str(len(text)),
            ]
        )
    return report


def print_articles(report: ArticleReport, folder: Path) -> None:
    """Print the per-page table and the summary figures."""
    print(f"Articles: {report.pages} pages from {folder}")
    print(
        _table(
            ["page", "title", "author", "date", "with found", "without absent", "text chars"],
            report.rows,
        )
    )
    print()
    summary = [
        [name, _ratio(score.correct, score.annotated)] for name, score in report.fields.items()
    ]
    recall = report.with_found / report.with_total if report.with_total else 0.0
    precision = report.without_absent / report.without_total if report.without_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    summary += [
        ["text recall ('with' found)", _ratio(report.with_found, report.with_total)],
        ["text precision ('without' absent)", _ratio(report.without_absent, report.without_total)],
        ["text F1", f"{f1:.3f}"],
        ["mean extraction time", f"{1000 * report.seconds / max(report.pages, 1):.0f} ms/page"],
    ]
    print(_table(["measure (annotated pages only)", "score"], summary))


# --------------------------------------------------------------------------- product pages


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every typed object of extruct's expected microdata output, nested ones included."""
    if isinstance(value, list):
        for member in value:
            yield from _walk(member)
    elif isinstance(value, dict):
        if "type" in value and "properties" in value:
            yield value
            for member in value["properties"].values():
                yield from _walk(member)
        else:
            for member in value.values():
                yield from _walk(member)


def _type_name(value: dict[str, Any]) -> str:
    kind = value.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return str(kind or "").rstrip("/").rpartition("/")[2]


def _prop(value: dict[str, Any], name: str) -> Any:
    found = value.get("properties", {}).get(name)
    return found[0] if isinstance(found, list) and found else found


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ".").strip())
    except (TypeError, ValueError):
        return None


@dataclass
class ProductReport:
    """Scores over all product pages."""

    rows: list[list[str]] = field(default_factory=list)
    checks: int = 0
    correct: int = 0
    reviews_expected: int = 0
    reviews_found: int = 0
    seconds: float = 0.0


def evaluate_products(folder: Path) -> ProductReport | None:
    """Compare the reviews parser with extruct's expected output; None without fixtures."""
    from listener.plugins.reviews import extract_reviews

    expected_files = sorted(folder.glob("*.expected.json"))
    if not expected_files:
        return None
    report = ProductReport()
    for expected_path in expected_files:
        page = expected_path.with_name(expected_path.name.replace(".expected.json", ".html"))
        if not page.is_file():
            continue
        expected = list(_walk(json.loads(expected_path.read_text(encoding="utf-8"))))
        url = f"https://fixture.example/{page.name}"
        started = time.perf_counter()
        extracted = extract_reviews(page.read_bytes(), url, "text/html")
        report.seconds += time.perf_counter() - started

        checks = correct = 0
        aggregates = [item for item in expected if _type_name(item) == "AggregateRating"]
        found_aggregates = [item.aggregate for item in extracted.items if item.aggregate]
        for index, gold in enumerate(aggregates):
            got = found_aggregates[index] if index < len(found_aggregates) else None
            for name, value in (
                ("ratingValue", got.value if got else None),
                ("reviewCount", got.review_count if got else None),
                ("ratingCount", got.rating_count if got else None),
                ("bestRating", got.best if got else None),
            ):
                wanted = _number(_prop(gold, name))
                if wanted is None:
                    continue
                checks += 1
                correct += int(value is not None and abs(float(value) - wanted) < 1e-9)
        reviews = [item for item in expected if _type_name(item) == "Review"]
        for index, gold in enumerate(reviews):
            review = extracted.reviews[index] if index < len(extracted.reviews) else None
            rating = _prop(gold, "reviewRating")
            gold_value = _number(_prop(rating, "ratingValue")) if isinstance(rating, dict) else None
            gold_day = str(_prop(gold, "datePublished") or "")[:10]
            got_day = review.published.date().isoformat() if review and review.published else None
            got_rating = f"{review.rating.raw:g}" if review and review.rating else None
            pairs: list[tuple[str, str | None]] = [
                (_collapse(str(_prop(gold, "author") or "")), review and review.author_name),
                (gold_day, got_day),
                (f"{gold_value:g}" if gold_value is not None else "", got_rating),
                (_collapse(str(_prop(gold, "reviewBody") or "")), review and review.text),
            ]
            for gold_text, got_text in pairs:
                if not gold_text:
                    continue
                checks += 1
                correct += int(_collapse(got_text) == gold_text)
        # Nothing expected and nothing invented is also a check passed.
        checks += 1
        correct += int(len(extracted.reviews) == len(reviews))
        checks += 1
        correct += int(len(found_aggregates) == len(aggregates))
        report.checks += checks
        report.correct += correct
        report.reviews_expected += len(reviews)
        report.reviews_found += len(extracted.reviews)
        report.rows.append(
            [
                page.name,
                f"{len(reviews)}/{len(extracted.reviews)}",
                f"{len(aggregates)}/{len(found_aggregates)}",
                ", ".join(
                    f"{a.value:g}/{a.best or 5:g} n={a.review_count or a.rating_count}"
                    for a in found_aggregates
                    if a.value is not None
                )
                or "-",
                f"{correct}/{checks}",
            ]
        )
    return report


def print_products(report: ProductReport, folder: Path) -> None:
    """Print the per-page table and the summary figures."""
    print(f"Product pages: {len(report.rows)} pages from {folder}")
    print(
        _table(
            ["page", "reviews exp/got", "aggregates exp/got", "aggregate read", "checks"],
            report.rows,
        )
    )
    print()
    print(
        _table(
            ["measure", "score"],
            [
                ["field checks correct", _ratio(report.correct, report.checks)],
                ["reviews expected / found", f"{report.reviews_expected} / {report.reviews_found}"],
                [
                    "mean extraction time",
                    f"{1000 * report.seconds / max(len(report.rows), 1):.0f} ms/page",
                ],
            ],
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate the article and product-page extractors and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=["web", "reviews", "all"], default="all")
    arguments = parser.parse_args(argv)
    root = fixtures_root()
    if arguments.part in ("web", "all"):
        folder = root / "news_articles" / "trafilatura"
        articles = evaluate_articles(folder)
        if articles is None:
            print(f"Articles: skipped, no fixtures in {folder}")
        else:
            print_articles(articles, folder)
        print()
    if arguments.part in ("reviews", "all"):
        folder = root / "product_pages" / "extruct"
        products = evaluate_products(folder)
        if products is None:
            print(f"Product pages: skipped, no fixtures in {folder}")
        else:
            print_products(products, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
