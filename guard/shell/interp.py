"""Commands that run other commands: wrappers, shells, ``eval``, scripts, ``xargs``, interpreters.

Wrappers (``sudo``, ``env``, ``timeout``...) are analysed as the command they run. Shell text
(``bash -c``, ``eval``, ``su -c``, scripts read from disk at call time, heredocs fed to a shell) is
parsed and walked like the outer command, one level deeper. Text that had to be decoded first is
analysed too, and also reported as obfuscation.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import replace

from guard.shell.code import (
    inspect_code,
    inspect_python,
    load_file,
    load_spec,
    mentioned_files,
    sqlite_commands,
)
from guard.shell.core import TABLE, Cmd, State, command, joined_script
from guard.shell.options import Opts, Spec, parse
from guard.shell.record import MAX_LOOP
from guard.shell.sed import perl_subst_to_sed
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import ConfigEdit, EffectKind, Location

__all__ = [
    "file_text",
    "perl_command",
    "run_code",
    "run_script_file",
    "run_stdin_script",
    "run_text_in",
    "script_language",
    "shell_for",
]

_SHELLS = names("bash sh dash zsh ksh ash mksh yash posh rbash busybox-sh")
# Script languages whose code is scanned for the paths and APIs it uses.
_SCANNED = ("perl", "ruby", "node", "nodejs", "php", "lua", "Rscript", "tclsh", "deno", "bun")
_PYTHONS = re.compile(r"python(\d+(\.\d+)?)?|pypy3?")


# -------------------------------------------------------------- helpers


def shell_for(c: Cmd, *, stdin: tuple[Flow, ...], pos: list[str] | None, arg0: str) -> State | None:
    """A child shell of this command's shell, with the exported variables."""
    st = c.st
    return st.new_shell(
        cwd=st.cwd,
        home=st.home,
        host=st.host,
        stdin=stdin,
        variables=st.env_vars(),
        pos=pos,
        arg0=arg0,
    )


def _positional(args: list[Field]) -> list[str] | None:
    """Positional parameters for a script, or ``None`` when one of them is unknown."""
    return [a.value for a in args] if all(a.known for a in args) else None


def run_text_in(
    c: Cmd,
    field: Field,
    *,
    what: str,
    stdin: tuple[Flow, ...],
    pos: list[str] | None = None,
    arg0: str = "bash",
    same: bool = False,
    shell: State | None = None,
) -> tuple[Flow, ...]:
    """Analyse shell text given as one word (``bash -c WORD``, ``eval``), in ``shell`` when
    given (a new shell already set up), else in a new child shell (or this one, ``same``)."""
    if field.obfuscated:
        c.unknown(f"{what}: obfuscated command text")
    if not field.known:
        c.unknown(f"{what}: command text the analyser cannot see ({short(field.raw)})")
        for fl in field.flows:
            if fl.text is not None:
                return _run_decoded(c, fl.text, what=what, stdin=stdin)
        return (OPAQUE,)
    if same:
        return c.st.run_nested_text(field.value, what=what)
    sub = shell or shell_for(c, stdin=stdin, pos=pos if pos is not None else [], arg0=arg0)
    if sub is None:
        return (OPAQUE,)
    return sub.run_text(field.value, what=what)


def run_code(
    c: Cmd,
    text: str,
    *,
    what: str,
    cwd: str | None,
    variables: dict[str, Var] | None = None,
    pos: list[str] | None = None,
    stdin: tuple[Flow, ...] = (),
) -> tuple[Flow, ...]:
    """Analyse shell text that a program runs by itself (a make recipe, an npm script, a git
    alias, hook command or configured editor), as ``sh -c TEXT`` started by that program.

    Args:
        c: The program's command.
        text: The shell text.
        what: How to name the text in notes.
        cwd: Where the program runs it (``None``: a folder the analyser cannot tell).
        variables: Its environment; by default the variables the program inherited.
        pos: Its positional parameters; ``None`` when the program passes arguments the
            analyser cannot know (a file name it picks).
        stdin: What it reads on standard input.
    """
    st = c.st
    sub = st.new_shell(
        cwd=cwd,
        home=st.home,
        host=st.host,
        stdin=stdin,
        variables=st.env_vars() if variables is None else variables,
        pos=pos,
        arg0="sh",
    )
    if sub is None:
        return (OPAQUE,)
    return sub.run_text(text, what=what)


def _run_decoded(c: Cmd, text: str, *, what: str, stdin: tuple[Flow, ...]) -> tuple[Flow, ...]:
    sub = shell_for(c, stdin=stdin, pos=[], arg0="bash")
    if sub is None:
        return (OPAQUE,)
    return sub.run_text(text, what=f"{what} (decoded)")


def run_stdin_script(
    c: Cmd,
    lang: str,
    *,
    what: str,
    run: Callable[[str], tuple[Flow, ...]] | None = None,
    shell: State | None = None,
) -> tuple[Flow, ...]:
    """Analyse the data on standard input as a script: heredocs, ``cat x | sh``, ``... | base64 -d | sh``.

    Args:
        c: The interpreter's command.
        lang: ``shell``, ``python`` or another language name.
        what: How to name the script in notes.
        run: A callable ``(text) -> flows`` that analyses shell text somewhere else (``ssh``).
        shell: The shell that runs the script, already set up (else a new child shell).
    """
    out: list[Flow] = []
    for fl in c.stdin:
        if fl.names:
            continue
        text: str | None = None
        if fl.text is not None:
            text = fl.text
            if fl.decoded:
                c.unknown(f"{what} runs decoded data (obfuscation)")
        elif fl.src is not None and fl.exact:
            if c.st.looping:
                c.unseen(f"a loop runs {what} again on each pass: its file can change", fl.src)
            text = c.st.run.read_text(fl.src)
            if text is None:
                c.unseen(f"{what} runs a file the analyser cannot read", fl.src)
                continue
        elif fl.src is not None:
            c.unseen(f"{what} runs transformed content of a file", fl.src)
            continue
        else:
            c.unseen(f"{what} runs data of unknown origin")
            continue
        if lang == "shell":
            if run is not None:
                out.extend(run(text))
                continue
            sub = shell or shell_for(c, stdin=(), pos=[], arg0=c.name)
            if sub is not None:
                out.extend(sub.run_text(text, what=what))
        elif lang == "python":
            out.extend(inspect_python(c, text, [], what=what))
        else:
            out.extend(inspect_code(c, text, [], what=what, lang=lang))
    return tuple(out)


def _shebang(text: str) -> str:
    """The language a script's ``#!`` line names (``shell`` without one, as bash runs it)."""
    if not text.startswith("#!"):
        return "shell"
    line = text[2:].split("\n", 1)[0].strip()
    parts = line.split()
    if not parts:
        return "shell"
    prog = os.path.basename(parts[0])
    if prog == "env" and len(parts) > 1:
        rest = [p for p in parts[1:] if not p.startswith("-")]
        prog = os.path.basename(rest[0]) if rest else "env"
    if prog in _SHELLS:
        return "shell"
    if _PYTHONS.fullmatch(prog):
        return "python"
    return prog


def file_text(c: Cmd, loc: Location) -> tuple[bool, str | None]:
    """Whether a file will be there when the command gets to it (on disk, or written earlier
    in the command line), and its text then (``None``: it cannot be read).

    Only regular files are read: a folder, a device or a named pipe is there but unreadable
    (opening a pipe would block the guard until someone writes to it).
    """
    path = loc.path
    if path is None:
        return False, None
    run = c.st.run
    if path in run.overlay or run.isfile(path):
        return True, run.read_text(loc)
    return run.exists(path), None


def script_language(text: str) -> str | None:
    """The language :func:`run_script_file` reads a script's text as: ``shell``, ``python``
    or a language whose code it scans; ``None`` for a binary or an interpreter it does not
    know (what such a script does is not read)."""
    if "\0" in text[:4096] or text.startswith("\x7fELF"):
        return None
    kind = _shebang(text)
    return kind if kind in ("shell", "python", *_SCANNED) else None


