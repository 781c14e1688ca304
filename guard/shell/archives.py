"""Handlers for archivers, compressors, splitters and encoders: copies under another form.

``tar``, ``zip``, ``gzip``, ``base64``, ``xxd``, ``openssl enc``, ``gpg`` and ``split`` all put the
content of their input somewhere else, so each is a COPY from the input to the output (or a flow to
standard output). Decoders also keep the decoded text when they can, because ``... | base64 -d | sh``
runs it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from guard.shell.common import (
    DELETE,
    READ,
    WRITE,
    copy_effect,
    isdir,
    run_shell_text,
    split_remote,
    take_whole,
)
from guard.shell.core import Cmd, State, command
from guard.shell.filters import Drop, kept, tar_filter, zip_filter, zip_name
from guard.shell.hooks import env_options, hidden_options, run_hook
from guard.shell.options import Opts, Spec, parse
from guard.shell.words import OPAQUE, Field, Flow
from guard.types import Location

__all__: list[str] = []


# ------------------------------------------------------ archives and codecs


def _old_style(args: list[Field], takes: str) -> list[Field]:
    """``tar czf x d``: the first word is a cluster of letters whose values follow in order."""
    if (
        not args
        or not args[0].known
        or args[0].value.startswith("-")
        or not args[0].value.isalpha()
    ):
        return args
    letters = args[0].value
    out: list[Field] = []
    k = 1
    for ch in letters:
        out.append(Field("-" + ch, raw="-" + ch))
        if ch in takes and k < len(args):
            out.append(args[k])
            k += 1
    return out + list(args[k:])


_TAR_SPEC = Spec.of(
    "fbCTXgKLNVHIF",
    (
        "file directory files-from exclude-from exclude transform xform use-compress-program "
        "to-command owner group mode mtime newer after-date label format blocking-factor "
        "record-size suffix checkpoint-action index-file listed-incremental info-script "
        "new-volume-script rsh-command rmt-command backup checkpoint occurrence "
        "strip-components tape-length volno-file owner-map group-map sort warning "
        "quoting-style hole-detection"
    ),
    optional="backup checkpoint occurrence",
)


# Options that change how GNU tar matches --exclude patterns: such a filter is not modelled.
_TAR_MATCHING = frozenset(
    ("--anchored", "--no-wildcards", "--ignore-case", "--no-wildcards-match-slash", "--null")
)
_SPACE = " \t\n\v\f\r"


class _TarExcludes:
    """GNU tar's ``--exclude``/``-X``: each applies to the operands given after it."""

    def __init__(self, c: Cmd, o: Opts) -> None:
        # (operands before it, its patterns or None when they cannot be read)
        self.steps: list[tuple[int, list[str] | None]] = []
        self.off = any(not f.known for f in c.args) or any(n in _TAR_MATCHING for n, _ in o.items)
        for (given, value), at in zip(o.items, o.before, strict=True):
            from_file = given in ("-X", "--exclude-from") or (
                len(given) > 10 and "--exclude-from".startswith(given)
            )
            if given != "--exclude" and not from_file:
                continue
            if value is None or not value.known or not value.value:
                self.steps.append((at, None))
            elif not from_file:
                self.steps.append((at, [value.value]))
            else:
                c.read(value)
                text = c.st.run.read_text(c.loc(value))
                # tar drops trailing white space and empty lines, as gnulib's add_exclude_fp
                lines = None if text is None else [ln.rstrip(_SPACE) for ln in text.split("\n")]
                self.steps.append((at, None if lines is None else [ln for ln in lines if ln]))

    def drop_for(self, k: int) -> Drop | None:
        """The filter for operand ``k``; ``None`` when none applies or it cannot be read."""
        if self.off:
            return None
        patterns: list[str] = []
        for at, got in self.steps:
            if at > k:
                continue
            if got is None:
                return None
            patterns.extend(got)
        return tar_filter(patterns) if patterns else None


