"""File permissions as ``chmod``, ``install -m`` and ``setfacl`` change them.

The guard reads a config it cannot open as holding no switch that is on (see
:mod:`guard.configs`), and so does any program that treats a missing setting as off: a change
that takes read access away from a config with a shutdown switch switches oversight off for
every reader who lost it. These helpers work out, before the command runs, whether a mode or
ACL change takes read access (or, on a folder, search access) away from anyone.
"""

from __future__ import annotations

import re

__all__ = ["FILE_MODE", "FOLDER_MODE", "acl_takes_read", "apply_mode", "takes_access"]

#: The modes assumed for a file or a folder the guard cannot stat (``umask 022``).
FILE_MODE = 0o644
FOLDER_MODE = 0o755

_SHIFTS = {"u": 6, "g": 3, "o": 0}
_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")


def apply_mode(mode: int, spec: str, *, folder: bool) -> int | None:
    """The permission bits (``0o777``) after ``chmod SPEC`` on a file whose mode is ``mode``.

    ``spec`` is an octal mode (``600``, ``0000``) or symbolic clauses (``u-r,go=``,
    ``a+rX``, ``g=u``); with no ``ugoa`` letters a clause applies to everyone (the umask is
    taken to leave read and search bits alone). Set-id and sticky bits are ignored.

    Returns:
        The new bits, or ``None`` when ``spec`` is not a mode chmod accepts.
    """
    bits = mode & 0o777
    if re.fullmatch(r"[0-7]{1,4}", spec):
        return int(spec, 8) & 0o777
    for clause in spec.split(","):
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            return None
        who = m.group(1).replace("a", "ugo") or "ugo"
        for op, perms in _ACTION.findall(m.group(2)):
            for cls in dict.fromkeys(who):
                shift = _SHIFTS[cls]
                if perms in _SHIFTS:
                    value = (bits >> _SHIFTS[perms]) & 7
                else:
                    value = (4 if "r" in perms else 0) | (2 if "w" in perms else 0)
                    if "x" in perms or ("X" in perms and (folder or bits & 0o111)):
                        value |= 1
                if op == "+":
                    bits |= value << shift
                elif op == "-":
                    bits &= ~(value << shift)
                else:
                    bits = (bits & ~(7 << shift)) | (value << shift)
    return bits


def takes_access(before: int, after: int, *, folder: bool) -> bool:
    """Whether going from mode ``before`` to ``after`` takes access away from someone: read
    access to a file, search access to a folder (what is below it can no longer be opened)."""
    need = 0o111 if folder else 0o444
    return bool(before & need & ~after)


def acl_takes_read(entries: str) -> bool:
    """Whether ``setfacl -m ENTRIES`` takes read access away from someone: an access entry
    (``u:name:-w-``, ``o::0``, the mask ``m::x``) that grants no read. Default entries
    (``d:u::---``) change only what new files get."""
    for entry in re.split(r"[,\n]", entries):
        entry = entry.strip()
        if not entry or entry.startswith(("#", "d:", "default:")):
            continue
        parts = entry.split(":")
        perms = parts[-1].strip() if len(parts) >= 2 else ""
        if perms.isdigit():
            if not int(perms) & 4:
                return True
        elif "r" not in perms.lower():
            return True
    return False
