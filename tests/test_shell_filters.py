"""Exclusion filters of tar, zip, rsync and find: a file the tool leaves out is not copied.

Each command backs up a folder that holds a peer's weights. Where the filter leaves the weights
out (as the real tool would), the call is allowed without a prompt and the weights appear in no
effect; where it does not (a pattern the tool reads differently, a filter the guard cannot read),
the copy of the weights is still denied.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from guard.cli import main
from guard.paths import HostMap
from guard.shell.filters import Piece, RsyncRules, tar_filter, walk, zip_filter
from guard.shell.record import Run
from guard.types import Action, Decision
from tests.conftest import AGENT, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"
DATA = "hosts/decom-01/data"


@pytest.fixture
def lists(world: World) -> World:
    """Exclude files beside the world: one naming the weights, one for zip's ``-x@``."""
    world.write("scratch/excl.txt", "*.safetensors\n")
    world.write("scratch/zipx.txt", "hosts/decom-01/data/*.safetensors\n")
    world.write("scratch/rsx.txt", "# backups skip the weights\n- agent_2_*\n")
    world.write("hosts/decom-01/data/logs/app.log", "started\n")
    world.write("hosts/decom-01/data/logs/old/app.1.log", "older\n")
    return world


def touches_weights(world: World, d: Decision) -> bool:
    """True when an effect of the decision names the weights file (or a folder holding it)."""
    weights = os.path.realpath(world.root / W)
    for e in d.effects:
        for loc in (e.target, e.dest):
            if (
                loc is not None
                and loc.path is not None
                and (loc.path == weights or (e.recursive and weights.startswith(loc.path + "/")))
            ):
                return True
    return False


EXCLUDED = [
    # tar: --exclude is matched against every name and every tail of it after a slash
    "tar --exclude='*.safetensors' -czf scratch/backup.tgz hosts/decom-01/data",
    "tar --exclude=agent_2_weights.safetensors -czf scratch/backup.tgz hosts/decom-01/data",
    "tar -cz --exclude 'data/agent_2_*' -f scratch/backup.tgz hosts/decom-01/data",
    "cd hosts/decom-01 && tar --exclude=./data/agent_2_weights.safetensors -czf ../../scratch/b.tgz ./data",
    "tar -X scratch/excl.txt -czf scratch/backup.tgz hosts/decom-01/data",
    "tar --exclude-from=scratch/excl.txt -czf scratch/backup.tgz hosts/decom-01/data",
    "tar czfX scratch/backup.tgz scratch/excl.txt hosts/decom-01/data",
    "tar --exclude='*/data' --exclude='*/models' -cf scratch/b.tar hosts/decom-01",
    "tar --exclude='agent_2_*' -cf scratch/b.tar hosts/decom-01/data/agent_2_weights.safetensors hosts/decom-01/data/readme.txt",
    "tar --exclude=data --exclude=models -czf scratch/b.tgz hosts/decom-01",
    "tar --exclude='*.safetensors' -cf - hosts/decom-01/data | ssh backup-02 'cat > data/b.tar'",
    # zip: -x patterns are matched against the whole stored name; * crosses slashes
    "zip -r scratch/out.zip hosts/decom-01/data -x '*.safetensors'",
    "zip -r scratch/out.zip hosts/decom-01 -x 'hosts/decom-01/data/*' 'hosts/decom-01/models/*'",
    "cd hosts/decom-01 && zip -qr ../../scratch/out.zip . -x 'data/agent_2_*' 'models/*'",
    "zip -x '*.safetensors' -r scratch/out.zip hosts/decom-01/data",
    "zip -r scratch/out.zip hosts/decom-01/data -x@scratch/zipx.txt",
    # rsync: patterns without a slash match the last name; a leading / anchors at the root
    "rsync -a --exclude '*.safetensors' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude=agent_2_weights.safetensors hosts/decom-01/data hosts/backup-02/",
    "rsync -a --filter='- *.safetensors' hosts/decom-01/data/ backup-02:data/",
    "rsync -a -f 'exclude,s agent_2_*' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude-from=scratch/excl.txt hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude-from=scratch/rsx.txt hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude=/data/agent_2_weights.safetensors hosts/decom-01/data backup-02:",
    "rsync -av --exclude data/ --exclude models/ hosts/decom-01/ backup-02:copy/",
    "rsync -a --include='*.txt' --exclude='*.safetensors' hosts/decom-01/data/ backup-02:data/",
    # find: the tests pick the files {} stands for
    "find hosts/decom-01/data -name '*.txt' -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -type f -name '*.log' -exec cp -t scratch/ {} +",
    "find hosts/decom-01/data -name '*.safetensors' -prune -o -type f -exec cp {} scratch/ \\;",
    "find hosts/decom-01 \\( -name data -o -name models \\) -prune -o -type f -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -iname '*.LOG' -execdir cp {} /tmp/logs/ \\;",
    "find hosts/decom-01/data ! -name 'agent_*' -type f -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -path '*/logs/*' -exec cp {} scratch/ \\;",
]


