"""guard.contain.sandbox: real namespaces and a real overlay keep a command's writes out of the
real tree, end every process it started, and give it no network and no way to undo the mounts."""

from __future__ import annotations

import http.server
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.contain import ContainmentError, Limits, Overlay, probe, run_contained, sandbox


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[Overlay]]:
    """A real tree with two files, and a layer whose upper folder is outside it."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    (root / "keep").mkdir()
    (root / "keep" / "b.txt").write_text("b\n")
    upper, work = tmp_path / "tx" / "upper", tmp_path / "tx" / "work"
    upper.mkdir(parents=True)
    work.mkdir()
    return root, [Overlay(str(root), str(upper), str(work))]


def run(
    tree: tuple[Path, list[Overlay]], command: str, *, network: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` contained at the tree's root."""
    root, layers = tree
    res = run_contained(command, layers, cwd=str(root), network=network)
    return subprocess.CompletedProcess(
        [], res.exit_code or 0, res.stdout.decode(), res.stderr.decode()
    )


def test_this_machine_can_contain() -> None:
    """The probe finds user namespaces and overlayfs here (CI installs nothing for them)."""
    assert probe() is None


def test_writes_deletes_and_renames_land_in_the_upper_layer_only(
    tree: tuple[Path, list[Overlay]],
) -> None:
    """The command sees its own changes; the real tree is untouched; the upper layer has them."""
    root, layers = tree
    out = run(tree, "echo new > new.txt; echo more >> a.txt; rm -r keep; mv a.txt moved.txt; ls")
    assert out.stdout.split() == ["moved.txt", "new.txt"]
    assert sorted(os.listdir(root)) == ["a.txt", "keep"]
    assert (root / "a.txt").read_text() == "a\n"
    upper = Path(layers[0].upper)
    assert (upper / "new.txt").read_text() == "new\n"
    assert (upper / "moved.txt").read_text() == "a\nmore\n"
    assert os.stat(upper / "keep").st_rdev == 0 and not (upper / "keep").is_file()


def test_the_rest_of_the_filesystem_is_read_only(
    tree: tuple[Path, list[Overlay]], tmp_path: Path
) -> None:
    """Outside the overlays nothing can be written: not /etc, not the folder beside the root."""
    out = run(tree, f"touch /etc/peerguard-x; touch {tmp_path}/beside; echo $?")
    assert "Read-only file system" in out.stderr
    assert not Path("/etc/peerguard-x").exists()
    assert not (tmp_path / "beside").exists()


def test_tmp_writes_are_private(tree: tuple[Path, list[Overlay]]) -> None:
    """/tmp reads as the machine's (programs installed there still run), but what the command
    writes there, new files or changes to the machine's, is its own and gone with it."""
    marker = Path("/tmp") / f"peerguard-visible-{os.getpid()}"
    marker.write_text("x")
    try:
        out = run(
            tree, f"cat {marker}; echo changed > {marker}; echo hi > /tmp/mine; cat /tmp/mine"
        )
        assert out.stdout == "xhi\n"
        assert marker.read_text() == "x"
        assert not Path("/tmp/mine").exists()
    finally:
        marker.unlink()


def test_the_mounts_cannot_be_undone(tree: tuple[Path, list[Overlay]]) -> None:
    """Root inside the sandbox cannot unmount an overlay, remount / writable, or see /proc of
    the machine: the mounts are locked by a second user namespace."""
    root, _layers = tree
    out = run(tree, f"umount -l {root}; mount -o remount,rw /; umount /proc; echo x > {root}/via")
    assert not (root / "via").exists()
    listing = run(tree, "ls /proc | grep -c '^[0-9]'")
    assert int(listing.stdout.strip()) < 10, listing.stdout
    assert out.returncode == 0


def test_only_harmless_devices_exist(tree: tuple[Path, list[Overlay]]) -> None:
    """/dev holds null, zero, urandom and kin, and no disk."""
    out = run(tree, "ls /dev; echo x > /dev/null && echo wrote-null; head -c 4 /dev/zero | wc -c")
    names = set(out.stdout.split())
    assert {"null", "zero", "urandom", "wrote-null"} <= names
    assert not any(n.startswith(("sd", "vd", "nvme", "loop")) for n in names)


