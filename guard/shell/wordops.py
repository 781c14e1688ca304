"""Operations on words once expanded, as bash does them: ``${X#pattern}`` and kin cut with
bash's glob patterns, IFS field splitting, case-insensitive matching, ``~`` after ``:`` in
assignments, arithmetic on literal text, and double-quote unescaping.
"""

from __future__ import annotations

import ast
import functools
import re

_ARITH_OK = re.compile(r"[0-9+\-*/%() ]*")


_TILDE_AFTER_COLON = re.compile(r"(?<=:)~(?=/|:|$)")


MAX_PATTERN_TEXT = 256  # values longer than this are not cut with ${X#pattern} and kin


def unescape_dq(s: str) -> str:
    """Remove the backslashes that double quotes honour (before ``$``, `` ` ``, ``"``, ``\\``)."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] in '$`"\\\n':
            if s[i + 1] != "\n":
                out.append(s[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def glob_pattern(pat: str) -> re.Pattern[str] | None:
    """A shell pattern (``*``, ``?``, ``[...]``) as a regular expression.

    ``None`` past two ``*``: matching is tried at every cut of the value, and Python's
    backtracking makes many stars against a long value take too long to be worth it.
    """
    if pat.count("*") > 2:
        return None
    out: list[str] = []
    i = 0
    while i < len(pat):
        ch = pat[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(pat):
            out.append(re.escape(pat[i + 1]))
            i += 1
        elif ch == "[":
            j = pat.find("]", i + 2)
            if j < 0:
                out.append("\\[")
            else:
                body = pat[i + 1 : j]
                neg = body[:1] in ("!", "^")
                if neg:
                    body = body[1:]
                esc = "".join("\\" + c if not c.isalnum() and c != "-" else c for c in body)
                out.append("[" + ("^" if neg else "") + esc + "]")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        return None


def arith(expr: str) -> int | None:
    """Evaluate plain integer arithmetic (what ``$((...))`` usually holds), else ``None``."""
    if len(expr) > 200 or not _ARITH_OK.fullmatch(expr):
        return None
    try:
        tree = ast.parse(expr.replace("/", "//"), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None

    def ev(n: ast.AST) -> int:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left), ev(n.right)
            if isinstance(n.op, ast.Add):
                return a + b
            if isinstance(n.op, ast.Sub):
                return a - b
            if isinstance(n.op, ast.Mult) and abs(a) < 1 << 32 and abs(b) < 1 << 32:
                return a * b
            if isinstance(n.op, ast.FloorDiv) and b:
                return int(a / b)
            if isinstance(n.op, ast.Mod) and b:
                return a - b * int(a / b)
        raise ValueError(expr)

    try:
        return ev(tree)
    except (ValueError, RecursionError):
        return None


def split_ifs(v: str, m: str, ifs: str) -> list[tuple[str, str]]:
    """Bash's field splitting on any IFS: IFS white space runs and a single other IFS
    character (with the white space around it) end a field; an empty IFS splits nothing."""
    if not ifs:
        return [(v, m)]
    ws = frozenset(c for c in ifs if c in IFS)

    def sep(i: int) -> bool:
        return m[i] == "s" and v[i] in ifs

    def space(i: int) -> bool:
        return m[i] == "s" and v[i] in ws

    words: list[tuple[str, str]] = []
    n = len(v)
    i = 0
    while i < n and space(i):
        i += 1
    start = i
    while i < n:
        if not sep(i):
            i += 1
            continue
        words.append((v[start:i], m[start:i]))
        hard = not space(i)
        i += 1
        while i < n and space(i):
            i += 1
        if not hard and i < n and sep(i):
            i += 1  # white space then one other IFS character: one separator
            while i < n and space(i):
                i += 1
        start = i
    if start < n:
        words.append((v[start:], m[start:]))
    return words


def nocase(part: str) -> str:
    """A glob component that matches letters in either case (``nocaseglob``)."""
    out: list[str] = []
    depth = 0
    for ch in part:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        if depth == 0 and ch.isalpha() and ch.lower() != ch.upper():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif depth and ch.isalpha() and ch.lower() != ch.upper():
            out.append(ch.lower() + ch.upper())
        else:
            out.append(ch)
    return "".join(out)


def tilde_after_colon(value: str, home: str) -> str:
    """``PATH=~/a:~/b``: bash expands ``~`` after every colon of an assignment."""
    return _TILDE_AFTER_COLON.sub(lambda _m: home, value)


def strip_pattern(text: str, pat: re.Pattern[str], op: str) -> str:
    n = len(text)
    if op == "#":
        for k in range(n + 1):
            if pat.fullmatch(text, 0, k):
                return text[k:]
    elif op == "##":
        for k in range(n, -1, -1):
            if pat.fullmatch(text, 0, k):
                return text[k:]
    elif op == "%":
        for k in range(n, -1, -1):
            if pat.fullmatch(text, k):
                return text[:k]
    elif op == "%%":
        for k in range(n + 1):
            if pat.fullmatch(text, k):
                return text[:k]
    return text


def _longest_prefix(text: str, pat: re.Pattern[str]) -> int | None:
    for k in range(len(text), -1, -1):
        if pat.fullmatch(text, 0, k):
            return k
    return None


def _longest_suffix_start(text: str, pat: re.Pattern[str]) -> int | None:
    for k in range(len(text) + 1):
        if pat.fullmatch(text, k):
            return k
    return None


IFS = frozenset(" \t\n")


__all__ = [
    "IFS",
    "MAX_PATTERN_TEXT",
    "arith",
    "glob_pattern",
    "nocase",
    "split_ifs",
    "strip_pattern",
    "tilde_after_colon",
    "unescape_dq",
]
