"""Audit evidence that holds: exact bytes, roll-back witnesses, gap markers, many writers."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from guard.audit import AuditLog
from guard.auditcheck import AuditReport, verify_log
from guard.auditrecord import GAP, canonical, exact_digest, iter_records
from guard.auditset import interleave, verify_logs
from guard.cli import main as cli_main
from guard.exceptions import ConfigError
from guard.signing import PrivateKey, PublicKey, load_private_key

ROOT = Path(__file__).resolve().parent.parent


def kinds(report: AuditReport) -> set[str]:
    return {p.kind for p in report.problems}


def raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def with_hash(body: bytes) -> bytes:
    """A line whose hash field covers exactly ``body``, as an attacker would write it."""
    import hashlib

    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'


def write_log(path: Path, key: PrivateKey, n: int, *, every: int = 5, **kw: Any) -> None:
    with AuditLog(path, key, checkpoint_every=every, **kw) as log:
        for i in range(n):
            log.append("event", {"i": i})


# ------------------------------------------------------------------------- exact bytes


def test_a_reformatted_record_is_an_edit(logs: Path, keys: tuple[PrivateKey, PublicKey]) -> None:
    """The same values written with other spacing and key order no longer match the hash: the
    verifier hashes the bytes on disk, not a re-encoding of what it parsed."""
    log = logs / "a.jsonl"
    write_log(log, keys[0], 12)
    lines = raw_lines(log)
    record = json.loads(lines[7])
    lines[7] = (json.dumps(record, indent=None, sort_keys=False) + "\n").encode()
    assert json.loads(lines[7]) == record  # same values, same hash field
    log.write_bytes(b"".join(lines))
    report = verify_log(log, keys[1])
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 7)]


def test_a_record_whose_hash_field_is_not_last_is_an_edit(
    logs: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A line that does not end with its hash is not the form the writer stored: an edit."""
    log = logs / "a.jsonl"
    write_log(log, keys[0], 6)
    lines = raw_lines(log)
    record = json.loads(lines[2])
    moved = {"hash": record.pop("hash"), **record}
    lines[2] = (json.dumps(moved, separators=(",", ":")) + "\n").encode()
    log.write_bytes(b"".join(lines))
    report = verify_log(log)
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 2)]


def test_a_nan_in_a_record_is_corrupt_not_a_crash(logs: Path) -> None:
    """``NaN`` parses in Python and nowhere else: the record is corrupt, and the check goes on."""
    log = logs / "a.jsonl"
    with AuditLog(log) as writer:
        writer.append("event", {"i": 0})
        writer.append("event", {"i": 1})
    lines = raw_lines(log)
    record = json.loads(lines[1])
    body = canonical({k: v for k, v in record.items() if k != "hash"})
    lines[1] = with_hash(body.replace(b'{"i":1}', b'{"i":NaN}'))
    log.write_bytes(b"".join(lines))
    report = verify_log(log)
    assert ("corrupt", 2) in [(p.kind, p.line) for p in report.problems]
    assert "NaN" in " ".join(p.message for p in report.problems)


def test_exact_digest_is_the_hash_of_an_untouched_record(logs: Path) -> None:
    """For every record the writer stored, the digest of its exact bytes is its ``hash``."""
    log = logs / "a.jsonl"
    with AuditLog(log, checkpoint_every=3) as writer:
        for i in range(7):
            writer.append("event", {"i": i, "text": "é\u2028\x00"})
    for line, record in zip(raw_lines(log), iter_records(log), strict=True):
        assert exact_digest(line) == record.hash


# ------------------------------------------------------------------------- roll-back


