"""The project file: valid files load, invalid ones fail naming file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from listener.config import load_project
from listener.errors import ConfigError
from listener.sdk.plugin_manager import instantiate_sources, reset_registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "listener.toml"
    path.write_text(text, encoding="utf-8")
    return path


VALID = """
[[brands]]
name = "Acme"
keywords = ["acme", "#acme", "acme corp"]
exclude = ["acme anvil"]
owned_domains = ["www.Acme.com"]

[[brands]]
name = "Globex"

[[sources]]
plugin = "rss"
feeds = ["https://example.com/feed.xml"]

[[sources]]
plugin = "hackernews"
"""


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    project = load_project(write(tmp_path, VALID))
    assert [b.name for b in project.brands] == ["Acme", "Globex"]
    assert project.brands[0].owned_domains == ["acme.com"]
    assert project.brands[1].terms == ["Globex"]
    assert project.elasticsearch.url is None
    assert project.home == (tmp_path / ".listener").resolve()
    assert [s.plugin for s in project.sources] == ["rss", "hackernews"]


def test_listener_home_overrides_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "state"))
    assert load_project(write(tmp_path, VALID)).home == (tmp_path / "state").resolve()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: project file not found"):
        load_project(tmp_path / "nope.toml")


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[[brands]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"listener\.toml: not valid TOML"):
        load_project(path)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "\n[crawl]\nconcurrency = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    assert str(path) in str(caught.value)
    assert "crawl.concurrency: unknown key" in str(caught.value)


def test_bad_value_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "\n[crawl]\nconcurrent_requests = 0\n")
    with pytest.raises(ConfigError, match=r"crawl\.concurrent_requests: .*\(got 0\)"):
        load_project(path)


def test_brand_entry_is_named_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, '[[brands]]\nname = "Acme"\nkeywords = ["  "]\n')
    with pytest.raises(ConfigError, match=r"brands\[0\] \(Acme\)\.keywords"):
        load_project(path)


def test_no_brands_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="brands"):
        load_project(write(tmp_path, '[[sources]]\nplugin = "rss"\nfeeds = []\n'))


def test_duplicate_brand_is_an_error(tmp_path: Path) -> None:
    text = '[[brands]]\nname = "Acme"\n[[brands]]\nname = "acme"\n'
    with pytest.raises(ConfigError, match="listed twice"):
        load_project(write(tmp_path, text))


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_API_KEY", "s3cret")
    text = (
        '[elasticsearch]\nurl = "https://es.example.com:9200"\napi_key = "${ES_API_KEY}"\n' + VALID
    )
    project = load_project(write(tmp_path, text))
    assert project.elasticsearch.api_key == "s3cret"
    assert "s3cret" not in repr(project)


def test_missing_secret_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ES_API_KEY", raising=False)
    text = '[elasticsearch]\nurl = "https://es"\napi_key = "${ES_API_KEY}"\n' + VALID
    with pytest.raises(ConfigError, match=r"elasticsearch\.api_key refers to \$\{ES_API_KEY\}"):
        load_project(write(tmp_path, text))


def test_es_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTENER_ES_URL", "http://127.0.0.1:9")
    assert load_project(write(tmp_path, VALID)).elasticsearch.url == "http://127.0.0.1:9"


def test_unknown_plugin_names_the_entry(tmp_path: Path) -> None:
    reset_registry()
    path = write(tmp_path, VALID + '\n[[sources]]\nplugin = "myspace"\n')
    project = load_project(path)
    with pytest.raises(ConfigError) as caught:
        instantiate_sources(project)
    message = str(caught.value)
    assert "sources[2] (myspace)" in message
    assert "unknown source plugin 'myspace'" in message
    assert "hackernews" in message and "rss" in message


def test_plugin_options_are_validated_by_the_plugin(tmp_path: Path) -> None:
    reset_registry()
    text = VALID.replace(
        'feeds = ["https://example.com/feed.xml"]', 'feeds = ["not a url"]\nfeedz = 1'
    )
    project = load_project(write(tmp_path, text))
    with pytest.raises(ConfigError) as caught:
        instantiate_sources(project)
    message = str(caught.value)
    assert "sources[0] (rss)" in message
    assert "feedz: unknown option for this plugin" in message
    assert "not a url" in message
