"""Red-team findings against the audit log: each test pins a hole an agent owning the log's
folder (but not the key, nor the witness folder) could use, and fails until it is closed."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guard.audit import AuditLog
from guard.auditcheck import verify_log
from guard.auditrecord import GENESIS, canonical
from guard.auditset import verify_logs
from guard.exceptions import IntegrityError
from guard.signing import PrivateKey, PublicKey

ROOT = Path(__file__).resolve().parent.parent


def sealed_log(
    path: Path, key: PrivateKey, witness: Path | None, n: int = 7, every: int = 3
) -> Path:
    with AuditLog(path, key, checkpoint_every=every, witness=witness) as log:
        for i in range(n):
            log.append("decision", {"action": "deny", "i": i})
    return path


def with_hash(body: bytes) -> bytes:
    """A stored line for ``body`` (exact bytes, whatever their form), its hash recomputed."""
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n'


def forged(seq: int, prev: str, payload: dict[str, Any], kind: str = "approval") -> bytes:
    """A well-formed record anyone can write: canonical, chained, hash recomputed."""
    body = {
        "key": None,
        "kind": kind,
        "payload": payload,
        "prev": prev,
        "seq": seq,
        "time": "2026-01-01T00:00:00.000000+00:00",
    }
    return with_hash(canonical(body))


def head_of(path: Path) -> tuple[int, str]:
    last = json.loads(path.read_bytes().splitlines()[-1])
    return last["seq"], last["hash"]


def cli_in_child(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``peerguard <args>`` in a child limited to 1 GiB of memory and ``timeout`` seconds."""

    def limit() -> None:  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "guard.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        check=False,
    )


