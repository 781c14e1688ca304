"""Print each module of the ``guard`` package with its line count and the import cycles
between modules; exit 1 when there is a cycle or a module over the line limit.

Usage: ``python scripts/layout.py [--max-lines N] [--root guard]``

Imports are read statically (``ast``), at any depth: an import inside a function closes a
cycle as surely as one at the top, it only postpones the failure.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root``."""
    found: dict[str, Path] = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = f
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports (by any import statement)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - (node.level - 1)]
                base = ".".join([*up, base]) if base else ".".join(up)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports. A submodule's import of its own package (which
    imports its submodules through ``__init__``) is left out: not a cycle of ideas."""
    out = {name: imports(name, path, known) for name, path in known.items()}
    return {name: {t for t in deps if not name.startswith(t + ".")} for name, deps in out.items()}


def cycles(deps: dict[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    counter = [0]
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    yield from sorted(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent / "guard"))
    ap.add_argument("--max-lines", type=int, default=800)
    args = ap.parse_args(argv)
    known = modules(Path(args.root))
    total = 0
    over = []
    for name, path in sorted(known.items(), key=lambda kv: str(kv[1])):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        total += lines
        flag = "  over" if lines > args.max_lines else ""
        if flag:
            over.append(name)
        print(f"{lines:6d}  {name}{flag}")
    print(f"{total:6d}  total, {len(known)} modules")
    found = list(cycles(graph(known)))
    for comp in found:
        print("cycle: " + " <-> ".join(comp))
    print(f"{len(found)} import cycles, {len(over)} modules over {args.max_lines} lines")
    return 1 if found or over else 0


if __name__ == "__main__":
    sys.exit(main())
