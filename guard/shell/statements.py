"""Statements: lists, pipelines, subshells, loops, ``case`` and assignments.

tree-sitter's tree is not always bash's: a redirect after ``a && b`` belongs to ``b``, and pipes
or ``&&`` after a heredoc are hung inside the heredoc node. :meth:`StatementState._flatten` puts
them back into :class:`Unit` records. A pipeline runs each stage in a copy of the shell (bash
runs them in subshells) and hands the stage's output flows to the next stage's input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import tree_sitter as ts

from guard.shell import variables as shvars
from guard.shell.conditions import run_body
from guard.shell.fields import Acc
from guard.shell.record import (
    MAX_LOOP,
    MAX_NEST,
    MAX_TEXT,
)
from guard.shell.redirects import RedirectState, restored_fds
from guard.shell.state import OUT, SKIP_NODES, Fds, Sink
from guard.shell.words import OPAQUE, Field, Flow, Var, names
from guard.types import EffectKind

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NESTING = names("list pipeline redirected_statement negated_command") | SKIP_NODES
_BLOCKS = names(
    "compound_statement do_group if_statement elif_clause else_clause while_statement "
    "until_statement program"
)


@dataclass(slots=True)
class Unit:
    node: ts.Node
    op: str
    src: bytes
    redirects: list[ts.Node] = field(default_factory=list)
    extra: list[ts.Node] = field(default_factory=list)
    bodiless: bool = False


class StatementState(RedirectState):
    __slots__ = ()

    # ------------------------------------------------------------- statements

    def run_seq(self, nodes: Iterable[ts.Node]) -> tuple[Flow, ...]:
        """Run statements in order; returns what they write to standard output."""
        out: list[Flow] = []
        for n in nodes:
            if n.type in SKIP_NODES or not n.is_named:
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
            group: list[Unit] = []
            for u in units:
                if u.op != "|" and u.op != "|&" and group:
                    out.extend(self._pipeline(group))
                    group = []
                group.append(u)
            if group:
                out.extend(self._pipeline(group))
        return tuple(out)

    def _flatten(self, root: ts.Node) -> list[Unit]:
        """Lists, pipelines and redirected statements as a flat run of units.

        Iterative, because tree-sitter nests ``a && b && c`` to the left and an agent can chain
        thousands. A redirect after a list or pipeline belongs to its last command, as in bash;
        tree-sitter attaches it to the whole, and hangs pipelines and ``&&`` that follow a
        heredoc inside the heredoc node: both are put back where bash has them here.
        """
        src = self.src
        if root.type not in _NESTING:
            return [Unit(root, "", src)]  # a plain statement: nothing to put back
        out: list[Unit] = []
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
                    if c.is_named and c.type not in SKIP_NODES:
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
                inner = [c for c in node.named_children if c.type not in SKIP_NODES]
                if inner:
                    stack.append(("node", inner[0], op))
            elif t in SKIP_NODES:
                continue
            else:
                out.append(Unit(node, op, src))
        return out

    def _attach(self, node: ts.Node, out: list[Unit], op: str) -> None:
        body = node.child_by_field_name("body")
        if body is None or not out:
            out.append(Unit(node, op, self.src, bodiless=True))
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

    def _pipeline(self, group: list[Unit]) -> tuple[Flow, ...]:
        if len(group) == 1:
            return self._unit(group[0], None)
        flows: tuple[Flow, ...] | None = None
        # what a stage that is not the last writes to a copy of the pipeline's own standard
        # output (`exec 3>&1; a >&3 | b`) skips the pipe
        up = Sink("|", 1, [])
        for i, u in enumerate(group):
            stage = self.fork()
            if i + 1 < len(group):
                if OUT in stage.fds.values():
                    stage.fds = {n: (up if v == OUT else v) for n, v in stage.fds.items()}
                # its standard output is the pipe (`|&`: its standard error too)
                stage.fds[1] = OUT
                if group[i + 1].op == "|&":
                    stage.fds[2] = OUT
            flows = stage._unit(u, flows)
        return (*(flows or ()), *up.flows)

    def _unit(self, u: Unit, stdin: tuple[Flow, ...] | None) -> tuple[Flow, ...]:
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

    def _unit_inner(self, u: Unit, stdin: tuple[Flow, ...] | None) -> tuple[Flow, ...]:
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
        outs: Fds | None = None
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
        stdout = table.get(1, OUT)
        saved_fds, saved_table = self.open_fds, self.fds
        running = self.fds
        caller: Sink | None = None
        if outs is not None or stdout != OUT:
            # While it runs, what it writes to standard output comes back here and goes where
            # `stdout` says; a descriptor that is a copy of it (2>&1) comes back the same way.
            running = {n: (OUT if v is stdout else v) for n, v in table.items()}
            if stdout != OUT and any(v == OUT for v in table.values()):
                # `2>&1 >/dev/null`, `3>&1 1>&2 2>&3`: a descriptor that is still the caller's
                # standard output (a pipe, a substitution) is not the command's new one
                caller = Sink("|", 1, [])
                running = {n: (caller if table.get(n) == OUT else v) for n, v in running.items()}
            running[1] = OUT
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
                self.fds = restored_fds(saved_table, running, self.fds, outs, stdout)
        if stdout != OUT:
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