@pytest.fixture
def http_server() -> Iterator[int]:
    """A real HTTP server on loopback."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_no_network_unless_given(tree: tuple[Path, list[Overlay]], http_server: int) -> None:
    """The same request reaches a loopback server with the network and fails without it."""
    cmd = f"exec 3<>/dev/tcp/127.0.0.1/{http_server} && echo reached"
    assert "reached" not in run(tree, cmd).stdout
    assert "reached" in run(tree, cmd, network=True).stdout


def test_every_process_ends_with_the_call(tree: tuple[Path, list[Overlay]]) -> None:
    """Background jobs, nohup, setsid and double forks do not outlive the command."""
    tag = f"peerguard-bg-{os.getpid()}-{time.monotonic_ns()}"
    run(
        tree,
        f"(sleep 30 & ) ; nohup sleep 31 >/dev/null 2>&1 & setsid sleep 32 & "
        f"bash -c 'exec -a {tag} sleep 33' & echo started",
    )
    time.sleep(0.3)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert tag not in ps
    assert not any(line.strip() in ("sleep 30", "sleep 31", "sleep 32") for line in ps.splitlines())


def test_time_limit_kills_everything_and_says_so(tree: tuple[Path, list[Overlay]]) -> None:
    """A command past its time limit is killed, with every process it started; the result says so."""
    root, layers = tree
    started = time.monotonic()
    res = run_contained("sleep 20 & sleep 20; echo late", layers, cwd=str(root),
                        limits=Limits(timeout=0.5))  # fmt: skip
    assert time.monotonic() - started < 5
    assert res.timed_out and res.exit_code is None and b"late" not in res.stdout
    assert any("killed after 0.5 s" in c for c in res.cut)


def test_output_limit_cuts_and_says_how_much(tree: tuple[Path, list[Overlay]]) -> None:
    """Output past the limit is dropped and counted; the command still finishes."""
    root, layers = tree
    res = run_contained("head -c 100000 /dev/zero; echo done >&2", layers, cwd=str(root),
                        limits=Limits(max_output=1000))  # fmt: skip
    assert len(res.stdout) == 1000 and res.stderr == b"done\n" and res.exit_code == 0
    assert res.cut == ["standard output cut after 1000 bytes (99000 more dropped)"]


def test_writing_past_the_size_limit_stops_the_command(tree: tuple[Path, list[Overlay]]) -> None:
    """A command that fills the upper layer past the limit is stopped and flagged."""
    root, layers = tree
    res = run_contained("while :; do head -c 1048576 /dev/zero >> big; done", layers,
                        cwd=str(root), limits=Limits(max_upper_bytes=4 << 20, timeout=30))  # fmt: skip
    assert res.over_size and res.exit_code is None
    assert any("wrote more than" in c for c in res.cut)
    assert not (root / "big").exists()


def test_a_root_under_tmp_is_still_an_overlay(tmp_path: Path) -> None:
    """A protected root inside /tmp stays visible (and contained) under the private /tmp."""
    base = Path("/tmp") / f"peerguard-root-{os.getpid()}-{time.monotonic_ns()}"
    try:
        (base / "root").mkdir(parents=True)
        (base / "root" / "f").write_text("real\n")
        (tmp_path / "u").mkdir()
        (tmp_path / "w").mkdir()
        layer = Overlay(str(base / "root"), str(tmp_path / "u"), str(tmp_path / "w"))
        res = run_contained("cat f; echo changed > f", [layer], cwd=str(base / "root"))
        assert res.stdout == b"real\n" and res.exit_code == 0
        assert (base / "root" / "f").read_text() == "real\n"
        assert (tmp_path / "u" / "f").read_text() == "changed\n"
    finally:
        shutil.rmtree(base)


def test_a_bad_layer_is_a_clear_error(tmp_path: Path) -> None:
    """An upper folder that does not exist fails with the step that failed, and nothing runs."""
    (tmp_path / "r").mkdir()
    layer = Overlay(str(tmp_path / "r"), str(tmp_path / "missing"), str(tmp_path / "w"))
    with pytest.raises(ContainmentError, match="mount overlay"):
        run_contained("touch ran", [layer], cwd=str(tmp_path / "r"))
    assert not (tmp_path / "r" / "ran").exists()


def test_a_failed_sandbox_leaves_the_next_one_working(tmp_path: Path) -> None:
    """A run whose sandbox could not be built does not take the starter down with it."""
    (tmp_path / "r").mkdir()
    bad = Overlay(str(tmp_path / "r"), str(tmp_path / "missing"), str(tmp_path / "w"))
    for _ in range(3):
        with pytest.raises(ContainmentError, match="mount overlay"):
            run_contained("touch ran", [bad], cwd=str(tmp_path / "r"))
        for n in ("u", "w"):
            shutil.rmtree(tmp_path / n, ignore_errors=True)
            (tmp_path / n).mkdir()
        good = Overlay(str(tmp_path / "r"), str(tmp_path / "u"), str(tmp_path / "w"))
        res = run_contained("touch ran", [good], cwd=str(tmp_path / "r"))
        assert res.exit_code == 0 and (tmp_path / "u" / "ran").exists()
    assert not (tmp_path / "r" / "ran").exists()


_NO_NAMESPACES = """
import os, tempfile
with open("/proc/sys/user/max_user_namespaces", "w") as fh:
    fh.write("0")  # this private user namespace's own limit: no namespace can be made in it