def verify_cli(
    log: Path, keydir: Path, *extra: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    args = ["audit", "verify", str(log), "--pubkey", str(keydir / "audit.pub"), *extra]
    return cli_in_child(args, timeout=timeout)


# --- the verifier: records that should not verify ------------------------------------------


def test_a_record_with_a_negative_seq_before_genesis_fails(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A record at seq -1 put before the first record is a forged insertion, not part of a
    log that verifies."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    fake = forged(-1, GENESIS, {"approved": True, "reason": "approved by the operator"})
    log.write_bytes(fake + log.read_bytes())
    report = verify_log(log, keys[1], witness=vault / "w.witness")
    assert not report.ok


def test_a_record_with_a_huge_seq_gives_a_report_not_a_hang(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey], tmp_path: Path
) -> None:
    """One appended record with seq 10**15 makes verify report the log tampered, quickly and
    without running out of memory."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    with log.open("ab") as f:
        f.write(forged(10**15, head_of(log)[1], {"x": 1}))
    done = verify_cli(log, tmp_path / "keys", "--witness", str(vault / "w.witness"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "TAMPERED" in done.stdout


def test_a_folder_in_place_of_the_log_is_a_finding_not_a_crash(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A directory where the log was is reported as a problem, not raised as OSError."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    log.unlink()
    log.mkdir()
    report = verify_log(log, keys[1], witness=vault / "w.witness")
    assert not report.ok


def test_a_folder_in_place_of_the_checkpoint_file_is_a_finding_not_a_crash(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A directory where ``<log>.checkpoint`` was is reported, not raised as OSError."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    side = logs / "w.jsonl.checkpoint"
    side.unlink()
    side.mkdir()
    report = verify_log(log, keys[1], witness=vault / "w.witness")
    assert not report.ok
    assert "checkpoint-file" in {p.kind for p in report.problems}


def test_a_folder_named_like_a_log_in_a_log_folder_is_a_finding_not_a_crash(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """``verify_logs`` over a folder holding a directory called ``x.jsonl`` reports it."""
    sealed_log(logs / "w.jsonl", keys[0], vault / "w.jsonl.witness")
    (logs / "x.jsonl").mkdir()
    result = verify_logs([logs], keys[1], witness=vault)
    assert not result.ok


@pytest.mark.parametrize("which", ["log", "checkpoint"])
def test_a_fifo_in_place_of_the_log_or_its_checkpoint_file_does_not_hang_verify(
    which: str, logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey], tmp_path: Path
) -> None:
    """A named pipe with no writer, where the log or its checkpoint file was, is reported
    as tampering; verify does not block forever opening it."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    target = log if which == "log" else logs / "w.jsonl.checkpoint"
    target.unlink()
    os.mkfifo(target)
    done = verify_cli(log, tmp_path / "keys", "--witness", str(vault / "w.witness"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("which", ["log", "checkpoint"])
def test_a_huge_sparse_log_or_checkpoint_file_is_a_finding_not_a_memory_error(
    which: str, logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey], tmp_path: Path
) -> None:
    """A 10 GB file of zero bytes (sparse: costs the agent nothing) in place of the log or
    its checkpoint file is reported as tampering by a verifier with 1 GiB of memory."""
    log = sealed_log(logs / "w.jsonl", keys[0], vault / "w.witness")
    target = log if which == "log" else logs / "w.jsonl.checkpoint"
    with target.open("r+b") as f:
        f.truncate(10 << 30)
    done = verify_cli(log, tmp_path / "keys", "--witness", str(vault / "w.witness"), timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "TAMPERED" in done.stdout


def test_a_log_deleted_from_a_folder_of_logs_fails_against_the_witness_folder(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Deleting (or renaming away) one writer's log with its checkpoint file does not leave
    a folder of logs that verifies: the witness folder still names it."""
    sealed_log(logs / "a.jsonl", keys[0], vault / "a.jsonl.witness")
    sealed_log(logs / "b.jsonl", keys[0], vault / "b.jsonl.witness")
    assert verify_logs([logs], keys[1], witness=vault).ok
    (logs / "b.jsonl").rename(logs / "b.jsonl.old")
    (logs / "b.jsonl.checkpoint").unlink()
    assert not verify_logs([logs], keys[1], witness=vault).ok


def test_the_last_checkpoint_cannot_be_rewritten_with_odd_fields(
    logs: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A signed checkpoint whose count is ``true`` instead of 1 (Python: True == 1; jq: a
    boolean) or which carries extra payload fields does not verify; without a witness the
    last checkpoint's bytes are otherwise covered only by its signature of (count, head)."""
    log = logs / "w.jsonl"
    sealed_log(log, keys[0], None, n=1, every=1)  # seq 0 event, seq 1 checkpoint
    for change in ({"count": True}, {"note": "the operator approved every call above"}):
        lines = log.read_bytes().splitlines(keepends=True)
        last = json.loads(lines[-1])
        body = {k: v for k, v in last.items() if k != "hash"}
        body["payload"] = {**body["payload"], **change}
        line = with_hash(canonical(body))
        log.write_bytes(b"".join(lines[:-1]) + line)
        (logs / "w.jsonl.checkpoint").write_bytes(line)
        report = verify_log(log, keys[1])
        assert not report.ok, change


# --- the writer: chaining onto content it did not write ------------------------------------


def test_the_writer_does_not_chain_onto_its_own_tail_rewritten_in_place(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """An agent who rewrites the writer's unsealed records in place (same file, chain
    recomputed, one record appended) does not get them sealed: the writer refuses to go on."""
    log_path = logs / "w.jsonl"
    witness = vault / "w.witness"
    log = AuditLog(log_path, keys[0], checkpoint_every=100, witness=witness)
    log.append("decision", {"action": "deny", "tool": "rm"})
    log.append("decision", {"action": "deny", "tool": "scp"})
    # Rewrite both records (deny -> allow, padded to keep offsets) and append one more.
    prev, data = GENESIS, b""
    for seq, tool in enumerate(["rm", "scp"]):
        line = forged(seq, prev, {"action": "allow", "tool": tool}, kind="decision")
        prev = json.loads(line)["hash"]
        data += line
    data += forged(2, prev, {"note": "x"}, kind="note")
    with open(log_path, "r+b") as f:
        f.write(data)
    try:
        log.append("decision", {"action": "deny", "tool": "curl"})
        log.close()
    except IntegrityError:
        return  # refused: fine
    report = verify_log(log_path, keys[1], witness=witness)
    assert not report.ok, "the writer sealed a tail the agent rewrote"


def test_a_writer_does_not_seal_a_record_appended_by_someone_without_the_key(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A record the agent appends to a writer's log (well formed, chained to the head) is
    not covered by the writer's next signed checkpoint as if the writer had written it: the
    writer refuses to go on, and the record stays unsealed."""
    log_path = logs / "w.jsonl"
    witness = vault / "w.witness"
    log = AuditLog(log_path, keys[0], checkpoint_every=100, witness=witness)
    log.append("decision", {"action": "deny", "call_id": "c1"})
    seq, head = head_of(log_path)
    with log_path.open("ab") as f:
        f.write(forged(seq + 1, head, {"call_id": "c1", "approved": True}))
    with pytest.raises(IntegrityError, match="did not write"):
        log.append("decision", {"action": "allow", "call_id": "c2"})
    with pytest.raises(IntegrityError, match="did not write"):
        log.close()
    report = verify_log(log_path, keys[1], witness=witness)
    assert not report.ok, "a record the agent wrote verifies as sealed"


def test_a_writer_restarted_on_a_replaced_log_does_not_seal_it(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Between two runs of the writer the agent replaces the whole log (and its checkpoint
    file) with a forged, longer chain; the next writer must not sign it and move the witness
    on to it."""
    log_path = logs / "w.jsonl"
    witness = vault / "w.witness"
    sealed_log(log_path, keys[0], witness, n=5, every=3)
    prev, data = GENESIS, b""
    for seq in range(12):
        line = forged(seq, prev, {"action": "allow", "i": seq}, kind="decision")
        prev = json.loads(line)["hash"]
        data += line
    log_path.unlink()
    (logs / "w.jsonl.checkpoint").unlink()
    log_path.write_bytes(data)
    try:
        with AuditLog(log_path, keys[0], checkpoint_every=3, witness=witness) as log:
            log.append("decision", {"action": "deny", "i": 99})
    except IntegrityError:
        return  # refused: fine
    report = verify_log(log_path, keys[1], witness=witness)
    assert not report.ok, "a forged log was signed and witnessed by the next writer"


# Bytes that Python's json reads as one thing and other readers (jq, strict UTF-8) as another,
# or that decode to the same values as the writer's canonical form but are not it.
ODD_FORMS = ["seq as a string", "seq as a float", "raw lone surrogate", "byte order mark"]


def odd_body(form: str, seq: int, prev: str) -> bytes:
    """A record body at ``seq`` chained to ``prev``, in one of the ``ODD_FORMS``."""
    time = "2026-01-01T00:00:00.000000+00:00"
    body: dict[str, Any] = {
        "key": None,
        "kind": "approval",
        "payload": {"ok": 1},
        "prev": prev,
        "seq": seq,
        "time": time,
    }
    if form == "seq as a string":
        return canonical({**body, "seq": str(seq)})
    if form == "seq as a float":
        return canonical({**body, "seq": float(seq)})
    if form == "byte order mark":
        return b"\xef\xbb\xbf" + canonical(body)
    # jq reads these three bytes as U+FFFD; Python's json (surrogatepass) as U+D800.
    return canonical(body).replace(b'{"ok":1}', b'{"who":"\xed\xa0\x80"}')


@pytest.mark.parametrize("form", ODD_FORMS)
def test_a_record_not_in_canonical_form_never_verifies_even_once_sealed(
    form: str, logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A record whose bytes are not the writer's canonical encoding of what they parse to
    (so two JSON readers may see different content) fails verify, even after a writer chained
    onto it and signed a checkpoint over it."""
    log_path = logs / "w.jsonl"
    witness = vault / "w.witness"
    log = AuditLog(log_path, keys[0], checkpoint_every=100, witness=witness)
    log.append("decision", {"action": "deny"})
    seq, head = head_of(log_path)
    with log_path.open("ab") as f:
        f.write(with_hash(odd_body(form, seq + 1, head)))
    try:
        log.append("decision", {"action": "deny"})
        log.close()
    except IntegrityError:
        pass  # the writer refusing it is fine too
    report = verify_log(log_path, keys[1], witness=witness)
    assert not report.ok


def test_a_gap_record_cannot_subtract_records_lost_elsewhere(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A gap marker claiming a negative loss, or a seq other than its own, is malformed:
    it would hide real gaps from ``report.lost`` and point readers at the wrong record."""
    log_path = logs / "w.jsonl"
    witness = vault / "w.witness"
    log = AuditLog(log_path, keys[0], checkpoint_every=100, witness=witness)
    log.append("decision", {"action": "deny"})
    seq, head = head_of(log_path)
    gap = {"lost": -5, "first": "a", "last": "b", "kinds": {}, "errors": {}, "seq": 0}
    with log_path.open("ab") as f:
        f.write(forged(seq + 1, head, gap, kind="gap"))
    with pytest.raises(IntegrityError, match="did not write"):
        log.append("decision", {"action": "deny"})
    with pytest.raises(IntegrityError, match="did not write"):
        log.close()
    report = verify_log(log_path, keys[1], witness=witness)
    assert report.lost >= 0 and all(g.seq != 0 for g in report.gaps)


# --- the writer: hangs --------------------------------------------------------------------


def test_a_fifo_in_place_of_the_checkpoint_file_does_not_hang_the_writer(
    logs: Path, keys: tuple[PrivateKey, PublicKey], tmp_path: Path
) -> None:
    """A named pipe put where ``<log>.checkpoint`` is does not block the writer's checkpoint
    (holding the log's lock, so every append of every process) forever."""
    log_path = logs / "w.jsonl"
    os.mkfifo(logs / "w.jsonl.checkpoint")
    script = (
        "import sys\n"
        "from guard.audit import AuditLog\n"
        "from guard.signing import load_private_key\n"
        f"key = load_private_key({str(tmp_path / 'keys' / 'audit.pem')!r})\n"
        f"with AuditLog({str(log_path)!r}, key, checkpoint_every=1) as log:\n"
        "    log.append('decision', {'action': 'deny'})\n"
    )
    try:
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, timeout=30, check=False, capture_output=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the writer hung on a FIFO checkpoint file")


# --- reading a set of logs ----------------------------------------------------------------


def test_a_copied_log_is_still_named_with_a_record_put_before_its_first(
    logs: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A copy of a log with one extra record put before its first (seq -1) is still a log
    counted twice, or fails on its own."""
    log = sealed_log(logs / "a.jsonl", keys[0], None)
    shutil.copy(log, logs / "b.jsonl")
    shutil.copy(logs / "a.jsonl.checkpoint", logs / "b.jsonl.checkpoint")
    copy = logs / "b.jsonl"
    copy.write_bytes(forged(-1, GENESIS, {"x": 1}) + copy.read_bytes())
    assert not verify_logs([logs], keys[1]).ok


def test_a_payload_with_int_keys_is_stored_canonical_and_verifies(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """The writer stores what a reader parses back in canonical form ({2:..,10:..} reads as
    {"10":..,"2":..}), so the verifier's canonical-form check never fails an honest record."""
    log_path = logs / "w.jsonl"
    with AuditLog(log_path, keys[0], witness=vault / "w.witness") as log:
        rec = log.append("decision", {"counts": {2: "two", 10: "ten"}})
    assert rec.payload == {"counts": {"10": "ten", "2": "two"}}
    assert verify_log(log_path, keys[1], witness=vault / "w.witness").ok
