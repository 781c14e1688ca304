"""Looking inside code handed to interpreters: ``python -c``, ``python FILE``, ``perl -e`` and kin.

The analyser does not run the code. For Python it reads the syntax tree: string literals (folded
through simple assignments, ``os.path.join`` and ``Path``), the calls made, and the modules used.
Literal calls such as ``shutil.copy('a', 'b')`` become precise effects; the rest is judged by what
the code *could* do with every existing path it mentions: send it (network modules), copy or
write it, delete it, or only read it. Commands passed to ``os.system``/``subprocess`` are analysed
as shell. For other languages, quoted strings and a list of telling API names play the same part.

Here: the entry points, the Python tree walk, the scan of other languages and the files of
code that code loads. :mod:`guard.shell.pysyntax` reads the Python tree,
:mod:`guard.shell.scanners` holds the patterns other languages are scanned with,
:mod:`guard.shell.codeio` what both readers do with the files code names, and
:mod:`guard.shell.sqlite` reads sqlite3's dot-commands.
"""

from __future__ import annotations

import ast
import os
import re

from guard.shell.codeio import (
    _literals,
    existing_files,
    may_send,
    may_write,
    new_files,
    passed_through,
    run_shell,
    url_host,
)
from guard.shell.core import TABLE, Cmd
from guard.shell.pysyntax import (
    COPY_CALLS,
    DEBUGGER_CALLS,
    DELETE_CALLS,
    DELETE_METHODS,
    DETACH_CALLS,
    DYNAMIC,
    FINDING_CALLS,
    FINDING_METHODS,
    MOVE_CALLS,
    NET_MODULES,
    OPEN_CALLS,
    READ_CALLS,
    READ_METHODS,
    SHELL_CALLS,
    WRITE_CALLS,
    WRITE_METHODS,
    Py,
    command_text,
    dotted_name,
    literal_glob,
    meta_only,
    meta_only_name,
    only_reduced,
    open_mode,
    open_target,
    opens_a_path,
    path_open_mode,
    paths_named,
    run_debugger,
    starts_detached,
)
from guard.shell.scanners import (
    EXTENSIONS,
    GEN_COMPUTED,
    GEN_DELETE,
    GEN_DETACH,
    GEN_DYNAMIC,
    GEN_FILE_IO,
    GEN_LOOKUP,
    GEN_LOOKUP_BY_LANG,
    GEN_NET,
    GEN_PRINT,
    GEN_SHELL,
    GEN_WRITE,
    LOADER_RE,
    LOADERS,
    NODE_READS,
    interpolates,
    meta_only_strings,
    node_reads_only,
)
from guard.shell.sqlite import sqlite_script
from guard.shell.words import OPAQUE, Field, Flow, names, short
from guard.types import EffectKind, Location

__all__ = [
    "inspect_code",
    "inspect_python",
    "load_file",
    "load_spec",
]


