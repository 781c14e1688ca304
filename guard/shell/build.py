"""Build tools and task runners: the code they run lives in project files, not on the command line.

``make`` reads its makefile (see ``makefile``) and the recipes of the goals and of their
prerequisites are analysed as shell text, each line in a child shell in make's folder, as make
runs them (``packages`` does the same for the scripts of package.json).

What the analyser cannot read is recorded as unseen code (see :meth:`Cmd.unseen`): a makefile
construct outside the subset it reads, and every tool of :data:`UNSEEN`, whose code is in files
it does not parse (``build.rs``, ``build.gradle``, a ``Rakefile``...). The visible parts are
still analysed: a tool's path arguments, and the script behind ``./gradlew`` or ``python
setup.py``.
"""

from __future__ import annotations

import glob as globmod
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from guard.shell import interp  # noqa: F401 - its python handlers are wrapped below
from guard.shell.core import TABLE, Cmd, State, command
from guard.shell.makefile import MARK, SUFFIXES, Reader, Rule, split_assignment
from guard.shell.record import MAX_GLOB
from guard.shell.reentry import file_text, run_code
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import ConfigEdit, EffectKind, Location

__all__ = ["UNSEEN"]

MAX_TARGETS = 256  # targets of one make run whose recipes are analysed
MAX_DEPTH = 32  # prerequisite chains followed
_MAKEFILES = ("GNUmakefile", "makefile", "Makefile")
_MARK_RE = re.compile(f"{MARK}(\\d+){MARK}")
_PREFIX = re.compile(r"^[\s@+-]*")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DRY = frozenset("nqt")  # flags under which make runs only `+` and $(MAKE) lines
# One-letter flags a MAKEFLAGS value passes on (a sub-make reads them as its own).
_INHERITED = frozenset("nqtrReiks")
# Source files GNU make's built-in rules make a target from (T.c makes T and T.o).
_SOURCES = (
    ".c",
    ".cc",
    ".C",
    ".cpp",
    ".p",
    ".f",
    ".F",
    ".r",
    ".s",
    ".S",
    ".mod",
    ".sh",
    ".y",
    ".l",
)
_MAKE_VALUE = "CfIoWE"
_MAKE_OPTIONAL = "jlO"
_MAKE_LONG = {
    "directory": "-C",
    "file": "-f",
    "makefile": "-f",
    "include-dir": "-I",
    "eval": "-E",
    "old-file": "-o",
    "assume-old": "-o",
    "what-if": "-W",
    "new-file": "-W",
    "assume-new": "-W",
    "jobserver-auth": "",
    "jobserver-fds": "",
    "jobserver-style": "",
    "sync-mutex": "",
}
_MAKE_FLAGS = {
    "dry-run": "n",
    "just-print": "n",
    "recon": "n",
    "question": "q",
    "touch": "t",
    "no-builtin-rules": "r",
    "no-builtin-variables": "R",
    "environment-overrides": "e",
    "version": "v",
    "help": "h",
}


# ---------------------------------------------------------------------- make


@dataclass
class _MakeArgs:
    """A make command line, parsed."""

    dirs: list[Field] = field(default_factory=list)
    files: list[Field] = field(default_factory=list)
    includes: list[Field] = field(default_factory=list)
    evals: list[Field] = field(default_factory=list)
    goals: list[Field] = field(default_factory=list)
    overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    hidden: list[str] = field(default_factory=list)  # arguments the analyser cannot see