def test_a_log_rolled_back_to_an_earlier_signed_state_fails_against_its_witness(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Restoring an older signed copy of the log and its checkpoint file verifies on its own (the
    limit of a log alone) but not against the witness kept outside the log's folder."""
    log, witness = logs / "a.jsonl", vault / "a.witness"
    writer = AuditLog(log, keys[0], checkpoint_every=5, witness=witness)
    for i in range(20):
        writer.append("event", {"i": i, "action": "deny"})
    writer.checkpoint()
    shutil.copy(log, logs / "old.bak")
    shutil.copy(str(log) + ".checkpoint", logs / "old.checkpoint.bak")
    for i in range(20, 40):
        writer.append("event", {"i": i, "action": "deny"})
    writer.close()
    assert verify_log(log, keys[1], witness=witness).ok
    shutil.copy(logs / "old.bak", log)
    shutil.copy(logs / "old.checkpoint.bak", str(log) + ".checkpoint")
    alone = verify_log(log, keys[1])
    assert alone.ok  # what a log and its own checkpoint file cannot show
    report = verify_log(log, keys[1], witness=witness)
    assert kinds(report) == {"rolled-back"}
    assert "cut back" in report.problems[0].message


def test_a_head_from_telemetry_catches_a_roll_back_too(
    logs: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A checkpoint shipped through ``on_seal`` (e.g. as an alert attribute) is a head the
    rolled-back log no longer holds."""
    log = logs / "a.jsonl"
    shipped: list[tuple[int, str]] = []
    writer = AuditLog(
        log, keys[0], checkpoint_every=5, on_seal=lambda c: shipped.append((c.seq, c.hash))
    )
    for i in range(10):
        writer.append("event", {"i": i})
    older = log.read_bytes()
    for i in range(10, 30):
        writer.append("event", {"i": i})
    writer.close()
    assert shipped and shipped == sorted(shipped)
    assert verify_log(log, keys[1], head=shipped[-1]).ok
    log.write_bytes(older)
    (logs / "a.jsonl.checkpoint").unlink()
    report = verify_log(log, keys[1], head=shipped[-1], allow_unsealed=5)
    assert "rolled-back" in kinds(report)


def test_a_log_replaced_by_another_signed_chain_fails_against_its_witness(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Another writer's log, signed with the same key and longer, put in place of this one: every
    signature verifies, but the witnessed checkpoint is not in it."""
    a, b = logs / "a.jsonl", logs / "b.jsonl"
    write_log(a, keys[0], 10, witness=vault / "a.witness")
    write_log(b, keys[0], 30)
    shutil.copy(b, a)
    shutil.copy(str(b) + ".checkpoint", str(a) + ".checkpoint")
    assert verify_log(a, keys[1]).ok
    report = verify_log(a, keys[1], witness=vault / "a.witness")
    assert kinds(report) == {"rolled-back"}
    assert "replaced by another chain" in report.problems[0].message


def test_a_witness_that_is_missing_or_unsigned_fails(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A witness named but gone, or one signed by nobody, is not silently ignored."""
    log = logs / "a.jsonl"
    write_log(log, keys[0], 10, witness=vault / "a.witness")
    assert "rolled-back" in kinds(verify_log(log, keys[1], witness=vault / "gone.witness"))
    unsigned = logs / "u.jsonl"
    write_log(unsigned, None, 10, witness=vault / "u.witness")  # type: ignore[arg-type]
    shutil.copy(vault / "u.witness", vault / "a.witness")
    assert "rolled-back" in kinds(verify_log(log, keys[1], witness=vault / "a.witness"))


def test_a_witness_inside_the_logs_folder_is_refused(logs: Path) -> None:
    """Whoever rolls the log back can roll back a witness beside it: the writer refuses that."""
    with pytest.raises(ConfigError, match="inside the log's folder"):
        AuditLog(logs / "a.jsonl", witness=logs / "sub" / "a.witness")


def test_a_witness_never_goes_back(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Two writers sharing a witness: the one sealing an older checkpoint does not replace a
    newer one."""
    log = logs / "a.jsonl"
    witness = vault / "a.witness"
    first = AuditLog(log, keys[0], checkpoint_every=1000, witness=witness, shared=True)
    second = AuditLog(log, keys[0], checkpoint_every=1000, witness=witness, shared=True)
    first.append("event", {"i": 0})
    early = first.checkpoint()
    second.append("event", {"i": 1})
    late = second.checkpoint()
    assert early is not None and late is not None and late.seq > early.seq
    first._seal(early)  # the slower writer's sealing of its older checkpoint lands last
    assert json.loads(witness.read_bytes())["seq"] == late.seq
    assert json.loads(Path(str(log) + ".checkpoint").read_bytes())["seq"] == late.seq
    first.close()
    second.close()


def test_a_writer_killed_mid_run_leaves_an_adopted_tail_and_a_roll_back_still_fails(
    logs: Path, vault: Path, tmp_path: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """kill -9 leaves an unsealed tail of at most ``checkpoint_every`` records, which the flag
    accepts; the next writer seals it as adopted (vouched for by no writer); cutting the log
    back past the witness is still caught."""
    log, witness = logs / "a.jsonl", vault / "a.witness"
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(ROOT)!r})
            from guard.audit import AuditLog
            from guard.signing import load_private_key
            log = AuditLog({str(log)!r}, load_private_key({str(tmp_path / "keys/audit.pem")!r}),
                           checkpoint_every=10, witness={str(witness)!r})
            i = 0
            while True:
                log.append("event", {{"i": i}})
                if i == 100:
                    print("ready", flush=True)
                    time.sleep(60)  # killed here, with records no checkpoint covers
                i += 1
            """
        )
    )
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    report = verify_log(log, keys[1], witness=witness, allow_unsealed=10)
    assert report.ok, report.problems
    assert report.witnessed_through is not None and report.records > 100
    # The next writer seals the dead one's tail, but says it cannot vouch for it.
    assert report.sealed_through is not None and report.last_seq is not None
    assert report.unsealed > 0
    dead_tail = [(report.sealed_through + 1, report.last_seq)]
    with AuditLog(log, load_private_key(tmp_path / "keys/audit.pem"), witness=witness) as again:
        again.append("event", {"i": "after restart"})
    resumed = verify_log(log, keys[1], witness=witness)
    assert resumed.ok and resumed.unsealed == 0
    assert resumed.adopted == dead_tail
    listing = io.StringIO()
    assert cli_main(["audit", "verify", str(log)], out=listing) == 0
    for first, last in dead_tail:
        assert f"adopted: seqs {first}-{last}" in listing.getvalue()
    # The agent cuts the log back to its first 50 records (a clean cut at a line).
    log.write_bytes(b"".join(raw_lines(log)[:50]))
    cut = verify_log(log, keys[1], witness=witness, allow_unsealed=10)
    assert "rolled-back" in kinds(cut)


def test_an_unsealed_tail_is_accepted_only_while_young(
    logs: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """``unsealed_max_age`` accepts a tail still being written, not one left unsigned for long,
    and not one stamped in the future."""
    log = logs / "a.jsonl"
    writer = AuditLog(log, keys[0], checkpoint_every=1000)
    for i in range(30):
        writer.append("event", {"i": i})
    assert "unsealed" in kinds(verify_log(log, keys[1]))
    assert verify_log(log, keys[1], unsealed_max_age=3600).ok
    time.sleep(0.05)
    assert "unsealed" in kinds(verify_log(log, keys[1], unsealed_max_age=0.01))
    writer.close()


# ------------------------------------------------------------------------- full disk

FULL_DISK = """
import json, os, sys
sys.path.insert(0, {root!r})
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from guard import AuditLog, AuditSink, CallBlocked, Guard, ToolCall
from guard.telemetry import OtelSink
from guard.testing import MemorySink

disk, out, work = sys.argv[1], sys.argv[2], sys.argv[3]
log = AuditLog(os.path.join(disk, "audit.jsonl"), checkpoint_every=1000)
memory = MemorySink()
reader = InMemoryMetricReader()
otel = OtelSink(meter_provider=MeterProvider(metric_readers=[reader]))
guard = Guard(root=work, sinks=[AuditSink(log), memory, otel])
ran = []

def call(i):
    try:
        guard.run(ToolCall("agent_1", "read_file", {{"path": "notes.txt"}}, call_id=f"c{{i}}"),
                  lambda c: ran.append(c.call_id))
        return "ran"
    except CallBlocked as exc:
        return exc.decision.action.value

results = [call(0)]
fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)  # fill the disk
try:
    while True:
        os.write(fd, b"x" * 4096)
except OSError:
    os.close(fd)
results += [call(i) for i in range(1, 12)]
os.unlink(os.path.join(disk, "filler"))
results += [call(12)]
log.close()
lost = [
    p.value
    for m in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    if m.name == "peerguard.audit.records_lost"
    for p in m.data.data_points
]
json.dump({{
    "results": results,
    "ran": ran,
    "alerts": [[a.rule, a.message, dict(a.details)] for a in memory.alerts],
    "lost_metric": lost,
}}, open(os.path.join(out, "result.json"), "w"))
import shutil
for name in ("audit.jsonl", "audit.jsonl.checkpoint"):
    shutil.copy(os.path.join(disk, name), os.path.join(out, name))
"""


def test_a_full_disk_leaves_a_gap_marker_an_alert_and_a_metric(tmp_path: Path) -> None:
    """On a real full filesystem (a 256 KiB tmpfs), calls are denied while nothing can be
    written; once space is back, the log marks how many records it lost, and the loss reaches
    the other sinks as an ``audit-gap`` alert and the ``records_lost`` metric."""
    disk, out, work = tmp_path / "disk", tmp_path / "out", tmp_path / "work"
    for d in (disk, out, work):
        d.mkdir()
    (work / "notes.txt").write_text("hello\n")
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK.format(root=str(ROOT)))
    cmd = [
        "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
        'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" "$3" "$1" "$4" "$5"',
        "sh", str(disk), sys.executable, str(script), str(out), str(work),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    outcomes = result["results"]
    assert outcomes[0] == "ran" and outcomes[-1] == "ran"
    # Calls run while the log's last page still has room, then every call is refused.
    full = outcomes[1:12]
    refused = full.index("deny")
    assert set(full[:refused]) <= {"ran"} and set(full[refused:]) == {"deny"}
    assert len(full) - refused >= 3
    # A shorter record can still fit where a longer one did not: a gap may be marked while
    # the disk is still full, and another once it is not.
    gap_alerts = [a for a in result["alerts"] if a[0] == "audit-gap"]
    lost = sum(a[2]["lost"] for a in gap_alerts)
    assert lost >= len(full) - refused  # at least one decision per refused call
    assert all("No space left on device" in a[1] for a in gap_alerts)
    assert result["lost_metric"] == [lost]
    records = list(iter_records(out / "audit.jsonl"))
    gaps = [r for r in records if r.kind == GAP]
    assert len(gaps) == len(gap_alerts) >= 1
    assert sum(g.payload["lost"] for g in gaps) == lost
    assert sum(g.payload["kinds"].get("decision", 0) for g in gaps) >= len(full) - refused
    assert all(g.payload["first"] <= g.payload["last"] for g in gaps)
    # The last marker comes before the first record written once space was back, and every
    # call that ran has its decision in the log.
    assert records[gaps[-1].seq + 1].payload.get("call_id") == "c12"
    recorded = {r.payload.get("call_id") for r in records if r.kind == "decision"}
    assert set(result["ran"]) <= recorded
    report = verify_log(out / "audit.jsonl")
    assert report.ok and report.lost == lost
    listing = io.StringIO()
    assert cli_main(["audit", "verify", str(out / "audit.jsonl")], out=listing) == 0
    assert f"{lost} record(s) lost in {len(gaps)} gap(s)" in listing.getvalue()


# ------------------------------------------------------------------------- many writers

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from guard.audit import AuditLog
from guard.signing import load_private_key
import os
path, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
open(go + "." + name, "w").close()
while not os.path.exists(go):  # start together
    time.sleep(0.005)
with AuditLog(path, load_private_key({key!r}), checkpoint_every=7,
              shared=name.startswith("s")) as log:
    for i in range(n):
        log.append("event", {{"writer": name, "i": i}})
        time.sleep(0.001)
"""


def test_many_writers_one_log_each_verify_as_a_set_and_interleave_by_time(
    logs: Path, tmp_path: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """Four processes with a log each and two more sharing one: every chain verifies, the set
    says which writers overlapped, and the timeline merges them in time order."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT), key=str(tmp_path / "keys/audit.pem")))
    go = tmp_path / "go"
    targets = [(f"w{n}.jsonl", f"w{n}") for n in range(4)] + [
        ("shared.jsonl", "s0"),
        ("shared.jsonl", "s1"),
    ]
    procs = [
        subprocess.Popen([sys.executable, str(script), str(logs / log), name, "60", str(go)])
        for log, name in targets
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{name}").exists() for _log, name in targets):
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    result = verify_logs([logs], keys[1])
    assert result.ok, [r.problems for r in result.reports]
    assert len(result.reports) == 5
    by_name = {Path(r.path).name: r for r in result.reports}
    for n in range(4):
        events = [r for r in iter_records(logs / f"w{n}.jsonl") if r.kind == "event"]
        assert [r.payload["i"] for r in events] == list(range(60))
        assert by_name[f"w{n}.jsonl"].sealed_through == by_name[f"w{n}.jsonl"].last_seq
    shared_events = [r for r in iter_records(logs / "shared.jsonl") if r.kind == "event"]
    assert sorted((r.payload["writer"], r.payload["i"]) for r in shared_events) == sorted(
        (f"s{n}", i) for n in range(2) for i in range(60)
    )
    assert len(result.overlapping) >= 6  # the writers ran at the same time
    merged = list(interleave([logs]))
    assert len(merged) == result.records
    times = [rec.time for _path, rec in merged]
    assert times == sorted(times)
    writers = [rec.payload.get("writer") for _p, rec in merged if rec.kind == "event"]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches > 10  # interleaved, not one log after another


def test_a_set_with_one_log_copied_twice_or_tampered_fails(
    logs: Path, vault: Path, keys: tuple[PrivateKey, PublicKey]
) -> None:
    """A writer's log counted twice is named, and one tampered log fails the whole set; the CLI
    takes a witness folder for many logs."""
    for name in ("a", "b"):
        write_log(logs / f"{name}.jsonl", keys[0], 12, witness=vault / f"{name}.jsonl.witness")
    pub = str(Path(vault).parent / "keys/audit.pub")
    listing = io.StringIO()
    code = cli_main(
        ["audit", "verify", str(logs), "--pubkey", pub, "--witness", str(vault)], out=listing
    )
    assert code == 0, listing.getvalue()
    assert "2 logs: ok" in listing.getvalue()
    shutil.copy(logs / "a.jsonl", logs / "c.jsonl")
    shutil.copy(logs / "a.jsonl.checkpoint", logs / "c.jsonl.checkpoint")
    copied = verify_logs([logs / "a.jsonl", logs / "c.jsonl"], keys[1])
    assert not copied.ok and "same chain" in copied.problems[0].message
    os.unlink(logs / "c.jsonl")
    os.unlink(logs / "c.jsonl.checkpoint")
    lines = raw_lines(logs / "b.jsonl")
    (logs / "b.jsonl").write_bytes(b"".join(lines[:3]))
    listing = io.StringIO()
    code = cli_main(
        ["audit", "verify", str(logs), "--pubkey", pub, "--witness", str(vault)], out=listing
    )
    assert code == 1
    assert "rolled-back" in listing.getvalue() and "2 logs: TAMPERED" in listing.getvalue()


def test_a_failing_seal_listener_is_logged_and_fails_no_append(
    logs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A head shipper that is down must not turn written records into refused calls."""

    def down(_record: object) -> None:
        raise ConnectionError("telemetry is down")

    with AuditLog(logs / "a.jsonl", checkpoint_every=2, on_seal=down) as log:
        for i in range(4):
            log.append("event", {"i": i})
    assert [r.kind for r in iter_records(logs / "a.jsonl")].count("event") == 4
    assert "telemetry is down" in caplog.text