def run_script_file(
    c: Cmd,
    loc: Location,
    args: list[Field],
    *,
    lang: str | None = None,
    same: bool = False,
    stdin: tuple[Flow, ...] = (),
    shell: State | None = None,
) -> tuple[Flow, ...]:
    """Read a script now and analyse it (``./x.sh``, ``bash x.sh``, ``source x``, ``python x.py``);
    a shell script runs in ``shell`` when given (a new shell already set up)."""
    if c.st.looping:
        c.unseen("a loop runs this file again on each pass: it can change between passes", loc)
    head = c.st.run.read_head(loc)
    if head is not None and (b"\0" in head or head.startswith(b"\x7fELF")):
        if loc.path is None or c.st.run.writable(loc.path):
            # A program the agent may have made or copied (a renamed shell): not a system one.
            c.unseen(f"runs a program the analyser cannot read ({short(loc.raw)})", loc)
        return _unknown_args(c, args)
    text = c.st.run.read_text(loc) if head is not None else None
    if text is None:
        c.unseen("script cannot be read at analysis time", loc)
        return (OPAQUE,)
    kind = lang or _shebang(text)
    what = f"script {loc.raw}"
    if kind == "shell":
        if same:
            st = c.st
            saved = st.pos
            if args:
                st.pos = _positional(args)
            try:
                return st.run_nested_text(text, what=what)
            finally:
                st.pos = saved
        sub = shell or shell_for(c, stdin=stdin, pos=_positional(args), arg0=loc.raw)
        if sub is None:
            return (OPAQUE,)
        return sub.run_text(text, what=what)
    # the script's folder is where its imports and requires are looked for first
    base = os.path.dirname(loc.raw)
    if kind == "python":
        return inspect_python(c, text, args, what=what, base=base)
    if kind == "perl":
        switches = perl_shebang_switches(text)
        if any(w.strip("-wWXtTU") for w in switches):
            # perl honours the switches of a `#!...perl` line as if given on its command line
            # (warnings and taint checks alone change nothing the analyser judges)
            words = [Field(w, raw=w) for w in (*switches, "-e")]
            body = "\n" + text.split("\n", 1)[1] if "\n" in text else ""  # the #! line read
            code = Field(body, raw=loc.raw)
            return perl_command(Cmd(c.st, "perl", [*words, code, *args], c.stdin, c.via))
    if kind in _SCANNED:
        return inspect_code(c, text, args, what=what, lang=kind, base=base)
    c.unknown(f"{what} runs with an interpreter the analyser does not know ({kind})", loc)
    return _unknown_args(c, args)


def _unknown_args(c: Cmd, args: list[Field]) -> tuple[Flow, ...]:
    return TABLE["/unknown"](Cmd(c.st, c.name, args, c.stdin, c.via))


# ----------------------------------------------------------- unknown commands

# What a program asked only this prints and does nothing else (by a convention every tool keeps).
_ASKS = names("--version --help")


def _candidates(c: Cmd, f: Field) -> list[Location]:
    if f.pipe:
        return [fl.src for fl in f.flows if fl.src is not None]
    if f.loc is not None:
        return [f.loc]
    if not f.known:
        return [Location(raw=f.raw or f.value, path=None)]
    v = f.value
    out: list[Location] = []
    values = [v]
    if v.startswith("-"):
        values = [v.split("=", 1)[1]] if "=" in v else []
    elif "=" in v:
        values.append(v.split("=", 1)[1])
    if ":" in v:
        values.extend(p for p in v.split(":") if p.startswith(("/", "./", "../", "~")))
    for s in values:
        if not s or len(s) > 4096 or "\0" in s:
            continue
        loc = c.st.local(s)
        if loc.path is not None and c.st.run.exists(loc.path):
            out.append(loc)
    from guard.shell.common import split_remote

    rem = split_remote(v)
    if rem is not None and c.st.run.hosts.get(rem[0]) is not None:
        loc = c.st.remote(*rem)[0]
        if loc.path is not None and c.st.run.exists(loc.path):
            out.append(loc)
    return out


@command("/unknown")
def _unknown(c: Cmd) -> tuple[Flow, ...]:
    """A program judged by the places it is given. One the command table does not describe
    (reached by name, or a system binary by path) may run anything: the command it is handed,
    a hook named in its options or its own config files. That is code the analyser does not
    read, unless all it is asked is its version or its help. The table holds the inert programs
    (``files``) and the handlers that fall back on this judgement for what they do not model."""
    if c.name not in TABLE and not (
        len(c.args) == 1 and c.args[0].known and c.args[0].value in _ASKS
    ):
        c.unseen(
            f"{short(c.name)} is a program the analyser does not know: what it runs is not read"
        )
    hit = False
    for f in c.args:
        for loc in _candidates(c, f):
            hit = True
            c.emit(
                EffectKind.UNKNOWN,
                loc,
                certain=False,
                note=f"unknown command {short(c.name)} given a path",
            )
        for fl in f.flows:
            if fl.src is not None and not f.pipe:
                hit = True
                c.emit(
                    EffectKind.UNKNOWN,
                    fl.src,
                    certain=False,
                    note=f"unknown command {short(c.name)} given file content",
                )
    for fl in c.stdin:
        if fl.src is not None and not fl.names:
            hit = True
            c.emit(
                EffectKind.UNKNOWN,
                fl.src,
                certain=False,
                note=f"unknown command {short(c.name)} reads file content",
            )
    if not hit:
        c.emit(EffectKind.EXEC)
    return (*c.passthrough(transform=True), OPAQUE)


@command("/script")
def _script(c: Cmd) -> tuple[Flow, ...]:
    loc = c.st.local(c.name)
    c.emit(EffectKind.EXEC, loc)
    return run_script_file(c, loc, c.args, stdin=c.stdin)


# ------------------------------------------------------------------ shells


@command("busybox")
def _busybox(c: Cmd) -> tuple[Flow, ...]:
    if not c.args:
        return (OPAQUE,)
    head = c.args[0]
    if head.known and head.value in ("sh", "ash", "hush"):
        return c.st.dispatch([Field("sh", raw="sh"), *c.args[1:]], c.stdin)
    return c.st.dispatch(list(c.args), c.stdin)


@command("su", "runuser")
def _su(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "cgGsw" + ("u" if c.name == "runuser" else ""),
            "command group supp-group shell whitelist-environment session-command user",
        ),
    )
    cmd = o.value("-c", "--command", "--session-command")
    if cmd is not None:
        return run_text_in(c, cmd, what=f"{c.name} -c", stdin=c.stdin)
    if c.name == "runuser" and o.has("-u", "--user"):
        # runuser -u USER [--] COMMAND...: the command itself, not a shell's text
        return _run_rest(c, list(o.operands))
    return run_stdin_script(c, "shell", what=f"{c.name} shell")


@command("sg")
def _sg(c: Cmd) -> tuple[Flow, ...]:
    """``sg [-] GROUP [-c] COMMAND``: the command is text for ``/bin/sh -c``; without one, a
    shell reads standard input."""
    args = list(c.args)
    if args and args[0].known and args[0].value == "-":
        args = args[1:]
    args = args[1:]  # the group
    if args and args[0].known and args[0].value == "-c":
        args = args[1:]
    if not args:
        return run_stdin_script(c, "shell", what="sg shell")
    text, ph = joined_script(args)
    return run_text_in(c, Field(text, raw=text, known=not ph), what="sg", stdin=c.stdin)


@command("newgrp")
def _newgrp(c: Cmd) -> tuple[Flow, ...]:
    return run_stdin_script(c, "shell", what="newgrp shell")


@command("script")
def _script_cmd(c: Cmd) -> tuple[Flow, ...]:
    """``script [-c CMD] [FILE]``: runs the command (else a shell reading standard input) and
    writes what it printed to FILE (``typescript``) and to the log files it is given."""
    o = parse(
        c.args,
        Spec.of(
            "cEIOBTmo",
            "command echo log-in log-out log-io log-timing logging-format output-limit",
            optional="timing",
        ),
    )
    cmd = o.value("-c", "--command")
    if cmd is not None:
        out = run_text_in(c, cmd, what="script -c", stdin=c.stdin)
    else:
        out = run_stdin_script(c, "shell", what="script shell")
    typescript = o.operands[0] if o.operands else Field("typescript", raw="typescript")
    for f in [typescript, *o.values("-O", "--log-out", "-B", "--log-io")]:
        c.write_to(f, (*out, OPAQUE), append=o.has("-a", "--append"))
    for f in o.values("-I", "--log-in", "-T", "--log-timing", "-t", "--timing"):
        c.write_to(f, (OPAQUE,))
    return (*out, OPAQUE)


