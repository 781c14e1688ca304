"""Which files ``find`` acts on: its expression evaluated on the real tree.

``find DIR TESTS -exec CMD {} \\;`` runs CMD once for each file the tests select, so what it
copies or deletes depends on the tests. When every test is one the guard can decide on the tree
as it is (``-name``, ``-iname``, ``-path``, ``-ipath``, ``-wholename``, ``-type``, ``-true``,
``-false``, ``-prune``, ``-maxdepth``, ``-mindepth``, ``-depth``), the expression is walked per
file as find walks it: operators short-circuit, ``-prune`` keeps find out of a folder, and each
action (``-exec``, ``-execdir``, ``-ok``, ``-okdir``, ``-delete``, printing) collects the files
it runs on.

A test the guard cannot decide (``-newer``, ``-size``, ``-user``...) is neither true nor false:
both ways count, so an action behind it runs on every file it might, and a ``-prune`` behind it
prunes nothing. A word the guard cannot read, an option it does not model (``-L``, ``-regex``
with its dialects is only undecided), a tree too big to walk or one this command line copied
data into: :func:`evaluate` returns ``None`` and the caller takes the start folders whole.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from guard.shell.filters import MAX_ENTRIES, Glob, changed_below, compile_glob
from guard.shell.record import Run
from guard.shell.words import Field, names
from guard.types import Location

__all__ = ["Action", "Entry", "evaluate"]

MAX_HITS = 256  # files one action may run on before the guard takes the start folders whole

# Tests whose value (one word after them) the guard does not decide.
_UNDECIDED_1 = names(
    "-user -group -perm -size -mtime -mmin -atime -amin -ctime -cmin -newer -anewer -cnewer "
    "-samefile -inum -links -uid -gid -fstype -used -context -lname -ilname -regex -iregex "
    "-xtype -newermm -newerma -newermc -newerct -newerat -newercm -newermt -neweraa -newercc"
)
_UNDECIDED_0 = names("-empty -readable -writable -executable -nouser -nogroup")
_OPTIONS_0 = names(
    "-depth -d -xdev -mount -noleaf -ignore_readdir_race -noignore_readdir_race -daystart "
    "-warn -nowarn"
)
_OPTIONS_1 = names("-maxdepth -mindepth -regextype")
_EXECS = names("-exec -execdir -ok -okdir")
_PRINTS_0 = names("-print -print0 -ls")
_PRINTS_1 = names("-printf -fprint -fprint0 -fls")
_TYPES = frozenset("bcdpflsD")


class _NotModelled(Exception):
    """The expression holds something the guard does not evaluate."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One file find visits: ``path`` on disk, ``name`` as find prints it."""

    path: str
    name: str
    depth: int
    kind: str  # the -type letter, links not followed


@dataclass(slots=True)
class Action:
    """An action of the expression and the files it runs on.

    Attributes:
        kind: ``-exec``, ``-execdir``, ``-ok``, ``-okdir``, ``-delete``, ``-print`` (and the
            other printing actions), or ``-fprint`` (and kin) for those writing to ``target``.
        argv: The command of an ``-exec`` family action.
        batch: ``-exec ... {} +``: one command for all the files.
        target: The file an ``-fprint`` family action writes.
        hits: The files it runs on (or may run on).
    """

    kind: str
    argv: list[Field] = field(default_factory=list)
    batch: bool = False
    target: Field | None = None
    hits: list[Entry] = field(default_factory=list)


_Test = Callable[[Entry], bool | None]


@dataclass(frozen=True, slots=True)
class _Node:
    """``and``/``or``/``comma`` (a, b), ``not`` (a), ``test``, ``act`` (with the status it
    gives), ``prune``, or ``const`` (``value``: true, false, or ``None`` for undecided)."""

    kind: str
    a: _Node | None = None
    b: _Node | None = None
    test: _Test | None = None
    act: Action | None = None
    value: bool | None = None


