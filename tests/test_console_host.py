"""Console output names a remote place's host once (``-> backup:/srv/``, not ``backup:backup:``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from guard.cli import main
from guard.types import Location


def check(root: Path, command: str, *extra: str) -> dict[str, object]:
    out = io.StringIO()
    call = json.dumps({"tool": "shell", "args": {"command": command}})
    code = main(["check", "--agent", "a", "--root", str(root), *extra, "--call", call], out=out)
    assert code == 0
    result: dict[str, object] = json.loads(out.getvalue())
    return result


@pytest.mark.parametrize("target", ["backup:/srv/", "ops@backup:/srv/"])
@pytest.mark.parametrize("tool", ["scp", "rsync -a"])
def test_check_names_the_host_once(tmp_path: Path, tool: str, target: str) -> None:
    """A copy to a host: reason and effects say ``backup`` once, whether the guard can see
    the host (mapped to a folder with --host) or not."""
    root, backup = tmp_path / "root", tmp_path / "backup"
    root.mkdir()
    (backup / "srv").mkdir(parents=True)
    (root / "model.bin").write_text("x")
    unseen = check(root, f"{tool} model.bin {target}")
    text = json.dumps(unseen)
    assert "backup:backup" not in text and "backup:ops@backup" not in text, text
    assert f"-> {target}" in str(unseen["reason"]), unseen["reason"]
    effects = unseen["effects"]
    assert isinstance(effects, list) and effects
    assert f"-> <unresolved '{target}'>" in effects[0], effects
    seen = check(root, f"{tool} model.bin {target}", "--host", f"backup={backup}")
    assert f"-> backup:{backup}/srv/model.bin" in str(seen["reason"]), seen["reason"]
    assert str(seen["reason"]).count("backup:") == 1, seen["reason"]


def test_location_describe_names_the_host_once() -> None:
    """Raw text that names the host already is not prefixed again; anything else is."""
    cases = [
        (Location(raw="backup:/srv/", host="backup", visible=False), "<unresolved 'backup:/srv/'>"),
        (
            Location(raw="u@backup:/srv", host="backup", visible=False),
            "<unresolved 'u@backup:/srv'>",
        ),
        (Location(raw="backup", host="backup", visible=False), "<unresolved 'backup'>"),
        (
            Location(raw="ssh://git@backup:22/r", host="backup"),
            "<unresolved 'ssh://git@backup:22/r'>",
        ),
        (Location(raw="$DEST", host="backup"), "backup:<unresolved '$DEST'>"),
        (Location(raw="backup:/srv", path="/h/backup/srv", host="backup"), "backup:/h/backup/srv"),
        (Location(raw="/srv", path="/srv"), "/srv"),
    ]
    assert [loc.describe() for loc, _ in cases] == [shown for _, shown in cases]
