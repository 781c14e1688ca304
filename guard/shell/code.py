"""Looking inside code handed to interpreters: ``python -c``, ``python FILE``, ``perl -e`` and kin.

The analyser does not run the code. For Python it reads the syntax tree: string literals (folded
through simple assignments, ``os.path.join`` and ``Path``), the calls made, and the modules used.
Literal calls such as ``shutil.copy('a', 'b')`` become precise effects; the rest is judged by what
the code *could* do with every existing path it mentions: send it (network modules), copy or
write it, delete it, or only read it. Commands passed to ``os.system``/``subprocess`` are analysed
as shell. For other languages, quoted strings and a list of telling API names play the same part.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from collections.abc import Iterable, Iterator

from guard.shell.core import TABLE, Cmd
from guard.shell.globs import glob
from guard.shell.record import MAX_GLOBS, MAX_TEXT
from guard.shell.words import OPAQUE, Field, Flow, names, short
from guard.types import EffectKind, Location


def _sends(c: Cmd, loc: Location, what: str, host: str | None, recursive: bool) -> None:
    """Code that uses the network and names ``loc`` may send it anywhere."""
    dest = Location(raw=host or "<network>", path=None, host=host, visible=False)
    c.emit(
        EffectKind.TRANSFER,
        loc,
        dest,
        recursive=recursive,
        certain=False,
        note=f"{what}: code that uses the network mentions this path",
    )


def _writes(c: Cmd, loc: Location, what: str, recursive: bool) -> None:
    """Code that writes files and names ``loc`` may copy it anywhere."""
    c.emit(
        EffectKind.COPY,
        loc,
        Location(raw=f"<{what} output>", path=None),
        recursive=recursive,
        certain=False,
        note=f"{what}: code that writes files mentions this path",
    )


__all__ = [
    "inspect_code",
    "inspect_python",
    "load_file",
    "load_spec",
    "mentioned_files",
    "sqlite_commands",
]

_NET_MODULES = names(
    "socket requests urllib urllib2 urllib3 http httpx ftplib paramiko smtplib aiohttp "
    "telnetlib xmlrpc websocket websockets pysftp scp fabric asyncssh boto3 botocore ssl "
    "poplib imaplib pycurl grpc zmq socketserver tftpy smbclient smbprotocol"
)
_COPY_CALLS = names(
    "shutil.copy shutil.copy2 shutil.copyfile shutil.copytree os.link distutils.file_util.copy_file"
)
_MOVE_CALLS = names("shutil.move os.rename os.replace os.renames")
_DELETE_CALLS = names("os.remove os.unlink os.rmdir os.removedirs shutil.rmtree")
_SHELL_CALLS = names(
    "os.system os.popen subprocess.run subprocess.call subprocess.check_call "
    "subprocess.check_output subprocess.Popen subprocess.getoutput subprocess.getstatusoutput "
    "os.execv os.execvp os.execvpe os.execl os.execlp os.spawnl os.spawnlp os.spawnv "
    "os.spawnvp os.posix_spawn os.posix_spawnp pty.spawn commands.getoutput "
    "asyncio.create_subprocess_shell asyncio.create_subprocess_exec"
)
_WRITE_CALLS = names(
    "shutil.make_archive shutil.copyfileobj tarfile.open zipfile.ZipFile gzip.open bz2.open "
    "lzma.open os.write os.truncate os.chmod os.chown os.symlink os.makedirs os.mkdir os.utime"
    " pickle.dump json.dump yaml.dump yaml.safe_dump numpy.save torch.save "
    "safetensors.torch.save_file os.open os.sendfile os.copy_file_range "
    "tempfile.NamedTemporaryFile fileinput.input"
)
_WRITE_METHODS = names(
    "write write_text write_bytes writelines symlink_to hardlink_to link_to rename replace "
    "touch chmod mkdir dump save extractall extract add writestr sendall send sendfile put "
    "upload upload_file copy copy2 copyfile copytree move"
)
_DELETE_METHODS = names("unlink rmdir rmtree remove")
_DYNAMIC = names(
    "exec eval compile __import__ importlib.import_module getattr setattr globals locals vars "
    "marshal.loads pickle.loads codecs.decode"
)
_READ_CALLS = names(
    "print len open str int float bool bytes sorted sum min max range enumerate zip repr "
    "format isinstance list dict set tuple round abs any all map filter iter next hex ord chr "
    "type id hash divmod pow Path pathlib.Path os.getcwd os.environ.get os.getenv sys.exit "
    "exit quit time.time os.stat os.lstat os.listdir os.scandir os.walk os.access glob.glob "
    "glob.iglob json.load json.loads json.dumps yaml.safe_load yaml.load tomllib.load "
    "tomllib.loads csv.reader csv.DictReader struct.unpack struct.calcsize hashlib.sha256 "
    "hashlib.sha1 hashlib.md5 hashlib.sha512 hashlib.blake2b hashlib.new hashlib.file_digest "
    "zlib.crc32 binascii.hexlify datetime.datetime.now datetime.datetime.fromtimestamp "
    "os.path.getsize os.path.getmtime os.path.exists os.path.isfile os.path.isdir os.path.join"
    " os.path.basename os.path.dirname os.path.abspath os.path.realpath os.path.splitext "
    "os.path.expanduser os.path.islink os.path.relpath os.path.normpath os.fspath "
    "statistics.mean math.floor math.ceil sys.stdout.flush safetensors.safe_open "
    "fnmatch.fnmatch re.match re.search re.findall re.sub re.compile textwrap.dedent"
)
_READ_METHODS = names(
    "read read_text read_bytes readline readlines hexdigest digest update exists is_file "
    "is_dir stat iterdir glob rglob split rsplit strip lstrip rstrip join format items keys "
    "values get load loads lower upper startswith endswith encode decode close seek tell "
    "append extend count index find replace_str splitlines resolve absolute relative_to "
    "with_suffix with_name lstat is_symlink samefile match group groups fetchall keys copy_ "
    "sort reverse pop insert isdigit isalpha zfill ljust rjust center most_common "
    "total_seconds isoformat strftime flush fileno tolist mean sum round"
)
_URL = re.compile(r"^(?:https?|ftp|sftp|scp|s3|gs|wss?)://([^/:@]+@)?([^/:]+)")


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base is not None else None
    if isinstance(node, ast.Call):
        inner = _dotted(node.func, aliases)
        if inner in ("Path", "pathlib.Path", "open"):
            return inner + "()"
    return None


# The names the value tracking trusts by what they are called: the modules and builtins of
# the calls it takes as reducing, asking for metadata, spelling a path, opening or printing.
_TRUSTED_ROOTS = names(
    "len hash bool zlib binascii hashlib os os.path posixpath pathlib Path PurePath str open "
    "io codecs print sorted list reversed tuple set glob builtins __builtins__ sys"
)
# Names through which code reaches a module's globals (or a frame's) without a name load.
_NAMESPACES = names("__main__ globals vars locals __dict__ f_globals f_locals modules _getframe")


def _root(node: ast.AST) -> str | None:
    """The name an attribute or subscript chain starts from (``os`` in ``os.path.x[1]``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _rebinds(n: ast.AST, aliases: dict[str, str], stores: dict[str, int]) -> bool:
    """Whether ``n`` binds a name the value tracking trusts, rebinds an imported name, or
    assigns into a module, a builtin or anything not bound by the code itself."""
    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return n.name in _TRUSTED_ROOTS or n.name in aliases
    if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
        return n.id in _TRUSTED_ROOTS or n.id in aliases
    if isinstance(n, ast.arg):
        return n.arg in _TRUSTED_ROOTS
    if isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar):
        return n.name in _TRUSTED_ROOTS
    if isinstance(n, ast.Import | ast.ImportFrom):
        return any(a.name == "*" or (a.asname or "") in _TRUSTED_ROOTS for a in n.names)
    if isinstance(n, ast.Attribute) and not isinstance(n.ctx, ast.Load):
        root = _root(n)
        return root is None or root in aliases or root in _TRUSTED_ROOTS or root not in stores
    if isinstance(n, ast.Subscript) and not isinstance(n.ctx, ast.Load):
        # an item set in data (``os.environ["X"] = ...``) rebinds nothing; one set in a
        # namespace (``globals()``, ``vars(os)``, ``x.__dict__``, ``sys.modules``) may
        return any(
            _reaches_namespaces(x, aliases)
            or (isinstance(x, ast.Name) and x.id in ("__builtins__", "builtins"))
            for x in ast.walk(n.value)
        )
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
        return n.func.id in ("setattr", "delattr", "__import__", "exec", "eval")
    return False


def _reaches_namespaces(n: ast.AST, aliases: dict[str, str]) -> bool:
    """``n`` reaches a module's or a frame's variables by another way than their names."""
    if isinstance(n, ast.Name):
        return n.id in _NAMESPACES or aliases.get(n.id) == "__main__"
    if isinstance(n, ast.Attribute):
        return n.attr in _NAMESPACES
    if isinstance(n, ast.alias):
        return n.name == "__main__" or n.name.split(".")[0] == "inspect"
    if isinstance(n, ast.ImportFrom):
        return (n.module or "").split(".")[0] in ("__main__", "inspect")
    return False


