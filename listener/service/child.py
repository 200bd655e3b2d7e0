"""A child process of ``listener run`` / ``listener worker``: one crawl of one entry, or a command.

Scrapy's reactor cannot be restarted, so every crawl runs in a fresh process::

    python -m listener.service.child crawl CONFIG LABEL RESULT.json
    python -m listener.service.child cli serve -c CONFIG --port 8080

The child dies with its parent (``PR_SET_PDEATHSIG`` on Linux): a worker
killed with SIGKILL leaves no orphan crawl behind that could run alongside
the worker that takes its job over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from listener.service import lifetime

#: The parent's pid, so a child started after its parent died exits at once.
PARENT_ENV = "LISTENER_SERVICE_PARENT"
LOG_LEVEL_ENV = "LISTENER_LOG_LEVEL"

EXIT_SPOOLED = 3


@dataclass
class CrawlResult:
    """What a child crawl reports back to the scheduler or worker."""

    label: str
    outcome: str  # ok, degraded, broken, spooled, failed, interrupted
    found: int = 0
    indexed: int = 0
    spooled: int = 0
    errors: int = 0
    elapsed: float = 0.0
    finish_reason: str | None = None
    error: str | None = None

    def line(self) -> str:
        """One line for the schedule and the logs."""
        if self.error:
            return f"{self.outcome}: {self.error}"
        return (
            f"{self.outcome}: {self.found} found, {self.indexed} indexed, {self.spooled} spooled, "
            f"{self.errors} errors in {self.elapsed:.1f} s"
        )


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the worker or scheduler that started it dies."""
    expected = os.environ.get(PARENT_ENV)
    lifetime.die_with_parent(int(expected) if expected else None)


def spawn(arguments: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m listener.service.child ARGUMENTS`` in its own process group.

    Its own group: a Ctrl-C in the terminal reaches only the parent, which
    then stops its children once, gracefully (a second signal would make
    Scrapy stop without finishing the batch in flight).
    """
    environment = {**os.environ, **(env or {}), PARENT_ENV: str(os.getpid())}
    return subprocess.Popen(
        [sys.executable, "-m", "listener.service.child", *arguments],
        env=environment,
        start_new_session=True,
    )


class RunningCrawl:
    """A child crawl of one entry, seen from its parent (scheduler or worker)."""

    def __init__(
        self, config: Path, label: str, scratch: Path, env: dict[str, str] | None = None
    ) -> None:
        import time
        import uuid

        scratch.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.result_path = scratch / f"result-{uuid.uuid4().hex}.json"
        self.started = time.monotonic()
        self.stop_sent = False
        self.process = spawn(["crawl", str(config), label, str(self.result_path)], env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.process.poll()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; whether it has ended."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """Ask the crawl to stop gracefully (once): finish or spool the batch, save checkpoints."""
        if not self.stop_sent and self.process.poll() is None:
            self.stop_sent = True
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop the crawl at once (its checkpoint is not saved: the next crawl redoes it)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()

    def result(self) -> CrawlResult:
        """What the crawl reported; ``interrupted`` when it was stopped before it finished."""
        result = read_result(self.result_path, self.label, self.process.poll())
        with contextlib.suppress(OSError):
            self.result_path.unlink()
        if self.stop_sent and result.finish_reason != "finished":
            result.outcome = "interrupted"
        return result


def crawl_entry(config: str, label: str, result_path: str) -> int:
    """Crawl one ``[[sources]]`` entry of the project; write a :class:`CrawlResult`."""
    from listener.config import load_project
    from listener.crawl.runner import run_crawl
    from listener.errors import ConfigError, ListenerError

    result = CrawlResult(label=label, outcome="failed")
    code = 1
    try:
        project = load_project(config)
        entries = [entry for entry in project.sources if entry.label == label]
        if not entries:
            known = ", ".join(entry.label for entry in project.sources) or "none"
            raise ConfigError(
                f"{config}: no [[sources]] entry is called {label!r} (known: {known})"
            )
        summary = run_crawl(
            project.model_copy(update={"sources": entries}),
            log_level=os.environ.get(LOG_LEVEL_ENV, "WARNING"),
        )
        source = summary.sources.get(label)
        health = source.health if source is not None else "healthy"
        outcome = "spooled" if summary.spooled else health
        result = CrawlResult(
            label=label,
            outcome=outcome,
            found=summary.found,
            indexed=summary.indexed,
            spooled=summary.spooled,
            errors=summary.errors,
            elapsed=round(summary.elapsed, 3),
            finish_reason=summary.finish_reason,
            error=source.last_error if source is not None and health == "broken" else None,
        )
        code = EXIT_SPOOLED if summary.spooled else (1 if health == "broken" else 0)
    except ListenerError as error:
        result.error = str(error)
    except Exception as error:  # a plugin bug must end this crawl only, with its reason
        logging.getLogger(__name__).exception("crawl of %s failed", label)
        result.error = f"{type(error).__name__}: {error}"
    Path(result_path).write_text(json.dumps(asdict(result)), encoding="utf-8")
    return code


def read_result(path: Path, label: str, returncode: int | None) -> CrawlResult:
    """The result a child wrote, or a failure naming its exit code when it wrote none."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return CrawlResult(**data)
    except (OSError, ValueError, TypeError):
        how = (
            f"killed by signal {-returncode}"
            if returncode is not None and returncode < 0
            else f"exit {returncode}"
        )
        return CrawlResult(label=label, outcome="failed", error=f"the crawl process ended ({how})")


def main(arguments: list[str]) -> int:
    die_with_parent()
    from listener.service.startup import leave_out_unused_imports

    leave_out_unused_imports()
    level = os.environ.get(LOG_LEVEL_ENV, "WARNING")
    if arguments[:1] == ["crawl"] and len(arguments) == 4:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(level)
        handler.setFormatter(
            logging.Formatter(f"%(levelname)s [{arguments[2]}] %(name)s: %(message)s")
        )
        logging.root.addHandler(handler)
        logging.root.setLevel(level)
        return crawl_entry(*arguments[1:])
    if arguments[:1] == ["cli"]:
        from listener.cli import main as cli

        cli.main(args=arguments[1:], prog_name="listener")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
