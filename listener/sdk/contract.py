"""``listener plugins check``: the contract checks a source plugin must pass."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import ValidationError

from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Mention
from listener.sdk.plugin_manager import get_registry
from listener.sdk.source import Request, Source, SourceOptions

if TYPE_CHECKING:
    from listener.sdk.replay import RecordedRequest, Route

CHECK_BRANDS = [BrandConfig(name="Acme", keywords=["acme", "#acme"])]
PLACEHOLDER_URL = "http://127.0.0.1:9"


@dataclass
class Check:
    """One contract check and its outcome."""

    name: str
    ok: bool
    detail: str = ""


#: The validator that makes a ``str`` an ``AbsoluteURL`` (shown as ``URL``).
_URL_CHECKS = tuple(get_args(AbsoluteURL)[1:])


def describe_field_type(annotation: Any, metadata: Any = ()) -> str:
    """Like :func:`describe_type`, for a pydantic field (its ``Annotated`` metadata kept apart)."""
    if annotation is str and any(check in _URL_CHECKS for check in metadata):
        return "URL"
    return describe_type(annotation)


def describe_type(annotation: Any) -> str:
    """An options field's type as a user reads it: ``list[URL]``, ``str | None``, ``'a' | 'b'``.

    ``Annotated`` wrappers show as their base type (``AbsoluteURL`` as ``URL``),
    enums and ``Literal`` as their allowed values.
    """
    if annotation is None or annotation is type(None):
        return "None"
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        return describe_field_type(base, metadata)
    if origin is Literal:
        return " | ".join(repr(value) for value in get_args(annotation))
    if origin in (Union, UnionType):
        members = [describe_type(arg) for arg in get_args(annotation) if arg is not type(None)]
        if type(None) in get_args(annotation):
            members.append("None")
        return " | ".join(members)
    if origin is not None:
        arguments = ", ".join(describe_type(arg) for arg in get_args(annotation))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{arguments}]" if arguments else name
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(repr(member.value) for member in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _substitute(value: Any, base_url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base_url}", base_url)
    if isinstance(value, list):
        return [_substitute(v, base_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, base_url) for k, v in value.items()}
    return value


def check_options(cls: type[Source], options: dict[str, Any]) -> tuple[Check, SourceOptions | None]:
    """Options subclass SourceOptions, have a JSON schema, accept the example, reject typos."""
    if not (isinstance(cls.Options, type) and issubclass(cls.Options, SourceOptions)):
        return Check(
            "options model", False, "Options must subclass listener.source.SourceOptions"
        ), None
    try:
        cls.Options.model_json_schema()
        validated = cls.Options.model_validate({"plugin": cls.name, **options})
    except (ValidationError, TypeError, ValueError) as error:
        return Check("options model", False, f"example options do not validate: {error}"), None
    try:
        cls.Options.model_validate({"plugin": cls.name, **options, "no_such_option_xyz": 1})
    except ValidationError:
        pass
    else:
        return Check(
            "options model", False, "unknown options are accepted (use extra='forbid')"
        ), None
    fields = ", ".join(sorted(cls.Options.model_fields))
    return Check("options model", True, f"fields: {fields}"), validated


def check_requests(cls: type[Source], options: SourceOptions) -> Check:
    """start_requests() gives at least one well-formed Request."""
    try:
        source = cls(options, CHECK_BRANDS)
        requests = list(source.start_requests())
    except Exception as error:
        return Check("start requests", False, f"{type(error).__name__}: {error}")
    if not requests:
        return Check("start requests", False, "start_requests() yielded nothing for brand Acme")
    for request in requests:
        if not isinstance(request, Request):
            return Check("start requests", False, f"yielded {type(request).__name__}, not Request")
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return Check("start requests", False, f"URL {request.url!r} is not absolute http(s)")
        if request.method.upper() not in {"GET", "POST", "PUT", "HEAD"}:
            return Check("start requests", False, f"unexpected method {request.method!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in request.headers.items()):
            return Check("start requests", False, "header names and values must be strings")
    replay = urlsplit(PLACEHOLDER_URL).netloc
    elsewhere = [r.url for r in requests if urlsplit(r.url).netloc != replay]
    if elsewhere and not any(urlsplit(r.url).netloc == replay for r in requests):
        return Check(
            "start requests",
            False,
            f"{elsewhere[0]} would be fetched from the network, not from the recorded "
            f"responses: give {cls.__qualname__}.example_options the URL option your requests "
            'are built from as "{base_url}" (e.g. example_options = {"base_url": "{base_url}"})',
        )
    return Check("start requests", True, f"{len(requests)} request(s), first {requests[0].url}")


def check_replay(
    cls: type[Source], options: dict[str, Any], fixtures: Path, crawl: Callable[..., Any]
) -> list[Check]:
    """Replaying the recorded responses twice gives valid, stable Mentions and no parse errors."""
    from listener.sdk.replay import ReplayServer, load_site

    brands = [b.model_dump(exclude_none=True) for b in CHECK_BRANDS]
    # A local replay needs no politeness delay, whatever the source's default.
    options = {**options, "download_delay": 0}
    routes = load_site(fixtures)
    # One server for both runs: ids derived from its address must not change.
    with ReplayServer(routes) as server:
        first = crawl(cls.name, options, fixtures, brands=brands, server=server)
        second = crawl(cls.name, options, fixtures, brands=brands, server=server)
    checks = []
    summary = first.source
    errors = summary["parse_errors"] + summary["fetch_errors"]
    checks.append(
        Check(
            "parse recorded responses",
            errors == 0 and bool(first.mentions),
            f"{len(first.mentions)} mentions from {summary['pages']} responses, "
            f"{summary['parse_errors']} parse errors, {summary['fetch_errors']} fetch errors"
            + (f" — last: {summary['last_error']}" if summary.get("last_error") else "")
            + _unrouted(first.requests, routes, fixtures),
        )
    )
    problems = []
    for mention in first.mentions:
        try:
            Mention.model_validate(mention.model_dump())
        except ValidationError as error:
            problems.append(f"{mention.url}: {error.error_count()} invalid fields")
        if not mention.text.strip():
            problems.append(f"{mention.url}: empty text")
        if mention.source != cls.name:
            problems.append(f"{mention.url}: source is {mention.source!r}, not {cls.name!r}")
    checks.append(
        Check(
            "mentions valid (fields, aware dates, absolute URLs)",
            not problems and bool(first.mentions),
            "; ".join(problems[:5]) or f"{len(first.mentions)} valid",
        )
    )
    ids_first = sorted(m.id for m in first.mentions)
    ids_second = sorted(m.id for m in second.mentions)
    checks.append(
        Check(
            "ids stable across runs",
            bool(ids_first) and ids_first == ids_second,
            "no mentions to compare"
            if not ids_first
            else "same ids"
            if ids_first == ids_second
            else "a second run produced different ids",
        )
    )
    return checks


def _unrouted(requests: list[RecordedRequest], routes: list[Route], fixtures: Path) -> str:
    """What to do about requests no route of the recorded site answered (its 404s)."""
    unrouted = [
        request
        for request in requests
        if request.status == 404
        and request.path != "/robots.txt"
        and not any(route.matches(request.method, request.path, request.query) for route in routes)
    ]
    if not unrouted:
        return ""
    first = unrouted[0]
    return (
        f"; {len(unrouted)} request(s) matched no route of {fixtures / 'routes.json'}, "
        f"first {first.method} {first.target}: add a route with that path and query "
        "(a route's query must be a subset of the request's), or fix the URL the source builds"
    )


def check_plugin(name: str, fixtures: Path | None = None) -> list[Check]:
    """Run every contract check for source ``name``; replay ``fixtures`` when there are some."""

    registry = get_registry()
    cls = registry.source(name)
    module = inspect.getmodule(cls)
    checks = [
        Check(
            "registered",
            True,
            f"{cls.__module__}.{cls.__qualname__} from package {registry.packages.get(name, '?')}, "
            f"contract version {cls.api_version}",
        )
    ]
    fixture_dir = fixtures or cls.fixtures_dir
    base_url = PLACEHOLDER_URL
    with placeholder_secrets(cls.example_options):
        checks.extend(_contract_checks(cls, fixture_dir, base_url, module))
    return checks


@contextlib.contextmanager
def placeholder_secrets(options: dict[str, Any]) -> Iterator[None]:
    """Set the environment variables that ``*_env`` options name, where unset, for the checks.

    Sources read credentials from variables their options name and refuse to
    start without them; the checks only talk to a local replay server, so a
    placeholder value is enough and no real credential is needed.
    """
    added = [
        value
        for key, value in options.items()
        if key.endswith("_env") and isinstance(value, str) and value and value not in os.environ
    ]
    for variable in added:
        os.environ[variable] = "listener-plugins-check-placeholder"
    try:
        yield
    finally:
        for variable in added:
            os.environ.pop(variable, None)


def _contract_checks(
    cls: type[Source], fixture_dir: Path | None, base_url: str, module: Any
) -> list[Check]:
    from listener.sdk.testing import replay_crawl

    checks = []
    options_check, options = check_options(cls, _substitute(dict(cls.example_options), base_url))
    checks.append(options_check)
    if options is not None:
        checks.append(check_requests(cls, options))
        if "fetched from the network" in checks[-1].detail:
            # Replaying would crawl the real site: say so instead.
            checks.append(
                Check("parse recorded responses", False, "not replayed: see start requests")
            )
            return checks
    if fixture_dir is None:
        checks.append(
            Check(
                "parse recorded responses",
                False,
                f"no fixtures: pass --fixtures DIR (a folder with routes.json) or set fixtures_dir "
                f"on {cls.__qualname__} in {module.__file__ if module else cls.__module__}",
            )
        )
    elif not (Path(fixture_dir) / "routes.json").is_file():
        checks.append(
            Check("parse recorded responses", False, f"{fixture_dir}/routes.json not found")
        )
    elif options is not None:
        checks.extend(check_replay(cls, dict(cls.example_options), Path(fixture_dir), replay_crawl))
    return checks
