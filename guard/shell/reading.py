"""Commands that read files and print what they read, or facts about them.

Readers that print file content (``cat``, ``head``, ``grep``, ``sort``) pass that content on
as flows, so a redirect or a pipe further along turns it into a copy; readers that print only
facts about files (``ls``, ``wc``, ``sha256sum``) do not. Inert commands that touch no file
are registered here too: every program the table names is one the analyser judges.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace

from guard.shell.common import (
    LIST,
    READ,
    byte_count,
    isdir,
)
from guard.shell.core import TABLE, Cmd, command
from guard.shell.options import Opts, Spec, parse
from guard.shell.words import OPAQUE, Field, Flow, names
from guard.types import EffectKind


def _noop_out(c: Cmd) -> tuple[Flow, ...]:
    return ()


# Builtins and tools that touch no file and print nothing worth following.
_NOOP = command(
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
} | {
    _sum: _Reader(Spec.of("al", "algorithm length"), content=False)
    for _sum in names("sha1sum sha224sum sha256sum sha384sum sha512sum md5sum b2sum shasum")
}


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
            out.extend(first_bytes(c, f, c.content(f, transform=not r.exact), count))
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


def first_bytes(c: Cmd, f: Field, flows: tuple[Flow, ...], count: int | None) -> tuple[Flow, ...]:
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


_READER = command(*_READERS)(_reader)


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