@command("eval")
def _eval(c: Cmd) -> tuple[Flow, ...]:
    if not c.args:
        return ()
    text, ph = joined_script(c.args)
    if ph:
        c.unknown(
            f"eval of a value the analyser cannot see ({short(' '.join(a.raw for a in c.args))})"
        )
        for v in ph.values():
            for fl in v.flows:
                if fl.text is not None:
                    _run_decoded(c, fl.text, what="eval", stdin=c.stdin)
        c.st.vars.update(ph)
    if any(a.obfuscated for a in c.args):
        c.unknown("eval of decoded text (obfuscation)")
    return c.st.run_nested_text(text, what="eval")


@command("source", ".")
def _source(c: Cmd) -> tuple[Flow, ...]:
    if not c.args:
        return ()
    f = c.args[0]
    if f.pipe:
        c.st.stdin, saved = tuple(f.flows), c.st.stdin
        try:
            return run_stdin_script(
                Cmd(c.st, c.name, [], tuple(f.flows), c.via), "shell", what="source"
            )
        finally:
            c.st.stdin = saved
    loc = c.loc(f)
    if c.fd_of(f) == 0 or loc.path in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"):
        return run_stdin_script(c, "shell", what="source /dev/stdin")
    c.read(f)
    return run_script_file(c, loc, c.args[1:], lang="shell", same=True)


# ---------------------------------------------------------------- wrappers


def _run_rest(c: Cmd, rest: list[Field], extra: dict[str, Var] | None = None) -> tuple[Flow, ...]:
    if not rest:
        return (OPAQUE,)
    st = c.st
    if extra:
        st = st.fork()
        st.vars.update(extra)
        st.exported.update(extra)
    return st.dispatch(rest, c.stdin)


def _assignments(rest: list[Field]) -> tuple[dict[str, Var], list[Field]]:
    extra: dict[str, Var] = {}
    k = 0
    while (
        k < len(rest)
        and rest[k].known
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", rest[k].value, re.S)
    ):
        name, _, val = rest[k].value.partition("=")
        extra[name] = Var(val)
        k += 1
    return extra, rest[k:]


@command("sudo doas pkexec")
def _sudo(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "ugCDhprtUTc",
            (
                "user group close-from chdir host prompt role type other-user command-timeout "
                "preserve-env"
            ),
            permute=False,
            optional="preserve-env",
        ),
    )
    extra, rest = _assignments(o.rest)
    if o.has("-e", "--edit"):
        for f in rest:
            c.emit(EffectKind.WRITE, c.loc(f))
        return ()
    if not rest and o.has("-s", "--shell", "-i", "--login"):
        return run_stdin_script(c, "shell", what="sudo shell")
    chdir = o.value("-D", "--chdir")
    if chdir is not None:
        sub = c.st.fork()
        sub.cwd = c.loc(chdir).path
        return sub.dispatch(rest, c.stdin) if rest else (OPAQUE,)
    return _run_rest(c, rest, extra)


@command("env")
def _env(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "uCSP",
            "unset chdir split-string block-signal default-signal ignore-signal",
            permute=False,
        ),
    )
    split = o.value("-S", "--split-string")
    rest = list(o.rest)
    if split is not None:
        if not split.known:
            c.unknown("env -S with a command the analyser cannot see")
            return (OPAQUE,)
        try:
            words = shlex.split(split.value)
        except ValueError:
            words = split.value.split()
        rest = [Field(w, raw=w) for w in words] + rest
    extra, rest = _assignments(rest)
    if o.has("-i", "--ignore-environment"):
        pass
    chdir = o.value("-C", "--chdir")
    if not rest:
        return (OPAQUE,)
    st = c.st.fork()
    if chdir is not None:
        st.cwd = c.st.loc(chdir).path
    st.vars.update(extra)
    st.exported.update(extra)
    return st.dispatch(rest, c.stdin)


_WRAPPERS: dict[str, Spec] = {
    "nohup": Spec.of(permute=False),
    "time": Spec.of("fo", "format output", permute=False),
    "nice": Spec.of("n", "adjustment", permute=False),
    "ionice": Spec.of("cnp", "class classdata pid", permute=False),
    "stdbuf": Spec.of("ioe", "input output error", permute=False),
    "unbuffer": Spec.of(permute=False),
    "chrt": Spec.of("T", "sched-runtime", permute=False),
    "taskset": Spec.of(permute=False),
    "caffeinate": Spec.of("t", permute=False),
    "torsocks": Spec.of(permute=False),
    "proxychains": Spec.of("f", permute=False),
    "proxychains4": Spec.of("f", permute=False),
    "faketime": Spec.of(permute=False),
    "catchsegv": Spec.of(permute=False),
    "strace": Spec.of("oepsSEIuaX", "output trace", permute=False),
    "ltrace": Spec.of("oepsSEu", "output", permute=False),
    "firejail": Spec.of(permute=False),
}


@command(*_WRAPPERS)
def _wrapper(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _WRAPPERS[c.name])
    rest = list(o.rest)
    if c.name == "nice" and rest and rest[0].known and rest[0].value.lstrip("-+").isdigit():
        rest = rest[1:]
    if c.name == "taskset" and rest:
        rest = rest[1:]
    if c.name == "chrt" and rest:
        rest = rest[1:]
    if c.name == "faketime" and rest:
        rest = rest[1:]
    if c.name in ("strace", "ltrace"):
        return _tracer(c, o, rest)
    return _run_rest(c, rest)


# What a traced command touches whose data its trace may show (the buffers of its reads and
# writes: ``strace -e read=all``, ``-s 1000000``, ltrace's string arguments).
_TRACED = frozenset((EffectKind.READ, EffectKind.COPY, EffectKind.MOVE, EffectKind.TRANSFER))


def _tracer(c: Cmd, o: Opts, rest: list[Field]) -> tuple[Flow, ...]:
    """``strace``/``ltrace``: the traced command runs, and the trace, written to the ``-o``
    file (``|CMD``/``!CMD``: piped to a shell command) or to standard error, may carry any
    data the command reads or writes: a flow from every file it reads, its input and its
    output."""
    seen: list[tuple[EffectKind, Location, bool]] = []
    run = c.st.run
    run.taps.append(seen)
    try:
        out = _run_rest(c, rest)
    finally:
        run.taps.remove(seen)
    touched = {(loc.raw, loc.path, loc.host): (loc, rec) for k, loc, rec in seen if k in _TRACED}
    trace = (
        *(Flow(src=loc, recursive=rec, exact=False, via=c.name) for loc, rec in touched.values()),
        *(fl.through(c.name, transform=True) for fl in (*c.stdin, *out) if fl.src is not None),
        OPAQUE,
    )
    outputs = o.values("-o", "--output")
    if not outputs:
        return (*out, *c.st.write_fd(2, trace))
    for f in outputs:
        if f.known and f.value[:1] in ("|", "!"):
            text = f.value[1:]
            run_text_in(c, Field(text, raw=text), what=f"{c.name} -o", stdin=trace, arg0="sh")
        elif o.has("--output-separately") or [n for n, _ in o.items].count("-f") > 1:
            # -ff: one file per process, named FILE.PID
            c.write_to(Location(raw=f"{f.raw}.<pid>", path=None), trace)
        else:
            c.write_to(f, trace)
    return out


# Wrappers whose first operand is not the command: setarch ARCH, prlimit/unshare/setpriv
# options then the command. Without a command, they start a shell (setarch, unshare) that
# reads standard input.
_RUNNERS: dict[str, Spec] = {
    "setarch": Spec.of(permute=False),
    "linux32": Spec.of(permute=False),
    "linux64": Spec.of(permute=False),
    "unshare": Spec.of(
        "RwSG",
        "root wd setuid setgid propagation setgroups map-user map-group map-users map-groups "
        "monotonic boottime load-interp",
        permute=False,
        optional="mount uts ipc net pid user cgroup time kill-child map-auto",
    ),
    "prlimit": Spec.of(
        "po",
        "pid output",
        permute=False,
        optional=(
            "core data fsize memlock rss nofile stack cpu nproc as locks sigpending msgqueue "
            "nice rtprio rttime"
        ),
    ),
    "setpriv": Spec.of(
        "",
        "ruid euid rgid egid reuid regid groups inh-caps ambient-caps bounding-set securebits "
        "pdeathsig selinux-label apparmor-profile landlock-access landlock-rule seccomp-filter",
        permute=False,
    ),
    "ssh-agent": Spec.of("aEPtO", permute=False),
    "dbus-run-session": Spec.of("", "config-file dbus-daemon", permute=False),
    "dbus-launch": Spec.of("", "config-file autolaunch", permute=False),
}