class _Py:
    """One pass over a Python syntax tree, collecting what the analyser needs."""

    def __init__(self, tree: ast.AST, argv: list[str | None], home: str | None) -> None:
        self.aliases: dict[str, str] = {}
        self.consts: dict[str, str] = {}
        self.argv = argv
        self.home = home
        # every node, walked once: each pass below and in the inspection goes over this list
        self.nodes: list[ast.AST] = list(ast.walk(tree))
        for n in self.nodes:
            if isinstance(n, ast.Import):
                for a in n.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = (
                        a.name if a.asname else a.name.split(".")[0]
                    )
            elif isinstance(n, ast.ImportFrom) and n.module:
                for a in n.names:
                    self.aliases[a.asname or a.name] = f"{n.module}.{a.name}"
        # A name bound more than once (reassigned, a loop variable, a parameter too) holds
        # what the code computed last, which the analyser cannot tell: only a name bound once
        # is a constant (`p = "notes"; p = "w" + str(1)` must not leave p as "notes").
        stores: dict[str, int] = {}
        for n in self.nodes:
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                stores[n.id] = stores.get(n.id, 0) + 1
            elif isinstance(n, ast.arg):
                stores[n.arg] = stores.get(n.arg, 0) + 2
        self.stores = stores
        # Calls trusted by name (``len``, ``hashlib.*``, ``os.path.exists``, ``open``...) are
        # what their name says only while the code leaves those names alone: a ``def len``,
        # ``os.path.exists = shutil.copy`` or ``hashlib.k = ...`` anywhere drops the trust.
        self.trusting = not any(_rebinds(n, self.aliases, stores) for n in self.nodes)
        # Values reached other than through their name (``C.d`` for a class body's ``d``,
        # ``__main__.d``, ``globals()["d"]``): a name's loads are not all its uses.
        self.untracked = any(_reaches_namespaces(n, self.aliases) for n in self.nodes)
        self.class_bound: set[str] = {
            x.id
            for n in self.nodes
            if isinstance(n, ast.ClassDef)
            for stmt in n.body
            for x in ast.walk(stmt)
            if isinstance(x, ast.Name) and not isinstance(x.ctx, ast.Load)
        }
        self.changes: bool | None = None  # whether the code may change the tree (see below)
        # Where each node sits, the places each name is read, and what a name bound once
        # holds: its assigned value, or the iterable of the one loop that binds it. The value
        # tracking below (`_reduced`, `_meta_only`, `_paths`) follows data only through these.
        self.parents: dict[ast.AST, ast.AST] = {}
        self.loads: dict[str, list[ast.Name]] = {}
        self.values: dict[str, ast.AST] = {}
        self.loops: dict[str, ast.AST] = {}
        self.globs: dict[ast.AST, list[str] | None] = {}  # literal globs expanded, by call
        for n in self.nodes:
            for child in ast.iter_child_nodes(n):
                self.parents[child] = n
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                self.loads.setdefault(n.id, []).append(n)
            elif (
                isinstance(n, ast.For | ast.AsyncFor | ast.comprehension)
                and isinstance(n.target, ast.Name)
                and stores.get(n.target.id) == 1
            ):
                self.loops[n.target.id] = n.iter
        for n in self.nodes:
            if (
                isinstance(n, ast.Assign)
                and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name)
                and stores.get(n.targets[0].id) == 1
            ):
                self.values[n.targets[0].id] = n.value
                v = self.fold(n.value)
                if v is not None:
                    self.consts[n.targets[0].id] = v

    def fold(self, node: ast.AST | None, depth: int = 0) -> str | None:
        """The string an expression evaluates to, when it is built only from literals (and
        not longer than ``MAX_TEXT``: ``a = a + a`` thirty times is a gigabyte)."""
        s = self._fold(node, depth)
        return s if s is None or len(s) <= MAX_TEXT else None

    def _fold(self, node: ast.AST | None, depth: int) -> str | None:
        if node is None or depth > 20:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return node.value.decode("utf-8", "replace")
        if isinstance(node, ast.Name):
            return self.consts.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts = []
            size = 0
            for v in node.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    parts.append(v.value)
                elif isinstance(v, ast.FormattedValue):
                    s = self.fold(v.value, depth + 1)
                    if s is None:
                        return None
                    parts.append(s)
                else:
                    return None
                size += len(parts[-1])
                if size > MAX_TEXT:
                    return None
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Div):
            a, b = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            if a is None or b is None or len(a) + len(b) > MAX_TEXT:
                return None
            return a + b if isinstance(node.op, ast.Add) else os.path.join(a, b)
        if isinstance(node, ast.Subscript):
            base = _dotted(node.value, self.aliases)
            if (
                base == "sys.argv"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, int)
            ):
                k = node.slice.value
                return self.argv[k] if 0 <= k < len(self.argv) else None
            return None
        if isinstance(node, ast.Call) and self.trusting:
            name = _dotted(node.func, self.aliases)
            args = [self.fold(a, depth + 1) for a in node.args]
            if (
                name in ("os.path.join", "posixpath.join")
                and args
                and all(a is not None for a in args)
            ):
                return os.path.join(*[a for a in args if a is not None])
            if (
                name
                in (
                    "Path",
                    "pathlib.Path",
                    "pathlib.PurePath",
                    "str",
                    "os.fspath",
                    "os.path.abspath",
                    "os.path.realpath",
                    "os.path.normpath",
                )
                and len(args) == 1
            ):
                return args[0]
            if (
                name == "os.path.expanduser"
                and len(args) == 1
                and args[0] is not None
                and self.home
            ):
                return self.home + args[0][1:] if args[0].startswith("~") else args[0]
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("joinpath",):
                base_s = self.fold(node.func.value, depth + 1)
                if base_s is not None and args and all(a is not None for a in args):
                    return os.path.join(base_s, *[a for a in args if a is not None])
        return None


# Calls whose result says something about a file's content without holding it: a length, a
# checksum, a digest (``hashlib.*`` objects only ever give out digests), a truth value.
_REDUCING_CALLS = names(
    "len hash bool zlib.crc32 zlib.adler32 binascii.crc32 binascii.crc_hqx hashlib.file_digest"
)
# Methods that give a file object's content (the value is still the content).
_CONTENT_METHODS = names("read read_bytes read_text readline readlines")
# Calls and path methods that look only at a file's metadata (whether it is there, its size,
# times, type), and calls that only turn a path's text into another spelling of it.
_META_CALLS = names(
    "os.path.exists os.path.lexists os.path.getsize os.path.getmtime os.path.getatime "
    "os.path.getctime os.path.isfile os.path.isdir os.path.islink os.path.ismount os.stat "
    "os.lstat os.access"
)
_META_METHODS = names("exists is_file is_dir is_symlink is_mount stat lstat")
_PATH_SPELLINGS = names(
    "Path pathlib.Path pathlib.PurePath str os.fspath os.path.abspath os.path.normpath "
    "os.path.realpath os.path.expanduser"
)
_MAX_TRACK = 8  # how many names deep a value is followed before it is taken as escaping


def _call_of(py: _Py, node: ast.AST) -> ast.Call | None:
    """The call ``node`` (an attribute) is the function of, if any: ``x.m`` in ``x.m()``."""
    call = py.parents.get(node)
    return call if isinstance(call, ast.Call) and call.func is node else None


def _bound_name(py: _Py, node: ast.AST) -> str | None:
    """The name a value is bound to when it is the whole right side of ``name = value`` or
    the item of ``with value as name``, and the name is bound nowhere else."""
    parent = py.parents.get(node)
    target: ast.AST | None = None
    if isinstance(parent, ast.Assign) and parent.value is node and len(parent.targets) == 1:
        target = parent.targets[0]
    elif isinstance(parent, ast.withitem) and parent.context_expr is node:
        target = parent.optional_vars
    if (
        isinstance(target, ast.Name)
        and py.stores.get(target.id) == 1
        and not py.untracked
        and target.id not in py.class_bound
    ):
        return target.id
    return None


def _is_hash(py: _Py, node: ast.AST) -> bool:
    """``node`` is a name bound once to a ``hashlib`` object (``h = hashlib.sha256()``)."""
    if not isinstance(node, ast.Name):
        return False
    value = py.values.get(node.id)
    if not isinstance(value, ast.Call):
        return False
    return (_dotted(value.func, py.aliases) or "").startswith("hashlib.")


def _reduced(py: _Py, node: ast.AST, depth: int = 0) -> bool:
    """Whether the value of ``node`` (a file object or a file's content) reaches nothing but
    calls that reduce it to a length or a digest. Followed through content methods
    (``f.read()``), ``with ... as f`` and names bound once; any other use (an argument of
    another call, an operand, a container, a name bound twice) may carry the content on, and
    answers ``False``."""
    if depth > _MAX_TRACK or not py.trusting:
        return False
    parent = py.parents.get(node)
    if isinstance(parent, ast.Attribute) and parent.value is node:
        call = _call_of(py, parent)
        if call is None:
            return False
        if parent.attr in _CONTENT_METHODS:
            return _reduced(py, call, depth + 1)
        return parent.attr == "close"
    if isinstance(parent, ast.Call) and any(a is node for a in parent.args):
        name = _dotted(parent.func, py.aliases) or ""
        if name in _REDUCING_CALLS or name.startswith("hashlib."):
            return True
        func = parent.func
        return (
            isinstance(func, ast.Attribute) and func.attr == "update" and _is_hash(py, func.value)
        )
    bound = _bound_name(py, node)
    if bound is not None:
        uses = py.loads.get(bound, [])
        return bool(uses) and all(_reduced(py, u, depth + 1) for u in uses)
    return False


def _meta_only(py: _Py, node: ast.AST, depth: int = 0) -> bool:
    """Whether a path (a string literal, or a value built from it) reaches only calls that
    look at the file's metadata (``os.path.exists``, ``Path(p).stat()``): through spellings
    of the path (``Path(p)``, ``str(p)``) and names bound once, every use of it."""
    if depth > _MAX_TRACK or not py.trusting:
        return False
    parent = py.parents.get(node)
    if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
        name = _dotted(parent.func, py.aliases) or ""
        if name in _META_CALLS:
            return True
        if name in _PATH_SPELLINGS and len(parent.args) == 1 and not parent.keywords:
            return _meta_only(py, parent, depth + 1)
        return False
    if isinstance(parent, ast.Attribute) and parent.value is node:
        return parent.attr in _META_METHODS and _call_of(py, parent) is not None
    bound = _bound_name(py, node)
    if bound is not None:
        uses = py.loads.get(bound, [])
        return bool(uses) and all(_meta_only(py, u, depth + 1) for u in uses)
    return False


def _meta_only_name(py: _Py, name: str) -> bool:
    """A name bound once whose every use only asks for a file's metadata."""
    if py.untracked or name in py.class_bound:
        return False
    uses = py.loads.get(name, [])
    return bool(uses) and all(_meta_only(py, u) for u in uses)


def _literal_glob(c: Cmd, py: _Py, call: ast.Call, name: str, method: str) -> list[str] | None:
    """The paths a glob call with a literal pattern matches now (``glob.glob('logs/*.log')``,
    ``Path('logs').glob('*.log')``), as text the code would open; ``None`` for any other
    call, a pattern built at run time, or one the analyser does not expand (brackets, which
    Python reads unlike bash, and options such as ``root_dir``). Expanded once per call."""
    if call in py.globs:
        return py.globs[call]
    py.globs[call] = None
    if not py.trusting or _changes_files(py):
        # the tree the code globs may not be the tree now: a link it makes, a file it
        # writes or moves (or a call the analyser does not know) can add matches
        return None
    deep = dots = False
    pattern: str | None = None
    if name in ("glob.glob", "glob.iglob"):
        for kw in call.keywords:
            flag = kw.value.value if isinstance(kw.value, ast.Constant) else None
            if kw.arg == "recursive" and isinstance(flag, bool):
                deep = flag
            elif kw.arg == "include_hidden" and isinstance(flag, bool):
                dots = flag
            else:
                return None
        pattern = py.fold(call.args[0]) if len(call.args) == 1 else None
    elif method in ("glob", "rglob") and isinstance(call.func, ast.Attribute):
        base = py.fold(call.func.value)
        pat = py.fold(call.args[0]) if len(call.args) == 1 and not call.keywords else None
        if base is None or pat is None or not pat or pat.startswith("/"):
            return None
        # pathlib: `*` matches names with a leading dot, `**` spans folders, rglob is `**/`
        deep = dots = True
        pattern = os.path.join(base, "**", pat) if method == "rglob" else os.path.join(base, pat)
    st = c.st
    if pattern is None or not pattern or "[" in pattern or len(pattern) > 4096:
        return None
    if not pattern.startswith(("/", "~")) and st.cwd is None:
        return None
    if pattern.startswith("~"):
        if st.home is None:
            return None
        pattern = st.home + pattern[1:]
    st.run.globs += 1
    if st.run.globs > MAX_GLOBS:
        return None
    hits = glob(st.run, st.map_abs(pattern), lambda text: st.local(text).path, deep=deep, dots=dots)
    py.globs[call] = hits
    return hits


def _changes_files(py: _Py) -> bool:
    """Whether the code may make an existing file's content appear under another name (a
    link, a copy, a move, an archive it extracts), run commands, or make any call the
    analyser does not know: after it, a glob may match what it did not match before the code
    ran. Writing data into a file is not such a call: what the glob then finds there is what
    the code wrote, whose sources the analyser follows. Decided once per code."""
    if py.changes is None:
        py.changes = any(isinstance(n, ast.Call) and not _leaves_files(py, n) for n in py.nodes)
    return py.changes


