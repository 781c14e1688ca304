"""The shell walker: parse with tree-sitter, expand words as bash would, follow data through pipes.

One :class:`State` is one shell: working directory, variables, functions, positional parameters and
the data on its standard input. Statements run in order against it; a pipeline runs each stage in a
copy (bash runs them in subshells) and hands the stage's output flows to the next stage's input.
Every command resolves through :data:`TABLE`, which the ``files``, ``archives``, ``remote`` and
``interp`` modules fill with handlers; a handler returns the flows its standard output carries.

tree-sitter's tree is not always bash's: a redirect after ``a && b`` belongs to ``b``, and pipes
or ``&&`` after a heredoc are hung inside the heredoc node. :meth:`State._flatten` puts them back.
Everything is bounded (see ``record``); going past a bound never raises to the caller of
:func:`analyse`: it ends as an ``UNKNOWN`` effect.
"""

from __future__ import annotations

import functools
import glob as globmod
import itertools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import tree_sitter as ts

from guard.exceptions import AnalysisError
from guard.paths import HostMap
from guard.shell import variables as shvars
from guard.shell.conditions import run_body
from guard.shell.expand import Acc, Expander
from guard.shell.record import (
    MAX_ARGS,
    MAX_DEPTH,
    MAX_GLOB,
    MAX_LOOP,
    MAX_NEST,
    MAX_TEXT,
    Exhausted,
    Run,
)
from guard.shell.wordops import unescape_dq
from guard.shell.words import OPAQUE, Field, Flow, Var, fd_number, has_glob, names, short
from guard.types import ConfigEdit, Effect, EffectKind, Location

__all__ = ["TABLE", "Cmd", "ShellContext", "State", "analyse", "command", "joined_script"]

_SYSTEM_BIN = names("/bin /usr/bin /usr/local/bin /sbin /usr/sbin /usr/local/sbin /usr/libexec")
_DEV_SINKS = names("/dev/null /dev/zero /dev/full /dev/random /dev/urandom")
_DEV_NET = re.compile(r"/dev/(tcp|udp)/([^/]+)/([^/]+)")
_EXPANSION = re.compile(r"\$[^']|`")
_SYSTEM_PATHS = ("/dev/", "/proc/", "/sys/")  # the same on every host: never mapped
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SKIP = names("comment heredoc_body heredoc_start heredoc_end heredoc_content")
_NESTING = names("list pipeline redirected_statement negated_command") | _SKIP
_BYTES_TYPES = (bytes, bytearray, memoryview)
_BLOCKS = names(
    "compound_statement do_group if_statement elif_clause else_clause while_statement "
    "until_statement program"
)
_UNSAFE_BYTES = re.compile(rb"[\x00\x80-\xff]+")


@dataclass(frozen=True)
class ShellContext:
    """Where and how a shell command would run.

    Attributes:
        cwd: The absolute, real working directory.
        hosts: The hosts whose filesystems the guard can see.
        home: What ``~`` and ``$HOME`` mean; ``None`` means ``cwd``.
        host: The host this shell runs on (``None``: the local machine).
        env: Variables whose values are known.
        stdin: Data already flowing into this shell's standard input.
        depth: How deeply this shell is nested in others (``bash -c``, ``ssh``, scripts).
        roots: The guard's protected roots: with the host folders and the temporary
            folders, the places an agent can write, whose programs it may have made.
    """

    cwd: str
    hosts: HostMap
    home: str | None = None
    host: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: tuple[Location, ...] = ()
    depth: int = 0
    roots: tuple[str, ...] = ()


@functools.cache
def _parser() -> ts.Parser:
    import tree_sitter_bash as tsb

    return ts.Parser(ts.Language(tsb.language()))


Handler = Callable[["Cmd"], tuple[Flow, ...]]
TABLE: dict[str, Handler] = {}
"""Command name to handler. ``/script`` runs a file by path; ``/unknown`` handles the rest."""


