"""What a tool's exclusion filter leaves out, decided on the real tree.

``tar --exclude``, ``zip -x``/``-i`` and ``rsync --exclude``/``--include``/``--filter`` name the
files a copy leaves out by pattern, and each tool matches a pattern against a name its own way:

* GNU tar tries the whole name and every tail of it after a slash, lets ``*``, ``?`` and
  ``[...]`` cross slashes, and a pattern that matches a leading folder of the name matches the
  name (``data`` leaves out ``top/data/x``).
* zip matches the whole stored name (no leading ``/`` or ``./``), ``*`` crossing slashes.
* rsync matches the last component of the name unless the pattern holds a slash or ``**``, then
  the last as many components as the pattern has; a leading ``/`` anchors it at the root of the
  transfer, a trailing ``/`` makes it match folders only; ``*`` stays within a component and
  ``**`` does not. The first rule that matches decides, so an include before an exclude wins.

A filter is read into a predicate over the names the tool gives (``drop(name, is_dir)``), and
:func:`walk` goes down the real tree below a source, as the tool will, keeping what the
predicate keeps: a folder nothing is left out of stays one piece, taken whole.

Everything is conservative. A pattern whose syntax is not modelled (``[[:alpha:]]``, rsync merge
rules, tar's matching options) makes the whole filter unknown and the caller takes the source
whole, as before; so does a tree too big to walk, or one into which this command line copied data
or made links before the tool runs. Patterns are matched by simulating their automaton, in time
linear in the name: they come from the agent, and a backtracking matcher can be made to take
exponential time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from guard.shell.record import Run
from guard.types import Location

__all__ = [
    "MAX_ENTRIES",
    "Drop",
    "Glob",
    "Piece",
    "RsyncRules",
    "changed_below",
    "compile_glob",
    "kept",
    "tar_filter",
    "walk",
    "zip_filter",
    "zip_name",
]

Drop = Callable[[str, bool], bool]
"""``drop(name, is_dir)``: true when the tool leaves the entry so named out."""

MAX_ENTRIES = 4096  # directory entries one walk may look at
MAX_PIECES = 256  # pieces one source may be cut into
MAX_PATTERNS = 256  # patterns one filter may hold


# ---------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "c" a character, "?" any one, "[" a set, "*" any run
    char: str = ""
    chars: frozenset[str] = frozenset()
    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False
    slash: bool = False  # may match "/"

    def hit(self, ch: str) -> bool:
        if ch == "/" and not self.slash and self.kind != "c":
            return False
        if self.kind == "c":
            return ch == self.char
        if self.kind in ("?", "*"):
            return True
        inside = ch in self.chars or any(lo <= ch <= hi for lo, hi in self.ranges)
        return inside != self.negated


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled shell pattern; see :func:`compile_glob`."""

    tokens: tuple[_Tok, ...]
    fold: bool = False

    def match(self, text: str, *, leading_dir: bool = False) -> bool:
        """Whether the pattern matches all of ``text`` (or, with ``leading_dir``, a part of it
        that ends just before a ``/``, as ``fnmatch``'s ``FNM_LEADING_DIR``)."""
        if self.fold:
            text = text.lower()
        toks = self.tokens
        end = len(toks)
        states = self._close({0})
        for ch in text:
            if leading_dir and ch == "/" and end in states:
                return True
            nxt: set[int] = set()
            for s in states:
                if s == end:
                    continue
                t = toks[s]
                if t.hit(ch):
                    nxt.add(s if t.kind == "*" else s + 1)
            if not nxt:
                return False
            states = self._close(nxt)
        return end in states

    def _close(self, states: set[int]) -> set[int]:
        toks = self.tokens
        out = set(states)
        for s in states:
            while s < len(toks) and toks[s].kind == "*":
                s += 1
                out.add(s)
        return out


class _Unsupported(Exception):
    """Pattern syntax this module does not model."""