def _tar_dirs(c: Cmd, o: Opts) -> list[tuple[int, State]]:
    """The shells tar's operands are found from: GNU tar's ``-C DIR`` is positional and each
    is relative to the one before. (operands before it, state), first the command's own."""
    out: list[tuple[int, State]] = [(0, c.st)]
    for (given, value), at in zip(o.items, o.before, strict=True):
        if value is None or not (
            given == "-C" or (len(given) >= 5 and "--directory".startswith(given))
        ):
            continue
        prev = out[-1][1]
        st = prev.fork()
        st.cwd = prev.loc(value).path
        out.append((at, st))
    return out


def _tar_name(f: Field) -> str | None:
    """The name GNU tar gives an operand (and, below it, ``name/child``)."""
    if not f.known:
        return None
    return f.value.rstrip("/") or f.value


def _archive_loc(c: Cmd, f: Field) -> Location:
    rem = split_remote(f.value) if f.known else None
    if rem is not None:
        return c.st.remote(*rem)[0]
    return c.loc(f)


@command("tar bsdtar gtar")
def _tar(c: Cmd) -> tuple[Flow, ...]:
    # GNU tar puts the options of $TAR_OPTIONS before its own
    args = env_options(c, "TAR_OPTIONS") + _old_style(c.args, "fbTXgKLNV")
    c = Cmd(c.st, c.name, args, c.stdin, c.via)
    o = parse(args, _TAR_SPEC)
    create = o.has(
        "-c", "--create", "-r", "--append", "-u", "--update", "-A", "--catenate", "--concatenate"
    )
    extract = o.has("-x", "--extract", "--get")
    archive = o.value("-f", "--file")
    stdio = archive is None or (archive.known and archive.value == "-")
    cdir = o.value("-C", "--directory")
    bases = _tar_dirs(c, o)
    base = bases[-1][1]
    if create:
        flows: list[Flow] = []
        excludes = _TarExcludes(c, o)
        for k, f in enumerate(o.operands):
            if f.known and f.value == "-":
                continue
            # -C applies to the operands after it
            loc = next(b for at, b in reversed(bases) if at <= k).loc(f)
            rec = isdir(c, loc) or loc.path is None
            parts = kept(c.st.run, loc, _tar_name(f), excludes.drop_for(k))
            for ploc, _rel, prec in parts if parts is not None else [(loc, "", rec)]:
                c.emit(READ, ploc, recursive=prec)
                flows.append(Flow(src=ploc, recursive=prec, exact=False, via="tar"))
        for f in o.values("--add-file"):
            loc = base.loc(f)
            rec = isdir(c, loc) or loc.path is None
            c.emit(READ, loc, recursive=rec)
            flows.append(Flow(src=loc, recursive=rec, exact=False, via="tar"))
        for lf in o.values("-T", "--files-from"):
            if lf.known and lf.value == "-":
                flows.extend(_names_as_content(c, c.stdin, base))
                continue
            c.read(lf)
            text = c.st.run.read_text(c.loc(lf))
            if text is None:
                flows.append(
                    Flow(
                        src=Location(raw=f"<files listed in {lf.value}>"),
                        recursive=True,
                        exact=False,
                        via="tar",
                    )
                )
            else:
                for line in text.splitlines()[:1000]:
                    if line.strip():
                        loc = base.local(line.strip())
                        flows.append(Flow(src=loc, recursive=isdir(c, loc), exact=False, via="tar"))
        if o.has("--remove-files"):
            for fl in flows:
                if fl.src is not None:
                    c.emit(DELETE, fl.src, recursive=fl.recursive)
        _tar_hooks(c, o, tuple(flows), create=True)
        if stdio or archive is None:
            return tuple(flows)
        c.write_to(
            _archive_loc(c, archive),
            tuple(flows),
            append=o.has("-r", "--append", "-u", "--update"),
        )
        return ()
    if extract:
        if stdio or archive is None:
            inputs = tuple(fl.through("tar", transform=True) for fl in c.stdin)
        else:
            aloc = _archive_loc(c, archive)
            c.emit(READ, aloc)
            inputs = (Flow(src=aloc, exact=False, via="tar"),)
        piped = _tar_hooks(c, o, inputs, create=False)
        if o.value("--to-command") is not None:
            return piped  # the members go to the command, not to files
        if o.has("-O", "--to-stdout"):
            return inputs
        dest = base.local(".") if base.cwd is not None else Location(raw=cdir.raw if cdir else ".")
        for fl in inputs:
            if fl.src is not None and not fl.names:
                copy_effect(c, fl.src, dest, recursive=fl.recursive, via=fl.via or "tar")
        if any(fl.opaque for fl in inputs):
            c.emit(
                WRITE,
                dest,
                recursive=True,
                certain=False,
                note="tar extracts data of unknown origin here",
            )
        return ()
    data = c.stdin
    if archive is not None and not stdio:
        aloc = _archive_loc(c, archive)
        c.emit(READ, aloc)
        data = (Flow(src=aloc, exact=False, via="tar"),)
    _tar_hooks(c, o, data, create=False)
    return (OPAQUE,)


