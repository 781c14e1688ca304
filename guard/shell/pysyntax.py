"""Reading a Python syntax tree: constants folded through simple assignments and path
joins, call names through imports and aliases, which calls are trusted by name (and whether
the code rebinds them), values followed from a read to where they go (only a digest or a
length is not a copy), paths only asked about, literal globs, open modes, and the command
text of process-starting calls. :func:`guard.shell.code.inspect_python` uses it.
"""

from __future__ import annotations

import ast
import os
import shlex

from guard.shell.codeio import (
    run_shell,
)
from guard.shell.core import Cmd
from guard.shell.globs import glob
from guard.shell.record import MAX_GLOBS, MAX_TEXT
from guard.shell.words import names

NET_MODULES = names(
    "socket requests urllib urllib2 urllib3 http httpx ftplib paramiko smtplib aiohttp "
    "telnetlib xmlrpc websocket websockets pysftp scp fabric asyncssh boto3 botocore ssl "
    "poplib imaplib pycurl grpc zmq socketserver tftpy smbclient smbprotocol"
)


COPY_CALLS = names(
    "shutil.copy shutil.copy2 shutil.copyfile shutil.copytree os.link distutils.file_util.copy_file"
)


MOVE_CALLS = names("shutil.move os.rename os.replace os.renames")


DELETE_CALLS = names("os.remove os.unlink os.rmdir os.removedirs shutil.rmtree")


SHELL_CALLS = names(
    "os.system os.popen subprocess.run subprocess.call subprocess.check_call "
    "subprocess.check_output subprocess.Popen subprocess.getoutput subprocess.getstatusoutput "
    "os.execv os.execvp os.execvpe os.execl os.execlp os.spawnl os.spawnlp os.spawnv "
    "os.spawnvp os.posix_spawn os.posix_spawnp pty.spawn commands.getoutput "
    "asyncio.create_subprocess_shell asyncio.create_subprocess_exec"
)


WRITE_CALLS = names(
    "shutil.make_archive shutil.copyfileobj tarfile.open zipfile.ZipFile gzip.open bz2.open "
    "lzma.open os.write os.truncate os.chmod os.chown os.symlink os.makedirs os.mkdir os.utime"
    " pickle.dump json.dump yaml.dump yaml.safe_dump numpy.save torch.save "
    "safetensors.torch.save_file os.open os.sendfile os.copy_file_range "
    "tempfile.NamedTemporaryFile fileinput.input"
)


WRITE_METHODS = names(
    "write write_text write_bytes writelines symlink_to hardlink_to link_to rename replace "
    "touch chmod mkdir dump save extractall extract add writestr sendall send sendfile put "
    "upload upload_file copy copy2 copyfile copytree move"
)


DELETE_METHODS = names("unlink rmdir rmtree remove")


DYNAMIC = names(
    "exec eval compile __import__ importlib.import_module getattr setattr globals locals vars "
    "marshal.loads pickle.loads codecs.decode"
)


READ_CALLS = names(
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


READ_METHODS = names(
    "read read_text read_bytes readline readlines hexdigest digest update exists is_file "
    "is_dir stat iterdir glob rglob split rsplit strip lstrip rstrip join format items keys "
    "values get load loads lower upper startswith endswith encode decode close seek tell "
    "append extend count index find replace_str splitlines resolve absolute relative_to "
    "with_suffix with_name lstat is_symlink samefile match group groups fetchall keys copy_ "
    "sort reverse pop insert isdigit isalpha zfill ljust rjust center most_common "
    "total_seconds isoformat strftime flush fileno tolist mean sum round"
)


def dotted_name(node: ast.AST, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value, aliases)
        return f"{base}.{node.attr}" if base is not None else None
    if isinstance(node, ast.Call):
        inner = dotted_name(node.func, aliases)
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


class Py:
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
        # tracking below (`only_reduced`, `meta_only`, `paths_named`) follows data only through these.
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
            base = dotted_name(node.value, self.aliases)
            if (
                base == "sys.argv"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, int)
            ):
                k = node.slice.value
                return self.argv[k] if 0 <= k < len(self.argv) else None
            return None
        if isinstance(node, ast.Call) and self.trusting:
            name = dotted_name(node.func, self.aliases)
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


def _call_of(py: Py, node: ast.AST) -> ast.Call | None:
    """The call ``node`` (an attribute) is the function of, if any: ``x.m`` in ``x.m()``."""
    call = py.parents.get(node)
    return call if isinstance(call, ast.Call) and call.func is node else None


def _bound_name(py: Py, node: ast.AST) -> str | None:
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


def _is_hash(py: Py, node: ast.AST) -> bool:
    """``node`` is a name bound once to a ``hashlib`` object (``h = hashlib.sha256()``)."""
    if not isinstance(node, ast.Name):
        return False
    value = py.values.get(node.id)
    if not isinstance(value, ast.Call):
        return False
    return (dotted_name(value.func, py.aliases) or "").startswith("hashlib.")


