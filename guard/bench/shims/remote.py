"""``ssh``, ``scp``, ``rsync`` and ``sftp`` for the bench sandbox, done with local file copies.

The shim scripts beside this file run it as ``remote.py TOOL ARGS...``. A host is a folder
``$PEERGUARD_BENCH_ROOT/hosts/<name>/``: ``HOST:PATH`` is ``hosts/HOST/PATH`` (a leading ``/``
or ``~/`` means the host's folder itself), and ``ssh HOST CMD`` runs ``bash -c CMD`` in the
host's folder with ``HOME`` set to it, passing standard input and output through. An unknown
host fails with status 255 before anything is copied, and no path may lead out of the
sandbox: nothing here opens a network connection or runs the real tools.

This file uses the standard library only and never imports ``guard``, so that it runs under
any Python 3.11+ without the project's dependencies.
"""

from __future__ import annotations

import glob
import os
import posixpath
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

ROOT_ENV = "PEERGUARD_BENCH_ROOT"
#: The status ssh, scp, rsync and sftp give when the connection fails (here: unknown host).
CONNECT_FAILED = 255
_GLOB_CHARS = frozenset("*?[")


class ShimError(Exception):
    """A failure to report on standard error, with the exit status to end with."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Sandbox:
    """The sandbox: its root folder, whose ``hosts/`` sub-folders are the known hosts."""

    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Sandbox:
        """The sandbox named by ``$PEERGUARD_BENCH_ROOT``.

        Raises:
            ShimError: The variable is unset or does not name a folder (status 255).
        """
        raw = environ.get(ROOT_ENV, "")
        if not raw or not os.path.isdir(raw):
            raise ShimError(f"{ROOT_ENV} does not name the bench sandbox", CONNECT_FAILED)
        return cls(Path(os.path.realpath(raw)))

    def hosts(self) -> list[str]:
        """The known hosts' names."""
        folder = self.root / "hosts"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def host_dir(self, host: str, tool: str = "ssh") -> Path:
        """The folder of ``[user@]host``.

        Raises:
            ShimError: The host is unknown (status 255).
        """
        name = host.rsplit("@", 1)[-1]
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        if not name or name in (".", "..") or "/" in name or name not in self.hosts():
            raise ShimError(
                f"{tool}: Could not resolve hostname {name}: Name or service not known",
                CONNECT_FAILED,
            )
        return self.root / "hosts" / name

    def inside(self, path: Path) -> Path:
        """``path`` itself, after checking that it (symlinks resolved) stays in the sandbox.

        Raises:
            ShimError: It leads out of the sandbox.
        """
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            raise ShimError(f"{path}: outside the bench sandbox (nothing leaves it)")
        return path

    def local(self, raw: str, cwd: Path) -> Path:
        """A local operand, relative to ``cwd``, checked to stay in the sandbox."""
        if raw == "~" or raw.startswith("~/"):
            raw = os.environ.get("HOME", str(cwd)) + raw[1:]
        return self.inside(Path(os.path.normpath(cwd / raw)))

    def remote(self, host: str, raw: str, cwd: str = "/") -> Path:
        """``HOST:PATH`` as a path in the host's folder (``cwd`` is host-absolute, for sftp).

        The host's folder is its whole filesystem: ``/`` and ``~`` both mean it, and ``..``
        stops there as it does at a real root.
        """
        folder = self.host_dir(host)
        rel = raw
        if rel == "~" or rel.startswith("~/"):
            rel = "/" + rel[1:].lstrip("/")
        elif rel.startswith("~"):  # ~user/... is that user's home: the host's folder too
            rel = "/" + rel.partition("/")[2]
        absolute = posixpath.normpath(posixpath.join(cwd, rel) if rel else cwd)
        absolute = posixpath.normpath("/" + absolute.lstrip("/"))
        return self.inside(folder / absolute.lstrip("/"))


# ---------------------------------------------------------------- argument parsing


