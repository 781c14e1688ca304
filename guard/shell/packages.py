"""Package managers: ``npm``, ``yarn`` and ``pnpm`` run the scripts of ``package.json``.

The script a command names (``npm run build``, ``npm test``, ``yarn build``) is analysed as shell
text in the package's folder, with its ``pre`` and ``post`` scripts, and the arguments npm
passes on. Installing runs the install scripts of dependencies the analyser cannot read: that is
unseen code (see :meth:`Cmd.unseen`), and so are programs fetched to run (``npx``, ``npm exec``)
and settings that run other code with every script (``script-shell``, ``NODE_OPTIONS``).
``npm publish`` sends the package's folder to the registry.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass

from guard.shell.core import TABLE, Cmd, State, command
from guard.shell.reentry import file_text, run_code
from guard.shell.words import OPAQUE, Field, Flow, names, short
from guard.types import EffectKind, Location

__all__: list[str] = []

MAX_UP = 64  # folders walked up looking for package.json

# Subcommands of npm, yarn and pnpm, by what they run.
_NPM_RUN = names("run run-script rum urn")
_NPM_LIFECYCLE = {
    "test": ("pretest", "test", "posttest"),
    "t": ("pretest", "test", "posttest"),
    "tst": ("pretest", "test", "posttest"),
    "start": ("prestart", "start", "poststart"),
    "stop": ("prestop", "stop", "poststop"),
    "restart": ("prerestart", "restart", "postrestart"),
    "pack": ("prepack", "prepare", "postpack"),
    "publish": ("prepublishOnly", "prepack", "prepare", "postpack", "publish", "postpublish"),
    "version": ("preversion", "version", "postversion"),
}
_NPM_INSTALL = names(
    "install i in ins inst insta instal isnt isnta isntal isntall add ci clean-install ic "
    "install-clean isntall-clean install-test it install-ci-test cit clean-install-test sit "
    "update up upgrade udpate rebuild rb link ln dedupe ddp"
)
_NPM_FOREIGN = names("exec x explore dlx create init innit node")
_OWN_INSTALL = (
    "preinstall",
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
)
_YARN_OWN = names(
    "access audit autoclean bin cache check config constraints explain generate-lock-entry "
    "global help import info licenses list login logout npm outdated owner patch "
    "patch-commit plugin policies remove search set stage tag team unlink unplug "
    "upgrade-interactive versions why"
)
_PNPM_OWN = names(
    "audit bin config deploy doctor env fetch import licenses list ll la ls outdated patch "
    "patch-commit patch-remove prune remove rm uninstall un root server setup store unlink "
    "why cat-file cat-index find-hash self-update help"
)
# rc-file settings and environment variables that make a package manager run other code for
# every command or script (a script shell, node's --require, yarn's own path, plugins)
_RC_CODE = re.compile(r"(?im)^\s*(script-shell|node-options|onload-script|yarn-?path|plugins)\b")
_MANAGERS = names("npm npx yarn yarnpkg pnpm pnpx")
_RC_ENV = names(
    "npm_config_script_shell npm_config_node_options npm_config_onload_script node_options "
    "yarn_yarn_path yarn_plugins"
)


@dataclass
class _Pm:
    """A package manager's command line: subcommand, its arguments, where it starts."""

    sub: str | None
    args: list[Field]
    start: str | None
    hidden: bool = False  # a word the analyser cannot see stands where the subcommand is


def _pm_args(c: Cmd, value_opts: frozenset[str], dir_opts: frozenset[str]) -> _Pm:
    """Split a package manager's arguments; folder options may come before or after the
    subcommand, and ``--`` ends them."""
    st = c.st
    start = st.cwd
    sub: str | None = None
    args: list[Field] = []
    items = list(c.args)
    k = 0
    after = False
    while k < len(items):
        a = items[k]
        k += 1
        if after or not a.known:
            if sub is None and not a.known:
                return _Pm(None, items[k:], start, hidden=True)
            args.append(a)
            continue
        v = a.value
        if v == "--":
            after = True
            args.append(a)
            continue
        name, eq, val = v.partition("=")
        if name in dir_opts or name in value_opts:
            value = Field(val, raw=val) if eq else (items[k] if k < len(items) else None)
            k += 0 if eq else 1
            if name in dir_opts and value is not None:
                start = st.local(value.value).path if value.known and start is not None else None
            continue
        if sub is None and not v.startswith("-"):
            sub = v
            continue
        args.append(a)
    return _Pm(sub, args, start)


def _package_dir(st: State, start: str | None) -> str | None:
    """The nearest folder at or above ``start`` that holds a package.json."""
    d = start
    for _ in range(MAX_UP):
        if d is None:
            return None
        path = os.path.join(d, "package.json")
        if st.run.isfile(path) or path in st.run.overlay:
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent
    return None


