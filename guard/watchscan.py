"""What the live watch keeps of each protected file, and how it looks again without events.

A tracked file is remembered by a stat key (inode, size, mtime, ctime), its identity (inode and,
where the filesystem reports one, inode generation: ext4 reuses a deleted file's inode number at
once, the generation tells the new file from the old), its link count and its SHA-256. A rescan
stats every tracked file and hashes only those whose stat key moved. The stat is taken before
the hash, so a file that changes while it is hashed keeps a key that no longer matches, and is
hashed again next time.

The watch also listens to watchdog's own log: watchdog reports a folder it could not watch (the
inotify watch limit) only as a warning, and leaves that folder unwatched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat as stat_mod
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from guard import assets, configs
from guard.assets import sha256_files

StatKey = tuple[int, int, int, int]
Identity = tuple[int, int]

_FS_IOC_GETVERSION = 0x80087601  # _IOR('v', 1, long): the inode generation (ext4, btrfs, xfs)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(slots=True)
class Tracked:
    """What the watch last saw of one protected file.

    Attributes:
        key: Inode, size, mtime and ctime (ns) when it was last looked at.
        ident: Inode and inode generation (0 where the filesystem has none).
        nlink: Hard link count.
        digest: SHA-256 of the content, ``None`` when it could not be read as a regular file.
    """

    key: StatKey
    ident: Identity
    nlink: int
    digest: str | None


def stat_key(st: os.stat_result) -> StatKey:
    """The part of a stat that changes when a file's content or inode does.

    Args:
        st: A stat result (of ``lstat``).

    Returns:
        Inode, size, mtime and ctime in nanoseconds.
    """
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def hash_file(path: str) -> str | None:
    """SHA-256 of a regular file, not followed through a symlink.

    Args:
        path: The file.

    Returns:
        The hex digest, or ``None`` when it is not a readable regular file.
    """
    return sha256_files([path])


def generation(path: str) -> int:
    """The inode generation of ``path`` (``FS_IOC_GETVERSION``).

    Args:
        path: The file (not followed through a symlink).

    Returns:
        The generation, or 0 where the filesystem or the file type has none.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return 0
    try:
        raw = fcntl.ioctl(fd, _FS_IOC_GETVERSION, bytes(8))
        return int(struct.unpack("q", raw)[0])
    except OSError:
        return 0
    finally:
        os.close(fd)


def read_state(path: str, st: os.stat_result | None = None) -> Tracked | None:
    """Look at ``path`` now: stat (unless given), generation, then hash.

    Args:
        path: The file.
        st: Its ``lstat``, when the caller has just taken it.

    Returns:
        What the file is now, or ``None`` when it is gone.
    """
    if st is None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
    if not stat_mod.S_ISREG(st.st_mode):
        return Tracked(stat_key(st), (st.st_ino, 0), st.st_nlink, None)
    return Tracked(stat_key(st), (st.st_ino, generation(path)), st.st_nlink, hash_file(path))


def walk_files(roots: Sequence[str]) -> Iterator[str]:
    """Every regular file below ``roots`` (see :func:`guard.assets.walk_files`)."""
    return assets.walk_files(*roots)


def under(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one.

    Args:
        path: An absolute path.
        roots: Absolute folders.

    Returns:
        True when it is.
    """
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


# What watchdog logs when it leaves part of a tree unwatched, by logger.
_BLIND_SPOTS = {
    "watchdog.observers.inotify": ("Unable to watch", "Unable to rebuild recursive inotify"),
    "watchdog.observers.polling": ("Cannot take a snapshot",),
}
_tap_lock = threading.Lock()
_taps: list[LogTap] = []
_saved_levels: dict[str, int] = {}


class LogTap(logging.Handler):
    """A handler on watchdog's loggers that passes on the warnings that mean a blind spot.

    Args:
        roots: Only paths inside these count.
        report: Called with the logger's name, the path and the formatted message. It runs on
            the thread that logged (a watchdog thread): it should only take note.
    """

    def __init__(self, roots: Sequence[str], report: Callable[[str, str, str], None]) -> None:
        super().__init__(logging.WARNING)
        self.roots = list(roots)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        """Pass on a record that names a path under the roots as unwatched.

        Args:
            record: The log record.
        """
        msg = record.msg if isinstance(record.msg, str) else ""
        if not msg.startswith(_BLIND_SPOTS.get(record.name, ())):
            return
        args = record.args if isinstance(record.args, tuple) else ()
        raw = args[0] if args else ""
        path = os.fsdecode(raw) if isinstance(raw, str | bytes) else ""
        if path and under(path, self.roots):
            try:
                message = record.getMessage()
            except Exception:  # a malformed record still means a blind spot
                message = msg
            self.report(record.name, path, message)

    def install(self) -> None:
        """Attach to watchdog's loggers, lowering them to WARNING where they were higher."""
        with _tap_lock:
            if not _taps:
                for name in _BLIND_SPOTS:
                    logger = logging.getLogger(name)
                    if logger.getEffectiveLevel() > logging.WARNING:
                        _saved_levels[name] = logger.level
                        logger.setLevel(logging.WARNING)
            _taps.append(self)
            for name in _BLIND_SPOTS:
                logging.getLogger(name).addHandler(self)

    def remove(self) -> None:
        """Detach, and restore the loggers' levels once no tap is left."""
        with _tap_lock:
            for name in _BLIND_SPOTS:
                logging.getLogger(name).removeHandler(self)
            if self in _taps:
                _taps.remove(self)
            if not _taps:
                for name, level in _saved_levels.items():
                    logging.getLogger(name).setLevel(level)
                _saved_levels.clear()


FINDINGS: Final = {
    "modified": "watch-modified",
    "replaced": "watch-replaced",
    "oversight-off": "watch-oversight-off",
    "deleted": "watch-deleted",
    "moved": "watch-moved",
    "copy": "watch-copied",
    "link": "watch-linked",
    "gap": "watch-gap",
}
"""The watch's kinds of finding and the rule id each alert of that kind carries."""


def config_state(path: str) -> Any:
    """The parsed content of a config file (``None`` when unreadable or not structured)."""
    text = configs.read_text(path)
    return configs.parse(text, path) if text is not None else None


def switched_off(matcher: configs.OversightMatcher, before: Any, path: str) -> list[str]:
    """The oversight switches on in ``before`` that the file at ``path`` now has off."""
    if before is None:
        return []
    try:
        return matcher.turned_off(before, config_state(path))
    except configs.TooComplex:
        return []


__all__ = [
    "FINDINGS",
    "LogTap",
    "Tracked",
    "config_state",
    "generation",
    "hash_file",
    "read_state",
    "stat_key",
    "switched_off",
    "under",
    "walk_files",
]
