"""A shell's state, the bottom layer of the walker: what one shell knows and where it is.

:class:`BaseState` holds the working directory, variables, functions, positional parameters,
open descriptors and the data on standard input, with the operations every layer and handler
uses: fork a subshell, start a nested shell, resolve a word to a place, run text. The walker is
built in layers, each a subclass of the one below, so that no module needs the one above:
``state`` (this) → ``redirects`` (descriptors and redirects) → ``statements`` (lists, pipelines,
compound statements) → ``core`` (simple commands and dispatch through the handler table). The
few methods a lower layer calls from a higher one are declared abstract here.
"""

from __future__ import annotations

import abc
import functools
import glob as globmod
import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Self

import tree_sitter as ts

from guard.shell import variables as shvars
from guard.shell.expand import Expander
from guard.shell.record import (
    MAX_DEPTH,
    MAX_GLOB,
    MAX_NEST,
    Run,
)
from guard.shell.words import OPAQUE, Field, Flow, Var, fd_number, has_glob, names, short
from guard.types import EffectKind, Location

_SYSTEM_PATHS = ("/dev/", "/proc/", "/sys/")  # the same on every host: never mapped
SKIP_NODES = names("comment heredoc_body heredoc_start heredoc_end heredoc_content")
DEV_SINKS = names("/dev/null /dev/zero /dev/full /dev/random /dev/urandom")
_UNSAFE_BYTES = re.compile(rb"[\x00\x80-\xff]+")


NO_OPTS: frozenset[str] = frozenset()


@functools.cache
def _parser() -> ts.Parser:
    import tree_sitter_bash as tsb

    return ts.Parser(ts.Language(tsb.language()))


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


@dataclass(eq=False, slots=True)
class Sink:
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
FdEntry = Sink | str
OUT, ERR, CLOSED = "out", "err", "closed"


@dataclass(slots=True)
class Fds:
    """A command's output descriptors after its redirects, and the sinks they opened."""

    table: dict[int, FdEntry]
    opened: list[Sink]
    changed: set[int]


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
    return frozenset(found) if found else NO_OPTS


class BaseState(abc.ABC):
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
        self.globopts: frozenset[str] | None = NO_OPTS
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

    def fork(self) -> Self:
        """A subshell: a copy whose changes (cd, variables) do not come back."""
        s = type(self)(
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
        kids = [c for c in root.named_children if c.type not in SKIP_NODES]
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
    ) -> Self | None:
        """A new shell process one level deeper, or ``None`` (with an UNKNOWN) past the bound."""
        if self.depth + 1 > MAX_DEPTH or self.nest + 1 > MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="shell nested too deeply to analyse",
                unseen=True,
            )
            return None
        s = type(self)(
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

    def inherit_fds(self, parent: BaseState) -> None:
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
        if isinstance(entry, Sink) and entry.proc is None and len(entry.targets) == 1:
            out = entry.targets[0]
            return Location(raw=raw, path=out.path, host=out.host, visible=out.visible)
        if entry in (OUT, ERR):
            return Location(raw=raw, path="/dev/stdout" if entry == OUT else "/dev/stderr")
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

    # ----------------------------------------- implemented by the layers above

    @abc.abstractmethod
    def run_seq(self, nodes: Iterable[ts.Node]) -> tuple[Flow, ...]:
        """Run statements in order; returns what they write to standard output."""

    @abc.abstractmethod
    def substitution(self, node: ts.Node) -> tuple[Flow, ...] | None:
        """Run the body of ``$(...)``/`` `...` `` in a subshell; its standard output."""

    @abc.abstractmethod
    def command_words(
        self, node: ts.Node, extra: list[ts.Node]
    ) -> tuple[list[ts.Node], list[ts.Node], list[list[ts.Node]]]:
        """A command node's redirects, prefix assignments and words (grouped by argument)."""

    @abc.abstractmethod
    def _command(
        self, assigns: list[ts.Node], groups: list[list[ts.Node]], stdin: tuple[Flow, ...]
    ) -> tuple[Flow, ...]:
        """Run one simple command from its assignments and word groups."""
