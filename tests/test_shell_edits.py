"""Writes that edit files: ``sed -i``, redirects, ``touch``/``chmod``, ``yq``/``jq``, ``cp``/``mv``/``tee``."""

from __future__ import annotations

import pytest

from guard.shell import apply_sed
from guard.shell.perms import acl_takes_read, apply_mode, takes_access
from guard.types import ConfigEdit, EffectKind
from tests.shellworld import (
    CONFIG,
    WEIGHTS,
    World,
    find,
    shell_world,  # noqa: F401 - the world fixture
)

K = EffectKind


# ------------------------------------------------------------- config edits


def test_sed_in_place_is_a_sed_edit(world: World) -> None:
    """sed -i 's/true/false/' CFG is a WRITE with the script; applying it gives the new text."""
    effects = world.run(f"sed -i 's/shutdown_enabled: true/shutdown_enabled: false/' {CONFIG}")
    [w] = find(effects, K.WRITE)
    assert w.edit == ConfigEdit(
        op="sed", script="s/shutdown_enabled: true/shutdown_enabled: false/"
    )
    assert w.target is not None and w.target.path == world.p(CONFIG)
    text = (world.root / CONFIG).read_text()
    assert apply_sed(w.edit.script or "", text) == "shutdown_enabled: false\nother: 1\n"


def test_sed_backup_suffix_and_extended_syntax(world: World) -> None:
    """sed -E -i.bak copies the file to FILE.bak and records the script in basic syntax."""
    effects = world.run(f"sed -E -i.bak 's/(enabled): +true/\\1: false/' {CONFIG}")
    assert find(effects, K.COPY, target_path=world.p(CONFIG), dest_path=world.p(CONFIG + ".bak"))
    [w] = find(effects, K.WRITE, target_path=world.p(CONFIG))
    assert w.edit is not None and w.edit.script is not None
    assert apply_sed(w.edit.script, "shutdown_enabled: true\n") == "shutdown_enabled: false\n"


def test_sed_with_unknown_script_changes_in_unknown_way(world: World) -> None:
    """sed -i "$S" FILE is a WRITE with no knowable edit."""
    effects = world.run(f'sed -i "$S" {CONFIG}')
    [w] = find(effects, K.WRITE)
    assert w.edit is None


def test_echo_redirect_replaces_content(world: World) -> None:
    """echo TEXT > CFG replaces the content with TEXT and a newline."""
    effects = world.run(f"echo 'shutdown_enabled: \"False\"' > {CONFIG}")
    [w] = find(effects, K.WRITE)
    assert w.edit == ConfigEdit(op="replace", content='shutdown_enabled: "False"\n')


def test_heredoc_cat_replaces_content(world: World) -> None:
    """cat <<EOF > CFG writes the heredoc text."""
    effects = world.run(f"cat > {CONFIG} <<EOF\nshutdown_enabled: false\nEOF\n")
    [w] = find(effects, K.WRITE)
    assert w.edit == ConfigEdit(op="replace", content="shutdown_enabled: false\n")


def test_truncations_and_append(world: World) -> None:
    """: > f and truncate -s 0 empty the file; >> appends the text."""
    for command in (f": > {CONFIG}", f"truncate -s 0 {CONFIG}", f"> {CONFIG}"):
        [w] = find(world.run(command), K.WRITE)
        assert w.edit == ConfigEdit(op="replace", content=""), command
    [w] = find(world.run(f"printf 'x: %s\\n' 1 >> {CONFIG}"), K.WRITE)
    assert w.edit == ConfigEdit(op="append", content="x: 1\n")


def test_redirect_belongs_to_last_command_of_a_list(world: World) -> None:
    """In a && b > f only b's output goes to f."""
    effects = world.run(f"cat docs/readme.txt && cat {WEIGHTS} > docs/out")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/out"))
    assert not find(effects, K.COPY, target_path=world.p("docs/readme.txt"))


