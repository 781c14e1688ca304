"""Interpreters: python, perl, ruby, node and the other languages the analyser reads.

Each takes its code from where its command line says (``-c``/``-e``, a script file, a module,
standard input), with the options that load more code first (``-r``, ``-M``, ``-m``), and hands
it to :mod:`guard.shell.code`: Python is read as a syntax tree, the others are scanned. perl's
switch clusters (``-pi -e``) are parsed as perl does, so an in-place edit is simulated like
sed's. Shell text is run through :mod:`guard.shell.reentry`.
"""

from __future__ import annotations

import os
import re

from guard.shell.code import inspect_code, inspect_python, load_file, load_spec
from guard.shell.codeio import mentioned_files
from guard.shell.core import Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.reentry import (
    _unknown_args,
    file_text,
    perl_shebang_switches,
    run_script_file,
    run_stdin_script,
)
from guard.shell.sed import perl_subst_to_sed
from guard.shell.sqlite import sqlite_commands
from guard.shell.words import OPAQUE, Field, Flow, names
from guard.types import ConfigEdit, EffectKind, Location

__all__ = [
    "perl_command",
]


# -------------------------------------------------------------- helpers


# ----------------------------------------------------------- unknown commands


# ------------------------------------------------------------------ shells


# ---------------------------------------------------------------- wrappers


# ------------------------------------------------------------------- xargs


# ------------------------------------------------------- directories, vars


# ---------------------------------------------------------- interpreters


def _python_like(c: Cmd) -> tuple[Flow, ...]:
    args = c.args
    i = 0
    code: Field | None = None
    module: Field | None = None
    interactive = False
    while i < len(args):
        a = args[i]
        v = a.value if a.known else ""
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        j = 1
        consumed = False
        while j < len(v):
            ch = v[j]
            interactive = interactive or (ch == "i" and not v.startswith("--"))
            if ch in "cm":
                val = (
                    Field(v[j + 1 :], raw=v[j + 1 :])
                    if j + 1 < len(v)
                    else (args[i + 1] if i + 1 < len(args) else None)
                )
                if j + 1 >= len(v):
                    i += 1
                if ch == "c":
                    code = val
                else:
                    module = val
                consumed = True
                break
            if ch in "WX":
                if j + 1 >= len(v):
                    i += 1
                break
            j += 1
        i += 1
        if consumed:
            break
    rest = args[i:]
    what = c.name
    inspect = c.st.vars.get("PYTHONINSPECT") if "PYTHONINSPECT" in c.st.exported else None
    if interactive or (inspect is not None and inspect.text != ""):
        # python -i: once the code ran, the interpreter runs what standard input holds
        run_stdin_script(c, "python", what=f"{what} -i reading standard input")
    if code is not None:
        if code.obfuscated:
            c.unknown(f"{what} -c: obfuscated code")
        if not code.known:
            c.unknown(f"{what} -c: code the analyser cannot see")
            return (OPAQUE,)
        return inspect_python(c, code.value, rest, what=f"{what} -c")
    if module is not None:
        name = module.value if module.known else "?"
        if not module.known:
            c.unseen(f"{what} -m: a module the analyser cannot name")
            return _unknown_args(c, rest)
        own = _project_module(c, name, rest)
        if own is not None:
            return own
        if name == "pytest":
            return _pytest(Cmd(c.st, "pytest", rest, c.stdin, c.via))
        if name in (
            "http.server",
            "SimpleHTTPServer",
            "ftplib",
            "smtpd",
            "uploadserver",
            "pyftpdlib",
        ):
            target = c.st.local(".") if c.st.cwd is not None else Location(raw=".")
            c.emit(
                EffectKind.TRANSFER,
                target,
                Location(raw=f"python -m {name}", host=None, visible=False),
                recursive=True,
                certain=False,
                note="serves the current folder on the network",
            )
            return (OPAQUE,)
        if name in ("zipfile", "tarfile", "gzip", "shutil", "base64"):
            for f in rest:
                if f.known and not f.value.startswith("-"):
                    c.unknown(f"python -m {name} given a path", c.loc(f))
            return (OPAQUE,)
        return _unknown_args(c, rest)
    if rest and not (rest[0].known and rest[0].value == "-"):
        loc = c.loc(rest[0])
        c.read(rest[0])
        return run_script_file(c, loc, rest[1:], lang="python", stdin=c.stdin)
    return run_stdin_script(c, "python", what=f"{what} reading standard input")


