"""What one analysis records: effects (once each), its bounds, and what files hold meanwhile.

A command line can write a file and use it a moment later (``echo ... > x.sh; bash x.sh``,
``cp w tmp; scp tmp host:``). :class:`Run` remembers, for the rest of the analysis, what each
written file now holds (the *overlay*, read back by :meth:`Run.read_text`) and which original
sources any copied data came from (*provenance*), so the later step is judged on the real data.

It also keeps the shape of the filesystem the line builds: folders it makes, symbolic links
(followed by every later path, ``..`` included, as the kernel will) and hard links (a write to
one name of a file is a write to all its names). Globs (:mod:`guard.shell.globs`) match what
exists on disk and what the line made, as bash will see them when it reaches them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import time
from collections.abc import Mapping

from guard.exceptions import GuardError
from guard.paths import HostMap
from guard.shell.sed import apply_sed
from guard.shell.words import Flow, fd_number, has_glob, short
from guard.types import ConfigEdit, Effect, EffectKind, Location

__all__ = ["DEFAULT_PATH", "Exhausted", "Run"]

# Every bound of the analysis, in one place. Going past one never raises to the caller of
# analyse(): the part left out becomes an UNKNOWN effect.
MAX_DEPTH = 8  # nested parses: bash -c, ssh, eval, source, scripts
MAX_NEST = 40  # syntactic nesting; keeps Python's own stack far from its limit
MAX_COMMANDS = 2000
MAX_EFFECTS = 2000
MAX_ARGS = 5000  # words of one command
MAX_GLOB = 1000  # words one glob may become
MAX_GLOBS = 32  # glob patterns expanded against the filesystem per analysis
MAX_SCAN = 20_000  # folder entries one glob looks at
MAX_LOOP = 32  # iterations of a loop body that are analysed one by one
MAX_READ = 1 << 20  # scripts and batch files read at call time
MAX_TEXT = 1 << 20  # literal text kept (variables, command output)
TIME_LIMIT = 5.0  # seconds; a backstop for filesystems and code the budgets do not bound

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - where anyone may write
# The PATH this process started with: what a command's shell on this machine searches.
_PROCESS_PATH = os.environ.get("PATH") or DEFAULT_PATH
_DEV_SINKS = frozenset(("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"))
_DEV_STDOUT = frozenset(("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"))
_DEV_STDERR = frozenset(("/dev/stderr", "/dev/fd/2", "/proc/self/fd/2", "/dev/tty"))
_DEV_NET = re.compile(r"/dev/(tcp|udp)/([^/]+)/([^/]+)")
_MOVES = frozenset((EffectKind.COPY, EffectKind.MOVE, EffectKind.TRANSFER))
# Effects on a file's content or its names, which the line's hard links carry over.
_NAMED = frozenset((EffectKind.WRITE, EffectKind.COPY, EffectKind.MOVE, EffectKind.DELETE))
_HARD_NOTE = "through a hard link made earlier in this command"
_MAX_NAMES = 16  # names of one file the line's hard links are followed to


class Exhausted(GuardError):
    """An analysis bound was reached; the rest of the command is not analysed."""


class Run:
    """What one :func:`~guard.shell.analyse` call shares between all the shells it walks."""

    __slots__ = (
        "commands",
        "created",
        "deadline",
        "derived",
        "effects",
        "env0",
        "globs",
        "hard",
        "hosts",
        "links",
        "locs",
        "lost_modes",
        "modes",
        "overlay",
        "path0",
        "roots",
        "seen",
        "taps",
        "touched",
        "writable_roots",
    )

    def __init__(
        self, hosts: HostMap, env: Mapping[str, str] | None = None, roots: tuple[str, ...] = ()
    ) -> None:
        self.hosts = hosts
        # Where an agent can put a program of its own (see writable()), worked out when asked.
        self.roots = roots
        self.writable_roots: tuple[str, ...] | None = None
        # The environment the command starts with: what the command line itself changes in it
        # is what the analysis must look at.
        self.env0: Mapping[str, str] = env or {}
        self.path0: str = self.env0.get("PATH") or _PROCESS_PATH
        self.deadline = time.monotonic() + TIME_LIMIT
        self.globs = 0
        self.commands = 0
        self.effects: list[Effect] = []
        self.seen: set[tuple[object, ...]] = set()
        self.locs: dict[tuple[str, str | None, str | None, str | None], Location] = {}
        # File modes asked during this analysis (None: nothing there). Folder tests go through
        # the host map's cache instead, which lasts until the guard invalidates it.
        self.modes: dict[str, int | None] = {}
        # Places whose permission bits a change on the line left unknown (a folder stands for
        # everything below it too).
        self.lost_modes: set[str] = set()
        self.created: set[str] = set()  # folders made by this command line (cd may enter them)
        # What files hold after earlier commands of this same command line wrote them: text,
        # None (changed in an unknown way) or the path whose content was copied there.
        self.overlay: dict[str, str | tuple[str] | None] = {}
        # Files this command line copied data into, with the original sources of that data.
        self.derived: dict[str, tuple[tuple[Location, bool], ...]] = {}
        # Symbolic links this command line makes (`ln -s t l`): link path -> absolute target,
        # followed by every later path of the analysis as the kernel will follow the real link.
        self.links: dict[str, str] = {}
        # Hard links this command line makes (`ln f h`, `cp -l`, a bind mount): every name of one
        # file maps to the same list of its names.
        self.hard: dict[str, list[str]] = {}
        # Files given only new metadata (`touch`): they exist, for a glob, whatever they hold.
        self.touched: set[str] = set()
        # Lists that collect the places of every effect emitted while they are here, repeats
        # included (what a traced command touches, see ``strace``).
        self.taps: list[list[tuple[EffectKind, Location, bool]]] = []

    def tick(self) -> None:
        """Count one command against the budgets."""
        self.commands += 1
        if self.commands > MAX_COMMANDS:
            raise Exhausted(f"more than {MAX_COMMANDS} commands")
        if time.monotonic() > self.deadline:
            raise Exhausted(f"took longer than {TIME_LIMIT:g} s")

    def give_up(self, note: str) -> None:
        """Record that the analysis stopped (always recorded, past every bound): the rest of
        the command runs unseen."""
        key = ("give-up", note)
        if key not in self.seen:
            self.seen.add(key)
            self.effects.append(
                Effect(kind=EffectKind.UNKNOWN, certain=False, note=note, via="bash", unseen=True)
            )

    def _add(self, effect: Effect, key: tuple[object, ...]) -> None:
        if len(self.effects) >= MAX_EFFECTS:
            raise Exhausted("too many effects")
        self.seen.add(key)
        self.effects.append(effect)

    def at(self, path: str, raw: str, visible: bool = True) -> Location:
        """A Location for an absolute path, attributed to the host whose folder holds it."""
        if "\0" in path:
            return Location(raw=raw, path=None, visible=visible)
        # The host map's resolver asks the kernel once and caches until the guard invalidates.
        found = self.hosts.realpath(path, "/")
        real = self.follow(found) if found is not None else None
        if real is None:
            return Location(raw=raw, path=None, visible=visible)
        return Location(raw=raw, path=real, host=self.hosts.host_of(real), visible=visible)

    def writable(self, path: str) -> bool:
        """Whether a program at ``path`` may be one the agent made: written by this command
        line, or below a protected root, a host folder or a temporary folder."""
        if path in self.overlay:
            return True
        if self.writable_roots is None:
            places = (*self.roots, *(h.root for h in self.hosts), *_TEMP_DIRS)
            self.writable_roots = tuple(p.rstrip("/") + "/" for p in places)
        return path.startswith(self.writable_roots)

    def isdir(self, path: str) -> bool:
        """``os.path.isdir``, through the host map's cache (kept until the guard invalidates it)."""
        return self.hosts.isdir(path)

    def exists(self, path: str) -> bool:
        """``os.path.exists``, asked once per analysis."""
        return self._mode(path) is not None

    def isfile(self, path: str) -> bool:
        """``os.path.isfile``; nothing below a place that is not a folder is asked about."""
        if path.startswith("/") and not self.hosts.isdir(os.path.dirname(path)):
            return False  # the kernel cannot reach a file through a missing folder or a file
        mode = self._mode(path)
        return mode is not None and stat.S_ISREG(mode)

    def _mode(self, path: str) -> int | None:
        modes = self.modes
        if path in modes:
            return modes[path]
        try:
            mode: int | None = os.stat(path).st_mode
        except (OSError, ValueError):
            mode = None
        if len(modes) < 4096:
            modes[path] = mode
        return mode

    def mode(self, path: str) -> int | None:
        """``st_mode`` of ``path`` (as a mode change earlier on the line left it), or ``None``."""
        return self._mode(path)

    def set_mode(self, path: str, bits: int) -> None:
        """A mode change on the line leaves ``path``'s permission bits at ``bits``."""
        mode = self._mode(path)
        if mode is not None:
            self.modes[path] = (mode & ~0o777) | bits
            self.lost_modes.discard(path)

    def lose_mode(self, path: str, *, below: bool = False) -> None:
        """A change on the line leaves ``path``'s permission bits unknown (``below``: and those
        of everything below it)."""
        if below:
            self.lost_modes.add(path.rstrip("/") + "/")
        self.lost_modes.add(path)

    def mode_lost(self, path: str) -> bool:
        """Whether a change on the line left ``path``'s permission bits unknown."""
        lost = self.lost_modes
        if not lost:
            return False
        return path in lost or any(p.endswith("/") and path.startswith(p) for p in lost)

    def add_link(self, link: str, target: str) -> None:
        """``link`` is now a symbolic link to the absolute ``target`` (for the rest of the line)."""
        if link == target:
            return
        if len(self.links) >= 256:
            self._too_many("symbolic links")
            return
        self.links[link] = target
        self.locs.clear()  # cached resolutions may pass through the new link

    def follow(self, real: str, depth: int = 0) -> str | None:
        """A resolved path after the symbolic links made earlier in this command line.

        A path equal to a link or below it maps onto the link's target, which is then resolved
        again (on disk and through the other links), as the kernel will do once the links exist.
        ``None`` where a link leads somewhere only the running process knows (``/proc/self``).
        """
        links = self.links
        if not links:
            return real
        for _ in range(40):  # the kernel's own bound on links followed in one lookup
            for link, target in links.items():
                if real == link or real.startswith(link + "/"):
                    rest = target + real[len(link) :]
                    found = (
                        self.physical(rest, depth=depth + 1)
                        if "/.." in rest
                        else self.hosts.realpath(rest, "/")
                    )
                    if found is None:
                        return None
                    real = found
                    break
            else:
                return real
        return real

    def physical(
        self, path: str, cwd: str = "/", root: str | None = None, depth: int = 0
    ) -> str | None:
        """The absolute ``path`` resolved as the kernel will once this line's links exist.

        The kernel takes each ``..`` from where the part before it really leads: after
        ``ln -s a/b z``, ``z/..`` is ``a``, not the folder holding ``z``. Resolving the text first
        would fold ``z/..`` away before the link is seen. ``cwd`` and ``root`` are the working
        directory and root of the process that opens the path (see
        :func:`guard.paths.resolve`); ``root`` is ``None`` where it cannot be told.
        """
        if depth > 8:
            return None  # links whose targets climb through each other: not worth a guess
        base = "/"
        seg: list[str] = []
        climbs = 0
        for part in path.split("/"):
            if part == "..":
                climbs += 1
                if climbs > 64:
                    return None
                found = self._real(os.path.join(base, *seg), cwd, root, depth)
                if found is None:
                    return None
                base, seg = os.path.dirname(found), []
            elif part and part != ".":
                seg.append(part)
        return self._real(os.path.join(base, *seg), cwd, root, depth)

    def _real(self, path: str, cwd: str, root: str | None, depth: int) -> str | None:
        found = self.hosts.realpath(path, cwd, root=root)
        return None if found is None else self.follow(found, depth)

    def add_hard(self, name: str, other: str) -> None:
        """``name`` is now another name of the file ``other`` (a hard link, for the rest of the
        line): writing through either is writing the one file."""
        if name == other:
            return
        self.unname(name)
        names = self.hard.get(other, [other])
        if len(self.hard) >= 256 or len(names) >= _MAX_NAMES:
            self._too_many("hard links")
            return
        names.append(name)
        self.hard[other] = self.hard[name] = names

    def _too_many(self, what: str) -> None:
        # what goes through the ones not followed is not seen
        self.emit(
            EffectKind.UNKNOWN,
            certain=False,
            note=f"more {what} than the analyser follows in one command",
            via="bash",
            unseen=True,
        )

    def unname(self, name: str) -> None:
        """``name`` no longer names the file it shared with others (removed or replaced)."""
        names = self.hard.pop(name, None)
        if names is not None and name in names:
            names.remove(name)

    def _through_hard_links(
        self,
        kind: EffectKind,
        target: Location | None,
        dest: Location | None,
        recursive: bool,
        via: str,
        edit: ConfigEdit | None,
        certain: bool,
    ) -> None:
        """The same write (or copy over) at every other name of a file with hard links."""
        if kind is EffectKind.MOVE or kind is EffectKind.DELETE:
            # a rename or removal changes names, never the file the others still name
            if dest is not None and dest.path is not None:
                self.unname(dest.path)
            if target is not None and target.path is not None and target.path in self.hard:
                moved = self.hard.pop(target.path)
                moved.remove(target.path)
                if kind is EffectKind.MOVE and dest is not None and dest.path is not None:
                    moved.append(dest.path)
                    self.hard[dest.path] = moved
            return
        written = target if kind is EffectKind.WRITE else dest
        if written is None or written.path is None or (kind is EffectKind.COPY and recursive):
            return
        path = written.path
        names = self.hard.get(path)
        rest = ""
        head = path
        while names is None:
            # a file below a folder linked whole (`cp -al`, a bind mount of a folder)
            head, tail = os.path.split(head)
            if not tail or len(rest) > 4096:
                return
            rest = "/" + tail + rest
            names = self.hard.get(head)
        for name in list(names):
            if name + rest == path:
                continue
            alias = self.at(name + rest, name + rest, written.visible)
            if kind is EffectKind.WRITE:
                self.emit(kind, alias, edit=edit, via=via, certain=certain, note=_HARD_NOTE)
            else:
                self.emit(kind, target, alias, via=via, certain=certain, note=_HARD_NOTE)

    def links_below(self, folder: str) -> list[str]:
        """Links made by this command line inside ``folder`` (a copy of it may follow them)."""
        return [link for link in self.links if link.startswith(folder + "/")]

    def emit(
        self,
        kind: EffectKind,
        target: Location | None = None,
        dest: Location | None = None,
        *,
        recursive: bool = False,
        via: str = "",
        edit: ConfigEdit | None = None,
        certain: bool = True,
        note: str = "",
        unseen: bool = False,
        prefix: int | None = None,
    ) -> None:
        """Record one effect, once (``prefix``: only the first bytes of a copied target go)."""
        if self.taps and target is not None:
            for tap in self.taps:
                tap.append((kind, target, recursive))
        key = (
            kind,
            None if target is None else (target.raw, target.path, target.host, target.visible),
            None if dest is None else (dest.raw, dest.path, dest.host, dest.visible),
            recursive,
            via,
            None if edit is None else (edit.op, edit.key, edit.content, edit.script),
            certain,
            note,
            unseen,
            prefix,
        )
        if key in self.seen:
            return
        roots = self._roots(target) if kind in _MOVES and self.derived else ()
        self._track(kind, target, dest, recursive, edit)
        self._forget_modes(kind, target, dest, certain=certain, unseen=unseen)
        self._add(
            Effect(
                kind=kind,
                target=target,
                dest=dest,
                recursive=recursive,
                via=via,
                edit=edit,
                certain=certain,
                note=note,
                unseen=unseen,
                prefix=prefix,
            ),
            key,
        )
        if self.hard and kind in _NAMED and note != _HARD_NOTE:
            self._through_hard_links(kind, target, dest, recursive, via, edit, certain)
        if kind in _MOVES and self.links and target is not None and target.path is not None:
            for link in self.links_below(target.path):
                # `ln -s ../w d/; rsync -aL d/ host:`: the folder carries what its links point to
                self.emit(
                    kind,
                    self.at(link, link, target.visible),
                    dest,
                    recursive=True,
                    via=via,
                    certain=certain,
                    note="follows a symbolic link made earlier in this command",
                )
        for src, whole in roots:
            # `cp w tmp; scp tmp host:` ships w: say so, with w as the source (w itself stays)
            self.emit(
                EffectKind.COPY if kind is EffectKind.MOVE else kind,
                src,
                dest,
                recursive=whole or recursive,
                via=via,
                certain=certain,
                note=f"carries content copied from {short(src.raw)} earlier in this command",
            )

    def _roots(self, target: Location | None) -> tuple[tuple[Location, bool], ...]:
        """The original sources of a file that earlier commands of this line copied data into."""
        derived = self.derived
        if not derived or target is None or target.path is None:
            return ()
        path = target.path
        hit = derived.get(path)
        if hit is not None:
            return hit
        pattern = has_glob(path)
        for key, roots in derived.items():
            # a file inside a folder copied earlier, or a folder holding a file copied earlier
            if path.startswith(key + "/") or key.startswith(path + "/"):
                return roots
            if pattern and fnmatch.fnmatchcase(key, path):
                return roots
        return ()

    def _track(
        self,
        kind: EffectKind,
        target: Location | None,
        dest: Location | None,
        recursive: bool,
        edit: ConfigEdit | None,
    ) -> None:
        """Remember what files hold after this effect, for scripts read later in the command."""
        overlay = self.overlay
        if kind is EffectKind.WRITE and target is not None and target.path is not None:
            if edit is not None and edit.op in ("metadata", "unreadable"):
                if len(self.touched) < MAX_EFFECTS:
                    self.touched.add(target.path)
                return
            new: str | None = None
            if edit is not None and edit.op == "replace":
                new = edit.content
            elif edit is not None and edit.op == "append" and edit.content is not None:
                old = self.read_text(target)
                new = None if old is None else old + edit.content
            elif edit is not None and edit.op == "sed" and edit.script is not None:
                old = self.read_text(target, 64 * 1024)
                new = None if old is None else apply_sed(edit.script, old)
            overlay[target.path] = new
        elif kind in (EffectKind.COPY, EffectKind.MOVE) and dest is not None and dest.path:
            src = target.path if target is not None and not recursive else None
            overlay[dest.path] = (src,) if src is not None else None
            if target is not None:
                roots = self._roots(target) or ((target, recursive),)
                self.derived[dest.path] = roots
        elif kind is EffectKind.DELETE and target is not None and target.path is not None:
            overlay[target.path] = None

    def _forget_modes(
        self,
        kind: EffectKind,
        target: Location | None,
        dest: Location | None,
        *,
        certain: bool,
        unseen: bool,
    ) -> None:
        """An effect the analyser does not know the whole of may change permission bits: an
        unknown one or an uncertain write leaves its target's mode (and everything below it)
        unknown, a copy or move its destination's (the file there may be the source's, with
        its mode), and unseen code with no target every mode. A later ``chmod --reference``
        to such a file, or a relative ``chmod`` of it, is then an unknown change."""
        if kind is EffectKind.UNKNOWN and target is None and unseen:
            self.lose_mode("/", below=True)
        elif (kind is EffectKind.UNKNOWN or (kind is EffectKind.WRITE and not certain)) and (
            target is not None and target.path is not None
        ):
            self.lose_mode(target.path, below=True)
        elif kind in (EffectKind.COPY, EffectKind.MOVE) and dest is not None and dest.path:
            self.lose_mode(dest.path, below=True)

    def _held(self, loc: Location) -> str | tuple[str] | None:
        """What reading ``loc`` later in this command reaches: text an earlier command of the
        line wrote there (a ``str``), the file on disk to read (its path, in a 1-tuple), or
        ``None`` (nothing readable: changed in an unknown way, or not visible)."""
        path = loc.path
        for _ in range(8):
            if path is None or not loc.visible:
                return None
            if path not in self.overlay:
                return (path,)
            held = self.overlay[path]
            if not isinstance(held, tuple):
                return held
            path = held[0]
        return None

    def written_text(self, loc: Location) -> str | None:
        """The text an earlier command of this line wrote to ``loc`` (directly or copied from
        another file it wrote); ``None`` when it holds anything else."""
        held = self._held(loc) if loc.path in self.overlay else None
        return held if isinstance(held, str) else None

    def read_head(self, loc: Location, size: int = 4096) -> bytes | None:
        """The first ``size`` bytes of a file as it will be when read later in this command
        (``None``: nothing readable there)."""
        held = self._held(loc)
        if isinstance(held, tuple):
            return _read_regular(held[0], size)
        return None if held is None else held.encode("utf-8", "replace")[:size]

    def read_text(self, loc: Location, limit: int = MAX_READ) -> str | None:
        """A small text file's content as it will be when read later in this command."""
        held = self._held(loc)
        if not isinstance(held, tuple):
            return held
        data = _read_regular(held[0], limit + 1)
        if data is None or len(data) > limit:
            return None
        return data.decode("utf-8", "replace")

    def sink_file(
        self, loc: Location, flows: tuple[Flow, ...], *, append: bool, via: str = ""
    ) -> tuple[Flow, ...]:
        """Data written to ``loc``: a WRITE, and a COPY (or TRANSFER) from every source in it."""
        path = loc.path
        if path is None and loc.visible and fd_number(loc.raw) is not None:
            return ()  # an fd the analyser does not know: not a file it can name
        if path is not None:
            if path in _DEV_SINKS:
                return ()
            if path in _DEV_STDOUT:
                return flows
            if path in _DEV_STDERR or path.startswith(("/dev/fd/", "/proc/self/fd/")):
                return ()
            m = _DEV_NET.fullmatch(path)
            if m:
                dest = Location(raw=loc.raw, path=None, host=m.group(2), visible=False)
                for fl in flows:
                    if fl.src is not None and not fl.names:
                        self.emit(
                            EffectKind.TRANSFER,
                            fl.src,
                            dest,
                            recursive=fl.recursive,
                            via=fl.via or via or ">",
                            prefix=fl.limit,
                        )
                return ()
        edit: ConfigEdit | None
        texts = [fl.text for fl in flows]
        if not flows:
            edit = (
                ConfigEdit(op="append", content="")
                if append
                else ConfigEdit(op="replace", content="")
            )
        elif all(t is not None for t in texts) and not any(fl.names for fl in flows):
            content = "".join(t for t in texts if t is not None)
            edit = ConfigEdit(op="append" if append else "replace", content=content)
        else:
            edit = None
        self.emit(EffectKind.WRITE, loc, edit=edit, via=via or ">")
        for fl in flows:
            if fl.src is not None and not fl.names:
                kind = EffectKind.COPY if loc.visible else EffectKind.TRANSFER
                self.emit(
                    kind,
                    fl.src,
                    loc,
                    recursive=fl.recursive,
                    via=fl.via or via or ">",
                    prefix=fl.limit,
                )
        return ()


def _read_regular(path: str, size: int) -> bytes | None:
    """Up to ``size`` bytes of a regular file; ``None`` for anything else.

    Only a regular file is read: opening a named pipe would block the guard until someone
    writes to it, and a device may never end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(size)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
