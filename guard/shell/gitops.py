"""What a git subcommand does itself: the working tree it writes (checkout, reset, rm, mv,
clone), the repository content it sends or stores (push, bundle, archive, stash, commit), and
git used as a copier (``git show HEAD:weights > out``, ``git archive``), with the effects
that follow, and ``git config`` writing a setting. :mod:`guard.shell.vcs` finds the code git
runs besides its own.
"""

from __future__ import annotations

import os
import re

from guard.shell import gitconfig
from guard.shell.common import DELETE, MOVE, WRITE, copy_effect, dest_for, isdir
from guard.shell.core import Cmd, State
from guard.shell.options import Spec, parse
from guard.shell.reentry import file_text
from guard.shell.words import OPAQUE, Field, Flow, names
from guard.types import ConfigEdit, EffectKind, Location


def effects(
    c: Cmd,
    base: State,
    sub: str,
    rest: list[Field],
    store: str | None = None,
    top: str | None = None,
) -> tuple[Flow, ...]:
    """What git subcommand ``sub`` does itself to the working tree, other files and the network.

    ``store`` is the repository's git folder (objects, index) and ``top`` its working tree,
    when known. git is also a copier: what it stores carries the files' content, and what
    reads the store back out (a clone, a worktree, a patch, ``cat-file``) carries it again.
    """
    st = c.st
    repo = base.local(".") if base.cwd is not None else Location(raw=".")
    carried = _carries(c, base, sub, rest, store, top)
    if carried is not None:
        return carried
    if sub in GIT_READ:
        return (OPAQUE,)
    if sub == "push":
        remote = next((f.value for f in rest if f.known and not f.value.startswith("-")), "origin")
        host = remote.split("@")[-1].split(":")[0] if ("@" in remote or "://" in remote) else remote
        c.emit(
            EffectKind.TRANSFER,
            repo,
            Location(raw=remote, path=None, host=host, visible=False),
            recursive=True,
            certain=False,
            note="git push sends the committed files of this repository",
        )
        return (OPAQUE,)
    if sub in ("rm", "mv", "add"):
        sub_o = parse(rest, Spec.of("", "pathspec-from-file chmod"))
        ops = sub_o.operands
        if sub == "rm" and not sub_o.has("--cached"):
            for f in ops:
                c.emit(DELETE, base.loc(f), recursive=sub_o.has("-r"))
        elif sub == "mv" and len(ops) >= 2:
            d = base.loc(ops[-1])
            for f in ops[:-1]:
                src = base.loc(f)
                copy_effect(
                    c,
                    src,
                    dest_for(st, src, d, ops[-1].value, into=len(ops) > 2),
                    recursive=isdir(c, src),
                    kind=MOVE,
                )
        elif sub == "add":
            for f in ops:
                c.read(f, recursive=isdir(c, base.loc(f)))
        return ()
    if sub == "clean":
        c.emit(
            DELETE, repo, recursive=True, certain=False, note="git clean removes untracked files"
        )
        return ()
    if sub in (
        "checkout",
        "restore",
        "reset",
        "stash",
        "apply",
        "am",
        "merge",
        "rebase",
        "pull",
        "switch",
        "cherry-pick",
        "revert",
    ):
        c.emit(
            WRITE,
            repo,
            recursive=True,
            certain=False,
            note=f"git {sub} rewrites files in the working tree",
        )
        return ()
    if sub in ("archive", "bundle"):
        sub_o = parse(rest, Spec.of("o", "output format prefix remote"))
        out = sub_o.value("-o", "--output")
        if out is None and sub == "bundle" and len(sub_o.operands) >= 2:
            out = sub_o.operands[1]
        flows = (Flow(src=repo, recursive=True, exact=False, via=f"git {sub}"),)
        if out is None:
            return flows
        c.write_to(out, flows, append=False)
        return ()
    c.emit(EffectKind.EXEC, via=f"git {sub}")
    return (OPAQUE,)


# Options that take a value, per subcommand, where what follows matters.
_ADD_SPEC = Spec.of("", "chmod pathspec-from-file")


_COMMIT_SPEC = Spec.of(
    "mFcCt",
    "message file reuse-message reedit-message template author date fixup squash trailer "
    "cleanup pathspec-from-file",
)


_CLONE_SPEC = Spec.of(
    "objbuc",
    "origin branch upload-pack reference reference-if-able separate-git-dir depth "
    "shallow-since shallow-exclude config template jobs filter bundle-uri server-option "
    "ref-format revision",
)


_WORKTREE_SPEC = Spec.of("bB", "reason")


