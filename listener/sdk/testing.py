"""Test kit for sources: replay recorded responses through the real Scrapy engine.

Also a pytest plugin (registered under the ``pytest11`` entry point), so a
plugin's tests can use the fixtures below without importing anything::

    def test_my_source(replay_crawl):
        result = replay_crawl(
            "mysource",
            {"base_url": "{base_url}"},
            [Route("/api/search", body=recorded_json)],
        )
        assert [m.author.handle for m in result.mentions] == ["alice", "bob"]

Each crawl runs in a new process, because Twisted's reactor cannot be
restarted inside one process: a fork of a helper process that imported Scrapy,
listener and the built-in plugins once (``LISTENER_REPLAY_SUBPROCESS=1``: a
fresh interpreter per crawl). Heavy imports stay inside functions: pytest
loads this module in every session.

For unit tests of ``Source.parse`` without a crawl, :func:`make_source` builds
a source as a crawl would, :func:`respond` makes the Response the spider would
hand it, and :func:`split` separates what it yielded::

    source = make_source(MySource, brands=[{"name": "Acme"}], base_url=BASE)
    mentions, requests = split(source.parse(respond(f"{BASE}/search", recorded_json)))
"""

from __future__ import annotations

import contextlib
import json
import os
import pkgutil
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable

    from listener.config import BrandConfig
    from listener.mention import Mention
    from listener.sdk.replay import RecordedRequest, ReplayServer, Route
    from listener.sdk.source import Request, Response, Source

DEFAULT_BRANDS: tuple[dict[str, Any], ...] = ({"name": "Acme", "keywords": ["acme"]},)

SourceT = TypeVar("SourceT", bound="Source")


def make_source(
    cls: type[SourceT],
    *,
    brands: Sequence[BrandConfig | Mapping[str, Any]] = (),
    **options: Any,
) -> SourceT:
    """An instance of source ``cls`` as a crawl creates it for one ``[[sources]]`` entry.

    ``options`` are the entry's options, validated by ``cls.Options`` (``plugin``
    defaults to the source's name); ``brands`` are the project's brands, each a
    ``BrandConfig`` or a mapping of its ``[[brands]]`` keys, as ``replay_crawl``
    takes them (``{"name": "Acme", "keywords": ["acme"]}``).
    """
    from listener.config import BrandConfig

    project_brands: list[BrandConfig] = []
    for brand in brands:
        if isinstance(brand, Mapping):
            brand = BrandConfig(**brand)
        if not isinstance(brand, BrandConfig):
            raise TypeError(
                f"make_source(brands=...): {brand!r} is not a brand; pass mappings of the "
                '[[brands]] keys, e.g. brands=[{"name": "Acme", "keywords": ["acme"]}]'
            )
        project_brands.append(brand)
    settings = {"plugin": cls.name, **options}
    return cls(cls.Options(**settings), project_brands)


