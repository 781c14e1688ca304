"""``rm``, ``find`` (``-delete``, ``-exec``, ``-execdir``) and ``xargs``."""

from __future__ import annotations

import os
import subprocess

import pytest

from guard.types import Effect, EffectKind, Location
from tests.shellworld import (
    WEIGHTS,
    World,
    find,
    shell_world,  # noqa: F401 - the world fixture
)

K = EffectKind


# --------------------------------------------------------------- deletion


def test_rm_rf_is_recursive_delete(world: World) -> None:
    """rm -rf DIR deletes the folder whole."""
    effects = world.run("rm -rf hosts/decom-01/data")
    assert effects == [
        Effect(
            kind=K.DELETE,
            target=Location(
                raw="hosts/decom-01/data", path=world.p("hosts/decom-01/data"), host="decom-01"
            ),
            recursive=True,
            via="rm",
        )
    ]


def test_find_delete(world: World) -> None:
    """find DIR -name PATTERN -delete deletes the files below DIR that match."""
    effects = world.run("find hosts/decom-01 -name '*.safetensors' -delete")
    assert find(effects, K.DELETE, target_path=world.p(WEIGHTS))
    assert not find(effects, K.DELETE, target_path=world.p("hosts/decom-01/data/notes.txt"))


def test_find_exec_and_xargs(world: World) -> None:
    """find -exec CMD {} and find | xargs CMD act on each file found below the folder."""
    ex = world.run("find hosts/decom-01/data -type f -exec scp {} backup-02:data/ \\;")
    assert find(ex, K.COPY, target_path=world.p(WEIGHTS))
    xa = world.run("find hosts/decom-01/data -type f | xargs -I{} cp {} docs/")
    assert find(xa, K.COPY, target_path=world.p(WEIGHTS))


@pytest.mark.parametrize(
    ("here", "start"),
    [
        (".", "."),
        (".", ".."),
        (".", "hosts"),
        (".", "hosts/"),
        (".", "./hosts/decom-01"),
        ("docs", ".."),
        ("docs", "../hosts/decom-01/data"),
    ],
)
def test_find_execdir_runs_where_gnu_find_runs_it(world: World, here: str, start: str) -> None:
    """-execdir runs in the folder that holds the match as find names it: for a start point
    (``.``, ``..``, ``hosts``) that is find's own folder, or the folder of its path part."""
    real = subprocess.run(
        ["find", start, "-maxdepth", "0", "-execdir", "pwd", ";"],
        cwd=world.root / here,
        capture_output=True,
        text=True,
        check=True,
    )
    command = f"cd {here} && find {start} -maxdepth 0 -execdir touch marker \\;"
    [w] = find(world.run(command), K.WRITE)
    assert w.target is not None
    assert w.target.path == os.path.join(os.path.realpath(real.stdout.strip()), "marker")


def test_find_execdir_on_found_files_runs_in_their_folder(world: World) -> None:
    """A file found below a start point is named ./NAME from the folder that holds it."""
    effects = world.run("find hosts -name w.safetensors -execdir cp {} ../copy.bin \\;")
    assert find(
        effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("hosts/decom-01/copy.bin")
    )
    effects = world.run("find . -maxdepth 0 -execdir cp hosts/decom-01/data/notes.txt out.txt \\;")
    assert find(effects, K.COPY, dest_path=world.p("out.txt"))


def test_xargs_with_literal_and_file_input(world: World) -> None:
    """xargs reads names from echo and from a list file known at call time."""
    effects = world.run(f"echo {WEIGHTS} | xargs rm")
    assert find(effects, K.DELETE, target_path=world.p(WEIGHTS))
    effects = world.run("cat list.txt | xargs -n1 shred -u")
    assert find(effects, K.DELETE, target_path=world.p(WEIGHTS))


@pytest.mark.parametrize(
    "command",
    [
        f"xargs -a {WEIGHTS} -0 printf %s > out.bin",
        f"xargs --arg-file={WEIGHTS} echo > out.bin",
        f"cat {WEIGHTS} | xargs -0 printf %s > out.bin",
        f"xargs -a {WEIGHTS} -I{{}} printf %s {{}} > out.bin",
    ],
)
def test_xargs_arguments_read_from_a_file_come_out_with_its_content(
    world: World, command: str
) -> None:
    """xargs makes a file's content the command's arguments: printf or echo print them, so
    the output carries that content."""
    effects = world.run(command)
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("out.bin"))


def test_xargs_names_read_from_a_list_are_not_content_of_the_files(world: World) -> None:
    """The names find prints are not the files' content: the list is what comes out."""
    effects = world.run("find hosts/decom-01/data -type f | xargs echo > out.txt")
    assert not find(effects, K.COPY, target_path=world.p(WEIGHTS))
    effects = world.run("xargs -a list.txt ls -l > out.txt")
    assert find(effects, K.COPY, target_path=world.p("list.txt"))
    assert not find(effects, K.COPY, target_path=world.p(WEIGHTS))


def test_xargs_unknown_input_is_unresolved(world: World) -> None:
    """xargs fed by an unknown producer gets an unresolved argument."""
    effects = world.run("some-tool | xargs rm -f")
    [d] = find(effects, K.DELETE)
    assert d.target is not None and d.target.path is None
