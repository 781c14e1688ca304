"""Version control: ``git``, and the code it runs besides its own.

What a git subcommand does to the working tree and the network is recorded as effects: ``git
push`` sends the repository's files, ``git rm`` deletes, ``git checkout`` rewrites the tree.

git also runs code that is not on its command line, and that code is analysed as shell text
where the analyser can read it (in a child shell at the top of the working tree, as git runs
it), and recorded as unseen code where it cannot:

- settings whose value is a command (``core.fsmonitor``, ``core.pager``, ``core.sshCommand``,
  ``diff.external``, ``filter.*.clean``... see ``gitconfig``), from ``-c``, ``--config-env``,
  ``GIT_CONFIG_PARAMETERS``/``GIT_CONFIG_COUNT``, the repository's config, the user's and the
  system's, and the files they include: every git run in that repository may run them;
- environment variables that name commands (``GIT_SSH_COMMAND``, ``GIT_EDITOR``...);
- aliases (``!`` aliases are shell text; others expand to a git command line) and ``git-X``
  programs found on the ``PATH``;
- hooks: the hooks a subcommand may run, from ``.git/hooks`` or ``core.hooksPath``, read as
  scripts; ``.sample`` files never run;
- options and URLs that carry commands (``rebase --exec``, ``--upload-pack``, ``ext::``).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from guard.shell import gitconfig
from guard.shell.common import WRITE
from guard.shell.core import Cmd, State, command
from guard.shell.githooks import (
    ALL_HOOKS,
    BUILTIN,
    CODE_OPTIONS,
    ENV_CODE,
    HOOKS,
    INDEX_WRITERS,
    MESSAGE_HOOKS,
    NO_VERIFY,
    REF_WRITERS,
    STDIN_HOOKS,
    no_verify,
)
from guard.shell.gitops import effects, git_config
from guard.shell.reentry import file_text, run_code, run_script_file, script_language
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import ConfigEdit, EffectKind, Location

__all__: list[str] = []


MAX_ALIAS = 8  # aliases expanded in a row (git stops loops itself)
MAX_INCLUDE = 10  # include depth, as git's own bound
MAX_UP = 64  # folders walked up looking for .git


# Subcommands that talk to another machine (and may ask a credential helper).
_NETWORK = names(
    "fetch pull push clone ls-remote submodule remote credential archive send-pack fetch-pack "
    "http-fetch http-push remote-http remote-https remote-ftp remote-ftps send-email"
)
_GIT_CORE = names(
    "/usr/lib/git-core /usr/libexec/git-core /usr/local/libexec/git-core "
    "/usr/local/lib/git-core /opt/homebrew/libexec/git-core"
)
_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_TRACE = re.compile(r"GIT_TRACE\w*")
_GLOBAL_VALUE = names(
    "--git-dir --work-tree --namespace --config-env --super-prefix --list-cmds --attr-source"
)


@dataclass(frozen=True, slots=True)
class _Setting:
    """One config setting as git will see it.

    ``key`` is ``None`` for a ``-c`` the analyser cannot read, ``value`` ``None`` for a value
    it cannot see; ``origin`` is the file it comes from (``None``: the command line or the
    environment).
    """

    key: str | None
    value: str | None
    origin: Location | None = None


class _Git:
    """One git run: where it runs, its repository, the settings it reads, the code they run."""

    def __init__(self, c: Cmd) -> None:
        self.c = c
        self.st = c.st.fork()
        self.env = c.st.env_vars()
        self.settings: list[_Setting] = []
        self.cmdline: list[_Setting] = []  # -c and --config-env: passed on to child gits
        self.gitdir: str | None = None
        self.common: str | None = None
        self.top: str | None = None
        self.git_dir_opt: Field | None = None
        self.work_tree_opt: Field | None = None
        self.exec_path: Field | None = None
        self.out: list[Flow] = []

    # ------------------------------------------------------------ options

    def options(self) -> tuple[Field | None, list[Field]] | None:
        """Read git's own options; returns (subcommand, its arguments), or ``None`` when git
        only prints its version or help."""
        args = list(self.c.args)
        i = 0
        while i < len(args):
            a = args[i]
            if not a.known or not a.value.startswith("-"):
                break
            v = a.value
            i += 1
            name, eq, val = v.partition("=")
            if v in ("-C", "-c") or name in _GLOBAL_VALUE:
                value = Field(val, raw=val) if eq else (args[i] if i < len(args) else None)
                i += 0 if eq else 1
                if value is None:
                    return None  # git: option requires a value
                self._option(v if v in ("-C", "-c") else name, value)
            elif name == "--exec-path" and eq:
                self.exec_path = Field(val, raw=val)
            elif v in ("-v", "--version", "-h", "--help", "--exec-path") or name in (
                "--html-path",
                "--man-path",
                "--info-path",
            ):
                return None
        if i >= len(args):
            return None  # git alone prints its help
        return args[i], args[i + 1 :]

    def _option(self, name: str, value: Field) -> None:
        if name == "-C":
            st = self.st
            if st.cwd is not None and value.known:
                st.cwd = st.local(value.value).path if value.value else st.cwd
            else:
                st.cwd = None
        elif name == "-c":
            self.cmdline.append(self._dash_c(value))
        elif name == "--config-env":
            key, eq, var = value.value.partition("=") if value.known else ("", "", "")
            canon = gitconfig.key(key) if eq else None
            env = self.env.get(var)
            self.cmdline.append(
                _Setting(canon, env.text if env is not None else None)
                if canon is not None
                else _Setting(None, None)
            )
        elif name == "--git-dir":
            self.git_dir_opt = value
        elif name == "--work-tree":
            self.work_tree_opt = value

    @staticmethod
    def _dash_c(value: Field) -> _Setting:
        """``-c KEY=VALUE`` (``-c KEY`` is true). A word partly unknown may still show its key:
        ``-c alias.x="$CMD"`` is an alias the analyser cannot see."""
        if value.known:
            key, eq, val = value.value.partition("=")
            canon = gitconfig.key(key)
            return _Setting(canon, val if eq else "true") if canon else _Setting(None, None)
        head = value.pieces[0][0] if value.pieces and not value.pieces[0][1] else ""
        key, eq, _ = head.partition("=")
        canon = gitconfig.key(key) if eq else None
        return _Setting(canon, None) if canon else _Setting(None, None)

    # ---------------------------------------------------------- the repo

    def discover(self) -> None:
        """Find the repository: ``--git-dir``/``GIT_DIR``, else ``.git`` in this folder or
        above it (up to the host's root), else a bare repository."""
        st = self.st
        run = st.run
        explicit = self.git_dir_opt or self._env_field("GIT_DIR")
        tree = self.work_tree_opt or self._env_field("GIT_WORK_TREE")
        if explicit is not None:
            if not explicit.known:
                self.c.unseen("git uses a repository the analyser cannot tell: its hooks, config")
            self.gitdir = st.loc(explicit).path if explicit.known else None
            self.top = st.loc(tree).path if tree is not None and tree.known else st.cwd
        else:
            d = st.cwd
            for _ in range(MAX_UP):
                if d is None:
                    break
                dot = os.path.join(d, ".git")
                if run.isdir(dot) or dot in run.created:
                    self.gitdir, self.top = dot, d
                    break
                exists, text = file_text(self.c, run.at(dot, dot))
                if exists:
                    if text is None:
                        self.c.unseen(f"git finds a .git the analyser cannot read ({dot})")
                    m = re.match(r"gitdir:\s*(.+?)\s*$", text or "", re.M)
                    self.gitdir = os.path.join(d, m.group(1)) if m else None
                    self.top = d
                    break
                if run.isfile(os.path.join(d, "HEAD")) and run.isdir(os.path.join(d, "objects")):
                    self.gitdir, self.top = d, None
                    break
                if d == st.host_root or os.path.dirname(d) == d:
                    break
                d = os.path.dirname(d)
        self.common = self.gitdir
        if self.gitdir is not None:
            common = self._env_field("GIT_COMMON_DIR")
            exists, text = file_text(self.c, run.at(self.gitdir + "/commondir", "commondir"))
            if common is not None and common.known:
                self.common = st.local(common.value).path
            elif exists and text and text.strip():
                self.common = os.path.normpath(os.path.join(self.gitdir, text.strip()))

    def _env_field(self, name: str) -> Field | None:
        v = self.env.get(name)
        if v is None:
            return None
        return Field(v.text, raw=f"${name}") if v.text is not None else Field(name, known=False)

    @property
    def where(self) -> str | None:
        """Where git runs hooks, aliases and configured commands: the top of the working
        tree, the repository of a bare one, or the folder git runs in."""
        return self.top or self.gitdir or self.st.cwd

    # ----------------------------------------------------------- settings

    def read_settings(self) -> None:
        """The settings git reads, in its order: system, global, repository, environment,
        command line (``include.path`` files where they are included)."""
        st = self.st
        home = st.x.get_var("HOME")
        home_dir = home.text if home is not None else None
        env = self.env
        if "GIT_CONFIG_NOSYSTEM" not in env:
            self._config_file(self._path_from_env("GIT_CONFIG_SYSTEM") or "/etc/gitconfig", 0)
        glob = self._path_from_env("GIT_CONFIG_GLOBAL")
        if glob is not None:
            self._config_file(glob, 0)
        elif home_dir:
            xdg = env.get("XDG_CONFIG_HOME")
            base = xdg.text if xdg is not None and xdg.text else os.path.join(home_dir, ".config")
            self._config_file(os.path.join(base, "git", "config"), 0)
            self._config_file(os.path.join(home_dir, ".gitconfig"), 0)
        if self.common is not None:
            self._config_file(os.path.join(self.common, "config"), 0)
        if self.gitdir is not None:
            self._config_file(os.path.join(self.gitdir, "config.worktree"), 0)
        for s in (*self._env_settings(), *self.cmdline):
            self._add(s, None, 0)

    def _path_from_env(self, name: str) -> str | None:
        v = self.env.get(name)
        if v is None:
            return None
        if v.text is None:
            self.c.unseen(f"git reads the config file {name} names, which the analyser cannot see")
            return None
        return v.text or None

    def _config_file(self, path: str, depth: int) -> None:
        c = self.c
        loc = self.st.local(path)
        exists, text = file_text(c, loc)
        if not exists:
            return
        if text is None:
            c.unseen(f"git reads a config file the analyser cannot read ({path})", loc)
            return
        entries = gitconfig.parse(text)
        if entries is None:
            c.unseen(f"git config file {path} has lines the analyser cannot parse", loc)
            return
        for k, v in entries:
            self._add(_Setting(k, "true" if v is None else v, loc), os.path.dirname(path), depth)

    def _add(self, s: _Setting, folder: str | None, depth: int) -> None:
        self.settings.append(s)
        if s.key is None or gitconfig.code_kind(s.key) != "include":
            return
        if s.value is None:
            self.c.unseen(f"git includes a config file the analyser cannot name ({s.key})")
            return
        if depth >= MAX_INCLUDE:
            self.c.unseen("git config includes nested deeper than the analyser follows")
            return
        path = s.value
        if path.startswith("~/"):
            home = self.st.x.get_var("HOME")
            if home is None or home.text is None:
                self.c.unseen(f"git includes {path}, which the analyser cannot resolve")
                return
            path = os.path.join(home.text, path[2:])
        elif not path.startswith("/"):
            path = os.path.join(folder or self.st.cwd or "", path)
        # conditional includes are all followed: any of them may apply
        self._config_file(path, depth + 1)

    def _env_settings(self) -> list[_Setting]:
        """``GIT_CONFIG_PARAMETERS`` and ``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n``."""
        out: list[_Setting] = []
        params = self.env.get("GIT_CONFIG_PARAMETERS")
        if params is not None:
            try:
                words = shlex.split(params.text) if params.text is not None else None
            except ValueError:
                words = None
            if words is None:
                out.append(_Setting(None, None))
            for w in words or ():
                name, eq, v = w.partition("=")
                canon = gitconfig.key(name)
                out.append(_Setting(canon, v if eq else "true") if canon else _Setting(None, None))
        count = self.env.get("GIT_CONFIG_COUNT")
        if count is not None:
            n = count.text.strip() if count.text is not None else ""
            if not n.isdigit():
                return [*out, _Setting(None, None)]
            for k in range(min(int(n), 256)):
                kv = self.env.get(f"GIT_CONFIG_KEY_{k}")
                vv = self.env.get(f"GIT_CONFIG_VALUE_{k}")
                canon = gitconfig.key(kv.text) if kv is not None and kv.text else None
                out.append(_Setting(canon, vv.text if vv is not None else None))
        return out

    def last(self, key: str) -> _Setting | None:
        """The setting of ``key`` (in canonical form) git uses: the last one given."""
        for s in reversed(self.settings):
            if s.key == key:
                return s
        return None

    # --------------------------------------------------------------- code

    def child_vars(self) -> dict[str, Var]:
        """The environment of what git runs: its own, plus the ``-c`` settings (git passes
        them on in ``GIT_CONFIG_PARAMETERS``, so a git run by an alias sees them too)."""
        variables = dict(self.env)
        known = [s for s in self.cmdline if s.key is not None and s.value is not None]
        if known:
            old = variables.get("GIT_CONFIG_PARAMETERS")
            text = " ".join(shlex.quote(f"{s.key}={s.value}") for s in known)
            if old is None or old.text is not None:
                text = f"{old.text} {text}" if old is not None and old.text else text
                variables["GIT_CONFIG_PARAMETERS"] = Var(text)
        return variables

    def repo_arg(self) -> list[str]:
        """The arguments given to a configured command in the analysis: one path inside the
        repository, standing for the file, commit or host that git names."""
        arg = self.gitdir or self.where
        return [arg] if arg else []

    def shell(self, text: str, what: str, pos: list[str] | None, *, args: bool = False) -> None:
        """Analyse shell text git runs, with ``pos`` as its arguments (``None``: unknown);
        with ``args``, git appends them to the text (``sh -c 'TEXT "$@"' TEXT ARGS...``)."""
        where = self.where
        if args and pos != []:
            text = f'{text} "$@"'
        self.out.extend(
            run_code(self.c, text, what=what, cwd=where, variables=self.child_vars(), pos=pos)
        )

    def code(self, kind: str, value: str | None, what: str, origin: Location | None) -> None:
        """Analyse a command-valued setting or variable of ``kind`` (see ``gitconfig``)."""
        if value is None:
            self.c.unseen(f"{what}: a command the analyser cannot see", origin)
            return
        v = value.strip()
        if not v:
            return
        text: str | None = None
        if kind == "shell" or (kind == "maybe-shell" and v.lower() not in gitconfig.BOOLEANS):
            text = v
        elif kind == "program":
            text = shlex.quote(v)
        elif kind in ("bang", "credential") and v.startswith("!"):
            text = v[1:]
        elif kind == "credential" and v.startswith(("/", "~")):
            text = v
        elif kind == "credential":
            self.external(f"credential-{v.split()[0]}", [])
        elif kind == "url" and v.startswith("ext::"):
            self.shell(gitconfig.ext_command(v), what, [])
        if text is not None:
            self.shell(text, what, self.repo_arg(), args=True)

    def run_settings(self, sub: str) -> None:
        """Every command-valued setting: each git run in the repository may run them
        (credential helpers only where git talks to another machine)."""
        network = sub in _NETWORK or sub not in BUILTIN
        for s in self.settings:
            if s.key is None:
                self.c.unseen("git -c with a setting the analyser cannot see")
                continue
            kind = gitconfig.code_kind(s.key)
            if kind in (None, "alias", "hooks", "include", "template"):
                continue
            if kind == "credential" and not network:
                continue
            self.code(kind or "", s.value, f"git setting {s.key}", s.origin)

    def run_env(self) -> None:
        """Environment variables that name commands, or a folder of git's programs."""
        for name, kind in ENV_CODE.items():
            v = self.env.get(name)
            if v is not None:
                self.code(kind, v.text, f"{name} for git", None)
        exec_path = self.exec_path or self._env_field("GIT_EXEC_PATH")
        if exec_path is not None and not (exec_path.known and exec_path.value in _GIT_CORE):
            self.c.unseen(
                f"git runs its programs from {short(exec_path.raw or exec_path.value)}, "
                "which the analyser does not read"
            )
        for name, v in self.env.items():
            if _TRACE.fullmatch(name) and v.text is not None and v.text.startswith("/"):
                self.c.emit(
                    WRITE,
                    self.st.local(v.text),
                    edit=ConfigEdit(op="append"),
                    note=f"{name}: git appends its trace to this file",
                )

    def external(self, name: str, args: list[Field]) -> bool:
        """``git NAME`` for a name that is not git's own runs the program ``git-NAME`` found on
        the exec path or the ``PATH``; one the agent can have written is read as a script."""
        path_var = self.env.get("PATH") or self.st.vars.get("PATH")
        dirs: list[str] = []
        if self.exec_path is not None and self.exec_path.known:
            dirs.append(self.exec_path.value)
        if path_var is not None and path_var.text is None:
            self.c.unseen(f"git {name} may run a git-{name} from a PATH the analyser cannot see")
        if path_var is not None and path_var.text is not None:
            dirs.extend(path_var.text.split(":"))
        else:
            dirs.extend(_SYSTEM_PATH)
        for d in dirs:
            loc = self.st.local(os.path.join(d or ".", f"git-{name}"))
            exists, text = file_text(self.c, loc)
            if not exists:
                continue
            self.c.emit(EffectKind.EXEC, loc, via=f"git {name}")
            if os.path.normpath(d) in (*_SYSTEM_PATH, *_GIT_CORE):
                return True
            if text is not None and script_language(text) is None:
                self.c.unseen(f"git {name} runs git-{name}, which the analyser cannot read", loc)
                return True
            at = self.at(self.st.cwd)
            self.out.extend(
                run_script_file(Cmd(at, f"git-{name}", args, (), f"git {name}"), loc, args)
            )
            return True
        return False

    def at(self, cwd: str | None) -> State:
        """A copy of git's shell at ``cwd`` with the environment git gives what it runs."""
        st = self.st.fork()
        st.cwd = cwd
        for k, v in self.child_vars().items():
            st.vars[k] = v
            st.exported.add(k)
        return st

    # -------------------------------------------------------------- hooks

    def hooks_dir(self) -> str | None:
        """Where the hooks are: ``core.hooksPath``, else the repository's ``hooks`` folder."""
        s = self.last("core.hookspath")
        if s is None:
            return os.path.join(self.common, "hooks") if self.common else None
        if s.value is None:
            self.c.unseen("git runs hooks from a folder the analyser cannot see", s.origin)
            return None
        path = s.value
        if path.startswith("~/"):
            home = self.st.x.get_var("HOME")
            if home is None or not home.text:
                self.c.unseen(f"git runs hooks from {path}, which the analyser cannot resolve")
                return None
            path = os.path.join(home.text, path[2:])
        elif not path.startswith("/"):
            path = os.path.join(self.where or "", path)
        return path

    def hooks(self, folder: str | None, which: tuple[str, ...], what: str) -> None:
        """Read each hook of ``which`` present in ``folder`` as a script, run where git runs
        hooks, with the arguments and input git gives it."""
        if folder is None:
            return
        for name in which:
            loc = self.st.local(os.path.join(folder, name))
            exists, text = file_text(self.c, loc)
            if not exists:
                continue
            self.c.emit(EffectKind.EXEC, loc, via=f"{what} hook {name}")
            if text is not None and script_language(text) is None:
                self.c.unseen(f"{what} hook {name} is a program the analyser cannot read", loc)
                continue
            args: list[Field] = []
            if name in MESSAGE_HOOKS and self.gitdir is not None:
                msg = os.path.join(self.gitdir, "COMMIT_EDITMSG")
                args = [Field(msg, raw=msg)]
            stdin = (OPAQUE,) if name in STDIN_HOOKS else ()
            cmd = Cmd(self.at(self.where), name, args, stdin, f"{what} hook {name}")
            self.out.extend(run_script_file(cmd, loc, args, stdin=stdin))

    # --------------------------------------------------------- subcommands

    def subcommand(self, sub: str, rest: list[Field], depth: int = 0) -> tuple[Flow, ...]:
        """Run ``git SUB REST``: git's own command, else a ``git-SUB`` program, else an alias."""
        if sub in BUILTIN:
            return self.builtin(sub, rest)
        found = self.external(sub, rest)
        alias = self.last(f"alias.{sub.lower()}")
        if alias is None:
            return (*self.out, OPAQUE) if found else tuple(self.out)
        what = f"git alias {sub}"
        if alias.value is None:
            self.c.unseen(f"{what}: a command the analyser cannot see", alias.origin)
            return (*self.out, OPAQUE)
        if alias.value.startswith("!"):
            # git runs `sh -c 'ALIAS "$@"' ALIAS ARGS...` at the top of the working tree
            pos = [a.value for a in rest] if all(a.known for a in rest) else None
            self.shell(alias.value[1:], what, pos, args=True)
            return (*self.out, OPAQUE)
        try:
            words = shlex.split(alias.value)
        except ValueError:
            words = []
        while words and words[0].startswith("-"):
            words.pop(0)  # -p, --no-pager...; git refuses aliases that set -c or -C
        if not words or depth >= MAX_ALIAS:
            self.c.unseen(f"{what}: an alias the analyser cannot expand", alias.origin)
            return (*self.out, OPAQUE)
        argv = [Field(w, raw=w) for w in words[1:]] + rest
        return self.subcommand(words[0], argv, depth + 1)

    def builtin(self, sub: str, rest: list[Field]) -> tuple[Flow, ...]:
        """One of git's own commands: the code its options and hooks run, then its effects."""
        self._code_options(sub, rest)
        values = [a.value for a in rest if a.known]
        for v in values:
            if v.startswith("ext::"):
                self.shell(gitconfig.ext_command(v), f"git {sub} {v[:40]}", [])
        if sub == "hook" and len(values) >= 2 and values[0] == "run":
            name = next((v for v in values[1:] if not v.startswith("-")), None)
            if name is not None:
                self.hooks(self.hooks_dir(), (name,), "git hook run")
        elif sub == "bisect" and values[:1] == ["run"]:
            self._run_argv(rest[1:], "git bisect run")
        elif sub == "submodule" and "foreach" in values:
            k = next(i for i, a in enumerate(rest) if a.known and a.value == "foreach")
            cmd = [a for a in rest[k + 1 :] if not (a.known and a.value in ("--recursive", "-q"))]
            if cmd and all(a.known for a in cmd):
                self.shell(" ".join(a.value for a in cmd), "git submodule foreach", [])
            elif cmd:
                self.c.unseen("git submodule foreach: a command the analyser cannot see")
        elif sub in ("init", "clone"):
            self._template(sub, rest)
            self._created(sub, rest)
        elif sub == "push":
            self._remote_hooks(rest)
        skip = NO_VERIFY.get(sub, ()) if no_verify(sub, rest) else ()
        which = tuple(h for h in HOOKS.get(sub, ()) if h not in skip)
        if sub in REF_WRITERS:
            which += ("reference-transaction",)
        if sub in INDEX_WRITERS:
            which += ("post-index-change",)
        if sub == "clone":
            # the new repository's hooks come from the template, unless hooksPath is set
            if self.last("core.hookspath") is not None:
                self.hooks(self.hooks_dir(), which, "git clone")
        elif which:
            self.hooks(self.hooks_dir(), which, f"git {sub}")
        if sub == "config":
            return (*self.out, *git_config(self.c, self.st, self.gitdir, self.common, rest))
        return (*self.out, *effects(self.c, self.st, sub, rest, self.common, self.top))

    def _code_options(self, sub: str, rest: list[Field]) -> None:
        opts = CODE_OPTIONS.get(sub, ())
        if sub == "grep":
            for a in rest:  # -O[PAGER], --open-files-in-pager[=PAGER]: the value only attached
                v = a.value if a.known else ""
                for o in ("-O", "--open-files-in-pager="):
                    if v.startswith(o) and len(v) > len(o):
                        self.shell(v[len(o) :], "git grep -O", self.repo_arg(), args=True)
            return
        k = 0
        while k < len(rest):
            a = rest[k]
            k += 1
            if not a.known:
                continue
            v = a.value
            for o in opts:
                value: Field | None = None
                if v == o:
                    value = rest[k] if k < len(rest) else None
                    k += 1
                elif o.startswith("--") and v.startswith(o + "="):
                    value = Field(v[len(o) + 1 :], raw=v)
                elif not o.startswith("--") and v.startswith(o) and len(v) > len(o):
                    value = Field(v[len(o) :], raw=v)
                if value is None:
                    continue
                if value.known:
                    self.shell(value.value, f"git {sub} {o}", [])
                else:
                    self.c.unseen(f"git {sub} {o}: a command the analyser cannot see")
                break

    def _run_argv(self, argv: list[Field], what: str) -> None:
        if not argv:
            return
        if not all(a.known for a in argv):
            self.c.unseen(f"{what}: a command the analyser cannot see")
            return
        self.shell(" ".join(shlex.quote(a.value) for a in argv), what, [])

    def _template(self, sub: str, rest: list[Field]) -> None:
        """``init`` and ``clone`` copy the template's hooks into the new repository, where
        they will run (``clone`` runs post-checkout at once); ``clone -c`` settings apply to
        it already."""
        template: Field | None = None
        k = 0
        while k < len(rest):
            a = rest[k]
            k += 1
            v = a.value if a.known else ""
            if v == "--template" and k < len(rest):
                template = rest[k]
                k += 1
            elif v.startswith("--template="):
                template = Field(v.split("=", 1)[1], raw=v)
            elif sub == "clone" and v in ("-c", "--config") and k < len(rest):
                s = self._dash_c(rest[k])
                k += 1
                self.cmdline.append(s)
                self.settings.append(s)
                kind = gitconfig.code_kind(s.key) if s.key else "shell"
                if kind not in (None, "alias", "hooks", "include", "template"):
                    self.code(kind or "", s.value, f"git clone -c {s.key}", None)
        if template is None:
            template = self._env_field("GIT_TEMPLATE_DIR")
        if template is None:
            conf = self.last("init.templatedir")
            if conf is not None:
                template = (
                    Field(conf.value, raw=conf.value)
                    if conf.value is not None
                    else Field("init.templateDir", known=False)
                )
        if template is None:
            return
        if not template.known:
            self.c.unseen(f"git {sub} copies hooks from a template the analyser cannot see")
            return
        folder = os.path.join(self.st.loc(template).path or "", "hooks")
        self.hooks(folder, ALL_HOOKS, f"git {sub} template")

    def _created(self, sub: str, rest: list[Field]) -> None:
        """The repository ``init`` or ``clone`` makes exists for the rest of the command line
        (a hook written into it, then ``git commit``, runs that hook)."""
        ops = [a for a in rest if not (a.known and a.value.startswith("-"))]
        target = ops[0] if sub == "init" and ops else (ops[1] if len(ops) > 1 else None)
        folder: str | None = self.st.cwd
        if target is not None:
            folder = self.st.loc(target).path if target.known else None
        elif sub == "clone" and ops and ops[0].known:
            name = ops[0].value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            folder = self.st.local(name.removesuffix(".git")).path
        if folder is None:
            return
        bare = any(a.known and a.value == "--bare" for a in rest)
        run = self.st.run
        for d in (folder, *(() if bare else (os.path.join(folder, ".git"),))):
            run.created.add(d)
            run.created.add(os.path.join(d, "hooks"))

    def _remote_hooks(self, rest: list[Field]) -> None:
        """A push to a repository on this machine runs that repository's receive hooks."""
        ops = [a for a in rest if not (a.known and a.value.startswith("-"))]
        target = ops[0] if ops else Field("origin", raw="origin")
        if not target.known:
            return
        url = target.value
        remote = self.last(f"remote.{url}.url")
        if remote is not None and remote.value is not None:
            url = remote.value
        url = url.removeprefix("file://")
        if not url.startswith(("/", "./", "../")) and url not in (".", ".."):
            return
        path = self.st.local(url).path
        if path is None or not self.st.run.isdir(path):
            return
        dot = os.path.join(path, ".git")
        gitdir = dot if self.st.run.isdir(dot) else path
        other = _Git(self.c)
        other.st.cwd = gitdir
        other.gitdir = other.common = gitdir
        other._config_file(os.path.join(gitdir, "config"), 0)
        other.hooks(
            other.hooks_dir(),
            (*HOOKS["receive-pack"], "reference-transaction"),
            "git push: the receiving repository's",
        )
        self.out.extend(other.out)


@command("git")
def _git(c: Cmd) -> tuple[Flow, ...]:
    """``git``: its subcommand's effects, and the code git runs besides (see the module)."""
    g = _Git(c)
    parsed = g.options()
    if parsed is None:
        return (OPAQUE,)
    head, rest = parsed
    if head is None or not head.known:
        c.unseen("git runs a subcommand the analyser cannot see (an alias or a program)")
        return (OPAQUE,)
    sub = head.value
    if sub == "version":
        return (OPAQUE,)
    if g.st.cwd is None:
        c.unseen(f"git {sub} runs in a folder the analyser cannot tell: its hooks and config")
        return effects(c, g.st, sub, rest)
    g.discover()
    g.read_settings()
    g.run_settings(sub)
    g.run_env()
    return g.subcommand(sub, rest)