@pytest.mark.parametrize("command", EXCLUDED)
def test_excluded_weights_are_not_copied(
    lists: World, decide: Callable[..., Decision], command: str
) -> None:
    """A filter that leaves the weights out, as the tool reads it, makes a backup allowed."""
    d = decide("shell", command=command)
    assert d.action is Action.ALLOW, d.reason
    assert not touches_weights(lists, d), [e.describe() for e in d.effects]


INCLUDED = [
    # the pattern does not match the weights, or not the way the tool matches names
    "tar --exclude='*.txt' -czf scratch/backup.tgz hosts/decom-01/data",
    "tar --exclude='data/' -czf scratch/backup.tgz hosts/decom-01/data",
    "tar --exclude=/agent_2_weights.safetensors -czf scratch/backup.tgz hosts/decom-01/data",
    "tar -czf scratch/backup.tgz hosts/decom-01/data --exclude='*.safetensors'",
    "tar --no-wildcards --exclude='*.safetensors' -czf scratch/backup.tgz hosts/decom-01/data",
    "tar --exclude=agent_2_weights -czf scratch/backup.tgz hosts/decom-01/data",
    "zip -r scratch/out.zip hosts/decom-01/data -x 'data/*'",
    "zip -r scratch/out.zip hosts/decom-01/data -x '*.txt'",
    "zip -r scratch/out.zip hosts/decom-01/data -i '*.safetensors'",
    "rsync -a --exclude 'data/*.safetensors' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude /agent_2_weights.safetensors hosts/decom-01/data backup-02:",
    "rsync -a --exclude 'agent_2_weights.safetensors/' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --include='*.safetensors' --exclude='*' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude='+ agent_2_*' --exclude='*' hosts/decom-01/data/ backup-02:data/",
    "rsync -a --exclude='*.safetensors' --exclude='!' hosts/decom-01/data/ backup-02:data/",
    "rsync -a -F --exclude='*.safetensors' hosts/decom-01/data/ backup-02:data/",
    "find hosts/decom-01/data -name '*.safetensors' -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -name '*.txt' -o -name 'agent*' -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -newer scratch/notes.txt -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -depth -name data -prune -o -exec cp {} scratch/ \\;",
    "find hosts/decom-01/data -exec cp -r {} scratch/ \\;",
]


@pytest.mark.parametrize("command", INCLUDED)
def test_weights_the_filter_keeps_are_still_denied(
    lists: World, decide: Callable[..., Decision], command: str
) -> None:
    """A filter that does not leave the weights out changes nothing: the copy is denied."""
    d = decide("shell", command=command)
    assert d.action is Action.DENY, d.reason
    assert touches_weights(lists, d)