def command(*names: str, replaces: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler for command names (each argument may hold several, space-separated).

    A name registered twice is an error, unless the second registration says it ``replaces``
    the first (a handler that adds to one registered before, and calls it): otherwise the
    second would silently win, and which one wins would depend on import order.
    """

    def deco(fn: Handler) -> Handler:
        for group in names:
            for n in group.split():
                if n in TABLE and TABLE[n] is not fn and not replaces:
                    raise ValueError(f"shell command {n!r} has two handlers: {TABLE[n]}, {fn}")
                if replaces and n not in TABLE:
                    raise ValueError(f"shell command {n!r}: nothing registered to replace")
                TABLE[n] = fn
        return fn

    return deco


@dataclass(slots=True)
class _Unit:
    node: ts.Node
    op: str
    src: bytes
    redirects: list[ts.Node] = field(default_factory=list)
    extra: list[ts.Node] = field(default_factory=list)
    bodiless: bool = False


@dataclass(eq=False, slots=True)
class _Sink:
    """Where output on a file descriptor goes: the files (or the ``>(cmd)``) a redirect opened.

    A redirect of a command or group collects what is written there while it runs and writes
    it out when it ends (one replace of a ``>`` file with all of it); one made by a bare
    ``exec`` is ``live``: every later write appends at once.
    """

    op: str
    fd: int  # the descriptor it was opened on (-1: standard output and error)
    targets: list[Location]
    proc: tuple[ts.Node, bytes] | None = None  # a process substitution: >(cmd)
    flows: list[Flow] = field(default_factory=list)
    stdout: bool = False  # a command's standard output was sent here
    live: bool = False


# A descriptor's entry in a shell's table: a sink, or what the shell itself was given. "out" is
# what the walk hands back to its caller (a pipe, $(...), the agent); "err" the standard error the
# shell was started with, which the guard does not follow.
FdEntry = _Sink | str
_OUT, _ERR, _CLOSED = "out", "err", "closed"
_POSIX_SHELLS = names("sh dash ash posh busybox-sh")  # no globbing of a redirect's target
_FD_WORD = re.compile(r"([0-9]{1,5})(-?)")  # the target of n>&m and n>&m- (a move)


@dataclass(slots=True)
class _Fds:
    """A command's output descriptors after its redirects, and the sinks they opened."""

    table: dict[int, FdEntry]
    opened: list[_Sink]
    changed: set[int]


@dataclass(slots=True)
class Cmd:
    """One command about to run: its handler reads this and emits effects through it."""

    st: State
    name: str
    args: list[Field]
    stdin: tuple[Flow, ...]
    via: str

    def loc(self, f: Field) -> Location:
        """Where argument ``f`` points on this shell's host."""
        return self.st.loc(f)

    def emit(
        self,
        kind: EffectKind,
        target: Location | None = None,
        dest: Location | None = None,
        *,
        recursive: bool = False,
        via: str | None = None,
        edit: ConfigEdit | None = None,
        certain: bool = True,
        note: str = "",
        unseen: bool = False,
    ) -> None:
        """Record an effect (``via`` defaults to this command's name)."""
        self.st.run.emit(
            kind,
            target,
            dest,
            recursive=recursive,
            via=self.via if via is None else via,
            edit=edit,
            certain=certain,
            note=note,
            unseen=unseen,
        )

    def read(
        self, f: Field, kind: EffectKind = EffectKind.READ, *, recursive: bool = False
    ) -> None:
        """Record that argument ``f`` is read (or listed); process substitutions read nothing."""
        if f.pipe:
            return
        fd = self.fd_of(f)
        if fd is not None and self.loc(f).path is None:
            # `cat /dev/fd/3`: reads whatever is open there
            for fl in self.st.fd_flows(fd):
                if fl.src is not None and not fl.names:
                    self.emit(kind, fl.src, recursive=recursive or fl.recursive)
            return
        self.emit(kind, self.loc(f), recursive=recursive or f.recursive)

    def fd_of(self, f: Field) -> int | None:
        """The fd that argument ``f`` names (``/dev/fd/3``, ``/dev/stdin``), if it names one."""
        if not f.known or f.pipe or f.loc is not None:
            return None
        return fd_number(f.value, self.st.cwd)

    def content(self, f: Field, *, transform: bool = False) -> tuple[Flow, ...]:
        """The data that reading argument ``f`` yields."""
        if f.pipe:
            return tuple(x.through(self.name, transform=transform) for x in f.flows)
        fd = self.fd_of(f)
        if fd is not None and fd not in (1, 2):
            return tuple(x.through(self.name, transform=transform) for x in self.st.fd_flows(fd))
        loc = self.loc(f)
        if loc.path is not None and loc.path in _DEV_SINKS:
            return ()
        return (Flow(src=loc, recursive=f.recursive, exact=not transform, via=self.name),)

    def passthrough(self, *, transform: bool = False) -> tuple[Flow, ...]:
        """Standard input, passed on to standard output by this command."""
        return tuple(x.through(self.name, transform=transform) for x in self.stdin)

    def unknown(self, note: str, target: Location | None = None) -> None:
        """Record that the analyser cannot tell what this command does."""
        self.emit(EffectKind.UNKNOWN, target, certain=False, note=note)

    def unseen(self, note: str, target: Location | None = None) -> None:
        """Record that code the analyser cannot read will run: a startup file, a build recipe,
        transformed text fed to a shell, background work. Whatever ``target`` (the file the
        code comes from, if any), such code may reach every protected place."""
        self.emit(EffectKind.UNKNOWN, target, certain=False, note=note, unseen=True)

    def write_to(
        self, where: Field | Location, flows: tuple[Flow, ...], *, append: bool = False
    ) -> None:
        """This command writes ``flows`` to a file (an argument or a place)."""
        if isinstance(where, Field):
            self.st.sink_field(where, flows, append=append, via=self.name)
        else:
            self.st.run.sink_file(where, flows, append=append, via=self.name)


def _parse(data: bytes) -> ts.Tree:
    """Parse ``data``; node offsets index ``data`` itself.

    tree-sitter-bash's scanner reads out of bounds on some non-ASCII input (seen as segfaults on
    supplementary-plane characters), so the grammar only ever sees an ASCII stand-in of the same
    length: every non-ASCII byte (and NUL) becomes a word character, which is what bash makes of
    them too. Text is always sliced from the original bytes.
    """
    if not data.isascii() or b"\0" in data:
        data = _UNSAFE_BYTES.sub(lambda m: b"x" * len(m.group()), data)
    return _parser().parse(data)


class State:
    """One shell: where it is, what it knows, and what is on its standard input."""

    __slots__ = (
        "aliases",
        "allexport",
        "arg0",
        "attrs",
        "cwd",
        "depth",
        "dirstack",
        "exported",
        "exported_funcs",
        "fds",
        "funcs",
        "globopts",
        "hashed",
        "home",
        "host",
        "host_root",
        "infds",
        "looping",
        "namerefs",
        "nest",
        "open_fds",
        "pos",
        "run",
        "scope",
        "src",
        "stdin",
        "temp",
        "vars",
    )

    def __init__(
        self,
        run: Run,
        *,
        cwd: str | None,
        home: str | None,
        host: str | None,
        depth: int,
        nest: int,
        stdin: tuple[Flow, ...] = (),
        variables: dict[str, Var] | None = None,
        pos: list[str] | None = None,
        arg0: str = "bash",
    ) -> None:
        self.run = run
        self.cwd = cwd
        self.home = home
        self.host = host
        h = run.hosts.get(host) if host else None
        self.host_root = h.root if h is not None else None
        self.depth = depth
        self.nest = nest
        self.stdin = stdin
        self.vars: dict[str, Var] = variables if variables is not None else {}
        self.exported: set[str] = set()
        self.funcs: dict[str, tuple[ts.Node, bytes]] = {}
        self.exported_funcs: set[str] = set()  # export -f: passed to child shells
        self.aliases: dict[str, str] = {}
        # declare's attributes by variable (r readonly, i integer, l/u case, n reference,
        # a/A arrays) and where each name reference points (None: the analyser cannot tell)
        self.attrs: dict[str, str] = {}
        self.namerefs: dict[str, str | None] = {}
        # Inside a function: the variables it made local, with what they held before.
        self.scope: dict[str, tuple[Var | None, str | None]] | None = None
        # While a command with prefix assignments runs (`A=1 cmd`): those variables' old
        # values, put back after it (the rest of the shell's state stays, as in bash).
        self.temp: dict[str, tuple[Var | None, str | None]] | None = None
        self.pos = pos
        self.arg0 = arg0
        self.src = b""
        self.dirstack: list[str | None] = []
        # Where output on each descriptor goes (1 and 2 default to "out" and "err"): what bare
        # `exec` redirects set for the rest of the shell, and a command's own while it runs.
        self.fds: dict[int, FdEntry] = {}
        self.infds: dict[int, tuple[Flow, ...]] = {}  # exec 3< file: data open for later commands
        # what the command being run has open for reading, by fd (0 is its standard input)
        self.open_fds: dict[int, tuple[Flow, ...]] | None = None
        # Shell options that change how words expand (`shopt -s globstar`, `set -f`); None
        # when a command set options the analyser cannot name.
        self.globopts: frozenset[str] | None = _NO_OPTS
        self.hashed: dict[str, str] = {}  # hash -p PATH NAME: NAME runs PATH
        self.allexport = False  # set -a
        # Inside a while/until loop: a file run there runs again on each pass, and can change
        # between passes (a queue that a later call fills).
        self.looping = False

    @property
    def x(self) -> Expander:
        """The word expander of this shell.

        Made on use rather than kept: an expander refers back to its state, and keeping it would
        make every state a reference cycle that outlives the analysis (with its Run and effects)
        until the garbage collector runs.
        """
        return Expander(self)

    def text(self, node: ts.Node) -> str:
        """The text of ``node`` in the source being walked."""
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # ----------------------------------------------------------------- shells

    def fork(self) -> State:
        """A subshell: a copy whose changes (cd, variables) do not come back."""
        s = State(
            self.run,
            cwd=self.cwd,
            home=self.home,
            host=self.host,
            depth=self.depth,
            nest=self.nest,
            stdin=self.stdin,
            variables=dict(self.vars),
            pos=list(self.pos) if self.pos is not None else None,
            arg0=self.arg0,
        )
        s.exported = set(self.exported)
        s.funcs = dict(self.funcs)
        s.exported_funcs = set(self.exported_funcs)
        s.aliases = dict(self.aliases)
        s.attrs = dict(self.attrs)
        s.namerefs = dict(self.namerefs)
        s.src = self.src
        s.dirstack = list(self.dirstack)
        s.fds = dict(self.fds)
        s.infds = dict(self.infds)
        s.open_fds = self.open_fds
        s.globopts = self.globopts
        s.hashed = dict(self.hashed)
        s.looping = self.looping
        s.allexport = self.allexport
        return s

    def env_vars(self) -> dict[str, Var]:
        """The variables a child process inherits: the exported ones, the exported functions
        (as bash passes them, ``BASH_FUNC_name%%``) and the option lists the shell keeps."""
        env = {k: v for k, v in self.vars.items() if k in self.exported}
        if self.exported_funcs:
            env.update(shvars.exported_functions(self))
        for name in ("BASHOPTS", "SHELLOPTS"):
            if name in self.exported and name not in env:
                env[name] = self._options_var(name)  # the options as they are now
        return env

    def _options_var(self, name: str) -> Var:
        """``$BASHOPTS``/``$SHELLOPTS``, which the shell keeps from its options."""
        opts = self.globopts
        if opts is None:
            return Var(None)
        if name == "BASHOPTS":
            return Var(":".join(sorted(o for o in opts if o != "noglob")))
        on = (["allexport"] if self.allexport else []) + (["noglob"] if "noglob" in opts else [])
        return Var(":".join(on))

    def define_function(self, name: str, body: str) -> None:
        """Define function ``name`` from the text of its body (an imported function)."""
        data = f"{name} () {body}".encode("utf-8", "replace")
        root = _parse(data).root_node
        kids = [c for c in root.named_children if c.type not in _SKIP]
        fn = kids[0] if len(kids) == 1 and kids[0].type == "function_definition" else None
        node = fn.child_by_field_name("body") if fn is not None and not root.has_error else None
        if node is None:
            shvars.unseen(self, f"imports function {short(name)} the analyser cannot parse")
            return
        self.funcs[name] = (node, data)
        self.exported_funcs.add(name)

    # -------------------------------------------------------------- variables

    def set_var(self, name: str, var: Var) -> None:
        """Assign a variable as bash would (see :func:`guard.shell.variables.set_var`)."""
        shvars.set_var(self, name, var)

    def arith(self, text: str, *, what: str = "arithmetic") -> int | None:
        """Evaluate bash arithmetic, with its assignments (see :mod:`guard.shell.arith`)."""
        return shvars.arith(self, text, what=what)

    def var_name(self, text: str | None, *, what: str, subscripts: bool = True) -> str | None:
        """The variable a builtin names (see :func:`guard.shell.variables.var_name`)."""
        return shvars.var_name(self, text, what=what, subscripts=subscripts)

    def arith_node(
        self, node: ts.Node, *, what: str = "arithmetic", x: Expander | None = None
    ) -> int | None:
        """Evaluate an arithmetic node of the tree (``$((...))``, a subscript)."""
        return shvars.arith_node(self, node, what=what, x=x)

    def subscript(self, name: str, index: ts.Node, *, x: Expander | None = None) -> str | None:
        """The subscript of ``name[...]`` as bash computes it (it may run code)."""
        return shvars.subscript(self, name, index, x=x)

    def eval_text(self, text: str, *, what: str) -> None:
        """Analyse text bash expands as a word at run time (a prompt string, a subscript)."""
        shvars.eval_text(self, text, what=what)

    def parse_word(self, text: str) -> tuple[ts.Tree, bytes, list[ts.Node]] | None:
        """``text`` parsed as the words of a command, for text the grammar left unparsed (an
        operand of ``${x#...}``): the tree, its source and the word nodes; ``None`` when it is
        not words alone."""
        data = b": " + text.encode("utf-8", "replace")
        tree = _parse(data)
        kids = tree.root_node.named_children
        if tree.root_node.has_error or len(kids) != 1 or kids[0].type != "command":
            return None
        words = list(kids[0].children_by_field_name("argument"))
        if not words or words[-1].end_byte != len(data) or words[0].start_byte != 2:
            return None
        return tree, data, words

    def declare(self, kw: str, items: list[Field | tuple[str, Var]]) -> None:
        """``declare``/``export``/``local``... with expanded arguments (see
        :func:`guard.shell.variables.declare`)."""
        shvars.declare(self, kw, items)

    def scope_save(self, name: str) -> None:
        """Make ``name`` local to the function running (its value comes back at return)."""
        if self.scope is not None and name not in self.scope:
            self.scope[name] = (self.vars.get(name), self.attrs.get(name))

    def new_shell(
        self,
        *,
        cwd: str | None,
        home: str | None,
        host: str | None,
        stdin: tuple[Flow, ...],
        variables: dict[str, Var] | None = None,
        pos: list[str] | None = None,
        arg0: str = "bash",
    ) -> State | None:
        """A new shell process one level deeper, or ``None`` (with an UNKNOWN) past the bound."""
        if self.depth + 1 > MAX_DEPTH or self.nest + 1 > MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="shell nested too deeply to analyse",
                unseen=True,
            )
            return None
        s = State(
            self.run,
            cwd=cwd,
            home=home,
            host=host,
            depth=self.depth + 1,
            nest=self.nest + 1,
            stdin=stdin,
            variables=variables,
            pos=pos,
            arg0=arg0,
        )
        if any(k.startswith("BASH_FUNC_") for k in s.vars):
            shvars.import_functions(s)
        s.exported = set(s.vars)
        s.globopts = inherited_options(s.vars)
        s.looping = self.looping
        s.inherit_fds(self)
        return s

    def inherit_fds(self, parent: State) -> None:
        """Take the descriptors a child process of ``parent`` starts with: its standard error
        and every other open descriptor (``exec 3<w; sh -c 'cat <&3'``). Another host's shell
        only gets standard error back through ``ssh``."""
        fds = parent.fds
        if self.host != parent.host:
            if 2 in fds:
                self.fds = {2: fds[2]}
            return
        if fds:
            self.fds = {n: v for n, v in fds.items() if n != 1}
        data = parent.open_fds if parent.open_fds is not None else parent.infds
        if len(data) > 1 or (data and 0 not in data):
            self.infds = {n: d for n, d in data.items() if n != 0}

    def run_text(self, text: str, *, what: str = "command") -> tuple[Flow, ...]:
        """Parse and run ``text`` in this state (callers choose a new shell or this one)."""
        data = text.encode("utf-8", "replace")
        tree = _parse(data)
        root = tree.root_node
        saved = self.src
        self.src = data
        try:
            if root.has_error:
                self.run.emit(
                    EffectKind.UNKNOWN,
                    certain=False,
                    note=f"{what} has shell syntax the analyser cannot parse",
                    via="bash",
                    unseen=True,
                )
            return self.run_seq(root.named_children)
        finally:
            self.src = saved

    def run_nested_text(self, text: str, *, what: str) -> tuple[Flow, ...]:
        """Run ``text`` in this same shell one parse level deeper (``eval``, ``source``)."""
        if self.depth + 1 > MAX_DEPTH or self.nest + 1 > MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note=f"{what} nested too deeply to analyse",
                unseen=True,
            )
            return (OPAQUE,)
        self.depth += 1
        self.nest += 1
        try:
            return self.run_text(text, what=what)
        finally:
            self.depth -= 1
            self.nest -= 1

    # ------------------------------------------------------------------ paths

    def map_abs(self, value: str) -> str:
        """On a host the guard sees, ``/x`` is the host's ``/x``: below the host's folder."""
        if self.host_root is None or not value.startswith("/") or value.startswith(_SYSTEM_PATHS):
            return value
        if self.run.hosts.host_of(os.path.normpath(value)) is not None:
            return value
        return self.host_root + os.path.normpath(value)

    def local(self, value: str) -> Location:
        """A path on this shell's host, resolved as the kernel would."""
        # Only ordinary paths are kept here (the two cases below return before storing), so a
        # hit needs no further test.
        key = (value, self.cwd, self.home, self.host_root)
        hit = self.run.locs.get(key)
        if hit is not None:
            return hit
        if value == "" or "\0" in value:
            # no file has that name (a NUL cannot even reach the kernel): unresolved
            return Location(raw=value, path=None)
        fd = fd_number(value, self.cwd)
        if fd is not None:
            return self.fd_loc(fd, value)
        if not value.startswith("/") and self.cwd is None:
            loc = Location(raw=value, path=None)
        else:
            mapped = self.map_abs(value)
            # The command's process has this shell's working directory and root: paths
            # through /proc/self resolve against those, never the guard's own.
            root = (self.host_root or "/") if self.cwd is not None else None
            loc = self.run.hosts.local(mapped, self.cwd or "/", self.home, root)
            if self.run.links and ".." in mapped and mapped[:1] != "~":
                # `ln -s a/b z; cat z/..`: the kernel takes `..` from where the link leads
                whole = mapped if mapped[:1] == "/" else f"{self.cwd}/{mapped}"
                real = self.run.physical(whole, self.cwd or "/", root)
            else:
                real = self.run.follow(loc.path) if loc.path is not None else None
            if mapped != value or real != loc.path:
                host = self.run.hosts.host_of(real) if real is not None else None
                loc = Location(raw=value, path=real, host=host)
        if len(self.run.locs) < 4096:
            self.run.locs[key] = loc
        return loc

    def fd_flows(self, fd: int) -> tuple[Flow, ...]:
        """The data the command being run can read on ``fd`` (``None`` known: nothing)."""
        if self.open_fds is not None and fd in self.open_fds:
            return self.open_fds[fd]
        if fd == 0:
            return self.stdin
        return self.infds.get(fd, ())

    def fd_loc(self, fd: int, raw: str) -> Location:
        """What ``/dev/fd/N`` (``/dev/stdin``, ``/proc/self/fd/N``) names for the running command.

        Never the guard's own fd: the file open there when the analyser knows it, the standard
        streams as themselves, and otherwise an unresolved place (which may be protected).
        """
        entry = self.fds.get(fd)
        if isinstance(entry, _Sink) and entry.proc is None and len(entry.targets) == 1:
            out = entry.targets[0]
            return Location(raw=raw, path=out.path, host=out.host, visible=out.visible)
        if entry in (_OUT, _ERR):
            return Location(raw=raw, path="/dev/stdout" if entry == _OUT else "/dev/stderr")
        flows = self.fd_flows(fd)
        srcs = {
            (fl.src.path, fl.src.host, fl.src.visible): fl.src
            for fl in flows
            if fl.src is not None and not fl.names
        }
        if len(srcs) == 1 and all(fl.src is not None for fl in flows):
            src = next(iter(srcs.values()))
            return Location(raw=raw, path=src.path, host=src.host, visible=src.visible)
        if fd in (1, 2) and not flows:
            return Location(raw=raw, path="/dev/stdout" if fd == 1 else "/dev/stderr")
        return Location(raw=raw, path=None)

    def loc(self, f: Field) -> Location:
        """Where word ``f`` points: its preset place, its path, or unresolved."""
        if f.loc is not None:
            return f.loc
        if not f.known or f.pipe:
            return Location(raw=f.value or f.raw, path=None)
        return self.local(f.value)

    def remote(self, host: str, path: str) -> list[Location]:
        """``HOST:PATH`` as Locations (a glob in PATH is expanded on a visible host)."""
        if "\0" in path or "\0" in host:
            return [Location(raw=f"{host}:{path}", path=None, host=host, visible=False)]
        loc = self.run.hosts.remote(host, path)
        if loc.path is not None and self.run.links:
            real = self.run.follow(loc.path)
            if real != loc.path:
                found = None if real is None else self.run.hosts.host_of(real)
                loc = Location(raw=loc.raw, path=real, host=found or loc.host)
        if loc.path is None or not has_glob(path):
            return [loc]
        hits = sorted(itertools.islice(globmod.iglob(loc.path), MAX_GLOB))
        if not hits:
            return [loc]
        name = loc.raw.rsplit(":", 1)[0]
        return [self.run.at(h, f"{name}:{h}") for h in hits]

    # ------------------------------------------------------------- statements

    def run_seq(self, nodes: Iterable[ts.Node]) -> tuple[Flow, ...]:
        """Run statements in order; returns what they write to standard output."""
        out: list[Flow] = []
        for n in nodes:
            if n.type in _SKIP or not n.is_named:
                continue
            # A statement ended by a lone `&` runs in the background (read from the source:
            # cheaper than asking tree-sitter for the next sibling of every statement).
            rest = self.src[n.end_byte : n.end_byte + 16].lstrip(b" \t")
            if rest[:1] == b"&" and rest[1:2] not in (b"&", b">"):
                self.run.emit(
                    EffectKind.UNKNOWN,
                    certain=False,
                    via="bash",
                    note="runs in the background: what it does after the call returns is not seen",
                    unseen=True,
                )
            units = self._flatten(n)
            group: list[_Unit] = []
            for u in units:
                if u.op != "|" and u.op != "|&" and group:
                    out.extend(self._pipeline(group))
                    group = []
                group.append(u)
            if group:
                out.extend(self._pipeline(group))
        return tuple(out)

    def _flatten(self, root: ts.Node) -> list[_Unit]:
        """Lists, pipelines and redirected statements as a flat run of units.

        Iterative, because tree-sitter nests ``a && b && c`` to the left and an agent can chain
        thousands. A redirect after a list or pipeline belongs to its last command, as in bash;
        tree-sitter attaches it to the whole, and hangs pipelines and ``&&`` that follow a
        heredoc inside the heredoc node: both are put back where bash has them here.
        """
        src = self.src
        if root.type not in _NESTING:
            return [_Unit(root, "", src)]  # a plain statement: nothing to put back
        out: list[_Unit] = []
        # tasks: ("node", node, op) to flatten, ("attach", redirected_statement, op) to hang its
        # redirects on the last unit once its body is flat
        stack: list[tuple[str, ts.Node, str]] = [("node", root, "")]
        while stack:
            kind, node, op = stack.pop()
            if kind == "attach":
                self._attach(node, out, op)
                continue
            t = node.type
            if t in ("list", "pipeline"):
                pending = op
                items: list[tuple[ts.Node, str]] = []
                for c in node.children:
                    if c.is_named and c.type not in _SKIP:
                        items.append((c, pending))
                    elif not c.is_named:
                        pending = c.type
                for c, o in reversed(items):
                    stack.append(("node", c, o))
            elif t == "redirected_statement":
                body = node.child_by_field_name("body")
                stack.append(("attach", node, op))
                if body is not None:
                    stack.append(("node", body, op))
            elif t == "negated_command":
                inner = [c for c in node.named_children if c.type not in _SKIP]
                if inner:
                    stack.append(("node", inner[0], op))
            elif t in _SKIP:
                continue
            else:
                out.append(_Unit(node, op, src))
        return out

    def _attach(self, node: ts.Node, out: list[_Unit], op: str) -> None:
        body = node.child_by_field_name("body")
        if body is None or not out:
            out.append(_Unit(node, op, self.src, bodiless=True))
        target = out[-1]
        follow: list[tuple[ts.Node, str]] = []
        for i, c in enumerate(node.children):
            if node.field_name_for_child(i) != "redirect":
                continue
            target.redirects.append(c)
            if c.type != "heredoc_redirect":
                continue
            pending = ""
            for j, h in enumerate(c.children):
                fname = c.field_name_for_child(j)
                if fname == "redirect" and h.type != "heredoc_redirect":
                    target.redirects.append(h)
                elif fname == "argument":
                    target.extra.append(h)
                elif h.type == "pipeline":
                    follow.append((h, "|"))
                elif fname == "operator":
                    pending = h.type
                elif fname == "right":
                    follow.append((h, pending or ";"))
        for h, o in follow:
            units = self._flatten(h)
            if units and h.type == "pipeline":
                units[0].op = "|"
            elif units:
                units[0].op = o
            out.extend(units)

    def _pipeline(self, group: list[_Unit]) -> tuple[Flow, ...]:
        if len(group) == 1:
            return self._unit(group[0], None)
        flows: tuple[Flow, ...] | None = None
        # what a stage that is not the last writes to a copy of the pipeline's own standard
        # output (`exec 3>&1; a >&3 | b`) skips the pipe
        up = _Sink("|", 1, [])
        for i, u in enumerate(group):
            stage = self.fork()
            if i + 1 < len(group):
                if _OUT in stage.fds.values():
                    stage.fds = {n: (up if v == _OUT else v) for n, v in stage.fds.items()}
                # its standard output is the pipe (`|&`: its standard error too)
                stage.fds[1] = _OUT
                if group[i + 1].op == "|&":
                    stage.fds[2] = _OUT
            flows = stage._unit(u, flows)
        return (*(flows or ()), *up.flows)

    def _unit(self, u: _Unit, stdin: tuple[Flow, ...] | None) -> tuple[Flow, ...]:
        if self.nest >= MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="statement nested too deeply to analyse",
                unseen=True,
            )
            return (OPAQUE,)
        saved_src = self.src
        self.src = u.src
        self.nest += 1
        try:
            return self._unit_inner(u, stdin)
        finally:
            self.nest -= 1
            self.src = saved_src

    def _unit_inner(self, u: _Unit, stdin: tuple[Flow, ...] | None) -> tuple[Flow, ...]:
        node = u.node
        t = node.type
        redirects = u.redirects
        assigns: list[ts.Node] = []
        groups: list[list[ts.Node]] = []
        if t == "command":
            # one pass over the command's children: its own redirects, assignments and words
            own, assigns, groups = self.command_words(node, u.extra)
            redirects = own + redirects if redirects else own
        given: tuple[Flow, ...] | None = None
        outs: _Fds | None = None
        fdin: dict[int, tuple[Flow, ...]] = {}
        if redirects:
            given, outs, fdin = self._redirects(redirects)
        if t == "command" and (outs or given is not None or fdin) and self._bare_exec(node):
            # `exec >f`, `exec 3>f`, `exec <f`: the redirects stay for the rest of this shell
            if outs is not None:
                for sink in outs.opened:
                    flows = (OPAQUE,) if sink.op == "<>" else ()
                    self._write(sink, flows, append=sink.op in (">>", "&>>"))
                    sink.live = True
                self.fds = outs.table
            if given is not None:
                self.stdin = given
            for n, data in fdin.items():
                self.infds[n] = data
            return ()
        if given is not None:
            stdin = given
        if stdin is None:
            stdin = self.stdin
        open_fds: dict[int, tuple[Flow, ...]] = {0: stdin}
        if self.infds or fdin:
            infds = {**self.infds, **fdin}
            # data open on any other fd may be read by the command: count it as its input
            more = tuple(fl for data in infds.values() for fl in data if fl not in stdin)
            if more:
                stdin = stdin + tuple(dict.fromkeys(more))
            open_fds = {**infds, 0: stdin}
        table = self.fds if outs is None else outs.table
        stdout = table.get(1, _OUT)
        saved_fds, saved_table = self.open_fds, self.fds
        running = self.fds
        caller: _Sink | None = None
        if outs is not None or stdout != _OUT:
            # While it runs, what it writes to standard output comes back here and goes where
            # `stdout` says; a descriptor that is a copy of it (2>&1) comes back the same way.
            running = {n: (_OUT if v is stdout else v) for n, v in table.items()}
            if stdout != _OUT and any(v == _OUT for v in table.values()):
                # `2>&1 >/dev/null`, `3>&1 1>&2 2>&3`: a descriptor that is still the caller's
                # standard output (a pipe, a substitution) is not the command's new one
                caller = _Sink("|", 1, [])
                running = {n: (caller if table.get(n) == _OUT else v) for n, v in running.items()}
            running[1] = _OUT
            self.fds = dict(running)
        self.open_fds = open_fds
        try:
            if u.bodiless:
                out: tuple[Flow, ...] = given or ()
            elif t == "command":
                out = self._command(assigns, groups, stdin)
            else:
                out = self._compound(node, stdin)
        finally:
            self.open_fds = saved_fds
            if self.fds is not saved_table:
                self.fds = _restored(saved_table, running, self.fds, outs, stdout)
        if stdout != _OUT:
            out = self._route(stdout, out)
        if caller is not None:
            out = (*out, *caller.flows)
        if outs is not None:
            for sink in outs.opened:
                out += self._flush(sink)
        return out

    def _glued_number(self, c: ts.Node) -> bool:
        text = self.src[c.start_byte : c.end_byte]
        nxt = self.src[c.end_byte : c.end_byte + 1]
        return text.isdigit() and len(text) <= 5 and nxt in (b"<", b">")

    def _bare_exec(self, node: ts.Node) -> bool:
        words = [
            w
            for w in node.children_by_field_name("argument")
            if not (w.type == "number" and self._glued_number(w))
        ]
        name = node.child_by_field_name("name")
        return not words and name is not None and self.text(name) == "exec"

    def _compound(self, node: ts.Node, stdin: tuple[Flow, ...]) -> tuple[Flow, ...]:
        t = node.type
        saved = self.stdin
        self.stdin = stdin
        try:
            if t == "subshell":
                sub = self.fork()
                return sub.run_seq(node.named_children)
            if t == "while_statement" or t == "until_statement":
                looped = self._while_read(node, stdin) if t == "while_statement" else None
                if looped is not None:
                    return looped
                was, self.looping = self.looping, True
                try:
                    return self.run_seq(node.named_children)
                finally:
                    self.looping = was
            if t == "compound_statement" and node.child_count and node.children[0].type == "((":
                # ((expr)): arithmetic, with the assignments it makes
                shvars.arith_node(self, node, what="((...))")
                return ()
            if t in _BLOCKS:
                return self.run_seq(node.named_children)
            if t == "variable_assignment":
                self._assign(node)
                return ()
            if t == "variable_assignments":
                for c in node.named_children:
                    if c.type == "variable_assignment":
                        self._assign(c)
                return ()
            if t == "declaration_command":
                self._declare(node)
                return ()
            if t == "unset_command":
                self._unset(node)
                return ()
            if t == "for_statement":
                return self._for(node)
            if t == "c_style_for_statement":
                return self._c_for(node)
            if t == "case_statement":
                return self._case(node)
            if t == "function_definition":
                name = node.child_by_field_name("name")
                body = node.child_by_field_name("body")
                if name is not None and body is not None:
                    self.funcs[self.text(name)] = (body, self.src)
                return ()
            if t == "ERROR":
                return self.run_seq(node.named_children)
            if t == "test_command":
                shvars.test(self, node)
                return ()
            self.scan(node)
            return ()
        finally:
            self.stdin = saved

    def _while_read(self, node: ts.Node, stdin: tuple[Flow, ...]) -> tuple[Flow, ...] | None:
        """``while read f; do ...; done < list``: run the body once per line the analyser can read."""
        cond = node.child_by_field_name("condition")
        body = node.child_by_field_name("body")
        if cond is None or body is None or cond.type != "command":
            return None
        words = [f for c in cond.children_by_field_name("argument") for f in self.x.expand(c)]
        name = cond.child_by_field_name("name")
        if name is None or self.text(name) != "read" or not all(f.known for f in words):
            return None
        ifs = self.vars.get("IFS")
        ifs_text = " \t\n" if ifs is None else ifs.text
        for c in cond.children:
            if c.type == "variable_assignment":
                lhs = c.child_by_field_name("name")
                if lhs is None or self.text(lhs) != "IFS":
                    return None
                ifs_text = self._value_of(c.child_by_field_name("value")).text
        if ifs_text not in (" \t\n", ""):
            return None  # `IFS=, read a b`: lines split otherwise than below
        names: list[str] = []
        k = 0
        while k < len(words):
            v = words[k].value
            if v.startswith("-"):
                k += 2 if v in ("-d", "-p", "-n", "-N", "-t", "-u", "-a", "-i") else 1
                continue
            names.append(v)
            k += 1
        lines = self._lines(stdin)
        if lines is None or not names or not all(_NAME_RE.fullmatch(n) for n in names):
            return None
        out: list[Flow] = []
        for line in lines[:MAX_LOOP]:
            # IFS= keeps the line whole, blanks included
            parts = line.split(None, len(names) - 1) if ifs_text else [line]
            for i, n in enumerate(names):
                self.set_var(n, Var(parts[i] if i < len(parts) else ""))
            out.extend(self.run_seq([body]))
        if len(lines) > MAX_LOOP:
            for n in names:
                self.set_var(n, Var(None, flows=stdin))
            out.extend(self.run_seq([body]))
        return tuple(out)

    def _lines(self, flows: tuple[Flow, ...]) -> list[str] | None:
        """The lines of data the analyser can read now, or ``None``."""
        lines: list[str] = []
        for fl in flows:
            text = fl.text
            if text is None and fl.src is not None and fl.exact and not fl.names:
                text = self.run.read_text(fl.src)
            if text is None:
                return None
            lines.extend(text.splitlines())
        return lines

    def scan(self, node: ts.Node, *, skip_body: bool = False) -> None:
        """Run the command and process substitutions found anywhere inside ``node``."""
        stack = [node]
        body = node.child_by_field_name("body") if skip_body else None
        while stack:
            n = stack.pop()
            if body is not None and n == body:
                continue
            if n.type in ("command_substitution", "process_substitution"):
                acc = Acc()
                self.x.seg(n, acc, quoted=True)
                continue
            stack.extend(reversed(n.children))

    def _for(self, node: ts.Node) -> tuple[Flow, ...]:
        var = node.child_by_field_name("variable")
        body = node.child_by_field_name("body")
        values: list[Field] = []
        has_in = False
        for i, c in enumerate(node.children):
            if node.field_name_for_child(i) == "value":
                values.extend(self.x.expand(c))
            elif c.type == "in":
                has_in = True
        if not has_in:
            values = (
                [Field(p) for p in self.pos] if self.pos is not None else [Field("$@", known=False)]
            )
        if var is None or body is None:
            return ()
        name = self.text(var)
        out: list[Flow] = []
        # more passes than the bound, or words of unknown number ($(seq 100000)): a file the
        # body runs may change between passes
        was = self.looping
        self.looping = was or len(values) > MAX_LOOP or any(not f.known for f in values)
        try:
            for f in values[:MAX_LOOP]:
                self.set_var(
                    name, Var(f.value if f.known else None, flows=f.flows, obfuscated=f.obfuscated)
                )
                # tests the guard can decide choose the branches that run this time
                flows, jump = run_body(self, body)
                out.extend(flows)
                if jump == "break":
                    return tuple(out)
            if len(values) > MAX_LOOP:
                self.set_var(name, Var(None))
                out.extend(run_body(self, body)[0])
        finally:
            self.looping = was
        return tuple(out)

    def _c_for(self, node: ts.Node) -> tuple[Flow, ...]:
        """``for ((init; test; step))``: run while the test is known, up to the loop bound, then
        once more with what the loop assigns unknown."""
        parts: list[tuple[int, int]] = []  # byte ranges of init, test and step
        start = -1
        for c in node.children:
            if c.type == "((":
                start = c.end_byte
            elif c.type in (";", "))") and start >= 0:
                parts.append((start, c.start_byte))
                start = c.end_byte if c.type == ";" else -1
        body = node.child_by_field_name("body")
        if len(parts) != 3 or body is None:
            self.scan(node, skip_body=True)
            return self.run_seq([body]) if body is not None else ()
        init, test, step = parts
        ar = shvars.arith_range
        ar(self, node, init, what="for ((...))")
        out: list[Flow] = []
        for passes in range(MAX_LOOP + 1):
            go = ar(self, node, test, what="for ((...))") if test[0] < test[1] else 1
            if go == 0:
                return tuple(out)
            if go is None or passes == MAX_LOOP:
                break
            flows, jump = run_body(self, body)
            out.extend(flows)
            if jump == "break":
                return tuple(out)
            ar(self, node, step, what="for ((...))")
        # past the bound or an unknown test: any number of passes, so what they assign is
        # unknown, and a file the body runs may change between them
        ar(self, node, test, what="for ((...))", sure=False)
        ar(self, node, step, what="for ((...))", sure=False)
        was, self.looping = self.looping, True
        try:
            out.extend(run_body(self, body)[0])
        finally:
            self.looping = was
        ar(self, node, step, what="for ((...))", sure=False)
        return tuple(out)

    def _case(self, node: ts.Node) -> tuple[Flow, ...]:
        out: list[Flow] = []
        value = node.child_by_field_name("value")
        if value is not None:
            self.x.expand(value)
        # every branch may run: the guard cannot know which pattern the value matches at run time
        for item in node.named_children:
            if item.type != "case_item":
                continue
            stmts: list[ts.Node] = []
            for i, c in enumerate(item.children):
                if item.field_name_for_child(i) == "value":
                    self.scan(c)
                elif c.is_named:
                    stmts.append(c)
            out.extend(self.run_seq(stmts))
        return tuple(out)

    # ------------------------------------------------------------ assignments

    def _value_of(self, node: ts.Node | None) -> Var:
        if node is None:
            return Var("")
        if node.type == "array":
            items: list[str] = []
            flows: list[Flow] = []
            for c in node.named_children:
                for f in self.x.expand(c):
                    if not f.known:
                        return Var(None, flows=tuple(flows) + f.flows)
                    items.append(f.value)
            return Var(items[0] if items else "", items=tuple(items), flows=tuple(flows))
        f = self.x.expand_one(node, assignment=True)
        if not f.known or len(f.value) > MAX_TEXT:
            return Var(None, flows=f.flows, obfuscated=f.obfuscated)
        return Var(f.value, flows=f.flows, obfuscated=f.obfuscated)

    def _assign(self, node: ts.Node) -> str | None:
        name_node = node.child_by_field_name("name")
        if name_node is None:
            return None
        name = self.text(name_node)
        if name_node.type == "subscript":
            inner = name_node.child_by_field_name("name")
            name = self.text(inner) if inner is not None else name
            index = name_node.child_by_field_name("index")
            # the subscript is expanded (and evaluated, for an indexed array): it may run code
            key = shvars.subscript(self, name, index) if index is not None else None
            value = self._value_of(node.child_by_field_name("value"))
            shvars.set_element(self, name, key, value)
            return name
        value = self._value_of(node.child_by_field_name("value"))
        appends = any(c.type == "+=" for c in node.children)
        if appends:
            old = self.x.get_var(name) or Var(None)
            before, more, flows = old.text, value.text, old.flows + value.flows
            if before is None or more is None or len(before) + len(more) > MAX_TEXT:
                value = Var(None, flows=value.flows)
            elif "i" in self.attrs.get(name, ""):
                value = Var(f"({before})+({more})", flows=flows)  # an integer adds
            else:
                value = Var(before + more, flows=flows)
        self.set_var(name, value)
        return name

    def _declare(self, node: ts.Node) -> None:
        kw = node.children[0].type if node.children else ""
        items: list[Field | tuple[str, Var]] = []
        for c in node.named_children:
            if c.type == "variable_assignment":
                name_node = c.child_by_field_name("name")
                if name_node is None:
                    continue
                if name_node.type == "subscript":
                    # `declare a[$(cmd)]=1`: given as text, evaluated by declare
                    index = name_node.child_by_field_name("index")
                    inner = name_node.child_by_field_name("name")
                    base = self.text(inner) if inner is not None else ""
                    key = shvars.subscript(self, base, index) if index is not None else None
                    value = self._value_of(c.child_by_field_name("value"))
                    shvars.set_element(self, base, key, value)
                    items.append((base, Var(None, flows=value.flows)))
                    continue
                value = self._value_of(c.child_by_field_name("value"))
                if any(k.type == "+=" for k in c.children):
                    old = self.x.get_var(self.text(name_node))
                    if old is None or old.text is None or value.text is None:
                        value = Var(None, flows=value.flows)
                    else:
                        value = Var(old.text + value.text, flows=old.flows + value.flows)
                items.append((self.text(name_node), value))
            elif c.type == "variable_name":
                items.append(Field(self.text(c), raw=self.text(c)))
            else:
                items.extend(self.x.expand(c))
        self.declare(kw, items)

    def _unset(self, node: ts.Node) -> None:
        fields: list[Field] = []
        for c in node.named_children:
            fields.extend(self.x.expand(c))
        shvars.unset(self, fields)

    # -------------------------------------------------------------- expansion

    def substitution(self, node: ts.Node) -> tuple[Flow, ...] | None:
        """Run the body of ``$(...)``/`` `...` `` in a subshell; its standard output."""
        if self.nest + 1 >= MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="substitution nested too deeply to analyse",
                unseen=True,
            )
            return None
        sub = self.fork()
        sub.nest += 1
        kids = [c for c in node.named_children if c.type not in _SKIP]
        if kids and all(c.type == "file_redirect" for c in kids):
            # $(<file) is bash's shorthand for $(cat file)
            given, _, _ = sub._redirects(kids)
            return given or ()
        return sub.run_seq(kids)

    # --------------------------------------------------------------- commands

    def command_words(
        self, node: ts.Node, extra: list[ts.Node]
    ) -> tuple[list[ts.Node], list[ts.Node], list[list[ts.Node]]]:
        """A command's own redirects, its assignments, and its words grouped as bash reads them."""
        redirects: list[ts.Node] = []
        assigns: list[ts.Node] = []
        words: list[ts.Node] = []
        for i, c in enumerate(node.children):
            fname = node.field_name_for_child(i)
            if fname == "redirect":
                redirects.append(c)
            if c.type == "variable_assignment":
                assigns.append(c)
            elif fname == "name":
                words.append(c.children[0] if c.type == "command_name" and c.child_count else c)
            elif fname == "argument":
                if c.type == "number" and self._glued_number(c):
                    continue  # `cat 0<w`: the 0 is the redirect's fd, not an argument
                words.append(c)
        words.extend(extra)
        groups: list[list[ts.Node]] = []
        src = self.src
        for w in words:
            if groups:
                last = groups[-1]
                end = last[-1].end_byte
                start = w.start_byte
                # glued to the previous word, or joined to it by a backslash-newline
                if end == start or (end < start and src[end:start] == b"\\\n"):
                    last.append(w)
                    continue
            groups.append([w])
        return redirects, assigns, groups

    def _command(
        self, assigns: list[ts.Node], groups: list[list[ts.Node]], stdin: tuple[Flow, ...]
    ) -> tuple[Flow, ...]:
        self.run.tick()
        if len(groups) > MAX_ARGS:
            self.run.emit(
                EffectKind.UNKNOWN, certain=False, note=f"command with more than {MAX_ARGS} words"
            )
            groups = groups[:MAX_ARGS]
        sinks: list[tuple[ts.Node, bytes]] = []
        fields: list[Field] = []
        x = self.x
        for g in groups:
            fields.extend(x.expand_group(g, sinks=sinks))
            if len(fields) > MAX_ARGS:
                self.run.emit(
                    EffectKind.UNKNOWN,
                    certain=False,
                    note=f"command with more than {MAX_ARGS} words",
                )
                break
        if not fields:
            for a in assigns:
                self._assign(a)
            return ()
        if groups and self._name_obfuscated(groups[0], fields[0].value):
            fields[0].obfuscated = True
        out = self._with_prefix(assigns, fields, stdin) if assigns else self.dispatch(fields, stdin)
        if sinks:
            # what a command writes to a >(cmd) argument is its input and the files it reads
            feed = stdin + tuple(
                fl for f in fields[1:] if f.known and not f.pipe for fl in self._existing_content(f)
            )
            for sink in sinks:
                self._run_sink(sink, feed)
        return out

    def _with_prefix(
        self, assigns: list[ts.Node], fields: list[Field], stdin: tuple[Flow, ...]
    ) -> tuple[Flow, ...]:
        """``A=1 cmd``: the assignments hold (exported) while ``cmd`` runs, in this shell.

        Only those variables are put back afterwards: what the command does to the rest of the
        shell stays, as in bash (``A=1 cd d`` changes folder, ``A=1 f`` runs the function
        here). ``A=1 export A`` keeps the value; before another special builtin, POSIX mode
        (``sh``, ``set -o posix``) keeps it too, so the variable is then unknown.
        """
        temp: dict[str, tuple[Var | None, str | None]] = {}
        was_exported: set[str] = set()
        home = self.home
        for a in assigns:
            n = a.child_by_field_name("name")
            if n is not None and n.type == "subscript":
                n = n.child_by_field_name("name")
            name = self.text(n) if n is not None else ""
            if name and name not in temp:
                temp[name] = (self.vars.get(name), self.attrs.get(name))
                if name in self.exported:
                    was_exported.add(name)
        saved, self.temp = self.temp, temp
        try:
            for a in assigns:
                assigned = self._assign(a)
                if assigned:
                    self.exported.add(assigned)
            return self.dispatch(fields, stdin)
        finally:
            self.temp = saved
            special = fields[0].known and fields[0].value in shvars.SPECIAL_BUILTINS
            for name, (old, attrs) in temp.items():
                if special and self.vars.get(name) != old:
                    self.vars[name] = Var(None)
                    continue
                shvars.scope_restore(self, {name: (old, attrs)})
                if name == "HOME":
                    self.home = home
                if name not in was_exported:
                    self.exported.discard(name)

    def _existing_content(self, f: Field) -> tuple[Flow, ...]:
        loc = self.loc(f)
        if loc.path is None:
            return ()
        text = self.run.written_text(loc)
        if text is not None:
            return (Flow(src=loc, text=text),)  # written earlier in the line: what it holds
        if self.run.isdir(loc.path):
            return (Flow(src=loc, recursive=True),)
        if self.run.exists(loc.path):
            return (Flow(src=loc, recursive=False),)
        return ()

    def _name_obfuscated(self, nodes: list[ts.Node], name: str) -> bool:
        """A command name written other than plainly: escapes, pieces, braces, expansions.

        ``cp``, ``"cp"``, ``'cp'`` and ``\\cp`` are plain; ``'c''p'``, ``c\\p``, ``{cp,a,b}`` and
        ``$'\\x63p'`` are how an agent hides a command from a reader, and are reported.
        """
        raw = self.src[nodes[0].start_byte : nodes[-1].end_byte].decode("utf-8", "replace")
        if raw == name:
            return False
        if _EXPANSION.search(raw) and "$'" not in raw:
            # expansions are judged on what they produce (Field.dynamic): "$HOME/bin/x" is fine
            return False
        return raw not in (name, f'"{name}"', f"'{name}'", "\\" + name)

    def dispatch(self, fields: list[Field], stdin: tuple[Flow, ...]) -> tuple[Flow, ...]:
        """Run a command given as expanded fields (also used by wrappers such as ``sudo``)."""
        head = fields[0]
        name = head.value
        if not head.known or head.loc is not None:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                via=head.raw or name,
                note=f"obfuscated command name: {short(head.raw or name)} cannot be resolved",
            )
            c = Cmd(self, head.raw or name, fields[1:], stdin, head.raw or name)
            return TABLE["/unknown"](c)
        if head.obfuscated or head.dynamic:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                via=name,
                note=f"obfuscated command name: {short(head.raw)} runs {short(name)}",
            )
        if name in self.aliases and self.nest < MAX_NEST:
            text = self.aliases.pop(name)
            try:
                rest, ph = joined_script(fields[1:])
                self.vars.update(ph)
                return self.run_nested_text(text + " " + rest, what="alias")
            finally:
                self.aliases[name] = text
        if name in self.funcs:
            return self._call_function(name, fields[1:], stdin)
        vars_ = self.vars
        if not CODE_ENV.isdisjoint(vars_):
            self._code_env()
        if self.hashed and name in self.hashed:
            # hash -p, BASH_CMDS[name]=path: the program at that path (/bin/cp is cp)
            return self._program(self.hashed[name], fields, stdin, name)
        base = name
        if "/" in name:
            d, b = os.path.split(name)
            if os.path.normpath(d) in _SYSTEM_BIN and b in TABLE:
                return TABLE[b](Cmd(self, b, fields[1:], stdin, b))  # /bin/cp is cp
            return self._program(name, fields, stdin)
        handler = TABLE.get(base)
        path_var = vars_.get("PATH")
        if handler is None or (path_var is not None and path_var.text != self.run.path0):
            # An unknown name, or a PATH this command line changed: find what really runs.
            found = self.which(base)
            if found is not None:
                return self._program(found, fields, stdin, base)
            if handler is None and "command_not_found_handle" in self.funcs:
                # bash calls this function, given the command line, for a name it cannot find
                self._call_function("command_not_found_handle", fields, stdin)
        return (handler or TABLE["/unknown"])(Cmd(self, base, fields[1:], stdin, base))

    def _program(
        self, path: str, fields: list[Field], stdin: tuple[Flow, ...], via: str | None = None
    ) -> tuple[Flow, ...]:
        """Run the program at ``path``: a link to a system program the table knows is that
        program (``ln -s /bin/bash ls; ./ls -c ...`` is bash), anything else a script or
        binary read from disk."""
        loc = self.local(path)
        if loc.path is not None and loc.path not in self.run.overlay:
            d, b = os.path.split(loc.path)
            if d in _SYSTEM_BIN and b in TABLE:
                return TABLE[b](Cmd(self, b, fields[1:], stdin, b))
        return TABLE["/script"](Cmd(self, path, fields[1:], stdin, via or path))

    def which(self, name: str) -> str | None:
        """The program ``name`` runs through ``PATH`` when it lies where the agent can write
        (see :meth:`Run.writable`); ``None`` when the first one found is installed elsewhere
        (the name then means what the command table says) or nothing is found."""
        path_var = self.vars.get("PATH")
        if path_var is None:
            search = self.run.path0
        elif path_var.text is None:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                via=name,
                note=f"PATH holds folders the analyser cannot see: {short(name)} may run anything",
                unseen=True,
            )
            return None
        else:
            search = path_var.text
        known = name in TABLE
        for d in search.split(":")[:64]:
            if not d.startswith("/"):
                if self.cwd is None:
                    return None
                d = os.path.join(self.cwd, d or ".")
            if known and os.path.normpath(d) in _SYSTEM_BIN:
                return None  # the system's own program, which the table describes
            candidate = os.path.join(d, name)
            loc = self.local(candidate)
            if loc.path is None:
                continue
            if loc.path in self.run.overlay or (
                self.run.isfile(loc.path) and os.access(loc.path, os.X_OK)
            ):
                # A program the operator installed is the program its name says; one in a
                # place the agent can write may be anything, so it is read.
                return candidate if self.run.writable(loc.path) else None
        return None

    def _code_env(self) -> None:
        """Variables this command line set that make programs run code: a command they hold is
        analysed (``GIT_SSH_COMMAND``, ``PAGER``), a place they load code from is unseen
        (``LD_PRELOAD``, ``PYTHONPATH``)."""
        run = self.run
        for name in sorted(self.vars.keys() & CODE_ENV):
            if name not in self.exported and name not in SHELL_OWN_ENV:
                continue  # a child process never sees it
            var = self.vars[name]
            if run.env0.get(name, None) == var.text and name in run.env0:
                continue
            key = ("code-env", name, var.text)
            if key in run.seen:
                continue
            run.seen.add(key)
            if name in COMMAND_ENV and var.text is not None:
                text = var.text.lstrip("|").replace("%s", "x")
                sub = self.new_shell(
                    cwd=self.cwd, home=self.home, host=self.host, stdin=(),
                    variables=self.env_vars(), pos=[], arg0="sh",
                )  # fmt: skip
                if sub is not None:
                    sub.run_text(text, what=f"${name}")
                continue
            run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                via="bash",
                note=f"sets {name}: programs then run code the analyser does not read",
                unseen=True,
            )

    def _call_function(
        self, name: str, args: list[Field], stdin: tuple[Flow, ...]
    ) -> tuple[Flow, ...]:
        if self.nest + 1 >= MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note=f"function {name} recurses too deeply",
                unseen=True,
            )
            return (OPAQUE,)
        body, src = self.funcs[name]
        saved_pos, saved_src, saved_stdin = self.pos, self.src, self.stdin
        saved_scope, self.scope = self.scope, {}
        self.pos = [a.value for a in args] if all(a.known for a in args) else None
        self.src = src
        self.stdin = stdin
        self.nest += 1
        try:
            return self._unit(_Unit(body, "", src), stdin)
        finally:
            self.nest -= 1
            self.pos, self.src, self.stdin = saved_pos, saved_src, saved_stdin
            if self.scope:
                shvars.scope_restore(self, self.scope)
            self.scope = saved_scope

    # -------------------------------------------------------------- redirects

    def _redirects(
        self, redirects: list[ts.Node]
    ) -> tuple[tuple[Flow, ...] | None, _Fds | None, dict[int, tuple[Flow, ...]]]:
        """Apply redirects in order, as bash does: the command's stdin, its output descriptors
        (``None``: left as the shell has them) and the data open on its other input fds.

        ``N<FILE`` opens FILE on fd N, ``N>FILE`` opens it for writing; ``N>&M`` and ``N<&M``
        make fd N a copy of fd M as it is at that point (``2>x >&2`` sends standard output to
        x); ``/dev/stdout`` and kin as a target are such copies too.
        """
        stdin: tuple[Flow, ...] | None = None
        outs: _Fds | None = None
        fdin: dict[int, tuple[Flow, ...]] = {}
        for r in redirects:
            t = r.type
            if t == "heredoc_redirect":
                stdin = self._heredoc(r)
                continue
            if t == "herestring_redirect":
                words = list(r.named_children)
                if not words:
                    continue
                f = self.x.expand_one(words[-1])
                if f.known:
                    stdin = (Flow(text=f.value + "\n", decoded=f.obfuscated),)
                else:
                    stdin = (*f.flows, OPAQUE)
                continue
            if t != "file_redirect":
                continue
            op = ""
            fd: int | None = None
            dest: ts.Node | None = None
            for i, c in enumerate(r.children):
                fname = r.field_name_for_child(i)
                if fname == "descriptor":
                    text = self.text(c)
                    fd = int(text) if text.isdigit() and len(text) < 6 else None
                elif fname == "destination" and dest is None:
                    dest = c
                elif not c.is_named:
                    op = c.type
                elif c.type == "ERROR" and op == "<" and self.text(c) == ">":
                    op = "<>"  # the grammar does not know bash's read-write redirect
            if fd is None:
                fd = self._glued_fd(r)
            if dest is None:
                continue
            proc: tuple[ts.Node, bytes] | None = None
            if dest.type == "process_substitution":
                acc = Acc()
                self.x.procsub(dest, acc)
                proc = acc.sinks[0] if acc.sinks else None
                text = self.text(dest)
                fields = [Field(text, raw=text, known=False, flows=tuple(acc.flows), pipe=True)]
            else:
                fields = self._targets(dest)
            if op in ("<", "<<<", "<>"):
                n = 0 if fd is None else fd
                data = tuple(fl for f in fields for fl in self._input(f))
                if n == 0:
                    stdin = data
                else:
                    fdin[n] = data
                if op == "<>":
                    outs = outs or _Fds(dict(self.fds), [], set())
                    self._open(outs, _Sink("<>", n, self._places(fields), proc))
                continue
            outs = outs or _Fds(dict(self.fds), [], set())
            table = outs.table
            n = (0 if op[0] == "<" else 1) if fd is None else fd
            one = fields[0] if len(fields) == 1 else None
            if op in ("<&", ">&", "<&-", ">&-"):
                if op[-1] == "-" or (one is not None and one.known and one.value == "-"):
                    # closed: nothing can be read or written there
                    if n == 0:
                        stdin = ()
                    else:
                        fdin[n] = ()
                    table[n] = _CLOSED
                    outs.changed.add(n)
                    continue
                word = _FD_WORD.fullmatch(one.value) if one is not None and one.known else None
                if word is None:
                    if op == ">&":
                        # `>&file` is `&>file`; `2>&file` opens file on fd 2
                        sink = _Sink(">", -1 if fd is None else n, self._places(fields), proc)
                        self._open(outs, sink)
                    else:
                        # an fd the analyser cannot read: data of unknown origin
                        fdin[-1] = (*(one.flows if one is not None else ()), OPAQUE)
                    continue
                src = int(word.group(1))
                self._dup(outs, n, src, fdin, stdin)
                if word.group(2) and src != n:
                    # `n>&m-` moves m to n: m is closed after
                    table[src] = _CLOSED
                    fdin[src] = ()
                    outs.changed.add(src)
                if n == 0 and 0 in fdin:
                    stdin = fdin.pop(0)
                continue
            if one is not None and one.known and not one.pipe and one.loc is None:
                m = fd_number(one.value, self.cwd)
                if m is not None:
                    # bash opens these as copies of its own descriptors
                    targets = (1, 2) if op in ("&>", "&>>") else (n,)
                    for k in targets:
                        self._dup(outs, k, m, fdin, stdin)
                    continue
            sink = _Sink(op, -1 if op in ("&>", "&>>") else n, self._places(fields), proc)
            self._open(outs, sink)
        return stdin, outs, fdin

    def _targets(self, dest: ts.Node) -> list[Field]:
        """The words a redirect's target expands to: bash globs and splits it (one word must
        come out; more is an error, taken here as any of them). A POSIX ``sh`` does not glob
        there: as ``$0`` does not tell which shell runs, both are taken."""
        fields = self.x.expand(dest)
        if not fields:
            return [self.x.expand_one(dest)]
        if os.path.basename(self.arg0) in _POSIX_SHELLS and has_glob(self.text(dest)):
            word = self.x.expand_one(dest)
            if all(f.value != word.value for f in fields):
                fields.append(word)
        return fields

    def _places(self, fields: list[Field]) -> list[Location]:
        return [self.loc(f) for f in fields if not f.pipe]

    @staticmethod
    def _open(outs: _Fds, sink: _Sink) -> None:
        outs.opened.append(sink)
        for n in (1, 2) if sink.fd == -1 else (sink.fd,):
            outs.table[n] = sink
            outs.changed.add(n)

    def _dup(
        self,
        outs: _Fds,
        n: int,
        m: int,
        fdin: dict[int, tuple[Flow, ...]],
        stdin: tuple[Flow, ...] | None,
    ) -> None:
        """``n>&m`` (or ``n<&m``): fd n is now what fd m is, for reading and for writing."""
        table = outs.table
        if m in fdin:
            fdin[n] = fdin[m]
        elif m == 0 and stdin is not None:
            fdin[n] = stdin
        elif m == 0 or m in self.infds or (self.open_fds is not None and m in self.open_fds):
            fdin[n] = self.fd_flows(m)
        elif n == 0:
            fdin[0] = ()  # standard input from a descriptor open for writing: nothing comes
        if m in table or m in (1, 2):
            table[n] = table.get(m, _OUT if m == 1 else _ERR)
        else:
            table[n] = _CLOSED  # bash fails on a descriptor that is not open
        outs.changed.add(n)

    def _glued_fd(self, r: ts.Node) -> int | None:
        """``cat 0<w``: digits glued to a redirect name its fd (the grammar makes them a word)."""
        src = self.src
        i = r.start_byte
        while i > 0 and 48 <= src[i - 1] <= 57:
            i -= 1
        if i == r.start_byte or r.start_byte - i > 5 or (i > 0 and src[i - 1] not in b" \t"):
            return None
        if src[r.start_byte : r.start_byte + 1] not in (b"<", b">"):
            return None
        return int(src[i : r.start_byte])

    def _input(self, f: Field) -> tuple[Flow, ...]:
        if f.pipe:
            return f.flows
        if f.known and f.loc is None:
            fd = fd_number(f.value, self.cwd)
            if fd is not None:
                return self.fd_flows(fd) if fd not in (1, 2) else ()
        loc = self.loc(f)
        if loc.path is not None and (_DEV_NET.fullmatch(loc.path) or loc.path in _DEV_SINKS):
            return (OPAQUE,)
        if loc.path in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
            return self.stdin
        if loc.path is not None and loc.path.startswith("/dev/"):
            return ()
        self.run.emit(EffectKind.READ, loc, via="<")
        return (Flow(src=loc, recursive=False),)

    def _heredoc(self, r: ts.Node) -> tuple[Flow, ...]:
        start = ""
        body_node: ts.Node | None = None
        strip_tabs = False
        for c in r.children:
            if c.type == "heredoc_start":
                start = self.text(c)
            elif c.type == "heredoc_body":
                body_node = c
            elif c.type == "<<-":
                strip_tabs = True
        if body_node is None:
            return (Flow(text=""),)
        quoted = any(q in start for q in "'\"\\")
        if quoted:
            text = self.text(body_node)
        else:
            acc = Acc()
            pos = body_node.start_byte
            for c in body_node.children:
                if c.start_byte > pos:
                    acc.add(
                        unescape_dq(self.src[pos : c.start_byte].decode("utf-8", "replace")), "q"
                    )
                pos = max(pos, c.end_byte)
                if c.type == "heredoc_content":
                    acc.add(unescape_dq(self.text(c)), "q")
                else:
                    self.x.seg(c, acc, quoted=True)
            if body_node.end_byte > pos:
                acc.add(
                    unescape_dq(self.src[pos : body_node.end_byte].decode("utf-8", "replace")), "q"
                )
            if not acc.known:
                return (*acc.flows, OPAQUE)
            text = "".join(t for t, _ in acc.parts)
        if strip_tabs:
            text = "\n".join(line.lstrip("\t") for line in text.split("\n"))
        # tree-sitter keeps the indentation of the closing delimiter line in the body
        if text.endswith("\n\t") or (strip_tabs and not text.endswith("\n")):
            text = text.rstrip("\t")
        return (Flow(text=text),)

    def write_fd(self, fd: int, flows: tuple[Flow, ...]) -> tuple[Flow, ...]:
        """Data the running command writes on descriptor ``fd`` by itself (a trace on standard
        error): into the file a redirect opened there; returns what reaches this walk's output
        (a descriptor sent to standard output, as ``2>&1`` does)."""
        entry = self.fds.get(fd, _CLOSED)
        return self._route(entry, flows) if flows else ()

    def _route(self, entry: FdEntry, out: tuple[Flow, ...]) -> tuple[Flow, ...]:
        """Send a command's standard output where ``entry`` says; returns what comes back to
        the caller of this walk (a pipe, a substitution, the agent)."""
        if isinstance(entry, _Sink):
            entry.stdout = True
            if entry.live and entry.op == "<>":
                # written over from the start, not truncated or appended: unknown content
                return self._write(entry, (*out, OPAQUE), append=False) if out else ()
            if entry.live:
                return self._write(entry, out, append=True) if out else ()
            entry.flows.extend(out)
            return ()
        return out if entry == _OUT else ()

    def _flush(self, sink: _Sink) -> tuple[Flow, ...]:
        """Write out what a command or group sent to a sink its redirect opened."""
        if sink.op == "<>":
            flows: tuple[Flow, ...] = (*sink.flows, OPAQUE)  # written over, not truncated
        elif sink.stdout or sink.fd in (1, -1):
            flows = tuple(sink.flows)
        else:
            flows = (OPAQUE,)  # standard error or another descriptor: anything may come
        # a copy of it kept by an `exec` inside (`{ exec 3>&1; } > f`) still writes there
        sink.live = True
        return self._write(sink, flows, append=sink.op in (">>", "&>>"))

    def _write(self, sink: _Sink, flows: tuple[Flow, ...], *, append: bool) -> tuple[Flow, ...]:
        if sink.proc is not None:
            return self._run_sink(sink.proc, flows)
        for loc in sink.targets:
            self.run.sink_file(loc, flows, append=append)
        return ()

    def _run_sink(self, sink: tuple[ts.Node, bytes], stdin: tuple[Flow, ...]) -> tuple[Flow, ...]:
        """Run the command of a ``>(cmd)`` with ``stdin`` as its input; returns its output."""
        node, src = sink
        sub = self.fork()
        sub.src = src
        sub.stdin = stdin
        sub.nest += 1
        # what it prints goes where the shell's standard output went (handed back here), and
        # nothing it writes comes back into itself
        sub.fds = {
            n: v
            for n, v in sub.fds.items()
            if n != 1 and not (isinstance(v, _Sink) and v.proc is sink)
        }
        if sub.nest >= MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="process substitution nested too deeply to analyse",
                unseen=True,
            )
            return ()
        return sub.run_seq(c for c in node.named_children if c.type not in _SKIP)

    def sink_field(
        self, f: Field, flows: tuple[Flow, ...], *, append: bool, via: str = ""
    ) -> tuple[Flow, ...]:
        """Data written to the file word ``f``; returns what still reaches standard output.

        ``/dev/stderr``, ``/dev/fd/N`` and kin name the running command's own descriptors
        (``tee /dev/stderr`` under ``2>&1 >/dev/null`` writes into the pipe): the data goes
        where that descriptor goes, as a redirect's would."""
        if f.pipe:
            return ()
        n = fd_number(f.value, self.cwd) if f.known else None
        if n is not None:
            return self.write_fd(n, flows)
        return self.run.sink_file(self.loc(f), flows, append=append, via=via)