# Commands whose standard output carries stored content (a diff, a blob, a patch, lines).
_SHOWS = names("show diff cat-file grep blame annotate fast-export whatchanged")


# ... and log, only with a patch.
_PATCH_FLAGS = names("-p -u --patch --patch-with-stat --patch-with-raw --binary")


_URL_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[^/:]+:(?!//))")


def _carries(
    c: Cmd, base: State, sub: str, rest: list[Field], store: str | None, top: str | None
) -> tuple[Flow, ...] | None:
    """The copies git makes of file content, or ``None`` when ``sub`` makes none."""
    run = c.st.run
    objects = (
        run.at(os.path.join(store, "objects"), os.path.join(store, "objects"))
        if store is not None
        else Location(raw="<git objects>", path=None)
    )
    tree = (
        run.at(top, top)
        if top is not None
        else (base.local(".") if base.cwd is not None else Location(raw="."))
    )
    # what reads the store back out carries whatever was stored (in this command line too)
    stored = (Flow(src=objects, recursive=True, exact=False, via=f"git {sub}"),) if store else ()
    values = [a.value for a in rest if a.known]

    def into(f: Field | Location, recursive: bool | None = None) -> None:
        loc = f if isinstance(f, Location) else base.loc(f)
        whole = isdir(c, loc) if recursive is None else recursive
        copy_effect(c, loc, objects, recursive=whole, note=f"git {sub} stores the content")

    if sub == "add":
        o = parse(rest, _ADD_SPEC)
        if o.has("-n", "--dry-run"):
            return ()
        for f in o.operands:
            c.read(f, recursive=isdir(c, base.loc(f)))
            into(f)
        if not o.operands and o.has("-A", "--all", "-u", "--update"):
            into(tree, True)
        return ()
    if sub == "commit":
        o = parse(rest, _COMMIT_SPEC)
        if o.has("-a", "--all"):
            into(tree, True)
        for f in o.operands:
            into(f)
        return None  # hooks and the rest as before
    if sub == "stash" and (not values or values[0] in ("push", "save") or values[0][:1] == "-"):
        into(tree, True)
        return None
    if sub in ("hash-object", "update-index"):
        writes = sub == "update-index" or "-w" in values
        if not writes:
            return (OPAQUE,)
        if "--stdin" in values and sub == "hash-object":
            c.write_to(objects, c.stdin)
        for f in rest:
            if f.known and f.value.startswith("-"):
                continue
            into(f)
        return (OPAQUE,)
    if sub in ("fast-import", "unpack-objects", "index-pack") or (
        sub == "apply" and ("--cached" in values or "--index" in values)
    ):
        c.write_to(objects, c.stdin)
        for f in rest:
            if sub == "apply" and not (f.known and f.value.startswith("-")):
                c.write_to(objects, c.content(f))
        return None if sub == "apply" else (OPAQUE,)
    if sub == "clone":
        o = parse(rest, _CLONE_SPEC)
        ops = o.operands
        if not ops:
            return ()
        src = ops[0]
        name = src.value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] if src.known else ""
        dest = base.loc(ops[1]) if len(ops) > 1 else base.local(name.removesuffix(".git") or "x")
        local = src.known and (src.value.startswith("file://") or not _URL_LIKE.match(src.value))
        if local or not src.known:
            # a repository of this machine: its store (objects) is what the clone copies
            path = src.value.removeprefix("file://") if src.known else ""
            source = base.local(path) if src.known else Location(raw=src.raw, path=None)
            dot = base.local(os.path.join(path, ".git")) if src.known else None
            if (
                dot is not None
                and dot.path is not None
                and (run.isdir(dot.path) or dot.path in run.created)
            ):
                source = dot
            copy_effect(c, source, dest, recursive=True, note="git clone copies the repository")
        else:
            c.emit(WRITE, dest, recursive=True)
        return ()
    if sub == "worktree" and values[:1] == ["add"]:
        o = parse(rest[1:], _WORKTREE_SPEC)
        if o.operands:
            dest = base.loc(o.operands[0])
            copy_effect(c, objects, dest, recursive=True, note="git worktree checks out the files")
        return ()
    if sub == "checkout-index":
        prefix = next((v.split("=", 1)[1] for v in values if v.startswith("--prefix=")), None)
        if prefix is not None:
            copy_effect(c, objects, base.local(prefix or "."), recursive=True)
            return ()
        return None
    if sub == "format-patch" and "--stdout" not in values:
        o = parse(rest, Spec.of("o", "output-directory"))
        out = o.value("-o", "--output-directory")
        c.write_to(out if out is not None else Field(".", raw="."), stored)
        return ()
    if sub == "log" and not (set(values) & _PATCH_FLAGS):
        return None
    if sub in _SHOWS or sub in ("log", "format-patch"):
        return (*stored, *_named_content(c, base, sub, rest, top), OPAQUE)
    return None


