"""Handlers for commands that read, write, copy and delete local files.

Each handler turns a command's arguments into effects and returns the flows its standard output
carries. Readers that print file content (``cat``, ``head``, ``grep``) pass that content on, so a
redirect or a pipe further along turns it into a copy; readers that print only facts about files
(``ls``, ``wc``, ``sha256sum``) do not.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from guard.shell.common import (
    META,
    byte_count,
    copy_effect,
    dest_for,
    isdir,
    run_shell_text,
    source_places,
    take_whole,
)
from guard.shell.core import TABLE, Cmd, command, joined_script
from guard.shell.findexpr import Action, evaluate
from guard.shell.options import Opts, Spec, parse
from guard.shell.perms import FILE_MODE, FOLDER_MODE, acl_takes_read, apply_mode, takes_access
from guard.shell.sed import apply_sed, ere_script_to_bre
from guard.shell.words import OPAQUE, Field, Flow, Var, ansi_c_decode, names
from guard.types import ConfigEdit, EffectKind, Location

__all__ = [
    "mode_edit",
]

READ = EffectKind.READ
LIST = EffectKind.LIST
WRITE = EffectKind.WRITE
DELETE = EffectKind.DELETE
COPY = EffectKind.COPY
MOVE = EffectKind.MOVE


# ------------------------------------------------------------------ helpers


def _noop_out(c: Cmd) -> tuple[Flow, ...]:
    return ()


# Builtins and tools that touch no file and print nothing worth following.
command(
    "true false : sleep jobs fg bg return exit break continue umask ulimit",
    "clear tput reset sync times caller logout suspend complete compgen",
    "history [[",
    "kill pkill killall help compopt",
)(_noop_out)  # wait, getopts, let, test and [ set or name variables: see shells.py


# Every program the table names is one the analyser judges: a program outside it runs code
# the analyser does not read (see the /unknown handler). The inert ones are listed here: they
# run no other program, load no code from their config, and write no file but standard output.
@command(
    "date whoami id hostname uname ps top free uptime df printenv groups who w",
    "last lsblk lscpu nproc arch tty locale seq yes lsof ss netstat ifconfig",
    "dmesg vmstat iostat mpstat pgrep pidof journalctl getconf expr",
    "bc factor cal type which whereis mktemp tempfile",
    "lspci lsusb lsmod lsmem lsns lsipc lslocks findmnt lsb_release users logname pstree",
    "getent numfmt sensors stty",
)
def _facts(c: Cmd) -> tuple[Flow, ...]:
    # They print facts about the system, not file content: nothing to follow.
    return (OPAQUE,)


@command("ping ping6 traceroute tracepath dig nslookup host whois ruff black isort")
def _judged(c: Cmd) -> tuple[Flow, ...]:
    # Inert, but what they are given matters: network probes send their arguments (`dig
    # $(cat w).example`), and formatters with no plugins rewrite the files they are given.
    # The generic judgement of a program's paths and arguments covers both.
    return TABLE["/unknown"](c)


@command("nvidia-smi")
def _nvidia_smi(c: Cmd) -> tuple[Flow, ...]:
    """Facts about the GPUs, written to the file ``-f`` names instead of standard output."""
    args = c.args
    for k, a in enumerate(args):
        v = a.value if a.known else ""
        if v in ("-f", "--filename") and k + 1 < len(args):
            c.write_to(args[k + 1], (OPAQUE,))
        elif v.startswith(("--filename=", "-f")) and v not in ("-f", "--filename="):
            # its other options are letters without values: any word glued to -f is a file
            value = v.partition("=")[2] if v.startswith("--") else v[2:]
            c.write_to(Field(value, raw=value), (OPAQUE,))
    return (OPAQUE,)


@command("tr")
def _tr(c: Cmd) -> tuple[Flow, ...]:
    # tr reads only its standard input; its operands are character sets
    return c.passthrough(transform=True)


@command("pwd")
def _pwd(c: Cmd) -> tuple[Flow, ...]:
    return (Flow(text=c.st.cwd + "\n"),) if c.st.cwd is not None else (OPAQUE,)


@command("basename", "dirname")
def _basename(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("s", "suffix"))
    ops = o.operands
    if not ops or not all(f.known for f in ops):
        return (OPAQUE,)
    if c.name == "dirname":
        return (
            Flow(text="".join((os.path.dirname(f.value.rstrip("/")) or ".") + "\n" for f in ops)),
        )
    suffix = o.value("-s", "--suffix")
    bases = [os.path.basename(f.value.rstrip("/")) for f in ops]
    if not o.has("-a", "--multiple") and suffix is None and len(ops) == 2:
        suffix, bases = ops[1], bases[:1]
    if suffix is not None:
        bases = [
            n[: -len(suffix.value)] if suffix.value and n.endswith(suffix.value) else n
            for n in bases
        ]
    return (Flow(text="".join(n + "\n" for n in bases)),)


@command("realpath", "readlink")
def _realpath(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("", "relative-to relative-base"))
    resolve = c.name == "realpath" or o.has("-f", "-e", "-m", "--canonicalize")
    out: list[str] = []
    for f in o.operands:
        loc = c.loc(f)
        if loc.path is None:
            return (OPAQUE,)
        if resolve:
            out.append(loc.path)
        else:
            try:
                out.append(
                    os.readlink(
                        loc.raw
                        if os.path.isabs(loc.raw)
                        else os.path.join(c.st.cwd or "/", loc.raw)
                    )
                )
            except OSError:
                return (OPAQUE,)
    return (Flow(text="".join(p + "\n" for p in out)),)


# ---------------------------------------------------------------- readers


@dataclass(frozen=True, slots=True)
class _Reader:
    spec: Spec = field(default_factory=Spec)
    kind: EffectKind = READ
    content: bool = True  # standard output carries the files' content
    exact: bool = False  # ...unchanged (cat)
    recursive: tuple[str, ...] = ()  # options that make it descend into folders
    whole: bool = False  # always descends (du, tree)
    default_cwd: bool = False
    count: tuple[str, ...] = ()  # options that stop it after N bytes (head -c)
    skip: tuple[str, ...] = ()  # options that make it start past the first byte (od -j)
    dumps: tuple[str, ...] = ()  # options that make a reader of facts print content (cmp -l)


_READERS: dict[str, _Reader] = {
    "cat": _Reader(exact=True),
    "tac": _Reader(Spec.of("s", "separator")),
    "nl": _Reader(Spec.of("bdfhilnsvw")),
    "head": _Reader(Spec.of("nc", "lines bytes"), count=("-c", "--bytes")),
    "tail": _Reader(Spec.of("ncs", "lines bytes sleep-interval pid max-unchanged-stats")),
    "less": _Reader(Spec.of("bhjkopPtTxyz#", "log-file tag"), exact=True),
    "more": _Reader(Spec.of("n", "lines"), exact=True),
    "cut": _Reader(Spec.of("bcdf", "bytes characters delimiter fields output-delimiter")),
    "paste": _Reader(Spec.of("d", "delimiters")),
    "fold": _Reader(Spec.of("w", "width")),
    "fmt": _Reader(Spec.of("wpg", "width prefix goal")),
    "expand": _Reader(Spec.of("t", "tabs")),
    "unexpand": _Reader(Spec.of("t", "tabs")),
    "rev": _Reader(),
    "column": _Reader(Spec.of("cstoNRHWEdO", "separator output-separator table-columns")),
    "od": _Reader(
        Spec.of("AjNStw", "address-radix skip-bytes read-bytes format width"),
        count=("-N", "--read-bytes"),
        skip=("-j", "--skip-bytes"),
    ),
    "hexdump": _Reader(
        Spec.of("enfsL", "format length skip"), count=("-n", "--length"), skip=("-s", "--skip")
    ),
    "hd": _Reader(
        Spec.of("enfsL", "format length skip"), count=("-n", "--length"), skip=("-s", "--skip")
    ),
    "strings": _Reader(Spec.of("ntTeo", "bytes radix target encoding output-separator")),
    "comm": _Reader(Spec.of("", "output-delimiter")),
    "join": _Reader(Spec.of("aejotv12", "")),
    "look": _Reader(Spec.of("t", "")),
    "diff": _Reader(
        Spec.of(
            "CUDFIlLSxX",
            (
                "label line-format exclude exclude-from ignore-matching-lines unified context "
                "from-file to-file color palette"
            ),
            optional="color unified context",
        ),
        recursive=("-r", "--recursive"),
    ),
    "wc": _Reader(Spec.of("", "files0-from"), content=False),
    # -l prints every differing byte of both files (against /dev/zero: the whole file), -b
    # the bytes of the first difference
    "cmp": _Reader(
        Spec.of("iIn", "ignore-initial bytes"),
        content=False,
        dumps=("-l", "--verbose", "-b", "--print-bytes"),
    ),
    "stat": _Reader(Spec.of("c", "format printf"), content=False),
    "file": _Reader(Spec.of("emfFP", "magic-file files-from separator exclude"), content=False),
    "cksum": _Reader(Spec.of("al", "algorithm length"), content=False),
    "sum": _Reader(content=False),
    "pr": _Reader(Spec.of("DeFhiNlnowW", "date-format header indent first-line-number length")),
    # they print what they decode of a binary: objdump -s and readelf -x dump all of it
    "objdump": _Reader(Spec.of("jMbmIW", "section disassembler-options target architecture")),
    "readelf": _Reader(Spec.of("xpRw", "hex-dump string-dump relocated-dump debug-dump")),
    "nm": _Reader(Spec.of("ft", "format radix target")),
    "tsort": _Reader(),
    "ls": _Reader(
        Spec.of(
            "ITw",
            (
                "ignore hide tabsize width format sort time time-style block-size "
                "quoting-style indicator-style color"
            ),
            optional="color",
        ),
        kind=LIST,
        content=False,
        recursive=("-R", "--recursive"),
        default_cwd=True,
    ),
    "dir": _Reader(kind=LIST, content=False, default_cwd=True),
    "vdir": _Reader(kind=LIST, content=False, default_cwd=True),
    "tree": _Reader(
        Spec.of("LPIo", "filelimit timefmt charset"),
        kind=LIST,
        content=False,
        whole=True,
        default_cwd=True,
    ),
    "du": _Reader(
        Spec.of(
            "dBtX",
            "max-depth block-size threshold exclude exclude-from files0-from time-style time",
            optional="time",
        ),
        kind=LIST,
        content=False,
        whole=True,
        default_cwd=True,
    ),
}
for _sum in names("sha1sum sha224sum sha256sum sha384sum sha512sum md5sum b2sum shasum"):
    _READERS[_sum] = _Reader(Spec.of("al", "algorithm length"), content=False)


def _reader(c: Cmd) -> tuple[Flow, ...]:
    r = _READERS[c.name]
    o = parse(c.args, r.spec)
    if r.dumps and o.has(*r.dumps):
        r = replace(r, content=True)
    ops = o.operands
    rec = r.whole or o.has(*r.recursive)
    count = _read_count(c, o, r)
    out: list[Flow] = []
    # standard input is cut before the reader's own transformation hides where bytes come from
    stdin = tuple(fl.first(count).through(c.name, transform=not r.exact) for fl in c.stdin)
    if not ops:
        if r.default_cwd and c.st.cwd is not None:
            c.emit(r.kind, c.st.local("."), recursive=rec)
        elif r.content:
            out.extend(stdin)
    for f in ops:
        if f.known and f.value == "-":
            if r.content:
                out.extend(stdin)
            continue
        loc = c.loc(f)
        c.read(f, r.kind, recursive=rec and (r.kind is LIST or isdir(c, loc)))
        if r.content:
            out.extend(_first_bytes(c, f, c.content(f, transform=not r.exact), count))
    if not r.content:
        return (OPAQUE,)
    return tuple(out)


def _read_count(c: Cmd, o: Opts, r: _Reader) -> int | None:
    """How many leading bytes of its input the reader stops after, if it reads from the start."""
    if not r.count:
        return None
    skip = o.value(*r.skip) if r.skip else None
    if skip is not None and not (skip.known and byte_count(skip.value) == 0):
        return None
    if c.name == "head" and o.has("-n", "--lines"):
        return None  # whichever of -c and -n comes last decides
    v = o.value(*r.count)
    return byte_count(v.value) if v is not None and v.known else None


def _first_bytes(c: Cmd, f: Field, flows: tuple[Flow, ...], count: int | None) -> tuple[Flow, ...]:
    """The data of argument ``f`` when only its first ``count`` bytes are read: a file is read
    from its first byte, whatever the reader does with the bytes after."""
    if count is None:
        return flows
    if f.pipe or c.fd_of(f) is not None:
        return tuple(fl.first(count) for fl in flows)
    return tuple(
        replace(fl, limit=count if fl.limit is None else min(fl.limit, count))
        if fl.src is not None and not fl.names
        else fl
        for fl in flows
    )


command(*_READERS)(_reader)


_SORTERS = {
    "sort": Spec.of(
        "kotTSS",
        (
            "key output field-separator temporary-directory buffer-size parallel "
            "batch-size compress-program files0-from sort"
        ),
    ),
    "shuf": Spec.of("niro", "head-count input-range random-source output"),
    "iconv": Spec.of("fto", "from-code to-code output"),
    "uniq": Spec.of(
        "fsw",
        "skip-fields skip-chars check-chars group all-repeated",
        optional="group all-repeated",
    ),
}


def _option_may_be(f: Field, option: str) -> bool:
    """Whether a word the guard cannot read in full may be the long option ``option`` (with
    its value): ``--compress-program=$P``, ``--compress-prog=$P``, ``-$X``. A word whose known
    start is another option (``-k$N``, ``--key=$N``) is that option."""
    if f.known or not f.value.startswith("-"):
        return False
    start = "".join(t for t, _ in itertools.takewhile(lambda p: not p[1], f.pieces))
    if not f.pieces:
        start = f.value[: f.value.find("$")] if "$" in f.value else "-"
    name, eq, _ = start.partition("=")
    if name in ("-", "--"):
        return not eq
    if not name.startswith("--") or len(name) < 3:
        return False
    return option.startswith(name) if eq else option.startswith(name) or name.startswith(option)


def _compress_program(c: Cmd, o: Opts, data: tuple[Flow, ...]) -> tuple[Flow, ...]:
    """``sort --compress-program=PROG`` runs PROG (found on ``PATH``, without a shell) on each
    chunk it spills to a temporary file, and ``PROG -d`` to read the chunk back: its output
    becomes sort's. PROG is code that runs on the sorted data."""
    for f in o.operands:
        if _option_may_be(f, "--compress-program"):
            c.unseen(f"{c.name}: an option the guard cannot see may run a program ({f.raw})")
            return (OPAQUE,)
    prog = o.value("--compress-program")
    if prog is None:
        return ()
    if not prog.known:
        c.unseen(f"{c.name} --compress-program runs a program the guard cannot see ({prog.raw})")
        return (OPAQUE,)
    out = c.st.fork().dispatch([prog], data)
    return out + c.st.fork().dispatch([prog, Field("-d", raw="-d")], out)