def inspect_python(
    c: Cmd, code: str, argv: list[Field], *, what: str, base: str = "", depth: int = 0
) -> tuple[Flow, ...]:
    """Effects of running Python ``code`` with ``argv`` (``sys.argv[1:]``).

    Args:
        c: The interpreter's command.
        code: The code.
        argv: ``sys.argv[1:]``.
        what: How to name the code in notes.
        base: The folder of the script (``sys.path[0]``, where its imports are looked for
            first), as the command line names it; empty for code given with ``-c``, ``-m``
            or on standard input (the working directory).
        depth: How many project files deep this code was loaded (see :func:`load_file`).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        c.unseen(f"{what}: code the analyser cannot parse")
        return inspect_code(c, code, argv, what=what, base=base, depth=depth)
    try:
        return _inspect_tree(c, tree, argv, what=what, base=base, depth=depth)
    except RecursionError:
        c.unseen(f"{what}: code nested too deeply to analyse")
        return (OPAQUE,)


# ------------------------------------------------------------ code loaded from project files

MAX_LOADED = 32  # project files one analysis reads because code imports or runs them
_PY_LOAD_FILE = {  # calls that run the Python file their argument at this index names
    "runpy.run_path": 0,
    "importlib.util.spec_from_file_location": 1,
    "importlib.machinery.SourceFileLoader": 1,
    "imp.load_source": 1,
    "imp.load_compiled": 1,
}
_PY_LOAD_MODULE = names("runpy.run_module importlib.import_module __import__ imp.load_module")


def _is_file(c: Cmd, path: str) -> bool:
    run = c.st.run
    return path in run.overlay or run.isfile(path)


def load_file(c: Cmd, raw: str, lang: str, *, what: str, depth: int) -> bool:
    """Analyse the file at ``raw`` (as the command line names it) that code imports, requires
    or runs, as a script of ``lang``: once per analysis, at most ``MAX_LOADED`` files and
    ``MAX_DEPTH`` loads deep (past either, it is unseen). Returns whether the file is there."""
    from guard.shell.record import MAX_DEPTH

    st = c.st
    loc = st.local(raw)
    if loc.path is None or not _is_file(c, loc.path):
        return False
    run = st.run
    key = ("loaded", loc.path)
    if key in run.seen:
        return True
    run.seen.add(key)
    loaded = sum(1 for k in run.seen if k[0] == "loaded")
    if depth >= MAX_DEPTH or loaded > MAX_LOADED:
        c.unseen(f"{what}: loads more project code than the analyser reads", loc)
        return True
    head = run.read_head(loc)
    text = run.read_text(loc) if head is not None and b"\0" not in head else None
    if text is None:
        c.unseen(f"{what}: loads code the analyser cannot read ({short(raw)})", loc)
        return True
    inner = f"{raw} (loaded by {what})"
    folder = os.path.dirname(raw)
    if lang == "python":
        inspect_python(c, text, [], what=inner, base=folder, depth=depth + 1)
    else:
        inspect_code(c, text, [], what=inner, lang=lang, base=folder, depth=depth + 1)
    return True


def _python_module(
    c: Cmd, base: str, dotted: str, listings: dict[str, set[str] | None], *, what: str, depth: int
) -> bool:
    """Analyse the project files that importing ``dotted`` runs when they lie in ``base``
    (the script's folder comes first in ``sys.path``: a ``json.py`` there *is* ``json``).
    Returns whether any does; a compiled module there is unseen. A folder the agent cannot
    write holds the system's modules, and is not looked at."""
    found = False
    folder = base
    parts = [p for p in dotted.split(".") if p]
    for part in parts:
        there = _names(c, folder, listings)
        if there is None:
            return found
        pkg = os.path.join(folder, part)
        if part in there:
            loc = c.st.local(pkg)
            if loc.path is not None and c.st.run.isdir(loc.path):
                init = os.path.join(pkg, "__init__.py")
                found = load_file(c, init, "python", what=what, depth=depth) or found
                folder = pkg
                continue
        if part + ".py" in there:
            return load_file(c, pkg + ".py", "python", what=what, depth=depth) or found
        if any(n.startswith(part + ".") and n.endswith((".so", ".pyc", ".pyd")) for n in there):
            c.unseen(f"{what}: imports compiled code the analyser cannot read ({part})")
            return True
        return found
    return found


def _names(c: Cmd, folder: str, listings: dict[str, set[str] | None]) -> set[str] | None:
    """The entries of a folder the agent can write (with the files this command line wrote
    there), read once per analysis of a piece of code; ``None`` for any other folder."""
    loc = c.st.local(folder or ".")
    if loc.path is None:
        return None
    if loc.path in listings:
        return listings[loc.path]
    run = c.st.run
    found: set[str] | None = None
    if run.writable(loc.path + "/"):
        found = set()
        try:
            with os.scandir(loc.path) as it:
                found.update(e.name for _, e in zip(range(4096), it, strict=False))
        except OSError:
            pass
        prefix = loc.path.rstrip("/") + "/"
        found.update(p[len(prefix) :].split("/", 1)[0] for p in run.overlay if p.startswith(prefix))
        found.update(p[len(prefix) :].split("/", 1)[0] for p in run.created if p.startswith(prefix))
    listings[loc.path] = found
    return found


def _python_loads(c: Cmd, py: Py, tree: ast.AST, *, what: str, base: str, depth: int) -> None:
    """What the code imports or runs from files: project files are read and analysed like the
    code itself; a file or module it names with a computed value is unseen."""
    listings: dict[str, set[str] | None] = {}
    for n in py.nodes:
        if isinstance(n, ast.Import):
            for a in n.names:
                _python_module(c, base, a.name, listings, what=what, depth=depth)
        elif isinstance(n, ast.ImportFrom):
            folder = base
            for _ in range(max(0, n.level - 1)):
                folder = os.path.dirname(folder) if folder not in ("", ".") else ".."
            module = n.module or ""
            if module:
                _python_module(c, folder, module, listings, what=what, depth=depth)
            for a in n.names:
                if a.name != "*":
                    sub = f"{module}.{a.name}" if module else a.name
                    _python_module(c, folder, sub, listings, what=what, depth=depth)
        elif isinstance(n, ast.Call):
            name = dotted_name(n.func, py.aliases) or ""
            index = _PY_LOAD_FILE.get(name)
            if index is not None or name in _PY_LOAD_MODULE:
                k = index or 0
                arg = n.args[k] if len(n.args) > k else None
                value = py.fold(arg) if arg is not None else None
                if value is None:
                    c.unseen(f"{what}: {name} loads code from a place the analyser cannot see")
                elif index is not None:
                    load_file(c, value, "python", what=what, depth=depth)
                elif not value.startswith("."):
                    _python_module(c, base, value, listings, what=what, depth=depth)
                continue
            if name in ("exec", "compile") and n.args:
                path = _opened_text(py, n.args[0])
                if path is not None:
                    load_file(c, path, "python", what=what, depth=depth)


def _opened_text(py: Py, node: ast.AST) -> str | None:
    """The file ``open(PATH).read()`` (or ``Path(PATH).read_text()``) reads, when literal."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    inner = node.func.value
    if (
        node.func.attr == "read"
        and isinstance(inner, ast.Call)
        and inner.args
        and dotted_name(inner.func, py.aliases) in ("open", "io.open")
    ):
        return py.fold(inner.args[0])
    if node.func.attr == "read_text":
        return py.fold(inner)
    return None


def _inspect_tree(
    c: Cmd, tree: ast.AST, argv: list[Field], *, what: str, base: str, depth: int
) -> tuple[Flow, ...]:
    st = c.st
    py = Py(tree, [what, *[(f.value if f.known else None) for f in argv]], st.home)
    _python_loads(c, py, tree, what=what, base=base, depth=depth)
    covered: set[str] = set()
    net = write = dynamic = unknown_call = printing = found = False
    strings: list[str] = []
    reads: list[Location] = []
    opened: list[Location] = []  # files the code opens for reading
    written: list[Location] = []  # files it writes
    meta: dict[str, bool] = {}  # a string: whether every use of it only asks for metadata
    for n in py.nodes:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            strings.append(n.value)
            meta[n.value] = meta.get(n.value, True) and meta_only(py, n)
        if isinstance(n, ast.Import | ast.ImportFrom):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
            if any(m.split(".")[0] in NET_MODULES for m in mods):
                net = True
        if not isinstance(n, ast.Call):
            continue
        name = dotted_name(n.func, py.aliases) or ""
        method = n.func.attr if isinstance(n.func, ast.Attribute) else ""
        args = [py.fold(a) for a in n.args]
        if name.split(".")[0] in NET_MODULES:
            net = True
        if name in SHELL_CALLS:
            if starts_detached(py, name, n):
                c.unseen(f"{what}: starts a process that outlives the call ({name})")
            text = command_text(py, name, n)
            if text is None:
                # its own arguments, text it builds or reads: a command nobody read
                c.unseen(f"{what}: runs a command the analyser cannot see ({name})")
            else:
                run_shell(c, text, f"{what} subprocess")
            continue
        if name in DETACH_CALLS or any(
            k.arg == "daemon" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in n.keywords
        ):
            c.unseen(f"{what}: starts work that outlives the call ({name or method})")
        if name in DEBUGGER_CALLS:
            run_debugger(c, py, name, n, what)
            continue
        if name in COPY_CALLS or name in MOVE_CALLS:
            kind = EffectKind.MOVE if name in MOVE_CALLS else EffectKind.COPY
            src = (
                st.local(args[0])
                if args and args[0] is not None
                else Location(raw="<python value>")
            )
            dst = (
                st.local(args[1])
                if len(args) > 1 and args[1] is not None
                else Location(raw="<python value>")
            )
            from guard.shell.common import copy_effect, dest_for

            if (
                src.path is not None
                and dst.path is not None
                and len(args) > 1
                and args[1] is not None
            ):
                dst = dest_for(st, src, dst, args[1]) if name != "shutil.copyfile" else dst
            rec = name == "shutil.copytree" or (src.path is not None and st.run.isdir(src.path))
            copy_effect(
                c,
                src,
                dst,
                recursive=rec,
                kind=kind,
                certain=src.resolved and dst.resolved,
                note="" if src.resolved and dst.resolved else f"{what}: {name} with computed paths",
            )
            if src.path is not None:
                covered.add(src.path)
            if not (src.resolved and dst.resolved):
                write = True
            continue
        if name in DELETE_CALLS or (method in DELETE_METHODS and name not in READ_CALLS):
            target = (
                args[0]
                if name in DELETE_CALLS and args
                else (
                    py.fold(n.func.value)
                    if isinstance(n.func, ast.Attribute) and method in DELETE_METHODS
                    else None
                )
            )
            loc = st.local(target) if target is not None else Location(raw="<python value>")
            rec = name == "shutil.rmtree" or method == "rmtree"
            c.emit(
                EffectKind.DELETE,
                loc,
                recursive=rec,
                certain=loc.resolved,
                note="" if loc.resolved else f"{what}: deletes a computed path",
            )
            if loc.path is not None:
                covered.add(loc.path)
            continue
        if name in OPEN_CALLS or opens_a_path(py, name, method):
            node = (
                open_target(n)
                if name in OPEN_CALLS
                else (n.func.value if isinstance(n.func, ast.Attribute) else None)
            )
            mode = open_mode(py, n, name) if name in OPEN_CALLS else path_open_mode(py, n)
            paths = paths_named(c, py, node)
            locs = (
                [st.local(p) for p in paths]
                if paths is not None
                else [Location(raw="<python value>", path=None)]
            )
            if any(ch in mode for ch in "wax+"):
                for loc in locs:
                    c.emit(
                        EffectKind.WRITE,
                        loc,
                        certain=loc.resolved and paths is not None and len(paths) == 1,
                        note="" if loc.resolved else f"{what}: writes a computed path",
                    )
                    written.append(loc)
                write = True
            else:
                # what is read may be written or sent, unless it only reaches a digest
                kept = not only_reduced(py, n)
                for loc in locs:
                    c.emit(
                        EffectKind.READ,
                        loc,
                        certain=loc.resolved,
                        note="" if loc.resolved else f"{what}: reads a computed path",
                    )
                    if loc.path is not None:
                        reads.append(loc)
                        if kept:
                            opened.append(loc)
                found = found or (kept and paths is None)
            covered.update(loc.path for loc in locs if loc.path is not None)
            continue
        if method in ("read_text", "read_bytes") and isinstance(n.func, ast.Attribute):
            paths = paths_named(c, py, n.func.value)
            kept = not only_reduced(py, n)
            if paths is None:
                found = found or kept  # a file the code found or built: reads it, but which?
                continue
            for loc in map(st.local, paths):
                c.emit(EffectKind.READ, loc)
                if loc.path is not None:
                    reads.append(loc)
                    if kept:
                        opened.append(loc)
                    covered.add(loc.path)
            continue
        if name in FINDING_CALLS or method in FINDING_METHODS:
            # a literal pattern is expanded: the files it matches are named by the code
            hits = literal_glob(c, py, n, name, method)
            if hits is None:
                found = True
            else:
                strings.extend(hits)
        if method in ("write_text", "write_bytes") and isinstance(n.func, ast.Attribute):
            path = py.fold(n.func.value)
            loc = st.local(path) if path is not None else Location(raw="<python value>")
            c.emit(EffectKind.WRITE, loc, certain=loc.resolved)
            write = True
            written.append(loc)
            if loc.path is not None:
                covered.add(loc.path)
            continue
        if name in DYNAMIC or (
            method in ("b64decode", "decodebytes")
            and any(
                dotted_name(p.func, py.aliases) in ("exec", "eval")
                for p in py.nodes
                if isinstance(p, ast.Call)
            )
        ):
            dynamic = True
            continue
        if name in ("print", "sys.stdout.write", "sys.stdout.buffer.write", "os.write"):
            printing = True
        if name in WRITE_CALLS or (method in WRITE_METHODS and name not in READ_CALLS):
            write = True
        elif py.trusting and (
            name in READ_CALLS
            or method in READ_METHODS
            or name.startswith(("os.path.", "hashlib.", "datetime.", "math.", "time."))
        ):
            pass
        else:
            # (code that rebinds the names the analyser trusts: no call is what it says)
            unknown_call = True
    if found and (write or net or unknown_call or dynamic):
        # Files found at run time (glob, walk, listdir) or paths built from values the analyser
        # cannot fold: the code may copy, send or change any of them.
        c.emit(
            EffectKind.COPY,
            Location(raw=f"<files {what} finds>", path=None),
            written[0] if len(written) == 1 else Location(raw=f"<{what} output>", path=None),
            certain=False,
            note=f"{what}: code that writes or sends files uses paths it computes",
        )
    if write and opened:
        # `data = open(a).read(); open(b, 'w').write(data)`: what is read may be what is written
        for src in opened:
            for dst in written or [Location(raw=f"<{what} output>", path=None)]:
                if dst.path is not None and dst.path == src.path:
                    continue
                c.emit(
                    EffectKind.COPY,
                    src,
                    dst,
                    recursive=src.path is not None and c.st.run.isdir(src.path),
                    certain=False,
                    note=f"{what}: code reads this file and writes files",
                )
    # every existing path the code mentions may be what it sends, copies or deletes
    # (a path that only reaches `os.path.exists`, `getsize`, `Path(p).stat()`: not opened)
    named = [
        *(v for v in strings if not meta.get(v, False)),
        *(a.value for a in argv if a.known),
        *(v for k, v in py.consts.items() if not meta_only_name(py, k)),
    ]
    literals = existing_files(c, named)
    if write or unknown_call or dynamic:
        # ... and a new file it names may be one it creates
        for loc in new_files(c, named):
            if loc.path not in covered:
                c.emit(
                    EffectKind.WRITE,
                    loc,
                    certain=False,
                    note=f"{what}: code that writes files names this new path",
                )
    seen = {loc.path for loc in literals}
    for f in argv:
        if not f.known:
            literals.append(Location(raw=f.raw, path=None))
    # data piped into the program is at its disposal like the files it names
    piped = [fl.src for fl in c.stdin if fl.src is not None and not fl.names]
    if piped and (net or write or unknown_call or dynamic):
        literals.extend(p for p in piped if p.path is None or p.path not in seen)
    if dynamic:
        c.unknown(f"{what}: runs dynamically built code")
    host = url_host(strings)
    for loc in literals:
        if loc.path is not None and loc.path in covered and not net:
            continue
        rec = loc.path is not None and c.st.run.isdir(loc.path)
        if net:
            may_send(c, loc, what, host, rec)
        elif write:
            may_write(c, loc, what, rec)
        elif unknown_call or dynamic:
            c.unknown(
                f"{what}: code calls functions the analyser does not know, with this path", loc
            )
        else:
            c.emit(EffectKind.READ, loc, recursive=rec)
            reads.append(loc)
            opened.append(loc)
    if not literals and (unknown_call or net) and not dynamic:
        c.emit(EffectKind.EXEC, note=f"{what}")
    # what it prints may be what it read (unless only its digest or length reaches the
    # print), or what it was given on standard input
    through = passed_through(c, {r.path for r in reads})
    if printing and opened:
        return (*(Flow(src=r, exact=False, via=c.name) for r in opened), *through)
    return (*through, OPAQUE)


for _alias in ("nodejs", "bun", "deno"):
    GEN_LOOKUP_BY_LANG[_alias] = GEN_LOOKUP_BY_LANG["node"]


LOADERS["nodejs"] = LOADERS["bun"] = LOADERS["deno"] = LOADERS["node"]


def _loader_re(lang: str) -> re.Pattern[str] | None:
    words = LOADERS.get(lang)
    if words is None:
        return None
    pattern = LOADER_RE.get(lang)
    if pattern is None:
        alts = "|".join(re.escape(w) for w in words)
        # require("x") / do "x" / source x; a computed name: require(x + y), do $f, require $x
        bare = r"|(?P<bare>[^\s;\]\[\"'{}$]+)" if lang == "tclsh" else ""
        pattern = re.compile(
            rf"(?<![\w.$])(?P<verb>{alts})\b(?:(?P<paren>\s*\(\s*)|\s+)"
            r"""(?:(?P<q>["'`])(?P<spec>(?:(?!(?P=q))[^\\\n]|\\.){1,4096})(?P=q)"""
            rf"""|(?P<computed>[$@]|(?(paren)[^"'`\s)]|(?!))){bare})"""
        )
        LOADER_RE[lang] = pattern
    return pattern


def _code_loads(c: Cmd, code: str, lang: str, *, what: str, base: str, depth: int) -> None:
    """Files of code the scanned ``code`` loads (``require "./x.js"``, ``do "./x.pl"``,
    ``source x.tcl``): read and analysed like it; one named by a computed value is unseen."""
    pattern = _loader_re(lang)
    if pattern is None:
        return
    for i, m in enumerate(pattern.finditer(code[: 1 << 20])):
        if i >= 64:
            c.unseen(f"{what}: loads more files than the analyser reads")
            return
        spec = m.group("spec") or m.groupdict().get("bare")
        if spec is None or "${" in spec or "#{" in spec:
            c.unseen(f"{what}: loads code from a file the analyser cannot name")
            continue
        module = lang == "lua" and m.group("verb") == "require"
        load_spec(c, spec, lang, what=what, base=base, depth=depth, module=module)


def load_spec(
    c: Cmd, spec: str, lang: str, *, what: str, base: str, depth: int, module: bool = False
) -> None:
    """Analyse the file that a ``require``/``-r`` argument names when it is a file of the
    project: a path (with the language's extensions), or for lua a module name (``module``)
    found from ``base``. A package name (node's, ruby's gems) names an installed library,
    which is not read, as Python's site-packages are not."""
    if lang in ("nodejs", "bun", "deno"):
        lang = "node"
    exts = EXTENSIONS.get(lang, ())
    pathlike = spec.startswith(("./", "../", "/", "~"))
    if lang == "node" and not pathlike:
        return
    if module and not pathlike:
        spec = spec.replace(".", "/")
    raw = spec if spec.startswith(("/", "~")) else os.path.join(base, spec)
    if raw.startswith("~") and c.st.home is not None:
        raw = c.st.home + raw[1:]
    for candidate in (raw, *(raw + e for e in exts)):
        if load_file(c, candidate, lang, what=what, depth=depth):
            return


def inspect_code(
    c: Cmd,
    code: str,
    argv: list[Field],
    *,
    what: str,
    lang: str | None = None,
    base: str = "",
    depth: int = 0,
) -> tuple[Flow, ...]:
    """Effects of code in a language the analyser only scans (perl, ruby, node, php...).

    ``lang`` names the language (by default the command's name); ``base`` and ``depth`` are
    as for :func:`inspect_python`: files the code loads are looked for from ``base``.
    """
    language = lang or os.path.basename(c.name)
    node = language in ("node", "nodejs", "bun", "deno")
    # a path only asked about (existsSync, -s) is not opened: not among the files it names
    asked = meta_only_strings(code, language)
    strings = [s for s in _literals(code[: 1 << 20]) if s not in asked]
    net = bool(GEN_NET.search(code))
    write = bool(GEN_WRITE.search(code))
    delete = bool(GEN_DELETE.search(code))
    shell = bool(GEN_SHELL.search(code))
    dynamic = bool(GEN_DYNAMIC.search(code))
    by_lang = GEN_LOOKUP_BY_LANG.get(language)
    lookup = bool(GEN_LOOKUP.search(code) or (by_lang is not None and by_lang.search(code)))
    _code_loads(c, code, language, what=what, base=base, depth=depth)
    if language in ("sqlite3", "sqlite"):
        sqlite_script(c, code, what, depth, scan=_scan_sqlite)
    computed = (net or write or delete or shell or lookup) and (
        bool(GEN_COMPUTED.search(code)) or interpolates(code)
    )
    if GEN_DETACH.search(code):
        c.unseen(f"{what}: starts work that outlives the call")
    if shell:
        ran = False
        for s in strings:
            head = s.split(" ", 1)[0]
            if head and (head in TABLE or "/" in head) and " " in s:
                run_shell(c, s, f"{what} command")
                ran = True
        if not ran or computed:
            c.unseen(f"{what}: runs commands the analyser cannot see")
    if dynamic:
        c.unknown(f"{what}: runs dynamically built code")
    if computed and (net or write or delete or lookup):
        c.unknown(f"{what}: code that changes or sends files computes the paths it uses")
    literals = existing_files(c, [*strings, *(a.value for a in argv if a.known)])
    seen = {loc.path for loc in literals}
    literals.extend(Location(raw=f.raw, path=None) for f in argv if not f.known)
    piped = [fl.src for fl in c.stdin if fl.src is not None and not fl.names]
    if piped and (net or write or delete or shell or dynamic):
        literals.extend(p for p in piped if p.path is None or p.path not in seen)
    host = url_host(strings)
    # node's reading calls (readFileSync, statSync...) are reads; any other use of its file
    # system module, or of another file API, is not modelled
    io = (
        any(
            not (node and m.group() in ("fs", *NODE_READS))
            for m in GEN_FILE_IO.finditer(code[: 1 << 20])
        )
        or (node and not node_reads_only(code[: 1 << 20]))
        or lookup
    )
    if io or write or delete:
        _unmodelled_io(c, strings, argv, literals, what=what, told=net or write or delete)
    for loc in literals:
        rec = loc.path is not None and c.st.run.isdir(loc.path)
        if net:
            may_send(c, loc, what, host, rec)
        if write:
            may_write(c, loc, what, rec)
        if delete:
            c.emit(
                EffectKind.DELETE,
                loc,
                recursive=rec,
                certain=False,
                note=f"{what}: code that deletes files mentions this path",
            )
        if not (net or write or delete):
            if shell or dynamic:
                c.unknown(f"{what}: code mentions this path", loc)
            else:
                c.emit(EffectKind.READ, loc, recursive=rec)
    if not literals and not (shell or dynamic):
        c.emit(EffectKind.EXEC, note=what)
    # The analyser cannot follow data inside the code: a file it reads may be what it prints,
    # and so may its standard input.
    read = [loc for loc in literals if loc.path is not None]
    flows = (
        [Flow(src=loc, exact=False, via=c.name) for loc in read] if GEN_PRINT.search(code) else []
    )
    flows.extend(passed_through(c, {loc.path for loc in read}))
    # ... and whatever else it prints, which the analyser cannot see.
    return (*flows, OPAQUE)


def _unmodelled_io(
    c: Cmd,
    strings: list[str],
    argv: list[Field],
    literals: list[Location],
    *,
    what: str,
    told: bool,
) -> None:
    """Scanned code that opens or changes files: every file it names may be written, copied
    or changed by calls the analyser does not model, a new path it names may be created, and
    with no path named at all the files it uses are computed (``told``: a write, send or
    delete call the analyser knows was seen, and already judged every named file)."""
    named = [*strings, *(a.value for a in argv if a.known)]
    new = new_files(c, named)
    for loc in new:
        c.emit(
            EffectKind.WRITE,
            loc,
            certain=False,
            note=f"{what}: code that opens files names this new path",
        )
    if not told:
        for loc in literals:
            c.unknown(f"{what}: code that opens files names this path", loc)
    if not literals and not new:
        c.emit(
            EffectKind.WRITE,
            Location(raw=f"<a path {what} computes>", path=None),
            certain=False,
            note=f"{what}: code opens files it names by computed values",
        )


def _scan_sqlite(c: Cmd, text: str, label: str, depth: int) -> None:
    """Scan a file of sqlite script that ``.read`` runs, as the SQL given on the line is."""
    inspect_code(c, text, [], what=label, lang="sqlite3", depth=depth)