def _make_args(args: list[Field]) -> _MakeArgs:
    out = _MakeArgs()
    take = {"-C": out.dirs, "-f": out.files, "-I": out.includes, "-E": out.evals}
    i = 0
    operands_only = False
    while i < len(args):
        a = args[i]
        i += 1
        if not a.known:
            out.hidden.append(a.raw or a.value)
            continue
        v = a.value
        if operands_only or not v.startswith("-") or v == "-":
            assign = split_assignment(v) if not v.startswith("-") else None
            if assign is not None and " " not in assign[0]:
                name, op, text = assign
                out.overrides[name] = ("=" if op in ("=", "?=", "+=") else ":=", text)
            else:
                out.goals.append(a)
            continue
        if v == "--":
            operands_only = True
            continue
        if v.startswith("--"):
            name, eq, val = v[2:].partition("=")
            hits = [k for k in (*_MAKE_LONG, *_MAKE_FLAGS) if k.startswith(name)]
            full = name if name in _MAKE_LONG or name in _MAKE_FLAGS else (hits[0] if hits else "")
            if full in _MAKE_LONG:
                value: Field | None = (
                    Field(val, raw=val) if eq else (args[i] if i < len(args) else None)
                )
                if not eq:
                    i += 1
                dest = take.get(_MAKE_LONG[full])
                if dest is not None and value is not None:
                    dest.append(value)
            elif full in _MAKE_FLAGS:
                out.flags.add(_MAKE_FLAGS[full])
            continue
        for j in range(1, len(v)):
            ch = v[j]
            if ch in _MAKE_VALUE:
                value = Field(v[j + 1 :], raw=v[j + 1 :]) if j + 1 < len(v) else None
                if value is None and i < len(args):
                    value = args[i]
                    i += 1
                dest = take.get("-" + ch)
                if dest is not None and value is not None:
                    dest.append(value)
                break
            if ch in _MAKE_OPTIONAL:
                if j + 1 == len(v) and i < len(args) and args[i].known and args[i].value.isdigit():
                    i += 1
                break
            out.flags.add(ch)
    return out


