"""``apply_sed``: GNU sed's edits reproduced byte for byte, or refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from guard.shell import apply_sed

# ------------------------------------------------------------------ apply_sed


@pytest.mark.parametrize(
    ("script", "text", "expected"),
    [
        (
            "s/shutdown_enabled: true/shutdown_enabled: false/",
            "shutdown_enabled: true\n",
            "shutdown_enabled: false\n",
        ),
        ("s|true|false|g", "a: true\nb: true\n", "a: false\nb: false\n"),
        ("s/\\(enabled\\): *true/\\1: no/", "enabled:  true\n", "enabled: no\n"),
        ("s/TRUE/off/I", "x: True\n", "x: off\n"),
        ("/^other/d", "a\nother: 1\n", "a\n"),
        ("2s/x/y/", "x\nx\n", "x\ny\n"),
        ("$a\\\nlast", "a\n", "a\nlast\n"),
        (
            "/enabled/c\\\nshutdown_enabled: false",
            "shutdown_enabled: true\n",
            "shutdown_enabled: false\n",
        ),
        ("s/a/b/;s/b/c/", "a\n", "c\n"),
        ("y/tf/TF/", "true\n", "True\n"),
        ("s/x/&&/2", "xxx\n", "xxxx\n"),
    ],
)
def test_apply_sed_simulates_gnu_sed(script: str, text: str, expected: str) -> None:
    """apply_sed reproduces GNU sed for the supported subset."""
    assert apply_sed(script, text) == expected


@pytest.mark.parametrize(
    "script",
    [
        "h;G",
        "s/a\\|b/x/",
        "s/\\(a\\)*/x/",
        ":a;N;ba",
        "s/x/y/w out",
        "1!G",
        "s/\\d065/x/",
        "s/a/\\U&/",
    ],
)
def test_apply_sed_refuses_what_it_cannot_reproduce(script: str) -> None:
    """Unsupported sed constructs give None, never a guess."""
    assert apply_sed(script, "abc\n") is None


TEXT_SCRIPTS = [
    "$a #\\nshutdown_enabled: false",
    "1a #\\nshutdown_enabled: off",
    "1i x\\ty\\\\z",
    "2c one\\ntwo",
    "1a x\\qy\\&z\\/w",
    "1a \\n",
    "1a  \\\\n",
    "1a\\\nmulti\\nline\\tt",
    "1i\\\none\\\ntwo",
    "$a\\\nlast",
    "/b/c\\\nx\\ry\\fz\\vw\\a",
    "1a a\\\\nb",
    "1a x;2d",
]


@pytest.mark.parametrize("script", TEXT_SCRIPTS)
def test_apply_sed_text_escapes_match_real_gnu_sed(tmp_path: Path, script: str) -> None:
    """The text of a, i and c reads escapes as GNU sed does (``\\n`` is a newline): the
    simulator gives what real sed writes, or ``None``."""
    for text in ("a\nb\nc\n", "a\n", "a\nb"):
        f = tmp_path / "f"
        f.write_text(text)
        subprocess.run(["sed", "-i", script, str(f)], check=True)
        assert apply_sed(script, text) == f.read_bytes().decode(), (script, text)


@pytest.mark.parametrize("script", ["1a x\\ny\\", "1a x\\d065", "1a x\\cA", "1a\\  lead", "1a\\"])
def test_apply_sed_refuses_text_forms_it_does_not_reproduce(script: str) -> None:
    """Numeric and control escapes, a trailing backslash, kept leading whitespace: None."""
    assert apply_sed(script, "abc\n") is None


def test_apply_sed_extended_flag() -> None:
    """With extended=True the script is read as ERE."""
    assert apply_sed("s/(a)+/[\\1]/", "aaa\n", extended=True) is None
    assert apply_sed("s/a+/b/", "aaa\n", extended=True) == "b\n"
    assert apply_sed("s/a+/b/", "aaa+\n") == "aab\n"
