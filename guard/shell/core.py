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
from guard.shell.conditions import run_body
from guard.shell.expand import Acc, Expander, unescape_dq
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
# for ((i = 0; i < 10; i++)): a loop whose passes can be counted
_COUNTED = re.compile(
    r"for\s*\(\(\s*(\w+)\s*=\s*(\d{1,6})\s*;\s*(\w+)\s*(<=?)\s*(\d{1,6})\s*;"
    r"\s*(?:(\w+)\s*\+\+|\+\+\s*(\w+)|(\w+)\s*\+=\s*1)\s*\)\)"
)


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


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for command names (each argument may hold several, space-separated)."""

    def deco(fn: Handler) -> Handler:
        for group in names:
            for n in group.split():
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


@dataclass(slots=True)
class _Out:
    """An output redirect: operator, file descriptor (-1: stdout and stderr) and target."""

    op: str
    fd: int
    target: Field
    sink: tuple[ts.Node, bytes] | None = None  # a process substitution: >(cmd)


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
        "cwd",
        "depth",
        "dirstack",
        "exported",
        "fds",
        "funcs",
        "globopts",
        "hashed",
        "home",
        "host",
        "host_root",
        "infds",
        "looping",
        "nest",
        "open_fds",
        "out_sink",
        "pos",
        "run",
        "src",
        "stdin",
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
        self.aliases: dict[str, str] = {}
        self.pos = pos
        self.arg0 = arg0
        self.src = b""
        self.dirstack: list[str | None] = []
        self.out_sink: Location | None = None
        self.fds: dict[int, Location] = {}  # exec 3> file
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
        s.aliases = dict(self.aliases)
        s.src = self.src
        s.dirstack = list(self.dirstack)
        s.out_sink = self.out_sink
        s.fds = dict(self.fds)
        s.infds = dict(self.infds)
        s.open_fds = self.open_fds
        s.globopts = self.globopts
        s.hashed = dict(self.hashed)
        s.looping = self.looping
        s.allexport = self.allexport
        return s

    def env_vars(self) -> dict[str, Var]:
        """The variables a child process inherits: the exported ones."""
        return {k: v for k, v in self.vars.items() if k in self.exported}

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
        s.exported = set(s.vars)
        s.globopts = inherited_options(s.vars)
        s.looping = self.looping
        return s

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
        if fd in self.fds:
            out = self.fds[fd]
            return Location(raw=raw, path=out.path, host=out.host, visible=out.visible)
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
                if u.op != "|" and group:
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
                        pending = "|" if c.type in ("|", "|&") else c.type
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
        for u in group:
            flows = self.fork()._unit(u, flows)
        return flows or ()

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
            own, assigns, groups = self._words(node, u.extra)
            redirects = own + redirects if redirects else own
        given: tuple[Flow, ...] | None = None
        outs: list[_Out] = []
        fdin: dict[int, tuple[Flow, ...]] = {}
        if redirects:
            given, outs, fdin = self._redirects(redirects)
        if t == "command" and (outs or given is not None or fdin) and self._bare_exec(node):
            # `exec >f`, `exec 3>f`, `exec <f`: the redirects stay for the rest of this shell
            for o in outs:
                self.sink_field(o.target, (), append=o.op in (">>", "&>>"))
                loc = self.loc(o.target)
                if o.fd in (1, -1):
                    self.out_sink = loc
                else:
                    self.fds[o.fd] = loc
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
            fds = {**self.infds, **fdin}
            # data open on any other fd may be read by the command: count it as its input
            more = tuple(fl for data in fds.values() for fl in data if fl not in stdin)
            if more:
                stdin = stdin + tuple(dict.fromkeys(more))
            open_fds = {**fds, 0: stdin}
        saved_fds = self.open_fds
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
        if outs:
            out = self._apply_out(outs, out)
        if self.out_sink is not None and out:
            self.run.sink_file(self.out_sink, out, append=True)
            out = ()
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
                self.scan(node, skip_body=True)
                body = node.child_by_field_name("body")
                if body is None:
                    return ()
                # passes the analyser cannot count: a file the body runs may change between them
                was, self.looping = self.looping, self.looping or not self._few_passes(node)
                try:
                    return self.run_seq([body])
                finally:
                    self.looping = was
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
            self.scan(node)
            return ()
        finally:
            self.stdin = saved

    def _few_passes(self, node: ts.Node) -> bool:
        """``for ((i = A; i < B; i++))`` with at most ``MAX_LOOP`` passes."""
        m = _COUNTED.match(self.text(node))
        if m is None or len({m.group(1), m.group(3), m.group(6) or m.group(7) or m.group(8)}) != 1:
            return False
        return int(m.group(5)) - int(m.group(2)) + (m.group(4) == "<=") <= MAX_LOOP

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
            parts = line.split(None, len(names) - 1)
            for i, n in enumerate(names):
                self.vars[n] = Var(parts[i] if i < len(parts) else "")
            out.extend(self.run_seq([body]))
        if len(lines) > MAX_LOOP:
            for n in names:
                self.vars[n] = Var(None, flows=stdin)
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
                self.vars[name] = Var(
                    f.value if f.known else None, flows=f.flows, obfuscated=f.obfuscated
                )
                # tests the guard can decide choose the branches that run this time
                flows, jump = run_body(self, body)
                out.extend(flows)
                if jump == "break":
                    return tuple(out)
            if len(values) > MAX_LOOP:
                self.vars[name] = Var(None)
                out.extend(run_body(self, body)[0])
        finally:
            self.looping = was
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

    def _assign(self, node: ts.Node, *, into: dict[str, Var] | None = None) -> str | None:
        name_node = node.child_by_field_name("name")
        if name_node is None:
            return None
        name = self.text(name_node)
        if name_node.type == "subscript":
            inner = name_node.child_by_field_name("name")
            name = self.text(inner) if inner is not None else name
            self._value_of(node.child_by_field_name("value"))
            (into if into is not None else self.vars)[name] = Var(None)
            if self.allexport:
                self.exported.add(name)
            return name
        value = self._value_of(node.child_by_field_name("value"))
        appends = any(c.type == "+=" for c in node.children)
        target = into if into is not None else self.vars
        if appends:
            old = self.x.get_var(name)
            if (
                old is None
                or old.text is None
                or value.text is None
                or len(old.text) + len(value.text) > MAX_TEXT
            ):
                value = Var(None, flows=value.flows)
            else:
                value = Var(old.text + value.text, flows=old.flows + value.flows)
        target[name] = value
        if self.allexport:
            self.exported.add(name)  # set -a: every variable assigned is exported
        return name

    def _declare(self, node: ts.Node) -> None:
        kw = node.children[0].type if node.children else ""
        flags = "".join(
            self.text(c)
            for c in node.named_children
            if c.type == "word" and self.text(c).startswith("-")
        )
        for c in node.named_children:
            if c.type == "variable_assignment":
                name = self._assign(c)
                if name and ("n" in flags or "A" in flags or "i" in flags):
                    # name references, associative arrays and integer attributes change what a
                    # later expansion gives in ways this walker does not model
                    self.vars[name] = Var(None)
                if name and (kw == "export" or "x" in flags):
                    self.exported.add(name)
            elif c.type == "variable_name" and kw == "export":
                self.exported.add(self.text(c))

    def _unset(self, node: ts.Node) -> None:
        funcs = any(c.type == "word" and self.text(c) == "-f" for c in node.named_children)
        for c in node.named_children:
            if c.type in ("variable_name", "word") and not self.text(c).startswith("-"):
                if funcs:
                    self.funcs.pop(self.text(c), None)
                else:
                    self.vars[self.text(c)] = Var("")

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

    def _words(
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
        st: State = self
        if assigns:
            st = self.fork()
            for a in assigns:
                name = st._assign(a)
                if name:
                    st.exported.add(name)
        if groups and self._name_obfuscated(groups[0], fields[0].value):
            fields[0].obfuscated = True
        out = st.dispatch(fields, stdin)
        if sinks:
            # what a command writes to a >(cmd) argument is its input and the files it reads
            feed = stdin + tuple(
                fl for f in fields[1:] if f.known and not f.pipe for fl in st._existing_content(f)
            )
            for sink in sinks:
                st._run_sink(sink, feed)
        return out

    def _existing_content(self, f: Field) -> tuple[Flow, ...]:
        loc = self.loc(f)
        if loc.path is None:
            return ()
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
            return TABLE["/script"](Cmd(self, self.hashed[name], fields[1:], stdin, name))
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
        self.pos = [a.value for a in args] if all(a.known for a in args) else None
        self.src = src
        self.stdin = stdin
        self.nest += 1
        try:
            return self._unit(_Unit(body, "", src), stdin)
        finally:
            self.nest -= 1
            self.pos, self.src, self.stdin = saved_pos, saved_src, saved_stdin

    # -------------------------------------------------------------- redirects

    def _redirects(
        self, redirects: list[ts.Node]
    ) -> tuple[tuple[Flow, ...] | None, list[_Out], dict[int, tuple[Flow, ...]]]:
        """Input redirects give the command's stdin and other input fds; output ones are returned.

        ``N<FILE`` opens FILE on fd N, ``N<&M`` duplicates fd M (``<&M``: onto standard input).
        """
        stdin: tuple[Flow, ...] | None = None
        outs: list[_Out] = []
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
            sink: tuple[ts.Node, bytes] | None = None
            if dest.type == "process_substitution":
                acc = Acc()
                self.x.procsub(dest, acc)
                sink = acc.sinks[0] if acc.sinks else None
                f = Field(
                    self.text(dest),
                    raw=self.text(dest),
                    known=False,
                    flows=tuple(acc.flows),
                    pipe=True,
                )
            else:
                f = self.x.expand_one(dest)
            if op in ("<", "<<<", "<>"):
                data = self._input(f)
                if fd in (None, 0):
                    stdin = data
                else:
                    fdin[fd] = data
                if op == "<>":
                    outs.append(_Out(">", 0 if fd is None else fd, f))
            elif op in ("<&", ">&", "<&-", ">&-"):
                if not (f.known and (f.value.isdigit() or f.value == "-")):
                    if op == ">&":
                        outs.append(_Out(">", -1, f, sink))
                    elif op == "<&":
                        # an fd the analyser cannot read: data of unknown origin
                        fdin[-1] = (*f.flows, OPAQUE)
                    continue
                target = int(f.value) if f.value.isdigit() and len(f.value) < 6 else -2
                if op == "<&" and target >= 0:
                    if target in fdin:
                        data = fdin[target]
                    elif target == 0 and stdin is not None:
                        data = stdin
                    else:
                        data = self.fd_flows(target)
                    if fd in (None, 0):
                        stdin = data
                    else:
                        fdin[fd] = data
                    continue
                if op == ">&" and fd in (None, 1):
                    if target == 2:
                        outs.append(_Out("drop", 1, f))
                    elif target in self.fds:
                        loc = self.fds[target]
                        outs.append(_Out(">>", 1, Field(loc.raw, raw=f.raw, loc=loc)))
            else:
                outs.append(
                    _Out(op, -1 if op in ("&>", "&>>") else (1 if fd is None else fd), f, sink)
                )
        return stdin, outs, fdin

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

    def _apply_out(self, outs: list[_Out], out: tuple[Flow, ...]) -> tuple[Flow, ...]:
        if not outs:
            return out
        stdout = [o for o in outs if o.fd in (1, -1)]
        last = stdout[-1] if stdout else None
        for o in outs:
            if o.op == "drop":
                continue
            # only the last redirect of stdout gets the data; earlier ones are just truncated
            flows = out if o is last else (() if o.fd in (1, -1) else (OPAQUE,))
            if o.sink is not None:
                self._run_sink(o.sink, flows)
            else:
                self.sink_field(o.target, flows, append=o.op in (">>", "&>>"))
        return () if last is not None else out

    def _run_sink(self, sink: tuple[ts.Node, bytes], stdin: tuple[Flow, ...]) -> None:
        """Run the command of a ``>(cmd)`` with ``stdin`` as its input."""
        node, src = sink
        sub = self.fork()
        sub.src = src
        sub.stdin = stdin
        sub.nest += 1
        if sub.nest < MAX_NEST:
            sub.run_seq(c for c in node.named_children if c.type not in _SKIP)

    def sink_field(
        self, f: Field, flows: tuple[Flow, ...], *, append: bool, via: str = ""
    ) -> tuple[Flow, ...]:
        """Data written to the file word ``f``; returns what still reaches standard output."""
        if f.pipe:
            return ()
        return self.run.sink_file(self.loc(f), flows, append=append, via=via)


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
    ("globstar", "dotglob", "extglob", "nullglob", "failglob", "nocaseglob", "noglob")
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
    variables = {k: Var(v) for k, v in ctx.env.items()} if ctx.env else {}
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
    st.exported = set(variables)
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
