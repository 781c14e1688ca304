"""Resolving paths as the kernel would, and mapping host names to the filesystems the guard sees.

A deployment tells the guard which hosts' filesystems it can see, and where (``--host
NAME=DIR``). ``NAME:PATH`` in ``scp``/``rsync``/``sftp`` and the working directory of
``ssh NAME CMD`` then resolve to real paths under ``DIR``, so the same rules hold on every
host. A host the guard was not told about is a network destination it cannot see into.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from guard.types import Location


@dataclass(frozen=True, slots=True)
class Host:
    """A host whose filesystem the guard can see at ``root``; ``~`` is ``home``."""

    name: str
    root: str
    home: str


_O_PATH = getattr(os, "O_PATH", 0)
_PROC_FD = "/proc/self/fd/"
_HAVE_PROC = _O_PATH != 0 and os.path.isdir(_PROC_FD)


def _kernel_realpath(path: str, depth: int = 0) -> str:
    """Resolve an absolute ``path`` the way the kernel does, in a few system calls.

    The longest existing prefix is opened with ``O_PATH`` and its name read back from
    ``/proc/self/fd``; missing components after it are appended as written (a ``..`` after a
    missing component removes it, as it would once created). A symbolic link to a place that
    does not exist yet is followed: writing through it creates its target. Falls back to
    :func:`os.path.realpath` where ``O_PATH`` or ``/proc`` is not available.
    """
    if not _HAVE_PROC or depth > 64:
        return os.path.realpath(path)
    try:
        fd = os.open(path, _O_PATH)
    except FileNotFoundError:
        head, tail = os.path.split(path.rstrip("/") or "/")
        if not tail or head == path:
            return os.path.realpath(path)
        base = _kernel_realpath(head, depth + 1)
        if tail == "..":
            return os.path.dirname(base)
        if tail == ".":
            return base
        joined = os.path.join(base, tail)
        try:
            target = os.readlink(joined)  # a link whose target is missing
        except (OSError, ValueError):
            return joined
        return _kernel_realpath(os.path.join(base, target), depth + 1)
    except ValueError:  # an embedded NUL: no such file can exist; keep the text as written
        return os.path.normpath(path)
    except OSError:
        return os.path.realpath(path)
    try:
        return os.readlink(f"{_PROC_FD}{fd}")
    except OSError:
        return os.path.realpath(path)
    finally:
        os.close(fd)


# Places whose meaning depends on the process that opens them: resolved in the guard's own
# process they would name the guard's working directory, root or files.
_PROCESS = re.compile(r"/(?:proc/(?:self|thread-self|\d+)|dev/(?:fd|stdin|stdout|stderr))(?:/|$)")
_PROCESS_DIR = re.compile(r"/proc/(?:self|thread-self)/(cwd|root)(/.*)?")
_MAX_HOPS = 40  # the kernel's own bound on symbolic links followed in one lookup


def resolve(raw: str, cwd: str, home: str | None = None, *, root: str | None = None) -> str | None:
    """Resolve ``raw`` to an absolute path with ``~``, ``..`` and symlinks resolved.

    Paths through the process filesystem (``/proc/self/cwd/...``, ``/proc/self/root/...``,
    ``/proc/<pid>/...``, ``/dev/fd/N/..``, ``/dev/stdin``), written out or reached through a
    symbolic link, are resolved as the process that runs the call sees them: its working
    directory is ``cwd`` and its root ``root``. Where that process is not known (``root`` is
    ``None``, another pid, a file descriptor) the place cannot be resolved.

    Args:
        raw: The path as written in the call.
        cwd: The working directory that relative paths start from.
        home: What ``~`` means; the process's home directory when ``None``.
        root: The root directory of the process that runs the call, when known.

    Returns:
        An absolute, normalised path, symlinks in the existing part followed as the kernel
        would follow them when the call runs; ``None`` when it cannot be resolved.
    """
    path = raw
    if path == "~" or path.startswith("~/"):
        path = (home if home is not None else os.path.expanduser("~")) + path[1:]
    if not os.path.isabs(path):
        path = os.path.join(cwd, path)
    return _resolve(path, cwd, root, 0)


def _resolve(path: str, cwd: str, root: str | None, depth: int) -> str | None:
    # Before `..` is folded away: `/dev/stdin/..` is the parent of whatever fd 0 is, not /dev.
    written = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    if _PROCESS.match(written):
        return _in_process(written, cwd, root, depth)
    norm = "/" + os.path.normpath(path).lstrip("/")
    if _PROCESS.match(norm):
        return _in_process(norm, cwd, root, depth)
    real = _kernel_realpath(path)
    if real != norm:
        # A symbolic link was followed: it may lead into the process filesystem.
        hop = _process_link(path)
        if hop is not None:
            return _in_process(hop, cwd, root, depth)
    return real


def _in_process(norm: str, cwd: str, root: str | None, depth: int) -> str | None:
    """A process-filesystem path as the calling process sees it, or ``None``."""
    m = _PROCESS_DIR.fullmatch(norm)
    if m is None or root is None or depth > 8:
        return None
    base = cwd if m.group(1) == "cwd" else root
    return _resolve(base.rstrip("/") + (m.group(2) or "/"), cwd, root, depth + 1)


def _process_link(path: str) -> str | None:
    """Where ``path`` enters the process filesystem through a symbolic link, or ``None``.

    Walks the path one component at a time, as the kernel does, and returns the normalised
    path from the first link whose target lies in ``/proc/<self|pid>`` or ``/dev/fd`` on.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    cur = "/"
    hops = 0
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if part == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = os.path.join(cur, part)
        try:
            mode = os.lstat(nxt).st_mode
        except (OSError, ValueError):
            return None  # nothing more exists to follow
        if not stat.S_ISLNK(mode):
            cur = nxt
            continue
        hops += 1
        try:
            target = os.readlink(nxt)
        except OSError:
            return None
        if hops > _MAX_HOPS:
            return None
        joined = os.path.join(cur, target)
        rest = parts[i:]
        full = "/" + os.path.normpath("/".join([joined, *rest])).lstrip("/")
        if _PROCESS.match("/" + os.path.normpath(joined).lstrip("/")):
            return full
        parts = [p for p in joined.split("/") if p and p != "."] + rest
        cur = "/"
        i = 0
    return None