def _tar_hooks(c: Cmd, o: Opts, data: tuple[Flow, ...], *, create: bool) -> tuple[Flow, ...]:
    """The commands tar's options make it run, fed the data tar gives them: the archive stream
    to a compressor (``-I``) or remote shell, each member to ``--to-command`` (whose output is
    returned: it goes to tar's own). Checkpoint and volume scripts get no data."""
    hidden_options(c)
    for v in o.values("--checkpoint-action"):
        if not v.known:
            c.unseen(f"tar --checkpoint-action the guard cannot see ({v.raw})")
        elif v.value.startswith("exec="):
            run_hook(c, v.value[5:], what="tar --checkpoint-action")
    for v in o.values("--info-script", "--new-volume-script", "-F"):
        run_hook(c, v, what="tar --info-script")
    run_hook(c, o.value("--rsh-command"), what="tar --rsh-command", stdin=data)
    prog = o.value("--use-compress-program", "-I")
    if prog is not None and prog.known and not create:
        prog = Field(prog.value + " -d", raw=prog.raw)  # tar asks it to decompress
    run_hook(c, prog, what="tar --use-compress-program", stdin=data)
    return run_hook(c, o.value("--to-command"), what="tar --to-command", stdin=data)


def _names_as_content(c: Cmd, flows: tuple[Flow, ...], base: State) -> list[Flow]:
    """File names arriving on stdin (``find d | cpio -o``) as the content of those files."""
    out: list[Flow] = []
    for fl in flows:
        if fl.names and fl.src is not None:
            out.append(Flow(src=fl.src, recursive=True, exact=False, via=fl.via))
        elif fl.text is not None:
            for line in fl.text.splitlines()[:1000]:
                if line.strip():
                    loc = base.local(line.strip())
                    out.append(Flow(src=loc, recursive=isdir(c, loc), exact=False, via=c.name))
        elif fl.src is not None:
            text = c.st.run.read_text(fl.src)
            if text is not None:
                for line in text.splitlines()[:1000]:
                    if line.strip():
                        loc = base.local(line.strip())
                        out.append(Flow(src=loc, recursive=isdir(c, loc), exact=False, via=c.name))
            else:
                out.append(
                    Flow(
                        src=Location(raw=f"<files named in {fl.src.raw}>"),
                        recursive=True,
                        exact=False,
                    )
                )
        else:
            out.append(
                Flow(
                    src=Location(raw="<files named on stdin>"),
                    recursive=True,
                    exact=False,
                    via=c.name,
                )
            )
    return out


