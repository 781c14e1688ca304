"""A reader for the part of GNU make's language whose meaning can be worked out before make runs.

:class:`Reader` reads makefile text into rules and variables: assignments (``=``, ``:=``,
``::=``, ``:::=``, ``?=``, ``+=``, ``override``, ``export``), rules with tab-indented recipes
(``::`` rules, ``;`` recipes, order-only prerequisites), ``.PHONY``, ``.ONESHELL``,
``.EXPORT_ALL_VARIABLES``, ``.DEFAULT``, comments, line continuations, conditionals on values it
knows, and ``include`` of files it can read. :meth:`Reader.expand` expands ``$(VAR)``,
``${VAR}``, ``$X``, ``$$``, substitution references and the automatic variables.

Everything else changes what make runs in ways this reader does not follow: functions
(``$(shell ...)``, ``$(eval ...)``, ``$(call ...)``, even ``$(wildcard ...)``), ``define``,
``vpath``, pattern and static pattern rules, target-specific variables, a different ``SHELL``.
Each is handed to the ``problem`` callback with a note, and reading goes on: the caller records
that code it cannot see will run. A value the reader cannot know (an unknown environment
variable, a function's result) becomes a token :data:`MARK` ``N`` :data:`MARK`; its number
indexes :attr:`Reader.unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from guard.shell.words import names

__all__ = ["MARK", "Makefile", "Reader", "Rule", "split_assignment"]

MARK = "\x00"
"""Delimits the number of an unknown value in expanded text (no makefile text holds a NUL)."""

MAX_INCLUDES = 16
MAX_EXPAND = 32  # nesting of variable references within one expansion
MAX_WORK = 100_000  # variable references expanded in all (`A = $(B)$(B)` doubles per level)
MAX_TEXT = 1 << 20  # characters of one expansion

_FUNCTIONS = names(
    "subst patsubst strip findstring filter filter-out sort word wordlist words firstword "
    "lastword dir notdir suffix basename addsuffix addprefix join wildcard realpath abspath "
    "error warning info shell origin flavor foreach if or and intcmp call eval file value let "
    "guile"
)
# Variables that change how make finds or runs code; assigning them is outside the subset.
_CONTROL = names(
    "SHELL .SHELLFLAGS MAKEFILES MAKEFLAGS MFLAGS GNUMAKEFLAGS .RECIPEPREFIX VPATH GPATH "
    ".EXTRA_PREREQS MAKESHELL .LIBPATTERNS .INCLUDE_DIRS"
)
_SHELL_NAMES = names("sh bash dash zsh ksh ash mksh")
_SHELLFLAGS = re.compile(r"(?:-[euxvo]+(?:\s+pipefail)?\s+)*-[euxv]*c")
# GNU make's built-in variables (``make -p``), used unless ``-R``.
BUILTIN_VARS: dict[str, str] = {
    "AR": "ar",
    "ARFLAGS": "rv",
    "AS": "as",
    "CC": "cc",
    "CXX": "g++",
    "CPP": "$(CC) -E",
    "FC": "f77",
    "LD": "ld",
    "LEX": "lex",
    "YACC": "yacc",
    "LINT": "lint",
    "M2C": "m2c",
    "PC": "pc",
    "CO": "co",
    "GET": "get",
    "MAKEINFO": "makeinfo",
    "TEX": "tex",
    "TEXI2DVI": "texi2dvi",
    "WEAVE": "weave",
    "CWEAVE": "cweave",
    "TANGLE": "tangle",
    "CTANGLE": "ctangle",
    "OBJC": "cc",
    "RM": "rm -f",
}
_SPECIAL_TARGETS = names(
    ".PHONY .SUFFIXES .DEFAULT .PRECIOUS .INTERMEDIATE .NOTINTERMEDIATE .SECONDARY "
    ".SECONDEXPANSION .DELETE_ON_ERROR .IGNORE .LOW_RESOLUTION_TIME .SILENT "
    ".EXPORT_ALL_VARIABLES .NOTPARALLEL .ONESHELL .POSIX .WAIT"
)
# Suffixes of GNU make's built-in suffix list: `.c.o:` is a suffix rule, an implicit rule.
SUFFIXES = names(
    ".out .a .ln .o .c .cc .C .cpp .p .f .F .m .r .y .l .ym .yl .s .S .mod .sym .def .h "
    ".info .dvi .tex .texinfo .texi .txinfo .w .ch .web .sh .elc .el"
)
_NAME = re.compile(r"[^\s:#=]+")
_MODIFIERS = re.compile(r"^\s*(?:(?:export|unexport|override|private)\s+)+")
_ASSIGN_OPS = ("::=", ":::=", ":=", "+=", "?=", "!=", "=")


@dataclass(slots=True)
class Rule:
    """One rule: its prerequisites and its recipe lines (``None``: the rule gives no recipe)."""

    prereqs: list[str]
    order_only: list[str]
    recipe: list[str] | None
    double: bool = False


@dataclass(slots=True)
class Makefile:
    """What the makefiles define, as far as the reader could follow them."""

    rules: dict[str, list[Rule]] = field(default_factory=dict)
    patterns: list[str] = field(default_factory=list)  # targets of pattern and suffix rules
    first: str | None = None  # the default goal: the first ordinary target
    phony: set[str] = field(default_factory=set)
    oneshell: bool = False
    export_all: bool = False
    exported: set[str] = field(default_factory=set)
    unexported: set[str] = field(default_factory=set)
    target_problems: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # makefiles read, in order
    missing: list[str] = field(default_factory=list)  # included files that do not exist yet


def split_assignment(text: str) -> tuple[str, str, str] | None:
    """``NAME OP VALUE`` as (name, op, value) when ``text`` is a variable assignment."""
    i = _top_find(text, ":=+?!")
    while i >= 0:
        for op in _ASSIGN_OPS:
            if text.startswith(op, i):
                name = text[:i].strip()
                if not name or (any(x in name for x in " \t") and "$" not in name):
                    return None
                return name, op, text[i + len(op) :].lstrip()
        if text[i] == ":":
            return None  # a rule
        i = _top_find(text, ":=+?!", i + 1)
    return None


def _top_find(text: str, chars: str, start: int = 0) -> int:
    """The index of the first of ``chars`` outside ``$(...)``/``${...}``, or -1."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n and text[i + 1] in "({":
            depth += 1
            i += 2
            continue
        if ch in ")}" and depth:
            depth -= 1
        elif depth == 0 and ch in chars:
            return i
        i += 1
    return -1


def _matching(text: str, start: int, open_ch: str) -> int:
    """The index of the bracket closing the one opened just before ``start``, or -1."""
    close = ")" if open_ch == "(" else "}"
    depth = 1
    for i in range(start, len(text)):
        ch = text[i]
        if ch == open_ch:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _strip_comment(line: str) -> str:
    i = 0
    while True:
        i = line.find("#", i)
        if i < 0:
            return line
        k = i
        while k > 0 and line[k - 1] == "\\":
            k -= 1
        if (i - k) % 2 == 0:
            return line[:i]
        i += 1


def _logical_lines(text: str) -> list[tuple[bool, str]]:
    """The makefile's lines, continuation lines joined: (starts with a tab, text).

    A tab line keeps its backslash-newlines, which its shell reads (make drops the tab that
    starts each continuation line); any other line has them replaced by one space.
    """
    raw = text.split("\n")
    out: list[tuple[bool, str]] = []
    i = 0
    while i < len(raw):
        line = raw[i].rstrip("\r")
        tab = line.startswith("\t")
        parts = [line]
        while _continued(parts[-1]) and i + 1 < len(raw):
            i += 1
            nxt = raw[i].rstrip("\r")
            if tab:
                parts.append(nxt[1:] if nxt.startswith("\t") else nxt)
            else:
                parts[-1] = parts[-1][:-1].rstrip()
                parts.append(nxt.lstrip())
        out.append((tab, "\n".join(parts) if tab else " ".join(parts)))
        i += 1
    return out


def _continued(line: str) -> bool:
    k = len(line)
    while k > 0 and line[k - 1] == "\\":
        k -= 1
    return (len(line) - k) % 2 == 1


def _pattern_match(pattern: str, name: str) -> bool:
    pre, _, post = pattern.partition("%")
    return len(name) >= len(pre) + len(post) and name.startswith(pre) and name.endswith(post)


def _subst_ref(value: str, a: str, b: str) -> str:
    """``$(VAR:a=b)``: each word's suffix ``a`` (or ``%`` pattern) replaced."""
    if "%" not in a:
        a, b = "%" + a, "%" + b
    pre, _, post = a.partition("%")
    out = []
    for w in value.split():
        if _pattern_match(a, w):
            stem = w[len(pre) : len(w) - len(post)]
            out.append(b.replace("%", stem, 1) if "%" in b else b)
        else:
            out.append(w)
    return " ".join(out)


class Reader:
    """Reads makefiles and expands their text.

    Args:
        problem: Called with a note for each construct outside the subset.
        env: The environment make inherits (``None``: a value the analyser cannot know).
        overrides: Variables given on the command line: name to (op, value).
        builtins: Whether make's built-in variables exist (not ``-R``).
        env_first: ``-e``: the environment overrides the makefile's assignments.
        include: Reads an included file: whether it exists, and its text (``None`` when it
            cannot be read).
        make: The name make was run as (``$(MAKE)``).
        curdir: make's working directory (``$(CURDIR)``).
    """

    def __init__(
        self,
        problem: Callable[[str], None],
        *,
        env: Mapping[str, str | None],
        overrides: Mapping[str, tuple[str, str]],
        builtins: bool,
        env_first: bool,
        include: Callable[[str], tuple[bool, str | None]],
        make: str = "make",
        curdir: str = "",
    ) -> None:
        self.problem = problem
        self.include = include
        self.env_first = env_first
        self.unknown: list[str] = []  # what each unknown value was (for notes)
        # name -> (recursive, value); the origin decides what may replace it
        self.defs: dict[str, tuple[bool, str]] = {}
        self.origin: dict[str, str] = {}
        self.mf = Makefile()
        self.goals: list[str] = []  # .DEFAULT_GOAL
        self._expanding: set[str] = set()
        self._depth = 0
        self._work = 0
        self._includes = 0
        if builtins:
            for k, v in BUILTIN_VARS.items():
                self._set(k, True, v, "default")
        self._set("MAKE", False, make, "default")
        self._set("CURDIR", False, curdir, "file")
        self._set("SHELL", False, "/bin/sh", "file")
        self._set(".SHELLFLAGS", False, "-c", "file")
        for k, text in env.items():
            if k in ("SHELL", "MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS") or not _NAME.fullmatch(k):
                continue
            self._set(k, True, text if text is not None else self.mark(f"${k}"), "environment")
        for k, (op, v) in overrides.items():
            if k in _CONTROL and not self._plain_control(k, op, v):
                self.problem(f"{k} is set on make's command line ({k}{op}{v})")
            self._set(k, op == "=", v if op == "=" else self.expand(v), "command line")

    # --------------------------------------------------------------- values

    def mark(self, what: str) -> str:
        """A token for a value the analyser cannot know (``what`` says which)."""
        self.unknown.append(what)
        return f"{MARK}{len(self.unknown) - 1}{MARK}"

    def _set(self, name: str, recursive: bool, value: str, origin: str) -> None:
        self.defs[name] = (recursive, value)
        self.origin[name] = origin

    def value(self, name: str, auto: Mapping[str, str] | None = None) -> str:
        """The expanded value of variable ``name`` (``""`` when undefined, as in make)."""
        if auto is not None:
            hit = auto.get(name)
            if hit is not None:
                return hit
        d = self.defs.get(name)
        if d is None:
            return ""
        recursive, text = d
        if not recursive:
            return text
        self._work += 1
        if name in self._expanding or self._depth > MAX_EXPAND or self._work > MAX_WORK:
            self.problem(f"variable {name} refers to itself or expands too far")
            return self.mark(f"$({name})")
        self._expanding.add(name)
        try:
            return self.expand(text, auto)
        finally:
            self._expanding.discard(name)

    def expand(self, text: str, auto: Mapping[str, str] | None = None) -> str:
        """``text`` with its variable references expanded."""
        if "$" not in text:
            return text
        self._depth += 1
        try:
            out: list[str] = []
            i = 0
            n = len(text)
            while True:
                j = text.find("$", i)
                if j < 0 or j + 1 >= n:
                    out.append(text[i:] if j < 0 else text[i:j])
                    break
                out.append(text[i:j])
                ch = text[j + 1]
                if ch == "$":
                    out.append("$")
                    i = j + 2
                elif ch in "({":
                    k = _matching(text, j + 2, ch)
                    if k < 0:
                        self.problem("unterminated variable reference")
                        out.append(self.mark(text[j:]))
                        break
                    out.append(self._reference(text[j + 2 : k], auto))
                    i = k + 1
                else:
                    out.append(self.value(ch, auto))
                    i = j + 2
            text = "".join(out)
            if len(text) > MAX_TEXT:
                self.problem("an expansion longer than the analyser reads")
                return self.mark("a long expansion")
            return text
        finally:
            self._depth -= 1

    def _reference(self, body: str, auto: Mapping[str, str] | None) -> str:
        m = re.match(r"([a-z-]+)[ \t]", body)
        if m and m.group(1) in _FUNCTIONS:
            self.problem(f"make function $({m.group(1)} ...)")
            return self.mark(f"$({m.group(1)} ...)")
        name = self.expand(body, auto)
        colon = name.find(":")
        if colon > 0 and "=" in name[colon:]:
            a, _, b = name[colon + 1 :].partition("=")
            return _subst_ref(self.value(name[:colon], auto), a, b)
        if len(name) == 2 and name[1] in "DF" and name[0] in "@<^+?*|%":
            return " ".join(_dir_file(w, name[1]) for w in self.value(name[0], auto).split())
        return self.value(name, auto)

    # -------------------------------------------------------------- reading

    def read(self, text: str, name: str) -> None:
        """Read one makefile's text (``name`` is how notes and ``MAKEFILE_LIST`` call it)."""
        if MARK in text:
            self.problem(f"makefile {name} holds NUL bytes")
            return
        self.mf.files.append(name)
        self._set("MAKEFILE_LIST", False, " ".join(self.mf.files), "file")
        # conditionals: (this branch active, a branch already taken, outer active)
        conds: list[tuple[bool, bool, bool]] = []
        current: list[Rule] | None = None
        lines = _logical_lines(text)
        k = 0
        while k < len(lines):
            tab, line = lines[k]
            k += 1
            active = all(c[0] for c in conds)
            if tab and current is not None:
                if active:
                    for r in current:
                        if r.recipe is None:
                            r.recipe = []
                        r.recipe.append(line)
                continue
            line = _strip_comment(line).strip()
            if not line:
                continue
            word = line.split(None, 1)[0]
            rest = line[len(word) :].strip()
            if word in ("ifeq", "ifneq", "ifdef", "ifndef"):
                conds.append(self._branch(word, rest, active, False))
                continue
            if word == "else" and conds:
                _, taken, outer = conds.pop()
                cond = rest.split(None, 1)
                if cond and cond[0] in ("ifeq", "ifneq", "ifdef", "ifndef"):
                    conds.append(
                        self._branch(cond[0], cond[1] if len(cond) > 1 else "", outer, taken)
                    )
                else:
                    conds.append((outer and not taken, True, outer))
                continue
            if word == "endif" and conds:
                conds.pop()
                continue
            if word == "define":
                depth = 1
                while k < len(lines) and depth:
                    body = lines[k][1].strip()
                    k += 1
                    if body.startswith("define"):
                        depth += 1
                    elif body.startswith("endef"):
                        depth -= 1
                if active:
                    self.problem(f"define {rest}: a multi-line variable")
                current = None
                continue
            if not active:
                continue
            current = self._statement(line, word, rest)
        if conds:
            self.problem(f"makefile {name}: a conditional without endif")

    def _statement(self, line: str, word: str, rest: str) -> list[Rule] | None:
        """One line outside a recipe; returns the rules its recipe lines will belong to."""
        if word in ("include", "-include", "sinclude"):
            self._include(rest)
            return None
        if word in ("vpath", "load", "-load"):
            self.problem(f"{word} directive")
            return None
        if word == "undefine":
            self.defs.pop(self.expand(rest).strip(), None)
            return None
        override = False
        export: bool | None = None
        while word in ("override", "export", "unexport", "private") and rest:
            if word == "override":
                override = True
            elif word in ("export", "unexport"):
                export = word == "export"
            line = rest
            word = line.split(None, 1)[0]
            rest = line[len(word) :].strip()
        if word in ("export", "unexport") and not rest:
            if word == "export":
                self.mf.export_all = True
            return None
        assign = split_assignment(line)
        if assign is not None:
            self._assign(*assign, override=override, export=export)
            return None
        if export is not None:
            names_ = self.expand(line)
            if MARK in names_:
                self.problem(f"export of names the analyser cannot see: {line}")
            for n in names_.split():
                (self.mf.exported if export else self.mf.unexported).add(n)
                (self.mf.unexported if export else self.mf.exported).discard(n)
            return None
        return self._rule(line)

    def _assign(
        self, name_text: str, op: str, value: str, *, override: bool, export: bool | None
    ) -> None:
        name = self.expand(name_text).strip()
        if MARK in name or not name or any(ch.isspace() for ch in name):
            self.problem(f"assignment to a variable the analyser cannot name: {name_text}")
            return
        if export is not None:
            (self.mf.exported if export else self.mf.unexported).add(name)
            (self.mf.unexported if export else self.mf.exported).discard(name)
        origin = self.origin.get(name)
        if origin == "command line" and not override:
            return
        if origin == "environment" and self.env_first and not override:
            return
        if name in _CONTROL and not self._plain_control(name, op, value):
            self.problem(f"{name} is set in the makefile ({name} {op} {value})")
        if op == "!=":
            self.problem(f"{name} != runs a shell command when the makefile is read")
            self._set(name, False, self.mark(f"$({name})"), "file")
            return
        if op == "?=":
            if name not in self.defs:
                self._set(name, True, value, "file")
            return
        if op == "+=":
            old = self.defs.get(name)
            if old is None:
                self._set(name, True, value, "file")
            elif old[0]:
                self._set(name, True, f"{old[1]} {value}" if old[1] else value, "file")
            else:
                new = self.expand(value)
                self._set(name, False, f"{old[1]} {new}" if old[1] else new, "file")
            return
        if op == "=":
            self._set(name, True, value, "file")
        else:  # :=, ::=, :::= expand now
            self._set(name, False, self.expand(value), "file")
        if name == ".DEFAULT_GOAL":
            self.goals = self.value(name).split()

    def _plain_control(self, name: str, op: str, value: str) -> bool:
        """Settings that leave recipes plain shell: ``SHELL := /bin/bash``, ``.SHELLFLAGS :=
        -eu -o pipefail -c``, ``MAKEFLAGS += --no-print-directory`` (options only)."""
        text = self.expand(value).strip()
        if MARK in text:
            return False
        if name in ("MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS"):
            return op in ("=", ":=", "::=", ":::=", "+=") and "=" not in text
        if op not in ("=", ":=", "::=", ":::="):
            return False
        if name == "SHELL":
            parts = [p.rsplit("/", 1)[-1] for p in text.split()]
            if len(parts) == 2 and parts[0] == "env":
                parts = parts[1:]  # SHELL := /usr/bin/env bash
            return len(parts) == 1 and parts[0] in _SHELL_NAMES
        if name == ".SHELLFLAGS":
            return bool(_SHELLFLAGS.fullmatch(text))
        return False

    def _branch(self, word: str, rest: str, outer: bool, taken: bool) -> tuple[bool, bool, bool]:
        """A conditional branch: (active, a branch of the chain taken, the enclosing state).

        A condition the reader cannot evaluate makes this branch and the ones after it all
        read, as each may be the one make takes.
        """
        if not outer or taken:
            return False, taken, outer
        truth = self._condition(word, rest)
        if truth is None:
            return True, False, outer
        return truth, truth, outer

    def _condition(self, word: str, rest: str) -> bool | None:
        """Whether a conditional holds (``None``, and a problem: the reader cannot tell)."""
        if word in ("ifdef", "ifndef"):
            name = self.expand(rest).strip()
            if MARK in name:
                self.problem(f"{word} on a name the analyser cannot see")
                return None
            d = self.defs.get(name)
            if d is not None and MARK in d[1]:
                self.problem(f"{word} {name}: a value the analyser cannot see")
                return None
            defined = d is not None and d[1] != ""
            return defined if word == "ifdef" else not defined
        args = self._cond_args(rest)
        if args is None:
            self.problem(f"{word} {rest}: a condition the analyser cannot read")
            return None
        a, b = (self.expand(x) for x in args)
        if MARK in a or MARK in b:
            self.problem(f"{word} {rest}: a condition on values the analyser cannot see")
            return None
        return (a == b) == (word == "ifeq")

    @staticmethod
    def _cond_args(rest: str) -> tuple[str, str] | None:
        if rest.startswith("(") and rest.endswith(")"):
            inner = rest[1:-1]
            comma = _top_find(inner, ",")
            if comma < 0:
                return None
            return inner[:comma].strip(), inner[comma + 1 :].strip()
        m = re.fullmatch(r"""(["'])(.*?)\1\s*(["'])(.*?)\3""", rest)
        return (m.group(2), m.group(4)) if m else None

    def _include(self, rest: str) -> None:
        files = self.expand(rest).split()
        for f in files:
            if MARK in f or any(ch in f for ch in "*?["):
                self.problem(f"include of a file the analyser cannot name ({rest})")
                continue
            self._includes += 1
            if self._includes > MAX_INCLUDES:
                self.problem("more included makefiles than the analyser reads")
                return
            exists, text = self.include(f)
            if not exists:
                # make looks for a rule to make it (and fails without one, unless optional)
                self.mf.missing.append(f)
            elif text is None:
                self.problem(f"include {f}: a makefile the analyser cannot read")
            else:
                self.read(text, f)

    def _rule(self, line: str) -> list[Rule] | None:
        colon = _top_find(line, ":")
        if colon < 0:
            if line.strip():
                self.problem(f"a makefile line the analyser cannot read: {line[:80]}")
            return None
        double = line.startswith("::", colon)
        targets = self.expand(line[:colon]).split()
        rest = line[colon + (2 if double else 1) :]
        recipe: list[str] | None = None
        semi = _top_find(rest, ";")
        if semi >= 0:
            recipe = [rest[semi + 1 :].lstrip()]
            rest = rest[:semi]
        if not targets:
            return None
        if any(MARK in t for t in targets):
            self.problem(f"a rule for targets the analyser cannot name: {line[:80]}")
            return None
        note = None
        if split_assignment(_MODIFIERS.sub("", rest)) is not None:
            note = f"target-specific variable ({rest.strip()[:80]})"
        elif _top_find(rest, ":") >= 0:
            note = f"static pattern rule ({line[:80]})"
        if note is not None:
            for t in targets:
                if "%" in t:
                    self.problem(note)  # applies to every target the pattern matches
                self.mf.target_problems.setdefault(t, []).append(note)
            if recipe is None:
                return None  # the assignment line has no recipe of its own
        prereq_text = self.expand(rest) if note is None else ""
        normal, _, order = prereq_text.partition("|")
        prereqs = [p for p in normal.split() if p != ".WAIT"]
        order_only = order.split()
        if targets[0] in _SPECIAL_TARGETS:
            self._special(targets[0], prereqs)
        rule = Rule(prereqs, order_only, recipe, double)
        rules: list[Rule] = []
        for t in targets:
            if "%" in t or self._suffix_rule(t):
                self.mf.patterns.append(t)
                continue
            if t not in _SPECIAL_TARGETS or t == ".DEFAULT":
                self.mf.rules.setdefault(t, []).append(rule)
                rules.append(rule)
            if self.mf.first is None and (not t.startswith(".") or "/" in t):
                self.mf.first = t
        return rules or [Rule([], [], None)]

    def _special(self, target: str, prereqs: list[str]) -> None:
        if target == ".PHONY":
            self.mf.phony.update(prereqs)
        elif target == ".ONESHELL":
            self.mf.oneshell = True
        elif target == ".EXPORT_ALL_VARIABLES":
            self.mf.export_all = True
        elif target == ".SECONDEXPANSION":
            self.problem(".SECONDEXPANSION: prerequisites expanded a second time")

    @staticmethod
    def _suffix_rule(target: str) -> bool:
        """``.c.o`` and ``.c``: old-fashioned suffix rules."""
        if not target.startswith(".") or target in _SPECIAL_TARGETS:
            return False
        parts = ["." + p for p in target[1:].split(".")]
        return 1 <= len(parts) <= 2 and all(p in SUFFIXES for p in parts)


def _dir_file(word: str, which: str) -> str:
    """``$(@D)`` and ``$(@F)`` of one word."""
    head, _, tail = word.rpartition("/")
    if which == "F":
        return tail
    return head if head else "."
