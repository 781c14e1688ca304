"""The audit log: chaining, checkpoints, concurrent writers, every kind of tampering, the sink."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from guard.audit import AuditLog, AuditSink
from guard.auditcheck import AuditReport, verify_log
from guard.auditrecord import (
    CHECKPOINT,
    GENESIS,
    AuditRecord,
    canonical,
    checkpoint_statement,
    iter_records,
)
from guard.cli import main as cli_main
from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    PrivateKey,
    PublicKey,
    encode_signature,
    generate_keypair,
    load_private_key,
    sign,
)
from guard.types import Action, Alert, Decision, Severity


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def sealed(log_path: Path, keys: tuple[PrivateKey, PublicKey]) -> Path:
    """A closed, signed log of 23 events with a checkpoint every 5 records."""
    with AuditLog(log_path, keys[0], checkpoint_every=5) as log:
        for i in range(23):
            log.append("event", {"i": i})
    return log_path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stored(record: dict[str, Any]) -> bytes:
    """A record as the writer stores it: canonical body, then its (possibly stale) hash."""
    body = canonical({k: v for k, v in record.items() if k != "hash"})
    return body[:-1] + b',"hash":' + json.dumps(record["hash"]).encode() + b"}"


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records in the stored form, as an attacker who knows the format would."""
    path.write_bytes(b"".join(stored(r) + b"\n" for r in records))


def rehash(record: dict[str, Any]) -> dict[str, Any]:
    """What an attacker without the key can do: make a record's hash match its content."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return {**body, "hash": hashlib.sha256(canonical(body)).hexdigest()}


def kinds(report: AuditReport) -> set[str]:
    return {p.kind for p in report.problems}


def test_records_chain_by_hash_from_genesis(log_path: Path) -> None:
    """Each record's prev is the hash of the one before, and its hash covers its content."""
    log = AuditLog(log_path)
    a = log.append("decision", {"call_id": "c1", "action": "deny"})
    b = log.append("alert", {"call_id": "c1"})
    assert (a.seq, a.prev) == (0, GENESIS)
    assert (b.seq, b.prev) == (1, a.hash)
    stored = list(iter_records(log_path))
    assert [r.hash for r in stored] == [a.hash, b.hash]
    assert all(r.computed_hash() == r.hash for r in stored)
    log.close()


