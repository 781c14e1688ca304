"""Shells started by the command: their options, the startup files they read, and the builtins that
change how later words and command names resolve (``shopt``, ``set``, ``hash``, ``enable``).

A new shell runs code before the command it was given: ``BASH_ENV`` for a non-interactive bash,
``--rcfile``/``~/.bashrc`` for an interactive one, ``/etc/profile`` and ``~/.profile`` for a login
shell, ``~/.zshenv`` for every zsh, ``ENV`` for an interactive POSIX shell. An agent can hide work
there (write a file now, start ``bash -i`` later). Each such file is read at decision time and
analysed as if sourced by the new shell; one the analyser cannot read, or named by a value it
cannot see, is code it cannot read (``unseen``).

A script run by its path whose ``#!`` line names bash is such a new shell too (it reads
``BASH_ENV``), and ``exec -l`` (or an ``exec -a`` name starting with ``-``) makes a login shell.

Options given to the new shell (``-O globstar``, ``-f``, ``BASHOPTS`` in its environment) and set
with ``shopt``/``set`` change which files a glob names, so they are tracked as bash tracks them.

The builtins that set or name variables without an assignment (``let``, ``getopts``, ``test -v``,
``wait -p``) are here too: their names and expressions are evaluated as bash evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guard.shell.core import TABLE, Cmd, State, command
from guard.shell.reentry import run_script_file, run_stdin_script, run_text_in, shell_for
from guard.shell.state import GLOB_OPTIONS
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import EffectKind, Location

__all__ = ["Invocation", "parse_invocation"]

_BASH = names("bash rbash")
_ZSH = names("zsh")
SHELLS = names("bash sh dash zsh ksh ash mksh yash posh rbash busybox-sh")
_UNSEEN_FLAGS = names("--debugger")  # bash runs the debugger's own startup code


@dataclass(slots=True)
class Invocation:
    """What a shell's command line asks of it."""

    text: Field | None = None  # -c TEXT
    read_stdin: bool = False
    interactive: bool = False
    login: bool = False
    rcfile: Field | None = None
    norc: bool = False
    noprofile: bool = False
    on: set[str] = field(default_factory=set)
    off: set[str] = field(default_factory=set)
    unknown_options: bool = False
    unseen: str = ""  # a flag that runs code the analyser does not read
    rest: list[Field] = field(default_factory=list)


def parse_invocation(args: list[Field]) -> Invocation:
    """Read a shell's options up to its command text, script name or ``--``."""
    inv = Invocation()
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            break
        v = a.value
        if v in ("-o", "+o", "-O", "+O"):
            if i + 1 < len(args):
                _option(inv, args[i + 1], on=v[0] == "-", shopt=v[1] == "O")
            i += 2
            continue
        if v in ("--rcfile", "--init-file"):
            inv.rcfile = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if v == "--":
            i += 1
            break
        if v.startswith("--"):
            if v == "--login":
                inv.login = True
            elif v == "--norc":
                inv.norc = True
            elif v == "--noprofile":
                inv.noprofile = True
            elif v in _UNSEEN_FLAGS:
                inv.unseen = v
            i += 1
            continue
        if len(v) > 1 and v[0] in "-+" and v[1:].isalpha():
            flags = v[1:]
            if v[0] == "-":
                inv.interactive = inv.interactive or "i" in flags
                inv.login = inv.login or "l" in flags
                inv.read_stdin = inv.read_stdin or "s" in flags
                if "f" in flags:
                    inv.on.add("noglob")
                if "P" in flags:
                    inv.on.add("physical")
                if "c" in flags:
                    inv.text = args[i + 1] if i + 1 < len(args) else None
                    i += 2 if i + 1 < len(args) else 1
                    break
            else:
                if "f" in flags:
                    inv.off.add("noglob")
                if "P" in flags:
                    inv.off.add("physical")
            i += 1
            continue
        break
    inv.rest = args[i:]
    return inv


def _option(inv: Invocation, f: Field, *, on: bool, shopt: bool) -> None:
    if not f.known:
        inv.unknown_options = True
        return
    name = f.value
    if (shopt and name in GLOB_OPTIONS) or (not shopt and name in ("noglob", "physical")):
        (inv.on if on else inv.off).add(name)


def _with(opts: frozenset[str] | None, on: set[str], off: set[str]) -> frozenset[str] | None:
    if opts is None:
        return None
    return frozenset((opts | on) - off) if on or off else opts


