"""awk and its kin: the files a program reads (operands, ``getline < FILE``), the files and
commands its output goes to (``print > FILE``, ``print | CMD``, ``system()``), and what its
standard output may carry.
"""

from __future__ import annotations

import re

from guard.shell.common import (
    WRITE,
    run_shell_text,
)
from guard.shell.core import Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.words import OPAQUE, Field, Flow, ansi_c_decode

_AWK_DANGER = re.compile(
    r"system\s*\(|\|\s*&|\|\s*\"|\|\s*[A-Za-z_]|\b(print|printf)\b[^;}\n]*>|\bclose\s*\("
)


# `getline [var] < FILE` in a program's skeleton (strings as S<k>): the text after the `<`. The
# variable is a name, an array element or a field; `<=` is a comparison, not a redirection.
_AWK_GETLINE_FROM = re.compile(
    r"\bgetline\b\s*(?:\$\s*(?:\w+|\([^()]*\))|[A-Za-z_]\w*(?:\s*\[[^\]]*\])?)?\s*<(?!=)"
)


# The file operand of `getline < ...` when it is one string: alone before an end of the
# expression, or in parentheses. Anything else (a variable, a concatenation) is unresolved.
_AWK_LITERAL_OPERAND = re.compile(
    r"\s*(?:S(\d+)\s*(?=[;})\n,>]|&&|\|\||[<!=]=|$)|\(\s*S(\d+)\s*\))"
)


# Tokens of an awk program: strings, regular expressions (where an operand may start), comments.
_AWK_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|/(?:[^/\\\n]|\\.)+/')


_AWK_REGEX_BEFORE = frozenset("(,{};!~&|=?:\n")


def _awk_commands(
    program: str,
) -> tuple[list[tuple[str, bool]], bool, str, list[tuple[str, bool]]]:
    """The commands an awk program runs (``system("...")``, ``print | "..."``,
    ``"..." | getline``) when they are literal strings (with whether awk prints into them),
    whether it runs one the analyser
    cannot see (built from data or variables, or a two-way ``|&`` pipe), the program with
    its strings and regular expressions blanked out, and the files ``getline [var] < FILE``
    reads (each with whether its name is a literal string; if not, the text of the
    expression)."""
    literals: list[str] = []
    out: list[str] = []  # the program with each string as S<k> and each regex as R
    pos = 0
    for m in _AWK_TOKEN.finditer(program[: 1 << 20]):
        tok = m.group()
        before = program[pos : m.start()]
        if tok.startswith("/"):
            prev = (out[-1] if out else "") + before
            if (
                prev.rstrip()[-1:] not in _AWK_REGEX_BEFORE
                and prev.strip()
                and not re.search(r"\b(?:print|printf|return|in)\s*$", prev)
            ):
                continue  # a division: keep scanning, the text stays as it is
        out.append(before)
        if tok.startswith('"'):
            out.append(f" S{len(literals)} ")
            literals.append(tok[1:-1])
        elif tok.startswith("/"):
            out.append(" R ")
        pos = m.end()
    out.append(program[pos : 1 << 20])
    skeleton = "".join(out)
    commands: list[tuple[str, bool]] = []
    # a two-way pipe, or gawk's @include and @load of code from a file or a shared library
    hidden = "|&" in skeleton.replace(" ", "") or "@include" in skeleton or "@load" in skeleton
    for m in re.finditer(r"\bsystem\s*\(([^()]*)\)|\bsystem\b", skeleton):
        arg = re.fullmatch(r"\s*S(\d+)\s*", m.group(1) or "")
        if arg is None:
            hidden = True
        else:
            commands.append((literals[int(arg.group(1))], False))
    for m in re.finditer(r"(?<![|])\|(?![|&])", skeleton):
        after = re.match(r"\s*S(\d+)\s*(?:[;}\n)]|$)", skeleton[m.end() :])
        lead = re.search(r"S(\d+)\s*$", skeleton[: m.start()])
        if after is not None:
            commands.append((literals[int(after.group(1))], True))
        elif lead is not None and re.match(r"\s*getline\b", skeleton[m.end() :]):
            commands.append((literals[int(lead.group(1))], False))
        else:
            hidden = True
    reads: list[tuple[str, bool]] = []
    for m in _AWK_GETLINE_FROM.finditer(skeleton):
        lit = _AWK_LITERAL_OPERAND.match(skeleton, m.end())
        if lit is not None:
            reads.append((literals[int(lit.group(1) or lit.group(2))], True))
        else:
            expr = re.match(r"[^;}\n]*", skeleton[m.end() :])
            text = expr.group().strip() if expr is not None else ""
            shown = re.sub(r"S(\d+)", lambda k: f'"{literals[int(k.group(1))]}"', text)
            reads.append((shown or "getline <", False))
    return commands, hidden, skeleton, reads


