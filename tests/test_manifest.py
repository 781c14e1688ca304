"""Manifests: what they record, the stat cache, signatures, and what diff reports."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard import manifest
from guard.exceptions import ConfigError, IntegrityError
from guard.manifest import CHUNK, Manifest, snapshot
from guard.manifestdiff import diff, find_by_hash
from guard.signing import generate_keypair


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A small model store: weights, a config, an evaluation, nested folders."""
    root = tmp_path / "store"
    (root / "agent-2").mkdir(parents=True)
    (root / "agent-2/weights.safetensors").write_bytes(bytes(range(256)) * 64)
    (root / "agent-2/config.yaml").write_text("shutdown_enabled: true\n")
    (root / "agent-2/evals").mkdir()
    (root / "agent-2/evals/report.json").write_text('{"score": 0.6}\n')
    (root / "empty.txt").write_bytes(b"")
    return root.resolve()


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust entries however fresh, so a test need not wait out the racy-clean window."""
    monkeypatch.setattr(manifest, "RACY_WINDOW_NS", 0)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the snapshot reads to hash, in order."""
    calls: list[str] = []
    real = manifest._hash_file

    def counting(path: str, new: Any, buf: Any) -> Any:
        calls.append(path)
        return real(path, new, buf)

    monkeypatch.setattr(manifest, "_hash_file", counting)
    return calls


def test_snapshot_records_stat_data_and_content_hash(store: Path) -> None:
    """Every regular file gets its absolute path, lstat fields and SHA-256 of its bytes."""
    m = snapshot([store])
    weights = store / "agent-2/weights.safetensors"
    e = m.entries[str(weights)]
    st = os.lstat(weights)
    assert e.kind == "file"
    assert e.digest == sha(weights.read_bytes())
    assert (e.size, e.mtime_ns, e.ctime_ns, e.inode, e.dev, e.mode, e.nlink) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
        st.st_mode,
        st.st_nlink,
    )
    assert set(m.entries) == {
        str(store / p)
        for p in [
            "agent-2/weights.safetensors",
            "agent-2/config.yaml",
            "agent-2/evals/report.json",
            "empty.txt",
        ]
    }
    assert m.entries[str(store / "empty.txt")].digest == sha(b"")
    assert m.roots == [str(store)] and m.algorithm == "sha256"


def test_symlinks_are_recorded_with_target_and_never_followed(store: Path, tmp_path: Path) -> None:
    """A symlink is an entry with its target and no hash; what it points to is not walked."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"elsewhere")
    (store / "link-to-dir").symlink_to(outside)
    (store / "link-to-file").symlink_to(store / "agent-2/config.yaml")
    m = snapshot([store])
    link = m.entries[str(store / "link-to-dir")]
    assert link.kind == "symlink" and link.target == str(outside) and link.digest is None
    assert m.entries[str(store / "link-to-file")].target == str(store / "agent-2/config.yaml")
    assert not any("secret.bin" in p for p in m.entries)


def test_fifo_is_recorded_without_being_opened(store: Path) -> None:
    """A fifo under a root is listed as 'other' and the snapshot does not block on it."""
    os.mkfifo(store / "pipe")
    e = snapshot([store]).entries[str(store / "pipe")]
    assert e.kind == "other" and e.digest is None


def test_files_bigger_than_one_chunk_hash_correctly_at_any_worker_count(tmp_path: Path) -> None:
    """Multi-chunk and odd-sized files hash to hashlib's digest with one thread or many."""
    root = tmp_path / "r"
    root.mkdir()
    blobs = {f"f{i}.bin": os.urandom(size) for i, size in enumerate([0, 1, CHUNK, 3 * CHUNK + 17])}
    for i in range(40):
        blobs[f"small{i}.bin"] = os.urandom(100 + i * 997)
    for name, data in blobs.items():
        (root / name).write_bytes(data)
    for workers in (1, 4):
        m = snapshot([root], workers=workers)
        for name, data in blobs.items():
            assert m.entries[str(root.resolve() / name)].digest == sha(data)


def test_stat_cache_skips_rehash_of_unchanged_files(
    store: Path, no_racy_window: None, hash_calls: list[str]
) -> None:
    """A re-snapshot with the previous manifest reads no unchanged file and reuses entries."""
    first = snapshot([store])
    assert len(hash_calls) == 4
    hash_calls.clear()
    second = snapshot([store], previous=first)
    assert hash_calls == []
    assert second.entries == first.entries
    assert not diff(first, second).changed