def compile_glob(
    pattern: str,
    *,
    slash: bool,
    double: bool = False,
    fold: bool = False,
    caret: bool = True,
    escapes: bool = True,
) -> Glob | None:
    """A shell pattern (``*``, ``?``, ``[...]``, backslash escapes) as a :class:`Glob`.

    Args:
        pattern: The pattern.
        slash: Whether ``*``, ``?`` and ``[...]`` match ``/``.
        double: Whether ``**`` matches ``/`` even where ``*`` does not (rsync).
        fold: Match without regard to case.
        caret: Whether ``[^...]`` negates a set, as ``[!...]`` does.
        escapes: Whether a backslash quotes the next character.

    Returns:
        The pattern, or ``None`` for syntax this module does not model (character classes such
        as ``[[:alpha:]]``, a trailing backslash): the caller must then treat it as unknown.
    """
    if fold:
        pattern = pattern.lower()
    toks: list[_Tok] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            toks.append(_Tok("*", slash=slash or (double and j - i >= 2)))
            i = j
        elif ch == "?":
            toks.append(_Tok("?", slash=slash))
            i += 1
        elif ch == "[":
            try:
                got = _bracket(pattern, i, slash=slash, caret=caret, escapes=escapes)
            except _Unsupported:
                return None
            if got is None:
                toks.append(_Tok("c", char="["))
                i += 1
            else:
                toks.append(got[0])
                i = got[1]
        elif ch == "\\" and escapes:
            if i + 1 >= n:
                return None
            toks.append(_Tok("c", char=pattern[i + 1]))
            i += 2
        else:
            toks.append(_Tok("c", char=ch))
            i += 1
    return Glob(tuple(toks), fold)


def _bracket(p: str, i: int, *, slash: bool, caret: bool, escapes: bool) -> tuple[_Tok, int] | None:
    """The set that starts at ``p[i] == "["``, with the index after it; ``None`` when it is not
    closed (the ``[`` is then an ordinary character).

    Raises:
        _Unsupported: Syntax not modelled (character classes, a caret the tool may not read).
    """
    n = len(p)
    j = i + 1
    negated = False
    if j < n and (p[j] == "!" or (p[j] == "^" and caret)):
        negated = True
        j += 1
    elif j < n and p[j] == "^":
        raise _Unsupported  # a tool that may or may not read it as a negation
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    first = True
    while j < n:
        c = p[j]
        if c == "]" and not first:
            tok = _Tok(
                "[",
                chars=frozenset(chars),
                ranges=tuple(ranges),
                negated=negated,
                slash=slash,
            )
            return tok, j + 1
        first = False
        if c == "[" and j + 1 < n and p[j + 1] in ":=.":
            raise _Unsupported
        if c == "\\" and escapes:
            if j + 1 >= n:
                raise _Unsupported
            j += 1
            c = p[j]
        if j + 2 < n and p[j + 1] == "-" and p[j + 2] != "]":
            hi = p[j + 2]
            if hi in "\\[":
                raise _Unsupported
            ranges.append((c, hi))
            j += 3
            continue
        chars.add(c)
        j += 1
    return None


# ---------------------------------------------------------------------- tar


def _tails(name: str) -> Iterator[str]:
    """The name and every tail of it after a slash (not after a doubled one), as GNU tar tries."""
    yield name
    for i, ch in enumerate(name):
        if ch == "/" and i + 1 < len(name) and name[i + 1] != "/":
            yield name[i + 1 :]


def tar_filter(patterns: list[str]) -> Drop | None:
    """GNU tar's ``--exclude`` with its defaults (wildcards that cross slashes, unanchored,
    case-sensitive); ``None`` when a pattern cannot be read."""
    if len(patterns) > MAX_PATTERNS:
        return None
    globs: list[Glob] = []
    for p in patterns:
        g = compile_glob(p, slash=True)
        if g is None:
            return None
        globs.append(g)

    def drop(name: str, is_dir: bool) -> bool:
        return any(g.match(tail, leading_dir=True) for tail in _tails(name) for g in globs)

    return drop


# ---------------------------------------------------------------------- zip


def zip_name(value: str) -> str | None:
    """The name zip stores for a path given on its command line (``None``: not modelled)."""
    name = value.lstrip("/")
    while name.startswith("./"):
        name = name[2:].lstrip("/")
    name = name.rstrip("/")
    if name in ("", "."):
        return ""
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return name


def zip_filter(excludes: list[str], includes: list[str]) -> Drop | None:
    """zip's ``-x`` and ``-i`` lists: whole-name patterns whose wildcards cross slashes.

    A folder's own entry carries no data, so only files are ever left out (zip goes on into a
    folder whose entry a pattern leaves out).
    """
    if len(excludes) + len(includes) > MAX_PATTERNS:
        return None
    ex = [compile_glob(p, slash=True, caret=False) for p in excludes]
    inc = [compile_glob(p, slash=True, caret=False) for p in includes]
    if any(g is None for g in ex) or any(g is None for g in inc):
        return None
    ex_globs = [g for g in ex if g is not None]
    inc_globs = [g for g in inc if g is not None]

    def drop(name: str, is_dir: bool) -> bool:
        if is_dir:
            return False
        if any(g.match(name) for g in ex_globs):
            return True
        return bool(inc_globs) and not any(g.match(name) for g in inc_globs)

    return drop


# -------------------------------------------------------------------- rsync