class _Make:
    """One make run: reads the makefiles, then walks the goals as make would."""

    def __init__(self, c: Cmd, a: _MakeArgs, cwd: str) -> None:
        self.c = c
        self.a = a
        self.cwd = cwd
        self.at = c.st.fork()
        self.at.cwd = cwd
        self.makefile_loc: Location | None = None
        self.dry = bool(a.flags & _DRY)
        self.builtin_rules = not (a.flags & {"r", "R"})
        self.env = c.st.env_vars()
        env = {k: v.text for k, v in self.env.items()}
        self.reader = Reader(
            self.problem,
            env=env,
            overrides=a.overrides,
            builtins="R" not in a.flags,
            env_first="e" in a.flags,
            include=self.include,
            make=c.name,
            curdir=cwd,
        )
        self.done: set[str] = set()
        self.out: list[Flow] = []
        self._recipe_env: dict[str, Var] | None = None

    def problem(self, note: str) -> None:
        """Something outside the subset: code the analyser cannot see will run."""
        self.c.unseen(f"make: {note}", self.makefile_loc)

    def include(self, name: str) -> tuple[bool, str | None]:
        """An included makefile: found in make's folder, then in the ``-I`` folders."""
        if name.startswith(("/dev/", "/proc/")):
            return True, None
        bases = [""] + [d.value for d in self.a.includes if d.known]
        for b in bases:
            loc = self.at.local(os.path.join(b, name) if b and not name.startswith("/") else name)
            exists, text = file_text(self.c, loc)
            if exists:
                if text is not None:
                    self.c.emit(EffectKind.READ, loc)
                return True, text
        return False, None

    # ------------------------------------------------------------- reading

    def read(self) -> bool:
        """Read the makefiles; false when make would find none and run nothing."""
        c = self.c
        for var in ("MAKEFILES", "MAKEFLAGS", "GNUMAKEFLAGS", "MFLAGS"):
            v = self.env.get(var)
            if v is not None and (v.text is None or (var == "MAKEFILES" and v.text.strip())):
                self.problem(f"{var} in the environment changes what make reads")
            elif (
                v is not None
                and v.text is not None
                and any("=" in w and not w.startswith("-") for w in v.text.split())
            ):
                self.problem(f"{var} in the environment sets variables ({short(v.text)})")
        for e in self.a.evals:
            if e.known:
                self.reader.read(e.value, "--eval")
            else:
                self.problem("--eval text the analyser cannot see")
        files = self.a.files
        if not files:
            for n in _MAKEFILES:
                loc = self.at.local(n)
                if file_text(c, loc)[0]:
                    files = [Field(n, raw=n)]
                    break
        if not files:
            return bool(self.a.evals)  # --eval text alone is a makefile
        for f in files:
            if f.pipe or (f.known and f.value == "-") or c.fd_of(f) is not None:
                # -f -, -f /dev/stdin, -f <(...): the makefile is data on a pipe
                flows = c.stdin if f.value == "-" else c.content(f)
                self._read_flows(flows)
                continue
            loc = self.at.loc(f)
            exists, text = file_text(c, loc)
            self.makefile_loc = self.makefile_loc or loc
            if not f.known:
                self.problem(f"a makefile the analyser cannot name ({short(f.raw)})")
            elif not exists:
                return False  # make: No such file or directory
            elif text is None:
                self.problem(f"makefile {short(f.value)} cannot be read at analysis time")
            else:
                c.emit(EffectKind.READ, loc)
                self.reader.read(text, f.value)
        return True

    def _read_flows(self, flows: tuple[Flow, ...]) -> None:
        if not flows:
            self.problem("a makefile read from a pipe the analyser cannot see")
        for fl in flows:
            text = fl.text
            if text is None and fl.src is not None and fl.exact and not fl.names:
                text = self.c.st.run.read_text(fl.src)
            if text is None:
                self.problem("a makefile read from a pipe the analyser cannot see")
            else:
                self.reader.read(text, "-")

    # ------------------------------------------------------------- running

    def run(self) -> tuple[Flow, ...]:
        """Remake the makefiles that have rules (even under ``-n``), then make the goals."""
        mf = self.reader.mf
        dry, self.dry = self.dry, False
        for name in (*mf.files, *mf.missing):
            if name not in ("-", "--eval"):
                self.build(name, 0)
        self.dry = dry
        for name in mf.missing:
            if name in self.done:
                self.problem(f"included makefile {name} is made by a rule, then read")
        hidden = self.a.hidden
        if hidden:
            self.problem(f"arguments the analyser cannot see ({short(' '.join(hidden))})")
        goals = [g.value for g in self.a.goals] or self.reader.goals
        if not goals and mf.first is not None:
            goals = [mf.first]
        for g in goals:
            self.build(g, 0)
        return (*self.out, OPAQUE)

    def build(self, target: str, depth: int) -> None:
        """Make ``target``: its prerequisites first, then its recipe."""
        if target in self.done:
            return
        if len(self.done) >= MAX_TARGETS or depth > MAX_DEPTH:
            self.problem("more targets than the analyser follows")
            return
        self.done.add(target)
        mf = self.reader.mf
        rules = mf.rules.get(target, [])
        for note in mf.target_problems.get(target, ()):
            self.problem(f"{note} for {target}")
        for p in self._expand_globs([p for r in rules for p in (*r.prereqs, *r.order_only)]):
            self.build(p, depth + 1)
        with_recipe = [r for r in rules if r.recipe is not None]
        if any(r.double for r in with_recipe):
            for r in with_recipe:
                self._recipe(target, r, r.prereqs, r.order_only)
            return
        if with_recipe:
            prereqs = [p for r in rules for p in r.prereqs]
            order = [p for r in rules for p in r.order_only]
            self._recipe(target, with_recipe[-1], prereqs, order)
            return
        if target in mf.phony:
            return
        implicit = self._implicit(target)
        if implicit is not None:
            self.problem(implicit)
            return
        default = mf.rules.get(".DEFAULT")
        loc = self.at.local(target)
        if default and not file_text(self.c, loc)[0]:
            for r in default:
                if r.recipe is not None:
                    self._recipe(target, r, [], [])

    def _expand_globs(self, names_: list[str]) -> list[str]:
        """make expands wildcards in prerequisites against the files in its folder."""
        out: list[str] = []
        for n in names_:
            if MARK in n:
                self.problem(f"a prerequisite the analyser cannot name ({short(n)})")
                continue
            if not any(ch in n for ch in "*?["):
                out.append(n)
                continue
            pattern = os.path.join(self.cwd, n)
            hits = sorted(itertools.islice(globmod.iglob(pattern), MAX_GLOB))
            out.extend(os.path.relpath(h, self.cwd) for h in hits) if hits else out.append(n)
        return out

    def _implicit(self, target: str) -> str | None:
        """What implicit rule would make ``target`` (which has no recipe), if one applies."""
        mf = self.reader.mf
        for p in mf.patterns:
            if _pattern_applies(p, target, lambda n: file_text(self.c, self.at.local(n))[0]):
                return f"pattern rule {p}: applies to {target}"
        if not self.builtin_rules:
            return None
        root, ext = os.path.splitext(target)
        stems = [target, root] if ext else [target]
        candidates = [s + suf for s in stems for suf in _SOURCES if s + suf != target]
        head, tail = os.path.split(target)
        candidates += [
            target + ",v",
            os.path.join(head, "RCS", tail + ",v"),
            os.path.join(head, "s." + tail),
            os.path.join(head, "SCCS", "s." + tail),
        ]
        for cand in candidates:
            if file_text(self.c, self.at.local(cand))[0]:
                return f"make's built-in implicit rules make {target} from {cand}"
        return None

    def _recipe(self, target: str, rule: Rule, prereqs: list[str], order: list[str]) -> None:
        r = self.reader
        recipe = rule.recipe or []
        root, ext = os.path.splitext(target)
        auto = {
            "@": target,
            "<": prereqs[0] if prereqs else "",
            "^": " ".join(dict.fromkeys(prereqs)),
            "+": " ".join(prereqs),
            "?": " ".join(dict.fromkeys(prereqs)),
            "|": " ".join(dict.fromkeys(order)),
            "*": root if ext in SUFFIXES else "",
            "%": "",
        }
        lines: list[str] = []
        for raw in recipe:
            text = r.expand(raw, auto)
            prefix = _PREFIX.match(text)
            cut = prefix.end() if prefix else 0
            forced = "+" in text[:cut] or "$(MAKE)" in raw or "${MAKE}" in raw
            if self.dry and not forced:
                continue
            lines.append(text[cut:])
        if "t" in self.a.flags and target not in self.reader.mf.phony:
            self.c.emit(
                EffectKind.WRITE,
                self.at.local(target),
                edit=ConfigEdit(op="metadata"),
                note="make -t touches the target",
            )
        if self.reader.mf.oneshell and lines:
            lines = ["\n".join(lines)]
        for text in lines:
            if text.strip():
                self._shell(text, target)

    def _shell(self, text: str, target: str) -> None:
        variables = dict(self.recipe_env())
        unknown = self.reader.unknown

        def placeholder(m: re.Match[str]) -> str:
            k = int(m.group(1))
            name = f"__peerguard_unknown_make_{k}"
            what = unknown[k] if k < len(unknown) else "?"
            src = self.env.get(what[1:]) if what.startswith("$") else None
            variables[name] = Var(None, flows=src.flows if src is not None else ())
            self.problem(f"recipe for {target} uses a value the analyser cannot see ({what})")
            return "${" + name + "}"

        text = _MARK_RE.sub(placeholder, text)
        self.out.extend(
            run_code(
                self.c,
                text,
                what=f"make recipe for {target}",
                cwd=self.cwd,
                variables=variables,
                pos=[],
            )
        )

    def recipe_env(self) -> dict[str, Var]:
        """What recipes inherit: make's environment with the exported variables' values."""
        if self._recipe_env is not None:
            return self._recipe_env
        r = self.reader
        mf = r.mf
        env = {k: v for k, v in self.env.items() if k not in mf.unexported}
        for name, origin in r.origin.items():
            if name in mf.unexported or not _VAR_NAME.fullmatch(name):
                continue
            # what came from the environment or the command line is passed on, as changed
            if (
                name in self.env
                or origin == "command line"
                or name in mf.exported
                or (mf.export_all and origin == "file")
            ):
                value = r.value(name)
                if MARK not in value:
                    env[name] = Var(value)
                else:
                    env[name] = self.env.get(name) or Var(None)
        dry = "".join(sorted(self.a.flags & _DRY))
        if dry:
            # a sub-make started by a $(MAKE) line inherits -n, -q or -t this way
            old = env.get("MAKEFLAGS")
            rest = old.text if old is not None and old.text else ""
            env["MAKEFLAGS"] = Var(f"{dry}{rest}" if rest[:1] not in ("", "-", " ") else dry)
        self._recipe_env = env
        return env


