"""Values that move through the analysis: expanded words, variables and data flows.

A *field* is one argument after bash's expansions. A *flow* is data on its way somewhere: the
content of a file (``src``), literal text the analyser knows (``text``), the names of files below a
folder (``names``, what ``find`` prints) or, with neither, data of unknown origin. Flows are what
turn ``cat w | gzip | base64 > x`` into a copy of ``w``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

from guard.types import Location

#: POSIX bracket classes (``[:alpha:]``) as the body of a Python regular-expression class, for
#: the glob matcher and the sed simulator (bash's globs also know ``[:word:]``).
POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
}


__all__ = [
    "MAX_BRACE",
    "OPAQUE",
    "POSIX_CLASSES",
    "Field",
    "Flow",
    "Var",
    "ansi_c_decode",
    "brace_expand",
    "fd_number",
    "has_glob",
    "names",
    "short",
]


def short(text: str, limit: int = 80) -> str:
    """``text`` quoted and cut for a note (an agent's command can be a megabyte long)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def has_glob(text: str) -> bool:
    """True when ``text`` holds a glob character (``*``, ``?`` or ``[``).

    Three substring scans in C; building a set of the characters of a path costs far more.
    """
    return "*" in text or "?" in text or "[" in text


def names(text: str) -> frozenset[str]:
    """A set of names written as one space-separated string (keeps long tables readable)."""
    return frozenset(text.split())


_FD_PATH = re.compile(
    r"/(?:dev/fd|proc/(?:self|thread-self|[0-9]+)(?:/task/[0-9]+)?/fd)/([0-9]{1,5})"
)
_FD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def fd_number(value: str, cwd: str | None = None) -> int | None:
    """The file descriptor a path such as ``/dev/fd/3``, ``/dev/stdin`` or ``/proc/self/fd/3`` names.

    These name whatever the *running command* has open there; the analyser must never resolve them
    through its own process (``/dev/fd/3`` is the guard's fd 3 in the guard).
    """
    if not value.startswith("/"):
        if cwd is None or ("fd" not in value and "std" not in value):
            return None
        value = cwd + "/" + value
    if "/dev/" not in value and "/proc/" not in value:
        return None
    path = "/" + "/".join(p for p in value.split("/") if p and p != ".")
    while "/../" in path or path.endswith("/.."):
        path = re.sub(r"/[^/]+/\.\.(?=/|$)", "", path, count=1) or "/"
        if path.startswith("/.."):
            path = path[3:] or "/"
    hit = _FD_NAMES.get(path)
    if hit is not None:
        return hit
    m = _FD_PATH.fullmatch(path)
    return int(m.group(1)) if m else None


# Bash would expand {1..100000} happily; the guard stops at this many words per brace expression.
MAX_BRACE = 256


@dataclass(frozen=True, slots=True)
class Flow:
    """Data flowing through a pipe, a redirect or an argument.

    Attributes:
        src: The file whose content this is (possibly transformed on the way).
        text: The exact text, when the analyser knows it (``echo``, heredocs, decoded literals).
        recursive: ``src`` is a folder taken whole (a tar stream).
        names: The data is the names of the files below ``src`` (``find`` output), not content.
        exact: The bytes are ``src``'s own, untransformed (so running them runs that file).
        decoded: The data came out of a decoder (base64, xxd -r): running it is obfuscation.
        via: The commands the data went through, ``tar|ssh``.
        limit: Only bytes ``[0, limit)`` of ``src`` went into the data (``head -c``, ``dd
            count=``), whatever it went through after; ``None``: any of its bytes.
    """

    src: Location | None = None
    text: str | None = None
    recursive: bool = False
    names: bool = False
    exact: bool = True
    decoded: bool = False
    via: str = ""
    limit: int | None = None

    def through(self, name: str, *, transform: bool = False, keep_text: bool = True) -> Flow:
        """This flow after passing through command ``name``."""
        via = f"{self.via}|{name}" if self.via else name
        return replace(
            self,
            via=via,
            exact=self.exact and not transform,
            text=self.text if keep_text and not transform else None,
        )

    @property
    def opaque(self) -> bool:
        """Data of unknown origin and content."""
        return self.src is None and self.text is None

    def first(self, count: int | None) -> Flow:
        """This data cut to its first ``count`` bytes (``head -c``); ``None`` cuts nothing.

        Only untransformed bytes of a file are a prefix of it: the first bytes of ``tac w`` or
        ``gzip -c w`` come from anywhere in ``w``, and keep only the bound they had.
        """
        if count is None or self.src is None or not self.exact or self.names:
            return self
        return replace(self, limit=count if self.limit is None else min(self.limit, count))


OPAQUE = Flow()


@dataclass(slots=True)
class Field:
    """One word after expansion.

    Attributes:
        value: The expanded text; for an unknown word, the text with the unknown parts as written.
        raw: The word as written in the command.
        known: False when part of the value could not be worked out.
        obfuscated: The value needed decoding (ANSI-C escapes, a decoded command substitution).
        dynamic: Part of the command-name position came from an expansion.
        flows: Data that went into the value (``$(cat w)``) or that reading this argument yields
            (``<(cat w)``).
        loc: A place this word stands for regardless of its text (``{}`` of ``find -exec``).
        recursive: ``loc`` is a folder taken whole.
        pipe: The word is a process substitution (``<(...)``) whose content is ``flows``.
        pieces: For an unknown word, its text in pieces, each flagged true when unknown; lets
            ``ssh``/``eval`` rebuild the script around the parts nobody can see.
    """

    value: str
    raw: str = ""
    known: bool = True
    obfuscated: bool = False
    dynamic: bool = False
    flows: tuple[Flow, ...] = ()
    loc: Location | None = None
    recursive: bool = False
    pipe: bool = False
    pieces: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Var:
    """A shell variable: known text, an array, or unknown (``text is None``) with what fed it."""

    text: str | None
    items: tuple[str, ...] | None = None
    flows: tuple[Flow, ...] = ()
    obfuscated: bool = False


_ANSI_SIMPLE = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
    "E": "\x1b",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ANSI_RE = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S
)