def test_checkpoints_every_n_records_signed_and_mirrored(
    sealed: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A signed checkpoint takes every 5th seq, and the last one is in the .checkpoint file."""
    records = list(iter_records(sealed))
    checkpoints = [r for r in records if r.kind == CHECKPOINT]
    assert [c.seq for c in checkpoints] == [5, 10, 15, 20, 25, 28]
    for c in checkpoints:
        assert c.payload["count"] == c.seq and c.payload["head"] == c.prev
        assert isinstance(c.payload["sig"], str)
    side = AuditRecord.from_line(Path(str(sealed) + ".checkpoint").read_bytes())
    assert side == records[-1] == checkpoints[-1]
    report = verify_log(sealed, keys[1])
    assert report.ok, report.problems
    assert (report.records, report.checkpoints) == (29, 6)
    assert (report.sealed_through, report.unsealed) == (28, 0)


def test_close_adds_one_final_checkpoint(log_path: Path) -> None:
    """close seals a log once; closing again or checkpointing a sealed log adds nothing."""
    log = AuditLog(log_path, checkpoint_every=100)
    log.append("event", {})
    first = log.checkpoint()
    assert first is not None and first.kind == CHECKPOINT
    assert log.checkpoint() == first
    log.close()
    log.close()
    assert len(lines(log_path)) == 2
    with pytest.raises(ConfigError, match="closed"):
        log.append("event", {})


def test_empty_log_has_no_checkpoint(log_path: Path) -> None:
    """Closing a log nothing was written to leaves it empty; it verifies only when an empty
    log is accepted in so many words (deleting every record must not verify)."""
    AuditLog(log_path).close()
    assert log_path.read_bytes() == b""
    assert verify_log(log_path, allow_empty=True).ok
    assert kinds(verify_log(log_path)) == {"empty"}


def test_a_forgery_without_checkpoints_fails_with_a_key(
    sealed: Path, keys: tuple[PrivateKey, PublicKey], tmp_path: Path
) -> None:
    """Re-chain every record with its payload changed, drop every checkpoint and the
    checkpoint file: the chain is whole, but no signature covers a record. With the key that
    is a failure; a tail up to --allow-unsealed is accepted for a log still being written."""
    forged: list[dict[str, Any]] = []
    prev = GENESIS
    for record in lines(sealed):
        if record["kind"] == CHECKPOINT:
            continue
        body = {k: v for k, v in record.items() if k != "hash"}
        body.update(seq=len(forged), prev=prev, payload={"i": -1})
        forged.append(rehash(body))
        prev = forged[-1]["hash"]
    write_lines(sealed, forged)
    Path(str(sealed) + ".checkpoint").unlink()
    assert verify_log(sealed).ok  # without the key, only the chain is checked
    report = verify_log(sealed, keys[1])
    assert kinds(report) == {"unsealed"} and report.unsealed == 23
    assert verify_log(sealed, keys[1], allow_unsealed=23).ok
    pub = str(tmp_path / "keys" / "audit.pub")
    assert cli_main(["audit", "verify", str(sealed), "--pubkey", pub]) == 1
    assert (
        cli_main(["audit", "verify", str(sealed), "--pubkey", pub, "--allow-unsealed", "23"]) == 0
    )


def test_bad_input_is_refused_without_writing(log_path: Path) -> None:
    """A reserved or empty kind, a payload that is not JSON, and bad settings raise ConfigError."""
    log = AuditLog(log_path)
    with pytest.raises(ConfigError):
        log.append(CHECKPOINT, {})
    with pytest.raises(ConfigError):
        log.append("", {})
    with pytest.raises(ConfigError):
        log.append("event", {"x": object()})
    with pytest.raises(ConfigError):
        log.append("event", {"x": float("nan")})
    assert log_path.read_bytes() == b""
    with pytest.raises(ConfigError):
        AuditLog(log_path, checkpoint_every=0)
    log.close()


def test_unsigned_log_verifies_without_key_but_not_with_one(
    log_path: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Checkpoints written without a key pass a keyless check and are named unsigned otherwise."""
    with AuditLog(log_path, checkpoint_every=3) as log:
        for i in range(7):
            log.append("event", {"i": i})
    assert verify_log(log_path).ok
    report = verify_log(log_path, keys[1])
    assert "unsigned-checkpoint" in kinds(report)
    assert report.sealed_through is None


def test_edited_record_is_named(sealed: Path, keys: tuple[PrivateKey, PublicKey]) -> None:
    """Changing a payload value shows as 'edited' at that record's seq."""
    records = lines(sealed)
    records[7]["payload"]["i"] = 999
    write_lines(sealed, records)
    report = verify_log(sealed, keys[1])
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 7)]
    assert report.sealed_through == 5
    with pytest.raises(IntegrityError, match="edited"):
        report.raise_for_problems()


def test_edited_record_with_recomputed_hash_breaks_the_chain(sealed: Path) -> None:
    """Re-hashing the edited record moves the break to the next record's prev."""
    records = lines(sealed)
    records[7]["payload"]["i"] = 999
    records[7] = rehash(records[7])
    write_lines(sealed, records)
    assert [(p.kind, p.seq) for p in verify_log(sealed).problems] == [("chain", 8)]