@command("cpio")
def _cpio(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of("FIODEHMRs", "file directory format pattern-file owner block-size rsh-command"),
    )
    ops = list(o.operands)
    hidden_options(c)
    # the program cpio runs to reach an archive on another host, fed the archive
    run_hook(c, o.value("--rsh-command"), what="cpio --rsh-command", stdin=c.stdin)
    if o.has("-o", "--create"):
        flows = tuple(_names_as_content(c, c.stdin, c.st))
        target = o.value("-O", "-F", "--file")
        if target is not None:
            c.write_to(target, flows, append=False)
            return ()
        return flows
    if o.has("-p", "--pass-through") and ops:
        dest = c.loc(ops[-1])
        for fl in _names_as_content(c, c.stdin, c.st):
            if fl.src is not None:
                copy_effect(c, fl.src, dest, recursive=fl.recursive)
        return ()
    if o.has("-i", "--extract"):
        src = o.value("-I", "-F", "--file")
        inputs = c.content(src) if src is not None else c.passthrough(transform=True)
        ddir = o.value("-D", "--directory")
        dest = c.loc(ddir) if ddir is not None else c.st.local(".")
        for fl in inputs:
            if fl.src is not None:
                copy_effect(c, fl.src, dest, recursive=fl.recursive)
        return ()
    return (OPAQUE,)


_ZIP_FLAGS = "qrvjmDyXgkoz0123456789"  # one-letter zip flags that may come before -x in a cluster
# Options that change how zip matches -x/-i patterns, or what its operands are.
_ZIP_MATCHING = frozenset(
    (
        "-ic",
        "--ignore-case",
        "-ws",
        "--wild-stop-dirs",
        "-nw",
        "--no-wild",
        "-R",
        "--recurse-patterns",
    )
)


@dataclass(slots=True)
class _ZipLists:
    """zip's ``-x``/``-i`` lists, taken out of its arguments."""

    args: list[Field]
    excludes: list[str]
    includes: list[str]
    known: bool
    test: Field | None = None  # -TT/--unzip-command: the command that tests the archive


def _zip_lists(c: Cmd) -> _ZipLists:
    """Split zip's arguments: ``-x``/``-i`` (and ``--exclude``/``--include``) start a list of
    patterns that ends at the next argument starting with ``-``; ``-xPAT`` and ``--exclude=PAT``
    give one; ``-x@FILE`` reads them from FILE, one a line. ``$ZIPOPT`` comes first."""
    out = _ZipLists([], [], [], True)
    mode = ""
    for f in c.args:
        if mode == "T":
            out.test, mode = f, ""
            continue
        if not f.known:
            out.known = False
            mode = ""  # it may end the list: what follows may be operands
            out.args.append(f)
            continue
        v = f.value
        if mode and not v.startswith("-"):
            (out.excludes if mode == "x" else out.includes).append(v)
            if not v:
                out.known = False
            continue
        mode = ""
        if v in _ZIP_MATCHING:
            out.known = False
        name, eq, val = v.partition("=")
        if name in ("-TT", "--unzip-command"):
            if eq:
                out.test = Field(val, raw=val)
            else:
                mode = "T"
            continue
        if name in ("--exclude", "--include"):
            kind = "x" if name == "--exclude" else "i"
            if eq:
                _zip_one(c, out, kind, val)
            else:
                mode = kind
            continue
        cut = _zip_list_letter(v)
        if cut:
            if cut > 1:
                out.args.append(Field(v[:cut], raw=f.raw))
            if cut + 1 < len(v):
                _zip_one(c, out, v[cut], v[cut + 1 :])
            else:
                mode = v[cut]
            continue
        out.args.append(f)
    return out


def _zip_list_letter(v: str) -> int:
    """Where ``-x``/``-i`` sits in a cluster of zip's one-letter flags (``-qrx``), or 0.

    zip also has two-letter options (``-ic``, ``-li``, ``-TT``): only plain flags may come
    before the letter, and ``-ic`` is not ``-i c``.
    """
    if not v.startswith("-") or v.startswith("--") or v == "-ic":
        return 0
    for k in range(1, len(v)):
        if v[k] in "xi":
            return k
        if v[k] not in _ZIP_FLAGS:
            return 0
    return 0