def _pattern_applies(pattern: str, target: str, exists: Callable[[str], bool]) -> bool:
    """Whether a pattern rule's target (``%.o``) or a suffix rule (``.c.o``, ``.c``) matches."""
    if "%" in pattern:
        pre, _, post = pattern.partition("%")
        return (
            len(target) >= len(pre) + len(post) and target.startswith(pre) and target.endswith(post)
        )
    parts = ["." + p for p in pattern[1:].split(".")]
    if len(parts) == 2:
        src, dst = parts
        return target.endswith(dst) and exists(target[: -len(dst)] + src)
    return exists(target + parts[0])


def _make_dir(c: Cmd, dirs: list[Field]) -> str | None:
    st: State = c.st
    cwd = st.cwd
    for d in dirs:
        if cwd is None or not d.known:
            return None
        sub = st.fork()
        sub.cwd = cwd
        cwd = sub.local(d.value).path
    return cwd


def _inherited_flags(c: Cmd) -> set[str]:
    """The one-letter flags in ``MAKEFLAGS`` (``ns``, ``-n -s``): a parent make's, or the
    caller's."""
    v = c.st.env_vars().get("MAKEFLAGS")
    if v is None or v.text is None:
        return set()
    words = v.text.split(" -- ", 1)[0].split()
    flags: set[str] = set()
    for k, w in enumerate(words):
        if w.startswith("-") and not w.startswith("--"):
            flags.update(w[1:])
        elif k == 0 and "=" not in w:
            flags.update(w)
    return flags & _INHERITED