@dataclass(frozen=True, slots=True)
class _Rule:
    include: bool
    glob: Glob
    anchored: bool
    dir_only: bool
    slashes: int
    wild2: bool
    wild2_prefix: bool
    wild3_suffix: bool
    negate: bool

    def matches(self, name: str, is_dir: bool) -> bool:
        """rsync's ``rule_matches`` for a name relative to the root of the transfer."""
        if self.dir_only and not is_dir:
            return self.negate
        if not self.slashes and not self.wild2:
            name = name.rsplit("/", 1)[-1]
        text = ("/" + name if self.wild2_prefix else name) + (
            "/" if is_dir and self.wild3_suffix else ""
        )
        if not self.anchored and self.slashes and not self.wild2:
            tail = _last_parts(text, self.slashes + 1)
            hit = tail is not None and self.glob.match(tail)
        elif not self.anchored and not self.wild2_prefix and self.wild2:
            hit = any(self.glob.match(t) for t in _after_slashes(text))
        else:
            hit = self.glob.match(text)
        return hit != self.negate


def _last_parts(text: str, count: int) -> str | None:
    cut = len(text)
    for _ in range(count - 1):
        cut = text.rfind("/", 0, cut)
        if cut < 0:
            return None
    start = text.rfind("/", 0, cut)
    return text[start + 1 :]


def _after_slashes(text: str) -> Iterator[str]:
    yield text
    for i, ch in enumerate(text):
        if ch == "/":
            yield text[i + 1 :]


_FILTER_RULE = re.compile(
    r"(exclude|include|hide|show|protect|risk|merge|dir-merge|clear|[-+HSPR.:!])"
    r"(?:,?([^ _]*))?(?:[ _](.*))?",
    re.S,
)
_EXCLUDING = frozenset(("exclude", "-", "hide", "H"))
_INCLUDING = frozenset(("include", "+", "show", "S"))
_RECEIVER_ONLY = frozenset(("protect", "P", "risk", "R"))


class RsyncRules:
    """rsync's filter list, built in command-line order; :attr:`known` goes false for good as
    soon as one rule cannot be read."""

    def __init__(self) -> None:
        self.rules: list[_Rule] = []
        self.known = True

    def add_exclude(self, text: str, *, include: bool = False) -> None:
        """``--exclude TEXT`` (or ``--include``): a pattern, ``+ ``/``- `` prefixed, or ``!``."""
        if text == "!":
            self.rules.clear()
        elif text.startswith(("- ", "+ ")):
            self._add(text[2:], include=text[0] == "+")
        else:
            self._add(text, include=include)

    def add_lines(self, text: str, *, include: bool = False) -> None:
        """The lines of an ``--exclude-from``/``--include-from`` file."""
        for line in text.split("\n"):
            if not line or line[0] in ";#":
                continue
            if "\r" in line:
                self.known = False
                return
            self.add_exclude(line, include=include)

    def add_filter(self, text: str) -> None:
        """``--filter RULE``: a rule name (long or one letter), modifiers, then the pattern."""
        m = _FILTER_RULE.fullmatch(text)
        if m is None:
            self.known = False
            return
        kind, mods, pattern = m.group(1), m.group(2) or "", m.group(3)
        if kind in ("clear", "!"):
            if pattern or mods:
                self.known = False
            else:
                self.rules.clear()
            return
        if kind not in _EXCLUDING and kind not in _INCLUDING and kind not in _RECEIVER_ONLY:
            self.known = False  # merge and dir-merge rules read more rules from files
            return
        negate = False
        skip = kind in _RECEIVER_ONLY  # rules for the receiving side choose nothing sent
        for ch in mods:
            if ch == "!":
                negate = True
            elif ch in "rx":
                skip = True  # receiver-only, or about extended attributes
            elif ch not in "sp":
                self.known = False
                return
        if not pattern:
            self.known = False
            return
        if not skip:
            self._add(pattern, include=kind in _INCLUDING, negate=negate)

    def _add(self, pattern: str, *, include: bool, negate: bool = False) -> None:
        if not self.known:
            return
        if len(self.rules) >= MAX_PATTERNS or "\\" in pattern or not pattern:
            self.known = False
            return
        dir_only = len(pattern) > 1 and pattern.endswith("/")
        if dir_only:
            pattern = pattern[:-1]
        wild = any(c in pattern for c in "*?[")
        wild2 = wild and "**" in pattern
        anchored = pattern.startswith("/")
        glob = compile_glob(pattern[1:] if anchored else pattern, slash=False, double=True)
        if glob is None:
            self.known = False
            return
        self.rules.append(
            _Rule(
                include=include,
                glob=glob,
                anchored=anchored,
                dir_only=dir_only,
                slashes=pattern.count("/"),
                wild2=wild2,
                wild2_prefix=wild2 and pattern.startswith("**"),
                wild3_suffix=wild2 and pattern.endswith("***"),
                negate=negate,
            )
        )

    def drop(self) -> Drop | None:
        """The filter as a predicate; ``None`` when it is unknown or holds no rule."""
        if not self.known or not self.rules:
            return None
        rules = tuple(self.rules)

        def drop(name: str, is_dir: bool) -> bool:
            for r in rules:
                if r.matches(name, is_dir):
                    return not r.include
            return False

        return drop