def _restored(
    before: dict[int, FdEntry],
    running: dict[int, FdEntry],
    after: dict[int, FdEntry],
    outs: _Fds | None,
    stdout: FdEntry,
) -> dict[int, FdEntry]:
    """A shell's descriptors once a command or group with redirects ends: as they were, but
    for what a bare ``exec`` inside it changed (``{ exec 3>f; }`` keeps fd 3), unless the
    group's own redirects covered that descriptor (bash restores those). Inside, "out" was
    the group's standard output, ``stdout``."""
    table = dict(before)
    for n, v in after.items():
        if running.get(n) is not v and (outs is None or n not in outs.changed):
            table[n] = stdout if v == _OUT else v
    return table


def joined_script(fields: Iterable[Field]) -> tuple[str, dict[str, Var]]:
    """Words joined into a script (as ``ssh`` and ``eval`` do), unknown words as placeholders.

    An unknown word becomes a reference to a variable that the nested shell does not know, so it
    stays unresolved there, and carries the data that fed it.
    """
    parts: list[str] = []
    ph: dict[str, Var] = {}
    for f in fields:
        if f.known:
            parts.append(f.value)
            continue
        word: list[str] = []
        for text, unknown in f.pieces or ((f.value, True),):
            if not unknown:
                word.append(text)
                continue
            name = f"__peerguard_unknown_{len(ph)}"
            ph[name] = Var(None, flows=f.flows, obfuscated=f.obfuscated)
            word.append("${" + name + "}")
        parts.append("".join(word))
    return " ".join(parts), ph