class HostMap:
    """Host names to the folders where the guard sees their filesystems.

    Args:
        hosts: Name to folder, or :class:`Host` values when ``~`` is not the host's root.
    """

    def __init__(self, hosts: Mapping[str, str] | Iterable[Host] = ()) -> None:
        items: list[Host] = []
        if isinstance(hosts, Mapping):
            for name, folder in hosts.items():
                root = os.path.realpath(folder)
                items.append(Host(name, root, root))
        else:
            items = [
                Host(h.name, os.path.realpath(h.root), os.path.realpath(h.home)) for h in hosts
            ]
        # Host names are matched as DNS matches them: any case, with or without a final dot.
        self._hosts = {host_key(h.name): h for h in items}
        # Resolutions and folder tests are cached until invalidate(): the engine invalidates
        # after every call it lets run, so only changes made outside the guard can go stale,
        # and those could race a check anyway (check-then-run is never atomic).
        # (raw, cwd, home, root) -> (resolved path or None, the host whose folder holds it)
        self._resolved: dict[
            tuple[str, str, str | None, str | None], tuple[str | None, str | None]
        ] = {}
        self._isdir: dict[str, bool] = {}
        # Longest root first, so nested host folders attribute to the innermost host.
        self._by_root = sorted(items, key=lambda h: len(h.root), reverse=True)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and host_key(strip_user(name)) in self._hosts

    def __iter__(self) -> Iterator[Host]:
        return iter(self._hosts.values())

    def __len__(self) -> int:
        return len(self._hosts)

    def get(self, name: str) -> Host | None:
        """The host called ``name`` (a ``user@`` prefix is ignored), or ``None``."""
        return self._hosts.get(host_key(strip_user(name)))

    def host_of(self, path: str) -> str | None:
        """The name of the host whose folder holds ``path``; ``None`` for the local machine."""
        for h in self._by_root:
            if path == h.root or path.startswith(h.root + os.sep):
                return h.name
        return None

    def invalidate(self) -> None:
        """Forget cached resolutions (the filesystem may have changed)."""
        self._resolved.clear()
        self._isdir.clear()

    def realpath(
        self, raw: str, cwd: str, home: str | None = None, *, root: str | None = None
    ) -> str | None:
        """:func:`resolve`, cached until :meth:`invalidate`."""
        return self._place(raw, cwd, home, root)[0]

    def _place(
        self, raw: str, cwd: str, home: str | None, root: str | None
    ) -> tuple[str | None, str | None]:
        key = (raw, cwd, home, root)
        placed = self._resolved.get(key)
        if placed is None:
            if len(self._resolved) > 100_000:
                self._resolved.clear()
            path = resolve(raw, cwd, home, root=root)
            placed = self._resolved[key] = (path, None if path is None else self.host_of(path))
        return placed

    def isdir(self, path: str) -> bool:
        """``os.path.isdir``, cached until :meth:`invalidate`."""
        found = self._isdir.get(path)
        if found is None:
            if len(self._isdir) > 100_000:
                self._isdir.clear()
            found = self._isdir[path] = os.path.isdir(path)
        return found

    def local(
        self, raw: str, cwd: str, home: str | None = None, root: str | None = None
    ) -> Location:
        """A :class:`Location` for a local path, attributed to the host whose folder holds it.

        ``root`` is the root of the process that opens the path, when known (see
        :func:`resolve`); a process-filesystem path is unresolved without it.
        """
        placed = self._resolved.get((raw, cwd, home, root)) or self._place(raw, cwd, home, root)
        return Location(raw, placed[0], placed[1])

    def remote(self, host: str, raw_path: str) -> Location:
        """A :class:`Location` for ``HOST:PATH``.

        On a known host, a leading ``/``, ``~/`` or ``~`` means the host's folder, and a
        relative path starts at its home. On an unknown host the place is not visible.
        """
        name = strip_user(host)
        h = self._hosts.get(host_key(name))
        if h is None:
            return Location(raw=f"{host}:{raw_path}", path=None, host=name, visible=False)
        rel = raw_path
        base = h.home
        if rel.startswith("~/") or rel == "~":
            rel = rel[1:].lstrip("/")
        elif rel.startswith("/"):
            rel = rel.lstrip("/")
            base = h.root
        path = self.realpath(rel, base, root=h.root) if rel else base
        # A path that climbs out of the host's folder stays attributed to what holds it.
        found = None if path is None else self.host_of(path)
        return Location(raw=f"{host}:{raw_path}", path=path, host=found or None)