# --------------------------------------------------------------------- walk


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a source that a filtered copy takes.

    Attributes:
        path: The absolute path on disk.
        rel: The path below the source (``""``: the source itself).
        whole: A folder taken with everything below it (or a link, taken as what it points to).
    """

    path: str
    rel: str
    whole: bool


def changed_below(run: Run, root: str) -> bool:
    """True when this command line copied data or made links at or below ``root``: the tree on
    disk is not the tree the tool will see."""
    prefix = root.rstrip("/") + "/"
    return any(p == root or p.startswith(prefix) for p in (*run.derived, *run.links))


def walk(
    run: Run,
    root: str,
    name: str,
    drop: Drop,
    *,
    check_root: bool = True,
    follow_links: bool = False,
) -> list[Piece] | None:
    """The parts of the file or folder ``root`` that a copy filtered by ``drop`` takes.

    Args:
        run: The analysis (its bounds, and what this command line changed).
        root: The absolute, resolved path of the source.
        name: The tool's name for the source; names below it are ``name/child``.
        drop: The filter.
        check_root: Whether the source itself is matched (not for rsync's ``dir/``).
        follow_links: The tool stores what a link points to and matches the names below it
            one by one (zip): a link is then never left out by its own name.

    Returns:
        ``[Piece(root, "", ...)]`` when nothing is left out, the pieces kept otherwise (possibly
        none), or ``None`` when the guard cannot tell: the caller then takes the source whole.
    """
    if changed_below(run, root):
        return None
    is_dir = run.isdir(root)
    if check_root and drop(name, is_dir):
        return []
    if not is_dir:
        return [Piece(root, "", False)]
    budget = [MAX_ENTRIES]
    got = _walk_dir(root, "", name, drop, budget, follow_links)
    if got is None:
        return None
    kept_all, pieces = got
    if kept_all:
        return [Piece(root, "", True)]
    return pieces if len(pieces) <= MAX_PIECES else None


def _walk_dir(
    path: str, rel: str, name: str, drop: Drop, budget: list[int], follow_links: bool
) -> tuple[bool, list[Piece]] | None:
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (OSError, ValueError):
        return None
    budget[0] -= len(entries)
    if budget[0] < 0:
        return None
    kept_all = True
    pieces: list[Piece] = []
    for e in entries:
        crel = f"{rel}/{e.name}" if rel else e.name
        cname = f"{name}/{e.name}" if name else e.name
        try:
            link = e.is_symlink()
            is_dir = not link and e.is_dir(follow_symlinks=False)
        except OSError:
            return None
        if not (link and follow_links) and drop(cname, is_dir):
            kept_all = False
            continue
        if not is_dir:
            pieces.append(Piece(e.path, crel, link))
            continue
        sub = _walk_dir(e.path, crel, cname, drop, budget, follow_links)
        if sub is None:
            return None
        if sub[0]:
            pieces.append(Piece(e.path, crel, True))
        else:
            kept_all = False
            pieces.extend(sub[1])
        if len(pieces) > MAX_PIECES:
            return None
    return kept_all, pieces


def kept(
    run: Run,
    loc: Location,
    name: str | None,
    drop: Drop | None,
    *,
    check_root: bool = True,
    follow_links: bool = False,
) -> list[tuple[Location, str, bool]] | None:
    """What a filtered copy of ``loc`` takes: ``(place, path below loc, taken whole)`` each.

    ``None`` (take ``loc`` whole, as an unfiltered copy) when there is no filter, the tool's
    name for the source is not known, the place cannot be seen, or :func:`walk` cannot tell.
    """
    if drop is None or name is None or loc.path is None or not loc.visible:
        return None
    pieces = walk(run, loc.path, name, drop, check_root=check_root, follow_links=follow_links)
    if pieces is None:
        return None
    base = loc.raw.rstrip("/") or loc.raw
    return [
        (loc, "", p.whole) if not p.rel else (run.at(p.path, f"{base}/{p.rel}"), p.rel, p.whole)
        for p in pieces
    ]