_NO_OPTS: frozenset[str] = frozenset()
# Variables whose value is a command some program runs (analysed as shell text)...
COMMAND_ENV = names(
    "PAGER MANPAGER GIT_PAGER EDITOR VISUAL GIT_EDITOR GIT_SEQUENCE_EDITOR SUDO_EDITOR "
    "GIT_SSH_COMMAND GIT_SSH GIT_ASKPASS SSH_ASKPASS SUDO_ASKPASS RSYNC_RSH CVS_RSH BROWSER "
    "GIT_EXTERNAL_DIFF LESSOPEN LESSCLOSE PROMPT_COMMAND PS0 PS1 PS2 PS4"
)
# The ones the shell itself runs, exported or not.
SHELL_OWN_ENV = names("PROMPT_COMMAND PS0 PS1 PS2 PS4")
# ...and variables that make programs load code or options from places the analyser does not read.
CODE_ENV = COMMAND_ENV | names(
    "LD_PRELOAD LD_AUDIT LD_LIBRARY_PATH GCONV_PATH PYTHONPATH PYTHONSTARTUP PYTHONHOME "
    "PYTHONUSERBASE PERL5OPT PERL5LIB PERLLIB PERL5DB RUBYOPT RUBYLIB NODE_OPTIONS NODE_PATH "
    "GIT_EXEC_PATH GIT_TEMPLATE_DIR GIT_CONFIG GIT_CONFIG_GLOBAL GIT_CONFIG_SYSTEM "
    "GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT ZDOTDIR XDG_CONFIG_HOME "
    "TAR_OPTIONS ZIP ZIPOPT UNZIP UNZIPOPT"
)
# Options that change which files a word names; the rest do not matter to the analysis.
GLOB_OPTIONS = frozenset(
    ("globstar", "dotglob", "extglob", "nullglob", "failglob", "nocaseglob", "noglob", "physical")
)