def _project_module(c: Cmd, name: str, args: list[Field]) -> tuple[Flow, ...] | None:
    """``python -m NAME`` when NAME is a module or package of the working directory (the
    first place Python looks): its file runs as the main script, with ``args``."""
    if c.st.cwd is None or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return None
    rel = name.replace(".", "/")
    pkg = c.st.local(rel)
    if pkg.path is not None and c.st.run.isdir(pkg.path):
        for part in ("__init__.py", "__main__.py"):
            loc = c.st.local(f"{rel}/{part}")
            if file_text(c, loc)[0]:
                c.read(Field(loc.raw, raw=loc.raw))
                run_script_file(c, loc, args, lang="python", stdin=c.stdin)
        return (OPAQUE,)
    loc = c.st.local(rel + ".py")
    if not file_text(c, loc)[0]:
        return None
    c.read(Field(loc.raw, raw=loc.raw))
    return run_script_file(c, loc, args, lang="python", stdin=c.stdin)


for _py in (
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    *(f"python3.{k}" for k in range(6, 15)),
):
    command(_py)(_python_like)


# Per interpreter: the options whose value is code, and those whose value names a file or
# module of code loaded before it (node -r, ruby -r, lua -l, php -d auto_prepend_file=...).
_CODE_FLAGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "node": (
        names("-e --eval -p --print"),
        names("-r --require --import --loader --experimental-loader"),
    ),
    "ruby": (names("-e"), names("-r")),
    "php": (names("-r -B -R -E"), names("-F")),
    "lua": (names("-e"), names("-l")),
    "Rscript": (names("-e --expr"), names("")),
}
_CODE_FLAGS["nodejs"] = _CODE_FLAGS["bun"] = _CODE_FLAGS["deno"] = _CODE_FLAGS["node"]
# Options that take a value which is neither code nor a file of code.
_VALUED = names("-I -C --input-type --conditions --title -d -c -z -n -t --default-packages")


# pytest's options that take a value (its own; a plugin's value option may take a word for
# a path, which only makes the analyser read more).
_PYTEST_SPEC = Spec.of(
    "kmpcoWnr",
    "rootdir basetemp override-ini junitxml junit-xml confcutdir durations durations-min "
    "maxfail tb log-file log-level log-format log-date-format log-cli-level deselect ignore "
    "ignore-glob import-mode capture pythonwarnings report-log cov cov-report numprocesses "
    "dist timeout color code-highlight show-capture",
)
_PYTEST_SKIP = names(".git .hg .svn .tox .nox .venv venv env build dist node_modules __pycache__")
MAX_COLLECT = 256  # directory entries pytest's collection is followed through


