"""Globs as bash expands them, over the filesystem a command line builds as it runs.

Python's :mod:`glob` lists folders as they are when the guard looks. Bash lists them when it
reaches the word: after earlier commands of the same line wrote files, made folders and links
(``ln -s DIR d; cp d/* x``). So a folder here is listed where it really leads for the running
command (through the line's links and its ``/proc/self``), with what the line made in it; a
folder of the process filesystem itself lists differently for the command than for the guard,
and is not resolved. Components are matched with bash's rules (``[[:alpha:]]``, ``[^...]``).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import time
from collections.abc import Callable

from guard.shell.record import MAX_GLOB, MAX_SCAN, Run
from guard.shell.words import POSIX_CLASSES, has_glob
from guard.types import EffectKind

__all__ = ["glob"]

_POSIX_CLASSES = {**POSIX_CLASSES, "word": "a-zA-Z0-9_"}  # bash globs know [:word:]


def glob(
    run: Run,
    pattern: str,
    place: Callable[[str], str | None],
    *,
    deep: bool = False,
    dots: bool = False,
) -> list[str] | None:
    """The names a glob ``pattern`` matches when bash reaches it, sorted; ``None`` when the
    analyser cannot tell.

    Both what is on disk and what earlier commands of this line made (files written,
    folders, symbolic and hard links) match, each folder listed where it really leads:
    ``place`` turns the pattern's text so far into the real path the command will open
    (relative text starts at its working directory; ``None``: it cannot be told). A folder
    in the process filesystem (``/proc``, ``/dev/fd``) lists differently for the command
    than for the guard, so a pattern through one is not resolved. Nor is one that looks at
    more than :data:`MAX_SCAN` entries or matches more than :data:`MAX_GLOB` names: that
    also records an unseen effect.

    Args:
        run: The analysis, with what the line made so far.
        pattern: The pattern, quoted glob characters already bracketed (``[*]``).
        place: Text of a path to its real path for the running command.
        deep: ``**`` spans folders (``shopt -s globstar``).
        dots: ``*`` matches a leading dot (``shopt -s dotglob``).
    """
    made = _made(run) if (run.overlay or run.touched or run.created or run.links) else {}
    walk = _Walk(run, place, made, dots)
    parts = [p for p in pattern.split("/") if p]
    found = ["/" if pattern.startswith("/") else ""]
    literal_end = False
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            literal_end = not has_glob(part)
            if literal_end:
                found = [_join(c, part) for c in found]
            elif deep and part == "**":
                found = [n for c in found for n in walk.below(c, dirs_only=not last)]
            else:
                match = _matcher(part)
                if match is None:
                    raise _Unplaced(part)  # a bracket bash reads in a way not modelled
                hidden = part.startswith(".") or dots
                found = [
                    _join(c, name)
                    for c in found
                    for name in walk.names(c)
                    if (hidden or name[0] != ".") and match(name)
                ]
            if len(found) > MAX_GLOB:
                raise _Bound(f"a glob matches more than {MAX_GLOB} names")
            if not found:
                return []
    except _Unplaced:
        return None
    except _Bound as exc:
        run.emit(EffectKind.UNKNOWN, certain=False, note=str(exc), via="bash", unseen=True)
        return None
    if literal_end:
        found = [c for c in found if walk.exists(c)]
    if pattern.endswith("/"):
        found = [c.rstrip("/") + "/" for c in found if walk.isdir(c)]
    return sorted(found)


def _made(run: Run) -> dict[str, dict[str, int]]:
    """What the line made so far, by folder: name to ``_FILE``, ``_DIR`` or ``_LINK``."""
    out: dict[str, dict[str, int]] = {}
    made = itertools.chain(
        ((p, _FILE) for p in run.overlay),
        ((p, _FILE) for p in run.hard),
        ((p, _FILE) for p in run.touched),
        ((p, _DIR) for p in run.created),
        ((p, _LINK) for p in run.links),
    )
    for path, code in made:
        while True:
            parent, name = os.path.split(path)
            if not name or parent == path:
                break
            names = out.setdefault(parent, {})
            known = names.get(name)
            names[name] = code if known is None else max(known, code)
            if known is not None:
                break  # its folders were recorded with it
            path, code = parent, _DIR
    return out


_FILE, _DIR, _LINK = 0, 1, 2  # what a name in a folder is, to a glob


class _Unplaced(Exception):
    """A glob passes through a place whose content the guard cannot see as the command will."""


class _Bound(Exception):
    """A glob went past one of its bounds."""


class _Walk:
    """The folders one glob lists: disk and this line's changes, through its links."""

    __slots__ = ("dots", "left", "made", "place", "run")

    def __init__(
        self,
        run: Run,
        place: Callable[[str], str | None],
        made: dict[str, dict[str, int]],
        dots: bool,
    ) -> None:
        self.run = run
        self.place = place
        self.made = made
        self.dots = dots
        self.left = MAX_SCAN

    def real(self, text: str) -> str:
        real = self.place(text or ".")
        if real is None or real == "/proc" or real.startswith("/proc/"):
            raise _Unplaced(text)
        return real

    def entries(self, text: str) -> dict[str, int]:
        """The names in folder ``text`` (nothing when it is not a folder)."""
        real = self.real(text)
        found: dict[str, int] = {}
        try:
            with os.scandir(real) as it:
                for e in it:
                    self.left -= 1
                    if self.left < 0 or time.monotonic() > self.run.deadline:
                        raise _Bound(f"a glob looks at more than {MAX_SCAN} folder entries")
                    try:
                        is_dir = e.is_dir(follow_symlinks=False)
                        code = _LINK if e.is_symlink() else (_DIR if is_dir else _FILE)
                    except OSError:
                        code = _FILE
                    found[e.name] = code
        except (OSError, ValueError):
            pass
        made = self.made.get(real)
        if made:
            found.update(made)
        return found

    def names(self, text: str) -> list[str]:
        return list(self.entries(text))

    def below(self, text: str, *, dirs_only: bool) -> list[str]:
        """``**``: ``text`` and everything below it (folders only unless the pattern ends
        there), without entering links, as bash's globstar does."""
        # `a/**/b` is also `a/b`; `a/**` is `a/` and all below it
        top = [text] if dirs_only or text in ("", "/") else [text.rstrip("/") + "/"]
        out = [] if text in ("", "/") and not dirs_only else top
        todo = [text]
        while todo:
            folder = todo.pop()
            for name, code in self.entries(folder).items():
                if name[0] == "." and not self.dots:
                    continue
                child = _join(folder, name)
                if code == _DIR:
                    todo.append(child)
                    out.append(child)
                elif not dirs_only:
                    out.append(child)
                if len(out) > MAX_GLOB:
                    raise _Bound(f"a glob matches more than {MAX_GLOB} names")
        return out

    def _made_here(self, real: str) -> int | None:
        return self.made.get(os.path.dirname(real), {}).get(os.path.basename(real))

    def exists(self, text: str) -> bool:
        """Whether the name ``text`` is there, a link to nowhere included (bash matches one,
        and writing through it makes its target)."""
        folder, name = os.path.split(text)
        if name in ("", ".", ".."):
            return self.isdir(text)
        try:
            real = self.real(folder)
        except _Unplaced:
            return True  # where it leads is not known: keep it (it resolves to nowhere known)
        if name in self.made.get(real, ()):
            return True
        try:
            os.lstat(os.path.join(real, name))
        except (OSError, ValueError):
            return False
        return True

    def isdir(self, text: str) -> bool:
        try:
            real = self.real(text)
        except _Unplaced:
            return True
        return real in self.made or self.run.isdir(real) or self._made_here(real) == _DIR