def only_reduced(py: Py, node: ast.AST, depth: int = 0) -> bool:
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
            return only_reduced(py, call, depth + 1)
        return parent.attr == "close"
    if isinstance(parent, ast.Call) and any(a is node for a in parent.args):
        name = dotted_name(parent.func, py.aliases) or ""
        if name in _REDUCING_CALLS or name.startswith("hashlib."):
            return True
        func = parent.func
        return (
            isinstance(func, ast.Attribute) and func.attr == "update" and _is_hash(py, func.value)
        )
    bound = _bound_name(py, node)
    if bound is not None:
        uses = py.loads.get(bound, [])
        return bool(uses) and all(only_reduced(py, u, depth + 1) for u in uses)
    return False


def meta_only(py: Py, node: ast.AST, depth: int = 0) -> bool:
    """Whether a path (a string literal, or a value built from it) reaches only calls that
    look at the file's metadata (``os.path.exists``, ``Path(p).stat()``): through spellings
    of the path (``Path(p)``, ``str(p)``) and names bound once, every use of it."""
    if depth > _MAX_TRACK or not py.trusting:
        return False
    parent = py.parents.get(node)
    if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
        name = dotted_name(parent.func, py.aliases) or ""
        if name in _META_CALLS:
            return True
        if name in _PATH_SPELLINGS and len(parent.args) == 1 and not parent.keywords:
            return meta_only(py, parent, depth + 1)
        return False
    if isinstance(parent, ast.Attribute) and parent.value is node:
        return parent.attr in _META_METHODS and _call_of(py, parent) is not None
    bound = _bound_name(py, node)
    if bound is not None:
        uses = py.loads.get(bound, [])
        return bool(uses) and all(meta_only(py, u, depth + 1) for u in uses)
    return False


def meta_only_name(py: Py, name: str) -> bool:
    """A name bound once whose every use only asks for a file's metadata."""
    if py.untracked or name in py.class_bound:
        return False
    uses = py.loads.get(name, [])
    return bool(uses) and all(meta_only(py, u) for u in uses)


def literal_glob(c: Cmd, py: Py, call: ast.Call, name: str, method: str) -> list[str] | None:
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


def _changes_files(py: Py) -> bool:
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


def _leaves_files(py: Py, call: ast.Call) -> bool:
    """A call the analyser knows does not bring files into being under new names."""
    name = dotted_name(call.func, py.aliases) or ""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    if (name in OPEN_CALLS and name != "os.open") or opens_a_path(py, name, method):
        return True  # opened for reading, or for writing the code's own data
    if name in _DATA_WRITES or method in _DATA_METHODS or name in DELETE_CALLS:
        return True
    changing = COPY_CALLS | MOVE_CALLS | SHELL_CALLS | WRITE_CALLS | DYNAMIC
    if name in changing or name in DETACH_CALLS or name in DEBUGGER_CALLS:
        return False
    if method in WRITE_METHODS and name not in READ_CALLS:
        return False
    return (
        name in READ_CALLS
        or method in READ_METHODS
        or method in DELETE_METHODS
        or name.startswith(("os.path.", "hashlib.", "datetime.", "math.", "time."))
    )


def paths_named(c: Cmd, py: Py, node: ast.AST | None) -> list[str] | None:
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
        and (dotted_name(node.func, py.aliases) or "") in _PATH_SPELLINGS
    ):
        return paths_named(c, py, node.args[0])
    if not isinstance(node, ast.Name) or node.id not in py.loops:
        return None
    it = py.loops[node.id]
    while (
        isinstance(it, ast.Call)
        and dotted_name(it.func, py.aliases) in ("sorted", "list", "reversed", "tuple", "set")
        and len(it.args) == 1
    ):
        it = it.args[0]
    if isinstance(it, ast.List | ast.Tuple | ast.Set):
        # a loop over a literal list of literal strings names each of them
        items = [None if isinstance(e, ast.Starred) else py.fold(e) for e in it.elts]
        return None if any(v is None for v in items) else [v for v in items if v is not None]
    if not isinstance(it, ast.Call):
        return None
    name = dotted_name(it.func, py.aliases) or ""
    method = it.func.attr if isinstance(it.func, ast.Attribute) else ""
    return literal_glob(c, py, it, name, method)


# Processes that outlive the call: the guard decided before they do their work.
DETACH_CALLS = names("os.fork os.forkpty os.setsid os.setpgrp os.daemon daemon.DaemonContext")


# Calls that hand control to a debugger or console, which runs the commands it reads (from
# standard input, ~/.pdbrc or ./.pdbrc) or the hook PYTHONBREAKPOINT names.
DEBUGGER_CALLS = names(
    "breakpoint pdb.set_trace pdb.run pdb.runeval pdb.runcall pdb.post_mortem pdb.pm "
    "code.interact code.InteractiveConsole code.InteractiveInterpreter sys.breakpointhook"
)


