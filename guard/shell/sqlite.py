"""sqlite3's own language around SQL: dot-commands (with sqlite's prefix rules), the options
that change what a statement prints, and where output goes (``.output``, ``.once``,
``.save``...). A literal SELECT written with the default output format is known text, judged
like ``echo``; anything else written is data of unknown content. ``.read FILE`` scans that file
with the caller's scanner (``scan``), which reads it as a whole sqlite script.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from guard.shell.codeio import (
    mentioned_files,
    run_shell,
)
from guard.shell.core import Cmd
from guard.shell.words import OPAQUE, Flow, short
from guard.types import Location

Scan = Callable[[Cmd, str, str, int], object]
"""Scans a file of sqlite script: (command, text, label, depth)."""

# sqlite3's dot-commands, and the words after: a command is a line that starts with a dot
# (sqlite3 itself takes it only at the start of the line; leading blanks are allowed here).
_SQLITE_DOT = re.compile(r"^[ \t]*\.(\S*)(.*)$")


# The dot-commands that reach files or programs, each with the fewest letters sqlite3 takes for
# it: any prefix at least that long names it, and a word names at most one command here
# (measured on sqlite3 3.40: ``.o`` is ``.output``, ``.on`` ``.once``, ``.c`` ``.clone``,
# ``.t`` ``.trace``, ``.l`` and ``.lo`` ``.load``, ``.sa`` nothing; ``.log``, ``.excel`` and
# ``.testcase`` only in full). Names are case-sensitive (``.O`` is no command).
_SQLITE_COMMANDS: tuple[tuple[str, int], ...] = (
    ("output", 1),
    ("once", 2),
    ("open", 2),
    ("save", 3),
    ("backup", 3),
    ("clone", 1),
    ("trace", 1),
    ("log", 3),
    ("testcase", 8),
    ("dump", 1),
    ("excel", 5),
    ("shell", 2),
    ("system", 2),
    ("import", 1),
    ("read", 3),
    ("restore", 3),
    ("load", 1),
    ("archive", 2),
    ("session", 3),
    ("cd", 2),
)


# A file argument that starts with ``|``: a command sqlite3 opens as a pipe.
# SQL functions of the sqlite3 shell that run a program or load native code.
_SQLITE_RUNNING_SQL = re.compile(r"(?i)\b(?:load_extension|edit)\s*\(")


# An argument of a dot-command: a quoted word (sqlite3 resolves backslashes in double quotes)
# or a run of non-blanks.
_SQLITE_ARG = re.compile(r"""'([^']*)'?|"((?:[^"\\]|\\.)*)"?|(\S+)""")


# Names sqlite3's output commands take as a stream rather than a file.
_SQLITE_STREAMS = frozenset({"stdout", "stderr", "off"})


# A SELECT of literal values only: in sqlite3's default list mode it prints them joined by
# ``|`` on one line, the text known before it runs.
_SQL_LITERAL = r"'(?:[^']|'')*'|-?\d{1,15}"


_SQL_SELECT_LITERALS = re.compile(
    rf"(?is)\s*select\s+((?:{_SQL_LITERAL})(?:\s*,\s*(?:{_SQL_LITERAL}))*)\s*"
)


# SQL statements that print nothing (unless they return rows).
_SQL_QUIET = re.compile(
    r"(?is)\s*(?:create|insert|update|delete|drop|begin|commit|end|rollback|savepoint|"
    r"release|alter|analyze|reindex|replace)\b(?!.*\breturning\b)"
)


def sqlite_command(word: str) -> str | None:
    """The dot-command of :data:`_SQLITE_COMMANDS` that sqlite3 runs for ``.word``, if any."""
    for name, least in _SQLITE_COMMANDS:
        if len(word) >= least and name.startswith(word):
            return name
    return None


def _sqlite_args(rest: str) -> list[str | None]:
    """A dot-command's arguments as sqlite3 splits them; ``None`` for one whose text the
    analyser does not know (a double-quoted word with backslash escapes)."""
    out: list[str | None] = []
    for m in _SQLITE_ARG.finditer(rest):
        single, double, bare = m.groups()
        if double is not None:
            out.append(None if "\\" in double else double)
        else:
            out.append(single if single is not None else bare)
    return out


