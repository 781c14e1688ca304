"""The shell walker's top: simple commands, dispatch to handlers, and :func:`analyse`.

One :class:`State` is one shell. It is built in layers (``state`` → ``redirects`` →
``statements`` → here); this layer expands a simple command's words, applies its prefix
assignments and resolves its name: a function, an alias, a program on ``PATH``, or a handler in
:data:`TABLE`, which the command-family modules (``reading``, ``fileops``, ``archives``,
``remote``, ``interp`` and the rest) fill. A handler gets a :class:`Cmd` and returns the flows its
standard output carries. Everything is bounded (see ``record``); going past a bound never raises
to the caller of :func:`analyse`: it ends as an ``UNKNOWN`` effect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import tree_sitter as ts

from guard.exceptions import AnalysisError
from guard.paths import HostMap
from guard.shell import variables as shvars
from guard.shell.record import (
    MAX_ARGS,
    MAX_DEPTH,
    MAX_NEST,
    Exhausted,
    Run,
)
from guard.shell.state import DEV_SINKS, SKIP_NODES, inherited_options
from guard.shell.statements import StatementState, Unit
from guard.shell.words import OPAQUE, Field, Flow, Var, fd_number, names, short
from guard.types import ConfigEdit, Effect, EffectKind, Location

_SYSTEM_BIN = names("/bin /usr/bin /usr/local/bin /sbin /usr/sbin /usr/local/sbin /usr/libexec")
_EXPANSION = re.compile(r"\$[^']|`")
_BYTES_TYPES = (bytes, bytearray, memoryview)


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
        if loc.path is not None and loc.path in DEV_SINKS:
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


class State(StatementState):
    """One shell: where it is, what it knows, and what is on its standard input."""

    __slots__ = ()

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
        kids = [c for c in node.named_children if c.type not in SKIP_NODES]
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
            return self._unit(Unit(body, "", src), stdin)
        finally:
            self.nest -= 1
            self.pos, self.src, self.stdin = saved_pos, saved_src, saved_stdin
            if self.scope:
                shvars.scope_restore(self, self.scope)
            self.scope = saved_scope


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