@command("make gmake")
def _make(c: Cmd) -> tuple[Flow, ...]:
    """``make``: the recipes of the goals and their prerequisites, as make would run them."""
    a = _make_args(c.args)
    a.flags |= _inherited_flags(c)
    if a.flags & {"v", "h"}:
        return (OPAQUE,)
    cwd = _make_dir(c, a.dirs)
    if cwd is None:
        c.unseen("make runs in a folder the analyser cannot tell: its makefile is unknown")
        return (OPAQUE,)
    m = _Make(c, a, cwd)
    if not m.read():
        # no makefile: only built-in implicit rules can make the goals named
        for g in a.goals:
            note = m._implicit(g.value) if m.builtin_rules else None
            if note is not None:
                m.problem(note)
        return ()
    return m.run()


# --------------------------------------------------------- unseen build code


@dataclass(frozen=True)
class Unseen:
    """A tool whose code lives in project files the analyser does not parse.

    Attributes:
        where: Where that code lives, for the note.
        subcommands: The subcommands that run it (``None``: every run but ``--version`` and
            ``--help``).
    """

    where: str
    subcommands: frozenset[str] | None = None


UNSEEN: dict[str, Unseen] = {
    "ninja": Unseen("build.ninja"),
    "cmake": Unseen("CMakeLists.txt and the build it generates"),
    "cargo": Unseen(
        "build.rs and procedural macros",
        names(
            "build b run r test t bench check c clippy doc d install rustc rustdoc fix publish package"
        ),
    ),
    "go": Unseen("//go:generate lines and the Go program", names("generate run test")),
    "gradle": Unseen("build.gradle"),
    "gradlew": Unseen("build.gradle and the Gradle it downloads"),
    "mvn": Unseen("pom.xml and its plugins"),
    "mvnw": Unseen("pom.xml and the Maven it downloads"),
    "ant": Unseen("build.xml"),
    "rake": Unseen("the Rakefile"),
    "just": Unseen("the justfile"),
    "task": Unseen("Taskfile.yml"),
    "tox": Unseen("tox.ini"),
    "nox": Unseen("noxfile.py"),
    "poetry": Unseen("pyproject.toml and its build backend", names("run install build shell sync")),
    "uv": Unseen("pyproject.toml and its build backend", names("run sync build")),
    "pdm": Unseen("pyproject.toml and its build backend", names("run install sync build")),
    "hatch": Unseen("pyproject.toml and its build backend", names("run build shell test")),
    "bazel": Unseen("BUILD files and repository rules"),
    "bazelisk": Unseen("BUILD files and repository rules"),
    "scons": Unseen("the SConstruct file"),
    "meson": Unseen("meson.build"),
    "bmake": Unseen("a BSD makefile"),
    "pmake": Unseen("a BSD makefile"),
    "pip": Unseen("setup.py or the build backend of a local project"),
    "pip3": Unseen("setup.py or the build backend of a local project"),
    "ctest": Unseen("the tests CMake defines"),
    "sbt": Unseen("build.sbt"),
    "lein": Unseen("project.clj"),
    "mix": Unseen("mix.exs", names("compile run test deps.compile escript.build release")),
    "dotnet": Unseen("the project's MSBuild files", names("build run test publish pack msbuild")),
    "swift": Unseen("Package.swift and its plugins", names("build run test package")),
    "cabal": Unseen("the package's Setup.hs", names("build run test install exec v2-build")),
    "stack": Unseen("the package's Setup.hs", names("build run test install exec")),
    "composer": Unseen(
        "the scripts of composer.json", names("install update run-script run test require")
    ),
    "bundle": Unseen("the Gemfile and its gems' extensions", names("exec install update")),
    "pre-commit": Unseen(".pre-commit-config.yaml and the hooks it fetches", names("run")),
    "invoke": Unseen("tasks.py"),
    "inv": Unseen("tasks.py"),
    "fab": Unseen("fabfile.py"),
    "doit": Unseen("dodo.py"),
    "snakemake": Unseen("the Snakefile"),
    "waf": Unseen("the wscript"),
    "buck2": Unseen("BUCK files"),
    "pants": Unseen("BUILD files and plugins"),
    "earthly": Unseen("the Earthfile"),
    "nx": Unseen("the workspace's targets and executors"),
    "turbo": Unseen("turbo.json and the packages' scripts"),
    "lerna": Unseen("the packages' scripts"),
}
_HELP = names("--version -V -v --help -h help version")
# A pip argument that names local code: a path, a file: or VCS URL.
_PIP_LOCAL = re.compile(r"^(\.|/|~|file:|git\+|hg\+|svn\+|bzr\+)")
_PIP_VALUE = names(
    "-t --target --prefix --root --trusted-host --proxy --cert --client-cert --cache-dir "
    "--src --log --python-version --platform --implementation --abi -d --dest --progress-bar "
    "-c --constraint --config-settings -C --only-binary --no-binary --upgrade-strategy"
)
_PIP_INDEX = names("-i --index-url --extra-index-url -f --find-links")
_PIP_REQS = names("-r --requirement -e --editable")