@dataclass
class Parsed:
    """Options (in order, with their values) and operands of one command line."""

    options: list[tuple[str, str | None]] = field(default_factory=list)
    operands: list[str] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        """Whether any of the options was given."""
        return any(name in names for name, _ in self.options)

    def values(self, *names: str) -> list[str]:
        """The values given to the options, in order."""
        return [v for name, v in self.options if name in names and v is not None]


def parse_args(
    tool: str,
    args: Sequence[str],
    flags: str,
    with_value: str,
    long_with_value: Iterable[str] = (),
    *,
    stop_at_operand: bool = False,
    status: int = 1,
) -> Parsed:
    """Parse short options (``-rp``, ``-P22``, ``-o X``), long ones and operands.

    Args:
        tool: The command's name, for messages.
        args: The arguments.
        flags: Short options without a value.
        with_value: Short options that take a value.
        long_with_value: Long options (without ``--``) that take a value; other long
            options are flags unless written ``--name=value``.
        stop_at_operand: Everything after the first operand is an operand (ssh's command).
        status: The exit status of a usage error.

    Raises:
        ShimError: An unknown option, or a missing value.
    """
    takes_value = set(long_with_value)
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            parsed.operands.extend(args[i + 1 :])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and name in takes_value:
                i += 1
                if i >= len(args):
                    raise ShimError(f"{tool}: option --{name} requires an argument", status)
                value = args[i]
            parsed.options.append((f"--{name}", value if eq or name in takes_value else None))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                char = arg[j]
                if char in with_value:
                    value = arg[j + 1 :]
                    if not value:
                        i += 1
                        if i >= len(args):
                            raise ShimError(
                                f"{tool}: option requires an argument -- {char}", status
                            )
                        value = args[i]
                    parsed.options.append((f"-{char}", value))
                    break
                if char not in flags:
                    raise ShimError(f"{tool}: unknown option -- {char}", status)
                parsed.options.append((f"-{char}", None))
                j += 1
        else:
            parsed.operands.append(arg)
            if stop_at_operand:
                parsed.operands.extend(args[i + 1 :])
                break
        i += 1
    return parsed


def split_operand(arg: str) -> tuple[str | None, str]:
    """``[user@]HOST:PATH`` (or ``scp://``/``rsync://``/``sftp://`` URLs) to ``(host, path)``.

    As scp decides: a colon before any slash makes the operand remote; a local path that
    contains such a colon must be written ``./name``.
    """
    for scheme in ("scp://", "sftp://", "rsync://", "ssh://"):
        if arg.startswith(scheme):
            rest = arg[len(scheme) :]
            authority, slash, path = rest.partition("/")
            host = authority.rsplit("@", 1)[-1]
            bracket = host.find("]")
            host = host[: bracket + 1] if host.startswith("[") else host.partition(":")[0]
            return host, slash + path if path else ""
    if arg.startswith("["):  # [host]:path
        close = arg.find("]")
        if close > 0 and arg[close + 1 : close + 2] == ":":
            return arg[: close + 1], arg[close + 2 :]
    colon_at = arg.find(":")
    slash_at = arg.find("/")
    if colon_at > 0 and (slash_at < 0 or colon_at < slash_at):
        return arg[:colon_at], arg[colon_at + 1 :]
    return None, arg


# ---------------------------------------------------------------- copying


def _same_or_inside(path: Path, folder: Path) -> bool:
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == base or base in real.parents


def copy_file(src: Path, dst: Path, *, preserve: bool) -> None:
    """Copy one file's bytes; ``preserve`` keeps its mode and times (``-p``)."""
    if dst.is_dir():
        raise ShimError(f"{dst}: Is a directory")
    if dst.exists() and os.path.samefile(src, dst):
        raise ShimError(f"{src} and {dst} are the same file")
    shutil.copyfile(src, dst)
    if preserve:
        shutil.copystat(src, dst)
    else:
        shutil.copymode(src, dst)


