"""The shell analyser expands words as a real bash does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from guard import shell
from guard.paths import HostMap
from guard.types import EffectKind

BASH = shutil.which("bash")

VALUES = {"A": "hosts/decom-01", "B": "data", "C": "w.safetensors", "D": "x-1"}
# No ${UNSET:-default}: a name the command does not set may be set in the agent's environment,
# so the guard leaves it unresolved where bash (with a clean environment) takes the default.
PIECES = st.sampled_from(
    ["$A", "${A}", "$B", "${B}", "$C", "$D", "/", "x", ".", "_1", "-", "'q'", '"$B"', '"y"',
     "${B%a}", "${A#hosts/}", "${A:+set}", "$'\\x41'", "\\z", "${#B}",
     "${B^^}", "${A/decom/x}", "$((1+2))", "${D:1:2}", '"${A}/"']
)  # fmt: skip


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(PIECES, min_size=1, max_size=6))
def test_a_word_expands_to_what_bash_makes_of_it(tmp_path: Path, pieces: list[str]) -> None:
    """For words of variables, quotes and literals, the copy's source is bash's expansion."""
    word = "".join(pieces)
    assigns = "; ".join(f"{k}={v}" for k, v in VALUES.items())
    ran = subprocess.run(
        # set -u: a word naming a variable nobody set ($Ax) is one the guard rightly cannot
        # resolve (the agent's environment may set it), so bash refusing it skips the case.
        [str(BASH), "--norc", "--noprofile", "-c", f"set -u; {assigns}; printf '%s\\0' {word}"],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assume(ran.returncode == 0)
    words = ran.stdout.decode().split("\0")[:-1]
    assume(len(words) == 1 and words[0])  # one source word to compare
    expected = os.path.realpath(os.path.join(tmp_path, words[0]))
    ctx = shell.ShellContext(cwd=str(tmp_path), hosts=HostMap({}))
    effects = shell.analyse(f"{assigns}; cp -- {word} dst", ctx)
    copies = [e for e in effects if e.kind is EffectKind.COPY]
    assert [c.target.path for c in copies if c.target is not None] == [expected], word
