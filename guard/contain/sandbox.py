"""Run one shell command in Linux namespaces, its writes caught in overlay upper layers.

The child process, between ``fork`` and ``exec``, enters new user, mount, PID, IPC, UTS and
(unless the call was given the network) network namespaces, then builds its view of the world:

- every protected root is an **overlay** whose lower layer is the real tree and whose upper
  layer is a folder of the transaction, outside the roots: the command reads the real files;
  what it writes, deletes or renames lands in the upper layer only;
- ``/tmp`` is an overlay too, its upper layer a private tmpfs that ends with the command (the
  machine's files there stay readable: a virtualenv in ``/tmp`` still runs); ``/dev`` is a
  tmpfs with only ``null``, ``zero``, ``full``, ``random`` and ``urandom`` bound in (no tty);
  ``/run`` and ``/var/run`` are private tmpfs (no daemon socket is reachable); every other
  mount is read-only and ``nosuid``;
- it then forks: the child is PID 1 of the new PID namespace, mounts a ``/proc`` that shows only
  the command's processes (its machine-wide files, ``/proc/sys``, ``/proc/irq``..., read-only:
  they check only that the writer is the machine's user 0, which a command of a guard running
  as root is), and enters a second user and mount namespace, which locks every mount
  made so far: the command cannot unmount an overlay or make a mount writable again. When PID 1
  (the command's ``bash``) ends, or its parent is killed at the time limit, the kernel kills
  every process left in the namespace: no background job, ``nohup`` or ``setsid`` survives,
  and the guard looks at the change set only once the starter says PID 1 was reaped, which
  the kernel allows only when no process of the namespace is left.

The namespace calls are the kernel's own (``unshare(2)``, ``mount(2)``, ``mount_setattr(2)``)
made through glibc with :mod:`ctypes`, in the forked child before it runs ``bash``, as util-linux
``unshare`` makes them: util-linux cannot mount overlays or lock mounts, bubblewrap 0.8 (Debian
12's) has no overlay options, and every extra program started costs about a millisecond. The
code that runs in the child touches no Python lock: everything it needs is prepared before the
fork, and its files are written with ``os.open``/``os.write``.

As root the command is root only inside its user namespace; unprivileged, overlayfs is mounted with
``userxattr`` (Linux 5.11 and later). :func:`probe` says whether all of this works here, and if
not, what is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import json
import os
import re
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from guard.exceptions import GuardError

__all__ = [
    "ContainedRun",
    "ContainmentError",
    "ContainmentUnavailable",
    "Limits",
    "Overlay",
    "probe",
    "run_contained",
]


class ContainmentError(GuardError):
    """A contained run could not be set up or went wrong; nothing it wrote was kept."""


class ContainmentUnavailable(ContainmentError):
    """This machine cannot contain commands (no user namespaces, no overlayfs...)."""


@dataclass(frozen=True, slots=True)
class Overlay:
    """One protected root seen through an overlay: the real tree below, the upper layer above.

    Attributes:
        root: The real, absolute folder (the overlay's lower layer and mount point).
        upper: Where the command's writes under ``root`` land.
        work: Overlayfs's work folder (same filesystem as ``upper``).
    """

    root: str
    upper: str
    work: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one contained run.

    Attributes:
        timeout: Seconds before every process of the command is killed.
        max_output: Bytes of standard output (and, separately, of standard error) kept;
            the rest is read and dropped.
        max_upper_bytes: Bytes the command may write into the upper layers; past it,
            the command is killed and its writes are discarded.
        max_files: Entries (files, folders, deletions) it may leave there, likewise.
    """

    timeout: float = 60.0
    max_output: int = 1 << 20
    max_upper_bytes: int = 4 << 30
    max_files: int = 100_000

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout!r}")
        if self.max_output < 0 or self.max_upper_bytes < 0 or self.max_files < 0:
            raise ValueError("max_output, max_upper_bytes and max_files must not be negative")


@dataclass(slots=True)
class ContainedRun:
    """What a contained run gave back.

    Attributes:
        exit_code: ``bash``'s exit status; a negative number is the signal that ended it;
            ``None`` when it was killed at a limit.
        stdout: Standard output, up to :attr:`Limits.max_output` bytes.
        stderr: Standard error, up to the same bound.
        cut: What was cut or killed, in words (empty when nothing was).
        timed_out: The time limit passed and the command was killed.
        over_size: The command wrote more than :attr:`Limits.max_upper_bytes`.
        seconds: Wall time of the run.
    """

    exit_code: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    cut: list[str] = field(default_factory=list)
    timed_out: bool = False
    over_size: bool = False
    seconds: float = 0.0