def starts_detached(py: Py, name: str, call: ast.Call) -> bool:
    """A subprocess started in its own session or process group, or spawned without waiting."""
    for k in call.keywords:
        if k.arg in ("start_new_session", "process_group", "preexec_fn") and not (
            isinstance(k.value, ast.Constant) and k.value.value in (False, None)
        ):
            return True
    if name.startswith("os.spawn") and call.args:
        mode = dotted_name(call.args[0], py.aliases)
        return mode is None or mode != "os.P_WAIT"
    return False


def command_text(py: Py, name: str, call: ast.Call) -> str | None:
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


def _joined(py: Py, nodes: list[ast.AST]) -> str | None:
    parts = [None if isinstance(x, ast.Starred) else py.fold(x) for x in nodes]
    if not parts or any(p is None for p in parts):
        return None
    return shlex.join([p for p in parts if p is not None])


def run_debugger(c: Cmd, py: Py, name: str, call: ast.Call, what: str) -> None:
    """``breakpoint(*args)`` calls the hook ``PYTHONBREAKPOINT`` names (``os.system`` runs its
    argument); with none, pdb reads commands from standard input and ``.pdbrc`` files."""
    st = c.st
    hook = st.vars.get("PYTHONBREAKPOINT") if "PYTHONBREAKPOINT" in st.exported else None
    hook_text = hook.text if hook is not None and name == "breakpoint" else None
    if hook_text == "0":
        return  # breakpoints are off
    if hook_text is not None and hook_text in SHELL_CALLS:
        text = command_text(py, hook_text, call)
        if text is not None:
            run_shell(c, text, f"{what} breakpoint hook {hook_text}")
            return
    c.unseen(f"{what}: {name} runs commands the analyser does not read (a debugger or a hook)")


def _shell_arg(py: Py, node: ast.AST) -> str | None:
    if isinstance(node, ast.List | ast.Tuple):
        parts = [py.fold(e) for e in node.elts]
        if all(p is not None for p in parts):
            return shlex.join([p for p in parts if p is not None])
        return None
    return py.fold(node)


# Calls that open the file their first argument names, with a mode (or ``os.open``'s flags)
OPEN_CALLS = names("open io.open codecs.open io.FileIO _io.FileIO os.open")


# Modules whose ``open`` opens something other than a file path the code names for reading
# or writing a whole file (an archive's member is judged by the archive call itself).
_OTHER_OPENS = names("tarfile zipfile gzip bz2 lzma webbrowser shelve dbm wave sqlite3 os io")


# Calls that find files at run time: the paths they yield are not in the code.
FINDING_CALLS = names(
    "glob.glob glob.iglob os.listdir os.scandir os.walk os.fwalk input sys.stdin.read "
    "sys.stdin.readline os.environ.get os.getenv"
)


FINDING_METHODS = names("glob rglob iterdir walk")


# os.open flags that write
_WRITE_FLAGS = names("O_WRONLY O_RDWR O_CREAT O_APPEND O_TRUNC O_EXCL O_TMPFILE")


def opens_a_path(py: Py, name: str, method: str) -> bool:
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


def open_target(call: ast.Call) -> ast.AST | None:
    """The path an ``open``-like call opens: its first argument or ``file=``; ``None`` when
    unpacked arguments hide it."""
    if _unpacked(call):
        return None
    if call.args:
        return call.args[0]
    return next((kw.value for kw in call.keywords if kw.arg in ("file", "path")), None)


def path_open_mode(py: Py, call: ast.Call) -> str:
    """The mode of ``Path(...).open(...)``: as :func:`open_mode`, the mode being the first
    argument; unpacked arguments or a mode the analyser cannot fold are taken as writing."""
    if _unpacked(call):
        return "w"
    node: ast.AST | None = call.args[0] if call.args else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    return "r" if node is None else (py.fold(node) or "w")


def open_mode(py: Py, call: ast.Call, name: str = "open") -> str:
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


__all__ = [
    "COPY_CALLS",
    "DEBUGGER_CALLS",
    "DELETE_CALLS",
    "DELETE_METHODS",
    "DETACH_CALLS",
    "DYNAMIC",
    "FINDING_CALLS",
    "FINDING_METHODS",
    "MOVE_CALLS",
    "NET_MODULES",
    "OPEN_CALLS",
    "READ_CALLS",
    "READ_METHODS",
    "SHELL_CALLS",
    "WRITE_CALLS",
    "WRITE_METHODS",
    "Py",
    "command_text",
    "dotted_name",
    "literal_glob",
    "meta_only",
    "meta_only_name",
    "only_reduced",
    "open_mode",
    "open_target",
    "opens_a_path",
    "path_open_mode",
    "paths_named",
    "run_debugger",
    "starts_detached",
]
