"""The fresh-machine install the README documents: CI runs it verbatim, and it is pinned."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The shell commands of the README's quick start, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", quick_start, re.DOTALL)]


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for number, line in enumerate(
        (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1
    ):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        assert separator, f"constraints.txt:{number}: {line!r} is not an exact pin (name==version)"
        pinned[canonicalize_name(name)] = Version(version)
    return pinned


def test_ci_runs_the_readme_quick_start_in_a_fresh_virtual_environment() -> None:
    venv, demo, tests = readme_commands()
    assert venv == "python3 -m venv .venv && . .venv/bin/activate"
    assert demo.startswith("pip install -c constraints.txt ")
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert commands[-2:] == [venv.replace("venv .venv", "venv --clear .venv"), tests]
    install = (ROOT / ".ci" / "install-test-deps").read_text(encoding="utf-8")
    assert "-c constraints.txt" in install


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pinned = pins()
    problems = []
    for text in declared:
        requirement = Requirement(text)
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert not problems, (
        "constraints.txt does not match pyproject.toml ("
        + "; ".join(problems)
        + "): run .ci/update-constraints, or add the exact version you tested"
    )
    assert "listener" not in pinned and "listener-shopreviews" not in pinned
