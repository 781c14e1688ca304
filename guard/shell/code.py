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
from guard.shell.record import MAX_TEXT
from guard.shell.words import OPAQUE, Field, Flow, names
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


__all__ = ["inspect_code", "inspect_python", "mentioned_files"]

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


class _Py:
    """One pass over a Python syntax tree, collecting what the analyser needs."""

    def __init__(self, tree: ast.AST, argv: list[str | None], home: str | None) -> None:
        self.aliases: dict[str, str] = {}
        self.consts: dict[str, str] = {}
        self.argv = argv
        self.home = home
        for n in ast.walk(tree):
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
        for n in ast.walk(tree):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                stores[n.id] = stores.get(n.id, 0) + 1
            elif isinstance(n, ast.arg):
                stores[n.arg] = stores.get(n.arg, 0) + 2
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Assign)
                and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name)
                and stores.get(n.targets[0].id) == 1
            ):
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
        if isinstance(node, ast.Call):
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


def _shell_arg(py: _Py, node: ast.AST) -> str | None:
    if isinstance(node, ast.List | ast.Tuple):
        parts = [py.fold(e) for e in node.elts]
        if all(p is not None for p in parts):
            return shlex.join([p for p in parts if p is not None])
        return None
    return py.fold(node)


def _mode(py: _Py, call: ast.Call) -> str:
    node: ast.AST | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    if node is None:
        return "r"
    return py.fold(node) or "w"


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


