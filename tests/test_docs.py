"""Meta-tests: every hook is documented in docs/plugins.md and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from listener.sdk import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, value in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("listener_")
)


def test_there_are_hooks() -> None:
    assert HOOKS == ["listener_prepare_nlp", "listener_register_sources"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_contract_docstring(hook: str) -> None:
    docstring = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(docstring.split()) >= 20, f"{hook}: the docstring is the contract; write it"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = re.search(rf"^### {hook}\n(.*?)(?=^## |^### |\Z)", docs, re.S | re.M)
    assert section, f"docs/plugins.md has no '### {hook}' section"
    body = section.group(1)
    for part in ("**When**", "**Receives**", "**Returns**", "```python"):
        assert part in body, f"the {hook} section lacks {part}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook: str) -> None:
    tests = [
        path
        for path in (ROOT / "tests").glob("test_*.py")
        if path.name != "test_docs.py" and hook in path.read_text(encoding="utf-8")
    ]
    assert tests, f"no test mentions {hook}"
