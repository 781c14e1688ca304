"""Commands that copy, move, link, delete, create and truncate files: cp, install, mv, ln,
rm, mkdir, truncate, dd, tee, mount and umount.
"""

from __future__ import annotations

import os

from guard.shell.attributes import UNKNOWN_ACCESS, UNREADABLE
from guard.shell.common import (
    DELETE,
    META,
    MOVE,
    WRITE,
    byte_count,
    copy_effect,
    dest_for,
    isdir,
    source_places,
    take_whole,
)
from guard.shell.core import Cmd, command
from guard.shell.options import Opts, Spec, parse
from guard.shell.perms import FILE_MODE, apply_mode, takes_access
from guard.shell.reading import first_bytes
from guard.shell.words import OPAQUE, Field, Flow
from guard.types import ConfigEdit, Location

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
        flows = first_bytes(c, src, c.content(src), count)
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