def _awk_getline_reads(c: Cmd, reads: list[tuple[str, bool]]) -> tuple[Flow, ...]:
    """Record the files ``getline < FILE`` reads; what it reads may be printed, so each one's
    content (changed: a line at a time, into a variable) flows to awk's output. A name the
    analyser cannot work out is an unresolved place, which may be protected."""
    out: list[Flow] = []
    for text, known in reads:
        if not known:
            f = Field(value=text, raw=text, known=False)
        else:
            name, _ = ansi_c_decode(text)
            if name == "-":
                continue  # standard input: already what awk passes on
            f = Field(value=name, raw=text)
        c.read(f)
        out.extend(c.content(f, transform=True))
    return tuple(out)


@command("awk gawk mawk nawk busybox-awk")
def _awk(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("FfvilEe", "field-separator file assign include load exec source"))
    ops = list(o.operands)
    # gawk -i inplace (the inplace library) rewrites every file operand in place; an
    # extension loaded with -l may do anything to them.
    includes = o.values("-i", "--include")
    libraries = [f for f in includes if not (f.known and f.value in ("inplace", "inplace.awk"))]
    inplace = len(libraries) < len(includes) or bool(o.values("-l", "--load"))
    progs = [*o.values("-f", "--file", "-E", "--exec"), *libraries]
    sources = o.values("-e", "--source")
    if progs or sources:
        texts: list[str | None] = []
        for pf in progs:
            c.read(pf)
            texts.append(c.st.run.read_text(c.loc(pf)))
        texts.extend(f.value if f.known else None for f in sources)
        program = (
            None if any(t is None for t in texts) else "\n".join(t for t in texts if t is not None)
        )
    elif ops:
        program = ops[0].value if ops[0].known else None
        ops = ops[1:]
    else:
        return (OPAQUE,)
    files = [
        f
        for f in ops
        if not (f.known and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", f.value, re.S))
    ]
    if inplace:
        for f in files:
            c.emit(WRITE, c.loc(f), note="gawk -i inplace rewrites the file")
    commands, hidden, skeleton, reads = _awk_commands(program or "")
    got = _awk_getline_reads(c, reads)
    if program is None or hidden or commands or _AWK_DANGER.search(skeleton):
        # what awk prints (its input and what getline read, changed) is what a
        # `print | "cmd"` command reads
        printed = (
            *c.passthrough(transform=True),
            *(fl for f in files for fl in c.content(f, transform=True)),
            *got,
        )
        # a command's output reaches awk's own: system() and `print | "cmd"` share its
        # standard output, and `"cmd" | getline` hands it to the program, which may print it
        ran: list[Flow] = []
        for text, piped in commands:
            decoded, _ = ansi_c_decode(text)
            flows = run_shell_text(c, decoded, what="awk command", stdin=printed if piped else ())
            ran.extend(fl.through(c.name, transform=True) for fl in flows)
        if hidden or program is None:
            # system(ARGV[1]), print | cmd, cmd | getline, |&: a command nobody can read
            c.unseen("awk runs a command the analyser cannot see")
        note = "awk program writes files or runs commands" if program else "awk program is unknown"
        for f in files:
            c.unknown(note, c.loc(f))
        if not files:
            c.unknown(note)
        return (*printed, *ran, OPAQUE)
    out: list[Flow] = list(got)
    for f in files:
        c.read(f)
        out.extend(c.content(f, transform=True))
    if not files:
        out.extend(c.passthrough(transform=True))
    return tuple(out)
