"""Variables, parameter expansion, ``~``, ``cd``, globs and braces, as bash expands them."""

from __future__ import annotations

import pytest

from guard.types import EffectKind
from tests.shellworld import (
    WEIGHTS,
    World,
    find,
    shell_world,  # noqa: F401 - the world fixture
)

K = EffectKind


# ------------------------------------------------------- variables and cwd


def test_variable_resolves(world: World) -> None:
    """X=PATH; cp $X DST resolves X."""
    effects = world.run(f"X={WEIGHTS}; cp $X docs/y")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/y"))


@pytest.mark.parametrize(
    "word",
    ["$A/$B/w.safetensors", "$A/${B}/w.safetensors", "${A}/$B/w.safetensors", "$A/$B/$C"],
)
def test_several_expansions_in_one_word(world: World, word: str) -> None:
    """`$a/$b/c` is one word with two expansions, though the grammar splits it after a `$`."""
    head, _, tail = WEIGHTS.rpartition("/")
    top, _, mid = head.rpartition("/")
    effects = world.run(f"A={top}; B={mid}; C={tail}; cp {word} docs/y")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/y"))


def test_parameter_expansion_operators(world: World) -> None:
    """${X%.bak}, ${X//_/} and ${X:-default} are computed."""
    effects = world.run(
        f"X={WEIGHTS}.bak; Y=d_o_c_s; cp ${{X%.bak}} ${{Y//_/}}/; rm ${{Z:-docs/readme.txt}}"
    )
    assert find(
        effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/w.safetensors")
    )
    assert not find(effects, K.DELETE, target_path=world.p("docs/readme.txt"))
    assert find(effects, K.DELETE, certain=True)


def test_unset_variable_is_unresolved(world: World) -> None:
    """cp $UNSET y has an unresolved source."""
    effects = world.run("cp $UNSET docs/y")
    [copy] = find(effects, K.COPY)
    assert copy.target is not None and copy.target.path is None and copy.target.raw == "$UNSET"


def test_home_and_tilde(world: World) -> None:
    """~ and $HOME mean the context's home."""
    effects = world.run(
        "rm ~/data/notes.txt $HOME/data/w.safetensors", home=world.p("hosts/decom-01")
    )
    assert find(effects, K.DELETE, target_path=world.p("hosts/decom-01/data/notes.txt"))
    assert find(effects, K.DELETE, target_path=world.p(WEIGHTS))


def test_cd_moves_later_commands(world: World) -> None:
    """cd DIR && cp w ../x resolves against DIR."""
    effects = world.run("cd hosts/decom-01/data && cp w.safetensors ../x")
    assert find(
        effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("hosts/decom-01/x")
    )


def test_subshell_cd_does_not_leak(world: World) -> None:
    """(cd DIR) does not move the parent shell."""
    effects = world.run("(cd hosts) ; rm docs/readme.txt")
    assert find(effects, K.DELETE, target_path=world.p("docs/readme.txt"))


def test_cd_into_missing_folder_makes_paths_unresolved(world: World) -> None:
    """After a cd that would fail, relative paths are not trusted."""
    effects = world.run("cd nowhere; rm -rf *")
    [d] = find(effects, K.DELETE)
    assert d.target is not None and d.target.path is None


def test_glob_expands_against_the_filesystem(world: World) -> None:
    """hosts/*/data/*.safetensors expands to the real files, sorted."""
    effects = world.run("rm hosts/*/data/*.safetensors")
    assert [e.target.path for e in find(effects, K.DELETE) if e.target] == [world.p(WEIGHTS)]


def test_glob_without_match_stays_literal(world: World) -> None:
    """A glob that matches nothing is passed on as written."""
    effects = world.run("rm docs/*.none")
    [d] = find(effects, K.DELETE)
    assert d.target is not None and d.target.path == world.p("docs/*.none")


def test_brace_expansion(world: World) -> None:
    """cp hosts/decom-01/data/{w.safetensors,notes.txt} DIR copies both files."""
    effects = world.run("cp hosts/decom-01/data/{w.safetensors,notes.txt} docs/")
    assert len(find(effects, K.COPY)) == 2


def test_for_loop_over_glob(world: World) -> None:
    """for f in GLOB; do scp $f HOST:; done copies each file."""
    effects = world.run('for f in hosts/decom-01/data/*; do scp "$f" backup-02:data/; done')
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS))
