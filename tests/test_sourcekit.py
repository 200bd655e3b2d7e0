"""listener.sourcekit: the one documented behaviour of what sources share, and its use."""

from __future__ import annotations

import ast
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import lxml.html
import pytest

from listener.config import BrandConfig
from listener.errors import ConfigError
from listener.mention import Mention, SourceKind
from listener.source import Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    canonical_url,
    clean_text,
    error_page_title,
    from_timestamp,
    guarded,
    guarded_object,
    http_url,
    one_line,
    parse_date,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
    to_float,
    to_int,
)

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        (-3, -3),
        (7.0, 7),
        ("7", 7),
        (" 7 ", 7),
        ("7.0", 7),  # mastodon used to refuse this
        ("-3", -3),
        ("1e3", 1000),
        (12345678901234567890, 12345678901234567890),
        ("12345678901234567890", 12345678901234567890),
        (2.5, None),  # never rounded (discourse used to round, reddit refused)
        ("2.5", None),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ("seven", None),
        ("1,234", None),
        ("57 upvotes", None),
        (float("nan"), None),
        (float("inf"), None),
        ("Infinity", None),
        ("1e999999999", None),
        ([7], None),
        ({"count": 7}, None),
    ],
)
def test_to_int_reads_whole_numbers_only(value: object, expected: int | None) -> None:
    assert to_int(value) == expected