def _runs_code(c: Cmd, tool: Unseen) -> bool:
    args = c.args
    if not args:
        return tool.subcommands is None
    if any(not a.known for a in args):
        return True
    values = [a.value for a in args]
    if all(v in _HELP for v in values):
        return False
    if c.name in ("pip", "pip3"):
        return pip_builds(c, values)
    if c.name == "uv" and values[0] == "pip":
        return pip_builds(c, values[1:])
    if c.name == "cmake" and values[0] == "-E":
        return False  # cmake -E: a portable cp/rm/echo, judged by its arguments
    if tool.subcommands is None:
        return True
    sub = next((v for v in values if not v.startswith(("-", "+"))), None)
    return sub in tool.subcommands


def pip_builds(c: Cmd, values: list[str], depth: int = 0) -> bool:
    """``pip install .``, ``-e DIR``, a path, a local index, a VCS URL, or a requirements file
    that names one: pip builds local code, and running its build is running that code."""
    if depth == 0 and not {"install", "wheel", "download"} & set(values):
        return False
    k = 0
    while k < len(values):
        v = values[k]
        name, eq, val = v.partition("=")
        arg = val if eq else (values[k + 1] if k + 1 < len(values) else "")
        k += 1 if eq or name not in (_PIP_VALUE | _PIP_INDEX | _PIP_REQS) else 2
        if name in _PIP_VALUE:
            continue
        if name in _PIP_INDEX:
            if not arg.startswith(("http://", "https://")):
                return True
            continue
        if name in ("-e", "--editable"):
            return True
        if name in ("-r", "--requirement"):
            loc = c.st.local(arg)
            text = c.st.run.read_text(loc) if arg else None
            if text is None or depth > 4:
                return True
            words = [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]
            if pip_builds(c, words, depth + 1):
                return True
            continue
        if not v.startswith("-") and (_PIP_LOCAL.match(v) or "/" in v):
            return True
    return False


