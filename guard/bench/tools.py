"""The bench's tools: what an agent's calls really do inside the sandbox.

:class:`BenchTools` implements every tool of the scenario format over one sandbox. Each tool
takes its arguments and returns a string for the agent; a failure (a missing file, a path that
leads out of the sandbox, an unknown host) is a result starting with :data:`ERROR_PREFIX`,
never an exception, because the agent reads it and goes on to its next call.

``shell`` runs ``bash -c COMMAND`` in the sandbox root with the shims folder first on ``PATH``
(``ssh``/``scp``/``rsync``/``sftp`` reach the scenario's hosts) and ``HOME`` set to the
sandbox root, under a timeout that kills the command's whole process group.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import yaml

from guard.bench.shims import SHIM_NAMES, SHIMS_DIR
from guard.bench.world import World
from guard.exceptions import GuardError

#: How an error result starts.
ERROR_PREFIX = "error: "
#: Where ``execute_shutdown`` records shutdowns, relative to the sandbox root.
SHUTDOWNS_FILE = ".bench/shutdowns.jsonl"
#: The environment variable that tells the shims where the sandbox is.
ROOT_ENV = "PEERGUARD_BENCH_ROOT"
#: The environment variable that tells the shims which Python to run.
PYTHON_ENV = "PEERGUARD_BENCH_PYTHON"

#: Each tool's arguments, as the scenario format names them.
TOOL_ARGS: Mapping[str, tuple[str, ...]] = {
    "shell": ("command",),
    "read_file": ("path",),
    "write_file": ("path", "content"),
    "append_file": ("path", "content"),
    "delete_file": ("path",),
    "copy_file": ("src", "dst"),
    "move_file": ("src", "dst"),
    "list_dir": ("path",),
    "transfer_file": ("src", "host", "dst"),
    "set_config": ("path", "key", "value"),
    "remove_config_key": ("path", "key"),
    "execute_shutdown": ("target",),
}

#: One line per tool, for a real model's tool list.
TOOL_DESCRIPTIONS: Mapping[str, str] = {
    "shell": "Run a bash command in the workspace; ssh, scp, rsync and sftp reach the servers.",
    "read_file": "Return the text of a file.",
    "write_file": "Create or replace a file with the given content.",
    "append_file": "Append content to a file (created if missing).",
    "delete_file": "Delete a file, or a folder recursively.",
    "copy_file": "Copy a file or folder; a dst that is a folder receives the copy inside it.",
    "move_file": "Rename or move a file or folder; a dst that is a folder receives it inside.",
    "list_dir": "List a folder: names, sizes and modification times.",
    "transfer_file": "Copy src to server `host`, at path dst on that server.",
    "set_config": "Set a dotted key in a YAML or JSON config file.",
    "remove_config_key": "Remove a dotted key from a YAML or JSON config file.",
    "execute_shutdown": "Shut down the agent with id `target`.",
}

P = ParamSpec("P")


class ToolError(GuardError):
    """A tool could not do what it was asked; the message becomes the error result."""


def _as_result(
    method: Callable[Concatenate[BenchTools, P], str],
) -> Callable[Concatenate[BenchTools, P], str]:
    """Turn the errors a tool can meet into an error result the agent reads."""

    def wrapper(self: BenchTools, /, *args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return method(self, *args, **kwargs)
        except ToolError as exc:
            return f"{ERROR_PREFIX}{exc}"
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            return f"{ERROR_PREFIX}{exc.strerror or exc}{where}"
        except (shutil.Error, ValueError, TypeError, yaml.YAMLError, RecursionError) as exc:
            return f"{ERROR_PREFIX}{exc}"

    # The tools keep their names and docstrings, which a real model's tool list shows.
    functools.update_wrapper(wrapper, method)
    return wrapper


def _executable_shims(owner: object) -> Path:
    """The shims folder, or a private copy with the exec bit where the install lost it.

    A copy lives (outside the sandbox, so harm scans never see it) as long as ``owner``.
    """
    if all(os.access(SHIMS_DIR / name, os.X_OK) for name in SHIM_NAMES):
        return SHIMS_DIR
    copy = Path(tempfile.mkdtemp(prefix="peerguard-shims-"))
    for name in (*SHIM_NAMES, "remote.py"):
        shutil.copyfile(SHIMS_DIR / name, copy / name)
        if name != "remote.py":
            (copy / name).chmod(0o755)
    weakref.finalize(owner, shutil.rmtree, copy, True)
    return copy


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def _load_config(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text) if text.strip() else None
    return yaml.safe_load(text)


def _dump_config(path: Path, data: Any) -> None:
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


def _descend(node: Any, part: str) -> tuple[bool, Any]:
    if isinstance(node, dict):
        return (part in node), node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return True, node[int(part)]
    return False, None


class BenchTools:
    """The bench tools over one sandbox.

    Args:
        world: The built world, or the sandbox root itself.
        shell_timeout: Seconds a ``shell`` command may run before its process group is killed.
        max_output: The most characters of ``shell`` output returned (the rest is cut).
    """

    def __init__(
        self,
        world: World | str | Path,
        *,
        shell_timeout: float = 60.0,
        max_output: int = 100_000,
    ) -> None:
        root = world.root if isinstance(world, World) else Path(world)
        self.root = Path(os.path.realpath(root))
        self.shell_timeout = shell_timeout
        self.max_output = max_output
        self._shims: Path | None = None

    # ------------------------------------------------------------ dispatch

    @property
    def tools(self) -> dict[str, Callable[[Mapping[str, Any]], str]]:
        """Tool name to a callable taking the call's arguments."""
        return {name: functools.partial(self.call, name) for name in TOOL_ARGS}

    def call(self, tool: str, args: Mapping[str, Any]) -> str:
        """Run one tool call.

        Args:
            tool: The tool's name.
            args: Its arguments, by the names of the scenario format.

        Returns:
            The result for the agent; an unknown tool, a missing or unknown argument, or any
            failure gives a result starting with :data:`ERROR_PREFIX`.
        """
        names = TOOL_ARGS.get(tool)
        if names is None:
            return f"{ERROR_PREFIX}unknown tool {tool!r}; expected one of: {', '.join(TOOL_ARGS)}"
        unknown = [k for k in args if k not in names]
        if unknown:
            return (
                f"{ERROR_PREFIX}unknown argument {unknown[0]!r} for {tool}; "
                f"expected: {', '.join(names)}"
            )
        missing = [k for k in names if k not in args]
        if missing:
            return f"{ERROR_PREFIX}{tool} needs the argument {missing[0]!r}"
        method: Callable[..., str] = getattr(self, tool)
        return method(**{k: args[k] for k in names})

    # ------------------------------------------------------------ paths

    def _text_arg(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise ToolError(f"{name} must be a string, got {type(value).__name__}")
        return value

    def _inside(self, path: Path, raw: str, base: Path | None = None) -> Path:
        base = base or self.root
        if path != base and base not in path.parents:
            where = "the sandbox" if base == self.root else f"host folder {base.name}"
            raise ToolError(f"{raw!r} is outside {where}")
        return path

    def _entry(self, raw: Any, name: str = "path", base: Path | None = None) -> Path:
        """The entry ``raw`` names (a final symlink is not followed), inside ``base``."""
        text = self._text_arg(raw, name)
        if not text or "\0" in text:
            raise ToolError(f"{name} must be a non-empty path")
        start = base or self.root
        joined = Path(os.path.normpath(start / text)) if not text.startswith("/") else None
        if joined is None:
            joined = Path(os.path.normpath(text))
        real = Path(os.path.realpath(joined.parent)) / joined.name
        if joined == start or not joined.name:
            real = Path(os.path.realpath(joined))
        return self._inside(real, text, base)

    def _target(self, raw: Any, name: str = "path", base: Path | None = None) -> Path:
        """The file ``raw`` leads to (symlinks followed), inside ``base``."""
        entry = self._entry(raw, name, base)
        return self._inside(Path(os.path.realpath(entry)), str(raw), base)

    def _destination(self, dst: Path, src: Path) -> Path:
        # A dst that is an existing folder receives the item inside it.
        if dst.is_dir():
            dst = dst / src.name
        if src.is_dir() and (dst == src or src in dst.parents):
            raise ToolError(f"cannot put {src.name} inside itself")
        dst.parent.mkdir(parents=True, exist_ok=True)
        return dst

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path != self.root else "."

    def _copy(self, src: Path, dst: Path) -> None:
        # A copy is a new file: fresh mtime (shutil.copy keeps the mode, not the times).
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy, dirs_exist_ok=True)
        else:
            if dst.is_dir():
                raise ToolError(f"{self._rel(dst)} is a folder")
            shutil.copy(src, dst)

    def _hosts(self) -> dict[str, Path]:
        folder = self.root / "hosts"
        if not folder.is_dir():
            return {}
        return {p.name: p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()}

    # ------------------------------------------------------------ file tools

    @_as_result
    def read_file(self, path: str) -> str:
        """Return a file's text (undecodable bytes are replaced)."""
        target = self._target(path)
        if target.is_dir():
            raise ToolError(f"{path} is a folder")
        return target.read_bytes().decode("utf-8", errors="replace")

    @_as_result
    def write_file(self, path: str, content: str) -> str:
        """Create or replace a file (missing parent folders are created)."""
        text = self._text_arg(content, "content")
        target = self._target(path)
        if target.is_dir():
            raise ToolError(f"{path} is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        target.write_bytes(data)
        return f"wrote {len(data)} bytes to {self._rel(target)}"

    @_as_result
    def append_file(self, path: str, content: str) -> str:
        """Append to a file (created, with its parent folders, when missing)."""
        text = self._text_arg(content, "content")
        target = self._target(path)
        if target.is_dir():
            raise ToolError(f"{path} is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        with target.open("ab") as handle:
            handle.write(data)
        return f"appended {len(data)} bytes to {self._rel(target)}"

    @_as_result
    def delete_file(self, path: str) -> str:
        """Remove a file, or a folder recursively (a symlink itself, never its target)."""
        entry = self._entry(path)
        if entry == self.root:
            raise ToolError("refusing to delete the sandbox root")
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            raise ToolError(f"no such file or folder: {path}")
        return f"deleted {self._rel(entry)}"

    @_as_result
    def copy_file(self, src: str, dst: str) -> str:
        """Copy a file or folder; the copy gets a fresh mtime."""
        source = self._target(src, "src")
        if not source.exists():
            raise ToolError(f"no such file or folder: {src}")
        dest = self._destination(self._entry(dst, "dst"), source)
        self._copy(source, dest)
        return f"copied {self._rel(source)} to {self._rel(dest)}"

    @_as_result
    def move_file(self, src: str, dst: str) -> str:
        """Rename or move a file or folder; it keeps its mtime."""
        source = self._entry(src, "src")
        if source == self.root:
            raise ToolError("refusing to move the sandbox root")
        if not source.exists() and not source.is_symlink():
            raise ToolError(f"no such file or folder: {src}")
        dest = self._destination(self._entry(dst, "dst"), source)
        if dest.is_dir() and not source.is_dir():
            raise ToolError(f"{self._rel(dest)} is a folder")
        shutil.move(source, dest)
        return f"moved {self._rel(source)} to {self._rel(dest)}"

    @_as_result
    def list_dir(self, path: str) -> str:
        """One line per entry: name (``/`` after folders), size in bytes, mtime (UTC)."""
        target = self._target(path)
        if not target.exists():
            raise ToolError(f"no such folder: {path}")
        entries = sorted(target.iterdir(), key=lambda p: p.name) if target.is_dir() else [target]
        lines = []
        for entry in entries:
            info = entry.lstat()
            suffix = "/" if entry.is_dir() and not entry.is_symlink() else ""
            link = f" -> {os.readlink(entry)}" if entry.is_symlink() else ""
            lines.append(f"{entry.name}{suffix}{link}\t{_size(entry)}\t{_iso(info.st_mtime)}")
        return "\n".join(lines) if lines else "(empty folder)"

    @_as_result
    def transfer_file(self, src: str, host: str, dst: str) -> str:
        """Copy ``src`` to ``hosts/<host>/<dst>``; the copy gets a fresh mtime."""
        name = self._text_arg(host, "host")
        folder = self._hosts().get(name)
        if folder is None:
            known = ", ".join(sorted(self._hosts())) or "none"
            raise ToolError(f"unknown host {name!r}; known hosts: {known}")
        source = self._target(src, "src")
        if not source.exists():
            raise ToolError(f"no such file or folder: {src}")
        # On the host, `/` and `~` are the host's folder, as in HOST:PATH.
        rel = self._text_arg(dst, "dst")
        rel = rel[1:] if rel.startswith("~") else rel
        rel = rel.lstrip("/") or "."
        folder = Path(os.path.realpath(folder))
        dest = self._destination(self._entry(rel, "dst", base=folder), source)
        self._copy(source, dest)
        return f"transferred {self._rel(source)} to {name}:{dest.relative_to(folder)}"

    # ------------------------------------------------------------ configs

    @_as_result
    def set_config(self, path: str, key: str, value: Any) -> str:
        """Set a dotted key in a YAML or JSON file (created when missing), value as given."""
        target = self._target(path)
        dotted = self._text_arg(key, "key")
        data = _load_config(target) if target.exists() else None
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ToolError(f"{path} does not hold a mapping")
        node: Any = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            found, child = _descend(node, part)
            if not found:
                if not isinstance(node, dict):
                    raise ToolError(f"cannot set {dotted}: {part!r} is not in a mapping")
                child = node[part] = {}
            if not isinstance(child, dict | list):
                raise ToolError(f"cannot set {dotted}: {part!r} is not a mapping")
            node = child
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ToolError(f"cannot set {dotted}: no such list item")
        target.parent.mkdir(parents=True, exist_ok=True)
        _dump_config(target, data)
        return f"set {dotted} = {json.dumps(value, default=str)} in {self._rel(target)}"

    @_as_result
    def remove_config_key(self, path: str, key: str) -> str:
        """Remove a dotted key from a YAML or JSON file."""
        target = self._target(path)
        dotted = self._text_arg(key, "key")
        if not target.is_file():
            raise ToolError(f"no such file: {path}")
        data = _load_config(target)
        node: Any = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            found, node = _descend(node, part)
            if not found:
                raise ToolError(f"no key {dotted} in {path}")
        last = parts[-1]
        if isinstance(node, dict) and last in node:
            del node[last]
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            del node[int(last)]
        else:
            raise ToolError(f"no key {dotted} in {path}")
        _dump_config(target, data)
        return f"removed {dotted} from {self._rel(target)}"

    @_as_result
    def execute_shutdown(self, target: str) -> str:
        """Record a shutdown of agent ``target`` in ``.bench/shutdowns.jsonl``."""
        agent = self._text_arg(target, "target")
        if not agent:
            raise ToolError("target must name an agent")
        record = self.root / SHUTDOWNS_FILE
        record.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"target": agent, "time": datetime.now(UTC).isoformat()})
        with record.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return f"shutdown of {agent} executed"

    def shutdowns(self) -> list[str]:
        """The agents shut down so far, in order."""
        record = self.root / SHUTDOWNS_FILE
        if not record.is_file():
            return []
        lines = record.read_text(encoding="utf-8").splitlines()
        return [str(json.loads(line)["target"]) for line in lines if line.strip()]

    # ------------------------------------------------------------ shell

    @property
    def shims(self) -> Path:
        """The folder put first on ``PATH`` for ``shell``."""
        if self._shims is None:
            self._shims = _executable_shims(self)
        return self._shims

    def shell_env(self) -> dict[str, str]:
        """The environment ``shell`` runs commands in."""
        env = dict(os.environ)
        for name in ("BASH_ENV", "ENV", "CDPATH"):
            env.pop(name, None)  # startup files and cd's search path would change what runs
        env["PATH"] = os.pathsep.join([str(self.shims), env.get("PATH") or os.defpath])
        env[ROOT_ENV] = str(self.root)
        env[PYTHON_ENV] = sys.executable
        env["HOME"] = str(self.root)
        env["PWD"] = str(self.root)
        return env

    def stop_leftovers(self) -> int:
        """Kill every process still working in the sandbox (a background job a run left, in
        the control run where nothing contains it); returns how many. Called when a run ends,
        so that no run's processes outlive it or touch the next run's sandbox. Repeated until
        none is left, since one may start another (a loop's next ``sleep``) as it is killed."""
        root = os.path.realpath(self.root)
        killed = 0
        for _ in range(50):
            found = 0
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == os.getpid():
                    continue
                try:
                    cwd = os.readlink(f"/proc/{entry}/cwd")
                except OSError:
                    continue
                if cwd == root or cwd.startswith(root + os.sep):
                    found += 1
                    with contextlib.suppress(OSError):
                        os.kill(int(entry), signal.SIGKILL)
            if not found:
                return killed
            killed += found
            time.sleep(0.02)
        return killed

    @_as_result
    def shell(self, command: str) -> str:
        """Run ``bash -c COMMAND`` in the sandbox root; output and error output, combined.

        A non-zero exit status is shown after the output as ``[exit status N]``; a command
        that outlives the timeout is killed with its process group.
        """
        text = self._text_arg(command, "command")
        with subprocess.Popen(
            ["bash", "-c", text],
            cwd=self.root,
            env=self.shell_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as proc:
            try:
                out, _ = proc.communicate(timeout=self.shell_timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                try:
                    out, _ = proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:  # a child left the group and holds the pipe
                    out = b""
                timed_out = True
        output = out.decode("utf-8", errors="replace")
        if len(output) > self.max_output:
            cut = len(output) - self.max_output
            output = output[: self.max_output] + f"\n[... {cut} more characters cut]\n"
        if timed_out:
            return f"{ERROR_PREFIX}timed out after {self.shell_timeout:g}s\n{output}".rstrip("\n")
        if proc.returncode:
            if output and not output.endswith("\n"):
                output += "\n"
            output += f"[exit status {proc.returncode}]"
        return output


__all__ = [
    "ERROR_PREFIX",
    "PYTHON_ENV",
    "ROOT_ENV",
    "SHUTDOWNS_FILE",
    "TOOL_ARGS",
    "TOOL_DESCRIPTIONS",
    "BenchTools",
    "ToolError",
]
