"""The process that starts contained commands: small, single-threaded, standard library only.

Started once per guard process (``python -S -I _zygote.py FD``), it serves requests on the
socket ``FD``: a JSON plan with, attached, the descriptors for the command's standard output,
standard error and a status pipe. It keeps one *standby* child ready ahead of the next request:
the standby has entered the new namespaces and forked PID 1 of the new PID namespace. PID 1
takes the next request itself, tells the starter (which makes the next standby at once, while
this command runs), builds the sandbox (see :mod:`guard.contain.sandbox` for what it holds) and
runs ``bash``; the standby waits for it and writes its status. Two forks and the namespace
entries, most of a sandbox's set-up time, are so made before the request rather than after
it. Forking this small process costs a fraction of forking the guard's, and nothing here can
hold a lock another thread took.

A zygote started with ``offline`` first enters a network namespace with nothing in it. Two
commands running at once must share no abstract unix socket (over which one could hand the
other a descriptor of a file it wrote, to be written through after the guard judged and
committed that file): where the kernel has Landlock scopes (Linux 6.12), each command's PID 1
confines its abstract unix sockets and signals to its own processes; where it has not, each
offline standby enters a network namespace of its own, and the guard runs calls given the
network (which share the machine's) one at a time.

Status pipe, one line each: ``Q<pid>`` (PID 1 of the command's
namespace: killing it kills every process there), then ``X<code>`` (bash's exit status, 128+N for
signal N), written only once PID 1 is reaped, which the kernel allows only after every other
process of the namespace is gone; or ``E<message>`` (the sandbox could not be built; nothing
ran).

This file must not import :mod:`guard`: it runs without it, and is kept small so that it
starts fast and forks cheaply.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
from typing import Any, NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (a new-style syscall)
PR_SET_PDEATHSIG = 1
SYS_LANDLOCK_CREATE_RULESET = 444  # new-style syscalls: the same number on every architecture
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 0x1
LANDLOCK_SCOPE_SIGNAL = 0x2
# The machine-wide files of /proc: they check only that the writer is the machine's user 0, which
# a command of a guard running as root is (inside its own user namespace); read-only to it.
PROC_READONLY = (b"sys", b"sysrq-trigger", b"irq", b"bus", b"fs", b"mtrr", b"acpi", b"scsi",
                 b"driver")  # fmt: skip
DEVICES = ("null", "zero", "full", "random", "urandom")  # no tty: no keystrokes to inject
HEADER = struct.Struct("!I")
MAX_FDS = 3


class MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


class RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


def libc_() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = (
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    )
    libc.unshare.argtypes = (ctypes.c_int,)
    libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong)
    return libc


LIBC = libc_()


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def mount(src: bytes | None, point: bytes, fstype: bytes | None, flags: int, what: str,
          data: bytes | None = None) -> None:  # fmt: skip
    check(LIBC.mount(src, point, fstype, flags, data), what)


def setattr_(path: bytes, attr_set: int, attr_clr: int, recursive: bool) -> None:
    attr = MountAttr(attr_set, attr_clr, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    res = LIBC.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path, flags, ctypes.byref(attr),
                       ctypes.sizeof(attr))  # fmt: skip
    check(res, f"mount_setattr {path.decode(errors='replace')}")


def enter(own_network: bool) -> None:
    """Enter new user, mount, PID, IPC and UTS namespaces, and with ``own_network`` a network
    namespace (the next child forked is PID 1)."""
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if own_network:
        flags |= CLONE_NEWNET
    uid, gid = os.geteuid(), os.getegid()
    check(LIBC.unshare(flags), "unshare")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 %d 1" % uid)
    write_file("/proc/self/gid_map", b"0 %d 1" % gid)
    mount(b"none", b"/", None, MS_REC | MS_PRIVATE, "make / private")


def build(plan: dict[str, Any]) -> None:
    """Build the command's view of the filesystem in the namespaces entered (see sandbox)."""
    overlays = [(os.fsencode(p), o.encode()) for p, o in plan["overlays"]]
    held = []
    for point, options in overlays:
        mount(b"overlay", point, b"overlay", 0, "mount overlay", options)
        held.append(os.open(point, os.O_PATH | os.O_DIRECTORY))
    for path in plan["masks"]:
        # An empty, unwritable file over content the call was not allowed to send.
        mount(b"/dev/null", os.fsencode(path), None, MS_BIND, "mask")
    devices = [os.open(b"/dev/" + name.encode(), os.O_PATH) for name in DEVICES]
    mount(b"tmpfs", b"/dev", b"tmpfs", MS_NOSUID, "mount /dev", b"mode=755")
    # /tmp: the machine's /tmp as it is (programs and files there stay readable), with the
    # command's writes in a private layer that ends with it.
    os.mkdir(b"/dev/.tmp", 0o700)  # on /dev's tmpfs, which overlayfs keeps writable for it
    os.mkdir(b"/dev/.tmp/upper", 0o1777)
    os.mkdir(b"/dev/.tmp/work", 0o700)
    tmp_options = b"lowerdir=/tmp,upperdir=/dev/.tmp/upper,workdir=/dev/.tmp/work,userxattr"
    mount(b"overlay", b"/tmp", b"overlay", MS_NOSUID | MS_NODEV, "mount /tmp", tmp_options)
    for (point, _options), fd in zip(overlays, held, strict=True):
        if point == b"/tmp" or point.startswith(b"/tmp/"):
            # the new /tmp covered it: bind the root's overlay back where it was
            mount(b"/proc/self/fd/%d" % fd, point, None, MS_BIND | MS_REC, "bind overlay")
    for path in plan.get("hide", ()):
        # The guard's own folders (transactions, the journal): empty to the command.
        if os.path.isdir(path):
            mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, "hide", b"size=4k")
    for name, fd in zip(DEVICES, devices, strict=True):
        node = b"/dev/" + name.encode()
        os.close(os.open(node, os.O_CREAT | os.O_WRONLY, 0o666))
        mount(b"/proc/self/fd/%d" % fd, node, None, MS_BIND, "bind device")
        os.close(fd)
    os.symlink("/proc/self/fd", "/dev/fd")
    for n, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{n}", "/dev/" + name)
    os.mkdir("/dev/shm", 0o1777)  # noqa: S108 - the sandbox's own /dev, a fresh tmpfs
    mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, "mount /dev/shm")
    for run in (b"/run", b"/var/run"):
        if os.path.isdir(run) and not os.path.islink(run):
            mount(b"tmpfs", run, b"tmpfs", MS_NOSUID | MS_NODEV, "mask /run")
    setattr_(b"/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, True)
    # /proc (mounted by PID 1 before) stays writable as a plain /proc is; the machine-wide
    # folders bound over it stay read-only.
    for point in (b"/tmp", b"/dev/shm", b"/proc", *(p for p, _o in overlays)):
        setattr_(point, 0, MOUNT_ATTR_RDONLY, False)
    for fd in held:
        os.close(fd)


def proc() -> None:
    """In PID 1, before its request comes (nothing here depends on it): a /proc of its own,
    that shows only the command's processes, with its machine-wide files read-only."""
    mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc")
    for name in PROC_READONLY:
        # Locked read-only below like every mount; a /proc with locked mounts over its folders
        # is also not one the kernel lets a nested namespace mount afresh.
        path = b"/proc/" + name
        if LIBC.mount(path, path, None, MS_BIND, None) != 0:
            if ctypes.get_errno() == errno.ENOENT:
                continue  # not in this kernel
            check(-1, f"bind /proc/{name.decode()}")
        setattr_(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, False)


def lock() -> None:
    """In PID 1: a user and mount namespace of its own, which locks every mount made so far
    (no unmounting an overlay, no making a mount writable)."""
    check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock)")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 0 1")
    write_file("/proc/self/gid_map", b"0 0 1")