def _zip_one(c: Cmd, out: _ZipLists, kind: str, value: str) -> None:
    patterns = out.excludes if kind == "x" else out.includes
    if not value.startswith("@"):
        patterns.append(value)
        out.known = out.known and bool(value)
        return
    lf = Field(value[1:], raw=value[1:])
    c.read(lf)
    text = c.st.run.read_text(c.loc(lf))
    if text is None or "\r" in text:
        out.known = False
        return
    patterns.extend(ln for ln in text.split("\n") if ln)


@command("zip")
def _zip(c: Cmd) -> tuple[Flow, ...]:
    c = Cmd(c.st, c.name, env_options(c, "ZIPOPT") + list(c.args), c.stdin, c.via)
    lists = _zip_lists(c)
    o = parse(
        lists.args,
        Spec.of(
            "bntOPZsY",
            "temp-path suffixes from-date output-file password compression-method split-size",
        ),
    )
    ops = list(o.operands)
    if not ops:
        return (OPAQUE,)
    archive, files = ops[0], ops[1:]
    hidden_options(c)
    if lists.test is not None:
        test = lists.test
        if test.known:
            # zip runs it through the shell with the archive's name, at {} or at the end
            name = shlex.quote(archive.value) if archive.known else "archive.zip"
            cmd = test.value
            test = Field(cmd.replace("{}", name) if "{}" in cmd else f"{cmd} {name}", raw=cmd)
        run_hook(c, test, what="zip -TT")
    rec = o.has("-r", "-R", "--recurse-paths")
    drop = (
        zip_filter(lists.excludes, lists.includes)
        if lists.known and (lists.excludes or lists.includes)
        else None
    )
    flows: list[Flow] = []
    for f in files:
        if f.known and f.value == "-":
            flows.extend(c.passthrough(transform=True))
            continue
        loc = c.loc(f)
        r = take_whole(c, loc, rec) or f.recursive
        parts = (
            kept(c.st.run, loc, zip_name(f.value), drop, follow_links=True)
            if f.known and f.loc is None and (r or not isdir(c, loc))
            else None
        )
        for ploc, _rel, prec in parts if parts is not None else [(loc, "", r)]:
            c.emit(READ, ploc, recursive=prec)
            flows.append(Flow(src=ploc, recursive=prec, exact=False, via="zip"))
    if o.has("-@", "--names-stdin"):
        flows.extend(_names_as_content(c, c.stdin, c.st))
    if o.has("-m", "--move"):
        for fl in flows:
            if fl.src is not None:
                c.emit(DELETE, fl.src, recursive=fl.recursive)
    out_to = o.value("-O", "--output-file") or archive
    if out_to.known and out_to.value == "-":
        return tuple(flows)
    c.write_to(_archive_loc(c, out_to), tuple(flows), append=False)
    return ()


