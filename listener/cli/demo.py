"""``listener demo``: the whole job on a bundled recorded site, offline.

A local HTTP server replays the recorded site (feeds and a Hacker
News-compatible API); a project file pointing at it is written into the demo
folder; the crawl runs through the real Scrapy engine, enrichment and the
embedded engine; the share of voice is printed from what was indexed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from listener.config import load_project
from listener.crawl.runner import run_crawl

PROJECT_TEMPLATE = "listener.toml.in"


def demo_home(home: Path | None) -> Path:
    """The demo folder: ``--home``, else ``$LISTENER_HOME``, else ``./listener-demo``."""
    if home is not None:
        return home.resolve()
    configured = os.environ.get("LISTENER_HOME")
    return Path(configured).resolve() if configured else (Path.cwd() / "listener-demo").resolve()


def write_demo_project(home: Path, base_url: str) -> Path:
    """Write the demo project file, pointing its sources at ``base_url``."""
    template = files("listener.demo_site").joinpath(PROJECT_TEMPLATE).read_text(encoding="utf-8")
    home.mkdir(parents=True, exist_ok=True)
    path = home / "listener.toml"
    path.write_text(template.replace("{base_url}", base_url.rstrip("/")), encoding="utf-8")
    return path


def run_demo(
    home: Path | None,
    *,
    log_level: str,
    console: Console,
    on_sov: Callable[[Any, str | None, str], None],
) -> None:
    """Serve the recorded site, crawl it, and print share of voice."""
    from listener.analytics.measures import share_of_voice
    from listener.sdk.replay import ReplayServer, load_site
    from listener.store.engine import connect

    folder = demo_home(home)
    with (
        as_file(files("listener.demo_site")) as site,
        ReplayServer(load_site(Path(site))) as server,
    ):
        project_path = write_demo_project(folder, server.url)
        project = load_project(project_path)
        console.print(f"demo project: {project_path}", markup=False)
        console.print(f"recorded site served at {server.url}", markup=False)
        summary = run_crawl(project, log_level=log_level)
    for line in summary.lines():
        click.echo(line, err=True)
    with connect(project) as client:
        rows = share_of_voice(client, project, by="mentions")
    on_sov(rows, None, "table")
    print_next_steps(console, project_path)


def print_next_steps(console: Console, project_path: Path) -> None:
    """Commands to try next, one per line and never wrapped, so they copy and paste whole."""
    path = shlex.quote(str(project_path))
    console.print("next:", markup=False)
    for command in (
        f"listener sov -c {path} --since all --interval week",
        f"listener search -c {path} support",
    ):
        console.print(f"  {command}", markup=False, soft_wrap=True)
