"""Version control: ``git``.

What a git subcommand does to the working tree and the network is recorded as effects: ``git
push`` sends the repository's files, ``git rm`` deletes, ``git checkout`` rewrites the tree.
"""

from __future__ import annotations

from guard.shell.core import Cmd, command
from guard.shell.files import copy_effect, dest_for, isdir
from guard.shell.options import Spec, parse
from guard.shell.words import OPAQUE, Flow, names
from guard.types import EffectKind, Location

__all__: list[str] = []

DELETE = EffectKind.DELETE
MOVE = EffectKind.MOVE
WRITE = EffectKind.WRITE


_GIT_READ = names(
    "status log diff show ls-files ls-tree grep blame rev-parse branch tag describe shortlog "
    "reflog cat-file config remote fetch help version whatchanged show-ref for-each-ref"
)


@command("git")
def _git(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of("Cc", "git-dir work-tree namespace exec-path config-env"),
        stop_at_operand=True,
    )
    st = c.st
    cdir = o.value("-C")
    base = st
    if cdir is not None:
        base = st.fork()
        base.cwd = st.loc(cdir).path
    if not o.rest or not o.rest[0].known:
        return (OPAQUE,)
    sub, rest = o.rest[0].value, o.rest[1:]
    repo = base.local(".") if base.cwd is not None else Location(raw=".")
    if sub in _GIT_READ:
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
    if sub == "clone":
        ops = [f for f in rest if f.known and not f.value.startswith("-")]
        if len(ops) >= 2:
            c.emit(WRITE, base.loc(ops[1]), recursive=True)
        return ()
    c.emit(EffectKind.EXEC, via=f"git {sub}")
    return (OPAQUE,)
