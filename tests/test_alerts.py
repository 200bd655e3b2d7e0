"""Spike alerts: rules over the latest periods, webhooks on a real local HTTP server, state."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import _delete_prefix
from elasticsearch import Elasticsearch

from listener.analytics.alerts import STATE_FILE, evaluate, run_alerts
from listener.analytics.sample import sample_mentions, sample_project
from listener.analytics.settings import parse_duration
from listener.cli import main
from listener.config import ProjectConfig, parse_project
from listener.errors import ConfigError
from listener.store.indexer import Indexer

SPIKE_EVENING = datetime(2024, 4, 20, 23, 0, tzinfo=UTC)  # the Acme spike day, before midnight
EARLIER_SPIKE = datetime(2024, 4, 14, 23, 0, tzinfo=UTC)  # a smaller Acme spike
RULE = {
    "name": "acme-volume",
    "brands": ["Acme"],
    "metric": "mentions",
    "interval": "day",
    "window": 7,
    "k": 2.0,
    "min_count": 5,
    "lookback": 1,
}


class Hook(ThreadingHTTPServer):
    """A webhook receiver that records JSON posts and can fail a number of times first."""

    daemon_threads = True

    def __init__(self, fail: int = 0, status: int = 500) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.fail = fail
        self.status = status
        self.attempts = 0
        self.posts: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/secret-token"


class _HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.attempts += 1
            failing = self.server.fail > 0
            if failing:
                self.server.fail -= 1
            else:
                self.server.posts.append(json.loads(body))
        self.send_response(self.server.status if failing else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[Callable[..., Hook]]:
    started: list[Hook] = []

    def start(fail: int = 0, status: int = 500) -> Hook:
        server = Hook(fail, status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def indexed(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    data = sample_project(prefix, engine.url)
    project = parse_project(data, tmp_path_factory.mktemp("alerts") / "listener.toml")
    indexer = Indexer(session_client, project)
    indexer.index(sample_mentions())
    indexer.refresh()
    yield data
    _delete_prefix(session_client, prefix)


@pytest.fixture
def make_project(
    indexed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ProjectConfig]:
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))

    def build(*, rules: list[dict[str, Any]] | None = None, **alerts: Any) -> ProjectConfig:
        settings = {"rules": rules or [RULE], "backoff": 0, **alerts}
        return parse_project({**indexed, "alerts": settings}, tmp_path / "listener.toml")

    return build


def test_a_spike_is_posted_once_as_slack_json(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    hook = hooks()
    project = make_project(webhooks=[{"url": hook.url}])
    run = run_alerts(client, project, now=SPIKE_EVENING)
    assert [(a.brand, a.label) for a in run.sent] == [("Acme", "2024-04-20")]
    assert [d.ok for d in run.deliveries] == [True]
    assert len(hook.posts) == 1
    payload = hook.posts[0]
    assert set(payload) == {"text", "blocks"}
    assert payload["text"].startswith("Spike: Acme mentions (day 2024-04-20, UTC)")
    assert "battery recall" in json.dumps(payload["blocks"])
    assert payload["blocks"][0]["type"] == "section"
    state = json.loads((project.home / STATE_FILE).read_text(encoding="utf-8"))
    assert list(state["sent"]) == [run.sent[0].key]
    assert "secret-token" not in json.dumps(state)  # webhook URLs are not stored

    again = run_alerts(client, project, now=SPIKE_EVENING.replace(hour=23, minute=30))
    assert again.sent == [] and [why for _, why in again.suppressed] == ["already sent"]
    assert len(hook.posts) == 1


def test_a_failing_webhook_is_retried_until_it_answers(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    hook = hooks(fail=2, status=503)
    project = make_project(webhooks=[{"url": hook.url, "name": "ops"}], retries=3)
    run = run_alerts(client, project, now=SPIKE_EVENING)
    assert [(d.destination, d.ok, d.attempts) for d in run.deliveries] == [("ops", True, 3)]
    assert hook.attempts == 3 and len(hook.posts) == 1


def test_a_webhook_that_keeps_failing_is_reported_and_retried_next_run(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    broken, working = hooks(fail=100), hooks()
    project = make_project(
        webhooks=[{"url": broken.url, "name": "broken"}, {"url": working.url, "name": "ok"}],
        retries=2,
    )
    run = run_alerts(client, project, now=SPIKE_EVENING)
    outcome = sorted((d.destination, d.ok, d.attempts, d.status) for d in run.deliveries)
    assert outcome == [("broken", False, 3, 500), ("ok", True, 1, 200)]
    assert [d.error for d in run.failed] == ["HTTP 500 Internal Server Error"]
    assert len(working.posts) == 1 and broken.attempts == 3
    broken.fail = 0  # it recovers: the next run delivers to it alone
    later = run_alerts(client, project, now=SPIKE_EVENING.replace(minute=20))
    assert [d.destination for d in later.deliveries] == ["broken"]
    assert len(broken.posts) == 1 and len(working.posts) == 1
    third = run_alerts(client, project, now=SPIKE_EVENING.replace(minute=40))
    assert third.deliveries == [] and len(third.suppressed) == 1


def test_client_errors_are_not_retried_and_unreachable_hooks_do_not_crash(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    gone = hooks(fail=100, status=404)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    project = make_project(
        webhooks=[
            {"url": gone.url, "name": "gone"},
            {"url": f"http://127.0.0.1:{closed_port}/hook", "name": "down"},
        ],
        retries=2,
        timeout=5,
    )
    run = run_alerts(client, project, now=SPIKE_EVENING)
    outcome = {d.destination: (d.ok, d.attempts, d.status) for d in run.deliveries}
    assert outcome == {"gone": (False, 1, 404), "down": (False, 3, None)}
    assert "URLError" in next(d.error or "" for d in run.failed if d.destination == "down")
    assert (
        not (project.home / STATE_FILE).exists()
        or not json.loads((project.home / STATE_FILE).read_text(encoding="utf-8"))["sent"]
    )


def test_cooldown_keeps_a_rule_and_brand_quiet(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    hook = hooks()
    project = make_project(webhooks=[{"url": hook.url}], cooldown="7d")
    first = run_alerts(client, project, now=EARLIER_SPIKE)
    assert [a.label for a in first.sent] == ["2024-04-14"]
    second = run_alerts(client, project, now=SPIKE_EVENING)
    assert second.sent == []
    assert second.suppressed[0][1].startswith("cooldown until 2024-04-21T23:00:00")
    relaxed = make_project(
        rules=[{**RULE, "cooldown": "1h"}], webhooks=[{"url": hook.url}], cooldown="7d"
    )
    third = run_alerts(client, relaxed, now=SPIKE_EVENING)
    assert [a.label for a in third.sent] == ["2024-04-20"]
    assert len(hook.posts) == 2


def test_without_webhooks_alerts_are_printed_once(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig]
) -> None:
    project = make_project()
    dry = run_alerts(client, project, now=SPIKE_EVENING, dry_run=True)
    assert len(dry.sent) == 1 and dry.printed == [] and not (project.home / STATE_FILE).exists()
    run = run_alerts(client, project, now=SPIKE_EVENING)
    assert run.printed == run.sent and len(run.sent) == 1
    assert run_alerts(client, project, now=SPIKE_EVENING).printed == []


def test_rules_pick_brands_metrics_filters_and_periods(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig]
) -> None:
    rules = [
        {**RULE, "name": "negative", "metric": "negative", "brands": [], "min_count": 3},
        {
            **RULE,
            "name": "reddit-hourly",
            "interval": "hour",
            "window": 24,
            "k": 3.0,
            "min_count": 4,
            "sources": ["reddit"],
            "lookback": 12,
            "tz": "Europe/Paris",
        },
        {**RULE, "name": "globex", "brands": ["Globex"]},
    ]
    project = make_project(rules=rules)
    found = evaluate(client, project, now=SPIKE_EVENING)
    by_rule = {(a.rule, a.brand) for a in found}
    assert ("negative", "Acme") in by_rule
    assert ("reddit-hourly", "Acme") in by_rule
    assert not [a for a in found if a.rule == "globex"]
    hourly = [a for a in found if a.rule == "reddit-hourly"]
    assert all(a.label.endswith("+02:00") for a in hourly)
    assert all(a.explanation.sources[0][0] == "reddit" for a in hourly)
    assert evaluate(client, project, now=SPIKE_EVENING, rules=["globex"]) == []
    with pytest.raises(ValueError, match="unknown alert rule"):
        evaluate(client, project, rules=["nope"])
    broken = make_project(rules=[{**RULE, "brands": ["Umbrella"]}])
    with pytest.raises(ConfigError, match="unknown brand"):
        evaluate(client, broken, now=SPIKE_EVENING)


def test_json_webhooks_get_the_alert_record(
    client: Elasticsearch, make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook]
) -> None:
    hook = hooks()
    project = make_project(webhooks=[{"url": hook.url, "format": "json"}])
    run_alerts(client, project, now=SPIKE_EVENING)
    (payload,) = hook.posts
    assert payload["type"] == "listener.spike"
    assert (payload["brand"], payload["period"], payload["rule"]) == (
        "Acme",
        "2024-04-20",
        "acme-volume",
    )
    assert payload["count"] > payload["threshold"]
    assert payload["terms"][0]["term"] == "battery recall"
    assert payload["samples"][0]["url"].startswith("https://")


def test_the_alerts_command_reports_failures_without_crashing(
    make_project: Callable[..., ProjectConfig], hooks: Callable[..., Hook], tmp_path: Path
) -> None:
    broken = hooks(fail=100)
    project = make_project(webhooks=[{"url": broken.url, "name": "team"}], retries=1)
    path = tmp_path / "listener.toml"
    lines = [
        "[elasticsearch]",
        f'url = "{project.elasticsearch.url}"',
        f'index_prefix = "{project.elasticsearch.index_prefix}"',
        "[alerts]",
        "backoff = 0",
        "retries = 1",
        "[[alerts.rules]]",
        *(f"{k} = {json.dumps(v)}" for k, v in RULE.items()),
        "[[alerts.webhooks]]",
        f'url = "{broken.url}"',
        'name = "team"',
        *(f"[[brands]]\nname = {json.dumps(b['name'])}" for b in sample_project()["brands"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["alerts", "-c", str(path), "--at", "2024-04-20T23:00:00Z"])
    assert result.exit_code == 1, result.output
    assert "FAILED: acme-volume|Acme|2024-04-20T00:00:00+00:00 -> team after 2 attempt(s)" in (
        result.stderr
    )
    assert "will be retried on the next run" in result.stderr
    assert "Traceback" not in result.output
    broken.fail = 0
    again = runner.invoke(
        main, ["alerts", "-c", str(path), "--at", "2024-04-20T23:10:00Z", "--format", "json"]
    )
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert [d["ok"] for d in report["deliveries"]] == [True]
    assert len(broken.posts) == 1


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"cooldown": "soon"}, "cannot read the duration"),
        ({"rules": [RULE, RULE]}, "listed twice"),
        ({"webhooks": [{"url": "ftp://example.com/x"}]}, "url"),
        ({"rules": [{**RULE, "window": 1}]}, "window"),
        ({"rules": [{**RULE, "metric": "likes"}]}, "metric"),
    ],
)
def test_alert_settings_are_validated(tmp_path: Path, alerts: dict[str, Any], message: str) -> None:
    data = {**sample_project(), "alerts": alerts}
    with pytest.raises(ConfigError, match=message):
        parse_project(data, tmp_path / "listener.toml")


def test_durations() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("1.5h").total_seconds() == 5400
    assert parse_duration("2w").days == 14
    with pytest.raises(ValueError, match="duration"):
        parse_duration("tomorrow")