# Calls and methods that only put the code's own data into a file (or drop one).
_DATA_WRITES = names("print os.write json.dump pickle.dump yaml.dump yaml.safe_dump")
_DATA_METHODS = names("write write_text write_bytes writelines flush close")


def _leaves_files(py: _Py, call: ast.Call) -> bool:
    """A call the analyser knows does not bring files into being under new names."""
    name = _dotted(call.func, py.aliases) or ""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    if (name in _OPEN_CALLS and name != "os.open") or _opens_a_path(py, name, method):
        return True  # opened for reading, or for writing the code's own data
    if name in _DATA_WRITES or method in _DATA_METHODS or name in _DELETE_CALLS:
        return True
    changing = _COPY_CALLS | _MOVE_CALLS | _SHELL_CALLS | _WRITE_CALLS | _DYNAMIC
    if name in changing or name in _DETACH_CALLS or name in _DEBUGGER_CALLS:
        return False
    if method in _WRITE_METHODS and name not in _READ_CALLS:
        return False
    return (
        name in _READ_CALLS
        or method in _READ_METHODS
        or method in _DELETE_METHODS
        or name.startswith(("os.path.", "hashlib.", "datetime.", "math.", "time."))
    )


def _paths(c: Cmd, py: _Py, node: ast.AST | None) -> list[str] | None:
    """The paths an expression may name: the string it folds to, or every match of the
    literal glob a loop variable (bound by that one loop) runs over."""
    if node is None:
        return None
    value = py.fold(node)
    if value is not None:
        return [value]
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and not node.keywords
        and (_dotted(node.func, py.aliases) or "") in _PATH_SPELLINGS
    ):
        return _paths(c, py, node.args[0])
    if not isinstance(node, ast.Name) or node.id not in py.loops:
        return None
    it = py.loops[node.id]
    while (
        isinstance(it, ast.Call)
        and _dotted(it.func, py.aliases) in ("sorted", "list", "reversed", "tuple", "set")
        and len(it.args) == 1
    ):
        it = it.args[0]
    if isinstance(it, ast.List | ast.Tuple | ast.Set):
        # a loop over a literal list of literal strings names each of them
        items = [None if isinstance(e, ast.Starred) else py.fold(e) for e in it.elts]
        return None if any(v is None for v in items) else [v for v in items if v is not None]
    if not isinstance(it, ast.Call):
        return None
    name = _dotted(it.func, py.aliases) or ""
    method = it.func.attr if isinstance(it.func, ast.Attribute) else ""
    return _literal_glob(c, py, it, name, method)


# Processes that outlive the call: the guard decided before they do their work.
_DETACH_CALLS = names("os.fork os.forkpty os.setsid os.setpgrp os.daemon daemon.DaemonContext")
# Calls that hand control to a debugger or console, which runs the commands it reads (from
# standard input, ~/.pdbrc or ./.pdbrc) or the hook PYTHONBREAKPOINT names.
_DEBUGGER_CALLS = names(
    "breakpoint pdb.set_trace pdb.run pdb.runeval pdb.runcall pdb.post_mortem pdb.pm "
    "code.interact code.InteractiveConsole code.InteractiveInterpreter sys.breakpointhook"
)


def _detached(py: _Py, name: str, call: ast.Call) -> bool:
    """A subprocess started in its own session or process group, or spawned without waiting."""
    for k in call.keywords:
        if k.arg in ("start_new_session", "process_group", "preexec_fn") and not (
            isinstance(k.value, ast.Constant) and k.value.value in (False, None)
        ):
            return True
    if name.startswith("os.spawn") and call.args:
        mode = _dotted(call.args[0], py.aliases)
        return mode is None or mode != "os.P_WAIT"
    return False


def _command_text(py: _Py, name: str, call: ast.Call) -> str | None:
    """The command a process-starting call runs, as shell text, when it is built only from
    literals. The exec and spawn families take the program and its argument list apart
    (``os.execvp("cp", ["cp", a, b])`` runs ``cp a b``; the list's first item is only the
    name the program sees)."""
    a = call.args
    leaf = name.rsplit(".", 1)[-1]
    if leaf.startswith(("exec", "spawn", "posix_spawn")) and name.startswith("os."):
        k = 1 if leaf.startswith("spawn") else 0  # spawn* take the mode first
        letters = leaf.removeprefix("posix_spawn").removeprefix("exec").removeprefix("spawn")
        if len(a) <= k + 1:
            return None
        nodes: list[ast.AST] = [a[k]]
        if leaf.startswith("posix_spawn") or letters.startswith("v"):
            items = a[k + 1]
            if not isinstance(items, ast.List | ast.Tuple):
                return None
            nodes.extend(items.elts[1:])
        else:
            nodes.extend(a[k + 2 : len(a) - 1 if letters.endswith("e") else len(a)])
        return _joined(py, nodes)
    if name == "asyncio.create_subprocess_exec":
        return _joined(py, list(a))
    node = a[0] if a else next((kw.value for kw in call.keywords if kw.arg == "args"), None)
    return _shell_arg(py, node) if node is not None else None


def _joined(py: _Py, nodes: list[ast.AST]) -> str | None:
    parts = [None if isinstance(x, ast.Starred) else py.fold(x) for x in nodes]
    if not parts or any(p is None for p in parts):
        return None
    return shlex.join([p for p in parts if p is not None])


def _debugger(c: Cmd, py: _Py, name: str, call: ast.Call, what: str) -> None:
    """``breakpoint(*args)`` calls the hook ``PYTHONBREAKPOINT`` names (``os.system`` runs its
    argument); with none, pdb reads commands from standard input and ``.pdbrc`` files."""
    st = c.st
    hook = st.vars.get("PYTHONBREAKPOINT") if "PYTHONBREAKPOINT" in st.exported else None
    hook_text = hook.text if hook is not None and name == "breakpoint" else None
    if hook_text == "0":
        return  # breakpoints are off
    if hook_text is not None and hook_text in _SHELL_CALLS:
        text = _command_text(py, hook_text, call)
        if text is not None:
            _run_shell(c, text, f"{what} breakpoint hook {hook_text}")
            return
    c.unseen(f"{what}: {name} runs commands the analyser does not read (a debugger or a hook)")


def _shell_arg(py: _Py, node: ast.AST) -> str | None:
    if isinstance(node, ast.List | ast.Tuple):
        parts = [py.fold(e) for e in node.elts]
        if all(p is not None for p in parts):
            return shlex.join([p for p in parts if p is not None])
        return None
    return py.fold(node)


# Calls that open the file their first argument names, with a mode (or ``os.open``'s flags)
_OPEN_CALLS = names("open io.open codecs.open io.FileIO _io.FileIO os.open")
# Modules whose ``open`` opens something other than a file path the code names for reading
# or writing a whole file (an archive's member is judged by the archive call itself).
_OTHER_OPENS = names("tarfile zipfile gzip bz2 lzma webbrowser shelve dbm wave sqlite3 os io")
# Calls that find files at run time: the paths they yield are not in the code.
_FINDING_CALLS = names(
    "glob.glob glob.iglob os.listdir os.scandir os.walk os.fwalk input sys.stdin.read "
    "sys.stdin.readline os.environ.get os.getenv"
)
_FINDING_METHODS = names("glob rglob iterdir walk")
# os.open flags that write
_WRITE_FLAGS = names("O_WRONLY O_RDWR O_CREAT O_APPEND O_TRUNC O_EXCL O_TMPFILE")


def _opens_a_path(py: _Py, name: str, method: str) -> bool:
    """``p.open(...)`` on a path object (a ``Path`` call, or a variable holding one), not a
    module's own ``open`` (``tarfile.open``)."""
    if method != "open":
        return False
    if name.endswith("Path().open") or name.startswith("Path"):
        return True
    head = name.split(".")[0] if name else ""
    return not (head in py.aliases and py.aliases[head].split(".")[0] in _OTHER_OPENS)


def _unpacked(call: ast.Call) -> bool:
    """The call's arguments include ``*args`` or ``**kwargs``: which is which is unknown."""
    return any(isinstance(a, ast.Starred) for a in call.args) or any(
        kw.arg is None for kw in call.keywords
    )


def _open_target(call: ast.Call) -> ast.AST | None:
    """The path an ``open``-like call opens: its first argument or ``file=``; ``None`` when
    unpacked arguments hide it."""
    if _unpacked(call):
        return None
    if call.args:
        return call.args[0]
    return next((kw.value for kw in call.keywords if kw.arg in ("file", "path")), None)


def _path_open_mode(py: _Py, call: ast.Call) -> str:
    """The mode of ``Path(...).open(...)``: as :func:`_mode`, the mode being the first
    argument; unpacked arguments or a mode the analyser cannot fold are taken as writing."""
    if _unpacked(call):
        return "w"
    node: ast.AST | None = call.args[0] if call.args else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    return "r" if node is None else (py.fold(node) or "w")


def _mode(py: _Py, call: ast.Call, name: str = "open") -> str:
    """The mode an open call uses: ``"r"`` for reading; anything with w, a, x or + writes. A
    mode the analyser cannot fold is taken as writing."""
    if _unpacked(call):
        return "w"
    node: ast.AST | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg in ("mode", "flags"):
            node = kw.value
    if name == "os.open":
        if node is None:
            return "r"
        flags = {
            x.attr if isinstance(x, ast.Attribute) else x.id
            for x in ast.walk(node)
            if isinstance(x, ast.Attribute | ast.Name)
        }
        if flags & _WRITE_FLAGS or not all(
            isinstance(x, ast.Attribute | ast.Name | ast.BinOp | ast.BitOr | ast.Load)
            for x in ast.walk(node)
        ):
            return "w"
        return "r" if flags <= {"os", "O_RDONLY", "O_CLOEXEC", "O_NOFOLLOW", "O_BINARY"} else "w"
    if node is None:
        return "r"
    return py.fold(node) or "w"


def _new_files(c: Cmd, strings: Iterable[str]) -> list[Location]:
    """Paths among ``strings`` that do not exist yet but could be created: a relative or
    absolute path with a slash, in a folder that exists. Code that writes may create them."""
    found: dict[str, Location] = {}
    for s in strings:
        if not s or "/" not in s or len(s) > 4096 or "\n" in s or "\0" in s or "://" in s:
            continue
        loc = c.st.local(s)
        p = loc.path
        if p is None or p in found or c.st.run.exists(p):
            continue
        if c.st.run.isdir(os.path.dirname(p) or "."):
            found[p] = loc
        if len(found) >= 64:
            break
    return list(found.values())


def _existing(c: Cmd, value: str) -> Location | None:
    if not value or len(value) > 4096 or "\n" in value or "\0" in value:
        return None
    loc = c.st.local(value)
    if loc.path is not None and c.st.run.exists(loc.path):
        return loc
    return None


def _url_host(strings: list[str]) -> str | None:
    for s in strings:
        m = _URL.match(s)
        if m:
            return m.group(2)
    return None


def _run_shell(c: Cmd, text: str, what: str) -> None:
    st = c.st
    sub = st.new_shell(
        cwd=st.cwd, home=st.home, host=st.host, stdin=(), variables=st.env_vars(), pos=[]
    )
    if sub is not None:
        sub.run_text(text, what=what)