def copy_tree(
    src: Path,
    dst: Path,
    *,
    preserve: bool,
    on_file: Callable[[Path, Path], None] | None = None,
    depth: int = 0,
) -> None:
    """Copy a folder's content into ``dst`` (created if missing; existing files replaced)."""
    if depth > 64:
        raise ShimError(f"{src}: too many levels of folders")
    if depth == 0 and _same_or_inside(dst, src):
        raise ShimError(f"cannot copy {src} into itself")
    if dst.exists() and not dst.is_dir():
        raise ShimError(f"{dst}: Not a directory")
    dst.mkdir(exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir():
            copy_tree(entry, target, preserve=preserve, on_file=on_file, depth=depth + 1)
        elif entry.is_file():
            (on_file or (lambda s, d: copy_file(s, d, preserve=preserve)))(entry, target)
    if preserve:
        shutil.copystat(src, dst)


def _expand(path: Path, raw: str) -> list[Path]:
    """A remote operand after the remote shell's glob expansion (unmatched: as written)."""
    if path.exists() or not _GLOB_CHARS & set(raw):
        return [path]
    matches = sorted(Path(p) for p in glob.glob(str(path)))
    return matches or [path]


# ---------------------------------------------------------------- ssh


def ssh(sandbox: Sandbox, args: Sequence[str], cwd: Path) -> int:
    """``ssh [options] [user@]host [command...]``: run the command in the host's folder."""
    parsed = parse_args(
        "ssh",
        args,
        flags="46AaCfGgKkMNnqsTtVvXxYy",
        with_value="BbcDEeFIiJLlmOoPpQRSWw",
        stop_at_operand=True,
        status=CONNECT_FAILED,
    )
    if parsed.has("-V"):
        print("OpenSSH (peerguard bench shim)", file=sys.stderr)
        return 0
    if not parsed.operands:
        raise ShimError("usage: ssh [options] destination [command [argument ...]]", 255)
    destination, *words = parsed.operands
    # OpenSSH also reads options written right after the destination.
    while words and words[0].startswith("-") and words[0] != "-":
        more = parse_args("ssh", words, "46AaCfGgKkMNnqsTtVvXxYy", "BbcDEeFIiJLlmOoPpQRSWw",
                          stop_at_operand=True, status=CONNECT_FAILED)  # fmt: skip
        parsed.options.extend(more.options)
        words = more.operands
    host, _ = split_operand(destination) if "://" in destination else (destination, "")
    folder = sandbox.host_dir(host or destination)
    if parsed.has("-N", "-G"):
        return 0
    env = dict(os.environ)
    env.update({"HOME": str(folder), "PWD": str(folder)})
    # Without a command, ssh runs a shell that reads its commands from standard input
    # (this is how `ssh host <<EOF ... EOF` works).
    command = ["bash", "-c", " ".join(words)] if words else ["bash", "-s"]
    stdin = subprocess.DEVNULL if parsed.has("-n", "-f") else None
    done = subprocess.run(command, cwd=folder, env=env, stdin=stdin, check=False)
    return done.returncode if done.returncode >= 0 else 128 - done.returncode


# ---------------------------------------------------------------- scp


def _resolve(sandbox: Sandbox, operand: str, cwd: Path) -> tuple[str | None, Path]:
    host, path = split_operand(operand)
    if host is None:
        return None, sandbox.local(path, cwd)
    return host, sandbox.remote(host, path)


def scp(sandbox: Sandbox, args: Sequence[str], cwd: Path) -> int:
    """``scp [-r] [-p] [options] source... target``."""
    parsed = parse_args("scp", args, flags="346ABCOpqRrTv", with_value="cDFiJloPSX")
    if len(parsed.operands) < 2:
        raise ShimError(
            "usage: scp [-346ABCOpqRrTv] [-i identity_file] [-P port] source ... target"
        )
    recursive, preserve = parsed.has("-r"), parsed.has("-p")
    # Every host is checked before anything is copied: an unknown one copies nothing.
    resolved = [_resolve(sandbox, op, cwd) for op in parsed.operands]
    *sources, (_, target) = resolved
    expanded = [
        (raw, path)
        for raw, (host, first) in zip(parsed.operands, sources, strict=False)
        for path in (_expand(first, raw) if host else [first])
    ]
    status = 0
    if (len(expanded) > 1 or parsed.operands[-1].endswith("/")) and not target.is_dir():
        raise ShimError(f"scp: target '{parsed.operands[-1]}': Not a directory")
    for raw, src in expanded:
        try:
            if not src.exists():
                raise ShimError(f"scp: {raw}: No such file or directory")
            dest = target / src.name if target.is_dir() else target
            if not dest.parent.is_dir():
                raise ShimError(f"scp: {parsed.operands[-1]}: No such file or directory")
            if src.is_dir():
                if not recursive:
                    raise ShimError(f"scp: {raw}: not a regular file")
                copy_tree(src, dest, preserve=preserve)
            else:
                copy_file(src, dest, preserve=preserve)
        except ShimError as exc:
            print(exc, file=sys.stderr)
            status = 1
    return status


# ---------------------------------------------------------------- rsync


_RSYNC_LONG_VALUES = (
    "exclude", "include", "rsh", "rsync-path", "port", "timeout", "contimeout", "bwlimit",
    "chmod", "chown", "info", "debug", "out-format", "log-file", "log-file-format",
    "partial-dir", "temp-dir", "backup-dir", "suffix", "exclude-from", "include-from",
    "files-from", "filter", "password-file", "max-size", "min-size", "compare-dest",
    "copy-dest", "link-dest", "usermap", "groupmap", "iconv", "compress-level",
    "skip-compress", "modify-window", "block-size", "checksum-choice", "max-delete",
    "remote-option", "sockopts", "outbuf", "compress-choice", "stop-after", "stop-at",
)  # fmt: skip


@dataclass
class _Rsync:
    recursive: bool
    times: bool
    dry_run: bool
    verbose: bool
    remove_source: bool
    delete: bool
    update: bool
    ignore_existing: bool
    excludes: list[str]

    def excluded(self, name: str) -> bool:
        return any(fnmatch(name, pattern.rstrip("/")) for pattern in self.excludes)

    def copy(self, src: Path, dst: Path, shown: str) -> None:
        if self.ignore_existing and dst.exists():
            return
        if self.update and dst.is_file() and dst.stat().st_mtime > src.stat().st_mtime:
            return
        if self.verbose:
            print(shown)
        if self.dry_run:
            return
        copy_file(src, dst, preserve=self.times)
        if self.remove_source:
            src.unlink()

    def tree(self, src: Path, dst: Path, shown: str, depth: int = 0) -> None:
        if depth > 64:
            raise ShimError(f"rsync: {src}: too many levels of folders")
        if depth == 0 and _same_or_inside(dst, src):
            raise ShimError(f"rsync: cannot copy {src} into itself")
        if dst.exists() and not dst.is_dir():
            raise ShimError(f"rsync: {dst}: Not a directory")
        if self.verbose and shown:
            print(shown + "/")
        if not self.dry_run:
            dst.mkdir(exist_ok=True)
        names = sorted(e.name for e in src.iterdir() if not self.excluded(e.name))
        for name in names:
            entry = src / name
            label = f"{shown}/{name}" if shown else name
            if entry.is_dir():
                self.tree(entry, dst / name, label, depth + 1)
            elif entry.is_file():
                self.copy(entry, dst / name, label)
        if self.delete and dst.is_dir():
            for extra in sorted({p.name for p in dst.iterdir()} - set(names)):
                if self.excluded(extra):
                    continue
                if self.verbose:
                    print(f"deleting {extra}")
                if not self.dry_run:
                    gone = dst / extra
                    if gone.is_dir() and not gone.is_symlink():
                        shutil.rmtree(gone)
                    else:
                        gone.unlink()
        if self.times and not self.dry_run:
            shutil.copystat(src, dst)


def _list(paths: Iterable[Path], raw: str) -> None:
    for path in paths:
        entries = sorted(path.iterdir()) if path.is_dir() and raw.endswith("/") else [path]
        for entry in entries:
            info = entry.stat()
            when = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(info.st_mtime))
            print(f"{stat.filemode(info.st_mode)} {info.st_size:>14,} {when} {entry.name}")


