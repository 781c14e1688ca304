"""What every command handler shares: remote operands, where a copy lands, the copy effect
itself, reading whole files or parts of them, and running shell text a program is given.

A handler module imports from here and from :mod:`guard.shell.core` (the handler API), never
from another handler module, so that the command families do not import each other.
"""

from __future__ import annotations

import os
import re

from guard.shell.core import Cmd, State
from guard.shell.words import OPAQUE, Field, Flow
from guard.types import ConfigEdit, EffectKind, Location

READ = EffectKind.READ
LIST = EffectKind.LIST
WRITE = EffectKind.WRITE
DELETE = EffectKind.DELETE
COPY = EffectKind.COPY
MOVE = EffectKind.MOVE
TRANSFER = EffectKind.TRANSFER
META = ConfigEdit(op="metadata")


def split_remote(value: str) -> tuple[str, str] | None:
    """``[user@]HOST:PATH`` as (host, path); ``None`` for a local path (as scp and rsync decide)."""
    if value.startswith(("scp://", "sftp://", "ssh://")):
        rest = value.split("://", 1)[1]
        hostpart, _, path = rest.partition("/")
        host = hostpart.rsplit("@", 1)[-1]
        host = host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
        return host, path
    if value.startswith("/"):
        return None
    if value.startswith("["):
        end = value.find("]:")
        return (value[: end + 1], value[end + 2 :]) if end > 0 else None
    i = value.find(":")
    if i <= 0 or "/" in value[:i]:
        return None
    return value[:i], value[i + 1 :]


def dest_for(st: State, src: Location, dst: Location, raw: str, *, into: bool = False) -> Location:
    """Where ``src`` lands when copied to ``dst``: inside it when it is a folder (or must be one)."""
    if dst.path is None:
        return dst
    if into or raw.endswith("/") or st.run.isdir(dst.path):
        # the name as written decides: `cp -a dir/. dst` copies the folder's content into dst
        base = os.path.basename(src.raw.rstrip("/")) if src.raw else ""
        if not base and src.path:
            base = os.path.basename(src.path)
        if not base or base in (".", ".."):
            return dst
        return st.run.at(
            os.path.join(dst.path, base), dst.raw.rstrip("/") + "/" + base, dst.visible
        )
    return dst


def copy_effect(
    c: Cmd,
    src: Location,
    dst: Location,
    *,
    recursive: bool,
    kind: EffectKind = COPY,
    via: str | None = None,
    note: str = "",
    certain: bool = True,
) -> None:
    """A copy or move; overwriting an existing file is also recorded as a write to it, with
    the text it gets when an earlier command of this line wrote the source (so a config written
    that way is judged on its content)."""
    c.emit(kind, src, dst, recursive=recursive, via=via, note=note, certain=certain)
    if dst.path is None or not dst.visible:
        return
    run = c.st.run
    text = None if recursive else run.written_text(src)
    if text is not None:
        edit = ConfigEdit(op="replace", content=text)
        c.emit(WRITE, dst, via=via, edit=edit, note="holds what was copied there")
    elif run.isfile(dst.path):
        c.emit(WRITE, dst, via=via, note="overwritten by a copy")


def isdir(c: Cmd, loc: Location) -> bool:
    """True when ``loc`` is an existing folder."""
    return loc.path is not None and c.st.run.isdir(loc.path)


def take_whole(c: Cmd, loc: Location, flag: bool) -> bool:
    """A folder (or a place the analyser cannot see) taken by a recursive command."""
    if not flag:
        return False
    path = loc.path
    return path is None or c.st.run.isdir(path) or not c.st.run.exists(path)


def source_places(c: Cmd, f: Field) -> list[tuple[Location, bool, bool]]:
    """The places a source argument stands for: a path, or the sources behind ``<(...)``.

    Each comes with whether it is a folder taken whole and whether it stands for the files
    below it (``find DIR -exec cp {} DST``), which then land in DST itself.
    """
    if f.pipe:
        return [
            (fl.src, fl.recursive, False) for fl in f.flows if fl.src is not None and not fl.names
        ]
    return [(c.loc(f), f.recursive, f.loc is not None)]


def byte_count(text: str) -> int | None:
    """A byte count as head, od, dd and kin write it (``64``, ``0x40``, ``1K``, ``2x512``).

    Counts are read so that they are never below what any of these tools reads: ``064`` is 64
    (not octal 52), ``k`` is 1024. ``None`` for anything else, a negative count included.
    """
    total = 1
    for part in text.split("x") if "x" in text[1:] and not text.startswith("0x") else [text]:
        m = _SIZE.fullmatch(part)
        if m is None or m.group(2) not in _SIZE_UNITS:
            return None
        num = m.group(1)
        total *= (int(num, 16) if num[:2] in ("0x", "0X") else int(num)) * _SIZE_UNITS[m.group(2)]
    return total


def run_shell_text(
    c: Cmd, text: str, *, what: str, stdin: tuple[Flow, ...] = ()
) -> tuple[Flow, ...]:
    """Analyse ``text`` as a script run by this command in a new shell (``awk system()``)."""
    st = c.st
    sub = st.new_shell(
        cwd=st.cwd, home=st.home, host=st.host, stdin=stdin, variables=st.env_vars(), pos=[]
    )
    if sub is None:
        return (OPAQUE,)
    return sub.run_text(text, what=what)


_SIZE = re.compile(r"(0[xX][0-9a-fA-F]{1,16}|\d{1,18})([A-Za-z]{0,3})")


_SIZE_UNITS = {
    "": 1, "c": 1, "w": 2, "b": 512, "kB": 1000, "KB": 1000, "K": 1024, "k": 1024, "KiB": 1024,
    "MB": 1000**2, "M": 1024**2, "m": 1024**2, "MiB": 1024**2,
    "GB": 1000**3, "G": 1024**3, "g": 1024**3, "GiB": 1024**3,
}  # fmt: skip


__all__ = [
    "META",
    "arg_flows",
    "byte_count",
    "copy_effect",
    "dest_for",
    "invisible",
    "isdir",
    "run_shell_text",
    "send",
    "source_places",
    "split_remote",
    "take_whole",
]


def invisible(raw: str, host: str | None) -> Location:
    return Location(raw=raw, path=None, host=host, visible=False)


def send(c: Cmd, flows: tuple[Flow, ...], dest: Location, *, via: str | None = None) -> None:
    """Data of ``flows`` leaves for ``dest``, which the guard cannot see into."""
    for fl in flows:
        if fl.src is not None and not fl.names:
            v = via or ((fl.via + "|" if fl.via else "") + c.name)
            c.st.run.emit(TRANSFER, fl.src, dest, recursive=fl.recursive, via=v, prefix=fl.limit)


def arg_flows(c: Cmd, fields: list[Field]) -> tuple[Flow, ...]:
    return tuple(fl for f in fields if not f.pipe for fl in f.flows if fl.src is not None)