from guard.contain import ContainmentError, Overlay, probe, run_contained
d = tempfile.mkdtemp()
r, u, w = (os.path.join(d, x) for x in "ruw")
for x in (r, u, w):
    os.mkdir(x)
for network in (True, False, True, False):
    try:
        run_contained("touch ran", [Overlay(r, u, w)], cwd=r, network=network)
        print("ran")
    except ContainmentError as exc:
        print("refused:", exc)
print("probe:", probe())
print("written:", os.listdir(r), os.listdir(u))
"""


def test_no_namespaces_is_a_clear_error_for_every_call(tmp_path: Path) -> None:
    """Where no namespace can be made, every call, with the network or without, fails with the
    step that failed (the starter and its standby stay to say so), nothing runs, and the probe
    says how to enable them."""
    out = in_private_user_namespace(_NO_NAMESPACES, timeout=60)
    lines = out.stdout.splitlines()
    assert (
        lines[:4]
        == [
            "refused: the sandbox could not be set up: OSError: [Errno 28] unshare: No space left on device",
            "refused: the sandbox could not be set up: OSError: [Errno 28] unshare (network): No space left on device",
        ]
        * 2
    ), out
    assert lines[4] == "probe: user namespaces are disabled: set user.max_user_namespaces above 0"
    assert lines[5] == "written: [] []", out


def in_private_user_namespace(script: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run Python ``script`` from the repository in a user namespace of its own, where it may
    lower that namespace's limits (``/proc/sys/user/...``); check the machine's own limits are
    the same afterwards."""
    limits = sorted(Path("/proc/sys/user").iterdir())
    before = [p.read_text() for p in limits]
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", script],
        capture_output=True, text=True, cwd=repo, timeout=timeout, check=True,
    )  # fmt: skip
    assert [p.read_text() for p in limits] == before  # the machine's own were not touched
    return out


def test_a_path_overlayfs_cannot_take_is_refused(tmp_path: Path) -> None:
    """A comma in a root's path would split overlayfs's options: refused, not misread."""
    odd = tmp_path / "a,b"
    odd.mkdir()
    with pytest.raises(ContainmentError, match="overlayfs cannot take"):
        run_contained("true", [Overlay(str(odd), str(tmp_path), str(tmp_path))], cwd=str(odd))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an unprivileged user")