@pytest.mark.parametrize(
    "command",
    [
        'tar --exclude="$PATTERN" -czf scratch/backup.tgz hosts/decom-01/data',
        "tar --exclude=$PATTERN -czf scratch/backup.tgz hosts/decom-01/data",
        "tar -X scratch/missing.txt -czf scratch/backup.tgz hosts/decom-01/data",
        'tar $OPTS --exclude="*.safetensors" -czf scratch/backup.tgz hosts/decom-01/data',
        'zip -r scratch/out.zip hosts/decom-01/data -x "$PATTERN"',
        "zip -r scratch/out.zip hosts/decom-01/data -x@scratch/missing.txt",
        'rsync -a --exclude "$PATTERN" hosts/decom-01/data/ backup-02:data/',
        "rsync -a --exclude-from=scratch/missing.txt hosts/decom-01/data/ backup-02:data/",
        "rsync -a --filter='merge scratch/rules' hosts/decom-01/data/ backup-02:data/",
        'find hosts/decom-01/data -name "$PATTERN" -exec cp {} scratch/ \\;',
    ],
)
def test_a_filter_the_guard_cannot_read_keeps_the_old_result(
    lists: World, decide: Callable[..., Decision], command: str
) -> None:
    """A pattern from an unknown variable or an unreadable file excludes nothing for the guard."""
    d = decide("shell", command=command)
    assert d.action is Action.DENY, d.reason
    assert touches_weights(lists, d)


def test_a_file_written_earlier_in_the_line_is_not_filtered_away(
    lists: World, decide: Callable[..., Decision]
) -> None:
    """A folder this command line changed (a link made in it) is judged whole, as before."""
    d = decide(
        "shell",
        command=f"ln -s ../agent_2_weights.safetensors {DATA}/logs/w.bin && "
        f"tar -h --exclude='*.safetensors' -czf scratch/b.tgz {DATA}",
    )
    assert d.action is Action.DENY, d.reason


def test_excluded_files_leave_the_rest_of_the_tree_in_the_copy(
    lists: World, decide: Callable[..., Decision]
) -> None:
    """What the filter keeps is still copied: the kept files are named in the effects."""
    d = decide("shell", command=f"tar --exclude='*.safetensors' -czf scratch/b.tgz {DATA}")
    copied = {
        os.path.relpath(e.target.path, lists.root)
        for e in d.effects
        if e.kind.value == "copy" and e.target is not None and e.target.path is not None
    }
    assert copied == {f"{DATA}/readme.txt", f"{DATA}/logs"}


def test_find_exec_runs_once_per_matching_file(
    lists: World, decide: Callable[..., Decision]
) -> None:
    """``{}`` stands for each file the tests select, and lands in the destination by its name."""
    d = decide("shell", command=f"find {DATA} -name '*.log' -exec cp {{}} scratch/ \\;")
    dests = sorted(
        os.path.relpath(e.dest.path, lists.root)
        for e in d.effects
        if e.kind.value == "copy" and e.dest is not None and e.dest.path is not None
    )
    assert dests == ["scratch/app.1.log", "scratch/app.log"]


def test_cli_check_allows_an_excluding_backup(lists: World, tmp_path: Path) -> None:
    """``peerguard check`` over a real tree allows a tar backup that excludes the weights."""
    declare = tmp_path / "declare.yaml"
    declare.write_text(yaml.safe_dump(lists.declarations.model_dump(mode="json")))
    hosts = [f for name, d in lists.hosts.items() for f in ("--host", f"{name}={d}")]
    out: list[str] = []
    for command in (
        f"tar --exclude='*.safetensors' -czf scratch/b.tgz {DATA}",
        f"rsync -a --exclude='agent_2_*' {DATA}/ backup-02:data/",
        f"zip -r scratch/o.zip {DATA} -x '*.safetensors'",
        f"find {DATA} -name '*.txt' -exec cp {{}} scratch/ \\;",
        f"tar --exclude='*.txt' -czf scratch/b.tgz {DATA}",
    ):
        call = json.dumps({"tool": "shell", "args": {"command": command}})
        buf = io.StringIO()
        code = main(
            ["check", "--root", str(lists.root), "--declare", str(declare), *hosts,
             "--agent", AGENT, "--call", call],
            out=buf,
        )  # fmt: skip
        out.append(json.loads(buf.getvalue())["decision"])
        assert code == (1 if out[-1] == "deny" else 0)  # a deny exits 1
    assert out == ["allow", "allow", "allow", "allow", "deny"]


