"""``find``: the files its expression matches, and what its actions do to them (``-delete``,
``-exec``, ``-execdir``, ``-fprint``...), see :mod:`guard.shell.findexpr`.
"""

from __future__ import annotations

import os

from guard.shell.common import (
    DELETE,
    LIST,
    WRITE,
)
from guard.shell.core import Cmd, command
from guard.shell.findexpr import Action, evaluate
from guard.shell.words import Field, Flow, names
from guard.types import Location

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
