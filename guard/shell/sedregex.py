"""sed's regular expressions in Python's syntax: basic and extended POSIX patterns, bracket
expressions with their classes, and the conversions between them, so that the simulator in
:mod:`guard.shell.sed` matches exactly what GNU sed would. A construct with no faithful
translation raises :class:`Unsupported` (the edit is then not simulated, never guessed).
"""

from __future__ import annotations

import re

from guard.exceptions import GuardError
from guard.shell.words import POSIX_CLASSES

_QUANT = re.compile(r"(?<!\\)[*+?]|(?<!\\)\{\d")


_POSIX_CLASSES = POSIX_CLASSES


class Unsupported(GuardError):
    """The script uses something this module does not reproduce exactly."""


def _esc_class_char(ch: str) -> str:
    return "\\" + ch if not ch.isalnum() else ch


def bracket(src: str, i: int) -> tuple[str, int]:
    """Translate the POSIX bracket expression starting at ``src[i] == '['``.

    Returns the Python class and the index after the closing ``]``. Every literal is escaped so
    that Python never sees a nested set or a set operation (which it warns about).
    """
    j = i + 1
    out = ["["]
    if j < len(src) and src[j] == "^":
        out.append("^")
        j += 1
    first = True
    items: list[str] = []
    while j < len(src):
        ch = src[j]
        if ch == "]" and not first:
            break
        first = False
        if ch == "[" and j + 1 < len(src) and src[j + 1] in ":=.":
            kind = src[j + 1]
            end = src.find(kind + "]", j + 2)
            if end < 0:
                raise Unsupported("unterminated class")
            name = src[j + 2 : end]
            if kind != ":" or name not in _POSIX_CLASSES:
                raise Unsupported("collating element or unknown class")
            items.append(_POSIX_CLASSES[name])
            j = end + 2
            continue
        if ch == "\\" and j + 1 < len(src) and src[j + 1] in "nt\\]":
            lit = {"n": "\n", "t": "\t", "\\": "\\", "]": "]"}[src[j + 1]]
            if lit == "]":
                # GNU reads "\]" inside a bracket as a backslash followed by the closing bracket.
                items.append("\\\\")
                j += 1
                break
            j += 2
        else:
            lit = ch
            j += 1
        if j + 1 < len(src) and src[j] == "-" and src[j + 1] != "]":
            hi = src[j + 1]
            if hi == "[":
                raise Unsupported("range ending in a class")
            if ord(hi) < ord(lit):
                raise Unsupported("invalid range")
            items.append(_esc_class_char(lit) + "-" + _esc_class_char(hi))
            j += 2
        else:
            items.append(
                _esc_class_char(lit) if lit not in "\n\t" else ("\\n" if lit == "\n" else "\\t")
            )
    else:
        raise Unsupported("unterminated bracket expression")
    out.extend(items)
    out.append("]")
    if out == ["[", "]"] or out == ["[", "^", "]"]:
        raise Unsupported("empty bracket expression")
    return "".join(out), j + 1