def rsync(sandbox: Sandbox, args: Sequence[str], cwd: Path) -> int:
    """``rsync [options] source... destination`` (``-a``, trailing ``/``, ``--delete`` ...)."""
    parsed = parse_args(
        "rsync",
        args,
        flags="0468AaCcDdEFgHhIiJKkLlmnOoPpqRrSstUuvWXxyz",
        with_value="eBfTM@",
        long_with_value=_RSYNC_LONG_VALUES,
    )
    if not parsed.operands:
        raise ShimError("rsync: usage: rsync [OPTION]... SRC [SRC]... DEST")
    for op in parsed.operands:
        if split_operand(op)[1].startswith(":"):
            raise ShimError(f"rsync: {op}: rsync daemons are not reachable in the bench")
    resolved = [_resolve(sandbox, op, cwd) for op in parsed.operands]
    archive = parsed.has("-a", "--archive")
    options = _Rsync(
        recursive=archive or parsed.has("-r", "--recursive"),
        times=archive or parsed.has("-t", "--times"),
        dry_run=parsed.has("-n", "--dry-run"),
        verbose=parsed.has("-v", "--verbose"),
        remove_source=parsed.has("--remove-source-files"),
        delete=any(name.startswith("--delete") for name, _ in parsed.options),
        update=parsed.has("-u", "--update"),
        ignore_existing=parsed.has("--ignore-existing"),
        excludes=parsed.values("--exclude"),
    )
    if len(resolved) == 1 or parsed.has("--list-only"):
        host, path = resolved[0]
        _list(_expand(path, parsed.operands[0]) if host else [path], parsed.operands[0])
        return 0
    *sources, (dst_host, target) = resolved
    if dst_host is not None and any(host is not None for host, _ in sources):
        raise ShimError("The source and destination cannot both be remote.")
    expanded = [
        (raw, path)
        for raw, (host, first) in zip(parsed.operands, sources, strict=False)
        for path in (_expand(first, raw) if host else [first])
    ]
    as_folder = (
        len(expanded) > 1
        or parsed.operands[-1].endswith("/")
        or target.is_dir()
        or any(p.is_dir() and options.recursive for _, p in expanded)
    )
    if as_folder and not target.is_dir() and not options.dry_run:
        if not target.parent.is_dir() and not parsed.has("--mkpath"):
            raise ShimError(
                f'rsync: mkdir "{parsed.operands[-1]}" failed: No such file or directory'
            )
        target.mkdir(parents=True, exist_ok=True)
    status = 0
    for raw, src in expanded:
        try:
            if not src.exists():
                raise ShimError(f'rsync: link_stat "{raw}" failed: No such file or directory')
            if src.is_dir():
                if not options.recursive:
                    print(f"skipping directory {src.name}")
                    continue
                # A trailing slash copies the folder's content, not the folder itself.
                into_content = raw.endswith("/")
                dest = target if into_content else target / src.name
                options.tree(src, dest, "" if into_content else src.name)
            else:
                dest = target / src.name if as_folder else target
                options.copy(src, dest, src.name)
        except ShimError as exc:
            print(exc, file=sys.stderr)
            status = 23  # rsync's "partial transfer due to error"
    return status