def respond(
    request: Request | str,
    body: bytes | str = b"",
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Response:
    """The Response the spider would hand to ``Source.parse`` for ``request``.

    ``request`` is a Request the source yielded (its URL and ``meta`` are kept;
    ``meta`` here adds to them) or a URL (then ``meta`` is the request's meta).
    A text ``body`` is encoded as UTF-8; ``content_type`` sets that header.
    """
    from listener.sdk.source import Request, Response

    if isinstance(request, str):
        request = Request(url=request, meta=dict(meta or {}))
    elif meta:
        request = Request(
            url=request.url,
            method=request.method,
            headers=dict(request.headers),
            body=request.body,
            meta={**request.meta, **meta},
            priority=request.priority,
        )
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if content_type is not None:
        all_headers["content-type"] = content_type
    payload = body.encode("utf-8") if isinstance(body, str) else body
    return Response(
        url=request.url, status=status, headers=all_headers, body=payload, request=request
    )


def split(results: Iterable[Any]) -> tuple[list[Mention], list[Request]]:
    """Separate what a source yielded into Mentions and follow-up Requests, in order.

    Anything else fails the test (a source yields only these two).
    """
    from listener.mention import Mention
    from listener.sdk.source import Request

    items = list(results)
    mentions = [item for item in items if isinstance(item, Mention)]
    requests = [item for item in items if isinstance(item, Request)]
    others = [item for item in items if not isinstance(item, (Mention, Request))]
    assert not others, f"a source yields Mentions and Requests only, not {others[:3]!r}"
    return mentions, requests


@dataclass
class ReplayResult:
    """What a replayed crawl produced."""

    mentions: list[Mention]
    labels: list[str]
    summary: dict[str, Any]
    requests: list[RecordedRequest] = field(default_factory=list)
    log: str = ""
    returncode: int = 0

    @property
    def source(self) -> dict[str, Any]:
        """The summary of the (single) source that was crawled."""
        sources = self.summary.get("sources", {})
        if len(sources) != 1:
            raise AssertionError(f"expected one source in the summary, got {sorted(sources)}")
        return next(iter(sources.values()))


def _substitute(value: Any, base_url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base_url}", base_url)
    if isinstance(value, list):
        return [_substitute(v, base_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, base_url) for k, v in value.items()}
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(f"cannot write {value!r} to a project file")


def write_project(
    path: Path,
    sources: Sequence[Mapping[str, Any]],
    brands: Sequence[Mapping[str, Any]] = DEFAULT_BRANDS,
    crawl: Mapping[str, Any] | None = None,
    *,
    delays: bool = True,
) -> Path:
    """Write a project file with these sources and brands (for tests).

    AutoThrottle is off and retries are few unless ``crawl`` says otherwise.
    With ``delays=False`` nothing waits between requests: the project's
    ``download_delay`` is 0 and so is every source entry's, which overrides the
    delay the source declares (an entry or ``crawl`` that sets
    ``download_delay`` itself keeps its value).
    """
    crawl_settings = {
        "autothrottle": False,
        "retry_times": 1,
        "max_retry_after": 5,
        **({} if delays else {"download_delay": 0}),
        **(crawl or {}),
    }
    if not delays:
        sources = [{"download_delay": 0, **source} for source in sources]
    lines = ["[crawl]"] + [f"{k} = {_toml_value(v)}" for k, v in crawl_settings.items()]
    for brand in brands:
        lines += ["", "[[brands]]"] + [
            f"{k} = {_toml_value(v)}" for k, v in brand.items() if v is not None
        ]
    for source in sources:
        lines += ["", "[[sources]]"] + [
            f"{k} = {_toml_value(v)}" for k, v in source.items() if v is not None
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _routes(
    routes: Sequence[Route] | Path | str, load_site: Callable[[Path], list[Route]]
) -> list[Route]:
    """The routes to serve: a folder (a Path or a path string) with routes.json, or Routes."""
    from listener.sdk.replay import Route

    if isinstance(routes, str | os.PathLike):
        return load_site(Path(routes))
    routes_list = list(routes)
    for number, route in enumerate(routes_list, 1):
        if not isinstance(route, Route):
            raise TypeError(
                f"replay_crawl: route {number} is {route!r}, not a Route; pass a list of "
                "listener.testing.Route or the folder holding routes.json"
            )
    return routes_list


def replay_crawl(
    plugin: str,
    options: Mapping[str, Any],
    routes: Sequence[Route] | Path | str,
    *,
    brands: Sequence[Mapping[str, Any]] = DEFAULT_BRANDS,
    home: Path | None = None,
    since: datetime | None = None,
    crawl: Mapping[str, Any] | None = None,
    timeout: float = 300,
    server: ReplayServer | None = None,
    delays: bool = False,
) -> ReplayResult:
    """Serve ``routes`` locally, crawl them with source ``plugin``, return the Mentions it yielded.

    ``options`` are the source's project-file options; ``{base_url}`` in any
    string is replaced by the replay server's address. ``home`` keeps state
    (checkpoints) between calls, to test incremental crawling. The Mentions are
    as the source produced them: not deduplicated, enriched or indexed. Pass a
    running ``server`` to crawl it (its routes) instead of starting one.

    The local server needs no politeness, so by default the crawl does not wait
    between requests: the source's declared ``download_delay`` is overridden
    with 0 (see :func:`write_project`). ``delays=True`` crawls with the delays
    a production crawl uses, to test them.
    """
    from listener.mention import Mention
    from listener.sdk.replay import ReplayServer, load_site

    with tempfile.TemporaryDirectory(prefix="listener-replay-") as scratch:
        folder = Path(scratch)
        state = home or folder / "home"
        routes_list = _routes(routes, load_site)
        context = (
            contextlib.nullcontext(server) if server is not None else ReplayServer(routes_list)
        )
        with context as server:
            source = {"plugin": plugin, **_substitute(dict(options), server.url)}
            project = write_project(
                folder / "listener.toml", [source], brands, crawl, delays=delays
            )
            output = folder / "mentions.ndjson"
            summary_path = folder / "summary.json"
            arguments = [str(project), str(output), str(summary_path)]
            if since is not None:
                arguments.append(since.isoformat())
            env = {**os.environ, "LISTENER_HOME": str(state)}
            returncode, log = _run_worker(arguments, env, timeout, folder / "crawl.log")
            requests = server.requests
        if returncode != 0 and not summary_path.exists():
            raise AssertionError(f"the replayed crawl failed (exit {returncode}):\n{log[-4000:]}")
        records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        return ReplayResult(
            mentions=[Mention.model_validate(record["mention"]) for record in records],
            labels=[record["source_label"] for record in records],
            summary=json.loads(summary_path.read_text(encoding="utf-8")),
            requests=requests,
            log=log,
            returncode=returncode,
        )


#: What the crawl process imports before it is forked once per replayed crawl. Nothing here
#: may import ``twisted.internet.reactor``: Scrapy installs its own in each crawl.
_PRELOAD = (
    "listener.sdk.testing",
    "listener.config",
    "listener.crawl.runner",
    "listener.crawl.settings",
    "listener.crawl.pipelines",
    "listener.crawl.progress",
    "listener.sdk.plugin_manager",
    "listener.spiders.mentions",
    "scrapy.crawler",
)


class _Zygote:
    """A process that imported the crawl machinery once and forks a child per replayed crawl.

    A Twisted reactor cannot be restarted in a process, so every crawl needs a new one;
    starting Python and importing Scrapy, listener and the plugins costs about a second
    of CPU per crawl, which forking a process that imported them once does not. The
    zygote is single-threaded (safe to fork) and serves one crawl at a time; it exits
    when its caller closes the pipe. ``LISTENER_REPLAY_SUBPROCESS=1`` starts a fresh
    interpreter per crawl instead.
    """

    _instance: _Zygote | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from listener.sdk.testing import _zygote_main; _zygote_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @classmethod
    def run(cls, arguments: list[str], env: dict[str, str], timeout: float, log_path: Path) -> int:
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance._run(arguments, env, timeout, log_path)

    def _run(
        self, arguments: list[str], env: dict[str, str], timeout: float, log_path: Path
    ) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {
            "arguments": arguments,
            "env": env,
            "log": str(log_path),
            "cwd": os.getcwd(),
            "path": sys.path,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        started = self.process.stdout.readline()
        if not started:
            raise AssertionError(
                "the replay process (listener.sdk.testing zygote) exited; see stderr"
            )
        pid = json.loads(started)["pid"]
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.process.stdout.readline()
            raise subprocess.TimeoutExpired(["listener.sdk.testing", *arguments], timeout)
        return int(json.loads(self.process.stdout.readline())["exit"])


def _zygote_main() -> None:
    """The zygote's loop: import once, then fork one child per request line on stdin."""
    import importlib

    import listener.plugins as builtin_plugins

    for name in (
        *_PRELOAD,
        *(f"listener.plugins.{m.name}" for m in pkgutil.iter_modules(builtin_plugins.__path__)),
    ):
        importlib.import_module(name)
    assert "twisted.internet.reactor" not in sys.modules, "a preloaded module installed a reactor"
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _forked_worker(request)
            finally:
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


def _forked_worker(request: dict[str, Any]) -> int:
    """Child side of the zygote: the caller's environment, path and folder; stderr to a file."""
    import logging
    import traceback

    env: dict[str, str] = request["env"]
    os.environ.clear()
    os.environ.update(env)
    # PYTHONPATH is read when an interpreter starts; a forked one adds it by hand.
    extra = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [*extra, *(entry for entry in request["path"] if entry not in extra)]
    os.chdir(request["cwd"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)
    try:
        return _worker(request["arguments"])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()


def _run_worker(
    arguments: list[str], env: dict[str, str], timeout: float, log_path: Path
) -> tuple[int, str]:
    """Run :func:`_worker` in a new process; its exit code and what it wrote to stderr."""
    if os.environ.get("LISTENER_REPLAY_SUBPROCESS") == "1" or not hasattr(os, "fork"):
        command = [sys.executable, "-m", "listener.sdk.testing", *arguments]
        process = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        return process.returncode, process.stderr
    returncode = _Zygote.run(arguments, env, timeout, log_path)
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    return returncode, log


def _worker(arguments: list[str]) -> int:
    """Subprocess side of :func:`replay_crawl`: crawl, collect, write the summary."""
    import logging

    from listener.config import load_project
    from listener.crawl.runner import run_crawl

    project_path, output, summary_path, *rest = arguments
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.root.addHandler(handler)
    since = datetime.fromisoformat(rest[0]) if rest else None
    project = load_project(project_path)
    summary = run_crawl(project, since=since, collect_to=Path(output))
    payload = {
        "found": summary.found,
        "errors": summary.errors,
        "dropped": summary.dropped,
        "sources": {
            label: {
                "health": s.health,
                "pages": s.pages,
                "mentions": s.mentions,
                "parse_errors": s.parse_errors,
                "fetch_errors": s.fetch_errors,
                "statuses": s.statuses,
                "paused": s.paused,
                "last_error": s.last_error,
            }
            for label, s in summary.sources.items()
        },
    }
    Path(summary_path).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


try:  # the fixtures need pytest; the rest of the kit (replay_crawl) does not
    import pytest
except ImportError:  # pragma: no cover - pytest is in the [test] extra
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(name="replay_crawl")
    def replay_crawl_fixture() -> Callable[..., ReplayResult]:
        """The :func:`replay_crawl` function, as a fixture."""
        return replay_crawl

    @pytest.fixture(name="listener_engine", scope="session")
    def listener_engine_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        """A throwaway embedded engine for the test session (``.url`` is its address)."""
        from listener.store.engine import EmbeddedEngine

        with EmbeddedEngine(tmp_path_factory.mktemp("listener-engine")) as engine:
            yield engine


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
