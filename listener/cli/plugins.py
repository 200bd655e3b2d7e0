"""``listener plugins``: list the sources, scaffold a new plugin, check one against the contract."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import click

from listener.cli.options import table_or_json_option
from listener.cli.output import emit, err, fail, print_json, reports_errors


@click.group()
def plugins() -> None:
    """Source plugins: list them, scaffold a new one, check one against the contract."""


def _describe_field(name: str, info: Any) -> str:
    from listener.sdk.contract import describe_field_type

    annotation = describe_field_type(info.annotation, info.metadata)
    if info.is_required():
        return f"{name}: {annotation} (required)"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, Enum):
        default = default.value
    return f"{name}: {annotation} = {default!r}"


@plugins.command("list")
@table_or_json_option
@reports_errors
def plugins_list(output_format: str) -> None:
    """Every source, built-in and third-party: version, package, options and hooks."""
    from importlib.metadata import PackageNotFoundError, version

    from listener.sdk.plugin_manager import get_registry

    registry = get_registry()
    rows: list[dict[str, Any]] = []
    for name, cls in sorted(registry.sources.items()):
        package = registry.packages.get(name, "?")
        try:
            package_version = version(package)
        except (PackageNotFoundError, ValueError):
            package_version = "?"
        own_options = {
            key: info
            for key, info in cls.Options.model_fields.items()
            if key not in ("plugin", "name")
        }
        rows.append(
            {
                "source": name,
                "kind": str(cls.kind),
                "package": package,
                "version": package_version,
                "module": cls.__module__,
                "api_version": cls.api_version,
                "options": [_describe_field(k, v) for k, v in own_options.items()],
                "hooks": registry.hooks_of(registry.plugin_of.get(name, "")),
            }
        )
    problems = [{"plugin": p.plugin, "reason": p.reason} for p in registry.problems]
    if output_format == "json":
        print_json({"sources": rows, "skipped": problems}, ensure_ascii=True)
        return
    table_rows = [
        {
            **row,
            "options": "\n".join(row["options"]),
            "hooks": "\n".join(row["hooks"]),
        }
        for row in rows
    ]
    emit(
        table_rows,
        ["source", "kind", "package", "version", "options", "hooks"],
        "table",
        title="Sources",
    )
    for problem in problems:
        err.print(f"skipped plugin {problem['plugin']}: {problem['reason']}", markup=False)


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the listener-NAME folder.",
)
@reports_errors
def plugins_new(name: str, directory: Path) -> None:
    """Scaffold an installable source plugin package with recorded responses and tests."""
    from listener.sdk.scaffold import scaffold

    root = scaffold(name, directory)
    click.echo(f"created {root}")
    click.echo(f"next:  pip install -e '{root}[test]'")
    click.echo(f"       listener plugins check {name}")
    click.echo(f"       (cd {root} && pytest)")


@plugins.command("check")
@click.argument("name")
@click.option(
    "--fixtures",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A recorded site (folder with routes.json) to replay; default: the plugin's own.",
)
@reports_errors
def plugins_check(name: str, fixtures: Path | None) -> None:
    """Run a source plugin's contract checks (options, requests, parsing recorded responses)."""
    from listener.sdk.contract import check_plugin

    checks = check_plugin(name, fixtures)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"{mark} {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        fail(f"{len(failed)} of {len(checks)} contract checks failed for source {name!r}")
    click.echo(f"all {len(checks)} contract checks passed for source {name!r}")