@command(*_RUNNERS)
def _runner(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _RUNNERS[c.name])
    rest = list(o.rest)
    if c.name == "setarch":
        rest = rest[1:]  # the architecture
        while rest and rest[0].known and rest[0].value.startswith("-"):
            rest = rest[1:]  # personality flags, which take no value
    for f in o.values("--dbus-daemon", "--config-file", "--load-interp"):
        c.unseen(f"{c.name} runs a program or service named in {short(f.raw)}", c.loc(f))
    if o.has("-R", "--root", "-w", "--wd"):
        c.unseen(
            f"{c.name} runs the command in another root or folder the analyser does not follow"
        )
    if c.name == "prlimit" and o.has("-p", "--pid"):
        return (OPAQUE,)
    if not rest:
        if c.name in ("setarch", "linux32", "linux64", "unshare"):
            return run_stdin_script(c, "shell", what=f"{c.name} shell")
        return (OPAQUE,)
    return _run_rest(c, rest)


@command("ip")
def _ip(c: Cmd) -> tuple[Flow, ...]:
    """``ip netns exec NS COMMAND`` and ``ip vrf exec VRF COMMAND`` run the command (ip takes
    any prefix of an object or verb); ``ip -batch FILE`` runs ip commands read from a file.
    The rest prints or changes network settings."""
    args = list(c.args)
    k = 0
    while k < len(args) and args[k].known and args[k].value.startswith("-"):
        flag = args[k].value.lstrip("-")
        if flag and "batch".startswith(flag):
            c.unseen(
                "ip -batch runs commands read from a file",
                c.loc(args[k + 1]) if k + 1 < len(args) else None,
            )
            return (OPAQUE,)
        # options with a value: -f FAMILY, -n NETNS, -rc FILE, -l N, -color WHEN
        k += 2 if flag in ("f", "family", "n", "netns", "rc", "rcvbuf", "l", "loops") else 1
    if k + 2 >= len(args):
        return (OPAQUE,)
    obj, verb = args[k], args[k + 1]
    if not (obj.known and verb.known):
        c.unseen("ip runs a subcommand the analyser cannot see")
        return (OPAQUE,)
    runs = (len(obj.value) >= 3 and "netns".startswith(obj.value)) or "vrf".startswith(obj.value)
    if runs and verb.value and "exec".startswith(verb.value):
        return _run_rest(c, args[k + 3 :])
    return (OPAQUE,)


# perf's subcommands that run a command, with their options that take a value.
_PERF_RUNS: dict[str, Spec] = {
    "stat": Spec.of(
        "eprtxoGCMIjD",
        "event pid repeat tid field-separator output cgroup cpu metrics interval-print delay "
        "post pre log-fd control topdown iostat",
        permute=False,
    ),
    "record": Spec.of(
        "epotCcFmGgrIDbjSkUW",
        "event pid output tid cpu count freq mmap-pages cgroup call-graph realtime delay "
        "branch-filter clockid affinity user-regs intr-regs aux-sample control switch-output "
        "max-size proc-map-timeout num-thread-synthesize threads",
        permute=False,
        optional="switch-output",
    ),
    "trace": Spec.of(
        "eoptuCFmG", "event output pid tid uid cpu pf mmap-pages cgroup expr", permute=False
    ),
}
# perf's subcommands that only read what an earlier run recorded or list what it knows.
_PERF_READS = names("list report annotate diff evlist version help buildid-list top")


@command("perf")
def _perf(c: Cmd) -> tuple[Flow, ...]:
    """``perf stat|record|trace [OPTIONS] COMMAND``: the command runs (``--pre``/``--post``
    run shell text too); reports and listings read; anything else runs code the analyser
    does not follow (``perf script -s`` runs a script)."""
    sub = c.args[0].value if c.args and c.args[0].known else None
    if sub in _PERF_READS:
        return (OPAQUE,)
    spec = _PERF_RUNS.get(sub or "")
    if spec is None:
        c.unseen(f"perf {short(sub or '?')} runs code the analyser does not follow")
        return TABLE["/unknown"](c)
    o = parse(c.args[1:], spec)
    for f in o.values("--pre", "--post"):
        run_text_in(c, f, what=f"perf {sub} --pre/--post", stdin=())
    for f in o.values("-o", "--output"):
        c.write_to(f, (OPAQUE,))
    return _run_rest(c, list(o.rest))


@command("timeout")
def _timeout(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("sk", "signal kill-after", permute=False))
    return _run_rest(c, list(o.rest[1:]))


@command("flock")
def _flock(c: Cmd) -> tuple[Flow, ...]:
    """``flock [OPTIONS] LOCK COMMAND...`` or ``flock [OPTIONS] LOCK -c TEXT`` (the ``-c``
    comes after the lock file); ``flock FD`` alone runs nothing."""
    o = parse(c.args, Spec.of("wEc", "timeout wait conflict-exit-code command", permute=False))
    cmd = o.value("-c", "--command")
    rest = list(o.rest[1:])
    if cmd is None and rest and rest[0].known and rest[0].value in ("-c", "--command"):
        cmd = rest[1] if len(rest) > 1 else None
    if cmd is not None:
        return run_text_in(c, cmd, what="flock -c", stdin=c.stdin)
    return _run_rest(c, rest)


