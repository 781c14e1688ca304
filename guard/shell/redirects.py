"""Redirects and descriptors: where a command's output goes and where its input comes from.

A redirect opens a :class:`~guard.shell.state.Sink` on a descriptor; what the command writes
there is collected while it runs and written out when it ends (``>`` replaces, ``>>`` appends), or
at once for a bare ``exec``. ``n>&m`` copies a descriptor, heredocs and ``<file`` feed standard
input, ``>(cmd)`` runs a process substitution over what reaches it.
"""

from __future__ import annotations

import os
import re

import tree_sitter as ts

from guard.shell.fields import Acc
from guard.shell.record import (
    MAX_NEST,
)
from guard.shell.state import CLOSED, DEV_SINKS, ERR, OUT, SKIP_NODES, BaseState, FdEntry, Fds, Sink
from guard.shell.wordops import unescape_dq
from guard.shell.words import OPAQUE, Field, Flow, fd_number, has_glob, names
from guard.types import EffectKind, Location

_DEV_NET = re.compile(r"/dev/(tcp|udp)/([^/]+)/([^/]+)")

_POSIX_SHELLS = names("sh dash ash posh busybox-sh")  # no globbing of a redirect's target
_FD_WORD = re.compile(r"([0-9]{1,5})(-?)")  # the target of n>&m and n>&m- (a move)


def restored_fds(
    before: dict[int, FdEntry],
    running: dict[int, FdEntry],
    after: dict[int, FdEntry],
    outs: Fds | None,
    stdout: FdEntry,
) -> dict[int, FdEntry]:
    """A shell's descriptors once a command or group with redirects ends: as they were, but
    for what a bare ``exec`` inside it changed (``{ exec 3>f; }`` keeps fd 3), unless the
    group's own redirects covered that descriptor (bash restores those). Inside, "out" was
    the group's standard output, ``stdout``."""
    table = dict(before)
    for n, v in after.items():
        if running.get(n) is not v and (outs is None or n not in outs.changed):
            table[n] = stdout if v == OUT else v
    return table


class RedirectState(BaseState):
    __slots__ = ()

    # -------------------------------------------------------------- redirects

    def _redirects(
        self, redirects: list[ts.Node]
    ) -> tuple[tuple[Flow, ...] | None, Fds | None, dict[int, tuple[Flow, ...]]]:
        """Apply redirects in order, as bash does: the command's stdin, its output descriptors
        (``None``: left as the shell has them) and the data open on its other input fds.

        ``N<FILE`` opens FILE on fd N, ``N>FILE`` opens it for writing; ``N>&M`` and ``N<&M``
        make fd N a copy of fd M as it is at that point (``2>x >&2`` sends standard output to
        x); ``/dev/stdout`` and kin as a target are such copies too.
        """
        stdin: tuple[Flow, ...] | None = None
        outs: Fds | None = None
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
                    outs = outs or Fds(dict(self.fds), [], set())
                    self._open(outs, Sink("<>", n, self._places(fields), proc))
                continue
            outs = outs or Fds(dict(self.fds), [], set())
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
                    table[n] = CLOSED
                    outs.changed.add(n)
                    continue
                word = _FD_WORD.fullmatch(one.value) if one is not None and one.known else None
                if word is None:
                    if op == ">&":
                        # `>&file` is `&>file`; `2>&file` opens file on fd 2
                        sink = Sink(">", -1 if fd is None else n, self._places(fields), proc)
                        self._open(outs, sink)
                    else:
                        # an fd the analyser cannot read: data of unknown origin
                        fdin[-1] = (*(one.flows if one is not None else ()), OPAQUE)
                    continue
                src = int(word.group(1))
                self._dup(outs, n, src, fdin, stdin)
                if word.group(2) and src != n:
                    # `n>&m-` moves m to n: m is closed after
                    table[src] = CLOSED
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
            sink = Sink(op, -1 if op in ("&>", "&>>") else n, self._places(fields), proc)
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
    def _open(outs: Fds, sink: Sink) -> None:
        outs.opened.append(sink)
        for n in (1, 2) if sink.fd == -1 else (sink.fd,):
            outs.table[n] = sink
            outs.changed.add(n)

    def _dup(
        self,
        outs: Fds,
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
            table[n] = table.get(m, OUT if m == 1 else ERR)
        else:
            table[n] = CLOSED  # bash fails on a descriptor that is not open
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
        if loc.path is not None and (_DEV_NET.fullmatch(loc.path) or loc.path in DEV_SINKS):
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
        entry = self.fds.get(fd, CLOSED)
        return self._route(entry, flows) if flows else ()

    def _route(self, entry: FdEntry, out: tuple[Flow, ...]) -> tuple[Flow, ...]:
        """Send a command's standard output where ``entry`` says; returns what comes back to
        the caller of this walk (a pipe, a substitution, the agent)."""
        if isinstance(entry, Sink):
            entry.stdout = True
            if entry.live and entry.op == "<>":
                # written over from the start, not truncated or appended: unknown content
                return self._write(entry, (*out, OPAQUE), append=False) if out else ()
            if entry.live:
                return self._write(entry, out, append=True) if out else ()
            entry.flows.extend(out)
            return ()
        return out if entry == OUT else ()

    def _flush(self, sink: Sink) -> tuple[Flow, ...]:
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

    def _write(self, sink: Sink, flows: tuple[Flow, ...], *, append: bool) -> tuple[Flow, ...]:
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
            if n != 1 and not (isinstance(v, Sink) and v.proc is sink)
        }
        if sub.nest >= MAX_NEST:
            self.run.emit(
                EffectKind.UNKNOWN,
                certain=False,
                note="process substitution nested too deeply to analyse",
                unseen=True,
            )
            return ()
        return sub.run_seq(c for c in node.named_children if c.type not in SKIP_NODES)

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
