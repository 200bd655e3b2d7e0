"""Tables: the one shape every measure is printed, exported and rendered in.

A :class:`Table` has a name (its export file stem), a title, columns and rows
of plain values, plus notes (the formulas behind the figures). The CLI prints
tables as text, JSON or CSV; the report renders them as HTML and embeds each
as CSV and JSON downloads; ``write_exports`` writes them to a folder.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """Named rows with fixed columns and the notes (formulas) that explain them."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The rows as a JSON array (dates and other objects as text)."""
        return json.dumps(
            [{c: row.get(c) for c in self.columns} for row in self.rows],
            indent=2,
            ensure_ascii=False,
            default=str,
        )

    def to_csv(self) -> str:
        """The rows as CSV with a header line; lists joined by ``; ``, dicts as JSON."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({c: csv_cell(row.get(c)) for c in self.columns})
        return buffer.getvalue()


def csv_cell(value: Any) -> Any:
    """A CSV-friendly value: lists joined by ``; ``, dicts as ``key: value`` pairs."""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return value


def write_exports(tables: Iterable[Table], folder: Path) -> list[Path]:
    """Write every table as ``<name>.csv`` and ``<name>.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        for suffix, text in ((".csv", table.to_csv()), (".json", table.to_json())):
            path = folder / f"{table.name}{suffix}"
            path.write_text(text, encoding="utf-8", newline="")
            written.append(path)
    return written


def records(rows: Sequence[Any], tz: Any = None) -> list[dict[str, Any]]:
    """``row.record(tz)`` for every row."""
    return [row.record(tz) for row in rows]


# -- the tables of each measure ------------------------------------------------------
# Column lists live here, once, for the CLI, the report and the exports.

SOV_COLUMNS = ["brand", "mentions", "engagement", "reach", "reach_known", "value", "total", "share"]
SENTIMENT_COLUMNS = [
    "brand",
    "mentions",
    "positive",
    "neutral",
    "negative",
    "unknown",
    "net_sentiment",
    "weighted",
    "weighted_share",
]
EARNED_COLUMNS = [
    "brand",
    "mentions",
    "owned",
    "earned",
    "earned_share",
    "earned_engagement",
    "earned_reach",
    "earned_reach_known",
    "emv",
    "currency",
    "formula",
]
MENTION_COLUMNS = [
    "brand",
    "rank",
    "published_at",
    "source",
    "domain",
    "author",
    "followers",
    "engagement",
    "sentiment",
    "title",
    "url",
    "id",
]
AUTHOR_COLUMNS = [
    "rank",
    "author",
    "handle",
    "sources",
    "mentions",
    "engagement",
    "reach",
    "brands",
    "url",
]
DOMAIN_COLUMNS = [
    "rank",
    "domain",
    "mentions",
    "share",
    "engagement",
    "reach",
    "reach_known",
    "authors",
    "brands",
]
SOURCE_COLUMNS = [
    "rank",
    "source",
    "kind",
    "mentions",
    "share",
    "engagement",
    "reach",
    "reach_known",
    "brands",
]
KIND_COLUMNS = ["rank", "kind", "mentions", "share", "engagement", "reach", "reach_known", "brands"]
ENTITY_COLUMNS = ["brand", "rank", "entity", "mentions", "share"]
TRENDING_COLUMNS = ["brand", "rank", "term", "count", "previous", "expected", "ratio", "score"]
SPIKE_COLUMNS = [
    "period",
    "brand",
    "metric",
    "count",
    "mean",
    "std",
    "threshold",
    "z",
    "top_terms",
    "top_sources",
    "top_domains",
    "samples",
]
BASELINE_COLUMNS = ["period", "brand", "count", "mean", "std", "threshold", "spike"]


def with_period(columns: Sequence[str], periodic: bool) -> list[str]:
    """``columns`` with a leading ``period`` column when the rows are per period."""
    return (["period"] if periodic else []) + list(columns)