def inspect_python(
    c: Cmd, code: str, argv: list[Field], *, what: str, base: str = "", depth: int = 0
) -> tuple[Flow, ...]:
    """Effects of running Python ``code`` with ``argv`` (``sys.argv[1:]``).

    Args:
        c: The interpreter's command.
        code: The code.
        argv: ``sys.argv[1:]``.
        what: How to name the code in notes.
        base: The folder of the script (``sys.path[0]``, where its imports are looked for
            first), as the command line names it; empty for code given with ``-c``, ``-m``
            or on standard input (the working directory).
        depth: How many project files deep this code was loaded (see :func:`load_file`).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        c.unseen(f"{what}: code the analyser cannot parse")
        return inspect_code(c, code, argv, what=what, base=base, depth=depth)
    try:
        return _inspect_tree(c, tree, argv, what=what, base=base, depth=depth)
    except RecursionError:
        c.unseen(f"{what}: code nested too deeply to analyse")
        return (OPAQUE,)


# ------------------------------------------------------------ code loaded from project files

MAX_LOADED = 32  # project files one analysis reads because code imports or runs them
_PY_LOAD_FILE = {  # calls that run the Python file their argument at this index names
    "runpy.run_path": 0,
    "importlib.util.spec_from_file_location": 1,
    "importlib.machinery.SourceFileLoader": 1,
    "imp.load_source": 1,
    "imp.load_compiled": 1,
}
_PY_LOAD_MODULE = names("runpy.run_module importlib.import_module __import__ imp.load_module")


def _is_file(c: Cmd, path: str) -> bool:
    run = c.st.run
    return path in run.overlay or run.isfile(path)


def load_file(c: Cmd, raw: str, lang: str, *, what: str, depth: int) -> bool:
    """Analyse the file at ``raw`` (as the command line names it) that code imports, requires
    or runs, as a script of ``lang``: once per analysis, at most ``MAX_LOADED`` files and
    ``MAX_DEPTH`` loads deep (past either, it is unseen). Returns whether the file is there."""
    from guard.shell.record import MAX_DEPTH

    st = c.st
    loc = st.local(raw)
    if loc.path is None or not _is_file(c, loc.path):
        return False
    run = st.run
    key = ("loaded", loc.path)
    if key in run.seen:
        return True
    run.seen.add(key)
    loaded = sum(1 for k in run.seen if k[0] == "loaded")
    if depth >= MAX_DEPTH or loaded > MAX_LOADED:
        c.unseen(f"{what}: loads more project code than the analyser reads", loc)
        return True
    head = run.read_head(loc)
    text = run.read_text(loc) if head is not None and b"\0" not in head else None
    if text is None:
        c.unseen(f"{what}: loads code the analyser cannot read ({short(raw)})", loc)
        return True
    inner = f"{raw} (loaded by {what})"
    folder = os.path.dirname(raw)
    if lang == "python":
        inspect_python(c, text, [], what=inner, base=folder, depth=depth + 1)
    else:
        inspect_code(c, text, [], what=inner, lang=lang, base=folder, depth=depth + 1)
    return True


def _python_module(
    c: Cmd, base: str, dotted: str, listings: dict[str, set[str] | None], *, what: str, depth: int
) -> bool:
    """Analyse the project files that importing ``dotted`` runs when they lie in ``base``
    (the script's folder comes first in ``sys.path``: a ``json.py`` there *is* ``json``).
    Returns whether any does; a compiled module there is unseen. A folder the agent cannot
    write holds the system's modules, and is not looked at."""
    found = False
    folder = base
    parts = [p for p in dotted.split(".") if p]
    for part in parts:
        there = _names(c, folder, listings)
        if there is None:
            return found
        pkg = os.path.join(folder, part)
        if part in there:
            loc = c.st.local(pkg)
            if loc.path is not None and c.st.run.isdir(loc.path):
                init = os.path.join(pkg, "__init__.py")
                found = load_file(c, init, "python", what=what, depth=depth) or found
                folder = pkg
                continue
        if part + ".py" in there:
            return load_file(c, pkg + ".py", "python", what=what, depth=depth) or found
        if any(n.startswith(part + ".") and n.endswith((".so", ".pyc", ".pyd")) for n in there):
            c.unseen(f"{what}: imports compiled code the analyser cannot read ({part})")
            return True
        return found
    return found


def _names(c: Cmd, folder: str, listings: dict[str, set[str] | None]) -> set[str] | None:
    """The entries of a folder the agent can write (with the files this command line wrote
    there), read once per analysis of a piece of code; ``None`` for any other folder."""
    loc = c.st.local(folder or ".")
    if loc.path is None:
        return None
    if loc.path in listings:
        return listings[loc.path]
    run = c.st.run
    found: set[str] | None = None
    if run.writable(loc.path + "/"):
        found = set()
        try:
            with os.scandir(loc.path) as it:
                found.update(e.name for _, e in zip(range(4096), it, strict=False))
        except OSError:
            pass
        prefix = loc.path.rstrip("/") + "/"
        found.update(p[len(prefix) :].split("/", 1)[0] for p in run.overlay if p.startswith(prefix))
        found.update(p[len(prefix) :].split("/", 1)[0] for p in run.created if p.startswith(prefix))
    listings[loc.path] = found
    return found


def _python_loads(c: Cmd, py: _Py, tree: ast.AST, *, what: str, base: str, depth: int) -> None:
    """What the code imports or runs from files: project files are read and analysed like the
    code itself; a file or module it names with a computed value is unseen."""
    listings: dict[str, set[str] | None] = {}
    for n in py.nodes:
        if isinstance(n, ast.Import):
            for a in n.names:
                _python_module(c, base, a.name, listings, what=what, depth=depth)
        elif isinstance(n, ast.ImportFrom):
            folder = base
            for _ in range(max(0, n.level - 1)):
                folder = os.path.dirname(folder) if folder not in ("", ".") else ".."
            module = n.module or ""
            if module:
                _python_module(c, folder, module, listings, what=what, depth=depth)
            for a in n.names:
                if a.name != "*":
                    sub = f"{module}.{a.name}" if module else a.name
                    _python_module(c, folder, sub, listings, what=what, depth=depth)
        elif isinstance(n, ast.Call):
            name = _dotted(n.func, py.aliases) or ""
            index = _PY_LOAD_FILE.get(name)
            if index is not None or name in _PY_LOAD_MODULE:
                k = index or 0
                arg = n.args[k] if len(n.args) > k else None
                value = py.fold(arg) if arg is not None else None
                if value is None:
                    c.unseen(f"{what}: {name} loads code from a place the analyser cannot see")
                elif index is not None:
                    load_file(c, value, "python", what=what, depth=depth)
                elif not value.startswith("."):
                    _python_module(c, base, value, listings, what=what, depth=depth)
                continue
            if name in ("exec", "compile") and n.args:
                path = _opened_text(py, n.args[0])
                if path is not None:
                    load_file(c, path, "python", what=what, depth=depth)


def _opened_text(py: _Py, node: ast.AST) -> str | None:
    """The file ``open(PATH).read()`` (or ``Path(PATH).read_text()``) reads, when literal."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    inner = node.func.value
    if (
        node.func.attr == "read"
        and isinstance(inner, ast.Call)
        and inner.args
        and _dotted(inner.func, py.aliases) in ("open", "io.open")
    ):
        return py.fold(inner.args[0])
    if node.func.attr == "read_text":
        return py.fold(inner)
    return None


def _inspect_tree(
    c: Cmd, tree: ast.AST, argv: list[Field], *, what: str, base: str, depth: int
) -> tuple[Flow, ...]:
    st = c.st
    py = _Py(tree, [what, *[(f.value if f.known else None) for f in argv]], st.home)
    _python_loads(c, py, tree, what=what, base=base, depth=depth)
    covered: set[str] = set()
    net = write = dynamic = unknown_call = printing = found = False
    strings: list[str] = []
    reads: list[Location] = []
    opened: list[Location] = []  # files the code opens for reading
    written: list[Location] = []  # files it writes
    meta: dict[str, bool] = {}  # a string: whether every use of it only asks for metadata
    for n in py.nodes:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            strings.append(n.value)
            meta[n.value] = meta.get(n.value, True) and _meta_only(py, n)
        if isinstance(n, ast.Import | ast.ImportFrom):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
            if any(m.split(".")[0] in _NET_MODULES for m in mods):
                net = True
        if not isinstance(n, ast.Call):
            continue
        name = _dotted(n.func, py.aliases) or ""
        method = n.func.attr if isinstance(n.func, ast.Attribute) else ""
        args = [py.fold(a) for a in n.args]
        if name.split(".")[0] in _NET_MODULES:
            net = True
        if name in _SHELL_CALLS:
            if _detached(py, name, n):
                c.unseen(f"{what}: starts a process that outlives the call ({name})")
            text = _command_text(py, name, n)
            if text is None:
                # its own arguments, text it builds or reads: a command nobody read
                c.unseen(f"{what}: runs a command the analyser cannot see ({name})")
            else:
                _run_shell(c, text, f"{what} subprocess")
            continue
        if name in _DETACH_CALLS or any(
            k.arg == "daemon" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in n.keywords
        ):
            c.unseen(f"{what}: starts work that outlives the call ({name or method})")
        if name in _DEBUGGER_CALLS:
            _debugger(c, py, name, n, what)
            continue
        if name in _COPY_CALLS or name in _MOVE_CALLS:
            kind = EffectKind.MOVE if name in _MOVE_CALLS else EffectKind.COPY
            src = (
                st.local(args[0])
                if args and args[0] is not None
                else Location(raw="<python value>")
            )
            dst = (
                st.local(args[1])
                if len(args) > 1 and args[1] is not None
                else Location(raw="<python value>")
            )
            from guard.shell.common import copy_effect, dest_for

            if (
                src.path is not None
                and dst.path is not None
                and len(args) > 1
                and args[1] is not None
            ):
                dst = dest_for(st, src, dst, args[1]) if name != "shutil.copyfile" else dst
            rec = name == "shutil.copytree" or (src.path is not None and st.run.isdir(src.path))
            copy_effect(
                c,
                src,
                dst,
                recursive=rec,
                kind=kind,
                certain=src.resolved and dst.resolved,
                note="" if src.resolved and dst.resolved else f"{what}: {name} with computed paths",
            )
            if src.path is not None:
                covered.add(src.path)
            if not (src.resolved and dst.resolved):
                write = True
            continue
        if name in _DELETE_CALLS or (method in _DELETE_METHODS and name not in _READ_CALLS):
            target = (
                args[0]
                if name in _DELETE_CALLS and args
                else (
                    py.fold(n.func.value)
                    if isinstance(n.func, ast.Attribute) and method in _DELETE_METHODS
                    else None
                )
            )
            loc = st.local(target) if target is not None else Location(raw="<python value>")
            rec = name == "shutil.rmtree" or method == "rmtree"
            c.emit(
                EffectKind.DELETE,
                loc,
                recursive=rec,
                certain=loc.resolved,
                note="" if loc.resolved else f"{what}: deletes a computed path",
            )
            if loc.path is not None:
                covered.add(loc.path)
            continue
        if name in _OPEN_CALLS or _opens_a_path(py, name, method):
            node = (
                _open_target(n)
                if name in _OPEN_CALLS
                else (n.func.value if isinstance(n.func, ast.Attribute) else None)
            )
            mode = _mode(py, n, name) if name in _OPEN_CALLS else _path_open_mode(py, n)
            paths = _paths(c, py, node)
            locs = (
                [st.local(p) for p in paths]
                if paths is not None
                else [Location(raw="<python value>", path=None)]
            )
            if any(ch in mode for ch in "wax+"):
                for loc in locs:
                    c.emit(
                        EffectKind.WRITE,
                        loc,
                        certain=loc.resolved and paths is not None and len(paths) == 1,
                        note="" if loc.resolved else f"{what}: writes a computed path",
                    )
                    written.append(loc)
                write = True
            else:
                # what is read may be written or sent, unless it only reaches a digest
                kept = not _reduced(py, n)
                for loc in locs:
                    c.emit(
                        EffectKind.READ,
                        loc,
                        certain=loc.resolved,
                        note="" if loc.resolved else f"{what}: reads a computed path",
                    )
                    if loc.path is not None:
                        reads.append(loc)
                        if kept:
                            opened.append(loc)
                found = found or (kept and paths is None)
            covered.update(loc.path for loc in locs if loc.path is not None)
            continue
        if method in ("read_text", "read_bytes") and isinstance(n.func, ast.Attribute):
            paths = _paths(c, py, n.func.value)
            kept = not _reduced(py, n)
            if paths is None:
                found = found or kept  # a file the code found or built: reads it, but which?
                continue
            for loc in map(st.local, paths):
                c.emit(EffectKind.READ, loc)
                if loc.path is not None:
                    reads.append(loc)
                    if kept:
                        opened.append(loc)
                    covered.add(loc.path)
            continue
        if name in _FINDING_CALLS or method in _FINDING_METHODS:
            # a literal pattern is expanded: the files it matches are named by the code
            hits = _literal_glob(c, py, n, name, method)
            if hits is None:
                found = True
            else:
                strings.extend(hits)
        if method in ("write_text", "write_bytes") and isinstance(n.func, ast.Attribute):
            path = py.fold(n.func.value)
            loc = st.local(path) if path is not None else Location(raw="<python value>")
            c.emit(EffectKind.WRITE, loc, certain=loc.resolved)
            write = True
            written.append(loc)
            if loc.path is not None:
                covered.add(loc.path)
            continue
        if name in _DYNAMIC or (
            method in ("b64decode", "decodebytes")
            and any(
                _dotted(p.func, py.aliases) in ("exec", "eval")
                for p in py.nodes
                if isinstance(p, ast.Call)
            )
        ):
            dynamic = True
            continue
        if name in ("print", "sys.stdout.write", "sys.stdout.buffer.write", "os.write"):
            printing = True
        if name in _WRITE_CALLS or (method in _WRITE_METHODS and name not in _READ_CALLS):
            write = True
        elif py.trusting and (
            name in _READ_CALLS
            or method in _READ_METHODS
            or name.startswith(("os.path.", "hashlib.", "datetime.", "math.", "time."))
        ):
            pass
        else:
            # (code that rebinds the names the analyser trusts: no call is what it says)
            unknown_call = True
    if found and (write or net or unknown_call or dynamic):
        # Files found at run time (glob, walk, listdir) or paths built from values the analyser
        # cannot fold: the code may copy, send or change any of them.
        c.emit(
            EffectKind.COPY,
            Location(raw=f"<files {what} finds>", path=None),
            written[0] if len(written) == 1 else Location(raw=f"<{what} output>", path=None),
            certain=False,
            note=f"{what}: code that writes or sends files uses paths it computes",
        )
    if write and opened:
        # `data = open(a).read(); open(b, 'w').write(data)`: what is read may be what is written
        for src in opened:
            for dst in written or [Location(raw=f"<{what} output>", path=None)]:
                if dst.path is not None and dst.path == src.path:
                    continue
                c.emit(
                    EffectKind.COPY,
                    src,
                    dst,
                    recursive=src.path is not None and c.st.run.isdir(src.path),
                    certain=False,
                    note=f"{what}: code reads this file and writes files",
                )
    # every existing path the code mentions may be what it sends, copies or deletes
    # (a path that only reaches `os.path.exists`, `getsize`, `Path(p).stat()`: not opened)
    named = [
        *(v for v in strings if not meta.get(v, False)),
        *(a.value for a in argv if a.known),
        *(v for k, v in py.consts.items() if not _meta_only_name(py, k)),
    ]
    literals = _existing_files(c, named)
    if write or unknown_call or dynamic:
        # ... and a new file it names may be one it creates
        for loc in _new_files(c, named):
            if loc.path not in covered:
                c.emit(
                    EffectKind.WRITE,
                    loc,
                    certain=False,
                    note=f"{what}: code that writes files names this new path",
                )
    seen = {loc.path for loc in literals}
    for f in argv:
        if not f.known:
            literals.append(Location(raw=f.raw, path=None))
    # data piped into the program is at its disposal like the files it names
    piped = [fl.src for fl in c.stdin if fl.src is not None and not fl.names]
    if piped and (net or write or unknown_call or dynamic):
        literals.extend(p for p in piped if p.path is None or p.path not in seen)
    if dynamic:
        c.unknown(f"{what}: runs dynamically built code")
    host = _url_host(strings)
    for loc in literals:
        if loc.path is not None and loc.path in covered and not net:
            continue
        rec = loc.path is not None and c.st.run.isdir(loc.path)
        if net:
            _sends(c, loc, what, host, rec)
        elif write:
            _writes(c, loc, what, rec)
        elif unknown_call or dynamic:
            c.unknown(
                f"{what}: code calls functions the analyser does not know, with this path", loc
            )
        else:
            c.emit(EffectKind.READ, loc, recursive=rec)
            reads.append(loc)
            opened.append(loc)
    if not literals and (unknown_call or net) and not dynamic:
        c.emit(EffectKind.EXEC, note=f"{what}")
    # what it prints may be what it read (unless only its digest or length reaches the
    # print), or what it was given on standard input
    through = _passed_through(c, {r.path for r in reads})
    if printing and opened:
        return (*(Flow(src=r, exact=False, via=c.name) for r in opened), *through)
    return (*through, OPAQUE)


_QUOTED = re.compile(r"'((?:[^'\\\n]|\\.){1,4096})'|\"((?:[^\"\\\n]|\\.){1,4096})\"")
_GEN_NET = re.compile(
    r"socket|IO::Socket|LWP|HTTP::|Net::|https?://|\bfetch\s*\(|"
    # node's network modules, however the code reaches them (require, import, import(),
    # process.getBuiltinModule), with or without the node: prefix
    r"(?:require|import|from|getBuiltinModule)\s*\(?\s*['\"`](?:node:)?(?:net|http|https|http2|dgram|tls)['\"`]|"
    r"open-uri|TCPSocket|UDPSocket|curl_|ftp_|fsockopen|stream_socket"
)
_GEN_WRITE = re.compile(
    r"(?m)open\s*\(?[^;\n]{0,256}?['\"]\s*(?:>|\+<|>>|\+>)|File::Copy|\bcopy\s*\(|\bmove\s*\(|\brename\b|\bsyswrite\b|"
    r"File\.(?:write|open\([^)]*['\"][wa])|FileUtils\.(?:cp|mv|copy|move|install|ln)|"
    r"\b(?:writeFile|copyFile|createWriteStream|appendFile|cpSync|renameSync|symlinkSync|linkSync)|"
    r"fs\.(?:rename|cp|symlink|link)\b|file_put_contents|"
    r"\bfwrite\b|IO\.copy_stream|\bprint\s+\{?\$?[A-Z][A-Z0-9_]*\}?\s|"
    # Lua, Tcl, R and SQLite: io.open(f, "w"), :write(, file copy, writeBin, writefile(...
    r"io\.open\s*\([^)]*['\"][wa]|io\.output|:write\s*\(|\bfile\s+(?:copy|rename|link)\b|"
    r"\bopen\s+\S+\s+['\"]?(?:w|a|wb|ab|RDWR|WRONLY)\b|\bputs\s+-nonewline\s+\$|\bputs\s+\$\w+\s|"
    r"\b(?:writeBin|writeLines|writeChar|saveRDS|file\.copy|file\.rename|file\.symlink)\s*\(|"
    r"\bwritefile\s*\(|(?i:\bvacuum\s+into)\b"
)
# Code that prints: what it read may come out on standard output.
_GEN_PRINT = re.compile(
    r"\bprint|\bputs\b|\becho\b|console\.log|process\.stdout|io\.write|\bcat\s*\(|"
    r"STDOUT|\bwriteLines\s*\(|\bselect\b"
)
# Anything that opens, copies, moves, links or changes a file, in any of the scanned languages.
# The lists above name the calls whose effect is known; code that matches this one and none of
# them still reaches files in a way the analyser does not model (``sysopen`` with numeric
# flags, a mode in a variable, ``fs.promises.cp``, Tcl's ``fcopy``), so what it does to every
# file it names is unknown.
_GEN_FILE_IO = re.compile(
    r"\bFile(?:Utils)?\.(?!(?:size|exists?|file|directory|mtime|basename|dirname|extname|join|"
    r"expand_path|absolute_path|stat|read|readlines|foreach)\b)|"
    r"\b(?:open|sysopen|fopen|fdopen|opendir|Files|IO|fs|io|Path|pathlib|"
    r"Deno|Bun|fcopy|chan|copy|cp|mv|move|rename|link|symlink|mkdir|chmod|chown|truncate|"
    r"utime|syscall|write\w*|append\w*|tmpfile|tempfile|readFile\w*|readdir\w*|glob|"
    r"file(?:_\w+)?)\b"
)
_GEN_DELETE = re.compile(
    r"\bunlink\b|rmtree|remove_tree|FileUtils\.rm|fs\.(?:unlink|rm|rmdir)|File\.delete|\brmdir\b|\bdelete\b"
)
_GEN_SHELL = re.compile(
    r"\bsystem\b|`|\bexec\b|\bqx\b|child_process|execSync|\bspawn|%x|shell_exec|passthru|popen"
    r"|\bos\.execute\b|\bsystem2\b|\bproc_open\b|\bOpen3\b"
)
_GEN_DYNAMIC = re.compile(
    r"\beval\b|decode_base64|\bunpack\b|\batob\b|base64_decode|Buffer\.from\([^)]*base64"
)


_INTERPOLATED = re.compile(r"[$@][A-Za-z_{]")


def _interpolates(code: str) -> bool:
    """A double-quoted string of the code that interpolates a variable (``"$dir/x"``), the
    strings paired from the left as the language reads them."""
    return any(
        m.group(2) is not None and _INTERPOLATED.search(m.group(2))
        for m in _QUOTED.finditer(code[: 1 << 20])
    )


def _literals(code: str) -> Iterator[str]:
    for m in _QUOTED.finditer(code):
        s = m.group(1) if m.group(1) is not None else m.group(2)
        yield s.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    # Tcl, Lua long strings, R and SQL scripts name files in bare words too: any word with a
    # slash is a candidate (only those that exist count, see _existing).
    for i, m in enumerate(_BARE_PATH.finditer(code)):
        if i >= 1000:
            break
        yield m.group()


_BARE_PATH = re.compile(r"[\w.~-]*/[\w./~-]+")


def mentioned_files(c: Cmd, code: str) -> list[Location]:
    """The existing files that ``code`` names in a string or a bare word with a slash."""
    return _existing_files(c, _literals(code[: 1 << 20]))


def _existing_files(c: Cmd, strings: Iterable[str]) -> list[Location]:
    """The existing files among ``strings``, each once, in the order first named."""
    found: dict[str, Location] = {}
    for s in strings:
        loc = _existing(c, s)
        if loc is not None and loc.path is not None:
            found.setdefault(loc.path, loc)
    return list(found.values())


# Code that builds text from pieces (concatenation, interpolation, join, sprintf, Tcl's [...]),
# or hands a variable to a call that writes, copies, deletes or runs: the path or command it
# uses is not among its literals.
_GEN_COMPUTED = re.compile(
    r"""["'`]\s*(?:\.\.?|\+)\s*[\w$@("'`]|[\w)\]}]\s*(?:\.\.?|\+)\s*["'`]|\$\{|#\{|"""
    r"""\bjoin\b|\bsprintf\b|\bcatfile\b|\bcatdir\b|"""
    r"""File\.join|path\.(?:join|resolve)|\bfile\.path\b|\bpaste0?\s*\(|"""
    r"""\[\s*(?:file|join|string|format|set|lindex|concat)\b|fromCharCode|\bchr\s*\(|"""
    # perl: a string turned round or built in steps, q{} strings joined by `.`
    r"""\breverse\b|\.=|\bq[qw]?\s*(?:\{[^}]*\}|\([^)]*\)|\[[^\]]*\]|<[^>]*>|([^\w\s])[^\n]*?\1)\s*\.|"""
    r"""\b(?:copy|move|rename|copyFileSync|copyFile|cpSync|renameSync|writeFileSync|writeFile|"""
    r"""appendFileSync|createWriteStream|symlinkSync|linkSync|file_put_contents|system|exec|"""
    r"""spawn|spawnSync|execSync|execFile|execFileSync|popen|passthru|shell_exec|proc_open|"""
    r"""unlink|rmtree|remove_tree)\s*\(\s*(?:[$@%]|[A-Za-z_][\w.]*\s*[,)])|"""
    r"""\bopen\s*\(?\s*(?:my\s+)?[$\w]+\s*,\s*["'][^"']*["']\s*,\s*[$@]"""
)
# Code that looks an API up by a name it builds (``m["cop"+"y"]``, ``require("f"+"s")``, Tcl's
# ``[...]`` or ``$cmd`` as the command, perl's ``&{"..."}`` and ``->$name``, ruby's ``send``,
# PHP's ``$f(...)``): which calls it makes, and so what it does to the files it names, is unknown.
_GEN_LOOKUP = re.compile(
    r"""[\w$)\]]\s*\[[^\]\n]*(?:["'`][^\]\n]*(?:\+|\.\.|\()|(?:\+|\.\.|\()[^\]\n]*["'`]|\$\{)|"""
    r"""\b(?:require|import)\s*\(\s*(?!(["'`])[^"'`\n]*\1\s*\))"""
)
_GEN_LOOKUP_BY_LANG: dict[str, re.Pattern[str]] = {
    "tclsh": re.compile(r"(?m)(?:^|;|\[)\s*[\[$]|\buplevel\b|\binterp\b"),
    "perl": re.compile(
        r"(?:^|[;{(=,]|\breturn)\s*&\s*[{$]|->\s*\$\w|->\s*can\b|\bcan\s*\(|"
        r"\*\s*\{\s*[\"'$]|::\$|\bgoto\s*&"
    ),
    "ruby": re.compile(
        r"(?<![\w])(?:send|public_send|__send__)\s*[(:\s]|\.method\s*[(:]|"
        r"\b(?:const_get|instance_eval|instance_variable_get)\b"
    ),
    "php": re.compile(
        r"\$\w+\s*\(|->\s*\$\w|::\$\w|\bcall_user_func(?:_array)?\b|\{\s*\$\w+\s*\}\s*\("
    ),
    "lua": re.compile(r"\b_(?:G|ENV)\b|\bload(?:string)?\s*\("),
    # node reaches modules and code without require/import too: built-in modules by a name
    # (getBuiltinModule, binding, the module loader), the Function constructor, the global
    # object by a computed key
    "node": re.compile(
        r"\bprocess\s*\.\s*(?:getBuiltinModule|binding|_linkedBinding|dlopen|mainModule)\b|"
        r"\bmodule\s*\.\s*(?:require|constructor|children|parent)\b|\b_load\b|"
        r"\bcreateRequire\b|\brequire\s*\.\s*(?:cache|main)\b|\bFunction\s*\(|"
        r"\.\s*constructor\b|\bglobal(?:This)?\s*\[|\bReflect\s*\.|\beval\b|\bvm\b"
    ),
}
for _alias in ("nodejs", "bun", "deno"):
    _GEN_LOOKUP_BY_LANG[_alias] = _GEN_LOOKUP_BY_LANG["node"]
# A quoted path that only a metadata call takes (whether it is there, its size, its type):
# what stands before its opening quote.
_GEN_META = re.compile(
    r"(?:\b(?:existsSync|exists|statSync|lstatSync|stat|lstat|accessSync|access|file_exists|"
    r"filesize|filemtime|is_file|is_dir|is_link|exist\?|exists\?|file\?|directory\?|"
    r"File\.size\??|File\.mtime)\s*\(\s*|\bFile\.(?:size\??|exists?\?|file\?|directory\?)\s+)$"
)
# The code binding one of those names itself (``sub file_exists {...}``, ``function
# existsSync(p)``, ``fs.existsSync = ...``, ``*filesize = \\&copy``, ``{cpSync: statSync}``,
# ``def File.size``): a call of that name may then be anything.
_GEN_META_NAMES = (
    r"(?:existsSync|exists|statSync|stat|lstatSync|lstat|accessSync|access|file_exists|"
    r"filesize|filemtime|is_file|is_dir|is_link|exist|file|directory|size|mtime)\b"
)
_GEN_META_BOUND = re.compile(
    r"(?:\b(?:sub|function|def|proc|let|var|const|my|our|local|as|alias(?:_method)?)\s*\(?"
    r"\s*:?\s*(?:[\w$]+\s*(?:\.|::|->)\s*)*\*?|\*\s*(?:\w+::)*|\\?&\s*|[{,]\s*[\w$]+\s*:\s*)"
    + _GEN_META_NAMES
    + r"|(?<![$@%\w])"
    + _GEN_META_NAMES
    + r"[?!]?\s*(?:=(?![=~>])|[-+*/.|&]=|=>\s*(?!['\"]))|"
    r"\bfunction\b[^(){}]*\([^)]*\b"
    + _GEN_META_NAMES
    + r"|\(\s*(?:[\w$]+\s*,\s*)*"
    + _GEN_META_NAMES
    + r"\s*[,)]\s*=>"
)
_PERL_FILETEST = re.compile(r"(?<![\w$@%&-])-[edfszlrwxoRWXOpSbcugkTBMAC]\s*\(?\s*$")
# node's file system module, and the calls of it that only read or look at metadata.
_NODE_FS = re.compile(
    r"""\b(?:require|import)\s*\(\s*(["'`])(?:node:)?fs(?:/promises)?\1\s*\)"""
    # import() gives a promise of the module: the function given to then() takes it
    r"""(?:\s*\.\s*then\s*\(\s*(?:async\s+)?(?:\(\s*(?P<param>[\w$]+)\s*\)|(?P<bare>[\w$]+))\s*=>)?"""
)
# Anything by which node code reaches a module: every one must be a use of fs, or load a
# project file (which is read and analysed itself, see :func:`load_spec`).
_NODE_MODULE_USE = re.compile(
    r"\b(?:require|import|getBuiltinModule|binding|_load)\b|\bmodule\s*\.\s*(?!exports\b)"
)
_NODE_PROJECT_FILE = re.compile(
    r"""\b(?:require|import)\s*\(\s*(["'`])\.{0,2}/[^"'`\n]*\1\s*\)|"""
    r"""\bimport\s+(?:[^;'"`]*?\bfrom\s+)?(["'`])\.{0,2}/[^"'`\n]*\2"""
)
_NODE_FS_IMPORT = re.compile(
    r"""\bimport\s+(?:\*\s+as\s+(?P<alias>[\w$]+)|(?P<default>[\w$]+)|\{(?P<names>[^}]*)\})"""
    r"""\s+from\s+(["'])(?:node:)?fs(?:/promises)?\4"""
)
_NODE_FS_STRING = re.compile(r"""(["'`])(?:node:)?fs(?:/promises)?\1""")
_NODE_READS = names(
    "readFileSync readFile existsSync exists statSync stat lstatSync lstat fstatSync fstat "
    "readdirSync readdir opendirSync opendir accessSync access realpathSync realpath "
    "readlinkSync readlink createReadStream watch watchFile unwatchFile constants"
)
_NODE_MEMBER = re.compile(r"\s*\.\s*(?:promises\s*\.\s*)?([\w$]+)")


def _node_reads_only(code: str) -> bool:
    """Whether node code uses its file system module only to read and look at files, and
    reaches no other module: each ``require("fs")`` (``import ... from "fs"``, ``import("fs")``
    with a literal name) is followed by a reading call, or bound to a name (destructured into
    names, the parameter of the ``then`` callback) only ever used for reading calls."""
    aliases: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _NODE_FS.finditer(code):
        param = m.group("param") or m.group("bare")
        if param is not None:
            aliases.append(param)
            spans.append((m.start(), m.end()))
            continue
        if m.group().lstrip().startswith("import"):
            decl_at = m.start()
            before = re.search(r"\bawait\s*$", code[: m.start()])
            if before is not None:
                decl_at = before.start()
        else:
            decl_at = m.start()
        after = _NODE_MEMBER.match(code, m.end())
        if after is not None and not m.group().startswith("import"):
            if after.group(1) not in _NODE_READS:
                return False
            spans.append((m.start(), m.end()))
            continue
        decl = re.search(r"\b(?:const|let|var)\s+(?:([\w$]+)|\{([^}]*)\})\s*=\s*$", code[:decl_at])
        if decl is None:
            return False
        if decl.group(1) is not None:
            aliases.append(decl.group(1))
        elif not _node_read_names(decl.group(2), ":"):
            return False
        spans.append((decl.start(), m.end()))
    for m in _NODE_FS_IMPORT.finditer(code):
        if m.group("names") is not None and not _node_read_names(m.group("names"), " as "):
            return False
        aliases.extend(a for a in (m.group("alias"), m.group("default")) if a is not None)
        spans.append((m.start(), m.end()))
    # no other mention of the module (passed on, imported another way), and no other
    # module reached at all (one may hand out fs, or write files itself)
    spans.extend((m.start(), m.end()) for m in _NODE_PROJECT_FILE.finditer(code))
    for m in (*_NODE_FS_STRING.finditer(code), *_NODE_MODULE_USE.finditer(code)):
        if not any(a <= m.start() < b for a, b in spans):
            return False
    for alias in aliases:
        for m in re.finditer(rf"(?<![\w$.]){re.escape(alias)}(?![\w$])", code):
            if any(a <= m.start() < b for a, b in spans):
                continue
            after = _NODE_MEMBER.match(code, m.end())
            if after is None or after.group(1) not in _NODE_READS:
                return False
    return True


def _node_read_names(names_text: str, rename: str) -> bool:
    """Names destructured from the module (``{readFileSync: r, statSync}``) all read."""
    parts = [p.split(rename)[0].strip() for p in names_text.split(",") if p.strip()]
    return all(p in _NODE_READS for p in parts)


def _meta_only_strings(code: str, lang: str) -> set[str]:
    """Quoted strings of the code that every time they appear are taken only by a metadata
    call (``existsSync("p")``, perl's ``-s "p"``, ``File.exist?("p")``)."""
    counts: dict[str, int] = {}
    text = code[: 1 << 20]
    # a metadata name the code binds itself: no call of it is trusted (perl's file tests
    # are operators, which code cannot redefine)
    named = not _GEN_META_BOUND.search(text)
    for m in _QUOTED.finditer(text):
        s = m.group(1) if m.group(1) is not None else m.group(2)
        before = text[max(0, m.start() - 48) : m.start()]
        meta = (named and bool(_GEN_META.search(before))) or (
            lang == "perl" and bool(_PERL_FILETEST.search(before))
        )
        counts[s] = counts.get(s, 0) + 1 if meta else -(1 << 30)
    # the text nowhere else in the code (a bare word, another string holding it)
    return {s for s, n in counts.items() if n > 0 and text.count(s) == n}


# Code that starts work which outlives the call.
_GEN_DETACH = re.compile(
    r"\bfork\s*\(|\bsetsid\b|detached\s*:\s*true|\.unref\s*\(|Process\.(?:daemon|detach)\b|"
    r"\bpcntl_fork\b|\bdaemonize\b"
)
# How each scanned language loads another file of code: the words that do it.
_LOADERS: dict[str, tuple[str, ...]] = {
    "perl": ("do", "require"),
    "ruby": ("require_relative", "require", "load"),
    "node": ("require", "import", "from"),
    "php": ("include", "include_once", "require", "require_once"),
    "lua": ("dofile", "loadfile", "require"),
    "tclsh": ("source",),
    "Rscript": ("source", "sys.source"),
}
_LOADERS["nodejs"] = _LOADERS["bun"] = _LOADERS["deno"] = _LOADERS["node"]
_EXTENSIONS = {
    "perl": (".pl", ".pm"),
    "ruby": (".rb",),
    "node": (".js", ".cjs", ".mjs", "/index.js"),
    "php": (".php",),
    "lua": (".lua", "/init.lua"),
    "tclsh": (".tcl",),
    "Rscript": (".R", ".r"),
}
_LOADER_RE: dict[str, re.Pattern[str]] = {}


def _loader_re(lang: str) -> re.Pattern[str] | None:
    words = _LOADERS.get(lang)
    if words is None:
        return None
    pattern = _LOADER_RE.get(lang)
    if pattern is None:
        alts = "|".join(re.escape(w) for w in words)
        # require("x") / do "x" / source x; a computed name: require(x + y), do $f, require $x
        bare = r"|(?P<bare>[^\s;\]\[\"'{}$]+)" if lang == "tclsh" else ""
        pattern = re.compile(
            rf"(?<![\w.$])(?P<verb>{alts})\b(?:(?P<paren>\s*\(\s*)|\s+)"
            r"""(?:(?P<q>["'`])(?P<spec>(?:(?!(?P=q))[^\\\n]|\\.){1,4096})(?P=q)"""
            rf"""|(?P<computed>[$@]|(?(paren)[^"'`\s)]|(?!))){bare})"""
        )
        _LOADER_RE[lang] = pattern
    return pattern


# sqlite3's dot-commands, and the words after: a command is a line that starts with a dot
# (sqlite3 itself takes it only at the start of the line; leading blanks are allowed here).
_SQLITE_DOT = re.compile(r"^[ \t]*\.(\S*)(.*)$")
# The dot-commands that reach files or programs, each with the fewest letters sqlite3 takes for
# it: any prefix at least that long names it, and a word names at most one command here
# (measured on sqlite3 3.40: ``.o`` is ``.output``, ``.on`` ``.once``, ``.c`` ``.clone``,
# ``.t`` ``.trace``, ``.l`` and ``.lo`` ``.load``, ``.sa`` nothing; ``.log``, ``.excel`` and
# ``.testcase`` only in full). Names are case-sensitive (``.O`` is no command).
_SQLITE_COMMANDS: tuple[tuple[str, int], ...] = (
    ("output", 1),
    ("once", 2),
    ("open", 2),
    ("save", 3),
    ("backup", 3),
    ("clone", 1),
    ("trace", 1),
    ("log", 3),
    ("testcase", 8),
    ("dump", 1),
    ("excel", 5),
    ("shell", 2),
    ("system", 2),
    ("import", 1),
    ("read", 3),
    ("restore", 3),
    ("load", 1),
    ("archive", 2),
    ("session", 3),
    ("cd", 2),
)
# A file argument that starts with ``|``: a command sqlite3 opens as a pipe.
# SQL functions of the sqlite3 shell that run a program or load native code.
_SQLITE_RUNNING_SQL = re.compile(r"(?i)\b(?:load_extension|edit)\s*\(")
# An argument of a dot-command: a quoted word (sqlite3 resolves backslashes in double quotes)
# or a run of non-blanks.
_SQLITE_ARG = re.compile(r"""'([^']*)'?|"((?:[^"\\]|\\.)*)"?|(\S+)""")
# Names sqlite3's output commands take as a stream rather than a file.
_SQLITE_STREAMS = frozenset({"stdout", "stderr", "off"})
# A SELECT of literal values only: in sqlite3's default list mode it prints them joined by
# ``|`` on one line, the text known before it runs.
_SQL_LITERAL = r"'(?:[^']|'')*'|-?\d{1,15}"
_SQL_SELECT_LITERALS = re.compile(
    rf"(?is)\s*select\s+((?:{_SQL_LITERAL})(?:\s*,\s*(?:{_SQL_LITERAL}))*)\s*"
)
# SQL statements that print nothing (unless they return rows).
_SQL_QUIET = re.compile(
    r"(?is)\s*(?:create|insert|update|delete|drop|begin|commit|end|rollback|savepoint|"
    r"release|alter|analyze|reindex|replace)\b(?!.*\breturning\b)"
)


def sqlite_command(word: str) -> str | None:
    """The dot-command of :data:`_SQLITE_COMMANDS` that sqlite3 runs for ``.word``, if any."""
    for name, least in _SQLITE_COMMANDS:
        if len(word) >= least and name.startswith(word):
            return name
    return None


def _sqlite_args(rest: str) -> list[str | None]:
    """A dot-command's arguments as sqlite3 splits them; ``None`` for one whose text the
    analyser does not know (a double-quoted word with backslash escapes)."""
    out: list[str | None] = []
    for m in _SQLITE_ARG.finditer(rest):
        single, double, bare = m.groups()
        if double is not None:
            out.append(None if "\\" in double else double)
        else:
            out.append(single if single is not None else bare)
    return out


def _sql_statements(text: str) -> list[str]:
    """SQL ``text`` cut at the semicolons outside quotes, blank statements left out."""
    out: list[str] = []
    start = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`[":
            quote = "]" if ch == "[" else ch
        elif ch == ";":
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [s for s in out if s.strip()]


def _sql_output(statement: str) -> str | None:
    """What one SQL statement prints in sqlite3's default mode: ``""`` for a statement that
    prints nothing, the text for a SELECT of literals, ``None`` when it cannot be known."""
    if _SQL_QUIET.match(statement):
        return ""
    m = _SQL_SELECT_LITERALS.fullmatch(statement)
    if m is None:
        return None
    values = re.findall(_SQL_LITERAL, m.group(1))
    return "|".join(v[1:-1].replace("''", "'") if v.startswith("'") else v for v in values) + "\n"


class _SqliteOutput:
    """Where sqlite3's output goes while a script runs, and the text sent there so far
    (``None``: text the analyser cannot know)."""

    def __init__(self, c: Cmd, what: str, sources: list[Location]) -> None:
        self.c = c
        self.what = what
        self.sources = sources
        self.target: Location | None = None
        self.text: str | None = ""
        self.once = False
        self.units = 0
        # a command that may change how rows print (``.mode``, ``.separator``, ``.headers``,
        # ``.nullvalue``, a ``.read`` file) ran: a SELECT's text is no longer known
        self.formatted = False

    def switch(self, target: Location | None, *, once: bool = False, known: bool = True) -> None:
        """Output goes to ``target`` from now on (``None``: standard output)."""
        self.flush()
        self.target, self.once, self.units = target, once, 0
        self.text = "" if known and not self.formatted else None

    def add(self, text: str | None) -> None:
        """One statement or command printed ``text``."""
        if self.target is None or text == "":
            return
        self.units += 1
        if self.once and self.units > 1:
            # ``.once`` sends one statement there: which one, when argv and lines differ
            # in how sqlite3 counts, is not known
            self.text = None
        self.text = None if self.text is None or text is None else self.text + text

    def flush(self) -> None:
        """The file that took the output is written with it."""
        if self.target is not None:
            write_data(self.c, self.target, self.text, self.sources, self.what)
        self.target = None


def write_data(c: Cmd, loc: Location, text: str | None, sources: list[Location], what: str) -> None:
    """sqlite3 writes ``loc``: with ``text`` when known, else with data that may come from
    any of ``sources`` (the files its SQL names) or from the database."""
    if text is not None:
        c.write_to(loc, (Flow(text=text, via=c.name),) if text else ())
        return
    flows = tuple(Flow(src=s, exact=False, via=c.name) for s in sources if s.path != loc.path)
    c.write_to(loc, (*flows, OPAQUE))


def sqlite_commands(code: str) -> Iterator[tuple[str | None, list[str | None]]]:
    """sqlite3's dot-commands in ``code``, in order: each as the command of
    :data:`_SQLITE_COMMANDS` it names (``None``: another one) and its arguments."""
    for line in code[: 1 << 20].split("\n"):
        m = _SQLITE_DOT.match(line)
        if m is not None:
            yield sqlite_command(m.group(1)), _sqlite_args(m.group(2))


def _sqlite_script(c: Cmd, code: str, what: str, depth: int = 0) -> None:
    """What sqlite3's own dot-commands do, in order (see :data:`_SQLITE_COMMANDS`).

    ``.output``/``.once``/``.testcase`` send the output of what follows to a file (a SELECT of
    literals is known text while the output format is sqlite3's default, anything else is
    not: after ``.mode``, ``.separator``, ``.headers`` or any command this does not model); ``.save``, ``.backup``, ``.clone``,
    ``.trace``, ``.log``, ``.session ... changeset`` and ``.open --new`` write a file with
    data the analyser does not see; ``.shell``/``.system`` and ``|CMD`` files hand a command
    to the system shell; ``-e``, ``-x`` and ``.excel`` start the system's editor or
    spreadsheet; ``.load`` and ``load_extension()`` load native code, ``edit()`` starts an
    editor; ``.cd`` moves every later relative path and ``.archive`` may extract files;
    ``.read FILE`` runs the commands in that file (read like these, ``depth`` files deep).

    A command given to the shell is analysed, and is also unseen: sqlite3 splits and quotes
    its words its own way, so the text the shell runs is not exactly what was read.
    """
    code = code[: 1 << 20]
    sources = mentioned_files(c, code)
    out = _SqliteOutput(c, what, sources)
    sql: list[str] = []

    def statements() -> None:
        for s in _sql_statements("\n".join(sql)):
            out.add(_sql_output(s))
        sql.clear()

    for line in code.split("\n"):
        m = _SQLITE_DOT.match(line)
        if m is None:
            sql.append(line)
            continue
        statements()
        word, rest = m.group(1), m.group(2)
        name = sqlite_command(word)
        args = _sqlite_args(rest)
        label = f"{what} .{word}"
        if name in ("shell", "system"):
            _sqlite_shell(c, rest, label)
            out.add(None)
        elif name in ("output", "once", "import", "read") and any(
            a is not None and a.startswith("|") for a in args
        ):
            for a in args:
                if a is not None and a.startswith("|"):
                    _sqlite_shell(c, a[1:], f"{label} |")
            if name in ("output", "once"):
                out.switch(None)
        elif name in ("output", "once", "excel"):
            if name == "excel" or "-e" in args or "-x" in args:
                c.unseen(f"{label} opens its output in the system's editor or spreadsheet")
                out.switch(None)
                continue
            files = [a for a in args if a is None or not a.startswith("-")]
            target = files[-1] if files else None
            if target is None and files:
                c.unknown(f"{label}: output to a file the analyser cannot name")
                out.switch(None)
            elif target is None or target in _SQLITE_STREAMS:
                out.switch(None)
            else:
                # ``--bom`` puts three bytes before the text
                out.switch(c.st.local(target), once=name == "once", known="--bom" not in args)
        elif name == "read":
            _sqlite_read(c, args, label, depth)
            out.formatted = True
            out.add(None)
        elif name == "testcase":
            out.switch(c.st.local("testcase-out.txt"))
        elif name in ("save", "backup", "clone", "trace", "log", "open", "session"):
            _sqlite_writes(c, name, args, label, sources)
            out.add(None)
        elif name == "load":
            c.unseen(f"{label} loads an extension library (native code)")
        elif name == "cd":
            c.unknown(f"{label}: later relative paths are not where they look")
        elif name == "archive":
            c.unknown(f"{label}: an SQL archive may create or extract files")
        else:
            # any other command may print (``.dump``, ``.schema``, ``.print``) or change how
            # what follows is printed (``.mode``, ``.headers``), here or in a later file
            out.formatted = True
            out.add(None)
    statements()
    out.flush()
    if _SQLITE_RUNNING_SQL.search(code):
        c.unseen(f"{what}: SQL that loads native code or starts an editor")


def _sqlite_read(c: Cmd, args: list[str | None], label: str, depth: int) -> None:
    """``.read FILE``: the file's SQL and commands run as if they stood here (scanned like
    any sqlite3 script, ``depth`` files deep)."""
    if not args:
        return
    loc = None if args[0] is None else c.st.local(args[0])
    text = None if loc is None or depth >= 8 else c.st.run.read_text(loc)
    if text is None:
        c.unseen(f"{label} runs commands from a file the analyser cannot read", loc)
        return
    inspect_code(c, text, [], what=label, lang="sqlite3", depth=depth + 1)


def _sqlite_writes(
    c: Cmd, name: str, args: list[str | None], label: str, sources: list[Location]
) -> None:
    """A dot-command that writes the file its last argument names (``.save FILE``,
    ``.backup ?DB? FILE``, ``.clone NEWDB``, ``.trace FILE``, ``.log FILE``, ``.session ...
    changeset|patchset FILE``, ``.open --new FILE``) with data the analyser does not know."""
    files = [a for a in args if a is None or not a.startswith("-")]
    if name == "open" and "--new" not in args:
        return
    if name == "session" and not any(a in ("changeset", "patchset") for a in files):
        return
    if not files or (name in ("trace", "log") and files[-1] in _SQLITE_STREAMS):
        return
    target = files[-1]
    if target is None:
        c.unknown(f"{label} writes a file the analyser cannot name")
        return
    write_data(c, c.st.local(target), None, sources, label)


def _sqlite_shell(c: Cmd, text: str, what: str) -> None:
    """A command sqlite3 hands to the system shell: analysed, and unseen (see above)."""
    _run_shell(c, text, what)
    c.unseen(f"{what} runs a command in the system shell ({short(text.strip())})")


def _code_loads(c: Cmd, code: str, lang: str, *, what: str, base: str, depth: int) -> None:
    """Files of code the scanned ``code`` loads (``require "./x.js"``, ``do "./x.pl"``,
    ``source x.tcl``): read and analysed like it; one named by a computed value is unseen."""
    pattern = _loader_re(lang)
    if pattern is None:
        return
    for i, m in enumerate(pattern.finditer(code[: 1 << 20])):
        if i >= 64:
            c.unseen(f"{what}: loads more files than the analyser reads")
            return
        spec = m.group("spec") or m.groupdict().get("bare")
        if spec is None or "${" in spec or "#{" in spec:
            c.unseen(f"{what}: loads code from a file the analyser cannot name")
            continue
        module = lang == "lua" and m.group("verb") == "require"
        load_spec(c, spec, lang, what=what, base=base, depth=depth, module=module)


def load_spec(
    c: Cmd, spec: str, lang: str, *, what: str, base: str, depth: int, module: bool = False
) -> None:
    """Analyse the file that a ``require``/``-r`` argument names when it is a file of the
    project: a path (with the language's extensions), or for lua a module name (``module``)
    found from ``base``. A package name (node's, ruby's gems) names an installed library,
    which is not read, as Python's site-packages are not."""
    if lang in ("nodejs", "bun", "deno"):
        lang = "node"
    exts = _EXTENSIONS.get(lang, ())
    pathlike = spec.startswith(("./", "../", "/", "~"))
    if lang == "node" and not pathlike:
        return
    if module and not pathlike:
        spec = spec.replace(".", "/")
    raw = spec if spec.startswith(("/", "~")) else os.path.join(base, spec)
    if raw.startswith("~") and c.st.home is not None:
        raw = c.st.home + raw[1:]
    for candidate in (raw, *(raw + e for e in exts)):
        if load_file(c, candidate, lang, what=what, depth=depth):
            return


def inspect_code(
    c: Cmd,
    code: str,
    argv: list[Field],
    *,
    what: str,
    lang: str | None = None,
    base: str = "",
    depth: int = 0,
) -> tuple[Flow, ...]:
    """Effects of code in a language the analyser only scans (perl, ruby, node, php...).

    ``lang`` names the language (by default the command's name); ``base`` and ``depth`` are
    as for :func:`inspect_python`: files the code loads are looked for from ``base``.
    """
    language = lang or os.path.basename(c.name)
    node = language in ("node", "nodejs", "bun", "deno")
    # a path only asked about (existsSync, -s) is not opened: not among the files it names
    asked = _meta_only_strings(code, language)
    strings = [s for s in _literals(code[: 1 << 20]) if s not in asked]
    net = bool(_GEN_NET.search(code))
    write = bool(_GEN_WRITE.search(code))
    delete = bool(_GEN_DELETE.search(code))
    shell = bool(_GEN_SHELL.search(code))
    dynamic = bool(_GEN_DYNAMIC.search(code))
    by_lang = _GEN_LOOKUP_BY_LANG.get(language)
    lookup = bool(_GEN_LOOKUP.search(code) or (by_lang is not None and by_lang.search(code)))
    _code_loads(c, code, language, what=what, base=base, depth=depth)
    if language in ("sqlite3", "sqlite"):
        _sqlite_script(c, code, what, depth)
    computed = (net or write or delete or shell or lookup) and (
        bool(_GEN_COMPUTED.search(code)) or _interpolates(code)
    )
    if _GEN_DETACH.search(code):
        c.unseen(f"{what}: starts work that outlives the call")
    if shell:
        ran = False
        for s in strings:
            head = s.split(" ", 1)[0]
            if head and (head in TABLE or "/" in head) and " " in s:
                _run_shell(c, s, f"{what} command")
                ran = True
        if not ran or computed:
            c.unseen(f"{what}: runs commands the analyser cannot see")
    if dynamic:
        c.unknown(f"{what}: runs dynamically built code")
    if computed and (net or write or delete or lookup):
        c.unknown(f"{what}: code that changes or sends files computes the paths it uses")
    literals = _existing_files(c, [*strings, *(a.value for a in argv if a.known)])
    seen = {loc.path for loc in literals}
    literals.extend(Location(raw=f.raw, path=None) for f in argv if not f.known)
    piped = [fl.src for fl in c.stdin if fl.src is not None and not fl.names]
    if piped and (net or write or delete or shell or dynamic):
        literals.extend(p for p in piped if p.path is None or p.path not in seen)
    host = _url_host(strings)
    # node's reading calls (readFileSync, statSync...) are reads; any other use of its file
    # system module, or of another file API, is not modelled
    io = (
        any(
            not (node and m.group() in ("fs", *_NODE_READS))
            for m in _GEN_FILE_IO.finditer(code[: 1 << 20])
        )
        or (node and not _node_reads_only(code[: 1 << 20]))
        or lookup
    )
    if io or write or delete:
        _unmodelled_io(c, strings, argv, literals, what=what, told=net or write or delete)
    for loc in literals:
        rec = loc.path is not None and c.st.run.isdir(loc.path)
        if net:
            _sends(c, loc, what, host, rec)
        if write:
            _writes(c, loc, what, rec)
        if delete:
            c.emit(
                EffectKind.DELETE,
                loc,
                recursive=rec,
                certain=False,
                note=f"{what}: code that deletes files mentions this path",
            )
        if not (net or write or delete):
            if shell or dynamic:
                c.unknown(f"{what}: code mentions this path", loc)
            else:
                c.emit(EffectKind.READ, loc, recursive=rec)
    if not literals and not (shell or dynamic):
        c.emit(EffectKind.EXEC, note=what)
    # The analyser cannot follow data inside the code: a file it reads may be what it prints,
    # and so may its standard input.
    read = [loc for loc in literals if loc.path is not None]
    flows = (
        [Flow(src=loc, exact=False, via=c.name) for loc in read] if _GEN_PRINT.search(code) else []
    )
    flows.extend(_passed_through(c, {loc.path for loc in read}))
    # ... and whatever else it prints, which the analyser cannot see.
    return (*flows, OPAQUE)


def _passed_through(c: Cmd, seen: set[str | None]) -> list[Flow]:
    """What an interpreter reads on standard input may come out on its standard output: the
    analyser cannot follow data through code (``print <STDIN>``, ``stdin.pipe(stdout)``)."""
    return [
        Flow(src=fl.src, exact=False, via=c.name)
        for fl in c.stdin
        if fl.src is not None and not fl.names and (fl.src.path is None or fl.src.path not in seen)
    ]


def _unmodelled_io(
    c: Cmd,
    strings: list[str],
    argv: list[Field],
    literals: list[Location],
    *,
    what: str,
    told: bool,
) -> None:
    """Scanned code that opens or changes files: every file it names may be written, copied
    or changed by calls the analyser does not model, a new path it names may be created, and
    with no path named at all the files it uses are computed (``told``: a write, send or
    delete call the analyser knows was seen, and already judged every named file)."""
    named = [*strings, *(a.value for a in argv if a.known)]
    new = _new_files(c, named)
    for loc in new:
        c.emit(
            EffectKind.WRITE,
            loc,
            certain=False,
            note=f"{what}: code that opens files names this new path",
        )
    if not told:
        for loc in literals:
            c.unknown(f"{what}: code that opens files names this path", loc)
    if not literals and not new:
        c.emit(
            EffectKind.WRITE,
            Location(raw=f"<a path {what} computes>", path=None),
            certain=False,
            note=f"{what}: code opens files it names by computed values",
        )
