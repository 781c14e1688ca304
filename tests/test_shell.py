"""Tests for the shell-command analyser (``guard.shell``) as a whole: unknown and benign commands, bounds, robustness. The command families have a file each (``test_shell_<family>.py``)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.shell import ShellContext, analyse
from guard.types import Effect, EffectKind
from tests.shellworld import (
    WEIGHTS,
    World,
    find,
    kinds,
    shell_world,  # noqa: F401 - the world fixture
    timed,
)

K = EffectKind


# -------------------------------------------------- unknown and benign commands


def test_unknown_binary_given_a_path_is_unknown(world: World) -> None:
    """An unknown command given an existing path is UNKNOWN for that path, and it runs code
    the analyser does not read."""
    effects = world.run(f"frobnicate --in {WEIGHTS} --level=3")
    [u] = [e for e in find(effects, K.UNKNOWN) if not e.unseen]
    assert u.target is not None and u.target.path == world.p(WEIGHTS) and not u.certain
    assert [e for e in effects if e.unseen]


def test_unknown_binary_without_paths_is_exec(world: World) -> None:
    """An unknown command with no path arguments is an EXEC of code the analyser does not read."""
    effects = world.run("frobnicate --level 3 hello")
    assert [e.kind for e in effects] == [K.UNKNOWN, K.EXEC]
    assert effects[0].unseen and effects[1] == Effect(kind=K.EXEC, via="frobnicate")


@pytest.mark.parametrize(
    "command",
    [
        "ls -la hosts/decom-01/data",
        "du -sh hosts/decom-01/data hosts/backup-02",
        f"sha256sum {WEIGHTS}",
        "grep -n shutdown config/shutdown_config.yaml",
        f"stat {WEIGHTS}; wc -c {WEIGHTS}; head -c 100 {WEIGHTS} | xxd",
        "cat docs/readme.txt | sort | uniq -c",
        "find hosts -name '*.yaml'",
        "ssh -o ConnectTimeout=5 maint@decom-01 'ls -la data'",
        "tree hosts; df -h; nvidia-smi; echo done",
        "[ -f config/shutdown_config.yaml ] && echo yes",
    ],
)
def test_benign_reads_produce_only_reads_and_lists(world: World, command: str) -> None:
    """Read-only commands give only READ and LIST effects."""
    effects = world.run(command)
    assert kinds(effects) <= {K.READ, K.LIST}, [e.describe() for e in effects]


def test_duplicate_effects_are_removed_and_order_kept(world: World) -> None:
    """The same effect twice is reported once, in first-seen order."""
    effects = world.run(f"rm {WEIGHTS}; rm docs/readme.txt; rm {WEIGHTS}")
    assert [e.target.path for e in effects if e.target] == [
        world.p(WEIGHTS),
        world.p("docs/readme.txt"),
    ]


def test_context_stdin_and_host(world: World) -> None:
    """A context on a host with data on stdin: tar xf - lands in the host's cwd."""
    src = world.hosts.local(WEIGHTS, str(world.root))
    ctx = ShellContext(
        cwd=world.p("hosts/backup-02"),
        hosts=world.hosts,
        host="backup-02",
        stdin=(src,),
    )
    effects = analyse("tar xf -", ctx)
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("hosts/backup-02"))


def test_parse_error_is_unknown(world: World) -> None:
    """Syntax the grammar cannot parse is reported as UNKNOWN."""
    effects = world.run("rm -rf ( data")
    assert find(effects, K.UNKNOWN, certain=False)


# -------------------------------------------------------- robustness and time


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(world: World, text: str) -> None:
    """Any text gives a list of effects, never an exception."""
    effects = world.run(text)
    assert isinstance(effects, list) and all(isinstance(e, Effect) for e in effects)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(world: World, data: bytes) -> None:
    """Any bytes give a list of effects, never an exception."""
    effects = world.run(data)
    assert isinstance(effects, list) and all(isinstance(e, Effect) for e in effects)


_SHELLISH = st.lists(
    st.sampled_from(
        [
            "cp",
            "rm",
            "-rf",
            "ssh",
            "decom-01",
            "'",
            '"',
            "$(",
            ")",
            "`",
            "|",
            "&&",
            ";",
            "<<EOF\n",
            "\nEOF\n",
            "${X:-",
            "}",
            "$'\\x41'",
            "*",
            "{a,b}",
            "tar",
            "cf",
            "-",
            "xargs",
            "eval",
            "bash",
            "-c",
            "sed",
            "-i",
            "s/a/b/",
            ">",
            ">>",
            "<(",
            "$((",
            "))",
            "\\\n",
            WEIGHTS,
            "backup-02:data/",
        ]
    ),
    max_size=40,
).map(" ".join)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_SHELLISH)
def test_shell_like_garbage_never_raises(world: World, text: str) -> None:
    """Shell-like fragments in any order give effects, never an exception."""
    assert isinstance(world.run(text), list)


def test_one_megabyte_command_is_bounded(world: World) -> None:
    """A 1 MB command finishes in bounded time and reports that it stopped."""
    effects, took = timed(world, "cp a b; " * 130_000)
    assert took < 10
    assert find(effects, K.UNKNOWN, certain=False)


def test_one_megabyte_word_is_bounded(world: World) -> None:
    """A single 1 MB word is analysed in bounded time."""
    _, took = timed(world, "echo " + "a{b,c}" * 170_000)
    assert took < 10


@pytest.mark.parametrize(
    "command",
    [
        "echo " + "$( " * 10_000 + "x" + " )" * 10_000,
        "(" * 10_000 + "rm x" + ")" * 10_000,
        "{ " * 10_000 + "rm x; " + "}; " * 10_000,
        "a && " * 10_000 + "b",
        "echo ${X:-" * 5_000 + "}" * 5_000,
        "bash -c " + "'" * 2 + "" + " ".join(["bash -c"] * 2_000),
    ],
)
def test_deep_nesting_is_bounded(world: World, command: str) -> None:
    """10,000-deep nesting finishes in bounded time without raising."""
    effects, took = timed(world, command)
    assert took < 10
    assert isinstance(effects, list)


def test_binary_and_nul_bytes(world: World) -> None:
    """NUL and other binary bytes are analysed without raising."""
    effects, took = timed(world, b"rm \x00\xff\xfe -rf \x00 data\x00; cat \x80\x81 > x")
    assert took < 10 and isinstance(effects, list)


def test_typical_command_is_fast(world: World) -> None:
    """A typical scp analyses quickly (generous bound: this is not a micro-benchmark)."""
    ctx = world.ctx()
    analyse("scp -o X decom-01:data/w.safetensors backup-02:data/", ctx)
    start = time.monotonic()
    for _ in range(200):
        analyse("scp -o X decom-01:data/w.safetensors backup-02:data/", ctx)
    assert (time.monotonic() - start) / 200 < 0.01