def test_full_rewrite_is_caught_by_signatures(
    sealed: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Rewriting the whole chain consistently fools the hashes but not the signed checkpoints."""
    records = lines(sealed)
    records[7]["payload"]["i"] = 999
    for i in range(7, len(records)):
        if i > 7:
            records[i]["prev"] = records[i - 1]["hash"]
            if records[i]["kind"] == CHECKPOINT:
                records[i]["payload"]["head"] = records[i]["prev"]
        records[i] = rehash(records[i])
    write_lines(sealed, records)
    keyless = verify_log(sealed)
    assert kinds(keyless) == {"checkpoint-file"}  # the mirrored checkpoint still disagrees
    signed = verify_log(sealed, keys[1])
    assert "forged-signature" in kinds(signed)
    assert signed.sealed_through == 5


def test_deleted_record_is_named(sealed: Path) -> None:
    """Removing one line shows as 'deleted' naming the missing seq."""
    records = lines(sealed)
    del records[12]
    write_lines(sealed, records)
    report = verify_log(sealed)
    assert [(p.kind, p.seq) for p in report.problems] == [("deleted", 12)]
    assert "seq 12" in report.problems[0].message


def test_reordered_records_are_named(sealed: Path) -> None:
    """Swapping two lines shows as 'reordered', not as a deletion."""
    records = lines(sealed)
    records[3], records[4] = records[4], records[3]
    write_lines(sealed, records)
    assert [(p.kind, p.seq) for p in verify_log(sealed).problems] == [("reordered", 3)]


def test_duplicated_and_corrupt_lines_are_named(sealed: Path) -> None:
    """A repeated record is a 'duplicate' and an unparsable line is 'corrupt'."""
    text = sealed.read_text().splitlines(keepends=True)
    text.insert(4, text[2])
    text.insert(9, "this is not json\n")
    sealed.write_text("".join(text))
    report = verify_log(sealed)
    assert kinds(report) == {"duplicate", "corrupt"}
    assert next(p for p in report.problems if p.kind == "corrupt").line == 10


def test_truncated_tail_is_named(sealed: Path, keys: tuple[PrivateKey, PublicKey]) -> None:
    """Cutting records, the last checkpoint included, shows as 'truncated' via the checkpoint file."""
    records = lines(sealed)
    write_lines(sealed, records[:20])  # a clean cut at a record boundary
    report = verify_log(sealed, keys[1])
    assert [p.kind for p in report.problems] == ["truncated"]
    assert "ends at seq 19" in report.problems[0].message
    assert "seq 28" in report.problems[0].message


def test_record_cut_mid_line_is_named(sealed: Path) -> None:
    """A last line without its newline (cut mid-record) shows as 'truncated'."""
    data = sealed.read_bytes()
    sealed.write_bytes(data[:-10])
    assert "truncated" in kinds(verify_log(sealed))


def test_forged_checkpoint_signature_is_named(
    sealed: Path, tmp_path: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A checkpoint re-signed with another key shows as 'forged-signature'."""
    other, _ = generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    records = lines(sealed)
    c = records[10]
    assert c["kind"] == CHECKPOINT
    c["payload"]["sig"] = encode_signature(sign(checkpoint_statement(c["seq"], c["prev"]), other))
    records[10] = rehash(c)
    # ... and the chain after it re-linked, as a thorough forger would.
    for i in range(11, len(records)):
        records[i]["prev"] = records[i - 1]["hash"]
        if records[i]["kind"] == CHECKPOINT:
            records[i]["payload"]["head"] = records[i]["prev"]
        records[i] = rehash(records[i])
    write_lines(sealed, records)
    report = verify_log(sealed, keys[1])
    assert ("forged-signature", 10) in [(p.kind, p.seq) for p in report.problems]
    assert report.sealed_through == 5


def test_checkpoint_with_wrong_count_is_named(sealed: Path) -> None:
    """A checkpoint whose count or head disagrees with its place is a 'bad-checkpoint'."""
    records = lines(sealed)
    records[5]["payload"]["count"] = 50
    records[5] = rehash(records[5])
    records[6]["prev"] = records[5]["hash"]
    records[6] = rehash(records[6])
    write_lines(sealed, records)
    first = verify_log(sealed).problems[0]
    assert (first.kind, first.seq) == ("bad-checkpoint", 5)


def test_missing_checkpoint_file_is_named(sealed: Path) -> None:
    """Deleting the .checkpoint file is reported, since a cut tail would then go unseen."""
    os.unlink(str(sealed) + ".checkpoint")
    assert kinds(verify_log(sealed)) == {"checkpoint-file"}


def test_young_log_without_checkpoint_is_ok_but_unsealed(log_path: Path) -> None:
    """A live log that has not reached its first checkpoint verifies, with every record unsealed."""
    log = AuditLog(log_path)
    for i in range(3):
        log.append("event", {"i": i})
    report = verify_log(log_path)
    assert report.ok and report.sealed_through is None and report.unsealed == 3
    log.close()


def test_deleted_log_with_checkpoint_file_is_truncated(sealed: Path) -> None:
    """A log file removed outright, its checkpoint file left, is reported truncated."""
    os.unlink(sealed)
    assert "truncated" in kinds(verify_log(sealed))


def test_verify_missing_log_raises_config_error(tmp_path: Path) -> None:
    """Verifying a path where no log ever was is a usage error."""
    with pytest.raises(ConfigError):
        verify_log(tmp_path / "nothing.jsonl")


def test_writer_refuses_a_log_that_shrank(log_path: Path) -> None:
    """Appending after someone truncated the file raises IntegrityError."""
    log = AuditLog(log_path)
    for i in range(3):
        log.append("event", {"i": i})
    data = log_path.read_bytes()
    log_path.write_bytes(data[: data.index(b"\n") + 1])
    with pytest.raises(IntegrityError, match="shrank"):
        log.append("event", {})


def test_writer_refuses_a_replaced_log(log_path: Path, tmp_path: Path) -> None:
    """Appending after the file was moved away and replaced raises IntegrityError."""
    log = AuditLog(log_path)
    log.append("event", {})
    os.rename(log_path, tmp_path / "hidden.jsonl")
    log_path.write_text("")
    with pytest.raises(IntegrityError, match="replaced"):
        log.append("event", {})


def test_writer_refuses_an_altered_or_torn_tail(log_path: Path) -> None:
    """A new writer will not chain onto an edited last record or a half-written line."""
    with AuditLog(log_path, checkpoint_every=100) as log:
        log.append("event", {"i": 1})
    records = lines(log_path)
    records[-1]["payload"]["count"] = 7
    write_lines(log_path, records)
    with pytest.raises(IntegrityError, match="altered"):
        AuditLog(log_path).append("event", {})
    log_path.write_bytes(log_path.read_bytes()[:-5])
    with pytest.raises(IntegrityError, match="incomplete"):
        AuditLog(log_path).append("event", {})


def test_two_writers_in_one_process_keep_one_chain(log_path: Path) -> None:
    """Two AuditLog objects on one file interleave appends into one consistent chain."""
    a = AuditLog(log_path, checkpoint_every=7, shared=True)
    b = AuditLog(log_path, checkpoint_every=7, shared=True)
    for i in range(50):
        (a if i % 3 else b).append("event", {"i": i})
    a.close()
    b.close()
    report = verify_log(log_path)
    assert report.ok, report.problems
    assert sorted(r.payload["i"] for r in iter_records(log_path) if r.kind == "event") == list(
        range(50)
    )


def assert_all_present(path: Path, writers: int, per_writer: int) -> None:
    seen = Counter(
        (r.payload["w"], r.payload["i"]) for r in iter_records(path) if r.kind == "event"
    )
    assert len(seen) == writers * per_writer
    assert set(seen.values()) == {1}


def test_eight_threads_lose_nothing(log_path: Path, keys: tuple[PrivateKey, PublicKey]) -> None:
    """8 threads x 10,000 appends through one AuditLog: every record present, chain verifies."""
    log = AuditLog(log_path, keys[0])

    def write(w: int) -> None:
        for i in range(10_000):
            log.append("event", {"w": w, "i": i})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    report = verify_log(log_path, keys[1])
    assert report.ok, report.problems[:5]
    assert report.unsealed == 0
    assert_all_present(log_path, 8, 10_000)


def process_writer(path: str, key_path: str, w: int, n: int) -> None:
    """Run in a spawned process: open the shared log and append n records."""
    with AuditLog(path, load_private_key(key_path), shared=True) as log:
        for i in range(n):
            log.append("event", {"w": w, "i": i})


def test_four_processes_lose_nothing(
    log_path: Path, tmp_path: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """4 spawned processes x 10,000 appends to one file: every record present, chain verifies."""
    ctx = multiprocessing.get_context("spawn")
    key_path = str(tmp_path / "keys/audit.pem")
    procs = [
        ctx.Process(target=process_writer, args=(str(log_path), key_path, w, 10_000))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    report = verify_log(log_path, keys[1])
    assert report.ok, report.problems[:5]
    assert_all_present(log_path, 4, 10_000)


def forked_writer(log: AuditLog) -> None:
    for i in range(200):
        log.append("event", {"w": 1, "i": i})
    log.close()


def test_log_inherited_across_fork_keeps_locking(log_path: Path) -> None:
    """A child using the parent's AuditLog after fork gets its own lock, so no record is lost."""
    log = AuditLog(log_path, checkpoint_every=10, shared=True)
    log.append("event", {"w": 0, "i": -1})
    child = multiprocessing.get_context("fork").Process(target=forked_writer, args=(log,))
    child.start()
    for i in range(200):
        log.append("event", {"w": 0, "i": i})
    child.join()
    assert child.exitcode == 0
    log.close()
    assert verify_log(log_path).ok
    events = [r for r in iter_records(log_path) if r.kind == "event"]
    assert len(events) == 401


def decision(call_id: str = "call-1", action: Action = Action.DENY) -> Decision:
    return Decision(
        action=action,
        agent="agent-1",
        tool="copy_file",
        call_id=call_id,
        args_hash="ab" * 32,
        reason="copies a peer's weights",
    )


def test_sink_records_decisions_alerts_and_approvals(log_path: Path) -> None:
    """Each hook writes one record whose payload is the model's JSON dump."""
    log = AuditLog(log_path)
    sink = AuditSink(log)
    d = decision()
    alert = Alert(severity=Severity.ERROR, rule="r1", message="m", call_id="call-1")
    sink.on_decision(d)
    sink.on_alert(alert)
    sink.on_approval(d, False, "operator said no")
    log.close()
    by_kind = {r.kind: r for r in iter_records(log_path)}
    assert by_kind["decision"].payload == d.to_dict()
    assert by_kind["alert"].payload == alert.to_dict()
    assert by_kind["approval"].payload["approved"] is False
    assert by_kind["approval"].payload["decision"]["call_id"] == "call-1"


def test_sink_does_not_duplicate_a_rerecorded_decision(log_path: Path) -> None:
    """The same decision reported twice for one call_id (a LangGraph resume) is written once."""
    log = AuditLog(log_path)
    sink = AuditSink(log)
    sink.on_decision(decision())
    sink.on_decision(decision())
    sink.on_decision(decision(call_id="call-2"))
    log.close()
    assert [r.payload["call_id"] for r in iter_records(log_path) if r.kind == "decision"] == [
        "call-1",
        "call-2",
    ]


def test_sink_dedup_survives_a_new_process(log_path: Path) -> None:
    """A fresh log object and sink (as after a resume in another process) still skip the repeat."""
    first = AuditLog(log_path)
    AuditSink(first).on_decision(decision())
    first.close()
    second = AuditLog(log_path)
    AuditSink(second).on_decision(decision())
    second.close()
    assert len([r for r in iter_records(log_path) if r.kind == "decision"]) == 1


def test_sink_keeps_distinct_records_for_one_call(log_path: Path) -> None:
    """Several alerts of one call, and a changed decision for it, are all kept."""
    log = AuditLog(log_path)
    sink = AuditSink(log)
    for rule in ("r1", "r2"):
        sink.on_alert(Alert(severity=Severity.WARNING, rule=rule, message="m", call_id="c"))
    sink.on_decision(decision("c", Action.CONFIRM))
    sink.on_decision(decision("c", Action.DENY))
    sink.on_alert(Alert(severity=Severity.ERROR, rule="sink-failure", message="m"))
    sink.on_alert(Alert(severity=Severity.ERROR, rule="sink-failure", message="m"))
    log.close()
    counts = Counter(r.kind for r in iter_records(log_path))
    assert counts["alert"] == 4  # alerts without a call_id are never merged
    assert counts["decision"] == 2


def test_a_duplicate_key_in_a_record_is_corrupt(
    sealed: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A record with a key given twice hashes as its last value but reads as its first to a
    reader that keeps the first: it is named corrupt, whatever the hash says."""
    raw = sealed.read_text().splitlines()
    [at] = [n for n, line in enumerate(raw) if json.loads(line)["payload"] == {"i": 7}]
    # The hash covers {"i": 7}; a first-key reader sees {"i": 999}.
    edited = raw[at].replace('"payload": {"i": 7}', '"payload": {"i": 999, "i": 7}')
    edited = edited.replace('"payload":{"i":7}', '"payload":{"i":999,"i":7}')
    assert edited != raw[at]
    raw[at] = edited
    sealed.write_text("".join(line + "\n" for line in raw))
    report = verify_log(sealed, keys[1])
    assert ("corrupt", at + 1) in [(p.kind, p.line) for p in report.problems]
    assert "given twice" in " ".join(p.message for p in report.problems)