def walk(folder: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below ``folder`` with its ``lstat``, depth first; what cannot be read is
    left out."""
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    yield entry.path, st
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue


def whiteout(st: os.stat_result) -> bool:
    """Whether an upper-layer entry is overlayfs's mark of a deletion (a 0/0 device)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def opaque_mark(path: str) -> str | None:
    """The attribute that marks an upper-layer folder opaque (made again over a deleted one)."""
    for name in ("user.overlay.opaque", "trusted.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return name
        except OSError:
            continue
    return None


def _upper_usage(layers: Sequence[Overlay], limits: Limits) -> tuple[int, int]:
    """Bytes allocated and entries made in the upper layers, counted until past a limit.

    The walk goes by folder descriptors, not paths, so that no depth of folders hides what is
    below it (a path may be too long to open whole).
    """
    total = entries = 0
    for layer in layers:
        try:
            stack = [os.open(layer.upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        except OSError:
            continue
        try:
            while stack:
                fd = stack.pop()
                try:
                    with os.scandir(fd) as it:
                        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                    for name, is_dir in names:
                        entries += 1
                        try:
                            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        except OSError:
                            continue
                        total += st.st_blocks * 512
                        if total > limits.max_upper_bytes or entries > limits.max_files:
                            return total, entries
                        if is_dir:
                            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                            try:
                                stack.append(os.open(name, flags, dir_fd=fd))
                            except OSError:
                                continue
                finally:
                    os.close(fd)
        finally:
            for fd in stack:
                os.close(fd)
    return total, entries


def _over(layers: Sequence[Overlay], limits: Limits) -> bool:
    total, entries = _upper_usage(layers, limits)
    return total > limits.max_upper_bytes or entries > limits.max_files


_SIZE_POLL = 0.1  # seconds between looks at the upper layers' size
_REAP_WAIT = 10.0  # seconds after SIGKILL for the namespace to empty before giving up
_QUOTED_PID1 = re.compile(rb"(?:^|\n)Q(\d+)\n")

STARTER_PYTHON = sys.executable
"""The interpreter that runs the starter process: any Python 3.11 or later with its standard
library (the starter imports nothing else). Set it when the guard's own interpreter cannot be
run by the user the guard runs as."""
STARTER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zygote.py")
"""The starter's script (:mod:`guard.contain._zygote`)."""
_HEADER = struct.Struct("!I")


class _Zygote:
    """The small process that starts contained commands (see :mod:`guard.contain._zygote`).

    One per guard process, started on first use and again if it died (or this process
    forked); requests from several threads are sent one at a time.
    """

    def __init__(self, *, offline: bool) -> None:
        self._offline = offline
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = subprocess.Popen(
                [STARTER_PYTHON, "-S", "-I", STARTER_SCRIPT, str(theirs.fileno())]
                + (["offline"] if self._offline else []),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,  # no controlling terminal for any command it starts
            )
        finally:
            theirs.close()
        self._sock, self._owner = ours, os.getpid()
        return ours

    def send(self, plan: dict[str, object], fds: Sequence[int]) -> None:
        """Hand one request, with its descriptors, to the zygote."""
        payload = json.dumps(plan).encode()
        with self._lock:
            for attempt in (1, 2):
                sock = self._sock
                if sock is None or self._owner != os.getpid() or self._dead():
                    sock = self._start()
                try:
                    socket.send_fds(sock, [_HEADER.pack(len(payload))], list(fds))
                    sock.sendall(payload)
                    return
                except OSError as exc:
                    self._sock = None
                    if attempt == 2:
                        raise ContainmentError(f"the sandbox starter is gone: {exc}") from exc

    def _dead(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def close(self) -> None:
        """Stop the starter: it exits when its socket closes."""
        with self._lock:
            if self._owner != os.getpid():
                return  # a forked child does not own its parent's starter
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None


_OFFLINE = _Zygote(offline=True)
_ONLINE = _Zygote(offline=False)
atexit.register(_OFFLINE.close)
atexit.register(_ONLINE.close)
_ONLINE_ALONE = threading.Lock()


@functools.cache
def _scoped() -> bool:
    """Whether the kernel has Landlock scopes (ABI 6, Linux 6.12): then each command's PID 1
    keeps its abstract unix sockets and signals to its own processes (see the starter).
    ``PEERGUARD_SANDBOX_SCOPES=off`` in the environment says no, as the starter reads it."""
    if os.environ.get("PEERGUARD_SANDBOX_SCOPES") == "off":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(444, None, 0, 1)) >= 6  # landlock_create_ruleset: ABI version
    except (OSError, AttributeError):
        return False


def run_contained(
    command: str,
    layers: Sequence[Overlay],
    *,
    cwd: str,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    network: bool = False,
    masks: Sequence[str] = (),
    hide: Sequence[str] = (),
    bash: str = "bash",
) -> ContainedRun:
    """Run ``bash -c command`` contained; its writes under each root stay in its upper layer.

    Args:
        command: The shell command line.
        layers: One :class:`Overlay` per protected root; the upper and work folders must
            exist, be empty, and lie outside every root, on one filesystem per layer.
        cwd: The working directory (the path as the command sees it).
        env: The environment (``None``: this process's).
        limits: Time, output and size limits.
        network: Give the command this machine's network (default: none at all).
        masks: Files to hide behind an empty file (protected content that a call given
            the network was not allowed to send).
        hide: Folders shown empty (the guard's own state: other runs' layers, the journal).
        bash: The shell to run.

    Returns:
        The run's :class:`ContainedRun`.

    Raises:
        ContainmentError: The sandbox could not be set up (the message says which step).
    """
    limits = limits or Limits()
    overlays = []
    for layer in layers:
        for path in (layer.root, layer.upper, layer.work):
            if "," in path or ":" in path or "\\" in path or not os.path.isabs(path):
                raise ContainmentError(f"a path overlayfs cannot take as an option: {path!r}")
        _clear(layer.work)
        # userxattr: mountable unprivileged; it also implies no redirects and no metacopy,
        # so a renamed folder is copied up whole and every change is plain to see.
        options = (
            f"lowerdir={layer.root},upperdir={layer.upper},workdir={layer.work},userxattr,volatile"
        )
        overlays.append((layer.root, options))
    plan: dict[str, object] = {
        "argv": [bash, "-c", command],
        "cwd": cwd,
        "env": dict(os.environ if env is None else env),
        "overlays": overlays,
        "masks": list(masks),
        "hide": list(hide),
    }
    # Calls given the network share the machine's network namespace, so its abstract unix
    # sockets: without Landlock scopes to keep each command's to itself, one at a time, or one
    # could hand another a descriptor of a file it wrote, to write through once that file is
    # judged harmless and committed. (Calls without it each have a network namespace.)
    alone = _ONLINE_ALONE if network and not _scoped() else contextlib.nullcontext()
    with alone:
        return _run(plan, layers, limits, network)


def _run(
    plan: dict[str, object], layers: Sequence[Overlay], limits: Limits, network: bool
) -> ContainedRun:
    started = time.monotonic()
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    st_r, st_w = os.pipe2(os.O_CLOEXEC)
    try:
        (_ONLINE if network else _OFFLINE).send(plan, (out_w, err_w, st_w))
    except BaseException:
        for fd in (out_r, err_r, st_r):
            os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, st_w):
            os.close(fd)
    result = ContainedRun(exit_code=None)
    try:
        _collect(out_r, err_r, st_r, result, layers, limits, started)
    finally:
        for fd in (out_r, err_r, st_r):
            os.close(fd)
    result.seconds = time.monotonic() - started
    return result


def remove_tree(path: str) -> None:
    """Remove a folder a sandbox used, even where overlayfs left entries whose modes shut
    out everyone but root in its namespace (they are opened up as they are met)."""
    if not os.path.lexists(path):
        return

    def opened(_func: object, failed: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    shutil.rmtree(path, onerror=opened)


def _clear(work: str) -> None:
    """Empty an overlay work folder: a volatile mount leaves a mark there that refuses the
    next mount (the upper layer is whole: the run that used it ended before this one)."""
    try:
        names = os.listdir(work)
    except FileNotFoundError:
        return
    for name in names:
        remove_tree(os.path.join(work, name))


def _collect(
    out: int, err: int, status: int, result: ContainedRun, layers: Sequence[Overlay], limits: Limits,
    started: float,
) -> None:  # fmt: skip
    """Read output within bounds, enforce the time and size limits, wait for the status."""
    kept = {out: bytearray(), err: bytearray()}
    dropped = {out: 0, err: 0}
    said = bytearray()
    sel = selectors.DefaultSelector()
    for fd in (out, err, status):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = started + limits.timeout
    next_size = time.monotonic() + _SIZE_POLL
    pid1: int | None = None
    killed = False
    while sel.get_map():
        now = time.monotonic()
        if not killed and now >= deadline:
            result.timed_out = killed = _kill(pid1)
        if not killed and now >= next_size:
            next_size = now + _SIZE_POLL
            if _over(layers, limits):
                result.over_size = killed = _kill(pid1)
        if killed and now > deadline + _REAP_WAIT:
            # PID 1 was sent SIGKILL and the namespace is still not empty: never judge or
            # commit what processes may still be changing.
            sel.close()
            raise ContainmentError("the sandbox's processes did not end after SIGKILL")
        wait = max(0.0, min(deadline, next_size) - now) if not killed else 1.0
        for key, _ in sel.select(timeout=wait):
            fd = key.fd
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(fd)
                continue
            if fd == status:
                said += data
                if pid1 is None:
                    found = _QUOTED_PID1.search(bytes(said))
                    pid1 = int(found.group(1)) if found else None
                continue
            buf = kept[fd]
            room = limits.max_output - len(buf)
            if room > 0:
                buf += data[:room]
            dropped[fd] += len(data) - max(0, min(room, len(data)))
    sel.close()
    lines = bytes(said).split(b"\n")
    code = next((ln[1:] for ln in lines if ln.startswith(b"X")), None)
    said_ = bytes(said)
    if said_.startswith(b"E"):  # the starter could not make the sandbox at all
        failure: bytes | None = said_[1:]
    else:
        failure = said_.partition(b"\nE")[2] if b"\nE" in said_ else None
    if failure is not None:
        raise ContainmentError(
            f"the sandbox could not be set up: {failure.decode(errors='replace')}"
        )
    if code is None:
        # Only a reaped PID 1 says X, and only once its namespace is empty: without it, some
        # process may still be writing. Fail closed: nothing of this run is kept.
        raise ContainmentError("the sandbox ended without saying its processes were gone")
    if not killed and _over(layers, limits):
        result.over_size = True
    result.exit_code = None if killed or code is None else int(code)
    result.stdout, result.stderr = bytes(kept[out]), bytes(kept[err])
    for fd, name in ((out, "standard output"), (err, "standard error")):
        if dropped[fd]:
            result.cut.append(
                f"{name} cut after {limits.max_output} bytes ({dropped[fd]} more dropped)"
            )
    if result.timed_out:
        result.cut.append(f"killed after {limits.timeout:g} s, with every process it started")
    if result.over_size:
        result.cut.append(
            f"stopped: it wrote more than {limits.max_upper_bytes} bytes or "
            f"{limits.max_files} entries into the protected roots; its writes are discarded"
        )


def _kill(pid: int | None) -> bool:
    """Kill PID 1 of the command's namespace: the kernel then kills every process there, and
    the starter reports ``X`` once they are all gone. True once it was sent."""
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


@functools.cache
def probe() -> str | None:
    """Why commands cannot be contained on this machine, or ``None`` when they can.

    Runs one contained ``true`` over a scratch overlay and checks that its write stayed in
    the upper layer. The answer is cached for the process.
    """
    import tempfile

    if not os.path.exists("/proc/self/ns/user"):
        return "this kernel has no user namespaces (Linux only, CONFIG_USER_NS)"
    try:
        with open("/proc/sys/user/max_user_namespaces") as fh:
            if fh.read().strip() == "0":
                return "user namespaces are disabled: set user.max_user_namespaces above 0"
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as fh:
            if os.geteuid() != 0 and fh.read().strip() == "0":
                return (
                    "unprivileged user namespaces are disabled: "
                    "sysctl kernel.unprivileged_userns_clone=1"
                )
    except OSError:
        pass
    with tempfile.TemporaryDirectory(prefix="peerguard-probe-") as tmp:
        root, upper, work = (os.path.join(tmp, n) for n in ("root", "upper", "work"))
        for d in (root, upper, work):
            os.mkdir(d)
        try:
            res = run_contained(
                "echo ok > probe", [Overlay(root, upper, work)], cwd=root, limits=Limits(timeout=20)
            )
        except ContainmentError as exc:
            return _explain(str(exc))
        if res.exit_code != 0:
            return f"a contained test command failed: {res.stderr.decode(errors='replace')}"
        if os.path.exists(os.path.join(root, "probe")) or not os.path.exists(
            os.path.join(upper, "probe")
        ):
            return "overlayfs did not keep a contained write out of the real tree"
    return None


def _explain(detail: str) -> str:
    if "overlay" in detail:
        return (
            f"overlayfs cannot be mounted in a user namespace here ({detail}); it needs "
            "Linux 5.11 or later with overlayfs (modprobe overlay)"
        )
    if "mount_setattr" in detail:
        return f"mount_setattr(2) is missing ({detail}): it needs Linux 5.12 or later"
    if "unshare" in detail:
        return (
            f"namespaces cannot be created ({detail}): allow user namespaces "
            "(user.max_user_namespaces, kernel.unprivileged_userns_clone, or a seccomp/"
            "AppArmor profile that permits unshare)"
        )
    return detail
