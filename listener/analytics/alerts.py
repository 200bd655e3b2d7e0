"""Spike alerts: evaluate the project's rules over the latest periods, post each new spike once.

``listener alerts`` runs :func:`run_alerts` (from cron, say, every few
minutes). For every ``[[alerts.rules]]`` entry it judges the latest
``lookback`` periods (the current, still running one included) with
:func:`listener.analytics.spikes.detect_spikes`, and turns each spike into an
:class:`Alert`. An alert is then

* **sent** to every ``[[alerts.webhooks]]`` entry (Slack-compatible JSON, or
  plain JSON), or printed when no webhook is configured;
* **suppressed** when it was already delivered (one spike, one alert), or
  when the same rule and brand alerted less than ``cooldown`` ago.

State lives in ``<LISTENER_HOME>/alerts/state.json``: which alert went to
which destination, and when each rule and brand last alerted. A clustered
project (``[cluster] redis_url``) keeps it in Redis instead
(``listener:<ns>:alerts:state``, runs serialised by a Redis lock), so a
standby scheduler that takes over, or ``listener alerts`` on another
machine, never posts a spike the fleet already posted. A webhook that
fails is retried (``retries`` times, backoff doubling from ``backoff``
seconds, ``Retry-After`` honoured up to a minute), then reported; the run
carries on, and the next run retries only the destinations that missed it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from listener import __version__
from listener.analytics.periods import (
    Period,
    period_label,
    period_of,
    period_start,
    previous_period,
)
from listener.analytics.scope import Filters
from listener.analytics.settings import AlertRule, AlertsConfig, Webhook, parse_duration
from listener.analytics.spikes import Explanation, detect_spikes
from listener.config import ProjectConfig
from listener.errors import ListenerError
from listener.store.queries import parse_zone

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not serialised
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STATE_FILE = Path("alerts") / "state.json"
LOCK_FILE = Path("alerts") / "run.lock"
#: Seconds a clustered evaluation's Redis lock lives unless renewed. Its holder renews it
#: every third of that while it evaluates, so one that dies holds the others off this long.
REDIS_LOCK_TTL = 30.0
PRINTED = "stdout"
_KEEP = timedelta(days=90)
_MAX_RETRY_AFTER = 60.0
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Alert:
    """One spike found by one rule."""

    rule: str
    brand: str
    metric: str
    interval: str
    tz: str
    period: Period
    start: datetime
    end: datetime
    count: int
    mean: float
    std: float
    threshold: float
    k: float
    explanation: Explanation = field(default_factory=Explanation)

    @property
    def key(self) -> str:
        """Identifies the spike: rule, brand and the UTC start of the period."""
        start = period_start(self.period, parse_zone(self.tz), self.interval)
        return f"{self.rule}|{self.brand}|{start.isoformat()}"

    @property
    def label(self) -> str:
        """The period as shown to people."""
        return period_label(self.period, parse_zone(self.tz)) or ""

    @property
    def what(self) -> str:
        """``mentions`` or ``negative mentions``."""
        return "mentions" if self.metric == "mentions" else "negative mentions"

    def text(self) -> str:
        """A plain-text summary."""
        lines = [
            f"Spike: {self.brand} {self.what} ({self.interval} {self.label}, {self.tz}): "
            f"{self.count} against a trailing mean of {self.mean:.1f} "
            f"(threshold {self.threshold:.1f} = {self.mean:.1f} + {self.k:g} * {self.std:.1f}) "
            f"[rule {self.rule}]"
        ]
        summary = self.explanation.summary()
        if summary:
            lines.append(summary)
        for sample in self.explanation.samples:
            lines.append(f"- {sample.get('title') or ''} {sample.get('url') or ''}".rstrip())
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """Everything about the alert as plain JSON values."""
        return {
            "type": "listener.spike",
            "rule": self.rule,
            "brand": self.brand,
            "metric": self.metric,
            "interval": self.interval,
            "tz": self.tz,
            "period": self.label,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "count": self.count,
            "mean": round(self.mean, 3),
            "std": round(self.std, 3),
            "threshold": round(self.threshold, 3),
            "k": self.k,
            "terms": [t.record() for t in self.explanation.terms],
            "sources": [{"source": s, "mentions": n} for s, n in self.explanation.sources],
            "domains": [{"domain": d, "mentions": n} for d, n in self.explanation.domains],
            "samples": self.explanation.samples,
            "key": self.key,
        }

    def slack(self) -> dict[str, Any]:
        """A Slack (and Mattermost, Rocket.Chat…) incoming-webhook payload."""

        def esc(text: Any) -> str:
            return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        head = (
            f":chart_with_upwards_trend: *Spike: {esc(self.brand)} {self.what}* "
            f"({self.interval} {esc(self.label)}, {esc(self.tz)})\n"
            f"*{self.count}* against a trailing mean of {self.mean:.1f} "
            f"(threshold {self.threshold:.1f} = {self.mean:.1f} + {self.k:g} * {self.std:.1f})"
        )
        details = []
        if self.explanation.terms:
            details.append(
                "*Rising terms:* "
                + ", ".join(f"{esc(t.term)} ({t.count})" for t in self.explanation.terms)
            )
        if self.explanation.sources:
            details.append(
                "*Sources:* " + ", ".join(f"{esc(s)} ({n})" for s, n in self.explanation.sources)
            )
        if self.explanation.domains:
            details.append(
                "*Domains:* " + ", ".join(f"{esc(d)} ({n})" for d, n in self.explanation.domains)
            )
        for sample in self.explanation.samples:
            title = esc(sample.get("title") or sample.get("url") or "mention")
            details.append(f"• <{sample.get('url')}|{title}>")
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": head}}
        ]
        if details:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(details)}}
            )
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"listener rule `{esc(self.rule)}`"}],
            }
        )
        return {"text": self.text(), "blocks": blocks}


@dataclass(frozen=True)
class Delivery:
    """The outcome of posting one alert to one destination."""

    alert: str
    destination: str
    ok: bool
    attempts: int = 1
    status: int | None = None
    error: str | None = None


@dataclass
class AlertRun:
    """What one evaluation did."""

    sent: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[Alert, str]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    printed: list[Alert] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        """Deliveries that did not get through after their retries."""
        return [d for d in self.deliveries if not d.ok]


# -- state --------------------------------------------------------------------------


def _destination_id(hook: Webhook) -> str:
    """A stable id for a webhook that does not store its (secret) URL."""
    return "webhook:" + hashlib.sha256(hook.url.encode()).hexdigest()[:16]


@dataclass
class AlertState:
    """Which alerts went where, and when each rule and brand last alerted."""

    path: Path
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> AlertState:
        """Read the state file; a missing or unreadable file starts afresh (with a warning)."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, dict(data.get("sent") or {}), dict(data.get("last") or {}))
        except (OSError, ValueError, AttributeError) as error:
            log.warning("alert state %s is unreadable (%s); starting afresh", path, error)
            return cls(path)

    def save(self, now: datetime) -> None:
        """Write atomically, dropping entries older than 90 days."""
        cutoff = now - _KEEP
        self.sent = {
            key: entry
            for key, entry in self.sent.items()
            if datetime.fromisoformat(entry["at"]) >= cutoff
        }
        self.last = {k: v for k, v in self.last.items() if datetime.fromisoformat(v) >= cutoff}
        payload = json.dumps({"sent": self.sent, "last": self.last}, indent=2, sort_keys=True)
        self._write(payload)

    def _write(self, payload: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(payload)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def delivered_to(self, key: str) -> set[str]:
        """Destinations that already received the alert ``key``."""
        return set((self.sent.get(key) or {}).get("destinations") or [])

    def record(self, alert: Alert, destinations: Sequence[str], now: datetime) -> None:
        """Remember a delivery; the first one starts the rule and brand's cooldown."""
        first = alert.key not in self.sent
        entry = self.sent.setdefault(alert.key, {"at": now.isoformat(), "destinations": []})
        entry["destinations"] = sorted(set(entry["destinations"]) | set(destinations))
        if first:
            self.last[f"{alert.rule}|{alert.brand}"] = now.isoformat()

    def quiet_until(self, alert: Alert, cooldown: timedelta) -> datetime | None:
        """When the rule and brand's cooldown ends, if it has not yet."""
        last = self.last.get(f"{alert.rule}|{alert.brand}")
        return datetime.fromisoformat(last) + cooldown if last else None


@dataclass
class SharedAlertState(AlertState):
    """The alert state of a clustered project: one JSON value in Redis, shared by the fleet."""

    redis: Any = None
    key: str = ""

    @classmethod
    def load_shared(cls, redis: Any, key: str) -> SharedAlertState:
        """Read the state from Redis; a missing or unreadable value starts afresh."""
        where = Path(f"redis:{key}")
        raw = redis.get(key)
        if raw is None:
            return cls(where, redis=redis, key=key)
        try:
            data = json.loads(str(raw))
            return cls(
                where, dict(data.get("sent") or {}), dict(data.get("last") or {}), redis, key
            )
        except (ValueError, AttributeError) as error:
            log.warning("alert state in Redis %s is unreadable (%s); starting afresh", key, error)
            return cls(where, redis=redis, key=key)

    def _write(self, payload: str) -> None:
        self.redis.set(self.key, payload)


@contextlib.contextmanager
def _shared_state(
    config: ProjectConfig, *, exclusive: bool = True, timeout: float = 120.0
) -> Iterator[AlertState]:
    """The state of this evaluation; ``exclusive``: held by this process alone until saved.

    Clustered: in Redis under a redis-py lock (renewed while held, expiring
    ``REDIS_LOCK_TTL`` seconds after its holder dies),
    so two schedulers or a scheduler and ``listener alerts`` on another machine
    never evaluate at once. One machine: the state file under a file lock.
    """
    url = config.cluster.redis_url
    if not url:
        if not exclusive:
            yield AlertState.load(config.home / STATE_FILE)
            return
        with _one_run_at_a_time(config.home / LOCK_FILE, timeout):
            yield AlertState.load(config.home / STATE_FILE)
        return
    import redis as redis_module

    from listener.service.state import namespace, redis_client

    client = redis_client(url)
    prefix = namespace(config)
    lock = client.lock(prefix + "alerts:lock", timeout=REDIS_LOCK_TTL, blocking=True,
                       blocking_timeout=timeout, thread_local=False)  # fmt: skip
    # (thread_local=False: the thread that renews it must see the token this one took.)
    try:
        if not exclusive:
            yield SharedAlertState.load_shared(client, prefix + "alerts:state")
            return
        if not lock.acquire():
            raise ListenerError(
                f"another alert run holds the Redis lock {prefix}alerts:lock; try again later"
            )
        try:
            with _kept_alive(lock, REDIS_LOCK_TTL / 3):
                yield SharedAlertState.load_shared(client, prefix + "alerts:state")
        finally:
            with contextlib.suppress(redis_module.RedisError):
                lock.release()
    finally:
        client.close()


@contextlib.contextmanager
def _kept_alive(lock: Any, every: float) -> Iterator[None]:
    """Renew a held redis-py ``lock`` to its full time every ``every`` seconds until the block
    ends, so a long evaluation keeps it while a dead holder's lock soon expires."""
    from redis.exceptions import LockError, RedisError

    done = threading.Event()

    def renew() -> None:
        while not done.wait(every):
            try:
                lock.reacquire()
            except (LockError, RedisError) as error:
                log.warning(
                    "alerts: could not renew the Redis lock %s (%s); another run may start",
                    lock.name,
                    error,
                )
                return

    renewer = threading.Thread(target=renew, name="listener-alerts-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


@contextlib.contextmanager
def _one_run_at_a_time(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Serialise runs (cron overlaps) so one spike is never posted twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        if fcntl is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ListenerError(
                            f"another `listener alerts` run holds {path}; try again later"
                        ) from None
                    time.sleep(0.2)
        yield


# -- webhooks -----------------------------------------------------------------------

Sleeper = Callable[[float], None]


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Direct for loopback addresses (no proxy), the environment's proxies otherwise."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "127.0.0.1", "::1"):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None


def post_json(
    hook: Webhook,
    payload: dict[str, Any],
    *,
    alert: str,
    retries: int,
    backoff: float,
    timeout: float,
    sleep: Sleeper = time.sleep,
) -> Delivery:
    """POST ``payload`` to the webhook, retrying network errors, 408, 429 and 5xx."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"listener/{__version__} (alerts)",
        **hook.headers,
    }
    opener = _opener(hook.url)
    delay = backoff
    status: int | None = None
    error_text = ""
    attempts = 0
    for attempt in range(retries + 1):
        attempts = attempt + 1
        wait = delay
        request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=timeout) as response:
                status = response.status
                response.read()
            return Delivery(alert, hook.label, True, attempts, status)
        except urllib.error.HTTPError as error:
            status = error.code
            error_text = f"HTTP {error.code} {error.reason}"
            if error.code not in _RETRY_STATUSES:
                break
            wait = _retry_after(error) or delay
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            status = None
            reason = getattr(error, "reason", error)
            error_text = f"{type(error).__name__}: {reason}"
        if attempt < retries:
            if wait > 0:
                sleep(wait)
            delay *= 2
    return Delivery(alert, hook.label, False, attempts, status, error_text)


# -- evaluation ---------------------------------------------------------------------


def _rule_alerts(
    client: Elasticsearch, config: ProjectConfig, rule: AlertRule, now: datetime
) -> list[Alert]:
    """The spikes ``rule`` finds in its latest ``lookback`` periods, as alerts."""
    zone = parse_zone(rule.tz)
    first = period_of(now, zone, rule.interval)
    for _ in range(rule.lookback - 1):
        first = previous_period(first, rule.interval)
    since = period_start(first, zone, rule.interval)
    analysis = detect_spikes(
        client,
        config,
        since=since,
        until=now,
        interval=rule.interval,
        tz=rule.tz,
        brands=rule.brands or None,
        filters=Filters.of(
            sources=rule.sources,
            source_kinds=rule.source_kinds,
            languages=rule.languages,
            countries=rule.countries,
            unique=rule.unique,
        ),
        metric=rule.metric,
        k=rule.k,
        window=rule.window,
        min_count=rule.min_count,
    )
    return [
        Alert(
            rule=rule.name,
            brand=spike.brand,
            metric=spike.metric,
            interval=rule.interval,
            tz=rule.tz,
            period=spike.period,
            start=spike.start,
            end=spike.end,
            count=spike.count,
            mean=spike.mean,
            std=spike.std,
            threshold=spike.threshold,
            k=spike.k,
            explanation=spike.explanation,
        )
        for spike in analysis.spikes
    ]


def evaluate(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    now: datetime | None = None,
    rules: Sequence[str] | None = None,
) -> list[Alert]:
    """Every spike the rules find in their latest periods (nothing is sent or recorded)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    chosen = _chosen_rules(config.alerts, rules)
    alerts: list[Alert] = []
    for rule in chosen:
        alerts.extend(_rule_alerts(client, config, rule, moment))
    return alerts


def _chosen_rules(settings: AlertsConfig, names: Sequence[str] | None) -> list[AlertRule]:
    if not names:
        return list(settings.rules)
    known = {rule.name: rule for rule in settings.rules}
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(
            f"unknown alert rule {missing[0]!r}; the project file defines: "
            f"{', '.join(known) or '(no rules)'}"
        )
    return [known[name] for name in names]


def run_alerts(
    client: Elasticsearch,
    config: ProjectConfig,
    *,
    now: datetime | None = None,
    rules: Sequence[str] | None = None,
    dry_run: bool = False,
    sleep: Sleeper = time.sleep,
) -> AlertRun:
    """Evaluate the rules, post new alerts, suppress repeats, and save the state.

    With ``dry_run`` nothing is posted or recorded: the result lists what
    would be sent (in ``sent``) and what would be suppressed. Without
    webhooks, alerts to send are returned in ``printed`` (the caller prints
    them) and recorded like a delivery.
    """
    with _shared_state(config, exclusive=not dry_run) as state:
        return _run(client, config, state, now=now, rules=rules, dry_run=dry_run, sleep=sleep)


def _run(
    client: Elasticsearch,
    config: ProjectConfig,
    state: AlertState,
    *,
    now: datetime | None,
    rules: Sequence[str] | None,
    dry_run: bool,
    sleep: Sleeper,
) -> AlertRun:
    """One evaluation: find spikes, suppress repeats, deliver, record (see :func:`run_alerts`)."""
    settings = config.alerts
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    destinations = {_destination_id(hook): hook for hook in settings.webhooks}
    targets = set(destinations) if destinations else {PRINTED}
    run = AlertRun()
    found = evaluate(client, config, now=moment, rules=rules)
    rule_cooldowns = {
        rule.name: parse_duration(rule.cooldown or settings.cooldown) for rule in settings.rules
    }
    for alert in sorted(found, key=lambda a: (a.start, a.rule, a.brand)):
        done = state.delivered_to(alert.key)
        missing = targets - done
        if not missing:
            run.suppressed.append((alert, "already sent"))
            continue
        if not done:
            quiet = state.quiet_until(alert, rule_cooldowns[alert.rule])
            if quiet is not None and moment < quiet:
                run.suppressed.append((alert, f"cooldown until {quiet.isoformat()}"))
                continue
        run.sent.append(alert)
        if dry_run:
            continue
        delivered: list[str] = []
        if PRINTED in missing:
            run.printed.append(alert)
            delivered.append(PRINTED)
        for target in sorted(missing - {PRINTED}):
            hook = destinations[target]
            payload = alert.slack() if hook.format == "slack" else alert.record()
            delivery = post_json(
                hook,
                payload,
                alert=alert.key,
                retries=settings.retries,
                backoff=settings.backoff,
                timeout=settings.timeout,
                sleep=sleep,
            )
            run.deliveries.append(delivery)
            if delivery.ok:
                delivered.append(target)
            else:
                log.warning(
                    "alert %s: webhook %s failed after %d attempt(s): %s",
                    alert.key,
                    hook.label,
                    delivery.attempts,
                    delivery.error,
                )
        if delivered:
            state.record(alert, delivered, moment)
    if not dry_run:
        state.save(moment)
    return run
