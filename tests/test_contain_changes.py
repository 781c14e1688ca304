"""guard.contain.changes and journal: the change set a real contained run leaves, and its commit:
exact, journaled, and finished by recovery after a kill in the middle."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest

from guard.contain import ChangeKind, Transaction, read_changes, recover, run_contained
from guard.contain.journal import settled


@pytest.fixture
def real(tmp_path: Path) -> Path:
    """A real tree: files, a folder, a symlink."""
    root = tmp_path / "root"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a\n")
    (root / "b.txt").write_text("b\n")
    (root / "dir" / "x").write_text("x\n")
    (root / "dir" / "sub" / "y").write_text("y\n")
    (root / "mode.sh").write_text("echo\n")
    (root / "link").symlink_to("a.txt")
    return root


def contained(tmp_path: Path, root: Path, command: str) -> Transaction:
    """Run ``command`` contained over ``root``; the transaction holding its changes."""
    tx = Transaction(str(tmp_path / "state"), [str(root)])
    res = run_contained(command, tx.layers, cwd=str(root))
    assert res.exit_code == 0, res.stderr
    return tx


def kinds(tx: Transaction) -> dict[str, str]:
    """Each changed path (relative to the layer's root) and what happened to it."""
    root = tx.layers[0].root
    out = {}
    for c in read_changes(tx.layers):
        name = os.path.relpath(c.path, root)
        out[name] = (
            c.kind.value
            if c.kind is not ChangeKind.MOVED
            else f"moved from {os.path.relpath(c.source or '', root)}"
        )
    return out


def test_each_kind_of_change_is_read(tmp_path: Path, real: Path) -> None:
    """Created, modified, mode-only, deleted (file and folder, with what it held) and moved."""
    tx = contained(
        tmp_path, real,
        "echo new > new.txt; echo more >> a.txt; chmod 700 mode.sh; rm -r dir; mv b.txt c.txt; "
        "mkdir made; ln -sf b.txt link",
    )  # fmt: skip
    assert kinds(tx) == {
        "c.txt": "moved from b.txt",
        "a.txt": "modified",
        "dir": "deleted",
        "dir/x": "deleted",
        "dir/sub": "deleted",
        "dir/sub/y": "deleted",
        "link": "modified",
        "made": "created",
        "mode.sh": "metadata",
        "new.txt": "created",
    }


def test_a_folder_made_again_deletes_what_the_old_one_held(tmp_path: Path, real: Path) -> None:
    """rm -r dir; mkdir dir (an opaque folder): the old files are deleted, the new one created."""
    tx = contained(tmp_path, real, "rm -r dir && mkdir dir && echo z > dir/z")
    assert kinds(tx) == {"dir/x": "deleted", "dir/sub": "deleted", "dir/sub/y": "deleted",
                         "dir/z": "created"}  # fmt: skip


def test_hashes_and_sizes_of_new_content(tmp_path: Path, real: Path) -> None:
    """A created file carries its size and SHA-256; hashing can be limited to chosen sizes."""
    tx = contained(tmp_path, real, "printf hello > h; printf hi > i")
    every = {os.path.basename(c.path): c for c in read_changes(tx.layers)}
    assert every["h"].size == 5
    assert every["h"].digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    some = {
        os.path.basename(c.path): c for c in read_changes(tx.layers, digest_if=lambda n: n == 2)
    }
    assert some["i"].digest is not None and some["h"].digest is None


def _tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    out: dict[str, tuple[str, int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                body: bytes | str = os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                body = "dir"
            else:
                body = Path(path).read_bytes()
            out[os.path.relpath(path, root)] = (
                oct(stat.S_IMODE(st.st_mode)),
                st.st_mtime_ns // 10**9,
                body,
            )
    return out


def test_commit_gives_the_tree_an_uncontained_run_would(tmp_path: Path, real: Path) -> None:
    """The same command, run plainly on a copy and contained then committed, leaves the same
    tree: content, modes, symlinks and (to the second) modification times."""
    import shutil
    import subprocess

    command = (
        "echo new > new.txt; echo more >> a.txt; chmod 700 mode.sh; rm -r dir/sub; "
        "mv b.txt c.txt; mkdir -p made/deep && echo d > made/deep/f; ln -sf c.txt link; "
        "touch -d '2020-01-01' a.txt"
    )
    plain = tmp_path / "plain"
    shutil.copytree(real, plain, symlinks=True)
    subprocess.run(["bash", "-c", command], cwd=plain, check=True)
    tx = contained(tmp_path, real, command)
    tx.commit()
    assert settled()
    got, want = _tree(real), _tree(plain)
    assert sorted(got) == sorted(want)
    for name, (mode, mtime, body) in want.items():
        assert got[name][0] == mode and got[name][2] == body, name
        assert abs(got[name][1] - mtime) <= 1, name  # the runs a moment apart
    assert not os.path.exists(tx.folder)
    assert not any(n.startswith("user.overlay") for n in os.listxattr(real / "made"))


def test_discard_leaves_the_real_tree_as_it_was(tmp_path: Path, real: Path) -> None:
    """A discarded transaction changes nothing and leaves nothing behind."""
    before = _tree(real)
    tx = contained(tmp_path, real, "rm -rf ./*; echo x > y")
    tx.discard(wait=True)
    assert _tree(real) == before and not os.path.exists(tx.folder)


def test_a_commit_killed_midway_is_finished_by_recover(tmp_path: Path, real: Path) -> None:
    """Killed in the middle of a commit, every file is in its old or its new state; recover
    then finishes the commit, and nothing the run wrote is lost."""
    tx = contained(
        tmp_path, real,
        "for i in $(seq 300); do echo new-$i > f$i; done; rm -r dir; echo changed > a.txt",
    )  # fmt: skip
    pid = os.fork()
    if pid == 0:  # the committer, slowed so that the kill lands in the middle
        real_rename = os.rename

        def slow_rename(src: str, dst: str) -> None:
            time.sleep(0.002)
            real_rename(src, dst)

        setattr(os, "rename", slow_rename)  # noqa: B010 - slowed in this child only
        try:
            tx.commit()
        finally:
            os._exit(0)
    time.sleep(0.25)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    done = [i for i in range(1, 301) if (real / f"f{i}").exists()]
    assert 0 < len(done) < 300, len(done)  # the kill landed in the middle
    for i in done:
        assert (real / f"f{i}").read_text() == f"new-{i}\n"  # never half written
    assert (real / "a.txt").read_text() in ("a\n", "changed\n")
    assert os.listdir(tmp_path / "state" / "journal")
    assert recover(str(tmp_path / "state")) == [tx.id]
    assert all((real / f"f{i}").read_text() == f"new-{i}\n" for i in range(1, 301))
    assert (real / "a.txt").read_text() == "changed\n" and not (real / "dir").exists()
    assert os.listdir(tmp_path / "state" / "journal") == []
    assert os.listdir(tmp_path / "state" / "tx") == []


def test_recover_discards_runs_that_were_never_committed(tmp_path: Path, real: Path) -> None:
    """A run whose process died before any commit leaves no journal: recover removes it and
    the real tree keeps its state."""
    before = _tree(real)
    tx = contained(tmp_path, real, "echo x > new; rm a.txt")
    assert recover(str(tmp_path / "state")) == []
    assert not os.path.exists(tx.folder) and _tree(real) == before


def test_peerguard_recover_finishes_a_commit_left_behind(
    tmp_path: Path, real: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that died after its journal was written is finished by ``peerguard recover``."""
    import io

    from guard import cli
    from guard.contain import journal

    tx = contained(tmp_path, real, "echo one > one; echo two > two")

    def dies(_layers: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(journal, "_apply", dies)
    with pytest.raises(SystemExit):
        tx.commit()
    monkeypatch.undo()
    assert not (real / "one").exists()
    out = io.StringIO()
    assert cli.main(["recover", str(tmp_path / "state")], out) == 0
    assert f"finished commit {tx.id}" in out.getvalue()
    assert (real / "one").read_text() == "one\n" and (real / "two").read_text() == "two\n"
    assert cli.main(["recover", str(tmp_path / "nothing-here")], io.StringIO()) == 2