def _projectfile_text(c: Cmd, tool: Unseen) -> Location | None:
    """The file named in ``tool.where``, when it is a plain file name present in the folder."""
    first = tool.where.split()[0]
    if "." not in first or "/" in first or c.st.cwd is None:
        return None
    loc = c.st.local(first)
    return loc if file_text(c, loc)[0] else None


@command(*UNSEEN)
def _unseen_tool(c: Cmd) -> tuple[Flow, ...]:
    tool = UNSEEN[c.name]
    if _runs_code(c, tool):
        c.unseen(
            f"{c.name} runs code from {tool.where}, which the analyser does not read",
            _projectfile_text(c, tool),
        )
    return TABLE["/unknown"](c)


def _entry_points() -> None:
    """Entry points whose script the analyser reads but whose build it does not: ``./gradlew``
    and ``./mvnw`` (they download and run the build tool), ``python setup.py`` (setuptools'
    build commands) and ``python -m pip install .``. Their handlers are wrapped: the script
    is analysed as before, and the build is recorded as unseen code."""
    by_path = TABLE["/script"]

    def script(c: Cmd) -> tuple[Flow, ...]:
        base = os.path.basename(c.name)
        if base in ("gradlew", "mvnw"):
            c.unseen(
                f"{base} runs code from {UNSEEN[base].where}, which the analyser does not read"
            )
        return by_path(c)

    TABLE["/script"] = script
    for name, fn in list(TABLE.items()):
        if re.fullmatch(r"python[0-9.]*|pypy3?", name):
            TABLE[name] = _python_build(fn)


def _python_build(fn: Callable[[Cmd], tuple[Flow, ...]]) -> Callable[[Cmd], tuple[Flow, ...]]:
    def python(c: Cmd) -> tuple[Flow, ...]:
        values = [a.value if a.known else "" for a in c.args]
        first = next((v for v in values if not v.startswith("-")), "")
        if os.path.basename(first) == "setup.py":
            c.unseen("setup.py runs setuptools' build commands, which the analyser does not read")
        for k, v in enumerate(values):
            if v in ("-m", "-mpip") or not v.startswith("-"):
                mod = "pip" if v == "-mpip" else (values[k + 1] if k + 1 < len(values) else "")
                if mod in ("pip", "pip3") and pip_builds(
                    c, values[k + (1 if v == "-mpip" else 2) :]
                ):
                    c.unseen(
                        "pip builds local code with a build backend the analyser does not read"
                    )
                break
        return fn(c)

    return python


_entry_points()
