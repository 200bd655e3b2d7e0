"""The project file's ``[analytics]``, ``[earned_media]`` and ``[alerts]`` sections.

These models import nothing from the rest of listener but ``listener.mention``
(for the source kinds), so ``listener.config`` can embed them without an
import cycle. Every section is optional and has
defaults; see docs/analytics.md for the full reference.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from listener.mention import SOURCE_KINDS as SOURCE_KINDS  # defined once, re-exported

# The range every analytics command and API route covers when not told: the last 30 days.
DEFAULT_SINCE = "30d"
ALERT_INTERVALS: tuple[str, ...] = ("hour", "day", "week", "month")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """A duration from ``"90s"``, ``"30m"``, ``"6h"``, ``"2d"``, ``"1w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative (got {value})")
        return timedelta(seconds=value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(
            f"cannot read the duration {value!r}: "
            "use a number and a unit, e.g. 90s, 30m, 6h, 2d, 1w"
        )
    return timedelta(**{_DURATION_UNITS[match.group(2)]: float(match.group(1))})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SentimentWeights(_Section):
    """How much one mention of each sentiment counts in sentiment-weighted share of voice."""

    positive: float = Field(default=1.0, ge=0)
    neutral: float = Field(default=0.5, ge=0)
    negative: float = Field(default=0.0, ge=0)


class SpikeSettings(_Section):
    """Spike detection: a period is a spike when count > mean + k*sd of the trailing window."""

    k: float = Field(default=2.0, gt=0, description="how many standard deviations above the mean")
    window: int = Field(default=7, ge=2, le=366, description="trailing periods in the baseline")
    min_count: int = Field(default=5, ge=1, description="smallest count that can be a spike")


class AnalyticsConfig(_Section):
    """Defaults for the analytics commands and the report."""

    sentiment_weights: SentimentWeights = Field(default_factory=SentimentWeights)
    spikes: SpikeSettings = Field(default_factory=SpikeSettings)
    trending_min_count: int = Field(
        default=2, ge=1, description="a term must occur this often in the current period"
    )
    max_periods: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="most periods one per-period figure may have (hourly, daily... breakdowns)",
    )


class EarnedMediaConfig(_Section):
    """Rates for earned media value. Without rates, no value is computed."""

    currency: str = Field(default="USD", min_length=1, max_length=8)
    cpm: dict[str, float] = Field(
        default_factory=dict,
        description="cost per 1000 impressions (reach) by source kind, e.g. {social = 5.0}",
    )
    cost_per_engagement: float | None = Field(default=None, ge=0)

    @field_validator("cpm")
    @classmethod
    def _known_kinds(cls, rates: dict[str, float]) -> dict[str, float]:
        for kind, rate in rates.items():
            if kind not in SOURCE_KINDS:
                raise ValueError(
                    f"unknown source kind {kind!r}; use one of: {', '.join(SOURCE_KINDS)}"
                )
            if rate < 0:
                raise ValueError(f"the CPM for {kind} cannot be negative (got {rate})")
        return rates

    @property
    def has_rates(self) -> bool:
        """Whether any rate is set (earned media value is computed only then)."""
        return bool(self.cpm) or self.cost_per_engagement is not None


class AlertRule(_Section):
    """One spike rule evaluated by ``listener alerts``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    brands: list[str] = Field(default_factory=list, description="empty: every project brand")
    metric: Literal["mentions", "negative"] = "mentions"
    interval: Literal["hour", "day", "week", "month"] = "day"
    tz: str = Field(default="UTC", description="time zone of the periods")
    k: float = Field(default=2.0, gt=0)
    window: int = Field(default=7, ge=2, le=366)
    min_count: int = Field(default=5, ge=1)
    lookback: int = Field(
        default=2, ge=1, le=48, description="latest periods checked (the current one included)"
    )
    cooldown: str | None = Field(
        default=None, description="override [alerts] cooldown for this rule"
    )
    sources: list[str] = Field(default_factory=list)
    source_kinds: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    unique: bool = False

    @field_validator("cooldown")
    @classmethod
    def _readable_cooldown(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class Webhook(_Section):
    """Where alerts are posted: a Slack-compatible incoming webhook, or plain JSON."""

    url: str = Field(pattern=r"^https?://", repr=False)
    name: str | None = None
    format: Literal["slack", "json"] = "slack"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The name to report: ``name``, else the URL without its path (which holds secrets)."""
        if self.name:
            return self.name
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


class AlertsConfig(_Section):
    """Spike alert rules, where to post them, and how to avoid repeating them."""

    rules: list[AlertRule] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    cooldown: str = Field(
        default="6h", description="after an alert, the same rule and brand stay quiet this long"
    )
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=1.0, ge=0, le=60, description="first retry delay, doubled")
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("cooldown")
    @classmethod
    def _readable(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _unique_rule_names(self) -> AlertsConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"alert rule {rule.name!r} is listed twice")
            seen.add(rule.name)
        return self