def inherited_options(variables: Mapping[str, Var]) -> frozenset[str] | None:
    """The glob options a new bash takes from ``BASHOPTS`` and ``SHELLOPTS`` in its environment
    (``None`` when either is set to something the analyser cannot read)."""
    found: set[str] = set()
    for name in ("BASHOPTS", "SHELLOPTS"):
        var = variables.get(name)
        if var is None:
            continue
        if var.text is None:
            return None
        found.update(o for o in var.text.split(":") if o in GLOB_OPTIONS)
    return frozenset(found) if found else _NO_OPTS


def root_state(ctx: ShellContext, run: Run) -> State:
    """The state of the shell described by ``ctx``."""
    variables = (
        {k: Var(v) for k, v in ctx.env.items() if k not in shvars.DYNAMIC} if ctx.env else {}
    )
    if "PATH" not in variables:
        # The command's shell is taken to search the PATH this machine's processes have.
        variables["PATH"] = Var(run.path0)
    home = ctx.home if ctx.home is not None else ctx.cwd
    stdin = (
        tuple(
            Flow(src=loc, recursive=loc.path is not None and run.isdir(loc.path))
            for loc in ctx.stdin
        )
        if ctx.stdin
        else ()
    )
    st = State(
        run,
        cwd=ctx.cwd,
        home=home,
        host=ctx.host,
        depth=ctx.depth,
        nest=0,
        stdin=stdin,
        variables=variables,
    )
    if any(k.startswith("BASH_FUNC_") for k in variables):
        shvars.import_functions(st)  # functions exported to the command's shell
    st.exported = set(variables)
    st.globopts = inherited_options(variables)
    return st