def _to_python(src: str, *, ere: bool, delim: str) -> str:
    """Translate a POSIX regular expression (GNU sed dialect) to Python syntax."""
    out: list[str] = []
    i = 0
    n = len(src)
    # ``last`` is what a following quantifier would apply to: None (nothing, so a literal),
    # "atom", "group" (refused: quantified groups are where POSIX and Python part ways) or
    # "quant" (a second quantifier, which Python rejects).
    last: str | None = None
    depth = 0

    def quantifier(q: str) -> None:
        nonlocal last
        if last is None:
            out.append(re.escape(q[0]) + q[1:] if len(q) > 1 else re.escape(q))
            last = "atom"
            return
        if last != "atom":
            raise Unsupported("quantifier on a group or a quantifier")
        out.append(q)
        last = "quant"

    def interval(j: int, closer: str) -> int:
        end = src.find(closer, j)
        if end < 0:
            raise Unsupported("unterminated interval")
        body = src[j:end]
        if not re.fullmatch(r"\d+(,\d*)?|,\d+", body):
            raise Unsupported("bad interval")
        quantifier("{" + (("0" + body) if body.startswith(",") else body) + "}")
        return end + len(closer)

    while i < n:
        ch = src[i]
        if ch == "\\":
            if i + 1 >= n:
                raise Unsupported("trailing backslash")
            d = src[i + 1]
            i += 2
            if d == delim:
                out.append(re.escape(d))
                last = "atom"
            elif d in "()" and not ere:
                if d == "(":
                    out.append("(")
                    depth += 1
                    last = None
                else:
                    depth -= 1
                    if depth < 0:
                        raise Unsupported("unbalanced group")
                    out.append(")")
                    last = "group"
            elif d == "{" and not ere:
                i = interval(i, "\\}")
            elif d in "+?" and not ere:
                quantifier(d)
            elif d == "|":
                if ere:
                    out.append("\\|")
                    last = "atom"
                else:
                    raise Unsupported("alternation")
            elif d.isdigit():
                raise Unsupported("back-reference in a pattern")
            elif d == "n":
                out.append("\\n")
                last = "atom"
            elif d == "t":
                out.append("\\t")
                last = "atom"
            elif d in "wWsS":
                out.append("\\" + d)
                last = "atom"
            elif d in "bB":
                out.append("\\" + d)
                last = None
            elif d == "<":
                out.append(r"\b(?=\w)")
                last = None
            elif d == ">":
                out.append(r"\b(?<=\w)")
                last = None
            elif d == "`":
                out.append(r"\A")
                last = None
            elif d == "'":
                out.append(r"\Z")
                last = None
            elif d.isalnum():
                # GNU gives \d, \o, \x, \c, \e... meanings of their own: refuse rather than guess.
                raise Unsupported(f"escape \\{d}")
            else:
                out.append(re.escape(d))
                last = "atom"
            continue
        if ch == "[":
            cls, i = bracket(src, i)
            out.append(cls)
            last = "atom"
            continue
        i += 1
        if ch == "*":
            if last is None and (not out or out[-1] in ("(", "^")):
                out.append("\\*")
                last = "atom"
            else:
                quantifier("*")
        elif ch == "^":
            if not out or out[-1] == "(":
                out.append("^")
                last = None
            elif ere:
                raise Unsupported("anchor in the middle of a pattern")
            else:
                out.append("\\^")
                last = "atom"
        elif ch == "$":
            at_end = (
                i == n or (not ere and src.startswith("\\)", i)) or (ere and src.startswith(")", i))
            )
            if at_end:
                out.append(r"\Z")
                last = None
            elif ere:
                raise Unsupported("anchor in the middle of a pattern")
            else:
                out.append("\\$")
                last = "atom"
        elif ch == ".":
            out.append(".")
            last = "atom"
        elif ere and ch == "(":
            out.append("(")
            depth += 1
            last = None
        elif ere and ch == ")":
            depth -= 1
            if depth < 0:
                raise Unsupported("unbalanced group")
            out.append(")")
            last = "group"
        elif ere and ch in "+?":
            quantifier(ch)
        elif ere and ch == "{":
            if re.match(r"\d+(,\d*)?\}|,\d+\}", src[i:]):
                i = interval(i, "}")
            else:
                out.append("\\{")
                last = "atom"
        elif ere and ch == "|":
            raise Unsupported("alternation")
        else:
            out.append(re.escape(ch))
            last = "atom"
    if depth:
        raise Unsupported("unbalanced group")
    return "".join(out)


def compile_regex(src: str, *, ere: bool, delim: str, icase: bool) -> re.Pattern[str]:
    try:
        return re.compile(_to_python(src, ere=ere, delim=delim), re.IGNORECASE if icase else 0)
    except re.error as exc:
        raise Unsupported(f"pattern: {exc}") from exc


def quantifiers(pattern: re.Pattern[str]) -> int:
    """Roughly how many quantifiers a translated pattern has (backtracking grows with them)."""
    return len(_QUANT.findall(pattern.pattern))


def ere_to_bre(src: str, delim: str) -> str:
    out: list[str] = []
    i = 0
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n:
            d = src[i + 1]
            if d == delim:
                out.append(src[i : i + 2])
            elif d in "(){}+?|":
                out.append(d)
            else:
                out.append(src[i : i + 2])
            i += 2
            continue
        if ch == "[":
            _, j = bracket(src, i)
            out.append(src[i:j])
            i = j
            continue
        if ch in "(){}+?|":
            if ch == delim:
                raise Unsupported("delimiter that is special in BRE")
            out.append("\\" + ch)
        elif ch in "^$" and 0 < i < n - 1:
            raise Unsupported("anchor in the middle")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


__all__ = ["Unsupported", "bracket", "compile_regex", "ere_to_bre", "quantifiers"]
