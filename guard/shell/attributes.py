"""Commands that change a file's attributes: chmod (a switch made unreadable is a switch
turned off), chown, touch, setfacl and kin.
"""

from __future__ import annotations

import re

from guard.shell.common import (
    META,
    WRITE,
    isdir,
)
from guard.shell.core import Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.perms import FILE_MODE, FOLDER_MODE, acl_takes_read, apply_mode, takes_access
from guard.shell.words import Field, Flow
from guard.types import ConfigEdit, Location

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
    """The change ``chmod SPEC`` (``None``: a mode the analyser cannot know) makes to ``loc``:
    read access taken from someone (search access, for a folder: nothing below it can be
    opened) makes a config unreadable, which the guard reads as every switch in it off.

    The new mode is recorded whenever it is known, so that a later ``chmod`` on the line (a
    relative mode, or ``--reference`` to this file) starts from it; a change it cannot know
    leaves the mode unknown for the rest of the line, and so does ``-R`` below a folder."""
    run = c.st.run
    path = loc.path if loc.visible else None
    lost = path is not None and run.mode_lost(path)
    absolute = spec is not None and re.fullmatch(r"[0-7]{1,4}", spec) is not None
    if spec is None or (lost and not absolute):
        _lose(c, loc, recursive=recursive)
        return UNKNOWN_ACCESS
    mode, folder = _mode_of(c, loc)
    if lost:
        mode = 0o777  # whatever it was, the new mode may take any access away
    after = apply_mode(mode, spec, folder=folder)
    if after is None:
        _lose(c, loc, recursive=recursive)
        return UNKNOWN_ACCESS
    if path is not None:
        if recursive and folder:
            run.lose_mode(path, below=True)  # the files below start from their own modes
        run.set_mode(path, after)  # a later chmod on the line starts from this mode
    if takes_access(mode, after, folder=folder):
        return UNREADABLE
    if folder and recursive:
        # what -R does to the files below, taken as readable by everyone
        below = apply_mode(FILE_MODE, spec, folder=False)
        if below is None or takes_access(FILE_MODE, below, folder=False):
            return UNREADABLE
    return META


def _lose(c: Cmd, loc: Location, *, recursive: bool) -> None:
    """A change leaves ``loc``'s mode (and with ``recursive``, the modes below) unknown."""
    if loc.path is not None:
        c.st.run.lose_mode(loc.path, below=recursive)


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
        known = ref.path is not None and reference.known and not c.st.run.mode_lost(ref.path)
        bits = c.st.run.mode(ref.path) if known and ref.path is not None else None
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
            if edit is not META:
                _lose(c, loc, recursive=rec)  # an ACL mask shows in the group bits
        _emit_access(c, loc, edit, recursive=rec)
    return ()
