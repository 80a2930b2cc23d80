"""The map of the house: which package may import which, and what production
services may depend on. Imports point one way: devkit → services → directory → shared."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "moderation", "routing", "channels", "review")
#: The services that serve HTTP themselves, and so depend on a web server.
WEB_SERVICES = ("ingest", "review")
PACKAGES = {
    "shared": ROOT / "shared" / "src" / "buurtalert" / "shared",
    "directory": ROOT / "directory" / "src" / "buurtalert" / "directory",
    "devkit": ROOT / "devkit" / "src" / "buurtalert" / "devkit",
    **{s: ROOT / "services" / s / "src" / "buurtalert" / s for s in SERVICES},
}
#: What each package may import from buurtalert, besides itself.
ALLOWED = {
    "shared": set(),
    "directory": {"shared"},
    **{s: {"shared", "directory"} for s in SERVICES},
    "devkit": {"shared", "directory", *SERVICES},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(package: str) -> list[Path]:
    return sorted(PACKAGES[package].rglob("*.py"))


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_point_one_way(package: str) -> None:
    """A package imports only the packages below it: shared nothing of ours, the
    directory only shared, a service shared and the directory (never another service),
    the development kit anything."""
    wrong = []
    for path in sources(package):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "buurtalert" or len(parts) < 2 or parts[1] == package:
                continue
            if parts[1] not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_code_imports_faststream_internals() -> None:
    """FastStream's private modules may change in any release: we use its public API only."""
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in PACKAGES
        for path in sources(package)
        for module in imported_modules(path)
        if module.startswith("faststream._internal")
    ]
    assert not wrong, "\n".join(wrong)


def dependencies(pyproject: Path) -> set[str]:
    declared = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for d in declared}


@pytest.mark.parametrize("service", SERVICES)
def test_production_services_do_not_depend_on_the_development_kit(service: str) -> None:
    """A service's distribution never pulls in the development kit; only ingest and the
    review console, which serve HTTP routes of their own, depend on Starlette (and ingest
    on the SMTP server). Every service serves /health, /ready and /metrics through
    FastStream's ASGI app, so shared brings uvicorn to run it, and nothing more."""
    deps = dependencies(ROOT / "services" / service / "pyproject.toml")
    assert "buurtalert-devkit" not in deps
    if service not in WEB_SERVICES:
        assert not deps & {"starlette", "python-multipart", "aiosmtpd"}, deps
    shared = dependencies(ROOT / "shared" / "pyproject.toml")
    assert not shared & {"starlette", "python-multipart", "aiosmtpd", "buurtalert-devkit"}, shared