@command("command builtin exec noglob nocorrect")
def _command(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    while args and args[0].known and args[0].value.startswith("-") and len(args[0].value) > 1:
        flag = args.pop(0).value
        if c.name == "command" and flag in ("-v", "-V"):
            return (OPAQUE,)
        if c.name == "exec" and flag == "-a" and args:
            args.pop(0)
    if not args:
        return ()
    return c.st.dispatch(args, c.stdin)


@command("watch")
def _watch(c: Cmd) -> tuple[Flow, ...]:
    c.unseen("watch runs its command again and again: what it runs later is not seen")
    o = parse(c.args, Spec.of("nd", "interval differences", permute=False), stop_at_operand=True)
    text, ph = joined_script(o.rest)
    return run_text_in(c, Field(text, raw=text, known=not ph), what="watch", stdin=c.stdin)


@command("trap")
def _trap(c: Cmd) -> tuple[Flow, ...]:
    args = [a for a in c.args if not (a.known and a.value in ("-p", "-l", "--"))]
    if args:
        return run_text_in(c, args[0], what="trap", stdin=(), same=True)
    return ()


# ------------------------------------------------------------------- xargs


def _xargs_input(c: Cmd, infile: Field | None) -> tuple[Flow, ...]:
    """What xargs reads its arguments from: the ``-a`` file, else its standard input."""
    if infile is None:
        return c.stdin
    c.read(infile)
    return c.content(infile)


def _xargs_items(c: Cmd, sep: str | None, lines: bool, flows: tuple[Flow, ...]) -> list[Field]:
    items: list[Field] = []
    for fl in flows:
        text: str | None = None
        if fl.names and fl.src is not None:
            items.append(Field(fl.src.raw, raw="<find output>", loc=fl.src, recursive=True))
            continue
        if fl.text is not None:
            text = fl.text
        elif fl.src is not None and fl.exact:
            text = c.st.run.read_text(fl.src)
        if text is None:
            items.append(Field("<xargs input>", raw="<xargs input>", known=False, flows=(fl,)))
            continue
        if sep is not None:
            words = [w for w in text.split(sep) if w]
        elif lines:
            words = [w.strip() for w in text.splitlines() if w.strip()]
        else:
            try:
                words = shlex.split(text)
            except ValueError:
                words = text.split()
        items.extend(Field(w, raw=w) for w in words[: MAX_LOOP * 4])
    if not flows:
        items.append(Field("<xargs input>", raw="<xargs input>", known=False))
    return items


@command("xargs")
def _xargs(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "ILnPsdEaei",
            (
                "replace max-lines max-args max-procs max-chars delimiter eof arg-file "
                "process-slot-var"
            ),
            permute=False,
            optional="replace eof",
        ),
    )
    repl_f = o.value("-I", "--replace", "-i")
    repl = repl_f.value if repl_f is not None else ("{}" if o.has("-i", "--replace") else None)
    delim = o.value("-d", "--delimiter")
    sep = (
        "\0"
        if o.has("-0", "--null")
        else (delim.value if delim is not None and delim.known else None)
    )
    data = _xargs_input(c, o.value("-a", "--arg-file"))
    items = _xargs_items(c, sep, repl is not None or o.has("-L"), data)
    rest = list(o.rest) or [Field("echo", raw="echo")]
    # input of unknown length (`yes | xargs`), or more runs than the loop bound: a file the
    # command runs may change between runs
    per_run = 1 if repl is not None else _xargs_batch(o)
    runs = -(-len(items) // per_run) if per_run else 1
    st = c.st
    was = st.looping
    st.looping = was or runs > MAX_LOOP or any(not f.known for f in items)
    try:
        out = _xargs_run(c, rest, items, repl)
    finally:
        st.looping = was
    # The arguments are the data read: a command that prints them (printf, echo, one that
    # names them in errors) passes that content on, however it splits it.
    carried = (replace(fl, exact=False, text=None) for fl in data if fl.src and not fl.names)
    return (*out, *carried)


def _xargs_batch(o: Opts) -> int:
    """How many items one run of xargs takes (0: as many as fit on a command line)."""
    for f in (o.value("-n", "--max-args"), o.value("-L", "--max-lines")):
        if f is not None:
            return int(f.value) if f.known and f.value.isdigit() and int(f.value) > 0 else 1
    return 0


def _xargs_run(c: Cmd, rest: list[Field], items: list[Field], repl: str | None) -> tuple[Flow, ...]:
    out: list[Flow] = []
    if repl is None:
        return c.st.dispatch(rest + items[: MAX_LOOP * 4], ())
    for item in items[:MAX_LOOP]:
        argv: list[Field] = []
        for a in rest:
            if a.known and repl in a.value:
                if a.value == repl:
                    argv.append(item)
                elif item.known and item.loc is None:
                    v = a.value.replace(repl, item.value)
                    argv.append(Field(v, raw=a.raw))
                else:
                    argv.append(
                        Field(
                            a.value.replace(repl, item.raw),
                            raw=a.raw,
                            known=False,
                            flows=item.flows,
                        )
                    )
            else:
                argv.append(a)
        out.extend(c.st.dispatch(argv, ()))
    return tuple(out)


@command("parallel")
def _parallel(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    cut = next((k for k, f in enumerate(args) if f.known and f.value in (":::", "::::")), len(args))
    cmd = [f for f in args[:cut] if not (f.known and f.value.startswith("-"))]
    inputs = args[cut + 1 :]
    if not cmd:
        return (OPAQUE,)
    items = inputs or [Field("<parallel input>", raw="<parallel input>", known=False)]
    was = c.st.looping  # as for xargs: runs of unknown number may each see another file
    c.st.looping = was or len(items) > MAX_LOOP or any(not f.known for f in items)
    try:
        return _parallel_run(c, cmd, items)
    finally:
        c.st.looping = was


def _parallel_run(c: Cmd, cmd: list[Field], items: list[Field]) -> tuple[Flow, ...]:
    out: list[Flow] = []
    for item in items[:MAX_LOOP]:
        argv = [item if (a.known and a.value == "{}") else a for a in cmd]
        if not any(a.known and a.value == "{}" for a in cmd):
            argv = [*cmd, item]
        text, ph = joined_script(argv)
        out.extend(
            run_text_in(
                c, Field(text, raw=text, known=not ph, flows=item.flows), what="parallel", stdin=()
            )
        )
    return tuple(out)


# ------------------------------------------------------- directories, vars


@command("cd pushd chdir")
def _cd(c: Cmd) -> tuple[Flow, ...]:
    st = c.st
    args = [a for a in c.args if not (a.known and a.value in ("-L", "-P", "-e", "-@", "--"))]
    old = st.cwd
    pwd: str | None = None
    if not args:
        # $HOME, which the command line may have set to a relative path
        target = st.local(st.home).path if st.home is not None else None
    else:
        f = args[0]
        if f.known and f.value == "-":
            v = st.vars.get("OLDPWD")
            target = v.text if v is not None else None
        elif c.name == "pushd" and f.known and re.fullmatch(r"[+-]\d+", f.value):
            target = None
        else:
            loc = _cdpath(c, f)
            modes = [a.value for a in c.args if a.known and a.value in ("-L", "-P")]
            physical = modes[-1:] == ["-P"] or (
                st.globopts is not None and "physical" in st.globopts and modes[-1:] != ["-L"]
            )
            if loc is None and not physical and f.known:
                # bash's cd is logical: it takes `..` off $PWD's text, not the real folder's
                # (`cd link; cd ..` is back where it started), and falls back to the real path
                # when that names no folder.
                logical = _logical(st, f.value)
                if logical is not None:
                    found = st.local(logical)
                    if found.path is not None and (
                        st.run.isdir(found.path) or found.path in st.run.created
                    ):
                        loc, pwd = found, logical
            if loc is None:
                loc = c.loc(f)
            target = loc.path
            # a cd that fails leaves the shell where it was; where that is then is not known
            if target is not None and not st.run.isdir(target) and target not in st.run.created:
                target = None
    if c.name == "pushd":
        st.dirstack.append(old)
    st.cwd = target
    st.vars["OLDPWD"] = st.vars.get("PWD") or Var(old)
    st.vars["PWD"] = Var(pwd if pwd is not None and target is not None else target)
    return ()


def _logical(st: State, value: str) -> str | None:
    """The folder a logical ``cd VALUE`` names: ``$PWD`` joined with it, ``..`` folded as text."""
    if value.startswith("/"):
        return os.path.normpath(value)
    var = st.vars.get("PWD")
    base = var.text if var is not None and var.text and var.text.startswith("/") else st.cwd
    if base is None:
        return None
    return os.path.normpath(os.path.join(base, value))


def _cdpath(c: Cmd, f: Field) -> Location | None:
    """Where ``cd DIR`` goes through ``$CDPATH`` (searched before the working directory for a
    relative name not starting with ``.``); an unknown CDPATH is an unknown place."""
    var = c.st.vars.get("CDPATH")
    if var is None or var.text == "" or (f.known and f.value.startswith(("/", "./", "../"))):
        return None
    if f.known and f.value in (".", ".."):
        return None
    if var.text is None or not f.known:
        return Location(raw=f.value, path=None)
    for base in var.text.split(":")[:64]:
        loc = c.st.local(os.path.join(base or ".", f.value))
        if loc.path is not None and (loc.path in c.st.run.created or c.st.run.isdir(loc.path)):
            return loc
    return None


@command("popd")
def _popd(c: Cmd) -> tuple[Flow, ...]:
    st = c.st
    st.cwd = st.dirstack.pop() if st.dirstack else None
    return ()


@command("dirs")
def _dirs(c: Cmd) -> tuple[Flow, ...]:
    return (OPAQUE,)


@command("alias")
def _alias(c: Cmd) -> tuple[Flow, ...]:
    for a in c.args:
        if a.known and "=" in a.value:
            name, _, val = a.value.partition("=")
            c.st.aliases[name] = val
    return ()


@command("unalias")
def _unalias(c: Cmd) -> tuple[Flow, ...]:
    for a in c.args:
        if a.known:
            c.st.aliases.pop(a.value, None)
    return ()


@command("shift")
def _shift(c: Cmd) -> tuple[Flow, ...]:
    n = int(c.args[0].value) if c.args and c.args[0].known and c.args[0].value.isdigit() else 1
    if c.st.pos is not None:
        c.st.pos = c.st.pos[n:]
    return ()


@command("read mapfile readarray")
def _read(c: Cmd) -> tuple[Flow, ...]:
    # the options that take a value (read -s and mapfile -t take none)
    o = parse(c.args, Spec.of("adinNptu" if c.name == "read" else "dnOsuCc", ""))
    # a name with a subscript (`read 'a[$(cmd)]'`) is evaluated: it may run code
    wanted = list(o.operands) if c.name == "read" else list(o.operands[:1])
    arr = o.value("-a")
    if arr is not None:
        wanted.append(arr)
    names = [c.st.var_name(f.value if f.known else None, what=c.name) for f in wanted]
    if not wanted:
        names = ["REPLY" if c.name == "read" else "MAPFILE"]
    for n in names:
        if n is not None:
            c.st.set_var(n, Var(None, flows=c.stdin))
    callback = o.value("-C") if c.name != "read" else None
    if callback is not None:
        # mapfile -C CMD: the shell evaluates `CMD INDEX LINE` every -c lines
        text = Field(callback.value + " 0 ''", raw=callback.raw, known=callback.known)
        run_text_in(c, text, what=f"{c.name} -C", stdin=(), same=True)
    return ()


@command("export declare typeset local readonly")
def _declare_cmd(c: Cmd) -> tuple[Flow, ...]:
    # reached when tree-sitter did not see a declaration (``builtin export``, ``x=9 export x``)
    c.st.declare(c.name, list(c.args))
    return ()


# ---------------------------------------------------------- interpreters


def _python_like(c: Cmd) -> tuple[Flow, ...]:
    args = c.args
    i = 0
    code: Field | None = None
    module: Field | None = None
    interactive = False
    while i < len(args):
        a = args[i]
        v = a.value if a.known else ""
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        j = 1
        consumed = False
        while j < len(v):
            ch = v[j]
            interactive = interactive or (ch == "i" and not v.startswith("--"))
            if ch in "cm":
                val = (
                    Field(v[j + 1 :], raw=v[j + 1 :])
                    if j + 1 < len(v)
                    else (args[i + 1] if i + 1 < len(args) else None)
                )
                if j + 1 >= len(v):
                    i += 1
                if ch == "c":
                    code = val
                else:
                    module = val
                consumed = True
                break
            if ch in "WX":
                if j + 1 >= len(v):
                    i += 1
                break
            j += 1
        i += 1
        if consumed:
            break
    rest = args[i:]
    what = c.name
    inspect = c.st.vars.get("PYTHONINSPECT") if "PYTHONINSPECT" in c.st.exported else None
    if interactive or (inspect is not None and inspect.text != ""):
        # python -i: once the code ran, the interpreter runs what standard input holds
        run_stdin_script(c, "python", what=f"{what} -i reading standard input")
    if code is not None:
        if code.obfuscated:
            c.unknown(f"{what} -c: obfuscated code")
        if not code.known:
            c.unknown(f"{what} -c: code the analyser cannot see")
            return (OPAQUE,)
        return inspect_python(c, code.value, rest, what=f"{what} -c")
    if module is not None:
        name = module.value if module.known else "?"
        if not module.known:
            c.unseen(f"{what} -m: a module the analyser cannot name")
            return _unknown_args(c, rest)
        own = _project_module(c, name, rest)
        if own is not None:
            return own
        if name == "pytest":
            return _pytest(Cmd(c.st, "pytest", rest, c.stdin, c.via))
        if name in (
            "http.server",
            "SimpleHTTPServer",
            "ftplib",
            "smtpd",
            "uploadserver",
            "pyftpdlib",
        ):
            target = c.st.local(".") if c.st.cwd is not None else Location(raw=".")
            c.emit(
                EffectKind.TRANSFER,
                target,
                Location(raw=f"python -m {name}", host=None, visible=False),
                recursive=True,
                certain=False,
                note="serves the current folder on the network",
            )
            return (OPAQUE,)
        if name in ("zipfile", "tarfile", "gzip", "shutil", "base64"):
            for f in rest:
                if f.known and not f.value.startswith("-"):
                    c.unknown(f"python -m {name} given a path", c.loc(f))
            return (OPAQUE,)
        return _unknown_args(c, rest)
    if rest and not (rest[0].known and rest[0].value == "-"):
        loc = c.loc(rest[0])
        c.read(rest[0])
        return run_script_file(c, loc, rest[1:], lang="python", stdin=c.stdin)
    return run_stdin_script(c, "python", what=f"{what} reading standard input")


def _project_module(c: Cmd, name: str, args: list[Field]) -> tuple[Flow, ...] | None:
    """``python -m NAME`` when NAME is a module or package of the working directory (the
    first place Python looks): its file runs as the main script, with ``args``."""
    if c.st.cwd is None or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return None
    rel = name.replace(".", "/")
    pkg = c.st.local(rel)
    if pkg.path is not None and c.st.run.isdir(pkg.path):
        for part in ("__init__.py", "__main__.py"):
            loc = c.st.local(f"{rel}/{part}")
            if file_text(c, loc)[0]:
                c.read(Field(loc.raw, raw=loc.raw))
                run_script_file(c, loc, args, lang="python", stdin=c.stdin)
        return (OPAQUE,)
    loc = c.st.local(rel + ".py")
    if not file_text(c, loc)[0]:
        return None
    c.read(Field(loc.raw, raw=loc.raw))
    return run_script_file(c, loc, args, lang="python", stdin=c.stdin)


for _py in (
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    *(f"python3.{k}" for k in range(6, 15)),
):
    command(_py)(_python_like)


# Per interpreter: the options whose value is code, and those whose value names a file or
# module of code loaded before it (node -r, ruby -r, lua -l, php -d auto_prepend_file=...).
_CODE_FLAGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "node": (
        names("-e --eval -p --print"),
        names("-r --require --import --loader --experimental-loader"),
    ),
    "ruby": (names("-e"), names("-r")),
    "php": (names("-r -B -R -E"), names("-F")),
    "lua": (names("-e"), names("-l")),
    "Rscript": (names("-e --expr"), names("")),
}
_CODE_FLAGS["nodejs"] = _CODE_FLAGS["bun"] = _CODE_FLAGS["deno"] = _CODE_FLAGS["node"]
# Options that take a value which is neither code nor a file of code.
_VALUED = names("-I -C --input-type --conditions --title -d -c -z -n -t --default-packages")


# pytest's options that take a value (its own; a plugin's value option may take a word for
# a path, which only makes the analyser read more).
_PYTEST_SPEC = Spec.of(
    "kmpcoWnr",
    "rootdir basetemp override-ini junitxml junit-xml confcutdir durations durations-min "
    "maxfail tb log-file log-level log-format log-date-format log-cli-level deselect ignore "
    "ignore-glob import-mode capture pythonwarnings report-log cov cov-report numprocesses "
    "dist timeout color code-highlight show-capture",
)
_PYTEST_SKIP = names(".git .hg .svn .tox .nox .venv venv env build dist node_modules __pycache__")
MAX_COLLECT = 256  # directory entries pytest's collection is followed through


@command("pytest py.test")
def _pytest(c: Cmd) -> tuple[Flow, ...]:
    """``pytest``: runs the project's Python, which is read like a script: the conftest.py
    files from the working folder down, the test modules it collects (``test_*.py``,
    ``*_test.py``, or every module with ``--doctest-modules``), and plugins given with ``-p``
    that are project modules. Configuration that changes what is collected or loaded
    (``addopts``, ``python_files``, ``pythonpath``, ``PYTEST_ADDOPTS``...) is unseen."""
    st = c.st
    if st.cwd is None:
        c.unseen("pytest runs in a folder the analyser cannot tell: its tests are not read")
        return _unknown_args(c, list(c.args))
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        v = st.vars.get(var)
        if v is not None and var in st.exported and v.text != "":
            c.unseen(f"pytest reads {var}: options or plugins the analyser does not follow")
    o = parse(c.args, _PYTEST_SPEC)
    if o.has("--version", "-V"):
        return (OPAQUE,)
    every = False  # python_files set: collect every module (more than pytest may)
    inis = [f.value for f in o.values("-c", "--config-file") if f.known]
    if any(not f.known for f in o.values("-c", "--config-file")):
        c.unseen("pytest reads settings from a file the analyser cannot name")
    for name in (*inis, "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
        loc = st.local(name)
        exists, text = file_text(c, loc)
        if not exists:
            continue
        opts = re.findall(r"(?m)^\s*addopts\s*=\s*(.*)$", text or "")
        if (
            text is None
            or re.search(r"(?m)^\s*pythonpath\s*=", text)
            or any(re.search(r"(?:^|\s)(?:-p|--pyargs|--rootdir|--confcutdir)\b", v) for v in opts)
        ):
            c.unseen(f"pytest reads settings from {name} that change what it loads", loc)
        every = every or bool(re.search(r"(?m)^\s*python_files\s*=", text or ""))
    for plugin in o.values("-p"):
        if not plugin.known:
            c.unseen("pytest -p: a plugin the analyser cannot name")
        elif not plugin.value.startswith("no:"):
            module = plugin.value.replace(".", "/") + ".py"
            load_file(c, module, "python", what="pytest -p", depth=0)
    doctests = every or o.has("--doctest-modules")
    paths = [f for f in o.operands if not (f.known and "::" in f.value)] + [
        Field(f.value.split("::")[0], raw=f.raw) for f in o.operands if f.known and "::" in f.value
    ]
    files: list[str] = []
    budget = [MAX_COLLECT]
    for f in paths or [Field(".", raw=".")]:
        if not f.known:
            c.unseen("pytest collects from a path the analyser cannot see")
            continue
        # the conftest.py files of the folders above the path (pytest stops at its rootdir,
        # which may be any of them)
        where = st.local(f.value).path
        up = os.path.dirname(where) if where is not None else None
        for _ in range(16):
            if up is None:
                break
            conftest = os.path.relpath(os.path.join(up, "conftest.py"), st.cwd)
            if conftest not in files and file_text(c, st.local(conftest))[0]:
                files.append(conftest)
            if os.path.dirname(up) == up:
                break
            up = os.path.dirname(up)
        _collect(c, f.value, files, budget, doctests)
    if budget[0] <= 0:
        c.unseen("pytest collects more files than the analyser follows")
    for raw in files:
        load_file(c, raw, "python", what="pytest", depth=0)
    return (OPAQUE,)


def _collect(c: Cmd, raw: str, files: list[str], budget: list[int], doctests: bool) -> None:
    """The Python files pytest imports below ``raw``: conftest.py, then the test modules."""
    st = c.st
    loc = st.local(raw)
    if loc.path is None:
        return
    if not st.run.isdir(loc.path):
        if raw.endswith(".py") and file_text(c, loc)[0]:
            files.append(raw)
        return
    try:
        with os.scandir(loc.path) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    except OSError:
        return
    budget[0] -= len(entries)
    if budget[0] < 0:
        return
    if ("conftest.py", False) in entries:
        files.append(os.path.join(raw, "conftest.py"))
    for name, is_dir in entries:
        path = os.path.join(raw, name) if raw != "." else name
        if is_dir:
            if name not in _PYTEST_SKIP and not name.startswith(".") and not name.endswith(".egg"):
                _collect(c, path, files, budget, doctests)
        elif (
            name.endswith(".py")
            and name != "conftest.py"
            and (doctests or name.startswith("test_") or name.endswith("_test.py"))
        ):
            files.append(path)


def _code_opts(c: Cmd) -> tuple[list[str | None], list[str | None], list[Field]]:
    """Code given with ``-e`` and kin (``None`` when unknown), files or modules of code to
    load first (``None`` when unknown), and the arguments after the options."""
    code_flags, load_flags = _CODE_FLAGS.get(c.name, (names("-e"), names("")))
    codes: list[str | None] = []
    loads: list[str | None] = []
    i = 0
    args = c.args
    while i < len(args):
        a = args[i]
        v = a.value if a.known else ""
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        name, eq, attached = v.partition("=") if v.startswith("--") else (v[:2], "", v[2:])
        if eq or attached:
            value: str | None = attached
            i += 1
        else:
            nxt = args[i + 1] if i + 1 < len(args) else None
            value = nxt.value if nxt is not None and nxt.known else None
            i += 2 if name in code_flags | load_flags | _VALUED else 1
        if name in code_flags:
            codes.append(value)
        elif name in load_flags:
            loads.append(value)
        elif (
            c.name == "php"
            and name == "-d"
            and value
            and value.split("=")[0].strip()
            in (
                "auto_prepend_file",
                "auto_append_file",
            )
        ):
            loads.append(value.partition("=")[2].strip())
    return codes, loads, list(args[i:])


@command(
    # (osascript and pwsh run code the analyser does not read: see deferred.py)
    "ruby node nodejs php lua Rscript deno bun tclsh jshell",
)
def _code_interp(c: Cmd) -> tuple[Flow, ...]:
    codes, loads, rest = _code_opts(c)
    for spec in loads:
        if spec is None:
            c.unseen(f"{c.name}: loads code from a file the analyser cannot see")
        else:
            load_spec(c, spec, c.name, what=c.name, base="", depth=0, module=c.name == "lua")
    if codes:
        if any(x is None for x in codes):
            c.unknown(f"{c.name}: code the analyser cannot see")
            return (OPAQUE,)
        return inspect_code(
            c, "\n".join(x for x in codes if x is not None), rest, what=f"{c.name} -e"
        )
    if rest and not (rest[0].known and rest[0].value == "-"):
        loc = c.loc(rest[0])
        c.read(rest[0])
        return run_script_file(c, loc, rest[1:], lang=c.name)
    return run_stdin_script(c, c.name, what=f"{c.name} reading standard input")


_SQLITE_VALUE_OPTS = frozenset(
    [
        "-separator",
        "-newline",
        "-nullvalue",
        "-vfs",
        "-maxsize",
        "-mmap",
        "-pagecache",
        "-lookaside",
        "-heap",
        "-init",
        "-cmd",
        "-escape",
        "-nonce",
    ]  # a table is easier to read as one string
)
_SQLITE_FLAGS = frozenset(
    [
        "-append",
        "-ascii",
        "-bail",
        "-batch",
        "-box",
        "-column",
        "-csv",
        "-echo",
        "-header",
        "-noheader",
        "-html",
        "-interactive",
        "-json",
        "-line",
        "-list",
        "-markdown",
        "-memtrace",
        "-nofollow",
        "-quote",
        "-readonly",
        "-safe",
        "-stats",
        "-table",
        "-tabs",
        "-version",
        "-zip",
        "-deserialize",
        "-help",
        "-utf8",
        "-no-rowid-in-view",
    ]
)
# SQL that changes the database it runs on, and the dot-commands that do.
_SQL_WRITES = re.compile(
    r"(?i)\b(?:insert|update|delete|replace|drop|create|alter|attach|vacuum|reindex|pragma)\b"
)
_SQLITE_WRITING = frozenset({"import", "restore", "load"})
# SQL that reads files into the database (or runs them), and the dot-commands that do.
_SQL_READS_FILES = re.compile(r"(?i)\breadfile\s*\(")
_SQLITE_READING = frozenset({"import", "restore", "read", "open", "archive"})


@command("sqlite3 sqlite")
def _sqlite(c: Cmd) -> tuple[Flow, ...]:
    """``sqlite3 [OPTIONS] DB [SQL...]`` (options anywhere): the database file is read, and
    written by SQL that changes it; files the SQL reads into it are copied into it; the SQL is
    scanned like code, so ``writefile()``, ``.output``, ``.save``, ``.backup`` and ``VACUUM
    INTO`` move data where the analyser sees it. Archive mode (``-A``) and options the
    analyser does not know are judged as an unknown program given these arguments."""
    args = c.args
    codes: list[str | None] = []
    operands: list[Field] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.known and a.value.startswith("-") and a.value != "-":
            opt = "-" + a.value.lstrip("-")
            if opt.startswith("-A") or opt not in _SQLITE_VALUE_OPTS | _SQLITE_FLAGS:
                return _unknown_args(c, list(args))
            if opt in _SQLITE_VALUE_OPTS and i + 1 < len(args):
                value = args[i + 1]
                if opt == "-cmd":
                    codes.append(value.value if value.known else None)
                elif opt == "-init":
                    c.read(value)
                    codes.append(c.st.run.read_text(c.loc(value)))
                i += 2
                continue
            i += 1
            continue
        operands.append(a)
        i += 1
    sql = operands[1:]
    codes.extend(a.value if a.known else None for a in sql)
    if any(x is None for x in codes):
        c.unknown("sqlite3: SQL the analyser cannot see")
    text = "\n".join(x for x in codes if x is not None)
    if operands:
        db = c.loc(operands[0])
        c.read(operands[0])
        dots = {name for name, _ in sqlite_commands(text)}
        if not sql or _SQL_WRITES.search(text) or dots & _SQLITE_WRITING:
            # SQL from standard input, or SQL that changes the database: the file changes.
            c.emit(EffectKind.WRITE, db, certain=False, note="sqlite3 may change the database")
        if _SQL_READS_FILES.search(text) or dots & _SQLITE_READING:
            for loc in mentioned_files(c, text):
                c.emit(
                    EffectKind.COPY,
                    loc,
                    db,
                    certain=False,
                    note="sqlite3 SQL reads this file into the database",
                )
    if not sql:
        return run_stdin_script(c, "sqlite3", what="sqlite3 reading standard input")
    return inspect_code(c, text, [], what="sqlite3")


# perl's switches (perlrun): those that take the rest of the word (or, for -e, -E, -I, -M
# and -m, the next word) as their value, those followed by optional digits after which the
# cluster goes on (-0777pi, -lpi), and those that are letters alone.
_PERL_VALUE = frozenset("eEiIMmxdDCF")
_PERL_NEXT = frozenset("eEIMm")
_PERL_DIGITS = frozenset("0l")
_PERL_FLAGS = frozenset("acfhnpsStTuUvwWX")


def _perl_switches(
    c: Cmd,
) -> tuple[list[str | None], dict[str, list[Field]], bool, int] | None:
    """perl's switch clusters, parsed exactly: the code (``None`` where unknown), the value of
    each valued switch, whether one unknown letter was met, and where the operands start
    (``None`` when a switch word cannot be seen)."""
    args = c.args
    codes: list[str | None] = []
    values: dict[str, list[Field]] = {}
    odd = False
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            return None
        v = a.value
        if not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        j = 1
        while j < len(v):
            ch = v[j]
            if ch in _PERL_DIGITS:
                j += 1
                if ch == "0" and j < len(v) and v[j] in "xX":
                    j += 1
                    while j < len(v) and v[j] in "0123456789abcdefABCDEF":
                        j += 1
                else:
                    while j < len(v) and v[j] in "01234567":
                        j += 1
                values.setdefault("-" + ch, [])
                continue
            if ch in _PERL_VALUE:
                attached = v[j + 1 :]
                value: Field | None = Field(attached, raw=attached)
                if not attached and ch in _PERL_NEXT:
                    i += 1
                    value = args[i] if i < len(args) else None
                if value is not None:
                    values.setdefault("-" + ch, []).append(value)
                    if ch in "eE":
                        codes.append(value.value if value.known else None)
                break
            if ch not in _PERL_FLAGS:
                odd = True
            values.setdefault("-" + ch, [])
            j += 1
        i += 1
    return codes, values, odd, i


def perl_shebang_switches(text: str) -> list[str]:
    """The switch words on a perl script's ``#!`` line (``#!/usr/bin/perl -pi``): perl reads
    them there as on its command line, when the line names perl."""
    if not text.startswith("#!"):
        return []
    words = text[2:].split("\n", 1)[0].split()
    at = next((k for k, w in enumerate(words) if "perl" in os.path.basename(w)), None)
    if at is None:
        return []
    out: list[str] = []
    for w in words[at + 1 :]:
        if not w.startswith("-") or w in ("-", "--"):
            break
        out.append(w)
    return out


# Perl code that turns in-place editing on itself: ``$^I`` (the variable ``-i`` sets), given a
# value; and a BEGIN block that only does that, with the value it gives.
_PERL_SETS_INPLACE = re.compile(r"\$(?:\^I|\{\^I\})\s*(?:=(?![=~])|\.=|\|\|=|//=)")
_PERL_BEGIN_INPLACE = re.compile(
    r"""\bBEGIN\s*\{\s*(?:local\s+)?\$(?:\^I|\{\^I\})\s*=\s*(?:(["'])([^"'\\$@]*)\1|q\{([^}\\]*)\})\s*;?\s*\}\s*;?"""
)
# Code that gives @ARGV its files (the files ``<>`` then reads and ``$^I`` edits).
_PERL_SETS_ARGV = re.compile(
    r"@ARGV\s*=(?!=)|\b(?:push|unshift|splice)\s*\(?\s*@ARGV\b|\$ARGV\s*\["
)


def _perl_code_inplace(
    codes: list[str | None], values: dict[str, list[Field]]
) -> tuple[list[str | None], str | None] | None:
    """In-place editing the code itself turns on: ``BEGIN{$^I=""}`` before a ``-p`` loop is
    ``-i`` (returned as the codes without the block, and the backup suffix); ``None`` when the
    code does not set ``$^I``, or sets it any other way (see :func:`_perl_inplace_unknown`)."""
    if not any(x is not None and _PERL_SETS_INPLACE.search(x) for x in codes):
        return None
    stripped: list[str | None] = []
    suffix: str | None = None
    for x in codes:
        if x is None:
            return None
        m = _PERL_BEGIN_INPLACE.search(x)
        if m is not None:
            suffix = m.group(2) if m.group(2) is not None else m.group(3)
            x = x[: m.start()] + x[m.end() :]
        if _PERL_SETS_INPLACE.search(x):
            return None
        stripped.append(x)
    if suffix is None or not ("-p" in values or "-n" in values):
        return None
    return stripped, suffix


def _perl_inplace_unknown(c: Cmd, code: str, rest: list[Field]) -> None:
    """Code that sets ``$^I`` edits in place the files ``<>`` reads: those on the command
    line and, when it gives ``@ARGV`` files itself, every file it names (or a path it
    computes). What the edit does is not simulated: each is changed in an unknown way."""
    targets = [c.loc(f) for f in rest]
    if _PERL_SETS_ARGV.search(code):
        named = mentioned_files(c, code)
        targets.extend(named or [Location(raw="<a file perl code gives @ARGV>", path=None)])
    for loc in targets:
        c.emit(
            EffectKind.WRITE,
            loc,
            certain=False,
            note="perl: code that sets $^I edits the files it reads in place",
        )


@command("perl")
def perl_command(c: Cmd) -> tuple[Flow, ...]:
    """``perl``: ``-pi -e 's/a/b/' f`` is a sed edit; other code is inspected. A switch the
    analyser does not know, the debugger, and modules found in folders given with ``-I``
    (read like the code) are judged as what they run."""
    args = c.args
    parsed = _perl_switches(c)
    if parsed is None:
        c.unseen("perl: a switch the analyser cannot see")
        return _unknown_args(c, list(args))
    codes, values, odd, i = parsed
    if odd:
        c.unseen("perl: a switch the analyser does not know")
    if "-d" in values:
        c.unseen("perl -d runs the debugger, which runs the commands it reads")
    inplace_vals = values.get("-i")
    inplace = inplace_vals[-1].value if inplace_vals else None
    if inplace is None:
        turned_on = _perl_code_inplace(codes, values)
        if turned_on is not None:
            codes, inplace = turned_on
    loop = "-p" in values or "-n" in values
    _perl_modules(c, values, codes)
    rest = list(args[i:])
    if not codes and rest:
        loc = c.loc(rest[0])
        c.read(rest[0])
        return run_script_file(c, loc, rest[1:], lang="perl")
    if not codes:
        return run_stdin_script(c, "perl", what="perl reading standard input")
    if inplace is not None:
        code = (
            "\n".join(x for x in codes if x is not None)
            if all(x is not None for x in codes)
            else None
        )
        # -0 reads the file in one piece (or by NUL): s/// then acts once on the whole text,
        # which a line-by-line sed does not reproduce
        sed_like = "-p" in values and "-0" not in values
        script = perl_subst_to_sed(code) if code is not None and sed_like else None
        for f in rest:
            loc = c.loc(f)
            if inplace:
                from guard.shell.common import copy_effect

                copy_effect(
                    c,
                    loc,
                    c.st.local(f.value + inplace) if f.known else Location(raw=f.raw + inplace),
                    recursive=False,
                    note="perl -i backup",
                )
            c.emit(
                EffectKind.WRITE, loc, edit=ConfigEdit(op="sed", script=script) if script else None
            )
        if script is None and code is not None:
            inspect_code(c, code, [], what="perl -i", lang="perl")
        return ()
    if any(x is None for x in codes):
        c.unknown("perl: code the analyser cannot see")
        return (OPAQUE,)
    code = "\n".join(x for x in codes if x is not None)
    if _PERL_SETS_INPLACE.search(code):
        _perl_inplace_unknown(c, code, rest)
    out = inspect_code(c, code, rest, what="perl -e", lang="perl")
    if loop:
        files = [f for f in rest if f.known]
        return tuple(fl for f in files for fl in c.content(f, transform=True)) or c.passthrough(
            transform=True
        )
    return out


_PERL_USE = re.compile(r"(?:^|[;{}])\s*(?:use|require)\s+([A-Za-z_][\w:]*)", re.M)
_PERL_LIB = re.compile(r"""\buse\s+lib\s+(?:qw\s*[(/{]\s*([^)/}]*)|(["'])([^"']*)\2)""")


def _perl_modules(c: Cmd, values: dict[str, list[Field]], codes: list[str | None]) -> None:
    """Modules that ``-M``/``-m`` and ``use`` name, found in a folder that ``-I`` or ``use lib``
    puts before the installed ones: project files, read like the code."""
    text = "\n".join(x for x in codes if x is not None)
    dirs = [f.value if f.known else None for f in values.get("-I", [])]
    for m in _PERL_LIB.finditer(text):
        dirs.extend((m.group(1) or "").split() if m.group(1) is not None else [m.group(3)])
    if not dirs:
        return
    if any(d is None for d in dirs):
        c.unseen("perl -I: a module folder the analyser cannot see")
        return
    modules = [
        f.value.lstrip("-").split("=")[0]
        for f in values.get("-M", []) + values.get("-m", [])
        if f.known
    ]
    modules.extend(m.group(1) for m in _PERL_USE.finditer(text))
    for name in modules:
        rel = name.replace("::", "/") + ".pm"
        for d in dirs:
            if d is not None and load_file(c, os.path.join(d, rel), "perl", what="perl", depth=0):
                break
