"""What the text of perl, node, ruby, php and kin says about itself, for :mod:`guard.shell.code`.

The analyser does not parse these languages; it reads quoted strings and telling API names. The
questions answered here are the ones that let a scan conclude *less* than "anything could
happen": whether a string interpolates a variable (so its value is not what it looks like),
whether node code only ever uses its file system module to read, and which strings are taken
only by metadata calls (``existsSync("p")``, perl's ``-s "p"``).
"""

from __future__ import annotations

import re

from guard.shell.codeio import (
    _QUOTED,
)
from guard.shell.words import names

_INTERPOLATED = re.compile(r"[$@][A-Za-z_{]")


def interpolates(code: str) -> bool:
    """A double-quoted string of the code that interpolates a variable (``"$dir/x"``), the
    strings paired from the left as the language reads them."""
    return any(
        m.group(2) is not None and _INTERPOLATED.search(m.group(2))
        for m in _QUOTED.finditer(code[: 1 << 20])
    )


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


NODE_READS = names(
    "readFileSync readFile existsSync exists statSync stat lstatSync lstat fstatSync fstat "
    "readdirSync readdir opendirSync opendir accessSync access realpathSync realpath "
    "readlinkSync readlink createReadStream watch watchFile unwatchFile constants"
)


_NODE_MEMBER = re.compile(r"\s*\.\s*(?:promises\s*\.\s*)?([\w$]+)")


def node_reads_only(code: str) -> bool:
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
            if after.group(1) not in NODE_READS:
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
            if after is None or after.group(1) not in NODE_READS:
                return False
    return True


def _node_read_names(names_text: str, rename: str) -> bool:
    """Names destructured from the module (``{readFileSync: r, statSync}``) all read."""
    parts = [p.split(rename)[0].strip() for p in names_text.split(",") if p.strip()]
    return all(p in NODE_READS for p in parts)


def meta_only_strings(code: str, lang: str) -> set[str]:
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


GEN_NET = re.compile(
    r"socket|IO::Socket|LWP|HTTP::|Net::|https?://|\bfetch\s*\(|"
    # node's network modules, however the code reaches them (require, import, import(),
    # process.getBuiltinModule), with or without the node: prefix
    r"(?:require|import|from|getBuiltinModule)\s*\(?\s*['\"`](?:node:)?(?:net|http|https|http2|dgram|tls)['\"`]|"
    r"open-uri|TCPSocket|UDPSocket|curl_|ftp_|fsockopen|stream_socket"
)


GEN_WRITE = re.compile(
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
GEN_PRINT = re.compile(
    r"\bprint|\bputs\b|\becho\b|console\.log|process\.stdout|io\.write|\bcat\s*\(|"
    r"STDOUT|\bwriteLines\s*\(|\bselect\b"
)


# Anything that opens, copies, moves, links or changes a file, in any of the scanned languages.
# The lists above name the calls whose effect is known; code that matches this one and none of
# them still reaches files in a way the analyser does not model (``sysopen`` with numeric
# flags, a mode in a variable, ``fs.promises.cp``, Tcl's ``fcopy``), so what it does to every
# file it names is unknown.
GEN_FILE_IO = re.compile(
    r"\bFile(?:Utils)?\.(?!(?:size|exists?|file|directory|mtime|basename|dirname|extname|join|"
    r"expand_path|absolute_path|stat|read|readlines|foreach)\b)|"
    r"\b(?:open|sysopen|fopen|fdopen|opendir|Files|IO|fs|io|Path|pathlib|"
    r"Deno|Bun|fcopy|chan|copy|cp|mv|move|rename|link|symlink|mkdir|chmod|chown|truncate|"
    r"utime|syscall|write\w*|append\w*|tmpfile|tempfile|readFile\w*|readdir\w*|glob|"
    r"file(?:_\w+)?)\b"
)


GEN_DELETE = re.compile(
    r"\bunlink\b|rmtree|remove_tree|FileUtils\.rm|fs\.(?:unlink|rm|rmdir)|File\.delete|\brmdir\b|\bdelete\b"
)


GEN_SHELL = re.compile(
    r"\bsystem\b|`|\bexec\b|\bqx\b|child_process|execSync|\bspawn|%x|shell_exec|passthru|popen"
    r"|\bos\.execute\b|\bsystem2\b|\bproc_open\b|\bOpen3\b"
)


GEN_DYNAMIC = re.compile(
    r"\beval\b|decode_base64|\bunpack\b|\batob\b|base64_decode|Buffer\.from\([^)]*base64"
)


# Code that builds text from pieces (concatenation, interpolation, join, sprintf, Tcl's [...]),
# or hands a variable to a call that writes, copies, deletes or runs: the path or command it
# uses is not among its literals.
GEN_COMPUTED = re.compile(
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
GEN_LOOKUP = re.compile(
    r"""[\w$)\]]\s*\[[^\]\n]*(?:["'`][^\]\n]*(?:\+|\.\.|\()|(?:\+|\.\.|\()[^\]\n]*["'`]|\$\{)|"""
    r"""\b(?:require|import)\s*\(\s*(?!(["'`])[^"'`\n]*\1\s*\))"""
)


GEN_LOOKUP_BY_LANG: dict[str, re.Pattern[str]] = {
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


# Code that starts work which outlives the call.
GEN_DETACH = re.compile(
    r"\bfork\s*\(|\bsetsid\b|detached\s*:\s*true|\.unref\s*\(|Process\.(?:daemon|detach)\b|"
    r"\bpcntl_fork\b|\bdaemonize\b"
)


# How each scanned language loads another file of code: the words that do it.
LOADERS: dict[str, tuple[str, ...]] = {
    "perl": ("do", "require"),
    "ruby": ("require_relative", "require", "load"),
    "node": ("require", "import", "from"),
    "php": ("include", "include_once", "require", "require_once"),
    "lua": ("dofile", "loadfile", "require"),
    "tclsh": ("source",),
    "Rscript": ("source", "sys.source"),
}


EXTENSIONS = {
    "perl": (".pl", ".pm"),
    "ruby": (".rb",),
    "node": (".js", ".cjs", ".mjs", "/index.js"),
    "php": (".php",),
    "lua": (".lua", "/init.lua"),
    "tclsh": (".tcl",),
    "Rscript": (".R", ".r"),
}


LOADER_RE: dict[str, re.Pattern[str]] = {}