@command(*_SORTERS)
def _sort(c: Cmd) -> tuple[Flow, ...]:
    spec = _SORTERS[c.name]
    o = parse(c.args, spec)
    ops = list(o.operands)
    target = o.value("-o", "--output")
    if c.name == "uniq" and len(ops) >= 2:
        target = ops[1]
        ops = ops[:1]
    if c.name == "shuf" and (o.has("-e", "--echo") or o.has("-i", "--input-range")):
        ops = []
        flows: tuple[Flow, ...] = (OPAQUE,)
    else:
        flows = ()
        for f in ops:
            c.read(f)
            flows += c.content(f, transform=True)
        if not ops:
            flows = c.passthrough(transform=True)
    if c.name == "sort":
        flows += _compress_program(c, o, flows)
    if target is not None:
        c.write_to(target, flows, append=False)
        return ()
    return flows


_GREP_SPEC = Spec.of(
    "efmABCdD",
    (
        "regexp file max-count after-context before-context context include exclude "
        "exclude-dir exclude-from label binary-files devices directories color colour "
        "group-separator"
    ),
    optional="color colour context",
)
_RG_SPEC = Spec.of(
    "efgtTmABCjMEr",
    (
        "regexp file glob iglob type type-not type-add max-count after-context before-context "
        "context threads max-columns encoding replace sort sortr max-depth color colors pre "
        "pre-glob ignore-file path-separator engine"
    ),
)