def test_an_unprivileged_user_is_contained_too() -> None:
    """As ``nobody``, the same sandbox works (overlayfs with userxattr in a user namespace):
    the write lands in the upper layer, owned by nobody, and the real file is untouched."""
    entry = pwd.getpwnam("nobody")
    base = Path("/tmp") / f"peerguard-nobody-{os.getpid()}-{time.monotonic_ns()}"
    try:
        for sub in ("root", "upper", "work", "starter"):
            (base / sub).mkdir(parents=True)
        (base / "root" / "f").write_text("real\n")
        # The starter must be readable and runnable by nobody: the system's Python and a copy
        # of the script (this checkout may sit in a folder only root can read).
        script = base / "starter" / "_zygote.py"
        shutil.copy(sandbox.STARTER_SCRIPT, script)
        for path in (base, *base.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        base.chmod(0o755)
        layer = Overlay(str(base / "root"), str(base / "upper"), str(base / "work"))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child becomes nobody and runs one contained command
            code = 1
            try:
                os.close(read)
                os.setgroups([])
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)
                sandbox.STARTER_PYTHON, sandbox.STARTER_SCRIPT = "/usr/bin/python3", str(script)
                res = run_contained("echo changed > f; id -u", [layer], cwd=layer.root)
                os.write(write, f"{os.geteuid()} {res.exit_code} {res.stdout.decode()}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as fh:
            said = fh.read().split()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert said == [str(entry.pw_uid), "0", "0"], said  # nobody; exit 0; root inside
        assert (base / "root" / "f").read_text() == "real\n"
        assert (base / "upper" / "f").read_text() == "changed\n"
        assert (base / "upper" / "f").stat().st_uid == entry.pw_uid
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_starter_ends_when_the_guard_is_gone() -> None:
    """A guard process killed while a child of it still holds the starter's socket does not
    leave the starter running."""
    code = (
        "import os, tempfile, time\n"
        "from guard.contain import Overlay, run_contained, sandbox\n"
        "d = tempfile.mkdtemp()\n"
        "[os.mkdir(f'{d}/{x}') for x in ('r', 'u', 'w')]\n"
        "run_contained('true', [Overlay(f'{d}/r', f'{d}/u', f'{d}/w')], cwd=f'{d}/r')\n"
        "print(sandbox._OFFLINE._proc.pid, flush=True)\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(20); os._exit(0)\n"
        "print(child, flush=True)\n"
        "time.sleep(20)\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=repo)  # fmt: skip
    assert proc.stdout is not None
    with proc.stdout:
        starter = int(proc.stdout.readline())
        holder = int(proc.stdout.readline())  # forked: it holds the starter's socket open
    # The starter keeps a standby ready: a child that entered the namespaces, and its PID 1.
    family = [starter, *_descendants(starter)]
    assert len(family) == 3, family
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [pid for pid in family if _alive(pid)]
        if not alive:
            # ...and not because the socket closed: its other holder still lives.
            assert _alive(holder)
            os.kill(holder, signal.SIGKILL)
            return
        time.sleep(0.1)
    pytest.fail(f"the starter or its standby outlived the guard by 10 s: {alive}")


def _descendants(pid: int) -> list[int]:
    deadline = time.monotonic() + 5
    while True:  # the standby forks its PID 1 right after it starts
        found: list[int] = []
        todo = [pid]
        while todo:
            p = todo.pop()
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(k) for k in (task / "children").read_text().split()]
                found += kids
                todo += kids
        if len(found) >= 2 or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_calls_from_several_threads_run_side_by_side(tmp_path: Path) -> None:
    """The starter makes the next standby as soon as one takes a request: four one-second
    commands from four threads end together, each with its own output and writes."""
    (tmp_path / "r").mkdir()
    results: dict[int, object] = {}

    def one(i: int) -> None:
        for n in ("u", "w"):
            (tmp_path / f"{n}{i}").mkdir()
        layer = Overlay(str(tmp_path / "r"), str(tmp_path / f"u{i}"), str(tmp_path / f"w{i}"))
        results[i] = run_contained(f"sleep 1; echo {i} | tee f", [layer], cwd=str(tmp_path / "r"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    for i in range(4):
        res = results[i]
        assert isinstance(res, sandbox.ContainedRun) and res.exit_code == 0
        assert res.stdout == f"{i}\n".encode()
        assert (tmp_path / f"u{i}" / "f").read_text() == f"{i}\n"
    assert not (tmp_path / "r" / "f").exists()
    assert took < 3.0, f"four 1 s commands took {took:.1f} s: they ran one after another"