def test_touch_and_chmod_are_metadata_writes(world: World) -> None:
    """touch, and a chmod that leaves the file readable, change metadata only; a chmod that
    takes read access away makes it unreadable; a mode nobody can read is unknown."""
    cases = {
        f"touch -d 2024-01-01 {CONFIG}": "metadata",
        f"chmod -w {CONFIG}": "metadata",
        f"chmod 000 {CONFIG}": "unreadable",
        f"chmod go-r {CONFIG}": "unreadable",
        f"chmod $M {CONFIG}": "unknown",
    }
    for command, op in cases.items():
        [w] = find(world.run(command), K.WRITE)
        assert w.edit == ConfigEdit(op=op), command
        assert w.target is not None and w.target.path == world.p(CONFIG)


@pytest.mark.parametrize(
    ("mode", "spec", "folder", "after"),
    [
        (0o644, "000", False, 0o000),
        (0o644, "a-r", False, 0o200),
        (0o644, "u-r,g-r,o-r", False, 0o200),
        (0o644, "=", False, 0o000),
        (0o644, "go=", False, 0o600),
        (0o640, "o=g", False, 0o644),
        (0o644, "+x", False, 0o755),
        (0o600, "a+X", False, 0o600),
        (0o700, "a+X", True, 0o711),
        (0o644, "u=rw,go=r", False, 0o644),
        (0o644, "u+", False, 0o644),
        (0o644, "rw", False, None),
        (0o644, "8", False, None),
    ],
)
def test_chmod_modes(mode: int, spec: str, folder: bool, after: int | None) -> None:
    """Octal and symbolic modes as chmod applies them; what chmod refuses is ``None``."""
    assert apply_mode(mode, spec, folder=folder) == after


def test_access_taken_and_acl_entries() -> None:
    """Read access taken from a file, search access from a folder; ACL entries without read."""
    assert takes_access(0o644, 0o640, folder=False)
    assert not takes_access(0o600, 0o600, folder=False)
    assert not takes_access(0o755, 0o700 | 0o044, folder=False)
    assert takes_access(0o755, 0o744, folder=True)
    assert not takes_access(0o755, 0o711, folder=True)
    assert acl_takes_read("u:monitor:-w-")
    assert acl_takes_read("o::0")
    assert acl_takes_read("m::x")
    assert not acl_takes_read("u:monitor:r,g::rw,o::4")
    assert not acl_takes_read("d:o::---")


def test_yq_in_place_and_jq_redirect(world: World) -> None:
    """yq -i of plain assignments is a simulated edit, of anything else an unknown one;
    jq ... > f copies derived content."""
    [w] = find(world.run(f"yq -i '.shutdown_enabled = false' {CONFIG}"), K.WRITE)
    assert w.edit == ConfigEdit(op="set", key="shutdown_enabled", value=False)
    [w] = find(world.run(f"yq -i '.shutdown_enabled = .other' {CONFIG}"), K.WRITE)
    assert w.edit is None
    [w] = find(world.run(f'yq -i "$PROGRAM" {CONFIG}'), K.WRITE)
    assert w.edit is None
    effects = world.run(f"jq '.a' {CONFIG} > docs/x.json")
    assert find(effects, K.COPY, target_path=world.p(CONFIG), dest_path=world.p("docs/x.json"))


def test_cp_over_existing_file_is_also_a_write(world: World) -> None:
    """Copying onto an existing file overwrites it: a WRITE to it as well as the COPY."""
    effects = world.run(f"cp docs/readme.txt {CONFIG}")
    assert find(effects, K.COPY, dest_path=world.p(CONFIG))
    assert find(effects, K.WRITE, target_path=world.p(CONFIG))


def test_mv_is_move(world: World) -> None:
    """mv SRC DIR moves SRC into DIR."""
    effects = world.run(f"mv {WEIGHTS} docs")
    assert find(
        effects, K.MOVE, target_path=world.p(WEIGHTS), dest_path=world.p("docs/w.safetensors")
    )


def test_tee_copies_stdin_to_files(world: World) -> None:
    """cat w | tee a b copies w to both files."""
    effects = world.run(f"cat {WEIGHTS} | tee docs/a docs/b >/dev/null")
    assert find(effects, K.COPY, dest_path=world.p("docs/a"))
    assert find(effects, K.COPY, dest_path=world.p("docs/b"))


def test_command_and_process_substitution_effects_count(world: World) -> None:
    """Effects inside $(...) and <(...) count; content through them is followed."""
    effects = world.run(f'echo "$(cat {WEIGHTS})" > docs/x; cp <(cat {WEIGHTS}) docs/y')
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/x"))
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/y"))