@command("grep egrep fgrep zgrep rg ag ack")
def _grep(c: Cmd) -> tuple[Flow, ...]:
    is_rg = c.name in ("rg", "ag", "ack")
    o = parse(c.args, _RG_SPEC if is_rg else _GREP_SPEC)
    ops = list(o.operands)
    for pf in o.values("-f", "--file"):
        c.read(pf)
    if not o.values("-e", "--regexp", "-f", "--file") and ops:
        ops = ops[1:]
    rec = is_rg or o.has("-r", "-R", "--recursive", "--dereference-recursive")
    directories = o.value("-d", "--directories")
    if directories is not None and directories.value == "recurse":
        rec = True
    if o.has("--pre"):
        c.unknown("rg --pre runs a program on every file")
    if not ops:
        if rec and c.st.cwd is not None:
            c.emit(READ, c.st.local("."), recursive=True)
            return (Flow(src=c.st.local("."), recursive=True, exact=False, via=c.name),)
        return c.passthrough(transform=True)
    out: list[Flow] = []
    for f in ops:
        loc = c.loc(f)
        r = rec and (isdir(c, loc) or loc.path is None)
        c.read(f, recursive=r)
        out.extend(Flow(src=fl.src, recursive=r, exact=False, via=fl.via) for fl in c.content(f))
    return tuple(out)


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


# An ed address (line numbers, ., $, marks, /re/, ?re?, offsets) before a command letter.
_ED_ADDRESS = re.compile(
    r"(?:[ \t0-9.$,;+^-]|'[a-z]|/(?:[^/\\\n]|\\.)*(?:/|$)|\?(?:[^?\\\n]|\\.)*(?:\?|$))*"
)
_ED_CHANGES = frozenset("acidjmstux")


@command("ed red")
def _ed(c: Cmd) -> tuple[Flow, ...]:
    """``ed [-s] [FILE]`` runs the commands on its standard input: ``!CMD`` (and ``r !CMD``,
    ``e !CMD``, ``w !CMD``) runs shell text; ``r FILE`` reads a file into the buffer and
    ``w [FILE]`` writes the buffer to FILE or to the file edited (``f FILE`` renames it).
    Commands the analyser cannot see are unseen."""
    o = parse(c.args, Spec.of("p", "prompt"))
    files = o.operands
    name: Field | None = files[0] if files else None
    buffer: tuple[Flow, ...] = ()
    if name is not None and name.known and name.value.startswith("!"):
        buffer = run_shell_text(c, name.value[1:], what="ed !command")
        name = None
    elif name is not None:
        c.read(name)
        buffer = c.content(name)
    texts: list[str] = []
    for fl in c.stdin:
        text = fl.text
        if text is None and fl.src is not None and fl.exact and not fl.names:
            text = c.st.run.read_text(fl.src)
        if text is None:
            c.unseen("ed runs commands from input the analyser cannot see", fl.src)
            return (OPAQUE,)
        texts.append(text)
    changed = False
    typing = False
    for line in "".join(texts).splitlines()[:4096]:
        if typing:
            typing = line != "."
            continue
        for cmd in _ed_commands(line):
            op, arg = cmd[0], cmd[1:].strip()
            if op in "aic" and not arg:
                typing = True
            changed = changed or op in _ED_CHANGES
            if op == "!":
                if name is not None and name.known:
                    arg = re.sub(r"(?<!\\)%", name.value.replace("\\", "\\\\"), cmd[1:])
                run_shell_text(c, cmd[1:] if name is None else arg, what="ed !command")
            elif op in "reE" and arg.startswith("!"):
                out = run_shell_text(c, arg[1:], what="ed !command")
                buffer = out if op != "r" else (*buffer, *out)
                changed = True
            elif op in "reE":
                f = Field(arg, raw=arg) if arg else name
                if f is None:
                    continue
                c.read(f)
                buffer = c.content(f) if op != "r" else (*buffer, *c.content(f))
                changed = changed or op == "r"
                if op != "r":
                    name = f
            elif op == "f" and arg:
                name = Field(arg, raw=arg)
            elif op in "wW":
                arg = arg.removeprefix("q").strip()
                data = tuple(fl.through("ed", transform=changed) for fl in buffer)
                if arg.startswith("!"):
                    run_shell_text(c, arg[1:], what="ed w !command", stdin=data)
                    continue
                target = Field(arg, raw=arg) if arg else name
                if target is not None:
                    c.write_to(target, (*data, OPAQUE) if changed else data, append=op == "W")
    return (OPAQUE,)


def _ed_commands(line: str) -> list[str]:
    """The commands of one ed line: the command after its address, and for ``g/re/cmd`` and
    its kin the command they run on each line that matches."""
    out: list[str] = []
    for _ in range(8):
        m = _ED_ADDRESS.match(line)
        cmd = line[m.end() :] if m is not None else line
        if not cmd:
            return out
        if cmd[0] not in "gGvV" or len(cmd) < 2:
            out.append(cmd)
            return out
        delim = cmd[1]
        end = 2
        while end < len(cmd) and cmd[end] != delim:
            end += 2 if cmd[end] == "\\" else 1
        line = cmd[end + 1 :] or "p"
    return out


@command("jq gojq jaq")
def _jq(c: Cmd) -> tuple[Flow, ...]:
    args = c.args
    ops: list[Field] = []
    named: list[Flow] = []  # --rawfile/--slurpfile: a file's content the filter can print
    filter_given = False
    i = 0
    while i < len(args):
        f = args[i]
        v = f.value if f.known else ""
        if v in ("--arg", "--argjson", "--slurpfile", "--rawfile"):
            if v in ("--slurpfile", "--rawfile") and i + 2 < len(args):
                c.read(args[i + 2])
                named.extend(c.content(args[i + 2], transform=True))
            i += 3
            continue
        if v in ("--args", "--jsonargs"):
            break
        if v in ("-f", "--from-file") and i + 1 < len(args):
            c.read(args[i + 1])
            filter_given = True
            i += 2
            continue
        if v in ("--indent", "--tab-width") and i + 1 < len(args):
            i += 2
            continue
        if v.startswith("-") and len(v) > 1:
            i += 1
            continue
        ops.append(f)
        i += 1
    files = ops if filter_given else ops[1:]
    out: list[Flow] = list(named)
    for f in files:
        c.read(f)
        out.extend(c.content(f, transform=True))
    return tuple(out) if files else (*named, *c.passthrough(transform=True))