def test_stat_cache_rehashes_only_what_changed(
    store: Path, no_racy_window: None, hash_calls: list[str]
) -> None:
    """Appending to one file re-hashes that file alone, and diff reports it modified."""
    first = snapshot([store])
    hash_calls.clear()
    config = store / "agent-2/config.yaml"
    with open(config, "a") as f:
        f.write("extra: 1\n")
    second = snapshot([store], previous=first)
    assert hash_calls == [str(config)]
    assert diff(first, second).modified == [str(config)]


def test_forged_mtime_is_caught_by_ctime(
    store: Path, no_racy_window: None, hash_calls: list[str]
) -> None:
    """Same-size rewrite with mtime forged back by os.utime is re-hashed: ctime moved.

    This is as far as a stat cache can see: os.utime sets mtime and atime but the kernel sets
    ctime itself, so only a clock change or raw device write can hide a rewrite from it.
    """
    first = snapshot([store])
    hash_calls.clear()
    config = store / "agent-2/config.yaml"
    st = os.stat(config)
    config.write_text("shutdown_enabled: fals\n"[: st.st_size])
    assert config.stat().st_size == st.st_size
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert config.stat().st_mtime_ns == st.st_mtime_ns
    second = snapshot([store], previous=first)
    assert hash_calls == [str(config)]
    assert diff(first, second).modified == [str(config)]


def test_stat_cache_trusts_a_matching_stat_tuple_known_limit(
    store: Path, no_racy_window: None
) -> None:
    """Known limit: a change invisible to (size, mtime, ctime, inode) is missed until a full hash.

    Simulated by editing the previous manifest's digest (what a ctime reset by a clock change
    would amount to). It is also why a manifest used as a cache must be read with its
    signature checked.
    """
    first = snapshot([store])
    config = str(store / "agent-2/config.yaml")
    poisoned = first.model_copy(
        update={
            "entries": {
                **first.entries,
                config: first.entries[config].model_copy(update={"digest": "0" * 64}),
            }
        }
    )
    cached = snapshot([store], previous=poisoned)
    assert cached.entries[config].digest == "0" * 64
    assert snapshot([store]).entries[config].digest == first.entries[config].digest


def test_racily_clean_entries_are_rehashed(store: Path, hash_calls: list[str]) -> None:
    """Files stamped within the racy window of the snapshot that hashed them are read again."""
    first = snapshot([store])  # the fixture just wrote every file: all of them are racy
    hash_calls.clear()
    snapshot([store], previous=first)
    assert len(hash_calls) == 4


def test_previous_with_another_algorithm_is_ignored(
    store: Path, no_racy_window: None, hash_calls: list[str]
) -> None:
    """A sha512 snapshot does not take hashes from a sha256 manifest."""
    first = snapshot([store])
    hash_calls.clear()
    second = snapshot([store], previous=first, algorithm="sha512")
    assert len(hash_calls) == 4
    weights = store / "agent-2/weights.safetensors"
    assert second.entries[str(weights)].digest == hashlib.sha512(weights.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match="cannot compare"):
        diff(first, second)


def test_unknown_or_unavailable_algorithm_raises_config_error(store: Path) -> None:
    """An unknown algorithm fails; blake3 works only with the blake3 package installed."""
    with pytest.raises(ConfigError, match="unknown hash algorithm"):
        snapshot([store], algorithm="md5")
    if importlib.util.find_spec("blake3") is None:
        with pytest.raises(ConfigError, match="pip install blake3"):
            snapshot([store], algorithm="blake3")
    else:
        assert snapshot([store], algorithm="blake3").algorithm == "blake3"


def test_bad_roots_and_workers_raise_config_error(tmp_path: Path) -> None:
    """A missing root, no root at all, or zero workers is refused before any work."""
    with pytest.raises(ConfigError, match="does not exist"):
        snapshot([tmp_path / "missing"])
    with pytest.raises(ConfigError):
        snapshot([])
    with pytest.raises(ConfigError, match="workers"):
        snapshot([tmp_path], workers=0)


def test_single_file_root_and_nested_roots(store: Path) -> None:
    """A file can be a root; a root inside another root is walked once."""
    weights = store / "agent-2/weights.safetensors"
    single = snapshot([weights])
    assert list(single.entries) == [str(weights)]
    nested = snapshot([store, store / "agent-2"])
    assert nested.roots == [str(store)]
    assert len(nested.entries) == 4