@command("pytest py.test")
def _pytest(c: Cmd) -> tuple[Flow, ...]:
    """``pytest``: runs the project's Python, which is read like a script: the conftest.py
    files from the working folder down, the test modules it collects (``test_*.py``,
    ``*_test.py``, or every module with ``--doctest-modules``), and plugins given with ``-p``
    that are project modules. Configuration that changes what is collected or loaded
    (``addopts``, ``python_files``, ``pythonpath``, ``PYTEST_ADDOPTS``...) is unseen."""
    st = c.st
    if st.cwd is None:
        c.unseen("pytest runs in a folder the analyser cannot tell: its tests are not read")
        return _unknown_args(c, list(c.args))
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        v = st.vars.get(var)
        if v is not None and var in st.exported and v.text != "":
            c.unseen(f"pytest reads {var}: options or plugins the analyser does not follow")
    o = parse(c.args, _PYTEST_SPEC)
    if o.has("--version", "-V"):
        return (OPAQUE,)
    every = False  # python_files set: collect every module (more than pytest may)
    inis = [f.value for f in o.values("-c", "--config-file") if f.known]
    if any(not f.known for f in o.values("-c", "--config-file")):
        c.unseen("pytest reads settings from a file the analyser cannot name")
    for name in (*inis, "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
        loc = st.local(name)
        exists, text = file_text(c, loc)
        if not exists:
            continue
        opts = re.findall(r"(?m)^\s*addopts\s*=\s*(.*)$", text or "")
        if (
            text is None
            or re.search(r"(?m)^\s*pythonpath\s*=", text)
            or any(re.search(r"(?:^|\s)(?:-p|--pyargs|--rootdir|--confcutdir)\b", v) for v in opts)
        ):
            c.unseen(f"pytest reads settings from {name} that change what it loads", loc)
        every = every or bool(re.search(r"(?m)^\s*python_files\s*=", text or ""))
    for plugin in o.values("-p"):
        if not plugin.known:
            c.unseen("pytest -p: a plugin the analyser cannot name")
        elif not plugin.value.startswith("no:"):
            module = plugin.value.replace(".", "/") + ".py"
            load_file(c, module, "python", what="pytest -p", depth=0)
    doctests = every or o.has("--doctest-modules")
    paths = [f for f in o.operands if not (f.known and "::" in f.value)] + [
        Field(f.value.split("::")[0], raw=f.raw) for f in o.operands if f.known and "::" in f.value
    ]
    files: list[str] = []
    budget = [MAX_COLLECT]
    for f in paths or [Field(".", raw=".")]:
        if not f.known:
            c.unseen("pytest collects from a path the analyser cannot see")
            continue
        # the conftest.py files of the folders above the path (pytest stops at its rootdir,
        # which may be any of them)
        where = st.local(f.value).path
        up = os.path.dirname(where) if where is not None else None
        for _ in range(16):
            if up is None:
                break
            conftest = os.path.relpath(os.path.join(up, "conftest.py"), st.cwd)
            if conftest not in files and file_text(c, st.local(conftest))[0]:
                files.append(conftest)
            if os.path.dirname(up) == up:
                break
            up = os.path.dirname(up)
        _collect(c, f.value, files, budget, doctests)
    if budget[0] <= 0:
        c.unseen("pytest collects more files than the analyser follows")
    for raw in files:
        load_file(c, raw, "python", what="pytest", depth=0)
    return (OPAQUE,)


def _collect(c: Cmd, raw: str, files: list[str], budget: list[int], doctests: bool) -> None:
    """The Python files pytest imports below ``raw``: conftest.py, then the test modules."""
    st = c.st
    loc = st.local(raw)
    if loc.path is None:
        return
    if not st.run.isdir(loc.path):
        if raw.endswith(".py") and file_text(c, loc)[0]:
            files.append(raw)
        return
    try:
        with os.scandir(loc.path) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    except OSError:
        return
    budget[0] -= len(entries)
    if budget[0] < 0:
        return
    if ("conftest.py", False) in entries:
        files.append(os.path.join(raw, "conftest.py"))
    for name, is_dir in entries:
        path = os.path.join(raw, name) if raw != "." else name
        if is_dir:
            if name not in _PYTEST_SKIP and not name.startswith(".") and not name.endswith(".egg"):
                _collect(c, path, files, budget, doctests)
        elif (
            name.endswith(".py")
            and name != "conftest.py"
            and (doctests or name.startswith("test_") or name.endswith("_test.py"))
        ):
            files.append(path)


def _code_opts(c: Cmd) -> tuple[list[str | None], list[str | None], list[Field]]:
    """Code given with ``-e`` and kin (``None`` when unknown), files or modules of code to
    load first (``None`` when unknown), and the arguments after the options."""
    code_flags, load_flags = _CODE_FLAGS.get(c.name, (names("-e"), names("")))
    codes: list[str | None] = []
    loads: list[str | None] = []
    i = 0
    args = c.args
    while i < len(args):
        a = args[i]
        v = a.value if a.known else ""
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        name, eq, attached = v.partition("=") if v.startswith("--") else (v[:2], "", v[2:])
        if eq or attached:
            value: str | None = attached
            i += 1
        else:
            nxt = args[i + 1] if i + 1 < len(args) else None
            value = nxt.value if nxt is not None and nxt.known else None
            i += 2 if name in code_flags | load_flags | _VALUED else 1
        if name in code_flags:
            codes.append(value)
        elif name in load_flags:
            loads.append(value)
        elif (
            c.name == "php"
            and name == "-d"
            and value
            and value.split("=")[0].strip()
            in (
                "auto_prepend_file",
                "auto_append_file",
            )
        ):
            loads.append(value.partition("=")[2].strip())
    return codes, loads, list(args[i:])


@command(
    # (osascript and pwsh run code the analyser does not read: see deferred.py)
    "ruby node nodejs php lua Rscript deno bun tclsh jshell",
)
def _code_interp(c: Cmd) -> tuple[Flow, ...]:
    codes, loads, rest = _code_opts(c)
    for spec in loads:
        if spec is None:
            c.unseen(f"{c.name}: loads code from a file the analyser cannot see")
        else:
            load_spec(c, spec, c.name, what=c.name, base="", depth=0, module=c.name == "lua")
    if codes:
        if any(x is None for x in codes):
            c.unknown(f"{c.name}: code the analyser cannot see")
            return (OPAQUE,)
        return inspect_code(
            c, "\n".join(x for x in codes if x is not None), rest, what=f"{c.name} -e"
        )
    if rest and not (rest[0].known and rest[0].value == "-"):
        loc = c.loc(rest[0])
        c.read(rest[0])
        return run_script_file(c, loc, rest[1:], lang=c.name)
    return run_stdin_script(c, c.name, what=f"{c.name} reading standard input")


_SQLITE_VALUE_OPTS = frozenset(
    [
        "-separator",
        "-newline",
        "-nullvalue",
        "-vfs",
        "-maxsize",
        "-mmap",
        "-pagecache",
        "-lookaside",
        "-heap",
        "-init",
        "-cmd",
        "-escape",
        "-nonce",
    ]  # a table is easier to read as one string
)
_SQLITE_FLAGS = frozenset(
    [
        "-append",
        "-ascii",
        "-bail",
        "-batch",
        "-box",
        "-column",
        "-csv",
        "-echo",
        "-header",
        "-noheader",
        "-html",
        "-interactive",
        "-json",
        "-line",
        "-list",
        "-markdown",
        "-memtrace",
        "-nofollow",
        "-quote",
        "-readonly",
        "-safe",
        "-stats",
        "-table",
        "-tabs",
        "-version",
        "-zip",
        "-deserialize",
        "-help",
        "-utf8",
        "-no-rowid-in-view",
    ]
)
# SQL that changes the database it runs on, and the dot-commands that do.
_SQL_WRITES = re.compile(
    r"(?i)\b(?:insert|update|delete|replace|drop|create|alter|attach|vacuum|reindex|pragma)\b"
)
_SQLITE_WRITING = frozenset({"import", "restore", "load"})
# Options that change what a statement prints from the default list mode (``|`` between
# columns, ``\n`` after a row, no header): each is a dot-command (``.mode``, ``.separator``...)
# run first. Every other option the analyser knows leaves it as it is.
_SQLITE_FORMAT_OPTS = names(
    "-escape -newline -nullvalue -separator -ascii -box -column -csv -echo -header -html "
    "-interactive -json -line -markdown -quote -stats -table -tabs"
)
# SQL that reads files into the database (or runs them), and the dot-commands that do.
_SQL_READS_FILES = re.compile(r"(?i)\breadfile\s*\(")
_SQLITE_READING = frozenset({"import", "restore", "read", "open", "archive"})


@command("sqlite3 sqlite")
def _sqlite(c: Cmd) -> tuple[Flow, ...]:
    """``sqlite3 [OPTIONS] DB [SQL...]`` (options anywhere): the database file is read, and
    written by SQL that changes it; files the SQL reads into it are copied into it; the SQL is
    scanned like code, so ``writefile()``, ``.output``, ``.save``, ``.backup`` and ``VACUUM
    INTO`` move data where the analyser sees it. Archive mode (``-A``) and options the
    analyser does not know are judged as an unknown program given these arguments."""
    args = c.args
    codes: list[str | None] = []
    operands: list[Field] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.known and a.value.startswith("-") and a.value != "-":
            opt = "-" + a.value.lstrip("-")
            if opt.startswith("-A") or opt not in _SQLITE_VALUE_OPTS | _SQLITE_FLAGS:
                return _unknown_args(c, list(args))
            if opt in _SQLITE_FORMAT_OPTS:
                # the output format changes before any SQL runs: what ``.output`` writes is
                # no longer the default list mode's text
                codes.insert(0, f".mode {opt[1:]}")
            if opt in _SQLITE_VALUE_OPTS and i + 1 < len(args):
                value = args[i + 1]
                if opt == "-cmd":
                    codes.append(value.value if value.known else None)
                elif opt == "-init":
                    c.read(value)
                    codes.append(c.st.run.read_text(c.loc(value)))
                i += 2
                continue
            i += 1
            continue
        operands.append(a)
        i += 1
    sql = operands[1:]
    codes.extend(a.value if a.known else None for a in sql)
    if any(x is None for x in codes):
        c.unknown("sqlite3: SQL the analyser cannot see")
    text = "\n".join(x for x in codes if x is not None)
    if operands:
        db = c.loc(operands[0])
        c.read(operands[0])
        dots = {name for name, _ in sqlite_commands(text)}
        if not sql or _SQL_WRITES.search(text) or dots & _SQLITE_WRITING:
            # SQL from standard input, or SQL that changes the database: the file changes.
            c.emit(EffectKind.WRITE, db, certain=False, note="sqlite3 may change the database")
        if _SQL_READS_FILES.search(text) or dots & _SQLITE_READING:
            for loc in mentioned_files(c, text):
                c.emit(
                    EffectKind.COPY,
                    loc,
                    db,
                    certain=False,
                    note="sqlite3 SQL reads this file into the database",
                )
    if not sql:
        if text:
            # ``-cmd``/``-init`` code runs whatever standard input holds; its settings (and
            # the format options) hold for the script read from there
            inspect_code(c, text, [], what="sqlite3")
        return run_stdin_script(c, "sqlite3", what="sqlite3 reading standard input", prefix=text)
    return inspect_code(c, text, [], what="sqlite3")


# perl's switches (perlrun): those that take the rest of the word (or, for -e, -E, -I, -M
# and -m, the next word) as their value, those followed by optional digits after which the
# cluster goes on (-0777pi, -lpi), and those that are letters alone.
_PERL_VALUE = frozenset("eEiIMmxdDCF")
_PERL_NEXT = frozenset("eEIMm")
_PERL_DIGITS = frozenset("0l")
_PERL_FLAGS = frozenset("acfhnpsStTuUvwWX")


def _perl_switches(
    args: list[Field],
) -> tuple[list[str | None], dict[str, list[Field]], bool, int] | None:
    """perl's switch clusters, parsed exactly: the code (``None`` where unknown), the value of
    each valued switch, whether one unknown letter was met, and where the operands start
    (``None`` when a switch word cannot be seen)."""
    codes: list[str | None] = []
    values: dict[str, list[Field]] = {}
    odd = False
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            return None
        v = a.value
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        j = 1
        while j < len(v):
            ch = v[j]
            if ch in _PERL_DIGITS:
                j += 1
                if ch == "0" and j < len(v) and v[j] in "xX":
                    j += 1
                    while j < len(v) and v[j] in "0123456789abcdefABCDEF":
                        j += 1
                else:
                    while j < len(v) and v[j] in "01234567":
                        j += 1
                values.setdefault("-" + ch, [])
                continue
            if ch in _PERL_VALUE:
                attached = v[j + 1 :]
                value: Field | None = Field(attached, raw=attached)
                if not attached and ch in _PERL_NEXT:
                    i += 1
                    value = args[i] if i < len(args) else None
                if value is not None:
                    values.setdefault("-" + ch, []).append(value)
                    if ch in "eE":
                        codes.append(value.value if value.known else None)
                break
            if ch not in _PERL_FLAGS:
                odd = True
            values.setdefault("-" + ch, [])
            j += 1
        i += 1
    return codes, values, odd, i


# Perl code that turns in-place editing on itself: ``$^I`` (the variable ``-i`` sets), given a
# value; and a BEGIN block that only does that, with the value it gives.
# Any mention of ``$^I`` counts as setting it (a list assignment, ``=~ s///``, a ``for`` alias,
# ``local``, a reference, a sub's aliased argument all can), but for a read whose value only
# reaches ``defined``, a comparison or a default (``$^I // "off"``, ``$^I eq ""``); and so does
# any symbolic reference (``${"\cI"}``, ``$$name``, ``*{...}``, the stash): the name it
# reaches may be ``^I``.
_PERL_SETS_INPLACE = re.compile(
    r"""\\\s*\$(?:\^I|\{\s*\^I)|"""
    r"""(?<!defined\()(?<!defined )\$(?:\^I(?!\w)|\{\s*\^I\s*\})"""
    r"""(?!\s*(?:(?://|\|\|)(?!=)|(?:eq|ne|lt|gt|le|ge|cmp)\b|[=!]=))|"""
    r"""\$\s*\{\s*["'`\\$]|\$\s*\{\s*(?:chr|sprintf|pack|join|lc|uc)\b|\$\$[A-Za-z_{]|"""
    r"""\$(?:main)?::\{|[*%]\s*\{\s*["'`$\\]|\\cI"""
)
_PERL_BEGIN_INPLACE = re.compile(
    r"""\bBEGIN\s*\{\s*(?:local\s+)?\$(?:\^I|\{\^I\})\s*=\s*(?:(["'])([^"'\\$@]*)\1|q\{([^}\\]*)\})\s*;?\s*\}\s*;?"""
)
# Code that gives @ARGV its files (the files ``<>`` then reads and ``$^I`` edits).
_PERL_SETS_ARGV = re.compile(
    r"@ARGV\s*=(?!=)|\b(?:push|unshift|splice)\s*\(?\s*@ARGV\b|\$ARGV\s*\["
)


def _perl_code_inplace(
    codes: list[str | None], values: dict[str, list[Field]]
) -> tuple[list[str | None], str | None] | None:
    """In-place editing the code itself turns on: ``BEGIN{$^I=""}`` before a ``-p`` loop is
    ``-i`` (returned as the codes without the block, and the backup suffix); ``None`` when the
    code does not set ``$^I``, or sets it any other way (see :func:`_perl_inplace_unknown`)."""
    if not any(x is not None and _PERL_SETS_INPLACE.search(x) for x in codes):
        return None
    stripped: list[str | None] = []
    suffix: str | None = None
    for x in codes:
        if x is None:
            return None
        m = _PERL_BEGIN_INPLACE.search(x)
        if m is not None:
            suffix = m.group(2) if m.group(2) is not None else m.group(3)
            x = x[: m.start()] + x[m.end() :]
        if _PERL_SETS_INPLACE.search(x):
            return None
        stripped.append(x)
    if suffix is None or not ("-p" in values or "-n" in values):
        return None
    return stripped, suffix


def _perl_inplace_unknown(c: Cmd, code: str, rest: list[Field]) -> None:
    """Code that sets ``$^I`` edits in place the files ``<>`` reads: those on the command
    line and, when it gives ``@ARGV`` files itself, every file it names (or a path it
    computes). What the edit does is not simulated: each is changed in an unknown way."""
    targets = [c.loc(f) for f in rest]
    if _PERL_SETS_ARGV.search(code):
        named = mentioned_files(c, code)
        targets.extend(named or [Location(raw="<a file perl code gives @ARGV>", path=None)])
    for loc in targets:
        c.emit(
            EffectKind.WRITE,
            loc,
            certain=False,
            note="perl: code that sets $^I edits the files it reads in place",
        )


@command("perl")
def perl_command(c: Cmd) -> tuple[Flow, ...]:
    """``perl``: ``-pi -e 's/a/b/' f`` is a sed edit; other code is inspected. A switch the
    analyser does not know, the debugger, and modules found in folders given with ``-I``
    (read like the code) are judged as what they run."""
    args = c.args
    parsed = _perl_switches(list(args))
    if parsed is None:
        c.unseen("perl: a switch the analyser cannot see")
        return _unknown_args(c, list(args))
    codes, values, odd, i = parsed
    if odd:
        c.unseen("perl: a switch the analyser does not know")
    rest = list(args[i:])
    if not codes:
        # the program is a file, or standard input (no operand, or ``-``): with ``-x``, it
        # starts at the first ``#!...perl`` line; its ``#!`` switches count as given here
        if rest and rest[0].value != "-":
            c.read(rest[0])
            if "-x" not in values:
                return run_script_file(c, c.loc(rest[0]), rest[1:], lang="perl")
            _, text = file_text(c, c.loc(rest[0]))
            if text is None:
                c.unseen("perl -x: a program the analyser cannot read", c.loc(rest[0]))
                return _unknown_args(c, rest[1:])
            return _perl_program(c, text, values, rest[1:], odd)
        files = rest[1:] if rest else []
        return run_stdin_script(
            c,
            "perl",
            what="perl reading standard input",
            run=lambda text: _perl_program(
                Cmd(c.st, c.name, c.args, (), c.via), text, values, files, odd
            ),
        )
    return _perl_run(c, codes, values, rest, odd)


def _perl_program(
    c: Cmd, text: str, values: dict[str, list[Field]], rest: list[Field], odd: bool
) -> tuple[Flow, ...]:
    """perl running the program ``text`` (a file or standard input) on ``rest``: with
    ``-x`` from its first ``#!...perl`` line (none: perl runs nothing)."""
    if "-x" in values:
        lines = text.split("\n")
        at = next((k for k, ln in enumerate(lines) if ln.startswith("#!") and "perl" in ln), None)
        if at is None:
            return ()
        text = "\n".join(lines[at:])
    return _perl_run(c, [text], dict(values), rest, odd)


def _perl_run(
    c: Cmd, codes: list[str | None], values: dict[str, list[Field]], rest: list[Field], odd: bool
) -> tuple[Flow, ...]:
    """perl running ``codes`` (``-e`` code, or the program read from a file or standard
    input) on ``rest``. A ``#!...perl`` first line of the program gives switches, which perl
    honours as if they were on its command line (``#!perl -pi`` edits in place)."""
    first = codes[0] if codes else None
    shebang = perl_shebang_switches(first) if first is not None else []
    if shebang:
        more = _perl_switches([Field(w, raw=w) for w in shebang])
        if more is None:
            c.unseen("perl: #! switches the analyser cannot read")
        else:
            _, extra, odd_more, _ = more
            if odd_more and not odd:
                c.unseen("perl: a #! switch the analyser does not know")
            merged = {k: list(v) for k, v in values.items()}
            for k, v in extra.items():
                merged.setdefault(k, []).extend(v)
            values = merged
        # the #! line is a comment of the code; the lines stay where they were
        codes = ["\n" + first.split("\n", 1)[1] if first and "\n" in first else "", *codes[1:]]
    if "-d" in values:
        c.unseen("perl -d runs the debugger, which runs the commands it reads")
    inplace_vals = values.get("-i")
    inplace = inplace_vals[-1].value if inplace_vals else None
    if inplace is None:
        turned_on = _perl_code_inplace(codes, values)
        if turned_on is not None:
            codes, inplace = turned_on
    loop = "-p" in values or "-n" in values
    _perl_modules(c, values, codes)
    if inplace is not None:
        code = (
            "\n".join(x for x in codes if x is not None)
            if all(x is not None for x in codes)
            else None
        )
        # -0 reads the file in one piece (or by NUL): s/// then acts once on the whole text,
        # which a line-by-line sed does not reproduce
        sed_like = "-p" in values and "-0" not in values
        script = perl_subst_to_sed(code) if code is not None and sed_like else None
        for f in rest:
            loc = c.loc(f)
            if inplace:
                from guard.shell.common import copy_effect

                copy_effect(
                    c,
                    loc,
                    c.st.local(f.value + inplace) if f.known else Location(raw=f.raw + inplace),
                    recursive=False,
                    note="perl -i backup",
                )
            c.emit(
                EffectKind.WRITE, loc, edit=ConfigEdit(op="sed", script=script) if script else None
            )
        if script is None and code is not None:
            inspect_code(c, code, [], what="perl -i", lang="perl")
        return ()
    if any(x is None for x in codes):
        c.unknown("perl: code the analyser cannot see")
        return (OPAQUE,)
    code = "\n".join(x for x in codes if x is not None)
    if _PERL_SETS_INPLACE.search(code):
        _perl_inplace_unknown(c, code, rest)
    out = inspect_code(c, code, rest, what="perl -e", lang="perl")
    if loop:
        files = [f for f in rest if f.known]
        return tuple(fl for f in files for fl in c.content(f, transform=True)) or c.passthrough(
            transform=True
        )
    return out


_PERL_USE = re.compile(r"(?:^|[;{}])\s*(?:use|require)\s+([A-Za-z_][\w:]*)", re.M)
_PERL_LIB = re.compile(r"""\buse\s+lib\s+(?:qw\s*[(/{]\s*([^)/}]*)|(["'])([^"']*)\2)""")


def _perl_modules(c: Cmd, values: dict[str, list[Field]], codes: list[str | None]) -> None:
    """Modules that ``-M``/``-m`` and ``use`` name, found in a folder that ``-I`` or ``use lib``
    puts before the installed ones: project files, read like the code."""
    text = "\n".join(x for x in codes if x is not None)
    dirs = [f.value if f.known else None for f in values.get("-I", [])]
    for m in _PERL_LIB.finditer(text):
        dirs.extend((m.group(1) or "").split() if m.group(1) is not None else [m.group(3)])
    if not dirs:
        return
    if any(d is None for d in dirs):
        c.unseen("perl -I: a module folder the analyser cannot see")
        return
    modules = [
        f.value.lstrip("-").split("=")[0]
        for f in values.get("-M", []) + values.get("-m", [])
        if f.known
    ]
    modules.extend(m.group(1) for m in _PERL_USE.finditer(text))
    for name in modules:
        rel = name.replace("::", "/") + ".pm"
        for d in dirs:
            if d is not None and load_file(c, os.path.join(d, rel), "perl", what="perl", depth=0):
                break
