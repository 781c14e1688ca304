"""What code does with files, shared by the Python reader and the scanners of other
languages: the string literals and bare paths code names, which of them exist or could be
created, what code that writes or sends may do with each, data passed through from standard
input, and shell text code runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from guard.shell.core import Cmd
from guard.shell.words import Flow
from guard.types import EffectKind, Location


def may_send(c: Cmd, loc: Location, what: str, host: str | None, recursive: bool) -> None:
    """Code that uses the network and names ``loc`` may send it anywhere."""
    dest = Location(raw=host or "<network>", path=None, host=host, visible=False)
    c.emit(
        EffectKind.TRANSFER,
        loc,
        dest,
        recursive=recursive,
        certain=False,
        note=f"{what}: code that uses the network mentions this path",
    )


def may_write(c: Cmd, loc: Location, what: str, recursive: bool) -> None:
    """Code that writes files and names ``loc`` may copy it anywhere."""
    c.emit(
        EffectKind.COPY,
        loc,
        Location(raw=f"<{what} output>", path=None),
        recursive=recursive,
        certain=False,
        note=f"{what}: code that writes files mentions this path",
    )


def new_files(c: Cmd, strings: Iterable[str]) -> list[Location]:
    """Paths among ``strings`` that do not exist yet but could be created: a relative or
    absolute path with a slash, in a folder that exists. Code that writes may create them."""
    found: dict[str, Location] = {}
    for s in strings:
        if not s or "/" not in s or len(s) > 4096 or "\n" in s or "\0" in s or "://" in s:
            continue
        loc = c.st.local(s)
        p = loc.path
        if p is None or p in found or c.st.run.exists(p):
            continue
        if c.st.run.isdir(os.path.dirname(p) or "."):
            found[p] = loc
        if len(found) >= 64:
            break
    return list(found.values())


def _existing(c: Cmd, value: str) -> Location | None:
    if not value or len(value) > 4096 or "\n" in value or "\0" in value:
        return None
    loc = c.st.local(value)
    if loc.path is not None and c.st.run.exists(loc.path):
        return loc
    return None


def url_host(strings: list[str]) -> str | None:
    for s in strings:
        m = _URL.match(s)
        if m:
            return m.group(2)
    return None


def run_shell(c: Cmd, text: str, what: str) -> None:
    st = c.st
    sub = st.new_shell(
        cwd=st.cwd, home=st.home, host=st.host, stdin=(), variables=st.env_vars(), pos=[]
    )
    if sub is not None:
        sub.run_text(text, what=what)


def existing_files(c: Cmd, strings: Iterable[str]) -> list[Location]:
    """The existing files among ``strings``, each once, in the order first named."""
    found: dict[str, Location] = {}
    for s in strings:
        loc = _existing(c, s)
        if loc is not None and loc.path is not None:
            found.setdefault(loc.path, loc)
    return list(found.values())


def passed_through(c: Cmd, seen: set[str | None]) -> list[Flow]:
    """What an interpreter reads on standard input may come out on its standard output: the
    analyser cannot follow data through code (``print <STDIN>``, ``stdin.pipe(stdout)``)."""
    return [
        Flow(src=fl.src, exact=False, via=c.name)
        for fl in c.stdin
        if fl.src is not None and not fl.names and (fl.src.path is None or fl.src.path not in seen)
    ]


_URL = re.compile(r"^(?:https?|ftp|sftp|scp|s3|gs|wss?)://([^/:@]+@)?([^/:]+)")


_QUOTED = re.compile(r"'((?:[^'\\\n]|\\.){1,4096})'|\"((?:[^\"\\\n]|\\.){1,4096})\"")


def _literals(code: str) -> Iterator[str]:
    for m in _QUOTED.finditer(code):
        s = m.group(1) if m.group(1) is not None else m.group(2)
        yield s.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    # Tcl, Lua long strings, R and SQL scripts name files in bare words too: any word with a
    # slash is a candidate (only those that exist count, see _existing).
    for i, m in enumerate(_BARE_PATH.finditer(code)):
        if i >= 1000:
            break
        yield m.group()


_BARE_PATH = re.compile(r"[\w.~-]*/[\w./~-]+")


def mentioned_files(c: Cmd, code: str) -> list[Location]:
    """The existing files that ``code`` names in a string or a bare word with a slash."""
    return existing_files(c, _literals(code[: 1 << 20]))


__all__ = [
    "existing_files",
    "may_send",
    "may_write",
    "mentioned_files",
    "new_files",
    "passed_through",
    "run_shell",
    "url_host",
]