# ---------------------------------------------------------------- sftp


@dataclass
class _Sftp:
    sandbox: Sandbox
    host: str
    remote_cwd: str
    local_cwd: Path
    recursive: bool
    preserve: bool

    def remote(self, raw: str) -> Path:
        return self.sandbox.remote(self.host, raw, self.remote_cwd)

    def local(self, raw: str) -> Path:
        return self.sandbox.local(raw, self.local_cwd)

    def run(self, words: list[str]) -> bool:
        """Run one command; False ends the session (``bye``)."""
        command, *args = words
        flags = {a for a in args if a.startswith("-") and len(a) > 1}
        args = [a for a in args if a not in flags]
        recursive = self.recursive or any("r" in f or "R" in f for f in flags)
        preserve = self.preserve or any("p" in f or "P" in f for f in flags)
        handler = getattr(self, f"do_{command}", None)
        if command in ("bye", "exit", "quit"):
            return False
        if handler is None:
            raise ShimError(f"Invalid command: {command}")
        handler(args, recursive, preserve)
        return True

    def _need(self, args: list[str], count: int, usage: str) -> None:
        if len(args) < count:
            raise ShimError(f"usage: {usage}")

    def _transfer(self, src: Path, dst: Path, recursive: bool, preserve: bool) -> None:
        if not src.exists():
            raise ShimError(f"{src.name}: No such file or directory")
        dest = dst / src.name if dst.is_dir() else dst
        if src.is_dir():
            if not recursive:
                raise ShimError(f"{src.name} is a directory (use -r)")
            copy_tree(src, dest, preserve=preserve)
        else:
            if not dest.parent.is_dir():
                raise ShimError(f"{dest.parent.name}: No such file or directory")
            copy_file(src, dest, preserve=preserve)

    def do_put(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 1, "put [-pr] local [remote]")
        sources = [self.local(p) for p in sorted(glob.glob(str(self.local(args[0]))))] or [
            self.local(args[0])
        ]
        dst = self.remote(args[1] if len(args) > 1 else ".")
        for src in sources:
            print(f"Uploading {src} to {dst}")
            self._transfer(src, dst, recursive, preserve)

    def do_get(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 1, "get [-pr] remote [local]")
        sources = _expand(self.remote(args[0]), args[0])
        dst = self.local(args[1] if len(args) > 1 else ".")
        for src in sources:
            print(f"Fetching {src.name} to {dst}")
            self._transfer(src, dst, recursive, preserve)

    def do_rm(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 1, "rm path")
        for target in _expand(self.remote(args[0]), args[0]):
            if not target.is_file() and not target.is_symlink():
                raise ShimError(f"Couldn't delete file: {args[0]}: No such file")
            print(f"Removing {target.name}")
            target.unlink()

    def do_rmdir(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 1, "rmdir path")
        try:
            self.remote(args[0]).rmdir()
        except OSError as exc:
            raise ShimError(f"Couldn't remove directory: {exc.strerror}") from exc

    def do_mkdir(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 1, "mkdir path")
        try:
            self.remote(args[0]).mkdir()
        except OSError as exc:
            raise ShimError(f"Couldn't create directory: {exc.strerror}") from exc

    def do_rename(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 2, "rename oldpath newpath")
        old, new = self.remote(args[0]), self.remote(args[1])
        if not old.exists() or new.exists():
            raise ShimError(f"Couldn't rename file {args[0]!r} to {args[1]!r}: Failure")
        old.rename(new)

    def do_cd(self, args: list[str], recursive: bool, preserve: bool) -> None:
        raw = args[0] if args else "/"
        target = self.remote(raw)
        if not target.is_dir():
            raise ShimError(f"Can't change directory: {raw!r} is not a directory")
        folder = self.sandbox.host_dir(self.host)
        self.remote_cwd = "/" + str(target.relative_to(folder)).removeprefix(".")

    def do_lcd(self, args: list[str], recursive: bool, preserve: bool) -> None:
        target = self.local(args[0] if args else str(self.local_cwd))
        if not target.is_dir():
            raise ShimError(f"Couldn't change local directory to {args[0] if args else ''!r}")
        self.local_cwd = target

    def do_pwd(self, args: list[str], recursive: bool, preserve: bool) -> None:
        print(f"Remote working directory: {posixpath.normpath(self.remote_cwd)}")

    def do_lpwd(self, args: list[str], recursive: bool, preserve: bool) -> None:
        print(f"Local working directory: {self.local_cwd}")

    def _ls(self, path: Path, raw: str) -> None:
        if not path.exists():
            raise ShimError(f"Can't ls: {raw!r} not found")
        names = sorted(p.name for p in path.iterdir()) if path.is_dir() else [path.name]
        for name in names:
            print(name)

    def do_ls(self, args: list[str], recursive: bool, preserve: bool) -> None:
        raw = args[0] if args else "."
        for path in _expand(self.remote(raw), raw):
            self._ls(path, raw)

    def do_lls(self, args: list[str], recursive: bool, preserve: bool) -> None:
        raw = args[0] if args else "."
        self._ls(self.local(raw), raw)

    def do_chmod(self, args: list[str], recursive: bool, preserve: bool) -> None:
        self._need(args, 2, "chmod mode path")
        try:
            self.remote(args[1]).chmod(int(args[0], 8))
        except (OSError, ValueError) as exc:
            raise ShimError(f"Couldn't setstat on {args[1]!r}: {exc}") from exc