def test_unreadable_file_and_directory_are_recorded_not_skipped(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be read and a folder that cannot be listed appear with an error."""
    evals = str(store / "agent-2/evals")
    config = str(store / "agent-2/config.yaml")
    real_scandir = os.scandir
    real_hash = manifest._hash_file

    def scandir(path: Any) -> Any:
        if os.fspath(path) == evals:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    def hash_file(path: str, new: Any, buf: Any) -> Any:
        if path == config:
            raise PermissionError(13, "Permission denied")
        return real_hash(path, new, buf)

    # Simulated: the tests may run as root, which no permission bit stops.
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(manifest, "_hash_file", hash_file)
    m = snapshot([store])
    assert m.entries[evals].kind == "dir" and m.entries[evals].error == "PermissionError"
    assert m.entries[config].digest is None
    assert "PermissionError" in (m.entries[config].error or "")


def test_file_changing_while_hashed_is_flagged(
    store: Path, monkeypatch: pytest.MonkeyPatch, no_racy_window: None
) -> None:
    """A file that keeps changing during the read is marked, and never served from the cache."""
    target = store / "agent-2/weights.safetensors"

    class Meddler:
        """A sha256 that appends to the weights file every time it is fed: a live writer."""

        def __init__(self) -> None:
            self.h = hashlib.sha256()

        def update(self, data: Any) -> None:
            self.h.update(data)
            with open(target, "ab") as f:
                f.write(b"x")

        def hexdigest(self) -> str:
            return self.h.hexdigest()

    def factory(algorithm: str) -> Callable[[], Meddler]:
        return Meddler

    monkeypatch.setattr(manifest, "hasher_factory", factory)
    m = snapshot([store])
    e = m.entries[str(target)]
    assert e.error == "changed while being hashed"
    assert str(target) not in m._stat_index().keys


def test_signed_manifest_round_trips(store: Path, tmp_path: Path) -> None:
    """A manifest written with a key reads back equal with the public key."""
    private, public = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    m = snapshot([store])
    out = tmp_path / "manifest.json"
    m.write(out, key=private)
    assert (tmp_path / "manifest.json.sig").exists()
    back = Manifest.read(out, public_key=public)
    assert back.entries == m.entries
    assert back.started_ns == m.started_ns


def test_tampered_manifest_fails_signature_check(store: Path, tmp_path: Path) -> None:
    """Changing one digest in a signed manifest raises IntegrityError on read."""
    private, public = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    out = tmp_path / "manifest.json"
    snapshot([store]).write(out, key=private)
    data = json.loads(out.read_text())
    first = next(iter(data["entries"]))
    data["entries"][first]["digest"] = "f" * 64
    out.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="altered"):
        Manifest.read(out, public_key=public)
    assert Manifest.read(out).entries[first].digest == "f" * 64  # unsigned read trusts it


def test_missing_or_foreign_signature_fails(store: Path, tmp_path: Path) -> None:
    """No .sig file, a garbage one, or one made by another key all raise IntegrityError."""
    _, public = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    other, _ = generate_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    out = tmp_path / "manifest.json"
    m = snapshot([store])
    m.write(out)
    with pytest.raises(IntegrityError, match="no signature"):
        Manifest.read(out, public_key=public)
    m.write(out, key=other)
    with pytest.raises(IntegrityError):
        Manifest.read(out, public_key=public)
    (tmp_path / "manifest.json.sig").write_text("@@@")
    with pytest.raises(IntegrityError):
        Manifest.read(out, public_key=public)


def test_unsigned_write_removes_stale_signature(store: Path, tmp_path: Path) -> None:
    """Rewriting without a key drops the old .sig instead of leaving a mismatched one."""
    private, _ = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    out = tmp_path / "manifest.json"
    snapshot([store]).write(out, key=private)
    snapshot([store]).write(out)
    assert not (tmp_path / "manifest.json.sig").exists()


def test_reading_garbage_or_missing_manifest(tmp_path: Path) -> None:
    """A file that is not a manifest is an IntegrityError; no file at all is a ConfigError."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": 3}')
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        Manifest.read(bad)
    with pytest.raises(ConfigError):
        Manifest.read(tmp_path / "missing.json")


def test_cache_from_a_manifest_read_back_from_disk(
    store: Path, tmp_path: Path, no_racy_window: None, hash_calls: list[str]
) -> None:
    """A manifest loaded from JSON serves as a stat cache just like the in-memory one."""
    out = tmp_path / "m.json"
    snapshot([store]).write(out)
    hash_calls.clear()
    snapshot([store], previous=Manifest.read(out))
    assert hash_calls == []