def _scripts(c: Cmd, pkg: str) -> dict[str, str] | None:
    """The ``scripts`` of ``pkg``/package.json (``None``, and unseen code, when unreadable)."""
    path = os.path.join(pkg, "package.json")
    loc = c.st.run.at(path, path)
    text = c.st.run.read_text(loc)
    if text is None:
        c.unseen(f"{c.name}: package.json cannot be read at analysis time", loc)
        return None
    c.emit(EffectKind.READ, loc)
    try:
        data = json.loads(text)
    except ValueError:
        c.unseen(f"{c.name}: package.json is not JSON the analyser can read", loc)
        return None
    scripts = data.get("scripts", {}) if isinstance(data, dict) else None
    if not isinstance(scripts, dict) or not all(isinstance(v, str) for v in scripts.values()):
        c.unseen(f"{c.name}: package.json scripts the analyser cannot read", loc)
        return None
    return {str(k): v for k, v in scripts.items()}


def _rc_code(c: Cmd, pkg: str) -> None:
    """Settings that make the package manager run other code for every script: in the
    project's rc files, the user's, or the environment."""
    st = c.st
    env = st.env_vars()
    home = st.x.get_var("HOME")
    places = [os.path.join(pkg, n) for n in (".npmrc", ".yarnrc", ".yarnrc.yml")]
    if home is not None and home.text:
        places += [os.path.join(home.text, n) for n in (".npmrc", ".yarnrc", ".yarnrc.yml")]
    user = next((v for k, v in env.items() if k.lower() == "npm_config_userconfig"), None)
    if user is not None and user.text is None:
        c.unseen(f"{c.name} reads a config file the analyser cannot name")
    elif user is not None and user.text:
        places.append(user.text)
    for p in places:
        loc = st.local(p)
        exists, text = file_text(c, loc)
        if exists and (text is None or _RC_CODE.search(text)):
            c.unseen(f"{c.name}: {p} sets a program that runs with every script", loc)
    for k in env:
        if k.lower() in _RC_ENV:
            c.unseen(f"{c.name}: {k} in the environment sets code that runs with every script")


def _run_scripts(
    c: Cmd,
    pkg: str,
    scripts: dict[str, str],
    order: tuple[str, ...],
    main: str,
    args: list[Field],
) -> tuple[Flow, ...]:
    """Run the scripts named in ``order`` that exist; ``args`` are appended to ``main``."""
    out: list[Flow] = []
    tail = ""
    if args:
        if all(a.known for a in args):
            tail = " " + " ".join(shlex.quote(a.value) for a in args)
        else:
            c.unseen(f"{c.name}: script arguments the analyser cannot see")
    for n in order:
        text = scripts.get(n)
        if text is not None:
            out.extend(
                run_code(
                    c,
                    text + (tail if n == main else ""),
                    what=f"{c.name} script {n}",
                    cwd=pkg,
                    pos=[],
                )
            )
    return tuple(out)


def _script_args(args: list[Field]) -> list[Field]:
    """What npm passes on to a script: the operands, and everything after ``--``."""
    out: list[Field] = []
    for k, a in enumerate(args):
        if a.known and a.value == "--":
            return out + args[k + 1 :]
        if not (a.known and a.value.startswith("-")):
            out.append(a)
    return out