def inspect_python(c: Cmd, code: str, argv: list[Field], *, what: str) -> tuple[Flow, ...]:
    """Effects of running Python ``code`` with ``argv`` (``sys.argv[1:]``)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        c.unseen(f"{what}: code the analyser cannot parse")
        return inspect_code(c, code, argv, what=what)
    try:
        return _inspect_tree(c, tree, argv, what=what)
    except RecursionError:
        c.unseen(f"{what}: code nested too deeply to analyse")
        return (OPAQUE,)


def _inspect_tree(c: Cmd, tree: ast.AST, argv: list[Field], *, what: str) -> tuple[Flow, ...]:
    st = c.st
    py = _Py(tree, [what, *[(f.value if f.known else None) for f in argv]], st.home)
    covered: set[str] = set()
    net = write = dynamic = unknown_call = printing = False
    strings: list[str] = []
    reads: list[Location] = []
    opened: list[Location] = []  # files the code opens for reading
    written: list[Location] = []  # files it writes
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            strings.append(n.value)
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
            cmd_node = (
                n.args[0]
                if n.args
                else next((k.value for k in n.keywords if k.arg == "args"), None)
            )
            text = _shell_arg(py, cmd_node) if cmd_node is not None else None
            if text is None:
                c.unknown(f"{what}: runs a command the analyser cannot see")
            else:
                _run_shell(c, text, f"{what} subprocess")
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
            from guard.shell.files import copy_effect, dest_for

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
        if (
            name in ("open", "io.open", "codecs.open")
            or name.endswith("Path().open")
            or (method == "open" and name.startswith("Path"))
        ):
            path = (
                args[0]
                if name in ("open", "io.open", "codecs.open") and args
                else (py.fold(n.func.value) if isinstance(n.func, ast.Attribute) else None)
            )
            mode = (
                _mode(py, n)
                if name in ("open", "io.open", "codecs.open")
                else (args[0] if args and args[0] else "r")
            )
            loc = st.local(path) if path is not None else Location(raw="<python value>")
            if any(ch in mode for ch in "wax+"):
                c.emit(
                    EffectKind.WRITE,
                    loc,
                    certain=loc.resolved,
                    note="" if loc.resolved else f"{what}: writes a computed path",
                )
                write = True
                written.append(loc)
            else:
                c.emit(
                    EffectKind.READ,
                    loc,
                    certain=loc.resolved,
                    note="" if loc.resolved else f"{what}: reads a computed path",
                )
                if loc.path is not None:
                    reads.append(loc)
                    opened.append(loc)
            if loc.path is not None:
                covered.add(loc.path)
            continue
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
                for p in ast.walk(tree)
                if isinstance(p, ast.Call)
            )
        ):
            dynamic = True
            continue
        if name in ("print", "sys.stdout.write", "sys.stdout.buffer.write", "os.write"):
            printing = True
        if name in _WRITE_CALLS or (method in _WRITE_METHODS and name not in _READ_CALLS):
            write = True
        elif (
            name in _READ_CALLS
            or method in _READ_METHODS
            or name.startswith(("os.path.", "hashlib.", "datetime.", "math.", "time."))
        ):
            pass
        else:
            unknown_call = True
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
    literals = _existing_files(
        c, [*strings, *(a.value for a in argv if a.known), *py.consts.values()]
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
    if not literals and (unknown_call or net) and not dynamic:
        c.emit(EffectKind.EXEC, note=f"{what}")
    if printing and reads:
        return tuple(Flow(src=r, exact=False, via=c.name) for r in reads)
    return (OPAQUE,)


_QUOTED = re.compile(r"'((?:[^'\\\n]|\\.){1,4096})'|\"((?:[^\"\\\n]|\\.){1,4096})\"")
_GEN_NET = re.compile(
    r"socket|IO::Socket|LWP|HTTP::|Net::|https?://|\bfetch\s*\(|require\(\s*['\"](?:net|http|https|dgram|tls)['\"]|"
    r"open-uri|TCPSocket|UDPSocket|curl_|ftp_|fsockopen|stream_socket"
)
_GEN_WRITE = re.compile(
    r"(?m)open\s*\(?[^;]*?['\"]\s*(?:>|\+<|>>|\+>)|File::Copy|\bcopy\s*\(|\bmove\s*\(|\brename\b|\bsyswrite\b|"
    r"File\.(?:write|open\([^)]*['\"][wa])|FileUtils\.(?:cp|mv|copy|move|install|ln)|"
    r"\b(?:writeFile|copyFile|createWriteStream|appendFile|cpSync|renameSync|symlinkSync|linkSync)|"
    r"fs\.(?:rename|cp|symlink|link)\b|file_put_contents|"
    r"\bfwrite\b|IO\.copy_stream|\bprint\s+\{?\$?[A-Z][A-Z0-9_]*\}?\s|"
    # Lua, Tcl, R and SQLite: io.open(f, "w"), :write(, file copy, writeBin, writefile(...
    r"io\.open\s*\([^)]*['\"][wa]|io\.output|:write\s*\(|\bfile\s+(?:copy|rename|link)\b|"
    r"\bopen\s+\S+\s+['\"]?(?:w|a|wb|ab|RDWR|WRONLY)\b|\bputs\s+-nonewline\s+\$|\bputs\s+\$\w+\s|"
    r"\b(?:writeBin|writeLines|writeChar|saveRDS|file\.copy|file\.rename|file\.symlink)\s*\(|"
    r"\bwritefile\s*\(|^\s*\.(?:output|once|save|backup|dump)\b|(?i:\bvacuum\s+into)\b"
)
# Code that prints: what it read may come out on standard output.
_GEN_PRINT = re.compile(
    r"\bprint|\bputs\b|\becho\b|console\.log|process\.stdout|io\.write|\bcat\s*\(|"
    r"STDOUT|\bwriteLines\s*\(|\bselect\b"
)
_GEN_DELETE = re.compile(
    r"\bunlink\b|rmtree|remove_tree|FileUtils\.rm|fs\.(?:unlink|rm|rmdir)|File\.delete|\brmdir\b|\bdelete\b"
)
_GEN_SHELL = re.compile(
    r"\bsystem\b|`|\bexec\b|\bqx\b|child_process|execSync|\bspawn|%x|shell_exec|passthru|popen"
)
_GEN_DYNAMIC = re.compile(
    r"\beval\b|decode_base64|\bunpack\b|\batob\b|base64_decode|Buffer\.from\([^)]*base64"
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


def inspect_code(c: Cmd, code: str, argv: list[Field], *, what: str) -> tuple[Flow, ...]:
    """Effects of code in a language the analyser only scans (perl, ruby, node, php...)."""
    strings = list(_literals(code[: 1 << 20]))
    net = bool(_GEN_NET.search(code))
    write = bool(_GEN_WRITE.search(code))
    delete = bool(_GEN_DELETE.search(code))
    shell = bool(_GEN_SHELL.search(code))
    dynamic = bool(_GEN_DYNAMIC.search(code))
    if shell:
        ran = False
        for s in strings:
            head = s.split(" ", 1)[0]
            if head and (head in TABLE or "/" in head) and " " in s:
                _run_shell(c, s, f"{what} command")
                ran = True
        if not ran:
            c.unknown(f"{what}: runs commands the analyser cannot see")
    if dynamic:
        c.unknown(f"{what}: runs dynamically built code")
    literals = _existing_files(c, [*strings, *(a.value for a in argv if a.known)])
    seen = {loc.path for loc in literals}
    literals.extend(Location(raw=f.raw, path=None) for f in argv if not f.known)
    piped = [fl.src for fl in c.stdin if fl.src is not None and not fl.names]
    if piped and (net or write or delete or shell or dynamic):
        literals.extend(p for p in piped if p.path is None or p.path not in seen)
    host = _url_host(strings)
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
    # The analyser cannot follow data inside the code: a file it reads may be what it prints.
    read = [loc for loc in literals if loc.path is not None]
    if read and _GEN_PRINT.search(code):
        # ... and whatever else it prints, which the analyser cannot see.
        return (*(Flow(src=loc, exact=False, via=c.name) for loc in read), OPAQUE)
    return (OPAQUE,)