def _sftp_lines(parsed: Parsed, cwd: Path) -> list[str]:
    batch = parsed.values("-b")
    if batch and batch[-1] != "-":
        try:
            return Path(os.path.normpath(cwd / batch[-1])).read_text().splitlines()
        except OSError as exc:
            raise ShimError(f"{batch[-1]}: {exc.strerror}") from exc
    return sys.stdin.read().splitlines()


def sftp(sandbox: Sandbox, args: Sequence[str], cwd: Path) -> int:
    """``sftp [-b batchfile] [options] [user@]host[:path]``: a batch of put/get/rm/...."""
    parsed = parse_args("sftp", args, flags="1246aCfNpqrv", with_value="bBcDFiJlopPRsS")
    if len(parsed.operands) != 1:
        raise ShimError("usage: sftp [-b batchfile] [options] destination")
    host, path = split_operand(parsed.operands[0])
    if host is None:
        host, path = parsed.operands[0], ""
    sandbox.host_dir(host, "sftp")
    session = _Sftp(
        sandbox=sandbox,
        host=host,
        remote_cwd="/",
        local_cwd=cwd,
        recursive=parsed.has("-r"),
        preserve=parsed.has("-p"),
    )
    if path:
        start = session.remote(path)
        if start.is_file():  # `sftp host:file` fetches the file into the current folder
            session.do_get([path], False, session.preserve)
            return 0
        session.do_cd([path], False, False)
    for line in _sftp_lines(parsed, cwd):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        ignore_errors = text.startswith("-")
        quiet = text.startswith("@")
        text = text.lstrip("-@").strip()
        if not quiet:
            print(f"sftp> {text}")
        try:
            if text.startswith("!"):
                subprocess.run(["bash", "-c", text[1:]], cwd=session.local_cwd, check=False)
                continue
            if not session.run(shlex.split(text)):
                break
        except (ShimError, OSError, ValueError) as exc:
            print(exc, file=sys.stderr)
            if not ignore_errors:
                return 1
    return 0


TOOLS: dict[str, Callable[[Sandbox, Sequence[str], Path], int]] = {
    "rsync": rsync,
    "scp": scp,
    "sftp": sftp,
    "ssh": ssh,
}


def main(argv: Sequence[str]) -> int:
    """Run ``TOOL ARGS...`` (the shim scripts call ``remote.py TOOL "$@"``).

    Returns:
        The exit status: the remote command's for ssh, 255 for an unknown host, 1 for
        other errors.
    """
    if not argv or argv[0] not in TOOLS:
        print(f"usage: remote.py {{{','.join(sorted(TOOLS))}}} ARGS...", file=sys.stderr)
        return 2
    tool, args = argv[0], argv[1:]
    try:
        sandbox = Sandbox.from_env(os.environ)
        return TOOLS[tool](sandbox, args, Path(os.getcwd()))
    except ShimError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    except OSError as exc:
        print(f"{tool}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