def _package(c: Cmd, pm: _Pm, *, fallback: bool) -> tuple[Flow, ...]:
    """npm, yarn and pnpm once the subcommand is known.

    ``fallback``: a subcommand that is not the tool's own runs the script of that name
    (yarn, pnpm), or a program of the project's dependencies when there is no such script.
    """
    sub = pm.sub or "install"
    ignore = any(a.known and a.value == "--ignore-scripts" for a in pm.args)
    pkg = _package_dir(c.st, pm.start)
    if sub in _NPM_FOREIGN:
        c.unseen(f"{c.name} {sub} runs a package's program the analyser cannot read")
        return TABLE["/unknown"](c)
    if pkg is None:
        if sub in _NPM_INSTALL and not ignore:
            c.unseen(f"{c.name} {sub} runs the install scripts of the packages it fetches")
        return TABLE["/unknown"](c)
    _rc_code(c, pkg)
    scripts = _scripts(c, pkg)
    if scripts is None:
        return (OPAQUE,)
    if sub in _NPM_INSTALL:
        if ignore:
            return ()
        c.unseen(f"{c.name} {sub} runs the install scripts of the dependencies")
        return _run_scripts(c, pkg, scripts, _OWN_INSTALL, "", [])
    if sub in _NPM_LIFECYCLE:
        order = _NPM_LIFECYCLE[sub]
        # test, start, stop and restart run one script (given the arguments) and its pre/post
        main = order[1] if order[1] in ("test", "start", "stop", "restart") else ""
        if sub == "publish":
            c.emit(
                EffectKind.TRANSFER,
                c.st.run.at(pkg, pkg),
                Location(raw="package registry", path=None, visible=False),
                recursive=True,
                certain=False,
                note=f"{c.name} publish uploads the package's files",
            )
        if (
            main == "start"
            and "start" not in scripts
            and c.st.run.isfile(os.path.join(pkg, "server.js"))
        ):
            return run_code(c, "node server.js", what=f"{c.name} start", cwd=pkg, pos=[])
        if main == "restart" and "restart" not in scripts:
            order = ("prerestart", *_NPM_LIFECYCLE["stop"], *_NPM_LIFECYCLE["start"], "postrestart")
        if ignore:
            order = (main,) if main else ()
        args = _script_args(pm.args) if main else []
        return (*_run_scripts(c, pkg, scripts, order, main, args), OPAQUE)
    args = _script_args(pm.args)
    if sub in _NPM_RUN:
        if not args:
            return (OPAQUE,)  # lists the scripts
        name_f, args = args[0], args[1:]
    elif fallback:
        name_f = Field(sub, raw=sub)
    else:
        return TABLE["/unknown"](c)
    if not name_f.known:
        c.unseen(f"{c.name} runs a script the analyser cannot name ({short(name_f.raw)})")
        return (OPAQUE,)
    name = name_f.value
    if name not in scripts:
        if sub not in _NPM_RUN:
            c.unseen(f"{c.name} {name} runs a program of the dependencies")
        return (OPAQUE,)
    order = (name,) if ignore else (f"pre{name}", name, f"post{name}")
    return (*_run_scripts(c, pkg, scripts, order, name, args), OPAQUE)


@command("npm")
def _npm(c: Cmd) -> tuple[Flow, ...]:
    """``npm run X``, ``npm test``...: the scripts of package.json, with their pre/post scripts."""
    pm = _pm_args(c, names("--workspace -w --userconfig --cache --registry"), names("--prefix"))
    if pm.hidden:
        c.unseen("npm runs a subcommand the analyser cannot see")
        return (OPAQUE,)
    if any(
        a.known and a.value.split("=")[0] in ("--workspace", "-w", "--workspaces", "-ws")
        for a in c.args
    ):
        c.unseen("npm runs scripts of workspaces the analyser does not follow")
    if pm.sub is None:
        return (OPAQUE,)
    return _package(c, pm, fallback=False)


@command("npx pnpx bunx")
def _npx(c: Cmd) -> tuple[Flow, ...]:
    c.unseen(f"{c.name} runs a package's program the analyser cannot read")
    return TABLE["/unknown"](c)


@command("corepack")
def _corepack(c: Cmd) -> tuple[Flow, ...]:
    """``corepack yarn build``: the package manager it names, run as itself."""
    if c.args and c.args[0].known and c.args[0].value in _MANAGERS:
        return c.st.dispatch(list(c.args), c.stdin)
    return TABLE["/unknown"](c)


@command("yarn yarnpkg")
def _yarn(c: Cmd) -> tuple[Flow, ...]:
    """``yarn X`` runs script X of package.json when X is not one of yarn's own commands."""
    pm = _pm_args(c, names("--modules-folder --cache-folder --registry"), names("--cwd"))
    if pm.hidden:
        c.unseen("yarn runs a subcommand the analyser cannot see")
        return (OPAQUE,)
    if pm.sub in ("workspace", "workspaces"):
        c.unseen("yarn runs scripts of workspaces the analyser does not follow")
        return TABLE["/unknown"](c)
    if pm.sub in _YARN_OWN:
        return TABLE["/unknown"](c)
    return _package(c, pm, fallback=True)


@command("pnpm")
def _pnpm(c: Cmd) -> tuple[Flow, ...]:
    """``pnpm run X``, ``pnpm X``: the scripts of package.json."""
    pm = _pm_args(c, names("--filter -F --reporter"), names("-C --dir"))
    if pm.hidden:
        c.unseen("pnpm runs a subcommand the analyser cannot see")
        return (OPAQUE,)
    if any(
        a.known and a.value.split("=")[0] in ("--filter", "-F", "-r", "--recursive") for a in c.args
    ):
        c.unseen("pnpm runs scripts of workspaces the analyser does not follow")
    if pm.sub is None:
        return (OPAQUE,)
    if pm.sub in _PNPM_OWN:
        return TABLE["/unknown"](c)
    return _package(c, pm, fallback=True)
