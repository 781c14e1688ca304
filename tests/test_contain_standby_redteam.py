"""Routes an adversarial review of the standby starter found, pinned (real bash, real
namespaces): each must end with no harm on disk, nothing left running and the guard working."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.contain import ContainedShell, Limits, Transaction, run_contained, sandbox
from guard.exceptions import CallBlocked
from guard.testing import MemorySink
from tests.conftest import AGENT, World
from tests.test_contain_sandbox import in_private_user_namespace

W = "hosts/decom-01/data/agent_2_weights.safetensors"


def _hidden_python(body: str) -> str:
    """``python3 -c`` running ``body`` the analyser cannot read (zlib and base64)."""
    packed = base64.b64encode(zlib.compress(body.encode())).decode()
    return f"python3 -c \"import zlib,base64;exec(zlib.decompress(base64.b64decode('{packed}')))\""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Call B: waits on an abstract unix socket for a descriptor from another call, waits until
# that call's file was committed (a commit renames the upper file: its ctime changes), then
# writes the peer's weights through the descriptor, into what is by then the real file.
HOLDER = r"""
import socket, os, time, glob
data = open(glob.glob('hosts/*/data/agent_2_*')[0], 'rb').read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0peerguard-red16-fd'); s.listen(1); s.settimeout(5)
try:
    conn, _ = s.accept()
except OSError:
    raise SystemExit('no one connected')
_, fds, _, _ = socket.recv_fds(conn, 16, 1)
fd = fds[0]
c0 = os.fstat(fd).st_ctime_ns
end = time.time() + 8
while os.fstat(fd).st_ctime_ns == c0 and time.time() < end:
    time.sleep(0.01)
time.sleep(0.2)
os.pwrite(fd, data, 0)
print('wrote', len(data))
"""

# Call A: leaves a harmless new file and hands a descriptor of it to call B.
SENDER = r"""
import socket, os, time
fd = os.open('scratch/note.txt', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'harmless note\n')
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
end = time.time() + 2.5
while True:
    try:
        s.connect('\0peerguard-red16-fd')
        break
    except OSError:
        if time.time() > end:
            raise SystemExit('no holder')
        time.sleep(0.05)
socket.send_fds(s, [b'F'], [fd])
print('sent')
"""


@pytest.fixture(params=["scopes", "no-scopes"])
def scopes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """With the kernel's Landlock scopes (when it has them), and with what stands in for them
    where it has not (a network namespace per offline call, calls given the network one at a
    time): the starters are restarted to read the setting."""
    if request.param == "no-scopes":
        monkeypatch.setenv("PEERGUARD_SANDBOX_SCOPES", "off")
    for zygote in (sandbox._OFFLINE, sandbox._ONLINE):
        zygote.close()
    sandbox._scoped.cache_clear()
    yield request.param
    monkeypatch.undo()
    for zygote in (sandbox._OFFLINE, sandbox._ONLINE):
        zygote.close()
    sandbox._scoped.cache_clear()


def test_a_descriptor_handed_to_another_call_cannot_write_after_the_commit(
    world: World, scopes: str
) -> None:
    """Two calls at once (two threads of one agent) share no channel: a descriptor one call
    hands the other over an abstract unix socket would let the second write the peer's weights
    into the first's file after the guard judged it harmless and committed it (a commit is a
    rename of the very inode the descriptor writes to)."""
    shell = ContainedShell(world.guard(sinks=[MemorySink()]), limits=Limits(timeout=20))
    results: dict[str, object] = {}

    def holder() -> None:
        try:
            results["b"] = shell.run(_hidden_python(HOLDER), agent=AGENT)
        except CallBlocked as exc:
            results["b"] = exc

    t = threading.Thread(target=holder)
    t.start()
    time.sleep(1.0)  # B is listening
    with contextlib.suppress(CallBlocked):
        results["a"] = shell.run(_hidden_python(SENDER), agent=AGENT)
    t.join(30)
    assert not t.is_alive()
    note = world.root / "scratch/note.txt"
    assert not note.exists() or _digest(note) != _digest(world.root / W), results


def test_a_descriptor_handed_between_calls_given_the_network_cannot_write_after_the_commit(
    tmp_path: Path, scopes: str
) -> None:
    """The same with two calls given the network (they share the machine's network namespace,
    so its abstract unix sockets): the first call's run is judged, sealed and committed while
    the second still runs; the second must not get a descriptor of the first's file."""
    root = tmp_path / "r"
    (root / "hosts/decom-01/data").mkdir(parents=True)
    (root / "scratch").mkdir()
    weights = root / "hosts/decom-01/data/agent_2_weights.safetensors"
    weights.write_bytes(bytes(range(256)) * 64)
    state = str(tmp_path / "state")
    tx_b, tx_a = Transaction(state, [str(root)]), Transaction(state, [str(root)])
    out: dict[str, object] = {}

    def holder() -> None:
        out["b"] = run_contained(_hidden_python(HOLDER), tx_b.layers, cwd=str(root),
                                 network=True, limits=Limits(timeout=20))  # fmt: skip

    t = threading.Thread(target=holder)
    t.start()
    time.sleep(1.0)
    out["a"] = run_contained(_hidden_python(SENDER), tx_a.layers, cwd=str(root), network=True,
                             limits=Limits(timeout=20))  # fmt: skip
    tx_a.seal()  # judged: a harmless new note
    assert (Path(tx_a.layers[0].upper) / "scratch/note.txt").read_bytes() == b"harmless note\n"
    tx_a.commit()
    t.join(30)
    tx_b.discard(wait=True)
    note = root / "scratch/note.txt"
    assert note.read_bytes() == b"harmless note\n", out


