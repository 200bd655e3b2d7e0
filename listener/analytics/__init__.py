"""Analytics: the weekly answers a brand team needs, computed from plain aggregations.

Share of voice, sentiment, earned media, top authors/domains/sources/entities,
trending terms and spikes, each a function taking an Elasticsearch client and
the project; the HTML report and spike alerts are built on them. Every ratio
is computed in Python from ``filters``/``terms``/``date_histogram``/``sum``
aggregations, so the same code runs on Elasticsearch and on the embedded
engine (see docs/analytics.md for the formulas).

Submodules are imported on first use: ``listener.config`` imports
``listener.analytics.settings``, and the measures import ``listener.config``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from listener.analytics.alerts import AlertRun, run_alerts
    from listener.analytics.measures import (
        EarnedRow,
        SentimentRow,
        ShareOfVoiceRow,
        earned_media,
        sentiment,
        share_of_voice,
        top_earned_mentions,
    )
    from listener.analytics.report import Report, build_report, render_html
    from listener.analytics.scope import Filters
    from listener.analytics.spikes import SpikeAnalysis, detect_spikes
    from listener.analytics.tables import Table
    from listener.analytics.top import top_authors, top_domains, top_entities, top_sources
    from listener.analytics.trending import trending_terms

_EXPORTS = {
    "AlertRun": "alerts",
    "run_alerts": "alerts",
    "EarnedRow": "measures",
    "SentimentRow": "measures",
    "ShareOfVoiceRow": "measures",
    "earned_media": "measures",
    "sentiment": "measures",
    "share_of_voice": "measures",
    "top_earned_mentions": "measures",
    "Report": "report",
    "build_report": "report",
    "render_html": "report",
    "Filters": "scope",
    "SpikeAnalysis": "spikes",
    "detect_spikes": "spikes",
    "Table": "tables",
    "top_authors": "top",
    "top_domains": "top",
    "top_entities": "top",
    "top_sources": "top",
    "trending_terms": "trending",
}

__all__ = [
    "AlertRun",
    "EarnedRow",
    "Filters",
    "Report",
    "SentimentRow",
    "ShareOfVoiceRow",
    "SpikeAnalysis",
    "Table",
    "build_report",
    "detect_spikes",
    "earned_media",
    "render_html",
    "run_alerts",
    "sentiment",
    "share_of_voice",
    "top_authors",
    "top_domains",
    "top_earned_mentions",
    "top_entities",
    "top_sources",
    "trending_terms",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'listener.analytics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"listener.analytics.{module}"), name)