def _startup_files(name: str, inv: Invocation, st: State) -> list[Field | str | None]:
    """The files (or variables naming them) a new shell reads before its command, in order.

    A ``Field`` stands for a value the shell takes from a variable or option; ``None`` for a
    variable the analyser cannot read.
    """
    home = _var(st, "HOME", st.home)
    out: list[Field | str | None] = []
    if name in _ZSH:
        zdot = _var(st, "ZDOTDIR", home)
        out += ["/etc/zsh/zshenv", _under(zdot, ".zshenv")]
        if inv.login:
            out += ["/etc/zsh/zprofile", _under(zdot, ".zprofile")]
        if inv.interactive:
            out += ["/etc/zsh/zshrc", _under(zdot, ".zshrc")]
        if inv.login:
            out += ["/etc/zsh/zlogin", _under(zdot, ".zlogin")]
        return out
    bash = name in _BASH
    if inv.login and not inv.noprofile:
        out.append("/etc/profile")
        if bash:
            out.append(_first(st, [_under(home, f) for f in (".bash_profile", ".bash_login")]))
        out.append(_under(home, ".profile"))
    if inv.interactive and bash and not inv.norc:
        if inv.rcfile is not None:
            out.append(inv.rcfile)
        else:
            out += ["/etc/bash.bashrc", _under(home, ".bashrc")]
    elif inv.interactive:
        out.append(_var_field(st, "ENV"))
    if bash and not inv.interactive:
        out.append(_var_field(st, "BASH_ENV"))
    return [f for f in out if f != ""]


def _var(st: State, name: str, default: str | None) -> str | None:
    v = st.vars.get(name)
    if v is None:
        return default
    return v.text


def _var_field(st: State, name: str) -> Field | str | None:
    v = st.vars.get(name)
    if v is None or v.text == "":
        return ""
    if v.text is None:
        return None
    return Field(v.text, raw=f"${name}")


def _under(base: str | None, name: str) -> str | None:
    return None if base is None else base.rstrip("/") + "/" + name


def _first(st: State, paths: list[str | None]) -> str | None:
    """The first of ``paths`` that exists (bash reads only one of them); "" for none."""
    for p in paths:
        if p is None:
            return None
        loc = st.local(p)
        if loc.path is not None and st.run.exists(loc.path):
            return p
    return ""


def _read_startup(c: Cmd, sub: State, name: str, what: Field | str | None) -> None:
    """Analyse one startup file as the new shell sources it."""
    if what is None:
        c.unseen(f"{name} reads a startup file named by a value the analyser cannot see")
        return
    if isinstance(what, Field):
        if not what.known:
            c.unseen(f"{name} reads a startup file the analyser cannot name ({short(what.raw)})")
            return
        value = what.value
        if "$" in value or "`" in value:
            # BASH_ENV and ENV are expanded (substitutions run) before the file is read.
            sub.run_nested_text(": " + value, what=f"{name} startup file name")
            c.unseen(f"{name} reads a startup file named by an expansion ({short(value)})")
            return
    else:
        value = what
    loc = sub.local(sub.map_abs(value))
    if loc.path is None:
        c.unseen(f"{name} reads a startup file the analyser cannot resolve ({short(value)})")
        return
    run = sub.run
    text = run.read_text(loc)
    if text is None:
        if loc.path in run.overlay or run.exists(loc.path):
            c.unseen(f"{name} reads a startup file the analyser cannot read", loc)
        return
    c.emit(EffectKind.READ, loc)
    sub.run_nested_text(text, what=f"{name} startup file {short(value)}")


def new_shell_for(
    c: Cmd, inv: Invocation, *, stdin: tuple[Flow, ...], pos: list[str] | None, arg0: str
) -> State | None:
    """The shell ``c`` starts, with its options set and its startup files already analysed."""
    sub = shell_for(c, stdin=stdin, pos=pos, arg0=arg0)
    if sub is None:
        return None
    sub.globopts = None if inv.unknown_options else _with(sub.globopts, inv.on, inv.off)
    if inv.unseen:
        c.unseen(f"{c.name} {inv.unseen} runs code the analyser does not read")
    for what in _startup_files(c.name, inv, sub):
        _read_startup(c, sub, c.name, what)
    return sub