@dataclass(slots=True)
class _Ctx:
    actions: list[Action] = field(default_factory=list)
    maxdepth: int | None = None
    mindepth: int = 0
    depth_first: bool = False
    pruned: bool = False


class _Parser:
    """find's expression grammar: ``,`` < ``-o`` < ``-a`` (or juxtaposition) < ``!``, ``( )``."""

    def __init__(self, words: list[str], fields: list[Field], ctx: _Ctx) -> None:
        self.words = words
        self.fields = fields
        self.i = 0
        self.ctx = ctx

    def peek(self) -> str | None:
        return self.words[self.i] if self.i < len(self.words) else None

    def take(self) -> str:
        if self.i >= len(self.words):
            raise _NotModelled
        self.i += 1
        return self.words[self.i - 1]

    def expr(self) -> _Node:
        node = self.or_()
        while self.peek() == ",":
            self.take()
            node = _Node("comma", node, self.or_())
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.peek() in ("-o", "-or"):
            self.take()
            node = _Node("or", node, self.and_())
        return node

    def and_(self) -> _Node:
        node = self.unary()
        while self.peek() not in (None, ")", "-o", "-or", ","):
            if self.peek() in ("-a", "-and"):
                self.take()
            node = _Node("and", node, self.unary())
        return node

    def unary(self) -> _Node:
        w = self.take()
        if w in ("!", "-not"):
            return _Node("not", self.unary())
        if w == "(":
            node = self.expr()
            if self.take() != ")":
                raise _NotModelled
            return node
        return self.primary(w)

    def primary(self, w: str) -> _Node:
        ctx = self.ctx
        if w in ("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename"):
            fold = w in ("-iname", "-ipath", "-iwholename")
            glob = compile_glob(self.take(), slash=True, fold=fold)
            if glob is None:
                return _Node("const")
            base = w in ("-name", "-iname")
            return _Node("test", test=_name_test(glob) if base else _path_test(glob))
        if w == "-type":
            kinds = self.take().split(",")
            if not kinds or any(k not in _TYPES for k in kinds):
                raise _NotModelled
            return _Node("test", test=_type_test(frozenset(kinds)))
        if w in ("-true", "-false"):
            return _Node("const", value=w == "-true")
        if w in _UNDECIDED_1:
            self.take()
            return _Node("const")
        if w in _UNDECIDED_0:
            return _Node("const")
        if w in _OPTIONS_0:
            ctx.depth_first = ctx.depth_first or w in ("-depth", "-d")
            return _Node("const", value=True)
        if w in _OPTIONS_1:
            value = self.take()
            if w != "-regextype":
                if not value.isdigit():
                    raise _NotModelled
                if w == "-maxdepth":
                    ctx.maxdepth = int(value)
                else:
                    ctx.mindepth = int(value)
            return _Node("const", value=True)
        if w == "-prune":
            return _Node("prune")
        if w == "-quit":
            return _Node("const", value=True)  # stopping early only does less
        if w == "-delete":
            ctx.depth_first = True
            return self.action(Action("-delete"), None)
        if w in _PRINTS_0:
            return self.action(Action("-print"), True)
        if w in _PRINTS_1 or w == "-fprintf":
            self.take()
            target = self.fields[self.i - 1]
            if w == "-printf":
                return self.action(Action("-print"), True)
            if w == "-fprintf":
                self.take()
            return self.action(Action("-fprint", target=target), True)
        if w in _EXECS:
            argv: list[Field] = []
            while True:
                word = self.take()
                if word == ";" or (word == "+" and argv and argv[-1].value == "{}"):
                    break
                argv.append(self.fields[self.i - 1])
            if not argv:
                raise _NotModelled
            batch = word == "+"
            # `-exec ... {} +` is always true; the others give the command's status
            return self.action(Action(w, argv=argv, batch=batch), True if batch else None)
        raise _NotModelled

    def action(self, act: Action, status: bool | None) -> _Node:
        self.ctx.actions.append(act)
        return _Node("act", act=act, value=status)