# Places whose content runs later as code, outside any call the guard decides: shell and tool
# startup files, schedulers, service definitions, hooks, the dynamic loader's preload list,
# Python's site hooks. Writing one is code the guard cannot see run.
_RUN_LATER_NAMES = frozenset(
    [
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".profile",
        ".zshrc",
        ".zshenv",
        ".zprofile",
        ".zlogin",
        ".zlogout",
        ".kshrc",
        ".mkshrc",
        ".cshrc",
        ".tcshrc",
        ".login",
        ".xprofile",
        ".xinitrc",
        ".xsessionrc",
        ".pam_environment",
        ".vimrc",
        ".exrc",
        ".gdbinit",
        ".pythonrc",
        ".pythonstartup",
        ".inputrc",
        "sitecustomize.py",
        "usercustomize.py",
        "crontab",
        "rc.local",
        "ld.so.preload",
        "authorized_keys",
    ]
)
_RUN_LATER_PARTS = (
    "/.git/hooks/", "/etc/profile.d/", "/etc/cron", "/var/spool/cron/",
    "/etc/systemd/", "/lib/systemd/", "/.config/systemd/", "/.config/autostart/",
    "/etc/xdg/autostart/", "/etc/init.d/", "/etc/rc", "/etc/ld.so.conf", "/.ssh/rc",
    "/.ssh/environment", "/.config/fish/", "/etc/update-motd.d/", "/etc/apt/apt.conf.d/",
    "/etc/logrotate.d/", "/etc/sudoers", "/etc/bash.bashrc", "/etc/profile", "/etc/environment",
    "/etc/zsh/",
)  # fmt: skip
# One search for every part, and for a .pth file in site-packages (on a decision's hot path).
_RUN_LATER_RE = re.compile(
    "|".join([*map(re.escape, _RUN_LATER_PARTS), r"-packages/(?:[^/]*/)*[^/]*\.pth\Z"])
)
# Git's own config files, and the startup files of curl, wget, npm and yarn, are left to those
# programs' analysers, which read them whenever the program runs in a guarded call.


@functools.lru_cache(maxsize=4096)
def runs_later(path: str) -> bool:
    """Whether ``path`` holds code that runs later, outside any call the guard decides: a
    shell or tool startup file, a crontab, a service unit, a git hook, a loader or
    ``site`` hook (see :data:`_RUN_LATER_NAMES` and :data:`_RUN_LATER_PARTS`)."""
    name = path[path.rfind("/") + 1 :]
    if name in _RUN_LATER_NAMES:
        return True
    _head, sep, tail = path.rpartition("/.git/hooks/")
    if sep and tail == name and name.endswith(".sample"):
        # git init's examples: git runs a hook only by its exact name, never a .sample
        # (renaming one into place is a write of that name, judged then).
        return False
    return _RUN_LATER_RE.search(path) is not None


def host_key(name: str) -> str:
    """A host name as DNS compares it: lower case, without a trailing dot."""
    return name.rstrip(".").lower()


def strip_user(host: str) -> str:
    """``user@host`` to ``host``; also drops a ``:port``-free IPv6 bracket form."""
    name = host.rsplit("@", 1)[-1]
    return name.strip("[]")


__all__ = ["Host", "HostMap", "host_key", "resolve", "runs_later", "strip_user"]