def test_diff_names_every_kind_of_change(store: Path, tmp_path: Path) -> None:
    """Added, removed, modified, metadata, moved, copied and hard-linked files are told apart."""
    before = snapshot([store])
    a2 = store / "agent-2"
    (a2 / "new.txt").write_text("hello\n")
    (a2 / "config.yaml").write_text("shutdown_enabled: false\n")
    os.chmod(a2 / "evals/report.json", 0o600)
    os.rename(a2 / "weights.safetensors", store / "weights.moved")
    shutil.copyfile(store / "weights.moved", store / "weights.copy")
    os.link(store / "weights.moved", tmp_path / "exfil.bin")  # outside the root
    os.unlink(store / "empty.txt")
    after = snapshot([store])
    d = diff(before, after)
    assert d.added == [
        str(a2 / "new.txt"),
        str(store / "weights.copy"),
        str(store / "weights.moved"),
    ]
    assert d.removed == [str(a2 / "weights.safetensors"), str(store / "empty.txt")]
    assert d.modified == [str(a2 / "config.yaml")]
    assert [(c.path, c.fields) for c in d.metadata] == [
        (str(a2 / "evals/report.json"), ["mode", "ctime_ns"])
    ]
    # The rename kept its inode, so the move is told from the copy made beside it.
    assert [(m.source, m.dest) for m in d.moved] == [
        (str(a2 / "weights.safetensors"), str(store / "weights.moved"))
    ]
    assert [(c.dest, c.sources) for c in d.copied] == [
        (str(store / "weights.copy"), [str(a2 / "weights.safetensors")])
    ]
    assert d.links_gained == []  # the linked inode now lives at a new path: see d.moved
    assert d.changed


def test_hard_link_from_outside_raises_link_count(store: Path, tmp_path: Path) -> None:
    """A hard link made outside the root shows as links_gained on the linked file."""
    before = snapshot([store])
    weights = store / "agent-2/weights.safetensors"
    os.link(weights, tmp_path / "stolen.bin")
    after = snapshot([store], previous=before)
    d = diff(before, after)
    assert d.links_gained == [str(weights)]
    assert d.modified == [] and d.added == []


def test_symlink_retarget_is_a_modification(store: Path) -> None:
    """Pointing a symlink elsewhere is reported as modified, not as a metadata change."""
    link = store / "current"
    link.symlink_to("agent-2/weights.safetensors")
    before = snapshot([store])
    link.unlink()
    link.symlink_to("agent-2/config.yaml")
    assert diff(before, snapshot([store])).modified == [str(link)]


def test_find_by_hash_locates_every_copy(store: Path) -> None:
    """find_by_hash returns every path holding the given content, case-insensitively."""
    data = (store / "agent-2/weights.safetensors").read_bytes()
    (store / "backup.bin").write_bytes(data)
    m = snapshot([store])
    assert find_by_hash(m, sha(data).upper()) == [
        str(store / "agent-2/weights.safetensors"),
        str(store / "backup.bin"),
    ]
    assert find_by_hash(m, "0" * 64) == []


def test_file_swapped_for_symlink_before_hashing_is_not_followed(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file replaced by a symlink between the walk and the read is recorded as the symlink."""
    config = store / "agent-2/config.yaml"
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the root\n")
    real_hash = manifest._hash_file

    def swap_then_hash(path: str, new: Any, buf: Any) -> Any:
        if path == str(config):
            config.unlink()
            config.symlink_to(secret)
        return real_hash(path, new, buf)

    monkeypatch.setattr(manifest, "_hash_file", swap_then_hash)
    e = snapshot([store], workers=1).entries[str(config)]
    assert e.kind == "symlink" and e.target == str(secret) and e.digest is None


def test_cached_resnapshot_equals_a_full_one_after_changes(
    store: Path, tmp_path: Path, no_racy_window: None
) -> None:
    """After deletes, additions, rewrites, chmod and a new hard link, the cache changes nothing."""
    first = snapshot([store])
    snapshot([store], previous=first)  # and a second generation sharing the first's cache
    (store / "empty.txt").unlink()
    (store / "agent-2/new.bin").write_bytes(b"new")
    (store / "agent-2/evals/report.json").write_text('{"score": 0.9}\n')
    os.chmod(store / "agent-2/config.yaml", 0o600)
    os.link(store / "agent-2/weights.safetensors", tmp_path / "extra-link")
    (store / "link").symlink_to("agent-2")
    cached = snapshot([store], previous=first)
    full = snapshot([store])
    assert cached.entries == full.entries
    again = snapshot([store], previous=cached)
    assert again.entries == full.entries
