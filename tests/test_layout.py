"""The package's layout: import cycles between modules (read statically, imports inside
functions included) and module sizes, by ``scripts/layout.py``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _layout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layout", ROOT / "scripts" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle() -> None:
    """No two modules of the package import each other, directly or through others."""
    layout = _layout()
    found = list(layout.cycles(layout.graph(layout.modules(ROOT / "guard"))))
    assert found == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    """A package whose modules import each other, one of them inside a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import x\n")
    (pkg / "c.py").write_text("from . import a\nx = 1\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    layout = _layout()
    assert list(layout.cycles(layout.graph(layout.modules(pkg)))) == [["pkg.a", "pkg.b", "pkg.c"]]
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "layout.py"), "--root", str(pkg)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "cycle: pkg.a <-> pkg.b <-> pkg.c" in out.stdout


def test_a_shell_command_has_one_handler_unless_replaced() -> None:
    """Registering a second handler for a command name fails, unless it says it replaces the
    first (and then there must be one): which handler runs never depends on import order."""
    import pytest

    from guard.shell.core import TABLE, command

    def first(c: object) -> tuple[()]:
        return ()

    def second(c: object) -> tuple[()]:
        return ()

    name = "peerguard-test-command"
    try:
        command(name)(first)
        with pytest.raises(ValueError, match="two handlers"):
            command(name)(second)
        assert TABLE[name] is first
        command(name, replaces=True)(second)
        assert TABLE[name] is second
        with pytest.raises(ValueError, match="nothing registered"):
            command(name + "-other", replaces=True)(second)
    finally:
        TABLE.pop(name, None)


def _library_files() -> list[Path]:
    """The package's modules (``guard/integrations`` links to ``integrations/``: read once)."""
    files = {p.resolve() for base in ("guard", "integrations") for p in (ROOT / base).rglob("*.py")}
    return sorted(files)


def test_every_suppression_says_why() -> None:
    """A ``type: ignore[...]`` or ``noqa: ...`` in library code names its codes and gives its
    reason on the same line (after ``#`` or `` - ``)."""
    import re

    bare = re.compile(r"(type: ignore|noqa)(?!(\[[\w, -]+\]|: [A-Z0-9, ]+)\s+(#|-)\s*\S)")
    found = [
        f"{p}:{n}: {line.strip()}"
        for p in _library_files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line.split("#", 1)[1] if "#" in line else "")
    ]
    assert found == []


def test_no_assert_in_library_code() -> None:
    """Library code checks with ``if`` and raises: ``python -O`` drops asserts."""
    import ast

    found = [
        f"{p}:{node.lineno}"
        for p in _library_files()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
