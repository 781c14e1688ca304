"""Conditions in a loop body, decided where the guard can: which branches of an iteration run.

A loop over a literal list or a glob often skips some values: ``[ "$f" = x ] && continue``,
``if [[ $f == *.safetensors ]]; then ...``, ``case $f in */data) continue;; esac``. Judging every
branch as if it ran turns such a loop into a copy of what it skips. :func:`run_body` runs one
iteration's body the way bash does, deciding what it can:

* tests (``[ ]``, ``test``, ``[[ ]]``) of strings (``=``, ``==``, ``!=``, ``-z``, ``-n``, integer
  comparisons), of files on the real tree (``-e``, ``-f``, ``-d``), pattern matches in ``[[ ]]``,
  ``!``, and ``true``/``false``;
* ``&&``/``||`` chains of those, ``if``/``elif``/``else``, and ``case`` with literal patterns;
* ``continue`` and ``break`` of this loop, when certainly reached.

Anything else is undecided, and undecided is today's behaviour: every branch may run, and a
``continue`` that may not be reached skips nothing. A test is undecided when a word in it is
unknown or runs a command substitution or arithmetic (which the walk runs once, not twice),
when it uses an operator not listed, or when it looks at a file that an earlier command of this
line changed (or that an unknown command may have changed): the tree on disk is then not the
tree the test will see.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

import tree_sitter as ts

from guard.shell.expand import ShellState
from guard.shell.fields import Acc
from guard.shell.filters import Glob, compile_glob
from guard.shell.record import MAX_NEST
from guard.shell.words import Flow, names
from guard.types import EffectKind

__all__ = ["run_body"]

Jump = str | None  # "continue", "break", or nothing
Result = tuple[list[Flow], Jump, bool | None]  # output, a certain jump, exit status

_SKIP = names("comment heredoc_body heredoc_start heredoc_end heredoc_content")
# Expanding these runs a command or assigns a variable: the walk does it once, not twice.
_SUBST = names("command_substitution process_substitution arithmetic_expansion")
_TESTS = names("test [ true false :")
_EXPRS = names("binary_expression unary_expression parenthesized_expression")
_RAW_PATTERN = names("extglob_pattern regex")
_SPECIAL = re.compile(r"[\\$`'\"~{]|[?*+@!]\(")
_INT = re.compile(r"\s*[-+]?\d{1,18}\s*")
_MAX_EXPR = 32  # nesting of a test expression the guard follows
_CHANGES = frozenset(
    (EffectKind.WRITE, EffectKind.DELETE, EffectKind.MOVE, EffectKind.CONFIG_CHANGE)
)
_ANYTHING = frozenset((EffectKind.UNKNOWN, EffectKind.EXEC))
_INT_OPS: dict[str, Callable[[int, int], bool]] = {
    "-eq": operator.eq,
    "-ne": operator.ne,
    "-lt": operator.lt,
    "-le": operator.le,
    "-gt": operator.gt,
    "-ge": operator.ge,
}


def run_body(st: ShellState, body: ts.Node) -> tuple[tuple[Flow, ...], Jump]:
    """Run one iteration of a loop body in ``st``: its output, and ``continue``/``break`` when
    the iteration certainly ends with one."""
    out, jump, _ = _block(st, body.named_children)
    return tuple(out), jump


def _block(st: ShellState, nodes: list[ts.Node]) -> Result:
    out: list[Flow] = []
    status: bool | None = None
    for n in nodes:
        if n.type in _SKIP or not n.is_named:
            continue
        flows, jump, status = _statement(st, n)
        out.extend(flows)
        if jump is not None:
            return out, jump, None
    return out, None, status


def _statement(st: ShellState, n: ts.Node) -> Result:
    if st.nest >= MAX_NEST:
        return list(st.run_seq([n])), None, None  # which reports the bound
    st.nest += 1
    try:
        t = n.type
        if t == "if_statement":
            return _if(st, n)
        if t == "case_statement":
            return _case(st, n)
        if t == "compound_statement" and not (n.child_count and n.children[0].type == "(("):
            return _block(st, n.named_children)  # { ...; } (not ((...)), arithmetic)
        if t in ("list", "command", "test_command", "negated_command"):
            return _list(st, n)
        return list(st.run_seq([n])), None, None
    finally:
        st.nest -= 1


def _items(n: ts.Node) -> list[tuple[str, ts.Node]]:
    """A ``&&``/``||`` list as (operator before it, node), left to right.

    Iterative: tree-sitter nests ``a && b && c`` to the left, and an agent can chain thousands.
    """
    out: list[tuple[str, ts.Node]] = []
    todo: list[tuple[ts.Node, str]] = [(n, "")]
    while todo:
        node, op = todo.pop()
        if node.type != "list":
            out.append((op, node))
            continue
        kids: list[tuple[ts.Node, str]] = []
        pending = op
        for c in node.children:
            if c.is_named and c.type not in _SKIP:
                kids.append((c, pending))
            elif not c.is_named:
                pending = c.type
        todo.extend(reversed(kids))
    return out


def _list(st: ShellState, n: ts.Node) -> Result:
    out: list[Flow] = []
    status: bool | None = None
    for op, node in _items(n):
        if op == "&&" and status is False:
            continue  # skipped: the status stays false
        if op == "||" and status is True:
            continue
        sure = op not in ("&&", "||") or status is not None
        flows, jump, s = _item(st, node)
        out.extend(flows)
        if jump is not None:
            if sure:
                return out, jump, None
            s = None  # it may have jumped, or not run at all
        if op == "&&" and status is None:
            status = False if s is False else None
        elif op == "||" and status is None:
            status = True if s is True else None
        else:
            status = s
    return out, None, status


def _item(st: ShellState, node: ts.Node) -> Result:
    negated = False
    while node.type == "negated_command":
        inner = [c for c in node.named_children if c.type not in _SKIP]
        if not inner:
            return [], None, None
        negated = not negated
        node = inner[0]
    jump = _jump(st, node)
    if jump is not None:
        return [], jump, None
    if node.type in ("if_statement", "case_statement", "compound_statement"):
        flows, jump, s = _statement(st, node)
    else:
        s = _status(st, node)
        flows, jump = list(st.run_seq([node])), None
    if negated and s is not None:
        s = not s
    return flows, jump, s


def _jump(st: ShellState, node: ts.Node) -> Jump:
    """``continue`` or ``break`` of the innermost loop (not ``continue 2``, not a function)."""
    if node.type != "command":
        return None
    name = node.child_by_field_name("name")
    if name is None:
        return None
    word = st.text(name)
    if word not in ("continue", "break") or word in st.funcs or word in st.aliases:
        return None
    for i, c in enumerate(node.children):
        field = node.field_name_for_child(i)
        if field == "redirect" or c.type == "variable_assignment":
            return None
        if field == "argument" and st.text(c) != "1":
            return None
    return word


def _if(st: ShellState, n: ts.Node) -> Result:
    """``if``: a clause whose condition is decided runs alone; an undecided one runs its body
    and everything after it, as before."""
    clauses: list[tuple[list[ts.Node], list[ts.Node]]] = []  # (condition, body); else: ([], body)
    _clause(n, clauses)
    out: list[Flow] = []
    undecided = False
    for cond, body in clauses:
        if cond and not undecided:
            flows, jump, status = _block(st, cond)
            out.extend(flows)
            if jump is not None:
                return out, jump, None
            if status is False:
                continue
            if status is None:
                undecided = True
        elif cond:
            out.extend(st.run_seq(cond))
        flows, jump, status = _block(st, body)
        out.extend(flows)
        if not undecided:
            return out, jump, status
    return out, None, None


def _clause(n: ts.Node, clauses: list[tuple[list[ts.Node], list[ts.Node]]]) -> None:
    cond: list[ts.Node] = []
    body: list[ts.Node] = []
    part = "cond" if n.type in ("if_statement", "elif_clause") else "body"
    for c in n.children:
        if c.type in ("elif_clause", "else_clause"):
            if part != "done":
                clauses.append((cond, body))
            _clause(c, clauses)
            part = "done"
            continue
        if c.type == "then":
            part = "body"
        elif c.is_named and c.type not in _SKIP and part != "done":
            (cond if part == "cond" else body).append(c)
    if part != "done":
        clauses.append((cond, body))


def _case(st: ShellState, n: ts.Node) -> Result:
    """``case`` with a known value and literal patterns: the items bash runs, in order."""
    value = n.child_by_field_name("value")
    items = [c for c in n.named_children if c.type == "case_item"]
    if value is None or _has_subst(value):
        return list(st.run_seq([n])), None, None
    word = _string(st, value)
    chosen: list[list[ts.Node]] = []
    falling = False
    for item in items:
        pats: list[ts.Node] = []
        body: list[ts.Node] = []
        end = ";;"
        for i, c in enumerate(item.children):
            if item.field_name_for_child(i) == "value":
                pats.append(c)
            elif c.type in (";;", ";&", ";;&"):
                end = c.type
            elif c.is_named and c.type not in _SKIP:
                body.append(c)
        if not falling:
            hit = _case_hit(st, word, pats)
            if hit is None:
                return list(st.run_seq([n])), None, None
            if not hit:
                continue
        chosen.append(body)
        falling = end == ";&"
        if end == ";;":
            break
    out: list[Flow] = []
    status: bool | None = True
    for body in chosen:
        flows, jump, status = _block(st, body)
        out.extend(flows)
        if jump is not None:
            return out, jump, None
    return out, None, status


def _case_hit(st: ShellState, word: str | None, pats: list[ts.Node]) -> bool | None:
    if word is None:
        return None
    for p in pats:
        glob = None if _has_subst(p) else _pattern(st, p)
        if glob is None:
            return None
        if glob.match(word):
            return True
    return False


# ------------------------------------------------------------------ tests


def _has_subst(node: ts.Node) -> bool:
    """A command or process substitution below ``node``: expanding it would run a command."""
    todo = [node]
    while todo:
        x = todo.pop()
        if x.type in _SUBST:
            return True
        todo.extend(x.children)
    return False


def _status(st: ShellState, node: ts.Node) -> bool | None:
    """The exit status of a test the guard can decide (true: success), else ``None``."""
    if _has_subst(node):
        return None
    if node.type == "test_command":
        kids = [c for c in node.children if c.type not in _SKIP]
        if len(kids) < 2:
            return None
        inner = kids[1:-1]
        if kids[0].type == "[[":
            return _double(st, inner[0]) if len(inner) == 1 else None
        words = _words(st, inner)
        return None if words is None else _posix(st, words)
    name_node = node.child_by_field_name("name") if node.type == "command" else None
    if name_node is None or st.text(name_node) not in _TESTS:
        return None
    _redirects, assigns, groups = st.command_words(node, [])
    if assigns or not groups:
        return None
    fields = [f for g in groups for f in st.x.expand_group(g)]
    if not fields or not all(f.known for f in fields):
        return None
    name = fields[0].value
    if name in st.funcs or name in st.aliases or st.text(name_node) != name:
        return None
    args = [f.value for f in fields[1:]]
    if name in ("true", ":"):
        return True
    if name == "false":
        return False
    if name == "test":
        return _posix(st, args)
    if name == "[" and args and args[-1] == "]":
        return _posix(st, args[:-1])
    return None


def _words(st: ShellState, nodes: list[ts.Node], depth: int = 0) -> list[str] | None:
    """The words ``[`` is given, in order, expanded as bash expands a command's words."""
    if depth > _MAX_EXPR:
        return None
    out: list[str] = []
    for c in nodes:
        if c.type in _EXPRS:
            sub = _words(st, list(c.children), depth + 1)
            if sub is None:
                return None
            out.extend(sub)
        elif not c.is_named or c.type == "test_operator":
            out.append(st.text(c))
        elif c.type in _RAW_PATTERN:
            text = st.text(c)
            if _SPECIAL.search(text) or any(ch in text for ch in "*?["):
                return None
            out.append(text)
        else:
            fields = st.x.expand(c)
            if not all(f.known for f in fields):
                return None
            out.extend(f.value for f in fields)
    return out


def _posix(st: ShellState, args: list[str]) -> bool | None:
    """``test ARGS`` by the number of arguments, as POSIX and bash decide up to four."""
    n = len(args)
    if n == 0:
        return False
    if n == 1:
        return args[0] != ""
    if n == 2:
        if args[0] == "!":
            return args[1] == ""
        return _unary(st, args[0], args[1])
    if n == 3 and args[1] in ("=", "==", "!=", "-a", "-o", *_INT_OPS):
        return _binary(args[0], args[1], args[2], ints=_INT)
    if n in (3, 4) and args[0] == "!":
        r = _posix(st, args[1:])
        return None if r is None else not r
    if n in (3, 4) and args[0] == "(" and args[-1] == ")":
        return _posix(st, args[1:-1])
    return None


def _unary(st: ShellState, op: str, value: str) -> bool | None:
    if op == "-z":
        return value == ""
    if op == "-n":
        return value != ""
    if op not in ("-e", "-f", "-d"):
        return None
    if value == "":
        return False
    loc = st.local(value)
    path = loc.path
    if path is None or not loc.visible or _changed(st, path):
        return None
    run = st.run
    if op == "-e":
        return run.exists(path)
    return run.isfile(path) if op == "-f" else run.isdir(path)


def _changed(st: ShellState, path: str) -> bool:
    """True when an earlier command of this line changed ``path`` (or a folder around it, or
    something below it), or ran code that may have changed anything."""
    run = st.run
    if run.links:
        return True
    for e in run.effects:
        if e.kind in _ANYTHING:
            return True
        places = (e.target, e.dest) if e.kind in _CHANGES else (e.dest,)
        for loc in places:
            if loc is None or not loc.visible:
                continue
            p = loc.path
            if p is None or p == path or path.startswith(p + "/") or p.startswith(path + "/"):
                return True
    return False


def _binary(a: str, op: str, b: str, *, ints: re.Pattern[str]) -> bool | None:
    if op in ("=", "=="):
        return a == b
    if op == "!=":
        return a != b
    if op == "-a":
        return a != "" and b != ""
    if op == "-o":
        return a != "" or b != ""
    if not (ints.fullmatch(a) and ints.fullmatch(b)):
        return None
    return _INT_OPS[op](int(a), int(b))


def _double(st: ShellState, node: ts.Node, depth: int = 0) -> bool | None:
    """``[[ EXPR ]]``: no splitting or globbing; ``==``/``!=`` match a pattern."""
    if depth > _MAX_EXPR:
        return None
    t = node.type
    if t == "parenthesized_expression":
        inner = [c for c in node.named_children if c.type not in _SKIP]
        return _double(st, inner[0], depth + 1) if len(inner) == 1 else None
    if t == "unary_expression":
        kids = [c for c in node.children if c.type not in _SKIP]
        if len(kids) != 2:
            return None
        if kids[0].type == "!":
            r = _double(st, kids[1], depth + 1)
            return None if r is None else not r
        if kids[0].type != "test_operator":
            return None
        value = _string(st, kids[1])
        return None if value is None else _unary(st, st.text(kids[0]), value)
    if t == "binary_expression":
        left = node.child_by_field_name("left")
        op_node = node.child_by_field_name("operator")
        right = node.child_by_field_name("right")
        if left is None or op_node is None or right is None:
            return None
        op = st.text(op_node)
        if op in ("&&", "||"):
            if op == "&&" and any(_op(st, x) == "||" for x in (left, right)):
                return None  # `a || b && c` parsed the wrong way round: bash binds && tighter
            a, b = _double(st, left, depth + 1), _double(st, right, depth + 1)
            if op == "&&":
                return False if False in (a, b) else (True if a and b else None)
            return True if True in (a, b) else (False if a is False and b is False else None)
        lhs = _string(st, left)
        if lhs is None:
            return None
        if op in ("==", "=", "!="):
            glob = _pattern(st, right)
            if glob is None:
                return None
            return glob.match(lhs) != (op == "!=")
        return None  # =~, <, >, arithmetic comparisons of expressions
    if t in _EXPRS or (t in _RAW_PATTERN and _SPECIAL.search(st.text(node))):
        return None
    value = _string(st, node)
    return None if value is None else value != ""


def _op(st: ShellState, node: ts.Node) -> str:
    if node.type != "binary_expression":
        return ""
    op = node.child_by_field_name("operator")
    return st.text(op) if op is not None else ""


def _string(st: ShellState, node: ts.Node) -> str | None:
    """A word expanded without splitting or globbing (``[[ ]]`` operands, a ``case`` value)."""
    text = st.text(node)
    if node.type in _RAW_PATTERN:
        return None if _SPECIAL.search(text) else text
    if "{" in text or text.startswith("~"):
        return None  # braces and tildes: not worth modelling here
    acc = Acc()
    st.x.seg(node, acc, quoted=False)
    if not acc.known or any(k == "B" for _, k in acc.parts):
        return None
    return "".join(t for t, _ in acc.parts)


def _pattern(st: ShellState, node: ts.Node) -> Glob | None:
    """A pattern word (``[[ x == PAT ]]``, a ``case`` item): quoted parts match literally."""
    if node.type in _RAW_PATTERN:
        text = st.text(node)
        return None if _SPECIAL.search(text) else compile_glob(text, slash=True)
    text = st.text(node)
    if "{" in text or text.startswith("~"):
        return None
    acc = Acc()
    st.x.seg(node, acc, quoted=False)
    if not acc.known:
        return None
    parts: list[str] = []
    for piece, kind in acc.parts:
        if kind == "B":
            return None
        if kind in "us":
            if re.search(r"[?*+@!]\(", piece):
                return None  # extended globs
            parts.append(piece)
        else:
            parts.append(re.sub(r"([*?\[\]\\])", r"\\\1", piece))
    return compile_glob("".join(parts), slash=True)