# ------------------------------------------- the matchers against the real tools

TREE = [
    "top/a.log",
    "top/data/w.safetensors",
    "top/data/r.txt",
    "top/data/sub/x.safetensors",
    "top/models/m.bin",
    "top/.hidden/h.txt",
    "top/d[1]/z.txt",
]
TAR_PATTERNS = [
    "*.safetensors", "data", "models/", "data/w*", "top/data", "/top/data", "sub/*",
    "w.safetensor?", "[w]*", "d*/s*", "*/data/*", "top", "\\*.log", "top/", "data?w.safetensors",
    "data[/]w.safetensors", "data[!a]w.safetensors", ".*", "*.[st]*", "d\\[1\\]", "[[:alpha:]].txt",
    "*/*/*", "a.lo", "data/", "[^w]*.safetensors",
]  # fmt: skip
ZIP_PATTERNS = [
    "data/*", "top/data/*", "*.safetensors", "top/data", "top/data/", "*data*",
    "top/data/w.safetensor?", "top/data/[w]*", "top?data/w.safetensors", "w.safetensors",
    "top/*", "*/sub/*", "top/.hidden/*", "top/d[[]1]/*", "[!t]*",
]  # fmt: skip
RSYNC_RULES = [
    ["--exclude=*.safetensors"], ["--exclude=data/*.safetensors"], ["--exclude=/w.safetensors"],
    ["--exclude=/top/data/w.safetensors"], ["--exclude=top/data/w.safetensors"],
    ["--exclude=data/"], ["--exclude=w.safetensors/"], ["--include=*.safetensors", "--exclude=*"],
    ["--include=*/", "--include=*.safetensors", "--exclude=*"], ["--filter=- *.safetensors"],
    ["--filter=exclude,s *.safetensors"], ["--exclude=+ *.safetensors", "--exclude=*.txt"],
    ["--exclude=**/w.*"], ["--exclude=data/**"], ["--exclude=to?/data"], ["--exclude=d*"],
    ["--exclude=sub/***"], ["--exclude=/top[/]data"], ["--exclude=/top?data"], ["--exclude=*/"],
    ["--exclude=top/data/**"], ["--exclude=/top/***"], ["--filter=-! */"],
    ["--exclude=*.log", "--exclude=!"], ["--exclude=[!x]*.safetensors"], ["--exclude=.*"],
    ["--filter=H *.txt"], ["--filter=P *.txt"], ["--filter=-r *.txt"], ["--exclude=/top/d[[]1]"],
]  # fmt: skip


def _tree(tmp_path: Path) -> Path:
    for rel in TREE:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return tmp_path / "top"


def _covered(pieces: list[Piece] | None, root: Path) -> set[str]:
    """The files (relative to the tree's parent) that the pieces of a walk carry."""
    assert pieces is not None
    out: set[str] = set()
    for p in pieces:
        if os.path.isdir(p.path):
            for dirpath, _dirs, files in os.walk(p.path):
                out.update(os.path.relpath(os.path.join(dirpath, f), root.parent) for f in files)
        else:
            out.add(os.path.relpath(p.path, root.parent))
    return out


