"""Shell builtins and the commands that act on the shell itself: ``cd`` and the directory
stack, ``alias``, ``read``, ``declare`` and kin, ``eval`` and ``source``, and the commands that
start another shell (``su``, ``sg``, ``script``, busybox's applets).
"""

from __future__ import annotations

import os
import re

from guard.shell.core import Cmd, State, command, joined_script
from guard.shell.options import Spec, parse
from guard.shell.reentry import (
    _run_decoded,
    run_script_file,
    run_stdin_script,
    run_text_in,
)
from guard.shell.words import OPAQUE, Field, Flow, Var, short
from guard.shell.wrappers import _run_rest
from guard.types import Location


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
