"""Layering, checked on the source: the protocol core imports no I/O, and the layers
above it (connection, session, admission, registry) import no ``websockets``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import csms_kit.protocol

FORBIDDEN = {"asyncio", "websockets", "socket", "threading", "selectors"}
PACKAGE_ROOT = Path(csms_kit.protocol.__file__).resolve().parent.parent  # .../csms_kit
SOURCE_ROOT = PACKAGE_ROOT.parent  # .../src


def module_path(name: str) -> Path | None:
    """The file of csms_kit module ``name``, or None if it is not one."""
    if name != "csms_kit" and not name.startswith("csms_kit."):
        return None
    base = SOURCE_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, current: str, is_package: bool) -> set[str]:
    """Every module name ``tree`` imports, absolute, including ``from x import submodule``."""
    names: set[str] = set()
    package = current if is_package else current.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            names.add(node.args[0].value)
    return names


def forbidden_in(names: set[str]) -> set[str]:
    return {name for name in names if name.split(".")[0] in FORBIDDEN}


def closure(todo: list[Path]) -> dict[str, set[str]]:
    """Module name -> names it imports, for ``todo`` and every csms_kit module they import."""
    seen: dict[str, set[str]] = {}
    while todo:
        path = todo.pop()
        name = module_name(path)
        if name in seen:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_names(tree, name, path.name == "__init__.py")
        seen[name] = names
        for imported in names:
            target = module_path(imported)
            # The root package __init__ is the public facade (it imports the session
            # layer on purpose); importing csms_kit.x.y does not make it part of the core.
            if target is not None and module_name(target) != "csms_kit":
                todo.append(target)
    return seen


CLOSURE = closure(sorted((PACKAGE_ROOT / "protocol").glob("*.py")))
#: The transport-neutral layers: a new transport (ASGI, a test harness) uses them as they are.
NEUTRAL = ("connection", "session", "admission", "registry", "transport", "instruments")
NEUTRAL_CLOSURE = closure([PACKAGE_ROOT / f"{name}.py" for name in NEUTRAL])


def test_closure_covers_the_core() -> None:
    """The walk finds every protocol module and the csms_kit modules they import."""
    expected = {
        "csms_kit.protocol",
        "csms_kit.protocol.endpoint",
        "csms_kit.protocol.frames",
        "csms_kit.protocol.jsontext",
        "csms_kit.protocol.payloads",
        "csms_kit.protocol.schemas",
        "csms_kit.protocol.validation",
        "csms_kit.protocol.extra_types",
        "csms_kit.error_codes",
        "csms_kit.exceptions",
        "csms_kit.versions",
    }
    assert expected <= set(CLOSURE)


@pytest.mark.parametrize("module", sorted(CLOSURE))
def test_module_imports_no_io(module: str) -> None:
    """No module of the core imports asyncio, websockets, socket, threading or selectors."""
    assert forbidden_in(CLOSURE[module]) == set()


def test_neutral_closure_covers_the_layers() -> None:
    """The walk from the neutral layers reaches the core and the role pieces."""
    expected = {f"csms_kit.{name}" for name in NEUTRAL} | {
        "csms_kit.boot",
        "csms_kit.limits",
        "csms_kit.handlers",
        "csms_kit.protocol.endpoint",
    }
    assert expected <= set(NEUTRAL_CLOSURE)


@pytest.mark.parametrize("module", sorted(NEUTRAL_CLOSURE))
def test_neutral_layers_import_no_websockets(module: str) -> None:
    """Connection, session, admission and registry never import websockets, even indirectly."""
    assert not {n for n in NEUTRAL_CLOSURE[module] if n.split(".")[0] == "websockets"}


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import asyncio.events as ev",
        "from websockets.asyncio.server import serve",
        "import os, socket",
        "from threading import Lock",
        "import selectors",
        "def f():\n    import asyncio\n",
        "import importlib\nimportlib.import_module('websockets')",
        "__import__('socket')",
    ],
)
def test_the_checker_catches_forbidden_imports(source: str) -> None:
    """The import walk itself would notice a forbidden import, wherever it hides."""
    names = imported_names(ast.parse(source), "csms_kit.protocol.fake", is_package=False)
    assert forbidden_in(names)


def test_the_checker_resolves_relative_imports() -> None:
    """Relative imports resolve to csms_kit module names the walk can follow."""
    names = imported_names(
        ast.parse("from . import frames\nfrom ..versions import OcppVersion"),
        "csms_kit.protocol.endpoint",
        is_package=False,
    )
    assert "csms_kit.protocol.frames" in names
    assert "csms_kit.versions" in names
    assert module_path("csms_kit.protocol.frames") is not None