def analyse(command: str | bytes, ctx: ShellContext) -> list[Effect]:
    """What running ``command`` in ``ctx`` would do, as effects in order, without duplicates.

    Args:
        command: The shell command line (bytes are decoded as UTF-8, bad bytes replaced).
        ctx: Where the shell runs and what it can see.

    Returns:
        The effects. Anything the analyser cannot understand is an ``UNKNOWN`` effect with
        ``certain=False`` and a note; a bound reached (time, size, nesting) is one that is
        also ``unseen``: the rest of the command was not looked at.

    Raises:
        AnalysisError: The analyser itself failed (a bug). The engine denies the call and
            raises an enforcement-gap alert; a guess here would hide the bug.
    """
    run = Run(ctx.hosts, ctx.env, ctx.roots)
    try:
        if isinstance(command, _BYTES_TYPES):
            text = bytes(command).decode("utf-8", "replace")
        else:
            text = str(command)
        st = root_state(ctx, run)
        if ctx.depth > MAX_DEPTH:
            run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="shell nested too deeply to analyse",
                unseen=True,
            )
        else:
            st.run_text(text)
    except Exhausted as exc:
        run.give_up(f"analysis stopped: {exc}")
    except RecursionError:
        run.give_up("analysis stopped: command nested too deeply")
    except Exception as exc:
        raise AnalysisError(f"the shell analyser failed: {type(exc).__name__}: {exc}") from exc
    return run.effects