def test_the_machines_kernel_settings_are_not_writable(tree_root: Path) -> None:
    """A guard running as root runs commands as the machine's user 0 (inside its own user
    namespace): /proc/sys and the other machine-wide files of /proc check only that user, so
    they must be read-only to the command (else kernel.core_pattern or kernel.modprobe run a
    program as the machine's root, outside every namespace). Nothing is written here: the
    files are only opened for writing and closed."""
    tx = Transaction(str(tree_root.parent / "state"), [str(tree_root)])
    probe_files = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/modprobe",
        "/proc/sys/vm/drop_caches",
        "/proc/irq/default_smp_affinity",
        "/proc/sysrq-trigger",
    ]
    opens = "; ".join(f"{{ true; }} 3>>{f} 2>/dev/null && echo open: {f}" for f in probe_files)
    # A /proc of its own, mounted afresh in namespaces the command makes, is no way round.
    nested = f"unshare -Urmp --fork --mount-proc bash -c '{opens}' 2>/dev/null"
    res = run_contained(f"{opens}; {nested}; true", tx.layers, cwd=str(tree_root))
    tx.discard(wait=True)
    assert res.exit_code == 0
    assert res.stdout == b"", res.stdout.decode()


@pytest.fixture
def tree_root(tmp_path: Path) -> Path:
    root = tmp_path / "r"
    root.mkdir()
    return root


_HOG_WORLD = r'''
import os, tempfile, threading, time
with open("/proc/sys/user/max_user_namespaces", "w") as fh:
    fh.write("12")  # this private user namespace's own limit, not the machine's
from guard.contain import ContainmentError, Limits, Overlay, run_contained
d = tempfile.mkdtemp()
r = os.path.join(d, "r")
os.mkdir(r)
uppers = []
def layer():
    u, w = os.path.join(d, f"u{len(uppers)}"), os.path.join(d, f"w{len(uppers)}")
    os.mkdir(u); os.mkdir(w); uppers.append(u)
    return [Overlay(r, u, w)]
HOG = """python3 -c "
import os, ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
made = 0
while made < 64:
    rd, wr = os.pipe()
    if os.fork() == 0:
        ok = libc.unshare(0x10000000) == 0
        os.write(wr, b'1' if ok else b'0')
        if ok:
            time.sleep(60)
        os._exit(0)
    if os.read(rd, 1) != b'1':
        break
    made += 1
print('held', made, flush=True)
time.sleep(2)
" """
out = {}
def hog():
    out["hog"] = run_contained(HOG, layer(), cwd=r, limits=Limits(timeout=30)).stdout.decode()
t = threading.Thread(target=hog)
t.start()
time.sleep(1.5)
for i in range(3):
    try:
        print("during", run_contained(f"touch during{i}", layer(), cwd=r).exit_code)
    except ContainmentError as exc:
        print("during refused:", "No space left on device" in str(exc))
t.join()
print("hog", out["hog"].strip())
time.sleep(0.5)
for i in range(2):
    try:
        print("after", run_contained(f"touch after{i}", layer(), cwd=r).exit_code)
    except ContainmentError as exc:
        print("after refused:", exc)
print("real:", sorted(os.listdir(r)))
print("kept:", sorted(n for u in uppers for n in os.listdir(u)))
'''


def test_a_command_that_holds_every_namespace_fails_others_closed_then_not_at_all(
    tmp_path: Path,
) -> None:
    """A command that takes every user namespace its limit allows (in a private user namespace
    with a low limit, so the machine's own is untouched) makes the calls during it fail closed,
    saying why, with nothing run outside; the first call after it ends works (the standby made
    during it tries again when its request comes, rather than answering with a stale error)."""
    out = in_private_user_namespace(_HOG_WORLD, timeout=120)
    lines = out.stdout.splitlines()
    during = [ln for ln in lines if ln.startswith("during")]
    assert "during refused: True" in during, out  # the limit was reached: it failed closed
    assert all(ln in ("during 0", "during refused: True") for ln in during), out
    assert any(ln.startswith("hog held ") for ln in lines), out
    assert [ln for ln in lines if ln.startswith("after")] == ["after 0", "after 0"], out
    assert "real: []" in lines, out
    kept = next(ln for ln in lines if ln.startswith("kept:"))
    ran = [n for n in ("during0", "during1", "during2") if n in kept]
    assert len(ran) == during.count("during 0"), out  # only the calls that ran wrote