@command("yq")
def _yq(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "pPoIs",
            "input-format output-format indent expression from-file split-exp front-matter",
        ),
    )
    ops = list(o.operands)
    if ops and ops[0].known and ops[0].value in ("e", "eval", "ea", "eval-all"):
        ops = ops[1:]
    given = o.value("--expression")
    program = given
    if given is None and o.value("--from-file") is None and ops:
        program = ops[0]
        ops = ops[1:]
    inplace = o.has("-i", "--inplace")
    if inplace:
        _yq_in_place(c, program, ops)
        return ()
    out: list[Flow] = []
    for f in ops:
        c.read(f)
        out.extend(c.content(f, transform=True))
    return tuple(out) if ops else c.passthrough(transform=True)


# Options of yq (mikefarah's and the jq wrapper's) that leave a plain program's edit as it
# reads: in-place, output style. Any other (-n, -s, --arg, -f...) changes what is written.
_YQ_PLAIN_LETTERS = frozenset("iyYPe")
_YQ_PLAIN_LONG = frozenset(["--inplace", "--yaml-output", "--yaml-roundtrip", "--prettyPrint"])


def _yq_in_place(c: Cmd, program: Field | None, ops: list[Field]) -> None:
    """``yq -i``: a program of plain assignments is simulated on each file like set_config.

    Anything else is an edit the guard cannot predict, made to every existing file the command
    names, whatever the option parser took it for (yq's two implementations disagree on
    which options take values).
    """
    plain = all(
        a.value in _YQ_PLAIN_LONG
        if a.value.startswith("--")
        else set(a.value[1:]) <= _YQ_PLAIN_LETTERS
        for a in c.args
        if a.known and a.value.startswith("-") and a.value != "-"
    )
    edits = (
        yq_edits(program.value)
        if plain and program is not None and program.known and not program.pipe
        else None
    )
    if edits is None:
        named = [a for a in c.args if not (a.known and a.value.startswith("-"))]
        targets = [f for f in named if f in ops or c.st.run.exists(c.loc(f).path or "")]
        for f in targets:
            c.emit(WRITE, c.loc(f))
        return
    for f in ops:
        for edit in edits:
            c.emit(WRITE, c.loc(f), edit=edit)


_YQ_PATH = r"\.[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*"
_YQ_SET = re.compile(rf"\s*({_YQ_PATH})\s*\|?=\s*(.+?)\s*")
_YQ_PIPE = re.compile(r"\|(?!=)")
_YQ_DEL = re.compile(rf"\s*del\(\s*({_YQ_PATH})\s*\)\s*")


def yq_edits(expression: str) -> list[ConfigEdit] | None:
    """The edits a ``yq``/``jq`` program of plain steps makes, or ``None`` for any other program.

    Understood: ``.a.b = VALUE`` and ``.a.b |= VALUE`` with a literal YAML value, and
    ``del(.a.b)``, joined with ``|``. Values are read as YAML reads them (``"no"`` stays a
    string, ``no`` and ``false`` are false), so the engine judges the switch yq would write.
    """
    edits: list[ConfigEdit] = []
    for step in _YQ_PIPE.split(expression):
        if (m := _YQ_DEL.fullmatch(step)) is not None:
            edits.append(ConfigEdit(op="remove", key=m.group(1)[1:]))
            continue
        m = _YQ_SET.fullmatch(step)
        if m is None:
            return None
        found, value = _yq_literal(m.group(2))
        if not found:
            return None  # a path, a function call or a structure: not a literal
        edits.append(ConfigEdit(op="set", key=m.group(1)[1:], value=value))
    return edits or None


_YQ_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _yq_literal(raw: str) -> tuple[bool, Any]:
    """A yq expression literal's value: ``(True, value)``, or ``(False, None)`` for anything else."""
    if raw in ("true", "false"):
        return True, raw == "true"
    if raw in ("null", "~"):
        return True, None
    if _YQ_NUMBER.fullmatch(raw):
        return True, float(raw) if any(ch in raw for ch in ".eE") else int(raw)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        try:
            value = json.loads(raw) if raw[0] == '"' else raw[1:-1]
        except ValueError:
            return False, None
        return (True, value) if isinstance(value, str) else (False, None)
    return False, None


# ------------------------------------------------------------ echo, printf

_ECHO_ESC = re.compile(
    r"\\(0[0-7]{0,3}|x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|.)", re.S
)