@command("unzip", "funzip")
def _unzip(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    cut = next((k for k, f in enumerate(args) if f.known and f.value == "-x"), None)
    dval: Field | None = None
    for k, f in enumerate(args):
        if f.known and f.value == "-d" and k + 1 < len(args):
            dval = args[k + 1]
    if cut is not None:
        args = args[:cut]
    o = parse(args, Spec.of("dP", ""))
    ops = list(o.operands)
    if not ops:
        return c.passthrough(transform=True) if c.name == "funzip" else (OPAQUE,)
    archive = ops[0]
    aloc = c.loc(archive)
    c.emit(READ, aloc)
    if o.has("-l", "-t", "-v", "-Z", "-z"):
        return (OPAQUE,)
    if o.has("-p", "-c") or c.name == "funzip":
        return (Flow(src=aloc, exact=False, via=c.name),)
    dest = c.loc(dval) if dval is not None else c.st.local(".")
    copy_effect(c, aloc, dest, recursive=False)
    return ()


@command("7z 7za 7zr 7zz")
def _7z(c: Cmd) -> tuple[Flow, ...]:
    ops = [f for f in c.args if not (f.known and f.value.startswith("-"))]
    switches = [f.value for f in c.args if f.known and f.value.startswith("-")]
    if len(ops) < 2 or not ops[0].known:
        for f in ops[1:]:
            c.unknown("7z with an unknown command", c.loc(f))
        return (OPAQUE,)
    verb, archive, files = ops[0].value, ops[1], ops[2:]
    aloc = c.loc(archive)
    if verb in ("a", "u"):
        flows = []
        for f in files:
            loc = c.loc(f)
            c.emit(READ, loc, recursive=isdir(c, loc))
            flows.append(
                Flow(src=loc, recursive=isdir(c, loc) or loc.path is None, exact=False, via="7z")
            )
        if "-sdel" in switches:
            for fl in flows:
                if fl.src is not None:
                    c.emit(DELETE, fl.src, recursive=fl.recursive)
        if any(s.startswith("-so") for s in switches):
            return tuple(flows)
        c.write_to(aloc, tuple(flows), append=verb == "u")
        return ()
    if verb in ("x", "e"):
        c.emit(READ, aloc)
        outdir = next((s[2:] for s in switches if s.startswith("-o")), ".")
        if "-so" in switches:
            return (Flow(src=aloc, exact=False, via="7z"),)
        copy_effect(c, aloc, c.st.local(outdir or "."), recursive=False)
        return ()
    if verb == "d":
        c.emit(WRITE, aloc)
        return ()
    c.emit(READ, aloc)
    return (OPAQUE,)


@command("split", "csplit")
def _split(c: Cmd) -> tuple[Flow, ...]:
    if c.name == "csplit":
        o = parse(c.args, Spec.of("bfn", "suffix-format prefix digits"))
        ops = list(o.operands)
        if not ops:
            return ()
        infile = ops[0]
        pf = o.value("-f", "--prefix")
        prefix = pf.value if pf is not None else "xx"
        first = prefix + "00"
    else:
        o = parse(
            c.args,
            Spec.of(
                "abCIlnt",
                (
                    "suffix-length bytes line-bytes lines number separator additional-suffix "
                    "filter numeric-suffixes hex-suffixes"
                ),
                optional="numeric-suffixes hex-suffixes",
            ),
        )
        ops = list(o.operands)
        infile = ops[0] if ops else Field("-", raw="-")
        prefix = ops[1].value if len(ops) > 1 and ops[1].known else "x"
        extra = o.value("--additional-suffix")
        numeric = o.has("-d", "-x", "--numeric-suffixes", "--hex-suffixes")
        first = (
            prefix
            + ("00" if numeric else "aa")
            + (extra.value if extra is not None and extra.known else "")
        )
    if infile.known and infile.value == "-":
        flows = c.passthrough(transform=True)
    else:
        c.read(infile)
        flows = c.content(infile, transform=True)
    filt = o.value("--filter") if c.name == "split" else None
    if filt is not None:
        if filt.known:
            return run_shell_text(c, filt.value, what="split --filter", stdin=flows)
        c.unknown("split --filter with an unknown command")
        return ()
    dest = c.st.local(first) if (len(ops) < 2 or ops[1].known) else Location(raw=ops[1].raw + "*")
    c.write_to(dest, flows, append=False)
    return ()


@command("ar")
def _ar(c: Cmd) -> tuple[Flow, ...]:
    ops = list(c.args)
    if len(ops) < 2 or not ops[0].known:
        return (OPAQUE,)
    key = ops[0].value.lstrip("-")
    archive, members = ops[1], ops[2:]
    aloc = c.loc(archive)
    if "r" in key or "q" in key:
        flows: list[Flow] = []
        for f in members:
            c.read(f)
            flows.extend(c.content(f, transform=True))
        c.write_to(aloc, tuple(flows), append=True)
    elif "x" in key:
        c.emit(READ, aloc)
        copy_effect(c, aloc, c.st.local("."), recursive=False)
    elif "p" in key:
        return (Flow(src=aloc, exact=False, via="ar"),)
    else:
        c.emit(READ, aloc)
    return ()
