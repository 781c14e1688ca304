"""The shell analyser's caches and fast paths give the answers the uncached work gives.

Folder tests go through the host map's cache (kept until ``HostMap.invalidate``), other file
tests are asked once per analysis, option specs are shared, and an analysis leaves no reference
cycles behind. None of it may change what a command is found to do.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from guard.paths import HostMap
from guard.shell import ShellContext, analyse
from guard.shell.options import Spec, parse
from guard.shell.record import Run
from guard.shell.words import Field, has_glob
from guard.types import Effect, EffectKind

K = EffectKind


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A sandbox with a file, a folder and two visible hosts."""
    base = tmp_path.resolve()
    (base / "w.bin").write_text("weights")
    (base / "dir").mkdir()
    (base / "dir/old.bin").write_text("old")
    (base / "hosts/a/models").mkdir(parents=True)
    (base / "hosts/a/models/m.safetensors").write_text("m")
    (base / "hosts/b").mkdir(parents=True)
    return base


def _hosts(root: Path) -> HostMap:
    return HostMap({"srv-a": str(root / "hosts/a"), "srv-b": str(root / "hosts/b")})


def _run(command: str, root: Path, hosts: HostMap) -> list[Effect]:
    return analyse(command, ShellContext(cwd=str(root), hosts=hosts))


def _dests(effects: list[Effect], kind: EffectKind) -> list[str | None]:
    return [e.dest.path for e in effects if e.kind is kind and e.dest is not None]


COMMANDS = [
    "cp w.bin dir",
    "cp w.bin dir/",
    "cp w.bin dir/old.bin",
    "cp -r dir copy",
    "mv w.bin dir",
    "rm -rf dir nothing",
    "ls -la dir",
    "ls -R dir",
    "cat w.bin > dir/out.txt",
    "cat w.bin | gzip | base64 > x.b64",
    "scp -o StrictHostKeyChecking=no srv-a:models/m.safetensors srv-b:/data/",
    "scp -r srv-a:models srv-b:",
    "rsync -a dir/ srv-b:/backup/",
    "rsync -a --remove-source-files w.bin srv-b:",
    "tar czf - dir | ssh srv-b 'tar xzf -'",
    "cd dir && cp old.bin ../w2.bin",
    "mkdir new && cd new && cp ../w.bin .",
    "ln -s w.bin link && scp link srv-b:",
    "cp w.bin tmp; scp tmp srv-b:/data/",
    'python3 -c \'import shutil; shutil.copytree("dir", "dir2")\'',
    "grep -r secret dir",
    "chmod -R 600 dir",
    "tee dir/a dir/b < w.bin",
    "cat <(cat w.bin) > out",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_warm_caches_give_the_same_effects(root: Path, command: str) -> None:
    """A host map that answered before gives what a fresh one gives."""
    warm = _hosts(root)
    for other in COMMANDS:
        _run(other, root, warm)
    assert _run(command, root, warm) == _run(command, root, _hosts(root))


def test_folder_test_is_cached_until_the_host_map_is_invalidated(root: Path) -> None:
    """A folder made outside the guard is seen once the guard invalidates its host map."""
    hosts = _hosts(root)
    assert _dests(_run("cp w.bin later", root, hosts), K.COPY) == [str(root / "later")]
    (root / "later").mkdir()
    # the engine invalidates after every call it lets run; until then the cached answer holds
    assert _dests(_run("cp w.bin later", root, hosts), K.COPY) == [str(root / "later")]
    hosts.invalidate()
    assert _dests(_run("cp w.bin later", root, hosts), K.COPY) == [str(root / "later/w.bin")]


def test_overwriting_a_file_is_a_write_only_where_the_file_is(root: Path) -> None:
    """isfile: an existing file, a missing one in a folder, one below a missing folder."""
    hosts = _hosts(root)

    def overwritten(command: str) -> list[str | None]:
        return [
            e.target.path
            for e in _run(command, root, hosts)
            if e.kind is K.WRITE and e.note == "overwritten by a copy" and e.target is not None
        ]

    assert overwritten("cp w.bin dir/old.bin") == [str(root / "dir/old.bin")]
    assert overwritten("cp w.bin dir/new.bin") == []
    assert overwritten("cp w.bin nowhere/new.bin") == []
    assert overwritten("cp w.bin w.bin.bak") == []
    # a folder is not a file, even when the copy names it as the destination file
    assert overwritten("cp w.bin dir") == []


def test_run_file_tests_match_os_path(root: Path) -> None:
    """Run.isdir/isfile/exists answer as os.path does, for every kind of place."""
    run = Run(_hosts(root))
    places = [
        str(root / "w.bin"),
        str(root / "dir"),
        str(root / "dir/"),
        str(root / "dir/old.bin"),
        str(root / "dir/missing"),
        str(root / "missing/deeper"),
        str(root / "w.bin/below"),
        str(root / "dir/.."),
        "/",
        "",
        "relative-name",
        "/dev/null",
        str(root / "nul\0byte"),
    ]
    for p in places:
        assert run.isdir(p) == os.path.isdir(p), p
        assert run.isfile(p) == os.path.isfile(p), p
        assert run.exists(p) == os.path.exists(p), p


def test_specs_are_shared_and_parse_alike() -> None:
    """Equal arguments give one Spec object; parsing with it is unchanged."""
    a = Spec.of("oi", "out in", optional="in")
    assert Spec.of("oi", "out in", optional="in") is a
    assert Spec.of("oi", ["out", "in"], optional="in") is not a  # a list is keyed as a tuple
    assert Spec.of("oi", ["out", "in"], optional="in") == a
    assert Spec.of("oi", "out in") != a
    o = parse([Field("-o"), Field("x"), Field("--in=y"), Field("z")], a)
    assert [n for n, _ in o.items] == ["-o", "--in"]
    assert [f.value for f in o.operands] == ["z"]


def test_option_names_match_exactly_or_by_long_prefix() -> None:
    """Opts.has: exact names, and unambiguous prefixes of long names of five or more chars."""
    o = parse([Field("-r"), Field("--remove-sou"), Field("--de"), Field("a")], Spec())
    assert o.has("-r")
    assert o.has("-x", "-r")
    assert not o.has("-R")
    assert o.has("--remove-source-files")
    assert not o.has("--delete")  # "--de" is too short to stand for it
    assert o.has("--de")
    assert not parse([Field("-abc")], Spec()).has("--abc")


def test_has_glob() -> None:
    """The same answer as intersecting with the set of glob characters."""
    for text in ["", "a", "a*", "?", "x[1]", "]", "plain/path.txt", "**/x"]:
        assert has_glob(text) == bool(frozenset("*?[") & set(text))


def test_analysis_leaves_no_reference_cycles(root: Path) -> None:
    """Reference counting frees an analysis: nothing is left for the garbage collector."""
    hosts = _hosts(root)
    for command in COMMANDS:
        _run(command, root, hosts)  # warm up imports and caches
    gc.collect()
    gc.disable()
    try:
        for command in COMMANDS:
            _run(command, root, hosts)
        assert gc.collect() == 0
    finally:
        gc.enable()