def scoped() -> bool:
    """Whether the kernel has Landlock scopes (ABI 6, Linux 6.12), unless the environment
    says ``PEERGUARD_SANDBOX_SCOPES=off`` (to use, and test, what stands in for them)."""
    if os.environ.get("PEERGUARD_SANDBOX_SCOPES") == "off":
        return False
    return bool(LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1) >= 6)  # its ABI version


def scope() -> None:
    """Where the kernel has Landlock scopes, confine this process and all it starts: no
    abstract unix socket made outside them can be reached, no process outside signalled."""
    if not scoped():
        return  # no Landlock, or one without scopes (the guard knows: see sandbox._scoped)
    attr = RulesetAttr(0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)
    fd = LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    check(0 if fd >= 0 else -1, "landlock_create_ruleset")
    try:
        check(LIBC.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    finally:
        os.close(fd)


def warm() -> None:
    """Touch, ahead of the request, what PID 1 will need: a forked child pays for each page
    it first writes, and a request should not wait for that."""
    json.loads(json.dumps({"argv": ["bash"], "env": dict(os.environ), "overlays": [["/", "x"]]}))
    LIBC.mount(None, b"/nonexistent/peerguard", None, 0, None)  # fails; warms the call path


def init(
    sock: socket.socket, taken: int, chan: socket.socket, request: tuple[bytes, list[int]] | None
) -> NoReturn:
    """PID 1 of the command's namespace, forked ahead of its request: take one request from
    ``sock`` (saying so on ``taken``), unless its standby took it already, build the sandbox,
    lock it and run ``bash``. Its standby learns the status descriptor through ``chan``, and
    any failure to build. Never returns."""
    try:
        # Armed before anything else; a standby that died even earlier closed its end of
        # ``chan``, and the read below ends at once.
        check(LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
        me = int(recv_exact(chan, 12))  # this process's number outside its namespace
        try:
            proc()
            unready: BaseException | None = None
        except OSError as exc:
            unready = exc  # said to the request, below
        if request is None:
            warm()
            request = take(sock, taken)
            if request is None:
                os.write(taken, b"q")  # the guard is gone, or spoke nonsense: the starter ends
                os._exit(0)
            os.write(taken, b"t")
    except BaseException:  # nothing to report to: the standby sees the exit
        os._exit(125)
    sock.close()
    payload, (out, err, status) = request
    try:
        os.write(status, b"Q%d\n" % me)  # PID 1: what the guard kills at a limit
        socket.send_fds(chan, [b"S"], [status])  # for the standby, to say the exit status
        if unready is not None:
            raise unready
        plan = json.loads(payload)
        build(plan)
        lock()
        scope()
        # Python ignores SIGPIPE and SIGXFSZ; a shell expects them fatal (yes | head).
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(str(plan["cwd"]))
    except BaseException as exc:
        # Told to the standby, which says it instead of an exit status: nothing ran.
        chan.sendall(b"E" + f"{type(exc).__name__}: {exc}".encode(errors="replace")[:4000])
        os._exit(126)
    try:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.closerange(3, 65536)
        env = {str(k): str(v) for k, v in plan["env"].items()}
        argv = [str(a) for a in plan["argv"]]
        os.execvpe(argv[0], argv, env)  # noqa: S606 - bash, as the caller asked
    except BaseException as exc:
        os.write(2, f"peerguard sandbox: {type(exc).__name__}: {exc}\n".encode())
    os._exit(127)


def standby(sock: socket.socket, taken: int, own_network: bool) -> NoReturn:
    """A child of the starter made ahead of its request: it enters the namespaces and forks
    PID 1 (the slow part, a few hundred microseconds each, is then off the call's path),
    which takes the next request itself. The standby waits for PID 1 and says its exit status
    (``X``) or why the sandbox could not be built (``E``); if it could not even enter the
    namespaces, it takes the request itself, tries once more, and if that fails too, says
    why. Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request = None
    try:
        chan, theirs, pid = begin(own_network)
    except BaseException as exc:
        # Made ahead of its request, what failed may have passed when the request comes (a
        # command that held every namespace allowed has ended): try again for it, once.
        request = take(sock, taken)
        if request is None:
            os.write(taken, b"q")
            os._exit(0)
        os.write(taken, b"t")
        status = request[1][2]
        try:
            if os.readlink("/proc/self/ns/pid_for_children") != os.readlink("/proc/self/ns/pid"):
                raise exc  # entered them, then failed: no second try from in there
            chan, theirs, pid = begin(own_network)
        except BaseException as again:  # said to the request: nothing ran
            os.write(
                status, b"E" + f"{type(again).__name__}: {again}".encode(errors="replace")[:4000]
            )
            os._exit(126)
    if pid == 0:
        chan.close()
        init(sock, taken, theirs, request)
    theirs.close()
    sock.close()
    for fd in request[1] if request is not None else ():
        os.close(fd)  # PID 1 holds them, and hands the status descriptor back
    chan.sendall(b"%12d" % pid)
    while True:
        try:
            _, code = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    try:
        said, fds, _flags, _addr = socket.recv_fds(chan, 4096, 1)
        if said.startswith(b"S") and len(fds) == 1:
            said = said[1:]
            if not said:
                chan.setblocking(False)
                said = chan.recv(4096)
    except OSError:
        fds, said = [], b""
    if not fds:
        os._exit(0)  # PID 1 ended before it took a request (the guard is gone)
    status = fds[0]
    if said.startswith(b"E"):
        os.write(status, said)
        os._exit(126)
    if os.WIFEXITED(code):
        result = os.WEXITSTATUS(code)
    else:
        result = 128 + os.WTERMSIG(code) if os.WIFSIGNALED(code) else 125
    os.write(status, b"X%d\n" % result)
    os._exit(0)


def begin(own_network: bool) -> tuple[socket.socket, socket.socket, int]:
    """Enter the namespaces and fork PID 1: the standby's end of the channel to it, PID 1's,
    and what ``fork`` returned."""
    enter(own_network)
    chan, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return chan, theirs, os.fork()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    parts = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def take(sock: socket.socket, taken: int | None) -> tuple[bytes, list[int]] | None:
    """One request from the guard: its plan (JSON bytes) and its three descriptors; ``None``
    when the guard or the starter is gone, or the request cannot be read. ``taken`` is the
    pipe to the starter (``None`` in the starter itself)."""
    sock.settimeout(5.0)
    starter = select.poll()
    if taken is not None:
        starter.register(taken, select.POLLOUT)
    parent = os.getppid()
    while True:
        try:
            head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, MAX_FDS)
            break
        except TimeoutError:
            if any(ev & select.POLLERR for _fd, ev in starter.poll(0)):
                return None  # the starter is gone: no one reads ``taken`` any more
            if taken is None and os.getppid() != parent:
                return None  # the guard is gone
            continue
        except OSError:
            return None
    try:
        if len(head) < HEADER.size:
            head += recv_exact(sock, HEADER.size - len(head))
        (size,) = HEADER.unpack(head)
        payload = recv_exact(sock, size)
    except (EOFError, OSError, ValueError, struct.error):
        for fd in fds:
            os.close(fd)
        return None
    if len(fds) != MAX_FDS:
        for fd in fds:
            os.close(fd)
        return None
    return payload, fds


def serve(sock: socket.socket, offline: bool) -> None:
    """Keep one standby child ready; when it takes a request, make the next. An ``offline``
    starter's standbys each enter a network namespace of their own."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    while True:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                standby(sock, w, offline)
            finally:
                os._exit(125)
        os.close(w)
        if not wait(r, parent, pid):
            return
        said = os.read(r, 1)
        os.close(r)
        if said != b"t":
            return  # the guard closed its socket, or sent what cannot be read
        # The next standby is made at once, while this command runs: on another processor
        # when there is one (made after the command, it was late for calls that follow
        # closely).


def wait(r: int, parent: int, standby: int) -> bool:
    """Wait until ``r`` can be read; False when the guard is gone (its process ended, though
    another may still hold its socket), after killing ``standby``."""
    while True:
        ready, _, _ = select.select([r], [], [], 5.0)
        if ready:
            return True
        if os.getppid() != parent:
            os.kill(standby, signal.SIGKILL)
            return False


def offline() -> None:
    """Put this process, and so every command it starts, in a network namespace of its own
    with no interface up: no way out, not even to loopback. (Made once here rather than per
    command, where it costs about a millisecond.)"""
    uid, gid = os.geteuid(), os.getegid()
    check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare (network)")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 %d 1" % uid)
    write_file("/proc/self/gid_map", b"0 %d 1" % gid)


def refuse(sock: socket.socket, why: str) -> None:
    """Answer every request with why no sandbox can be made, until the guard is gone."""
    while (request := take(sock, None)) is not None:
        _payload, (out, err, status) = request
        os.write(status, b"E" + why.encode(errors="replace")[:4000])
        for fd in (out, err, status):
            os.close(fd)


if __name__ == "__main__":
    listener = socket.socket(fileno=int(sys.argv[1]))
    if sys.argv[2:] == ["offline"]:
        try:
            offline()
        except OSError as exc:
            refuse(listener, f"{type(exc).__name__}: {exc}")
            sys.exit(0)
    # Landlock scopes keep each command's abstract unix sockets to itself; without them, an
    # offline command gets a network namespace of its own for that (about 0.3 ms a call).
    serve(listener, sys.argv[2:] == ["offline"] and not scoped())