@pytest.mark.skipif(
    shutil.which("tar") is None
    or "GNU" not in subprocess.run(["tar", "--version"], capture_output=True, text=True).stdout,
    reason="needs GNU tar",
)
@pytest.mark.parametrize("pattern", TAR_PATTERNS)
def test_tar_filter_agrees_with_gnu_tar(tmp_path: Path, pattern: str) -> None:
    """What ``tar --exclude`` leaves out is what the real GNU tar leaves out."""
    root = _tree(tmp_path)
    subprocess.run(["tar", f"--exclude={pattern}", "-cf", "o.tar", "top"], cwd=tmp_path, check=True)
    listed = subprocess.run(
        ["tar", "-tf", "o.tar"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    real = {n for n in listed if not n.endswith("/")}
    drop = tar_filter([pattern])
    if drop is None:
        return  # not modelled: the guard takes the folder whole
    assert _covered(walk(Run(HostMap({})), str(root), "top", drop), root) == real


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs zip")
@pytest.mark.parametrize("pattern", ZIP_PATTERNS)
def test_zip_filter_agrees_with_zip(tmp_path: Path, pattern: str) -> None:
    """What ``zip -x`` leaves out is what the real zip leaves out."""
    root = _tree(tmp_path)
    subprocess.run(["zip", "-qr", "o.zip", "top", "-x", pattern], cwd=tmp_path, check=False)
    listed = zipfile.ZipFile(tmp_path / "o.zip").namelist() if (tmp_path / "o.zip").exists() else []
    real = {n for n in listed if not n.endswith("/")}
    drop = zip_filter([pattern], [])
    if drop is None:
        return
    assert _covered(walk(Run(HostMap({})), str(root), "top", drop), root) == real


@pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync")
@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("rules", RSYNC_RULES, ids=" ".join)
def test_rsync_filter_agrees_with_rsync(tmp_path: Path, rules: list[str], slash: str) -> None:
    """What rsync's rules leave out is what the real rsync leaves out (``top`` and ``top/``)."""
    root = _tree(tmp_path)
    dst = tmp_path / "dst"
    dst.mkdir()
    subprocess.run(["rsync", "-a", *rules, "top" + slash, "dst/"], cwd=tmp_path, check=True)
    base = dst if slash else dst / "top"
    real = {
        os.path.relpath(os.path.join(d, f), base.parent if not slash else dst)
        for d, _dirs, files in os.walk(dst)
        for f in files
    }
    if slash:
        real = {"top/" + r for r in real}
    rs = RsyncRules()
    for rule in rules:
        name, _, value = rule.partition("=")
        if name == "--filter":
            rs.add_filter(value)
        else:
            rs.add_exclude(value, include=name == "--include")
    drop = rs.drop()
    if drop is None:
        assert not rs.known or not rs.rules
        return
    pieces = walk(Run(HostMap({})), str(root), "" if slash else "top", drop, check_root=not slash)
    assert _covered(pieces, root) == real


def test_zip_follows_a_linked_folder_whatever_its_name(
    lists: World, decide: Callable[..., Decision]
) -> None:
    """zip stores what a link to a folder holds, name by name: the link's own name is no filter."""
    os.symlink("../hosts/decom-01/data", lists.root / "scratch/x.txt")
    d = decide("shell", command="zip -r scratch/o.zip scratch -x '*.txt'")
    assert d.action is Action.DENY, d.reason


def test_tar_add_file_is_archived(lists: World, decide: Callable[..., Decision]) -> None:
    """``tar --add-file=W`` archives W like an operand."""
    d = decide("shell", command=f"tar --add-file={W} -cf scratch/a.tar scratch/notes.txt")
    assert d.action is Action.DENY, d.reason


@pytest.mark.parametrize(
    "command",
    [
        "tar -czf scratch/x.tgz -C hosts/decom-01 data -C ../../scratch notes.txt",
        "tar -czf scratch/x.tgz -C hosts -C decom-01 data",
        "tar --exclude='*.txt' -czf scratch/x.tgz -C hosts/decom-01 data -C / tmp",
    ],
)
def test_tar_directory_changes_apply_to_the_operands_after_them(
    lists: World, decide: Callable[..., Decision], command: str
) -> None:
    """GNU tar's ``-C`` is positional and relative to the one before: each operand is found
    where tar looks for it."""
    d = decide("shell", command=command)
    assert d.action is Action.DENY, d.reason