def _echo_escapes(s: str) -> tuple[str, bool]:
    """``echo -e`` / ``%b`` escapes; the flag is true when ``\\c`` cut the output."""
    cut = s.find("\\c")
    if cut >= 0:
        s = s[:cut]

    def sub(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "0":
            return chr(int(e[1:] or "0", 8) & 0xFF)
        decoded, _ = ansi_c_decode("\\" + e)
        return decoded

    return _ECHO_ESC.sub(sub, s), cut >= 0


@command("echo")
def _echo(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    newline, escapes = True, False
    while args and args[0].known and re.fullmatch(r"-[neE]+", args[0].value):
        flags = args.pop(0).value
        newline = newline and "n" not in flags
        for ch in flags[1:]:
            if ch == "e":
                escapes = True
            elif ch == "E":
                escapes = False
    return _text_out(c, args, lambda vals: _echo_text(vals, newline, escapes))


def _echo_text(vals: list[str], newline: bool, escapes: bool) -> str:
    s = " ".join(vals)
    if escapes:
        s, cut = _echo_escapes(s)
        if cut:
            return s
    return s + ("\n" if newline else "")


def _text_out(
    c: Cmd, args: list[Field], render: Callable[[list[str]], str | None]
) -> tuple[Flow, ...]:
    """What echo and printf print: known text, or the data that went into their arguments."""
    obf = any(f.obfuscated for f in args)
    flows = tuple(fl.through(c.name) for f in args for fl in f.flows if fl.src is not None)
    if all(f.known for f in args):
        text = render([f.value for f in args])
        if text is not None:
            return (Flow(text=text, decoded=obf),)
    return (*flows, OPAQUE)


_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([sbdiouxXcfgeE%])")


def _printf(fmt: str, args: list[str]) -> str | None:
    fmt, _ = _echo_escapes(fmt) if "\\" in fmt else (fmt, False)
    out: list[str] = []
    k = 0
    for _round in range(64):
        pos = 0
        used = False
        for m in _PRINTF_SPEC.finditer(fmt):
            out.append(fmt[pos : m.start()])
            pos = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            used = True
            arg = args[k] if k < len(args) else ""
            k += 1
            if conv == "b":
                arg, _ = _echo_escapes(arg)
                conv = "s"
            if conv in "diouxXc":
                if conv == "c":
                    piece = arg[:1]
                else:
                    try:
                        num = int(arg or "0", 0)
                    except ValueError:
                        return None
                    piece = format(num, {"i": "d", "u": "d", "o": "o"}.get(conv, conv))
            elif conv in "fgeE":
                if prec and int(prec) > 64:
                    return None
                try:
                    piece = format(float(arg or "0"), "." + (prec or "6") + conv)
                except ValueError:
                    return None
            else:
                piece = arg[: int(prec)] if prec else arg
            if width:
                if int(width) > 4096:
                    return None
                piece = piece.ljust(int(width)) if "-" in flags else piece.rjust(int(width))
            out.append(piece)
        out.append(fmt[pos:])
        if not used or k >= len(args):
            break
    return "".join(out)


@command("printf")
def _printf_cmd(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    setting = len(args) >= 2 and args[0].known and args[0].value == "-v"
    target: str | None = None
    whole = True
    if setting:
        # `printf -v 'a[$(cmd)]'` evaluates the subscript: it may run code
        target = c.st.var_name(args[1].value if args[1].known else None, what="printf -v")
        whole = target == args[1].value  # not one element of an array
        args = args[2:]
    if args and args[0].known and args[0].value == "--":
        args = args[1:]
    if not args:
        return ()
    fmt = args[0]
    out = _text_out(c, args, lambda vals: _printf(vals[0], vals[1:]) if fmt.known else None)
    if setting:
        if target is not None:
            text = out[0].text if len(out) == 1 and whole else None
            c.st.set_var(
                target,
                Var(
                    text,
                    flows=tuple(f for f in out if f.src is not None),
                    obfuscated=any(f.decoded for f in out),
                ),
            )
        return ()
    return out


# ------------------------------------------------------------- file writers

_CP_SPEC = Spec.of(
    "tS",
    "target-directory suffix backup preserve no-preserve sparse reflink context update",
    optional="backup preserve reflink context update",
)


def _targets(c: Cmd, o: Opts) -> tuple[list[Field], Field | None, bool]:
    """Sources, destination, and whether the destination must be a folder."""
    tdir = o.value("-t", "--target-directory")
    ops = list(o.operands)
    if tdir is not None:
        return ops, tdir, True
    if len(ops) < 2:
        return ops, None, False
    return ops[:-1], ops[-1], len(ops) > 2


@command("cp", "install")
def _cp(c: Cmd) -> tuple[Flow, ...]:
    spec = (
        _CP_SPEC
        if c.name == "cp"
        else Spec.of("gmoStT", "group mode owner suffix target-directory strip-program")
    )
    o = parse(c.args, spec)
    if c.name == "install" and o.has("-d", "--directory"):
        for f in o.operands:
            c.emit(WRITE, c.loc(f), edit=META)
        return ()
    rec = c.name == "cp" and o.has("-r", "-R", "-a", "--recursive", "--archive")
    srcs, dst, into = _targets(c, o)
    if dst is None or dst.pipe:
        # `cp f >(cmd)`: cmd gets f's content on its input (the walker feeds it)
        for f in srcs:
            c.read(f)
        return ()
    dloc = c.loc(dst)
    no_target = o.has("-T", "--no-target-directory")
    hard = c.name == "cp" and o.has("-l", "--link")
    access = _install_access(o) if c.name == "install" else META
    for f in srcs:
        if f.pipe or (_open_fd(c, f) and c.loc(f).path is None):
            # `cp <(echo ...) dst`, `echo ... | cp /dev/stdin dst`: the data open there,
            # written to dst (named after the descriptor)
            pipe = Location(raw=f.value if not f.pipe else "/dev/fd/63", path=None)
            d = dloc if no_target else dest_for(c.st, pipe, dloc, dst.value, into=into)
            c.write_to(d, c.content(f))
            continue
        for src, frec, contents in source_places(c, f):
            d = dloc if no_target or contents else dest_for(c.st, src, dloc, dst.value, into=into)
            whole = take_whole(c, src, rec) or frec
            if hard and d.path:
                c.st.run.unname(d.path)  # the name now names the source's file
            copy_effect(c, src, d, recursive=whole)
            if access is not META:
                c.emit(WRITE, d, edit=access, note="install -m sets who may read it")
            if c.name == "cp" and o.has("-s", "--symbolic-link") and src.path and d.path:
                c.st.run.add_link(d.path, src.path)  # `cp -s`: links, not copies
            elif hard and src.path and d.path and src.visible and d.visible:
                c.st.run.add_hard(d.path, src.path)  # `cp -l`: every file is the source's
    return ()


def _install_access(o: Opts) -> ConfigEdit:
    """What ``install -m MODE`` does to who may read the file it installs: a mode (applied,
    as install does, to no bits at all) that leaves someone without read access makes it
    unreadable to them; a mode nobody can read is an unknown change."""
    mode = o.value("-m", "--mode")
    if mode is None:
        return META
    after = apply_mode(0, mode.value, folder=False) if mode.known else None
    if after is None:
        return UNKNOWN_ACCESS
    return UNREADABLE if takes_access(FILE_MODE, after, folder=False) else META


def _open_fd(c: Cmd, f: Field) -> bool:
    """Argument ``f`` names a descriptor the analyser knows is open for reading (``/dev/stdin``,
    ``/dev/fd/3`` after ``exec 3<``); an unknown one may hold anything."""
    fd = c.fd_of(f)
    if fd is None or fd in (1, 2):
        return False
    open_fds = c.st.open_fds
    return fd == 0 or fd in c.st.infds or (open_fds is not None and fd in open_fds)


def link_to(c: Cmd, link: Location, target: Field) -> None:
    """Remember that ``link`` is now a symbolic link to ``target`` (as written in ``ln -s``)."""
    if link.path is None or not link.visible or not target.known or target.pipe:
        return
    value = target.value
    if not value or "\0" in value:
        return
    if value.startswith("/"):
        absolute = c.st.map_abs(value)
    else:
        # the kernel resolves a relative target from the link's own folder
        absolute = os.path.join(os.path.dirname(link.path), value)
    c.st.run.add_link(link.path, absolute)


@command("mv")
def _mv(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _CP_SPEC)
    srcs, dst, into = _targets(c, o)
    if dst is None:
        return ()
    dloc = c.loc(dst)
    no_target = o.has("-T", "--no-target-directory")
    for f in srcs:
        for src, frec, contents in source_places(c, f):
            d = dloc if no_target or contents else dest_for(c.st, src, dloc, dst.value, into=into)
            copy_effect(c, src, d, recursive=isdir(c, src) or src.path is None or frec, kind=MOVE)
    return ()


@command("ln", "link")
def _ln(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("tS", "target-directory suffix backup", optional="backup"))
    ops = list(o.operands)
    symbolic = o.has("-s", "--symbolic")
    tdir = o.value("-t", "--target-directory")
    if tdir is not None:
        srcs, dst, into = ops, tdir, True
    elif len(ops) == 1:
        srcs, dst, into = ops, Field(".", raw="."), True
    elif len(ops) >= 2:
        srcs, dst, into = ops[:-1], ops[-1], len(ops) > 2
    else:
        return ()
    dloc = c.loc(dst)
    for f in srcs:
        src = c.loc(f)
        d = (
            dloc
            if o.has("-T", "--no-target-directory")
            else dest_for(c.st, src, dloc, dst.value, into=into)
        )
        if symbolic:
            c.emit(WRITE, d, note=f"symbolic link to {f.value}")
            link_to(c, d, f)
            continue
        if d.path is not None:
            c.st.run.unname(d.path)  # `ln -f`: the name no longer names what it did
        copy_effect(c, src, d, recursive=False, note="hard link")
        if src.path is not None and d.path is not None and src.visible and d.visible:
            c.st.run.add_hard(d.path, src.path)
    return ()


_MOUNT_SPEC = Spec.of(
    "toLUOTN",
    "types options label uuid test-opts fstab namespace source target options-mode "
    "options-source target-prefix",
)
_BINDS = frozenset(("--bind", "-B", "--rbind", "-R"))


@command("mount")
def _mount(c: Cmd) -> tuple[Flow, ...]:
    """``mount --bind SRC DST`` shows SRC's content at DST: a replace of DST, whose later
    writes through either name are one. Anything else mounted changes what a path names in
    ways the analyser does not follow."""
    o = parse(c.args, _MOUNT_SPEC)
    ops = list(o.operands)
    if not ops and all(n in ("-l", "--show-labels", "-t", "--types", "-v") for n, _ in o.items):
        return (OPAQUE,)  # a listing of what is mounted
    bind = o.has(*_BINDS)
    for name, value in o.items:
        if name in ("-o", "--options"):
            if value is None or not value.known:
                bind = False
                break
            words = value.value.split(",")
            bind = bind or "bind" in words or "rbind" in words
            if "remount" in words:
                bind = False
                break
    src, dst = o.value("--source"), o.value("--target")
    places = [f for f in (src, *ops, dst) if f is not None]
    if bind and len(places) == 2 and all(f.known for f in places):
        old, new = c.loc(places[0]), c.loc(places[1])
        whole = isdir(c, old) or old.path is None
        copy_effect(c, old, new, recursive=whole, note="bind mount: shown in its place")
        if old.path is not None and new.path is not None and old.visible and new.visible:
            c.st.run.add_hard(new.path, old.path)
        return ()
    target = c.loc(places[-1]) if places and places[-1].known else None
    c.unseen("mount: what paths name changes in ways the analyser does not follow", target)
    return ()


@command("umount")
def _umount(c: Cmd) -> tuple[Flow, ...]:
    ops = [f for f in c.args if not (f.known and f.value.startswith("-"))]
    target = c.loc(ops[-1]) if ops and ops[-1].known else None
    c.unseen("umount: what was under the mount point shows again, unseen", target)
    return ()


@command("rm unlink rmdir shred srm wipe trash trash-put gio-trash")
def _rm(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "ns",
            "iterations size random-source interactive remove",
            optional="interactive remove",
        ),
    )
    rec = c.name == "rm" and o.has("-r", "-R", "--recursive")
    rec = rec or (c.name in ("srm", "wipe") and o.has("-r", "-R"))
    for f in o.operands:
        loc = c.loc(f)
        c.emit(DELETE, loc, recursive=take_whole(c, loc, rec) or f.recursive)
    return ()


@command("mkdir")
def _mkdir(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("mZ", "mode context", optional="context"))
    for f in o.operands:
        loc = c.loc(f)
        c.emit(WRITE, loc, edit=META, note="folder created")
        if loc.path is not None:
            c.st.run.created.add(loc.path)
    return ()


_OWNER_SPEC = Spec.of("", "reference from")
_META_SPECS = {
    "touch": Spec.of("dtr", "date reference time"),
    "setfacl": Spec.of("mxMX", "modify remove modify-file remove-file set set-file"),
    "setfattr": Spec.of("nvx", "name value remove restore"),
    "chcon": Spec.of("urtl", "user role type range reference"),
}


UNREADABLE = ConfigEdit(op="unreadable")
UNKNOWN_ACCESS = ConfigEdit(op="unknown")


def _mode_of(c: Cmd, loc: Location) -> tuple[int, bool]:
    """The permission bits of ``loc`` now and whether it is a folder (a place the guard cannot
    stat is taken as an ordinary file or folder under ``umask 022``)."""
    folder = isdir(c, loc)
    mode = c.st.run.mode(loc.path) if loc.path is not None and loc.visible else None
    if mode is None:
        return (FOLDER_MODE if folder else FILE_MODE), folder
    return mode & 0o777, folder


def mode_edit(c: Cmd, loc: Location, spec: str | None, *, recursive: bool) -> ConfigEdit:
    """The change ``chmod SPEC`` (``None``: a mode nobody can read) makes to ``loc``: read
    access taken from someone (search access, for a folder: nothing below it can be opened)
    makes a config unreadable, which the guard reads as every switch in it off."""
    if spec is None:
        return UNKNOWN_ACCESS
    mode, folder = _mode_of(c, loc)
    after = apply_mode(mode, spec, folder=folder)
    if after is None:
        return UNKNOWN_ACCESS
    if takes_access(mode, after, folder=folder):
        return UNREADABLE
    if folder and recursive:
        # what -R does to the files below, taken as readable by everyone
        below = apply_mode(FILE_MODE, spec, folder=False)
        if below is None or takes_access(FILE_MODE, below, folder=False):
            return UNREADABLE
    if loc.path is not None and not recursive:
        c.st.run.set_mode(loc.path, after)  # a later chmod on the line starts from this mode
    return META


def _emit_access(c: Cmd, loc: Location, edit: ConfigEdit, *, recursive: bool) -> None:
    """Record a change of who may read ``loc``; on a folder whose files can no longer be
    opened it covers everything below."""
    whole = recursive or (edit is not META and isdir(c, loc))
    c.emit(WRITE, loc, edit=edit, recursive=whole and (isdir(c, loc) or loc.path is None))


_CHMOD_FLAGS = re.compile(r"-[cfvR]+")


@command("chmod")
def _chmod(c: Cmd) -> tuple[Flow, ...]:
    """``chmod [-cfvR] MODE[,MODE]... FILE...`` (or ``--reference=RFILE``): a mode that takes
    read access away from a config with a switch turns oversight off (see
    :func:`mode_edit`); a mode the analyser cannot read is an unknown change."""
    mode: Field | None = None
    reference: Field | None = None
    files: list[Field] = []
    rec = False
    args = iter(c.args)
    ended = False
    for f in args:
        v = f.value if f.known else ""
        if not ended and f.known:
            if v == "--":
                ended = True
                continue
            if v.startswith("--reference"):
                reference = f if v.startswith("--reference=") else next(args, None)
                continue
            if v == "--recursive":
                rec = True
                continue
            if v.startswith("--"):
                continue
            if _CHMOD_FLAGS.fullmatch(v):
                rec = rec or "R" in v
                continue
        if mode is None and reference is None:
            mode = f
        else:
            files.append(f)
    spec: str | None = None
    if reference is not None:
        value = reference.value.removeprefix("--reference=")
        ref = c.loc(Field(value, raw=value, known=reference.known))
        bits = c.st.run.mode(ref.path) if ref.path is not None and reference.known else None
        spec = None if bits is None else f"{bits & 0o777:o}"
    elif mode is not None and mode.known:
        spec = mode.value
    for f in files:
        loc = c.loc(f)
        _emit_access(c, loc, mode_edit(c, loc, spec, recursive=rec), recursive=rec)
    return ()


@command("touch chown chgrp chattr setfacl chcon utime setfattr")
def _meta(c: Cmd) -> tuple[Flow, ...]:
    """Metadata changes. ``chattr`` attributes never take read access away; a new owner or
    group may (a config only its owner or group can read), and so may ACL entries that grant
    no read or ACLs removed or read from elsewhere."""
    if c.name == "chattr":
        files = [f for f in c.args if not (f.known and f.value[:1] in "+-=")]
        rec = any(f.known and f.value == "-R" for f in c.args)
        for f in files:
            c.emit(WRITE, c.loc(f), edit=META, recursive=rec and isdir(c, c.loc(f)))
        return ()
    o = parse(c.args, _META_SPECS.get(c.name, _OWNER_SPEC))
    ops = list(o.operands)
    if c.name in ("chown", "chgrp", "chcon") and o.value("--reference") is None and ops:
        ops = ops[1:]  # the first operand is the owner or context
    rec = o.has("-R", "--recursive")
    for f in ops:
        loc = c.loc(f)
        edit = META
        if c.name in ("chown", "chgrp"):
            mode, folder = _mode_of(c, loc)
            # who reads a file that others cannot read depends on its owner and group
            private = not mode & (0o001 if folder else 0o004)
            edit = UNKNOWN_ACCESS if private or (rec and folder) else META
        elif c.name == "setfacl":
            if o.has("-b", "--remove-all", "-x", "--remove", "-X", "--remove-file", "-M",
                     "--modify-file", "--set-file", "--restore"):  # fmt: skip
                edit = UNKNOWN_ACCESS
            entries = o.values("-m", "--modify", "--set")
            if any(not e.known or acl_takes_read(e.value) for e in entries):
                edit = UNREADABLE
        _emit_access(c, loc, edit, recursive=rec)
    return ()


@command("truncate")
def _truncate(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("sr", "size reference io-blocks"))
    size = o.value("-s", "--size")
    zero = size is not None and size.known and size.value.lstrip("=<>") in ("0", "0K", "0M", "0G")
    for f in o.operands:
        c.emit(WRITE, c.loc(f), edit=ConfigEdit(op="replace", content="") if zero else None)
    return ()


@command("dd")
def _dd(c: Cmd) -> tuple[Flow, ...]:
    src: Field | None = None
    dst: Field | None = None
    append = False
    sizes: dict[str, str] = {}
    for f in c.args:
        if not f.known:
            c.unknown("dd operand is unknown", c.loc(f))
            continue
        key, eq, val = f.value.partition("=")
        if not eq:
            continue
        vf = Field(val, raw=val, obfuscated=f.obfuscated)
        if key == "if":
            src = vf
        elif key == "of":
            dst = vf
        elif key == "oflag" and "append" in val:
            append = True
        elif key in ("bs", "ibs", "count", "skip", "iseek", "iflag"):
            sizes[key] = val
    count = _dd_count(sizes)
    if src is not None:
        c.read(src)
        flows = _first_bytes(c, src, c.content(src), count)
    else:
        flows = tuple(fl.first(count) for fl in c.passthrough())
    if dst is None:
        return flows
    c.write_to(dst, flows, append=append)
    return ()


def _dd_count(sizes: dict[str, str]) -> int | None:
    """How many leading bytes of its input dd copies: ``count`` blocks of ``ibs`` (or ``bs``,
    512 by default), or ``count`` bytes with ``iflag=count_bytes``; ``None`` when it starts
    past the first byte or copies to the end."""
    for key in ("skip", "iseek"):
        if key in sizes and byte_count(sizes[key]) != 0:
            return None
    if "count" not in sizes:
        return None
    n = byte_count(sizes["count"])
    block = byte_count(sizes.get("bs", sizes.get("ibs", "512")))
    if n is None or block is None:
        return None
    return n if "count_bytes" in sizes.get("iflag", "") else n * block


@command("tee", "sponge")
def _tee(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("", "output-error", optional="output-error"))
    flows = c.passthrough()
    for f in o.operands:
        c.write_to(f, flows, append=o.has("-a", "--append"))
    return flows if c.name == "tee" else ()


@command("dos2unix unix2dos mac2unix unix2mac")
def _dos2unix(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("", ""))
    ops = list(o.operands)
    if o.has("-n", "--newfile") and len(ops) >= 2:
        for a, b in zip(ops[::2], ops[1::2], strict=False):
            c.read(a)
            c.write_to(b, c.content(a, transform=True), append=False)
        return ()
    for f in ops:
        c.emit(WRITE, c.loc(f))
    return () if ops else c.passthrough(transform=True)


@command("patch")
def _patch(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "iopdDBFgrVxYzX",
            "input output strip directory reject-file prefix suffix fuzz backup-if-mismatch",
        ),
    )
    for pf in o.values("-i", "--input"):
        c.read(pf)
    out = o.value("-o", "--output")
    if out is not None:
        c.emit(WRITE, c.loc(out))
    if o.operands:
        c.emit(WRITE, c.loc(o.operands[0]))
    elif out is None:
        c.emit(
            WRITE,
            Location(raw="<files named in the patch>"),
            certain=False,
            note="patch changes the files its input names",
        )
    return ()


@command("crudini")
def _crudini(c: Cmd) -> tuple[Flow, ...]:
    args = [f for f in c.args if f.known]
    modes = {"--set", "--del", "--merge", "--get", "--ini-options"}
    mode = next((f.value.split("=")[0] for f in args if f.value.split("=")[0] in modes), "--get")
    ops = [f for f in c.args if not (f.known and f.value.startswith("--"))]
    if ops:
        if mode == "--get":
            c.read(ops[0])
            return c.content(ops[0], transform=True)
        c.emit(WRITE, c.loc(ops[0]))
    return ()


# --------------------------------------------------------------------- sed

_SED_EXEC = re.compile(
    r"(?:^|[;\n{}])\s*(?:[0-9$]+|/(?:[^/\\\n]|\\.)*/)?\s*(?:,\s*(?:[0-9$]+|/(?:[^/\\\n]|\\.)*/))?\s*!?\s*[ewWrR](?:\s|$)"
)
_SED_SFLAG = re.compile(r"s(.)(?:(?!\1)[^\\]|\\.)*\1(?:(?!\1)[^\\]|\\.)*\1[gpiImM0-9]*[ew]", re.S)


def _sed_parse(c: Cmd) -> tuple[list[str | None], str | None, bool, bool, list[Field]]:
    """sed's options by hand: ``-i`` takes an optional attached suffix, which getopt cannot say."""
    scripts: list[str | None] = []
    inplace: str | None = None
    ere = False
    exact = True
    operands: list[Field] = []
    args = c.args
    i = 0
    while i < len(args):
        a = args[i]
        v = a.value
        if not a.known or not v.startswith("-") or v == "-":
            operands.append(a)
            i += 1
            continue
        if v == "--":
            operands.extend(args[i + 1 :])
            break
        if v.startswith("--"):
            name, eq, val = v.partition("=")
            if "--in-place".startswith(name) and len(name) > 4:
                inplace = val if eq else ""
            elif "--expression".startswith(name) and len(name) > 3:
                if eq:
                    scripts.append(val)
                elif i + 1 < len(args):
                    i += 1
                    scripts.append(args[i].value if args[i].known else None)
            elif "--file".startswith(name) and len(name) > 3:
                if not eq and i + 1 < len(args):
                    i += 1
                    val = args[i].value
                c.read(Field(val, raw=val))
                scripts.append(c.st.run.read_text(c.st.local(val), 64 * 1024))
            elif "--regexp-extended".startswith(name) and len(name) > 3:
                ere = True
            elif name in ("--quiet", "--silent", "--null-data", "--zero-terminated", "--separate"):
                exact = exact and name == "--separate"
            elif "--line-length".startswith(name) and not eq and len(name) > 3:
                i += 1
            i += 1
            continue
        j = 1
        while j < len(v):
            ch = v[j]
            if ch == "i":
                inplace = v[j + 1 :]
                break
            if ch in "efl":
                val_s: str | None = v[j + 1 :]
                if not val_s and i + 1 < len(args):
                    i += 1
                    val_s = args[i].value if args[i].known else None
                if ch == "e":
                    scripts.append(val_s)
                elif ch == "f" and val_s is not None:
                    c.read(Field(val_s, raw=val_s))
                    scripts.append(c.st.run.read_text(c.st.local(val_s), 64 * 1024))
                elif ch == "f":
                    scripts.append(None)
                break
            if ch in "Er":
                ere = True
            elif ch in "nz":
                exact = False
            j += 1
        i += 1
    if not scripts and operands:
        first = operands.pop(0)
        scripts.append(first.value if first.known else None)
    return scripts, inplace, ere, exact, operands


@command("sed", "gsed")
def _sed(c: Cmd) -> tuple[Flow, ...]:
    scripts, inplace, ere, exact, files = _sed_parse(c)
    script: str | None = None
    if scripts and all(s is not None for s in scripts):
        script = "\n".join(s for s in scripts if s is not None)
    if script is not None and (_SED_EXEC.search(script) or _SED_SFLAG.search(script)):
        c.unknown("sed script runs commands or writes other files")
    if inplace is None:
        out: list[Flow] = []
        for f in files:
            c.read(f)
            out.extend(c.content(f, transform=True))
        return tuple(out) if files else c.passthrough(transform=True)
    edit: ConfigEdit | None = None
    if script is not None and exact:
        bre = ere_script_to_bre(script) if ere else script
        if bre is not None and (apply_sed(bre, "") is not None or not ere):
            edit = ConfigEdit(op="sed", script=bre)
    for f in files:
        loc = c.loc(f)
        if inplace:
            base = os.path.basename(f.value)
            backup = inplace.replace("*", base) if "*" in inplace else f.value + inplace
            if "*" in inplace and "/" not in inplace:
                backup = os.path.join(os.path.dirname(f.value), backup)
            copy_effect(
                c,
                loc,
                c.st.local(backup) if f.known else Location(raw=backup),
                recursive=False,
                note="sed backup",
            )
        c.emit(WRITE, loc, edit=edit)
    return ()


@command("perl")
def _perl(c: Cmd) -> tuple[Flow, ...]:
    from guard.shell.interp import perl_command

    return perl_command(c)


# --------------------------------------------------------------------- find

_FIND_VALUE = names(
    "-name -iname -path -ipath -wholename -iwholename -regex -iregex -type -xtype -user -group"
    " -perm -size -mtime -mmin -atime -amin -ctime -cmin -newer -anewer -cnewer -maxdepth "
    "-mindepth -samefile -inum -links -uid -gid -fstype -regextype -printf -used -context "
    "-lname -ilname -D -O -files0-from -newermm -newerma -newermc -newerct -newerat -newercm "
    "-newermt -neweraa -newercc"
)


@command("find")
def _find(c: Cmd) -> tuple[Flow, ...]:
    args = c.args
    i = 0
    follow = False
    while i < len(args) and args[i].known and args[i].value in ("-H", "-L", "-P"):
        follow = args[i].value != "-P"
        i += 1
    starts: list[Field] = []
    while i < len(args) and not (
        args[i].known and (args[i].value[:1] in ("-", "(", "!") and args[i].value != "-")
    ):
        starts.append(args[i])
        i += 1
    if not starts:
        starts = [Field(".", raw=".")]
    locs = [c.loc(f) for f in starts]
    expr = args[i:]
    actions = None if follow else evaluate(c.st.run, expr, list(zip(starts, locs, strict=True)))
    if actions is not None:
        return _find_actions(c, actions, locs)
    acted = False
    out: list[Flow] = []
    j = 0
    while j < len(expr):
        e = expr[j]
        v = e.value if e.known else ""
        if v in _FIND_VALUE:
            j += 2
            continue
        if v == "-delete":
            acted = True
            for loc in locs:
                c.emit(DELETE, loc, recursive=True, note="find -delete removes what matches below")
        elif v in ("-exec", "-execdir", "-ok", "-okdir"):
            acted = True
            k = j + 1
            cmd: list[Field] = []
            while k < len(expr) and not (expr[k].known and expr[k].value in (";", "+")):
                cmd.append(expr[k])
                k += 1
            j = k
            if cmd:
                for loc in locs:
                    sub = [
                        Field(loc.raw, raw="{}", loc=loc, recursive=True)
                        if (f.known and f.value == "{}")
                        else (
                            Field(f.value.replace("{}", loc.raw), raw=f.raw, known=False)
                            if f.known and "{}" in f.value
                            else f
                        )
                        for f in cmd
                    ]
                    out.extend(c.st.dispatch(sub, ()))
        elif v in ("-fprint", "-fprint0", "-fls", "-fprintf"):
            if j + 1 < len(expr):
                c.emit(WRITE, c.loc(expr[j + 1]))
            j += 3 if v == "-fprintf" else 2
            continue
        j += 1
    if not acted:
        for loc in locs:
            c.emit(LIST, loc, recursive=True)
    if not out:
        out = [Flow(src=loc, names=True, recursive=True, via="find") for loc in locs]
    return tuple(out)


def _find_actions(c: Cmd, actions: list[Action], locs: list[Location]) -> tuple[Flow, ...]:
    """Run ``find``'s actions on the files its expression selects (see ``findexpr``)."""
    out: list[Flow] = []
    acted = False
    for act in actions:
        if act.kind == "-delete":
            acted = True
            for e in act.hits:
                c.emit(DELETE, c.st.local(e.name), note="find -delete removes what matches")
        elif act.kind in ("-exec", "-ok"):
            acted = True
            if act.batch:
                names = [Field(e.name, raw="{}") for e in act.hits]
                if names:
                    out.extend(c.st.dispatch([*act.argv[:-1], *names], ()))
                continue
            for e in act.hits:
                out.extend(c.st.dispatch(_find_argv(act.argv, e.name), ()))
        elif act.kind in ("-execdir", "-okdir"):
            acted = True
            for e in act.hits:
                # run from the folder that holds the file, which it names ./NAME
                sub = c.st.fork()
                sub.cwd = _execdir_folder(c, e.name)
                name = "./" + os.path.basename(e.name.rstrip("/"))
                out.extend(sub.dispatch(_find_argv(act.argv, name), ()))
        elif act.kind == "-fprint" and act.target is not None:
            c.emit(WRITE, c.loc(act.target))
        elif act.kind == "-print":
            out.extend(
                Flow(src=c.st.local(e.name), names=True, recursive=e.kind == "d", via="find")
                for e in act.hits
            )
    if not acted:
        for loc in locs:
            c.emit(LIST, loc, recursive=True)
    return tuple(out)


def _execdir_folder(c: Cmd, name: str) -> str | None:
    """The folder ``find -execdir`` runs its command in for the file ``name`` (as find names
    it): the folder that name's last part is in, taken from the name itself, so that a start
    point such as ``.``, ``..`` or ``sub`` is run on from find's own folder, as GNU find does
    (``None``: a folder the analyser cannot place)."""
    stripped = name.rstrip("/")
    folder = (os.path.dirname(stripped) or ".") if stripped else "/"
    return c.st.local(folder).path


def _find_argv(argv: list[Field], name: str) -> list[Field]:
    """An ``-exec`` command with ``{}`` standing for ``name`` (also inside a word)."""
    return [
        Field(f.value.replace("{}", name), raw=f.raw) if f.known and "{}" in f.value else f
        for f in argv
    ]


__all__ += ["joined_script"]