def _named_content(
    c: Cmd, base: State, sub: str, rest: list[Field], top: str | None
) -> tuple[Flow, ...]:
    """The files whose content a show-like command prints: the files it names (``diff
    --no-index A B``, ``blame F``, the paths after ``--``) and the ``REV:path`` arguments."""
    out: list[Flow] = []
    for a in rest:
        if not a.known:
            out.append(Flow(src=Location(raw=a.raw, path=None), exact=False))
            continue
        v = a.value
        if v.startswith("-") or "://" in v:
            continue
        path = v
        if ":" in v and not c.st.run.exists(base.local(v).path or ""):
            rel = v.split(":", 1)[1]
            # REV:path is from the top of the working tree, REV:./path from here
            path = rel if rel.startswith(("./", "../")) or top is None else os.path.join(top, rel)
        loc = base.local(path) if path else None
        if loc is not None and loc.path is not None and c.st.run.exists(loc.path):
            out.append(Flow(src=loc, recursive=isdir(c, loc), exact=False, via=f"git {sub}"))
    return tuple(out)


GIT_READ = names(
    "status log diff show ls-files ls-tree grep blame rev-parse branch tag describe shortlog "
    "reflog cat-file remote fetch help version whatchanged show-ref for-each-ref"
)


__all__ = ["GIT_READ", "effects"]


# ------------------------------------------------------------------- git config

_CONFIG_VALUE = names("-f --file --blob --type --default --comment --value -t")
_CONFIG_WRITES = names(
    "--unset --unset-all --add --replace-all --rename-section --remove-section -e --edit"
)
_CONFIG_READS = names(
    "--get --get-all --get-regexp --get-urlmatch -l --list --get-color --get-colorbool"
)


def git_config(
    c: Cmd, st: State, gitdir: str | None, common: str | None, rest: list[Field]
) -> tuple[Flow, ...]:
    """``git config``: a setting written is a write of the config file, with the lines git
    adds, so that a later git in the same command line reads it."""
    file: Field | None = None
    scope = "--local"
    flags: set[str] = set()
    ops: list[Field] = []
    k = 0
    while k < len(rest):
        a = rest[k]
        k += 1
        v = a.value if a.known else ""
        name, eq, val = v.partition("=")
        if a.known and name in _CONFIG_VALUE:
            value = Field(val, raw=val) if eq else (rest[k] if k < len(rest) else None)
            k += 0 if eq else 1
            if name in ("-f", "--file"):
                file = value
            continue
        if a.known and v.startswith("-"):
            flags.add(v)
            if v in ("--global", "--system", "--local", "--worktree"):
                scope = v
            continue
        ops.append(a)
    action = ops[0].value if ops and ops[0].known else ""
    if action in ("set", "unset", "rename-section", "remove-section", "edit"):
        ops = ops[1:]
        flags.add({"set": "--set", "edit": "-e"}.get(action, "--" + action))
    elif action in ("get", "list"):
        return (OPAQUE,)
    writes = flags & (_CONFIG_WRITES | {"--set"})
    if flags & _CONFIG_READS or (not writes and len(ops) < 2):
        return (OPAQUE,)
    target = _config_target(st, gitdir, common, scope, file)
    if target is None:
        return ()
    content: str | None = None
    adds = not writes or flags & {"--set", "--add"}
    if adds and len(ops) >= 2 and ops[0].known and ops[1].known:
        content = gitconfig.section_text(ops[0].value, ops[1].value)
    # a new file holds just the lines added (an append to nothing is not known to be them)
    op = "append" if file_text(c, target)[0] else "replace"
    c.emit(
        WRITE,
        target,
        edit=ConfigEdit(op=op, content=content) if content is not None else None,
        note="git config writes a setting",
    )
    return ()


def _config_target(
    st: State, gitdir: str | None, common: str | None, scope: str, file: Field | None
) -> Location | None:
    if file is not None:
        return st.loc(file)
    if scope == "--system":
        return st.local("/etc/gitconfig")
    if scope == "--global":
        home = st.x.get_var("HOME")
        if home is None or home.text is None:
            return Location(raw="~/.gitconfig", path=None)
        return st.local(os.path.join(home.text, ".gitconfig"))
    base = gitdir if scope == "--worktree" else common
    if base is None:
        return None  # not in a repository: git refuses
    return st.local(os.path.join(base, "config.worktree" if scope == "--worktree" else "config"))
