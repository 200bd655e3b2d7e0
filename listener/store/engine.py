"""Where mentions are stored: a configured Elasticsearch cluster or the embedded engine.

Without ``elasticsearch.url`` in the project file, listener starts the
``noida-db`` binary (an Elasticsearch-compatible local engine, see ENGINE.md)
on a free loopback port, with its data under ``<home>/engine``.

Several listener commands may run at once on one project (a crawl and the
dashboard, say). They share one engine per data directory:

* a lock file (``listener-engine.lock``) serialises start-up and shut-down, so
  two commands starting together never launch two engines;
* a state file (``listener-engine.json``) records the pid and port of the
  running engine; a command that finds a live, answering engine reuses it;
* every command using the engine holds a shared lock on
  ``listener-engine.users`` while it does. Whoever leaves last (and can take
  that lock exclusively) stops the engine; a command never stops an engine
  another command is still using. So the command that launched the engine
  leaves it running if others still use it, and the last of those stops it.

The engine writes its data to disk shortly after writes and on a graceful
shutdown (SIGTERM or SIGINT, both measured with noida-db 0.2.3); listener stops
it with SIGTERM and waits, and only kills it if it does not exit in time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    TransportError,
)

from listener.config import ElasticsearchConfig, ProjectConfig
from listener.errors import EngineError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STATE_FILE = "listener-engine.json"
LOCK_FILE = "listener-engine.lock"
USERS_FILE = "listener-engine.users"
LOG_FILE = "engine.log"

_HOST = "127.0.0.1"
_LOCK_TIMEOUT = 120.0
_STOP_TIMEOUT = 30.0
_PORT_ATTEMPTS = 3

_live_engines: weakref.WeakSet[EmbeddedEngine] = weakref.WeakSet()
# Engines this process launched but left running for other users, kept so the
# process object is not collected while the engine runs (and can be reaped).
_left_running: dict[int, subprocess.Popen[bytes]] = {}


def find_binary() -> Path:
    """Locate the ``noida-db`` binary: inside the installed package, else on ``PATH``."""
    name = "noida-db.exe" if os.name == "nt" else "noida-db"
    try:
        packaged = Path(str(files("noida_db").joinpath(name)))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and packaged.is_file():
        if not os.access(packaged, os.X_OK):
            # Wheels do not always keep the executable bit (noida-db's own wrapper does this too).
            with contextlib.suppress(OSError):
                packaged.chmod(0o755)
        return packaged
    found = shutil.which("noida-db")
    if found:
        return Path(found)
    raise EngineError(
        "the embedded engine is not installed (no noida-db binary in the noida_db package or "
        "on PATH); run `pip install noida-db==0.2.3`, or set elasticsearch.url in the project "
        "file to use an Elasticsearch cluster"
    )


def free_port(host: str = _HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Loopback checks must not go through an HTTP proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an Elasticsearch-style ``GET /`` on ``url`` answers."""
    try:
        with _direct.open(url + "/", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and "version" in body


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a running (not zombie) process; reaps it if it is our dead child."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_engine_process(pid: int) -> bool:
    """Whether ``pid`` looks like a noida-db process (guards against recycled pids)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS): trust the state file and the port check
    try:
        return b"noida-db" in cmdline.read_bytes()
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 8) -> str:
    """The last meaningful lines the latest run wrote to the log (no harmless GLIBC notice)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    latest = text.rsplit("--- listener:", 1)[-1].split("\n", 1)[-1]
    kept = [line for line in latest.splitlines() if line.strip() and "GLIBC_" not in line]
    return "\n".join(kept[-lines:])


class _FileLock:
    """An advisory ``flock`` on a file, taken with a bounded wait."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, *, shared: bool = False, timeout: float | None = _LOCK_TIMEOUT) -> bool:
        """Take the lock; ``timeout=0`` tries once. Returns whether it was taken."""
        if fcntl is None:  # pragma: no cover - Windows: no sharing protection
            self._handle = self.path.open("ab")
            return True
        handle = self.path.open("ab")
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(handle.fileno(), mode)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    handle.close()
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            self._handle = handle
            return True

    def release(self) -> None:
        """Drop the lock (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class EmbeddedEngine:
    """The local Elasticsearch-compatible engine (noida-db) for one data directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with EmbeddedEngine(Path(".listener/engine")) as engine:
            client = Elasticsearch(engine.url)

    If another command already runs an engine for the same directory, it is
    reused (:attr:`owned` is then ``False``). :meth:`stop` shuts the engine down
    only when no other command uses it any more (see the module docstring).
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, startup_timeout: float = 60
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.startup_timeout = startup_timeout
        self.owned = False
        self._url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._user_lock = _FileLock(self.data_dir / USERS_FILE)
        self._guard = threading.Lock()

    # -- public API --------------------------------------------------------

    @property
    def url(self) -> str:
        """The engine's base URL, e.g. ``http://127.0.0.1:40123``."""
        if self._url is None:
            raise EngineError(f"the embedded engine for {self.data_dir} is not started")
        return self._url

    @property
    def running(self) -> bool:
        """Whether this object currently holds a started (own or shared) engine."""
        return self._url is not None

    @property
    def log_path(self) -> Path:
        """The engine's log file (stdout and stderr of the noida-db process)."""
        return self.data_dir / LOG_FILE

    @property
    def state_path(self) -> Path:
        """The file recording which process serves this data directory."""
        return self.data_dir / STATE_FILE

    def start(self) -> EmbeddedEngine:
        """Reuse the engine already serving the data directory, or launch one and wait for it."""
        with self._guard:
            if self._url is not None:
                return self
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise EngineError(
                    f"cannot create the engine data directory {self.data_dir}: {error.strerror}"
                ) from None
            startup = _FileLock(self.data_dir / LOCK_FILE)
            if not startup.acquire(timeout=max(_LOCK_TIMEOUT, self.startup_timeout)):
                raise EngineError(
                    f"another listener command holds {startup.path} and has not released it; "
                    "wait for it to finish, or remove the file if no listener command is running"
                )
            try:
                reused = self._reuse()
                if reused is None:
                    self._launch()
                    self.owned = True
                else:
                    self._url, self._pid = reused
                    self.owned = False
                    log.info("reusing the embedded engine at %s (pid %s)", self._url, self._pid)
                self._user_lock.acquire(shared=True)
            finally:
                startup.release()
            _live_engines.add(self)
            return self

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Leave the engine; shut it down gracefully if no other command still uses it."""
        with self._guard:
            if self._url is None:
                return
            startup = _FileLock(self.data_dir / LOCK_FILE)
            locked = startup.acquire(timeout=_LOCK_TIMEOUT)
            try:
                self._user_lock.release()
                last = _FileLock(self.data_dir / USERS_FILE)
                if locked and last.acquire(timeout=0):
                    try:
                        self._shutdown(timeout)
                    finally:
                        last.release()
                elif self.owned:
                    if self._process is not None:
                        _left_running[self._process.pid] = self._process
                    log.info(
                        "leaving the embedded engine at %s running: another listener command "
                        "still uses it and will stop it when it finishes",
                        self._url,
                    )
            finally:
                if locked:
                    startup.release()
                self._url = None
                self._pid = None
                self._process = None
                _live_engines.discard(self)

    def __enter__(self) -> EmbeddedEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._url or "stopped"
        return f"EmbeddedEngine({str(self.data_dir)!r}, {where}, owned={self.owned})"

    # -- internals ---------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            return None
        if not isinstance(state.get("port"), int):
            return None
        return state

    def _reuse(self) -> tuple[str, int] | None:
        """The (url, pid) of a live engine recorded in the state file, if any."""
        state = self._read_state()
        if state is None:
            return None
        pid, port = state["pid"], state["port"]
        url = f"http://{_HOST}:{port}"
        if not _pid_alive(pid) or not _is_engine_process(pid):
            log.debug(
                "state file %s names a dead engine (pid %s); starting anew", self.state_path, pid
            )
            self.state_path.unlink(missing_ok=True)
            return None
        # A live engine gets a short grace period: it may be busy writing its data.
        deadline = time.monotonic() + 5.0
        while True:
            if _answers(url):
                return url, pid
            if not _pid_alive(pid):
                self.state_path.unlink(missing_ok=True)
                return None
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"the embedded engine for {self.data_dir} (pid {pid}) is running but does "
                    f"not answer on {url}; stop it (kill {pid}) and retry. Its log: {self.log_path}"
                )
            time.sleep(0.1)

    def _launch(self) -> None:
        binary = find_binary()
        attempts = 1 if self.port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.port or free_port()
            process = self._spawn(binary, port)
            url = f"http://{_HOST}:{port}"
            try:
                self._wait_ready(process, url)
            except _PortTaken:
                if attempt == attempts:
                    raise EngineError(
                        f"the embedded engine could not bind port {port} on {_HOST} "
                        f"(already in use); {'choose another port' if self.port else 'retry'}. "
                        f"Its log: {self.log_path}"
                    ) from None
                continue
            self._process, self._pid, self._url = process, process.pid, url
            self._write_state(port)
            log.info(
                "started the embedded engine at %s (pid %s, data in %s)",
                url,
                process.pid,
                self.data_dir,
            )
            return

    def _spawn(self, binary: Path, port: int) -> subprocess.Popen[bytes]:
        command = [
            str(binary),
            "start",
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            str(port),
            "--host",
            _HOST,
            "--data-dir",
            str(self.data_dir),
        ]
        with self.log_path.open("ab") as logfile:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            logfile.write(f"--- listener: starting the engine on port {port} at {stamp}\n".encode())
            logfile.flush()
            try:
                # Own session: Ctrl-C in the terminal of the command that launched the engine
                # must not stop an engine that other commands may share.
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as error:
                raise EngineError(
                    f"cannot run the embedded engine {binary}: {error.strerror}; reinstall "
                    "noida-db or set elasticsearch.url in the project file"
                ) from None

    def _wait_ready(self, process: subprocess.Popen[bytes], url: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        while True:
            code = process.poll()
            if code is not None:
                tail = _log_tail(self.log_path)
                if "is already in use" in tail and not self.port:
                    raise _PortTaken
                raise EngineError(
                    f"the embedded engine exited with code {code} while starting; see its log "
                    f"{self.log_path}" + (f":\n{tail}" if tail else "")
                )
            if _answers(url, timeout=min(1.0, max(0.1, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                self._terminate(process, 5.0)
                raise EngineError(
                    f"the embedded engine did not answer on {url} within "
                    f"{self.startup_timeout:g} s; see its log {self.log_path}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _write_state(self, port: int) -> None:
        assert self._process is not None
        state = {
            "pid": self._process.pid,
            "port": port,
            "url": self._url,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "launched_by": os.getpid(),
        }
        temporary = self.state_path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.state_path)

    def _shutdown(self, timeout: float) -> None:
        """Stop the engine process (ours or one left by another command) and forget it."""
        process = self._process or _left_running.pop(self._pid or -1, None)
        if process is not None:
            self._terminate(process, timeout)
        elif self._pid is not None and _pid_alive(self._pid) and _is_engine_process(self._pid):
            self._terminate_pid(self._pid, timeout)
        self.state_path.unlink(missing_ok=True)
        log.info("stopped the embedded engine for %s", self.data_dir)

    def _terminate(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        if process.poll() is not None:
            return
        # SIGTERM makes noida-db write its data and exit (SIGINT does too; SIGKILL loses writes).
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "the embedded engine (pid %s) did not stop within %g s; killing it, "
                "recent writes may be lost",
                process.pid,
                timeout,
            )
            process.kill()
            process.wait(5)

    def _terminate_pid(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                log.warning("the embedded engine (pid %s) did not stop in time; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)


class _PortTaken(Exception):
    """The engine exited because its port was taken between choosing and binding it."""


@atexit.register
def _stop_live_engines() -> None:
    """Leave every engine this process still holds, so data is written and nothing is orphaned."""
    for engine in list(_live_engines):
        with contextlib.suppress(Exception):
            engine.stop()


# -- clients -----------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` without user name or password, safe for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _scrub(text: str, settings: ElasticsearchConfig) -> str:
    """Remove any secret that a library may have echoed into an error message."""
    for secret in (settings.api_key, settings.password, urlsplit(settings.url or "").password):
        if secret:
            text = text.replace(secret, "***")
    return text


def build_client(settings: ElasticsearchConfig, url: str | None = None) -> Elasticsearch:
    """An Elasticsearch client for ``url`` (default: the configured one) with auth and TLS."""
    target = url or settings.url
    if not target:
        raise EngineError("no Elasticsearch URL to connect to")
    options: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "verify_certs": settings.verify_certs,
        "retry_on_timeout": True,
    }
    if settings.api_key:
        options["api_key"] = settings.api_key
    if settings.username and settings.password:
        options["basic_auth"] = (settings.username, settings.password)
    if settings.ca_certs:
        options["ca_certs"] = str(settings.ca_certs)
    if not settings.verify_certs:
        options["ssl_show_warn"] = False
    try:
        return Elasticsearch(target, **options)
    except (ValueError, TypeError) as error:
        raise EngineError(
            f"cannot use Elasticsearch URL {redact_url(target)}: {_scrub(str(error), settings)}"
        ) from None


def url_setting(settings: ElasticsearchConfig, source: Path | None) -> str:
    """Where the cluster URL was set, for hints: the environment variable or the file's key."""
    if settings.url_origin != "elasticsearch.url":
        return settings.url_origin
    return f"elasticsearch.url in {source}" if source else "elasticsearch.url in the project file"


def check_reachable(
    client: Elasticsearch,
    settings: ElasticsearchConfig,
    where: str,
    source: Path | None = None,
    *,
    allow_unreachable: bool = False,
) -> None:
    """Raise :class:`EngineError` unless the cluster answers ``GET /`` with our credentials.

    ``allow_unreachable``: a cluster that cannot be reached passes (a crawl spools
    its batches until it is back), but one that rejects the credentials does not:
    spooling would not help, the next run would be rejected too.
    """
    shown = redact_url(where)
    setting = url_setting(settings, source)
    project_file = str(source) if source else "the project file"
    try:
        # A crawl that may spool asks once: the transport's retries only delay the crawl.
        info = (client.options(max_retries=0) if allow_unreachable else client).info()
    except AuthenticationException:
        raise EngineError(
            f"Elasticsearch at {shown} rejected the credentials (HTTP 401); check "
            f"elasticsearch.api_key or username/password in {project_file} (and the environment "
            "variables they name)"
        ) from None
    except AuthorizationException:
        return  # reachable and authenticated, just not allowed GET /: good enough
    except ApiError as error:
        raise EngineError(
            f"Elasticsearch at {shown} answered HTTP {error.status_code} to GET /: "
            f"{_scrub(str(error.message), settings)}; check that {setting} points at "
            "Elasticsearch"
        ) from None
    except TransportError as error:
        if allow_unreachable:
            log.info("Elasticsearch at %s is unreachable: %s", shown, error)
            return
        reason = _scrub(str(error.message or type(error).__name__), settings)
        raise EngineError(
            f"cannot reach Elasticsearch at {shown} ({reason}); check that the cluster is "
            f"running and that {setting} is right, or unset it to use the embedded local engine"
        ) from None
    major = str(info.get("version", {}).get("number", "")).split(".")[0]
    if major and major not in ("8", "9"):
        log.warning(
            "Elasticsearch at %s reports version %s; listener supports 8.x and 9.x", shown, major
        )


@contextlib.contextmanager
def connect(config: ProjectConfig, *, verify: bool = True) -> Iterator[Elasticsearch]:
    """An Elasticsearch client for the project: the configured cluster or the embedded engine.

    With ``elasticsearch.url`` set, the cluster is checked with ``GET /`` first
    (with ``verify=False`` a cluster that is down passes, e.g. for a crawl that
    should spool its batches, but one that rejects the credentials still fails).
    Without it, the embedded engine is started (or reused) with its data in
    ``<home>/engine`` and stopped on exit if no other listener command uses it.
    """
    settings = config.elasticsearch
    if settings.url:
        client = build_client(settings)
        try:
            check_reachable(
                client, settings, settings.url, config.path, allow_unreachable=not verify
            )
            yield client
        finally:
            client.close()
        return
    with EmbeddedEngine(config.home / "engine") as engine:
        client = build_client(settings, engine.url)
        try:
            yield client
        finally:
            client.close()