def _sql_statements(text: str) -> list[str]:
    """SQL ``text`` cut at the semicolons outside quotes, blank statements left out."""
    out: list[str] = []
    start = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`[":
            quote = "]" if ch == "[" else ch
        elif ch == ";":
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [s for s in out if s.strip()]


def _sql_output(statement: str) -> str | None:
    """What one SQL statement prints in sqlite3's default mode: ``""`` for a statement that
    prints nothing, the text for a SELECT of literals, ``None`` when it cannot be known."""
    if _SQL_QUIET.match(statement):
        return ""
    m = _SQL_SELECT_LITERALS.fullmatch(statement)
    if m is None:
        return None
    values = re.findall(_SQL_LITERAL, m.group(1))
    return "|".join(v[1:-1].replace("''", "'") if v.startswith("'") else v for v in values) + "\n"


class _SqliteOutput:
    """Where sqlite3's output goes while a script runs, and the text sent there so far
    (``None``: text the analyser cannot know)."""

    def __init__(self, c: Cmd, what: str, sources: list[Location]) -> None:
        self.c = c
        self.what = what
        self.sources = sources
        self.target: Location | None = None
        self.text: str | None = ""
        self.once = False
        self.units = 0
        # a command that may change how rows print (``.mode``, ``.separator``, ``.headers``,
        # ``.nullvalue``, a ``.read`` file) ran: a SELECT's text is no longer known
        self.formatted = False

    def switch(self, target: Location | None, *, once: bool = False, known: bool = True) -> None:
        """Output goes to ``target`` from now on (``None``: standard output)."""
        self.flush()
        self.target, self.once, self.units = target, once, 0
        self.text = "" if known and not self.formatted else None

    def add(self, text: str | None) -> None:
        """One statement or command printed ``text``."""
        if self.target is None or text == "":
            return
        self.units += 1
        if self.once and self.units > 1:
            # ``.once`` sends one statement there: which one, when argv and lines differ
            # in how sqlite3 counts, is not known
            self.text = None
        self.text = None if self.text is None or text is None else self.text + text

    def flush(self) -> None:
        """The file that took the output is written with it."""
        if self.target is not None:
            write_data(self.c, self.target, self.text, self.sources, self.what)
        self.target = None


def write_data(c: Cmd, loc: Location, text: str | None, sources: list[Location], what: str) -> None:
    """sqlite3 writes ``loc``: with ``text`` when known, else with data that may come from
    any of ``sources`` (the files its SQL names) or from the database."""
    if text is not None:
        c.write_to(loc, (Flow(text=text, via=c.name),) if text else ())
        return
    flows = tuple(Flow(src=s, exact=False, via=c.name) for s in sources if s.path != loc.path)
    c.write_to(loc, (*flows, OPAQUE))


def sqlite_commands(code: str) -> Iterator[tuple[str | None, list[str | None]]]:
    """sqlite3's dot-commands in ``code``, in order: each as the command of
    :data:`_SQLITE_COMMANDS` it names (``None``: another one) and its arguments."""
    for line in code[: 1 << 20].split("\n"):
        m = _SQLITE_DOT.match(line)
        if m is not None:
            yield sqlite_command(m.group(1)), _sqlite_args(m.group(2))


def sqlite_script(c: Cmd, code: str, what: str, depth: int = 0, *, scan: Scan) -> None:
    """What sqlite3's own dot-commands do, in order (see :data:`_SQLITE_COMMANDS`).

    ``.output``/``.once``/``.testcase`` send the output of what follows to a file (a SELECT of
    literals is known text while the output format is sqlite3's default, anything else is
    not: after ``.mode``, ``.separator``, ``.headers`` or any command this does not model); ``.save``, ``.backup``, ``.clone``,
    ``.trace``, ``.log``, ``.session ... changeset`` and ``.open --new`` write a file with
    data the analyser does not see; ``.shell``/``.system`` and ``|CMD`` files hand a command
    to the system shell; ``-e``, ``-x`` and ``.excel`` start the system's editor or
    spreadsheet; ``.load`` and ``load_extension()`` load native code, ``edit()`` starts an
    editor; ``.cd`` moves every later relative path and ``.archive`` may extract files;
    ``.read FILE`` runs the commands in that file (read like these, ``depth`` files deep).

    A command given to the shell is analysed, and is also unseen: sqlite3 splits and quotes
    its words its own way, so the text the shell runs is not exactly what was read.
    """
    code = code[: 1 << 20]
    sources = mentioned_files(c, code)
    out = _SqliteOutput(c, what, sources)
    sql: list[str] = []

    def statements() -> None:
        for s in _sql_statements("\n".join(sql)):
            out.add(_sql_output(s))
        sql.clear()

    for line in code.split("\n"):
        m = _SQLITE_DOT.match(line)
        if m is None:
            sql.append(line)
            continue
        statements()
        word, rest = m.group(1), m.group(2)
        name = sqlite_command(word)
        args = _sqlite_args(rest)
        label = f"{what} .{word}"
        if name in ("shell", "system"):
            _sqlite_shell(c, rest, label)
            out.add(None)
        elif name in ("output", "once", "import", "read") and any(
            a is not None and a.startswith("|") for a in args
        ):
            for a in args:
                if a is not None and a.startswith("|"):
                    _sqlite_shell(c, a[1:], f"{label} |")
            if name in ("output", "once"):
                out.switch(None)
        elif name in ("output", "once", "excel"):
            if name == "excel" or "-e" in args or "-x" in args:
                c.unseen(f"{label} opens its output in the system's editor or spreadsheet")
                out.switch(None)
                continue
            files = [a for a in args if a is None or not a.startswith("-")]
            target = files[-1] if files else None
            if target is None and files:
                c.unknown(f"{label}: output to a file the analyser cannot name")
                out.switch(None)
            elif target is None or target in _SQLITE_STREAMS:
                out.switch(None)
            else:
                # ``--bom`` puts three bytes before the text
                out.switch(c.st.local(target), once=name == "once", known="--bom" not in args)
        elif name == "read":
            _sqlite_read(c, args, label, depth, scan)
            out.formatted = True
            out.add(None)
        elif name == "testcase":
            out.switch(c.st.local("testcase-out.txt"))
        elif name in ("save", "backup", "clone", "trace", "log", "open", "session"):
            _sqlite_writes(c, name, args, label, sources)
            out.add(None)
        elif name == "load":
            c.unseen(f"{label} loads an extension library (native code)")
        elif name == "cd":
            c.unknown(f"{label}: later relative paths are not where they look")
        elif name == "archive":
            c.unknown(f"{label}: an SQL archive may create or extract files")
        else:
            # any other command may print (``.dump``, ``.schema``, ``.print``) or change how
            # what follows is printed (``.mode``, ``.headers``), here or in a later file
            out.formatted = True
            out.add(None)
    statements()
    out.flush()
    if _SQLITE_RUNNING_SQL.search(code):
        c.unseen(f"{what}: SQL that loads native code or starts an editor")


def _sqlite_read(c: Cmd, args: list[str | None], label: str, depth: int, scan: Scan) -> None:
    """``.read FILE``: the file's SQL and commands run as if they stood here (scanned like
    any sqlite3 script, ``depth`` files deep)."""
    if not args:
        return
    loc = None if args[0] is None else c.st.local(args[0])
    text = None if loc is None or depth >= 8 else c.st.run.read_text(loc)
    if text is None:
        c.unseen(f"{label} runs commands from a file the analyser cannot read", loc)
        return
    scan(c, text, label, depth + 1)


def _sqlite_writes(
    c: Cmd, name: str, args: list[str | None], label: str, sources: list[Location]
) -> None:
    """A dot-command that writes the file its last argument names (``.save FILE``,
    ``.backup ?DB? FILE``, ``.clone NEWDB``, ``.trace FILE``, ``.log FILE``, ``.session ...
    changeset|patchset FILE``, ``.open --new FILE``) with data the analyser does not know."""
    files = [a for a in args if a is None or not a.startswith("-")]
    if name == "open" and "--new" not in args:
        return
    if name == "session" and not any(a in ("changeset", "patchset") for a in files):
        return
    if not files or (name in ("trace", "log") and files[-1] in _SQLITE_STREAMS):
        return
    target = files[-1]
    if target is None:
        c.unknown(f"{label} writes a file the analyser cannot name")
        return
    write_data(c, c.st.local(target), None, sources, label)


def _sqlite_shell(c: Cmd, text: str, what: str) -> None:
    """A command sqlite3 hands to the system shell: analysed, and unseen (see above)."""
    run_shell(c, text, what)
    c.unseen(f"{what} runs a command in the system shell ({short(text.strip())})")


__all__ = [
    "Scan",
    "sqlite_command",
    "sqlite_commands",
    "sqlite_script",
    "write_data",
]