@command(*SHELLS)
def _shell(c: Cmd) -> tuple[Flow, ...]:
    inv = parse_invocation(c.args)
    rest = inv.rest
    if inv.text is not None:
        arg0 = rest[0].value if rest and rest[0].known else c.name
        pos = [a.value for a in rest[1:]] if all(a.known for a in rest[1:]) else None
        sub = new_shell_for(c, inv, stdin=c.stdin, pos=pos if pos is not None else [], arg0=arg0)
        if sub is None:
            return (OPAQUE,)
        return run_text_in(c, inv.text, what=f"{c.name} -c", stdin=c.stdin, shell=sub)
    if rest and rest[0].pipe:
        # bash <(curl ...): the script is whatever the process substitution prints
        piped = Cmd(c.st, c.name, rest[1:], rest[0].flows, c.via)
        sub = new_shell_for(c, inv, stdin=(), pos=[], arg0=c.name)
        if sub is None:
            return (OPAQUE,)
        return run_stdin_script(piped, "shell", what=f"{c.name} <(...)", shell=sub)
    if rest and not inv.read_stdin:
        loc = c.loc(rest[0])
        pos = [a.value for a in rest[1:]] if all(a.known for a in rest[1:]) else None
        sub = new_shell_for(c, inv, stdin=c.stdin, pos=pos, arg0=loc.raw)
        if sub is None:
            return (OPAQUE,)
        return run_script_file(c, loc, rest[1:], lang="shell", stdin=c.stdin, shell=sub)
    sub = new_shell_for(c, inv, stdin=(), pos=[], arg0=c.name)
    if sub is None:
        return (OPAQUE,)
    return run_stdin_script(c, "shell", what=f"{c.name} reading standard input", shell=sub)


# ------------------------------------------------------------ options


@command("shopt")
def _shopt(c: Cmd) -> tuple[Flow, ...]:
    st = c.st
    mode = ""
    setopt = False
    names_: list[Field] = []
    for a in c.args:
        if a.known and a.value.startswith("-") and len(a.value) > 1 and not names_:
            for flag in a.value[1:]:
                if flag in "su":
                    mode = flag
                elif flag == "o":
                    setopt = True
            continue
        names_.append(a)
    if mode == "":
        return (OPAQUE,)  # shopt, shopt -p, shopt -q: report only
    opts = st.globopts
    for f in names_:
        if opts is None:
            break
        if not f.known:
            opts = None
        elif (setopt and f.value == "noglob") or (not setopt and f.value in GLOB_OPTIONS):
            opts = opts | {f.value} if mode == "s" else opts - {f.value}
    st.globopts = opts
    return ()


@command("set")
def _set(c: Cmd) -> tuple[Flow, ...]:
    st = c.st
    args = list(c.args)
    k = 0
    while k < len(args):
        a = args[k]
        if not a.known:
            if k > 0 and args[k - 1].known and args[k - 1].value in ("-o", "+o"):
                st.globopts = None
            k += 1
            continue
        v = a.value
        if v == "--" or (v == "-" and k == 0):
            st.pos = _positional(args[k + 1 :])
            return ()
        if v in ("-o", "+o") and k + 1 < len(args):
            nxt = args[k + 1]
            if not nxt.known:
                st.globopts = None
            elif nxt.value == "allexport":
                st.allexport = v == "-o"
            elif nxt.value in ("noglob", "physical") and st.globopts is not None:
                chosen = {nxt.value}
                st.globopts = (
                    _with(st.globopts, chosen, set())
                    if v == "-o"
                    else _with(st.globopts, set(), chosen)
                )
            k += 2
            continue
        if len(v) > 1 and v[0] in "-+" and v[1:].isalpha():
            if "a" in v[1:]:
                st.allexport = v[0] == "-"
            for flag, option in (("f", "noglob"), ("P", "physical")):
                if flag in v[1:] and st.globopts is not None:
                    on, off = ({option}, set()) if v[0] == "-" else (set(), {option})
                    st.globopts = _with(st.globopts, on, off)
            k += 1
            continue
        # the first word that is not an option starts the positional parameters
        st.pos = _positional(args[k:])
        return ()
    return ()


def _positional(args: list[Field]) -> list[str] | None:
    return [a.value for a in args] if all(a.known for a in args) else None


# ------------------------------------------------- names that run something else


@command("hash")
def _hash(c: Cmd) -> tuple[Flow, ...]:
    """``hash -p PATH NAME`` makes NAME run PATH, whatever PATH holds."""
    args = list(c.args)
    for k, a in enumerate(args):
        if a.known and a.value == "-p" and k + 2 < len(args):
            path, name = args[k + 1], args[k + 2]
            if not (path.known and name.known):
                c.unseen("hash -p binds a command name to a program the analyser cannot name")
                return ()
            c.st.hashed[name.value] = path.value
            return ()
        if a.known and a.value in ("-r", "-d"):
            c.st.hashed.clear()
    return ()


