"""The process that starts contained commands: small, single-threaded, standard library only.

Started once per guard process (``python -S -I _zygote.py FD``), it reads requests from the
socket ``FD``: a JSON plan with, attached, the descriptors for the command's standard output,
standard error and a status pipe. For each it forks; the child builds the sandbox (see
:mod:`guard.contain.sandbox` for what it holds) and forks again: PID 1 of the new PID namespace
runs ``bash``, and the child waits for it and writes its status. Forking this small process
costs a fraction of forking the guard's, and nothing here can hold a lock another thread took.

A zygote started with ``offline`` first enters a network namespace with nothing in it, which
every command it starts shares; the one for calls given the network does not.

Status pipe, one line each: ``P<pid>`` (this child), ``Q<pid>`` (PID 1 of the command's
namespace: killing it kills every process there), then ``X<code>`` (bash's exit status, 128+N for
signal N), written only once PID 1 is reaped, which the kernel allows only after every other
process of the namespace is gone; or ``E<message>`` (the sandbox could not be built; nothing
ran).

This file must not import :mod:`guard`: it runs without it, and is kept small so that it
starts fast and forks cheaply.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys
from typing import Any

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


def build(plan: dict[str, Any]) -> None:
    """Enter the namespaces and build the command's view of the filesystem (see sandbox)."""
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.geteuid(), os.getegid()
    check(LIBC.unshare(flags), "unshare")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 %d 1" % uid)
    write_file("/proc/self/gid_map", b"0 %d 1" % gid)
    mount(b"none", b"/", None, MS_REC | MS_PRIVATE, "make / private")
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
    for point in (b"/tmp", b"/dev/shm", *(p for p, _o in overlays)):
        setattr_(point, 0, MOUNT_ATTR_RDONLY, False)
    for fd in held:
        os.close(fd)


def lock() -> None:
    """In PID 1: a /proc of its own, then a user and mount namespace of its own, which locks
    every mount made so far (no unmounting an overlay, no making a mount writable)."""
    check(LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
    mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc")
    check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock)")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 0 1")
    write_file("/proc/self/gid_map", b"0 0 1")


def child(plan: dict[str, Any], out: int, err: int, status: int) -> None:
    """The forked child: build, fork PID 1, report its status. Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.write(status, b"P%d\n" % os.getpid())
    try:
        build(plan)
        os.chdir(str(plan["cwd"]))
    except BaseException as exc:
        os.write(status, b"E" + f"{type(exc).__name__}: {exc}".encode(errors="replace")[:4000])
        os._exit(126)
    pid = os.fork()
    if pid == 0:
        try:
            lock()
            # Python ignores SIGPIPE and SIGXFSZ; a shell expects them fatal (yes | head).
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.chdir(str(plan["cwd"]))
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
    os.write(status, b"Q%d\n" % pid)  # PID 1: what the guard kills at a limit
    os.close(out)
    os.close(err)
    while True:
        try:
            _, code = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFEXITED(code):
        result = os.WEXITSTATUS(code)
    else:
        result = 128 + os.WTERMSIG(code) if os.WIFSIGNALED(code) else 125
    os.write(status, b"X%d\n" % result)
    os._exit(0)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    parts = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    sock.settimeout(5.0)
    while True:
        try:
            head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, MAX_FDS)
        except TimeoutError:
            if os.getppid() != parent:
                return  # the guard is gone (another process may still hold its socket)
            continue
        try:
            if len(head) < HEADER.size:
                head += recv_exact(sock, HEADER.size - len(head))
            (size,) = HEADER.unpack(head)
            plan = json.loads(recv_exact(sock, size))
        except (EOFError, OSError, ValueError, struct.error):
            return
        if len(fds) != MAX_FDS:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                child(plan, *fds)
            finally:
                os._exit(125)
        for fd in fds:
            os.close(fd)


def offline() -> None:
    """Put this process, and so every command it starts, in a network namespace of its own
    with no interface up: no way out, not even to loopback. (Made once here rather than per
    command, where it costs about a millisecond.)"""
    uid, gid = os.geteuid(), os.getegid()
    check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare (network)")
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"0 %d 1" % uid)
    write_file("/proc/self/gid_map", b"0 %d 1" % gid)


if __name__ == "__main__":
    listener = socket.socket(fileno=int(sys.argv[1]))
    if sys.argv[2:] == ["offline"]:
        try:
            offline()
        except OSError:
            sys.exit(3)  # the guard reports it: containment is unavailable
    serve(listener)