def test_to_count_refuses_negative_numbers() -> None:
    assert [to_count(v) for v in (0, "12", 3.0, -1, "-1", 2.5)] == [0, 12, 3, None, None, None]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4, 4.0),
        (4.5, 4.5),
        ("4.5", 4.5),
        (" 3 ", 3.0),
        ("4,5", None),
        ("4.5 stars", None),
        (True, None),
        (float("nan"), None),
        ("inf", None),
        ("1e999", None),
        (None, None),
    ],
)
def test_to_float(value: object, expected: float | None) -> None:
    assert to_float(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02T10:00:00Z", datetime(2026, 11, 2, 10, tzinfo=UTC)),
        ("2026-11-02T12:00:00+02:00", datetime(2026, 11, 2, 10, tzinfo=UTC)),
        ("2026-11-02T10:00:00", datetime(2026, 11, 2, 10, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
        (" 2026-11-02T10:00:00.250Z ", datetime(2026, 11, 2, 10, 0, 0, 250000, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 10:00:00 GMT", datetime(2026, 11, 2, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_iso_and_rfc822(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-45",
        "2026-02-30",
        "2026-13-45T10:00:00Z",
        "2026-00-10",
        "Mon, 45 Mar 2026 10:00:00 GMT",
        "yesterday",
        "",
        "   ",
        None,
        1700000000,
    ],
)
def test_parse_time_rejects_what_is_no_timestamp(text: object) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-45",
        "2026-02-30",
        "2026-13",
        "2026-13-45T10:00:00Z",
        "31/02/2026",
        "March 45, 2026",
        "45 March 2026",
        "13/13/2026",
        "no date here",
    ],
)
def test_parse_date_rejects_impossible_dates_instead_of_rolling_them_over(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected", "has_time"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC), False),
        ("2024-03", datetime(2024, 3, 1, tzinfo=UTC), False),
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("March 5, 2024", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("5 March 2024 10:30", datetime(2024, 3, 5, 10, 30, tzinfo=UTC), True),
        ("2024-03-05T10:00:00+02:00", datetime(2024, 3, 5, 8, tzinfo=UTC), True),
        # e-mail date parsing read the hour of a 12-hour clock as is (10:00)
        ("Mar 5, 2024 10:00 PM", datetime(2024, 3, 5, 22, tzinfo=UTC), True),
        ("March 5, 2024 at 9:15 a.m.", datetime(2024, 3, 5, 9, 15, tzinfo=UTC), True),
        # dotted dates are day first (dateutil read 05.03.2024 as 3 May)
        ("05.03.2024", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("05.03.2024 14:30", datetime(2024, 3, 5, 14, 30, tzinfo=UTC), True),
        # month names of other languages were no date at all
        ("5. März 2024", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("5 mars 2024", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("5 de marzo de 2024", datetime(2024, 3, 5, tzinfo=UTC), False),
        ("5 dicembre 2024", datetime(2024, 12, 5, tzinfo=UTC), False),
        # ISO 8601 basic format carries its time (it was read as a day without one)
        ("20161206T171700Z", datetime(2016, 12, 6, 17, 17, tzinfo=UTC), True),
        ("20161206T1817+0100", datetime(2016, 12, 6, 17, 17, tzinfo=UTC), True),
        ("20161206", datetime(2016, 12, 6, tzinfo=UTC), False),
    ],
)
def test_parse_date_reads_written_dates(text: str, expected: datetime, has_time: bool) -> None:
    assert parse_date(text) == (expected, has_time)


def test_from_timestamp() -> None:
    moment = datetime(2026, 11, 2, 10, tzinfo=UTC)
    seconds = int(moment.timestamp())
    assert from_timestamp(seconds) == moment
    assert from_timestamp(str(seconds)) == moment
    assert from_timestamp(float(seconds)) == moment
    assert from_timestamp(True) is None
    assert from_timestamp("soon") is None
    assert from_timestamp(10**20) is None


def test_search_terms_drop_marks_and_case_duplicates() -> None:
    brands = [
        BrandConfig(name="Acme", keywords=["Acme", "#acme", "@acme", "acme  rockets"]),
        BrandConfig(name="Other", keywords=["ACME", "other"]),
    ]
    assert search_terms(brands) == {
        "Acme": ["Acme", "Other"],
        "acme rockets": ["Acme"],
        "other": ["Other"],
    }


def test_secret_from_env_names_source_option_and_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTENER_TEST_SECRET", "  s3cret ")
    monkeypatch.setenv("LISTENER_TEST_BLANK", "  ")
    assert secret_from_env("shoutbox", "token_env", "LISTENER_TEST_SECRET") == "s3cret"
    assert secret_from_env("shoutbox", "token_env", None) is None
    with pytest.raises(ConfigError) as raised:
        secret_from_env("shoutbox", "token_env", "LISTENER_TEST_BLANK", hint="ask the admin")
    message = str(raised.value)
    for part in ("shoutbox", "token_env", "LISTENER_TEST_BLANK", "export", "ask the admin"):
        assert part in message


def test_urls_and_text() -> None:
    assert http_url("/a?b=1", "https://Example.com/x/") == "https://Example.com/a?b=1"
    assert http_url(" https://example.com/ ") == "https://example.com/"
    for refused in ("mailto:a@b.c", "javascript:void(0)", "_:b0", "", None, "/relative", 3):
        assert http_url(refused) is None
    # Malformed URLs from API data are refused, never raised (Mention.create would raise).
    for malformed in ("https://[::1/a", "https://x.example:99999/a", "https://x.example:ab/"):
        assert http_url(malformed) is None
    assert http_url("https://user@x.example:8443/p") == "https://user@x.example:8443/p"
    assert canonical_url("HTTPS://Example.com:443/p?utm_source=x&id=1#r-1") == (
        "https://example.com/p?id=1"
    )
    assert canonical_url("https://example.com/p#r-1", keep_fragment=True) == (
        "https://example.com/p#r-1"
    )
    assert one_line("  Fish &amp;\n chips ") == "Fish & chips"
    assert one_line("   ") is None
    assert clean_text("<p>One</p><p>Two &amp; three</p>") == "One\n\nTwo & three"
    assert clean_text("a  b\n\n\n\nc &lt;3") == "a b\n\nc <3"


def test_keep_fragment_gives_the_fragment_its_own_id() -> None:
    when = datetime(2026, 11, 2, tzinfo=UTC)
    made = [
        Mention.create(
            source="reviews",
            source_kind=SourceKind.REVIEW,
            url=f"https://shop.example/p#{anchor}",
            canonical_url=canonical_url(f"https://shop.example/p#{anchor}", keep_fragment=True),
            text="x",
            published_at=when,
            keep_fragment=True,
        )
        for anchor in ("review-1", "review-2")
    ]
    assert made[0].canonical_url == "https://shop.example/p#review-1"
    assert made[0].id != made[1].id


class _Options(SourceOptions):
    endpoint: str = "https://example.com"


class _GenericSource(Source[_Options]):
    name = "generic"
    kind = SourceKind.SOCIAL
    api_version = 1


def test_source_is_generic_over_its_options() -> None:
    assert _GenericSource.Options is _Options
    source = _GenericSource(_Options(plugin="generic"), [])
    assert source.options.endpoint == "https://example.com"
    with pytest.raises(TypeError, match="generic source needs _Options, got SourceOptions"):
        _GenericSource(SourceOptions(plugin="generic"), [])  # type: ignore[arg-type]


def test_a_generic_intermediate_class_passes_its_options_on() -> None:
    OptionsT = TypeVar("OptionsT", bound=SourceOptions)

    class _Paged(Source[OptionsT]):
        kind = SourceKind.FORUM
        api_version = 1

    class _Special(_Options):
        depth: int = 2

    class _Forum(_Paged[_Special]):
        name = "forum"

    class _Subclass(_Forum):  # inherits its parent's options model
        name = "subclass"

    assert _Paged.Options is SourceOptions
    assert _Forum.Options is _Special
    assert _Subclass.Options is _Special
    assert _Subclass(_Special(plugin="subclass"), []).options.depth == 2


def test_options_must_agree_with_the_generic_parameter() -> None:
    with pytest.raises(TypeError, match="is not the _Options named in Source"):

        class _Wrong(Source[_Options]):
            name = "wrong"
            kind = SourceKind.SOCIAL
            api_version = 1
            Options = SourceOptions


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("path", sorted(PLUGINS.glob("[!_]*.py")), ids=lambda p: p.stem)
def test_builtin_uses_the_kit_not_another_plugin(path: Path) -> None:
    modules = _imports(path)
    others = {m for m in modules if m.startswith((".", "listener.plugins"))}
    assert not others, f"{path.name} imports another plugin: {sorted(others)}"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    copied = defined & {"_int", "_time", "_secret", "_credential", "search_terms"}
    assert not copied, f"{path.name} defines its own {sorted(copied)}: use listener.sourcekit"
    assert "isinstance(options" not in source and "self.settings" not in source
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    generic = [
        c
        for c in classes
        if any(isinstance(b, ast.Subscript) and ast.unparse(b.value) == "Source" for b in c.bases)
    ]
    assert generic, f"{path.name}: its source must subclass Source[ItsOptions]"


def test_guarded_turns_an_item_that_raises_into_a_reason() -> None:
    def title_of(item: dict[str, Any]) -> str:
        return str(item["title"]).upper()

    assert guarded(title_of, {"title": "ok"}) == "OK"
    assert guarded(title_of, {}) == "unreadable (KeyError: 'title')"
    assert guarded(title_of, item=None).startswith("unreadable (TypeError: ")
    long = guarded(int, "x" * 500)
    assert long.startswith("unreadable (ValueError: invalid literal") and len(long) < 160

    def interrupted(item: object) -> str:
        raise KeyboardInterrupt  # not an item's fault: never swallowed

    with pytest.raises(KeyboardInterrupt):
        guarded(interrupted, {})


def test_guarded_object_skips_an_item_that_is_no_object_and_guards_the_rest() -> None:
    def title_of(item: dict[str, Any], suffix: str = "") -> str:
        return str(item["title"]).upper() + suffix

    assert guarded_object(title_of, {"title": "ok"}, suffix="!") == "OK!"
    assert guarded_object(title_of, {}) == "unreadable (KeyError: 'title')"
    for item in (None, "a string", 7, ["a", "list"]):
        assert guarded_object(title_of, item) == "not an object"


def test_skip_report_counts_names_and_logs_one_line_a_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.skips")
    counted: Counter[str] = Counter({"without a date": 1})
    quiet = SkipReport("posts")
    quiet.log(log, "acme", "https://x.test/p", 3, into=counted)
    assert not quiet and counted == {"without a date": 1} and not caplog.records

    skips = SkipReport("posts")
    for number in range(7):
        skips.skip("without a date", f"id {number}")
    skips.skip("not an object")
    assert skips.total() == 8 and not skips.only("without a date")
    with caplog.at_level(logging.INFO):
        skips.log(log, "acme", "https://x.test/p", 9, into=counted)
    assert counted == {"without a date": 8, "not an object": 1}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "acme: skipped 8 of 9 posts of https://x.test/p (1 not an object, "
        "7 without a date (id 0, id 1, id 2, id 3, id 4 and 2 more))"
    )

    caplog.clear()
    usual = SkipReport("posts")
    usual.skip("a service message", "acme/3")
    assert usual.only("a service message", "without text")
    with caplog.at_level(logging.INFO):
        usual.log(log, "acme", "https://x.test/s", level=logging.INFO)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "acme: skipped 1 posts of https://x.test/s (1 a service message (acme/3))"
    )


@pytest.mark.parametrize(
    ("title", "error"),
    [
        ("404 Not Found", True),
        ("Page not found | Acme Daily", True),
        ("Error 404 - Page Not Found", True),
        ("Oops! Page not found", True),
        ("Attention Required! | Cloudflare", True),
        ("Just a moment...", True),
        ("503 Service Unavailable", True),
        # headlines that merely contain the words
        ("FaceTime eye contact bug not found in iOS 13 beta", False),
        ("500 jobs cut at Acme plant", False),
        ("Forbidden City reopens after five months", False),
        ("Just a moment with Acme's CEO", False),
    ],
)
def test_error_page_titles_must_be_status_like(title: str, error: bool) -> None:
    tree = lxml.html.fromstring(f"<html><head><title>{title}</title></head><body></body></html>")
    assert (error_page_title(tree) == title) is error
