"""Simulating ``sed -i`` scripts, so a config edit can be judged by the text it leaves behind.

The engine asks "what would this file say after the edit?" and decides on the answer, so a wrong
answer is worse than none: every construct this module is not sure to reproduce exactly (hold
space, branches, alternation, back-references inside a pattern, GNU escapes such as ``\\d065``)
makes :func:`apply_sed` return ``None``, and the engine then assumes the worst.

Regular expressions are translated from POSIX (basic or extended) to Python's :mod:`re`. Python
backtracks where POSIX takes the leftmost-longest match; the two agree for patterns without
alternation and without quantified groups, which is why those are refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from guard.shell.sedregex import Unsupported, bracket, compile_regex, ere_to_bre, quantifiers

__all__ = ["apply_sed", "ere_script_to_bre", "perl_subst_to_sed"]

# Lines longer than this are not searched with patterns of several quantifiers: Python's
# backtracking makes `a*a*a*b` on a long line of `a` take effectively forever.
_MAX_LINE_RISKY = 2000

# Scripts and files larger than this are not simulated: the answer would come too late to help.
_MAX_SCRIPT = 64 * 1024
_MAX_TEXT = 8 * 1024 * 1024


@dataclass
class _Addr:
    kind: str  # "line", "last", "re", "step", "plus"
    line: int = 0
    step: int = 0
    regex: re.Pattern[str] | None = None


@dataclass
class _Cmd:
    op: str
    a1: _Addr | None = None
    a2: _Addr | None = None
    neg: bool = False
    regex: re.Pattern[str] | None = None
    repl: list[str | int] = field(default_factory=list)
    nth: int = 1
    glob: bool = False
    pflag: bool = False
    text: str = ""
    ymap: dict[int, str] = field(default_factory=dict)
    # range state
    active: bool = False
    end: int = 0


@dataclass
class _Span:
    """Where a pattern sits in the script text (for dialect translation)."""

    start: int
    end: int
    delim: str


class _Parser:
    def __init__(self, script: str, *, ere: bool, compile_: bool = True) -> None:
        self.s = script
        self.i = 0
        self.ere = ere
        self.compile = compile_
        self.spans: list[_Span] = []
        self.risky = False

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def delimited(self, delim: str, *, regex: bool) -> str:
        """Read up to the next unescaped ``delim``; the delimiter escape stays in the text."""
        start = self.i
        s = self.s
        while self.i < len(s):
            ch = s[self.i]
            if ch == "\\":
                self.i += 2
                continue
            if regex and ch == "[":
                # the delimiter does not end a pattern inside a bracket expression
                j = self.i + 1
                if j < len(s) and s[j] == "^":
                    j += 1
                if j < len(s) and s[j] == "]":
                    j += 1
                while j < len(s) and s[j] != "]":
                    if s[j] == "[" and j + 1 < len(s) and s[j + 1] in ":.=":
                        end = s.find(s[j + 1] + "]", j + 2)
                        j = end + 2 if end >= 0 else len(s)
                    else:
                        j += 1
                if j >= len(s):
                    raise Unsupported("unterminated bracket")
                self.i = j + 1
                continue
            if ch == "\n" and delim != "\n":
                raise Unsupported("newline in a pattern")
            if ch == delim:
                text = s[start : self.i]
                if regex:
                    self.spans.append(_Span(start, self.i, delim))
                self.i += 1
                return text
            self.i += 1
        raise Unsupported("unterminated command")

    def regex(self, delim: str, icase: bool = False) -> re.Pattern[str] | None:
        raw = self.delimited(delim, regex=True)
        if raw == "":
            raise Unsupported("empty pattern (reuses the last one)")
        if not self.compile:
            return None
        pat = compile_regex(raw, ere=self.ere, delim=delim, icase=icase)
        if quantifiers(pat) > 1:
            self.risky = True
        return pat

    def number(self) -> int:
        m = re.compile(r"\d+").match(self.s, self.i)
        if not m:
            raise Unsupported("number expected")
        self.i = m.end()
        return int(m.group())

    def address(self) -> _Addr | None:
        ch = self.peek()
        if ch.isdigit():
            n = self.number()
            if self.peek() == "~":
                self.i += 1
                return _Addr("step", line=n, step=self.number())
            if n == 0:
                raise Unsupported("address 0")
            return _Addr("line", line=n)
        if ch == "$":
            self.i += 1
            return _Addr("last")
        if ch in ("/", "\\"):
            if ch == "\\":
                self.i += 1
                delim = self.peek()
                if not delim or delim in "\n\\":
                    raise Unsupported("bad delimiter")
            else:
                delim = "/"
            self.i += 1
            # flags after a pattern address: I (ignore case) is fine, M is not reproduced
            start = self.i
            self.delimited(delim, regex=True)
            icase = False
            while self.peek() in ("I", "M"):
                if self.peek() == "M":
                    raise Unsupported("multiline address")
                icase = True
                self.i += 1
            end = self.i
            self.i = start
            pat = self.regex(delim, icase)
            self.i = end
            return _Addr("re", regex=pat)
        return None

    def text_arg(self) -> str:
        """The text of ``a``, ``i`` and ``c``, in both the one-line and the classic form.

        As GNU sed reads it: ``\\n``, ``\\t``, ``\\a``, ``\\f``, ``\\v`` and ``\\r`` are
        those characters, a backslash before a newline continues the text on the next line,
        and one before any other character stands for that character. Forms whose output
        GNU sed makes otherwise (numeric and control escapes, a text that ends the script
        in a backslash, whitespace kept by a leading backslash) are not reproduced.
        """
        self.skip_ws()
        s = self.s
        if self.peek() == "\\":
            self.i += 1
            if self.peek() == "\n":
                self.i += 1
            elif self.peek() in (" ", "\t"):
                raise Unsupported("a/i/c text with leading whitespace kept")
        if self.i >= len(s):
            raise Unsupported("a/i/c without text")
        out: list[str] = []
        while self.i < len(s):
            ch = s[self.i]
            if ch == "\\":
                if self.i + 1 >= len(s):
                    raise Unsupported("a/i/c text ending in a backslash")
                nxt = s[self.i + 1]
                if nxt in "cdox":
                    raise Unsupported(f"a/i/c text escape \\{nxt}")
                out.append(_TEXT_ESCAPES.get(nxt, nxt))
                self.i += 2
                continue
            if ch == "\n":
                self.i += 1
                break
            out.append(ch)
            self.i += 1
        return "".join(out)

    def replacement(self, delim: str) -> list[str | int]:
        raw = self.delimited(delim, regex=False)
        parts: list[str | int] = []
        buf: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                d = raw[i + 1]
                i += 2
                if d.isdigit():
                    parts.append("".join(buf))
                    buf = []
                    parts.append(int(d))
                elif d == "n":
                    buf.append("\n")
                elif d == "t":
                    buf.append("\t")
                elif d in "LUluE":
                    raise Unsupported("case conversion in a replacement")
                elif d.isalnum():
                    raise Unsupported(f"escape \\{d} in a replacement")
                else:
                    buf.append(d)
                continue
            if ch == "&":
                parts.append("".join(buf))
                buf = []
                parts.append(0)
            else:
                buf.append(ch)
            i += 1
        parts.append("".join(buf))
        return [p for p in parts if p != ""]

    def end_of_command(self) -> None:
        self.skip_ws()
        ch = self.peek()
        if ch in ("", "\n", ";"):
            if ch:
                self.i += 1
            return
        if ch == "#":
            nl = self.s.find("\n", self.i)
            self.i = len(self.s) if nl < 0 else nl + 1
            return
        raise Unsupported(f"unexpected {ch!r} after a command")

    def parse(self) -> list[_Cmd]:
        cmds: list[_Cmd] = []
        s = self.s
        if s.startswith("#n\n") or s == "#n":
            raise Unsupported("#n turns off printing")
        while True:
            while self.i < len(s) and s[self.i] in " \t\n;":
                self.i += 1
            if self.i >= len(s):
                return cmds
            if s[self.i] == "#":
                nl = s.find("\n", self.i)
                self.i = len(s) if nl < 0 else nl + 1
                continue
            a1 = self.address()
            a2 = None
            if a1 is not None and self.peek() == ",":
                self.i += 1
                self.skip_ws()
                if self.peek() == "+":
                    self.i += 1
                    a2 = _Addr("plus", line=self.number())
                elif self.peek() == "~":
                    raise Unsupported("addr,~N")
                else:
                    a2 = self.address()
                    if a2 is None or a2.kind == "step":
                        raise Unsupported("bad second address")
            self.skip_ws()
            neg = False
            while self.peek() == "!":
                neg = not neg
                self.i += 1
                self.skip_ws()
            op = self.peek()
            self.i += 1
            cmd = _Cmd(op=op, a1=a1, a2=a2, neg=neg)
            if op == "s":
                delim = self.peek()
                if not delim or delim in "\n\\":
                    raise Unsupported("bad delimiter")
                self.i += 1
                pat_start = self.i
                self.delimited(delim, regex=True)
                cmd.repl = self.replacement(delim)
                flag_start = self.i
                icase = False
                while True:
                    f = self.peek()
                    if f == "g":
                        cmd.glob = True
                    elif f == "p":
                        cmd.pflag = True
                    elif f in ("i", "I"):
                        icase = True
                    elif f.isdigit():
                        cmd.nth = self.number()
                        if cmd.nth == 0:
                            raise Unsupported("s///0")
                        continue
                    elif f in ("e", "m", "M", "w", "W"):
                        raise Unsupported(f"s flag {f}")
                    else:
                        break
                    self.i += 1
                end = self.i
                self.i = pat_start
                cmd.regex = self.regex(delim, icase)
                self.i = end
                if self.compile and cmd.regex is not None:
                    groups = cmd.regex.groups
                    if any(isinstance(p, int) and p > groups for p in cmd.repl):
                        raise Unsupported("reference to a missing group")
                del flag_start
                self.end_of_command()
            elif op == "y":
                delim = self.peek()
                if not delim or delim in "\n\\":
                    raise Unsupported("bad delimiter")
                self.i += 1
                src = _y_text(self.delimited(delim, regex=False), delim)
                dst = _y_text(self.delimited(delim, regex=False), delim)
                if len(src) != len(dst):
                    raise Unsupported("y lengths differ")
                cmd.ymap = {ord(a): b for a, b in zip(src, dst, strict=True)}
                self.end_of_command()
            elif op in ("a", "i", "c"):
                cmd.text = self.text_arg()
            elif op in ("d", "p"):
                self.end_of_command()
            elif op in ("q", "Q"):
                self.skip_ws()
                if self.peek().isdigit():
                    self.number()
                self.end_of_command()
            else:
                raise Unsupported(f"command {op!r}")
            cmds.append(cmd)


# The escapes GNU sed turns into characters in the text of a, i and c.
_TEXT_ESCAPES = {"n": "\n", "t": "\t", "a": "\a", "f": "\f", "v": "\v", "r": "\r"}


def _y_text(raw: str, delim: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            d = raw[i + 1]
            if d == "n":
                out.append("\n")
            elif d in ("\\", delim):
                out.append(d)
            else:
                raise Unsupported("escape in y")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _matches(a: _Addr, line: int, last: bool, ps: str) -> bool:
    if a.kind == "line":
        return line == a.line
    if a.kind == "last":
        return last
    if a.kind == "step":
        if a.step <= 0:
            return line == a.line
        return line >= a.line and (line - a.line) % a.step == 0
    if a.kind == "re" and a.regex is not None:
        return a.regex.search(ps) is not None
    return False


def _selected(c: _Cmd, line: int, last: bool, ps: str) -> tuple[bool, bool]:
    """Whether ``c`` applies to this line, and whether a range ends on it."""
    if c.a1 is None:
        hit, ends = True, True
    elif c.a2 is None:
        hit, ends = _matches(c.a1, line, last, ps), True
    elif not c.active:
        hit = _matches(c.a1, line, last, ps)
        ends = False
        if hit:
            c.active = True
            a2 = c.a2
            if a2.kind == "line" and a2.line <= line:
                c.active, ends = False, True
            elif a2.kind == "plus":
                c.end = line + a2.line
                if a2.line == 0:
                    c.active, ends = False, True
            elif a2.kind == "last" and last:
                c.active, ends = False, True
    else:
        hit = True
        a2 = c.a2
        if a2.kind == "line":
            ends = line >= a2.line
        elif a2.kind == "plus":
            ends = line >= c.end
        elif a2.kind == "last":
            ends = last
        else:
            ends = _matches(a2, line, last, ps)
        if ends:
            c.active = False
    if c.neg:
        return not hit, True
    return hit, ends


def _substitute(c: _Cmd, ps: str) -> tuple[str, bool]:
    pat = c.regex
    if pat is None:
        return ps, False
    res: list[str] = []
    last_copied = 0
    pos = 0
    k = 0
    prev_end = -1
    done = False
    while pos <= len(ps):
        m = pat.search(ps, pos)
        if m is None:
            break
        s, e = m.span()
        if s == e and s == prev_end:
            # sed never takes an empty match right where the previous match ended
            pos = s + 1
            continue
        k += 1
        if k >= c.nth and (c.glob or k == c.nth):
            res.append(ps[last_copied:s])
            for p in c.repl:
                res.append(p if isinstance(p, str) else (m.group(p) or ""))
            last_copied = e
            done = True
            if not c.glob:
                break
        prev_end = e
        pos = e if e > s else e + 1
    if not done:
        return ps, False
    res.append(ps[last_copied:])
    return "".join(res), True


def _run(cmds: list[_Cmd], text: str) -> str:
    lines = text.split("\n")
    trailing_nl = text.endswith("\n")
    if trailing_nl:
        lines.pop()
    if text == "":
        lines = []
    out: list[str] = []

    def emit(s: str, nl: bool = True) -> None:
        out.append(s + ("\n" if nl else ""))

    total = len(lines)
    for idx, line in enumerate(lines):
        n = idx + 1
        last = n == total
        ps = line
        appended: list[str] = []
        autoprint = True
        quit_now = False
        for c in cmds:
            hit, ends = _selected(c, n, last, ps)
            if not hit:
                continue
            if c.op == "s":
                ps, changed = _substitute(c, ps)
                if changed and c.pflag:
                    emit(ps)
            elif c.op == "y":
                ps = ps.translate(c.ymap)
            elif c.op == "d":
                autoprint = False
                break
            elif c.op == "p":
                emit(ps)
            elif c.op == "i":
                emit(c.text)
            elif c.op == "a":
                appended.append(c.text)
            elif c.op == "c":
                if c.a2 is None or ends or c.neg:
                    emit(c.text)
                autoprint = False
                break
            elif c.op == "q":
                quit_now = True
                break
            elif c.op == "Q":
                autoprint = False
                quit_now = True
                break
        if autoprint:
            emit(ps, nl=not last or trailing_nl)
        for t in appended:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            emit(t)
        if quit_now:
            break
    return "".join(out)


def apply_sed(script: str, text: str, *, extended: bool = False) -> str | None:
    """Simulate ``sed -i SCRIPT`` (several ``-e`` joined by newlines) on ``text``.

    Args:
        script: The sed script, in basic regular expression syntax unless ``extended``.
        text: The file's current content.
        extended: True for ``sed -E``/``-r`` scripts.

    Returns:
        The file's content after the edit, or ``None`` when the script uses anything this function
        does not reproduce exactly (the caller must then assume the worst).
    """
    if len(script) > _MAX_SCRIPT or len(text) > _MAX_TEXT:
        return None
    try:
        parser = _Parser(script, ere=extended)
        cmds = parser.parse()
        if parser.risky and any(len(line) > _MAX_LINE_RISKY for line in text.split("\n")):
            return None
        return _run(cmds, text)
    except (Unsupported, RecursionError, re.error):
        return None


def ere_script_to_bre(script: str) -> str | None:
    """The same script with every extended regular expression rewritten in basic syntax.

    The engine simulates scripts with :func:`apply_sed` in basic syntax, so ``sed -E`` edits are
    recorded in that form. ``None`` when the script cannot be translated faithfully.
    """
    if len(script) > _MAX_SCRIPT:
        return None
    try:
        p = _Parser(script, ere=True, compile_=False)
        p.parse()
        pieces: list[str] = []
        pos = 0
        for sp in sorted(p.spans, key=lambda x: x.start):
            if sp.start < pos:
                continue
            pieces.append(script[pos : sp.start])
            pieces.append(ere_to_bre(script[sp.start : sp.end], sp.delim))
            pos = sp.end
        pieces.append(script[pos:])
        out = "".join(pieces)
        # refuse translations that do not read back as a valid basic-syntax script
        _Parser(out, ere=False).parse()
        return out
    except (Unsupported, RecursionError, re.error):
        return None


_PERL_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


_PERL_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "s": "\\s",
    "S": "\\S",
    "w": "\\w",
    "W": "\\W",
    "b": "\\b",
}


def _perl_part(code: str, i: int, close: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(code):
        ch = code[i]
        if ch == "\\" and i + 1 < len(code):
            out.append(code[i : i + 2])
            i += 2
            continue
        if ch == close:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise Unsupported("unterminated perl substitution")


def _perl_regex_to_bre(src: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch == "\\" and i + 1 < len(src):
            d = src[i + 1]
            i += 2
            if d in _PERL_ESCAPES:
                out.append(_PERL_ESCAPES[d])
            elif d in "nt":
                out.append("\\" + d)
            elif d.isalnum():
                raise Unsupported(f"perl escape \\{d}")
            elif d in "(){}+?|":
                out.append(d)
            elif d == "/":
                out.append("\\/")
            else:
                out.append("\\" + d)
            continue
        if ch == "[":
            _, j = bracket(src, i)
            out.append(src[i:j].replace("/", "\\/"))
            i = j
            continue
        if ch == "(" and src.startswith("(?", i):
            raise Unsupported("perl extended group")
        if ch in "*+?}" and src.startswith("?", i + 1):
            raise Unsupported("lazy quantifier")
        if ch in "(){}+?|":
            out.append("\\" + ch)
        elif ch == "/":
            out.append("\\/")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _perl_repl_to_sed(src: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch == "\\" and i + 1 < len(src):
            d = src[i + 1]
            if d.isdigit() or d in "nt\\/":
                out.append("\\" + d)
            elif d.isalnum():
                raise Unsupported(f"perl escape \\{d}")
            else:
                out.append("\\" + d if d == "&" else d)
            i += 2
            continue
        if ch == "$":
            m = re.compile(r"\$(?:(\d)|\{(\d)\}|(&))").match(src, i)
            if not m:
                raise Unsupported("perl variable in a replacement")
            out.append("&" if m.group(3) else "\\" + (m.group(1) or m.group(2)))
            i = m.end()
            continue
        if ch == "@":
            raise Unsupported("perl array in a replacement")
        if ch == "&":
            out.append("\\&")
        elif ch == "/":
            out.append("\\/")
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def perl_subst_to_sed(code: str) -> str | None:
    """A sed script equivalent to perl code that is one plain ``s/RE/REPL/FLAGS``, else ``None``."""
    code = code.strip()
    if code.endswith(";"):
        code = code[:-1].rstrip()
    if len(code) > _MAX_SCRIPT or not code.startswith("s") or len(code) < 4:
        return None
    try:
        delim = code[1]
        if delim.isalnum() or delim.isspace() or delim in "\\#":
            return None
        close = _PERL_PAIRS.get(delim, delim)
        regex, i = _perl_part(code, 2, close)
        if delim in _PERL_PAIRS:
            while i < len(code) and code[i].isspace():
                i += 1
            if i >= len(code) or code[i] != delim:
                return None
            i += 1
        repl, i = _perl_part(code, i, close)
        flags = code[i:]
        if not re.fullmatch(r"[gi]*", flags):
            return None
        if delim != "/" and delim not in _PERL_PAIRS:
            regex = regex.replace("\\" + delim, delim)
            repl = repl.replace("\\" + delim, delim)
        script = (
            f"s/{_perl_regex_to_bre(regex)}/{_perl_repl_to_sed(repl)}/"
            + ("g" if "g" in flags else "")
            + ("I" if "i" in flags else "")
        )
        _Parser(script, ere=False).parse()
        return script
    except (Unsupported, RecursionError, re.error, IndexError):
        return None
