"""The embedded engine: start-up, persistence, sharing between commands, and ``connect``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from listener.config import ProjectConfig, parse_project
from listener.errors import EngineError
from listener.store.engine import (
    STATE_FILE,
    EmbeddedEngine,
    connect,
    find_binary,
    free_port,
    redact_url,
)

pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def _needs_binary() -> None:
    try:
        find_binary()
    except EngineError as error:
        pytest.skip(str(error))


_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _up(url: str) -> bool:
    try:
        with _direct.open(url + "/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _config(tmp_path: Path, **elasticsearch: Any) -> ProjectConfig:
    data = {"elasticsearch": elasticsearch, "brands": [{"name": "Acme"}]}
    return parse_project(data, tmp_path / "listener.toml")


def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    with EmbeddedEngine(tmp_path / "data") as engine:
        assert engine.owned
        client = Elasticsearch(engine.url)
        for number in range(3):
            client.index(index="kept", id=str(number), document={"n": number})
        client.indices.refresh(index="kept")
        client.close()
        url = engine.url
    # Stopped right after writing: the graceful shutdown wrote the data.
    assert not _up(url)
    assert (tmp_path / "data" / "elasticsearch.json").is_file()
    with EmbeddedEngine(tmp_path / "data") as engine:
        client = Elasticsearch(engine.url)
        assert client.count(index="kept")["count"] == 3
        assert client.get(index="kept", id="2")["_source"] == {"n": 2}
        client.close()


def test_a_second_engine_on_the_same_directory_reuses_the_first(tmp_path: Path) -> None:
    first = EmbeddedEngine(tmp_path).start()
    second = EmbeddedEngine(tmp_path).start()
    url = first.url
    try:
        assert second.url == first.url
        assert first.owned and not second.owned
        state = json.loads((tmp_path / STATE_FILE).read_text())
        assert state["url"] == first.url
        second.stop()
        assert _up(first.url), "a reusing command must not stop the engine"
    finally:
        second.stop()
        first.stop()
    assert not _up(url)
    assert not (tmp_path / STATE_FILE).exists()


def test_the_launching_command_leaves_the_engine_to_the_last_user(tmp_path: Path) -> None:
    owner = EmbeddedEngine(tmp_path).start()
    user = EmbeddedEngine(tmp_path).start()
    url = owner.url
    owner.stop()
    assert _up(url), "still in use by the second command"
    user.stop()
    assert not _up(url)


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from listener.store.engine import EmbeddedEngine

    engine = EmbeddedEngine(Path(sys.argv[1])).start()
    print(json.dumps({"url": engine.url, "owned": engine.owned}), flush=True)
    sys.stdin.readline()
    engine.stop()
    """
)


def test_two_commands_starting_at_once_share_one_engine(tmp_path: Path) -> None:
    commands = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        reports = [json.loads(command.stdout.readline()) for command in commands]  # type: ignore[union-attr]
        assert reports[0]["url"] == reports[1]["url"]
        assert sorted(report["owned"] for report in reports) == [False, True]
    finally:
        for command in commands:
            command.communicate("\n", timeout=60)
    assert [command.returncode for command in commands] == [0, 0]
    assert not _up(reports[0]["url"])


def test_a_stale_state_file_is_ignored(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead_pid = finished.pid
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": dead_pid, "port": free_port()}))
    with EmbeddedEngine(tmp_path) as engine:
        assert engine.owned
        assert _up(engine.url)
        assert json.loads((tmp_path / STATE_FILE).read_text())["url"] == engine.url


def test_a_failed_start_names_the_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        engine = EmbeddedEngine(tmp_path, port=port, startup_timeout=30)
        with pytest.raises(EngineError) as failure:
            engine.start()
    message = str(failure.value)
    assert str(tmp_path / "engine.log") in message
    assert "in use" in message
    assert not engine.running


def test_connect_without_url_runs_the_embedded_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    config = _config(tmp_path)
    with connect(config) as client:
        assert client.info()["version"]["number"].startswith("8.")
        state = json.loads((tmp_path / "home" / "engine" / STATE_FILE).read_text())
        url = state["url"]
        assert _up(url)
    assert not _up(url)


def test_connect_to_a_configured_cluster(engine: Any, tmp_path: Path) -> None:
    config = _config(tmp_path, url=engine.url, api_key="not-checked-by-the-engine")
    with connect(config) as client:
        assert client.info()["tagline"]


def test_unreachable_cluster_is_reported_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    with_password = _config(
        tmp_path, url=f"http://127.0.0.1:{port}", username="elastic", password="s3cret-pw"
    )
    with pytest.raises(EngineError) as failure, connect(with_password):
        pass
    message = str(failure.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message
    assert "embedded" in message

    in_url = _config(tmp_path, url=f"http://elastic:s3cret-url@127.0.0.1:{port}")
    with pytest.raises(EngineError) as failure, connect(in_url):
        pass
    assert "s3cret-url" not in str(failure.value)
    assert f"127.0.0.1:{port}" in str(failure.value)


def test_connect_without_verification_defers_errors(tmp_path: Path) -> None:
    config = _config(tmp_path, url=f"http://127.0.0.1:{free_port()}")
    with connect(config, verify=False) as client:
        assert isinstance(client, Elasticsearch)


def test_redact_url() -> None:
    assert redact_url("https://u:p@es.example.com:9243/x") == "https://es.example.com:9243/x"
    assert redact_url("http://localhost:9200") == "http://localhost:9200"