def _name_test(glob: Glob) -> _Test:
    def test(e: Entry) -> bool:
        base = os.path.basename(e.name.rstrip("/")) or e.name
        return glob.match(base)

    return test


def _path_test(glob: Glob) -> _Test:
    def test(e: Entry) -> bool:
        return glob.match(e.name)

    return test


def _type_test(kinds: frozenset[str]) -> _Test:
    def test(e: Entry) -> bool:
        return e.kind in kinds

    return test


def _eval(node: _Node, e: Entry, sure: bool, ctx: _Ctx) -> bool | None:
    """Three-valued: ``None`` is a test the guard cannot decide; ``sure`` says the node is
    certainly reached (an undecided test before it may have cut it off)."""
    kind = node.kind
    if node.a is not None and node.b is not None:
        a = _eval(node.a, e, sure, ctx)
        if kind == "comma":
            return _eval(node.b, e, sure, ctx)
        if kind == "and":
            if a is False:
                return False
            b = _eval(node.b, e, sure and a is True, ctx)
            return False if b is False else (True if a and b else None)
        if a is True:
            return True
        b = _eval(node.b, e, sure and a is False, ctx)
        return True if b is True else (False if b is False and a is False else None)
    if kind == "not" and node.a is not None:
        r = _eval(node.a, e, sure, ctx)
        return None if r is None else not r
    if node.test is not None:
        return node.test(e)
    if node.act is not None:
        hits = node.act.hits
        if not hits or hits[-1] is not e:
            hits.append(e)
    elif kind == "prune":
        if sure:
            ctx.pruned = True
        return True
    return node.value


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISFIFO(mode):
        return "p"
    if stat.S_ISSOCK(mode):
        return "s"
    if stat.S_ISCHR(mode):
        return "c"
    return "b" if stat.S_ISBLK(mode) else "D"


def evaluate(
    run: Run, expr: list[Field], starts: list[tuple[Field, Location]]
) -> list[Action] | None:
    """The actions of ``find STARTS EXPR`` with the files each runs on.

    Args:
        run: The analysis (what this command line changed, its bounds).
        expr: The expression words.
        starts: The start points as written, with where each resolves.

    Returns:
        The actions, an implicit ``-print`` included; ``None`` when the guard cannot tell
        (see the module's docstring).
    """
    if any(not f.known for f in expr) or any(not f.known for f, _ in starts):
        return None
    ctx = _Ctx()
    parser = _Parser([f.value for f in expr], expr, ctx)
    try:
        node = parser.expr() if expr else _Node("const", value=True)
        if parser.i != len(expr):
            return None
    except _NotModelled:
        return None
    if not ctx.actions:
        default = Action("-print")
        ctx.actions.append(default)
        node = _Node("and", node, _Node("act", act=default, value=True))
    budget = [MAX_ENTRIES]
    for f, loc in starts:
        if loc.path is None or not loc.visible or changed_below(run, loc.path):
            return None
        if not _visit(node, loc.path, f.value, 0, ctx, budget):
            return None
    if any(len(a.hits) > MAX_HITS for a in ctx.actions):
        return None
    return ctx.actions


def _visit(node: _Node, path: str, name: str, depth: int, ctx: _Ctx, budget: list[int]) -> bool:
    """Visit ``path`` and what is below it; false when the walk goes past its bounds."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True  # find reports it and goes on
    except (OSError, ValueError):
        return False
    entry = Entry(path, name, depth, _kind(mode))
    ctx.pruned = False
    if depth >= ctx.mindepth:
        _eval(node, entry, True, ctx)
    if entry.kind != "d" or (ctx.maxdepth is not None and depth >= ctx.maxdepth):
        return True
    if ctx.pruned and not ctx.depth_first:
        return True
    try:
        with os.scandir(path) as it:
            children = sorted(e.name for e in it)
    except (OSError, ValueError):
        return False
    sep = "" if name.endswith("/") else "/"
    return all(
        _visit(node, os.path.join(path, child), f"{name}{sep}{child}", depth + 1, ctx, budget)
        for child in children
    )
