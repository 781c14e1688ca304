"""Re-entry: running text, files and standard input as code, in a new shell or the right
interpreter, and the commands that only do that (``/script``, a program the table does not
know). Every command family that runs code it was given (shells, wrappers, xargs, build
tools, hooks, ssh) comes back into the analyser through here, one level deeper.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from guard.shell.code import inspect_code, inspect_python
from guard.shell.core import TABLE, Cmd, State, command
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import EffectKind, Location


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
    prefix: str = "",
) -> tuple[Flow, ...]:
    """Analyse the data on standard input as a script: heredocs, ``cat x | sh``, ``... | base64 -d | sh``.

    Args:
        c: The interpreter's command.
        lang: ``shell``, ``python`` or another language name.
        what: How to name the script in notes.
        run: A callable ``(text) -> flows`` that analyses the script instead (shell text run
            somewhere else, ``ssh``; a perl program with its own switches).
        shell: The shell that runs the script, already set up (else a new child shell).
        prefix: Code the interpreter runs before the script, in the same session (sqlite3's
            ``-cmd``, ``-init`` and format options): read as the script's first lines.
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
        if run is not None:
            out.extend(run(text))
        elif lang == "shell":
            sub = shell or shell_for(c, stdin=(), pos=[], arg0=c.name)
            if sub is not None:
                out.extend(sub.run_text(text, what=what))
        elif lang == "python":
            out.extend(inspect_python(c, text, [], what=what))
        else:
            script = f"{prefix}\n{text}" if prefix else text
            out.extend(inspect_code(c, script, [], what=what, lang=lang))
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
    if prog in SHELLS:
        return "shell"
    if PYTHONS.fullmatch(prog):
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
    return kind if kind in ("shell", "python", *SCANNED) else None


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
            return TABLE["perl"](Cmd(c.st, "perl", [*words, code, *args], c.stdin, c.via))
    if kind in SCANNED:
        return inspect_code(c, text, args, what=what, lang=kind, base=base)
    c.unknown(f"{what} runs with an interpreter the analyser does not know ({kind})", loc)
    return _unknown_args(c, args)


def _unknown_args(c: Cmd, args: list[Field]) -> tuple[Flow, ...]:
    return TABLE["/unknown"](Cmd(c.st, c.name, args, c.stdin, c.via))


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
            c.unknown(f"unknown command {short(c.name)} given a path", loc)
        for fl in f.flows:
            if fl.src is not None and not f.pipe:
                hit = True
                c.unknown(f"unknown command {short(c.name)} given file content", fl.src)
    for fl in c.stdin:
        if fl.src is not None and not fl.names:
            hit = True
            c.unknown(f"unknown command {short(c.name)} reads file content", fl.src)
    if not hit:
        c.emit(EffectKind.EXEC)
    return (*c.passthrough(transform=True), OPAQUE)


@command("/script")
def _script(c: Cmd) -> tuple[Flow, ...]:
    loc = c.st.local(c.name)
    c.emit(EffectKind.EXEC, loc)
    return run_script_file(c, loc, c.args, stdin=c.stdin)


SHELLS = names("bash sh dash zsh ksh ash mksh yash posh rbash busybox-sh")


# Script languages whose code is scanned for the paths and APIs it uses.
SCANNED = ("perl", "ruby", "node", "nodejs", "php", "lua", "Rscript", "tclsh", "deno", "bun")


PYTHONS = re.compile(r"python(\d+(\.\d+)?)?|pypy3?")


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


__all__ = [
    "PYTHONS",
    "SCANNED",
    "SHELLS",
    "file_text",
    "perl_shebang_switches",
    "run_code",
    "run_script_file",
    "run_stdin_script",
    "run_text_in",
    "script_language",
    "shell_for",
]