def _join(folder: str, name: str) -> str:
    if not folder:
        return name
    return folder + name if folder.endswith("/") else folder + "/" + name


@functools.lru_cache(maxsize=512)
def _matcher(part: str) -> Callable[[str], object] | None:
    """A test of one name against one component of a bash glob (``None``: one not modelled).

    Python's ``fnmatch`` is not bash's: it has no ``[[:alpha:]]`` classes and no ``[^...]``,
    so a name bash matches could be missed. Ranges are ASCII, as with bash's default
    ``globasciiranges``.
    """
    out: list[str] = []
    i, n = 0, len(part)
    while i < n:
        ch = part[i]
        i += 1
        if ch == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = _bracket_end(part, i)
            if end < 0:
                out.append("\\[")
                continue
            cls = _bracket(part[i:end])
            if cls is None:
                return None
            out.append(cls)
            i = end + 1
        else:
            out.append(re.escape(ch))
    try:
        return re.compile("(?s:" + "".join(out) + ")\\Z").match
    except re.error:
        return None


def _bracket_end(part: str, i: int) -> int:
    """The index of the ``]`` closing a bracket expression opened before ``i``; -1: none."""
    n = len(part)
    if i < n and part[i] in "!^":
        i += 1
    if i < n and part[i] == "]":
        i += 1
    while i < n and part[i] != "]":
        if part[i] == "[" and i + 1 < n and part[i + 1] in ":=.":
            end = part.find(part[i + 1] + "]", i + 2)
            if end < 0:
                return -1
            i = end + 2
        else:
            i += 1
    return i if i < n else -1


def _bracket(body: str) -> str | None:
    """A bash bracket expression's inside as a regex class (``None``: an unknown class)."""
    neg = body[:1] in ("!", "^")
    if neg:
        body = body[1:]
    items: list[str] = []
    k = 0
    while k < len(body):
        c = body[k]
        if c == "[" and k + 1 < len(body) and body[k + 1] in ":=.":
            end = body.find(body[k + 1] + "]", k + 2)
            name = body[k + 2 : end]
            if body[k + 1] == ":":
                cls = _POSIX_CLASSES.get(name)
                if cls is None:
                    return None
                items.append(cls)
            else:
                items.append(re.escape(name))
            k = end + 2
            continue
        if c == "-" and 0 < k < len(body) - 1 and body[k - 1] != "]":
            items.append("-")  # a range between the characters either side
        else:
            items.append("\\" + c if c in "\\^[]-" else c)
        k += 1
    return "[" + ("^" if neg else "") + "".join(items) + "]"