def ansi_c_decode(body: str) -> tuple[str, bool]:
    """Decode the inside of ``$'...'``; the flag says whether any escape was used."""
    used = False

    def sub(m: re.Match[str]) -> str:
        nonlocal used
        used = True
        e = m.group(1)
        k = e[0]
        try:
            if k == "x":
                return chr(int(e[1:], 16))
            if k in "uU":
                return chr(int(e[1:], 16))
            if k in "01234567":
                return chr(int(e, 8) & 0xFF)
            if k == "c" and len(e) == 2:
                return chr(ord(e[1]) & 0x1F)
        except (ValueError, OverflowError):
            return "\ufffd"
        return _ANSI_SIMPLE.get(k, "\\" + e)

    return _ANSI_RE.sub(sub, body), used


_SEQ_RE = re.compile(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?")


def _sequence(inner: str) -> list[str] | None:
    m = _SEQ_RE.fullmatch(inner)
    if not m:
        return None
    a, b, step_s = m.group(1), m.group(2), m.group(3)
    step = abs(int(step_s)) if step_s else 1
    step = step or 1
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        x, y = int(a), int(b)
        width = (
            max(len(a), len(b))
            if (a.lstrip("-").startswith("0") or b.lstrip("-").startswith("0"))
            else 0
        )
        rng = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
        out = []
        for k in rng:
            out.append(str(k).zfill(width) if width else str(k))
            if len(out) >= MAX_BRACE:
                break
        return out
    if a.isalpha() and b.isalpha():
        x, y = ord(a), ord(b)
        rng = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
        return [chr(k) for k in rng][:MAX_BRACE]
    return None


def brace_expand(value: str, mask: str, limit: int = MAX_BRACE) -> list[tuple[str, str]]:
    """Bash brace expansion over a word whose ``mask`` marks unquoted literal characters ``u``.

    Returns (value, mask) pairs, at most ``limit`` of them.
    """
    i = value.find("{")
    while i >= 0:
        if mask[i] == "u":
            depth = 0
            commas: list[int] = []
            j = i + 1
            close = -1
            while j < len(value):
                if mask[j] == "u":
                    c = value[j]
                    if c == "{":
                        depth += 1
                    elif c == "}":
                        if depth == 0:
                            close = j
                            break
                        depth -= 1
                    elif c == "," and depth == 0:
                        commas.append(j)
                j += 1
            if close > 0:
                pre_v, pre_m = value[:i], mask[:i]
                post_v, post_m = value[close + 1 :], mask[close + 1 :]
                alts: list[tuple[str, str]] = []
                if commas:
                    bounds = [i, *commas, close]
                    for a, b in itertools.pairwise(bounds):
                        alts.extend(brace_expand(value[a + 1 : b], mask[a + 1 : b], limit))
                        if len(alts) >= limit:
                            break
                else:
                    seq = (
                        _sequence(value[i + 1 : close])
                        if "u" * (close - i - 1) == mask[i + 1 : close]
                        else None
                    )
                    if seq is not None:
                        alts = [(s, "q" * len(s)) for s in seq]
                if alts:
                    tails = brace_expand(post_v, post_m, limit)
                    out: list[tuple[str, str]] = []
                    for av, am in alts:
                        for tv, tm in tails:
                            out.append((pre_v + av + tv, pre_m + am + tm))
                            if len(out) >= limit:
                                return out
                    return out
        i = value.find("{", i + 1)
    return [(value, mask)]