@command("enable")
def _enable(c: Cmd) -> tuple[Flow, ...]:
    """``enable -f LIB NAME`` loads a builtin from a shared library: code the guard cannot read."""
    for a in c.args:
        if not a.known or (a.value.startswith("-") and "f" in a.value[1:]):
            c.unseen("enable -f loads a builtin from a shared library")
            break
    return ()


# ------------------------------------------------- scripts and exec started as new shells

_script_file = TABLE["/script"]
_exec = TABLE["exec"]


def _bash_shebang(c: Cmd, loc: Location) -> bool:
    """True when the file at ``loc`` starts with a ``#!`` line that runs bash."""
    head = c.st.run.read_head(loc, 256)
    if head is None or not head.startswith(b"#!"):
        return False
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return bool(words) and words[0].rsplit("/", 1)[-1] in _BASH


@command("/script", replaces=True)
def _script(c: Cmd) -> tuple[Flow, ...]:
    """A script run by its path: one whose ``#!`` names bash is a new non-interactive bash,
    which reads ``BASH_ENV`` before the script."""
    loc = c.st.local(c.name)
    if not _bash_shebang(c, loc):
        return _script_file(c)
    c.emit(EffectKind.EXEC, loc)
    pos = [a.value for a in c.args] if all(a.known for a in c.args) else None
    bash = Cmd(c.st, "bash", [], c.stdin, c.via)
    sub = new_shell_for(bash, Invocation(), stdin=c.stdin, pos=pos, arg0=loc.raw)
    if sub is None:
        return (OPAQUE,)
    return run_script_file(c, loc, c.args, stdin=c.stdin, shell=sub)


@command("exec", replaces=True)
def _exec_login(c: Cmd) -> tuple[Flow, ...]:
    """``exec -l bash`` and ``exec -a -bash bash`` start a login shell (its argument zero
    starts with ``-``): it reads ``/etc/profile`` and ``~/.profile`` first."""
    args = list(c.args)
    login = False
    k = 0
    while (
        k < len(args) and args[k].known and args[k].value.startswith("-") and args[k].value != "-"
    ):
        flag = args[k].value
        if flag == "--":
            k += 1
            break
        if flag == "-a" and k + 1 < len(args):
            name = args[k + 1]
            login = login or not name.known or name.value.startswith("-")
            k += 2
            continue
        login = login or "l" in flag[1:]
        k += 1
    rest = args[k:]
    if login and rest and rest[0].known and rest[0].value.rsplit("/", 1)[-1] in SHELLS:
        return c.st.dispatch([rest[0], Field("-l", raw="-l"), *rest[1:]], c.stdin)
    return _exec(c)


# ---------------------------------------------------------------- variables


@command("let")
def _let(c: Cmd) -> tuple[Flow, ...]:
    """Each argument is an arithmetic expression, with the assignments it makes."""
    for a in c.args:
        if a.known:
            c.st.arith(a.value, what="let")
        else:
            c.unseen(f"let evaluates text the analyser cannot see ({short(a.raw)})")
    return ()


@command("getopts")
def _getopts(c: Cmd) -> tuple[Flow, ...]:
    """``getopts OPTSTRING NAME [ARG...]`` sets NAME, OPTARG and OPTIND to what it parses."""
    if len(c.args) >= 2:
        f = c.args[1]
        name = c.st.var_name(f.value if f.known else None, what="getopts", subscripts=False)
        for n in (name, "OPTARG", "OPTIND"):
            if n is not None:
                c.st.set_var(n, Var(None))
    return ()


@command("test [")
def _test(c: Cmd) -> tuple[Flow, ...]:
    """``test -v NAME``: a subscript in NAME is evaluated (it may run code)."""
    args = c.args
    for k, a in enumerate(args[:-1]):
        if a.known and a.value == "-v":
            nxt = args[k + 1]
            c.st.var_name(nxt.value if nxt.known else None, what="test -v")
    return ()


@command("wait")
def _wait(c: Cmd) -> tuple[Flow, ...]:
    """``wait -p NAME`` sets NAME to the id of the job that ended."""
    args = c.args
    for k, a in enumerate(args[:-1]):
        if a.known and a.value == "-p":
            nxt = args[k + 1]
            name = c.st.var_name(nxt.value if nxt.known else None, what="wait -p")
            if name is not None:
                c.st.set_var(name, Var(None))
    return ()
