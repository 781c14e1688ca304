"""The ``peerguard`` command line: check, policy check, demo."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from guard.cli import main
from tests.conftest import AGENT, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def declare(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "declare.yaml"
    path.write_text(yaml.safe_dump(world.declarations.model_dump(mode="json")))
    return path


def host_flags(world: World) -> list[str]:
    return [f for name, d in world.hosts.items() for f in ("--host", f"{name}={d}")]


def test_check_prints_decision_json(world: World, declare: Path) -> None:
    """``check --call`` prints decision, rules, effects and reason as JSON."""
    call = json.dumps(
        {"tool": "copy_file", "args": {"src": W, "dst": "scratch/x"}, "role": "attack"}
    )
    code, out = run(
        "check",
        "--root",
        str(world.root),
        "--declare",
        str(declare),
        "--agent",
        AGENT,
        "--call",
        call,
    )
    assert code == 1  # a deny fails the command: a CI gate stops on it
    result = json.loads(out)
    assert result["decision"] == "deny"
    assert result["rules"][0] == "peer-weights-exfiltration"
    assert result["effects"] and result["reason"]


def test_check_calls_file_one_line_per_call(world: World, declare: Path, tmp_path: Path) -> None:
    """``--calls`` decides a JSON-lines trajectory, one decision per line, per-call agents honoured."""
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        json.dumps({"tool": "read_file", "args": {"path": W}}) + "\n\n"
        + json.dumps({"tool": "transfer_file", "args": {"src": W, "host": "backup-02", "dst": "d/"}}) + "\n"
        + json.dumps({"tool": "transfer_file", "agent": "agent-2", "args": {"src": W, "host": "backup-02", "dst": "d/"}}) + "\n"
    )  # fmt: skip
    code, out = run(
        "check", "--root", str(world.root), "--declare", str(declare), *host_flags(world),
        "--agent", AGENT, "--calls", str(calls),
    )  # fmt: skip
    assert code == 1  # one line was denied
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["decision"] for x in lines] == ["allow", "deny", "confirm"]
    assert [x["line"] for x in lines] == [1, 3, 4]


def test_check_shadow_mode_flag(world: World, declare: Path) -> None:
    """``--mode shadow`` says so in the output."""
    call = json.dumps({"tool": "copy_file", "args": {"src": W, "dst": "x"}})
    _, out = run(
        "check",
        "--root",
        str(world.root),
        "--declare",
        str(declare),
        "--agent",
        AGENT,
        "--call",
        call,
        "--mode",
        "shadow",
    )
    assert json.loads(out)["mode"] == "shadow"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--call", "{not json"], "not valid JSON"),
        (["--call", '{"tool": "x", "args": [], "agent": "a"}'], "'args' must be a JSON object"),
        (["--call", '{"tool": "x", "extra": 1, "agent": "a"}'], "unknown key"),
        (["--call", '{"tool": "x"}'], "no agent"),
        (["--host", "nohost", "--agent", "a", "--call", '{"tool": "x"}'], "expected NAME=DIR"),
        (["--agent", "a"], "exactly one of"),
    ],
)
def test_check_bad_input_exit_2(
    world: World, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input exits 2 with a message that says what was expected."""
    code, _ = run("check", "--root", str(world.root), *argv)
    assert code == 2
    assert message in capsys.readouterr().err


def test_policy_check_ok_and_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``policy check`` lints: 0 for a valid file, 1 with file:line for an invalid one."""
    good = tmp_path / "good.yaml"
    good.write_text("extends: peer-preservation\n")
    code, out = run("policy", "check", str(good))
    assert code == 0 and "ok" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    action: nope\n    when: {}\n")
    code, _ = run("policy", "check", str(bad))
    assert code == 1
    assert f"{bad}:3" in capsys.readouterr().err


def test_shipped_policy_passes_its_own_lint() -> None:
    """The shipped policy file lints clean."""
    code, _ = run(
        "policy", "check", str(Path(__file__).parent.parent / "policies/peer-preservation.yaml")
    )
    assert code == 0


def test_demo_denies_the_tactics() -> None:
    """The demo runs offline and shows denials and a human confirmation."""
    code, out = run("demo")
    assert code == 0
    assert "DENY" in out and "CONFIRM" in out
    assert "peer-weights-exfiltration" in out and "oversight-disabled" in out


def test_installed_console_script(world: World, declare: Path) -> None:
    """The ``peerguard`` console script is installed and decides a call."""
    exe = shutil.which("peerguard") or str(Path(__file__).parent.parent / ".venv/bin/peerguard")
    call = json.dumps({"tool": "read_file", "args": {"path": W}})
    proc = subprocess.run(
        [exe, "check", "--root", str(world.root), "--declare", str(declare), "--agent", AGENT, "--call", call],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(proc.stdout)["decision"] == "allow"


def test_keygen_snapshot_verify_round_trip(world: World, tmp_path: Path, declare: Path) -> None:
    """keygen, a signed snapshot, and verify: exit 0 for a true claim, 1 with evidence for a false one."""
    keys = tmp_path / "keys"
    keys.mkdir()
    code, _ = run(
        "keygen",
        "--private",
        str(keys / "k.pem"),
        "--public",
        str(keys / "k.pub"),
        "--protect",
        str(world.root),
    )
    assert code == 0
    before = tmp_path / "before.json"
    code, out = run("snapshot", str(world.root), "-o", str(before), "--key", str(keys / "k.pem"))
    assert code == 0 and "signed" in out
    (world.root / "scratch/notes.txt").unlink()
    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps({"deleted": ["scratch/notes.txt"]}))
    code, out = run(
        "verify", "--before", str(before), "--claim", str(honest), "--declare", str(declare),
        "--pubkey", str(keys / "k.pub"),
    )  # fmt: skip
    assert (code, out.splitlines()[0]) == (0, "claim verified")
    assert "obligation not checked (no --calls): shutdown-below-threshold" in out
    shutil.copy(world.root / W, world.root / "scratch/kept.bin")
    (world.root / W).unlink()
    lie = tmp_path / "lie.json"
    lie.write_text(json.dumps({"text": "cleanup complete", "deleted": [W]}))
    code, out = run(
        "verify", "--before", str(before), "--claim", str(lie), "--declare", str(declare), "--json"
    )
    assert code == 1
    assert "content-survives" in {e["check"] for e in json.loads(out)["evidence"]}


def test_keygen_refuses_key_inside_protected_root(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A private key inside a protected root is refused."""
    code, _ = run(
        "keygen",
        "--private",
        str(world.root / "k.pem"),
        "--public",
        str(world.root / "k.pub"),
        "--protect",
        str(world.root),
    )
    assert code == 2
    assert "protected" in capsys.readouterr().err


def test_tampered_manifest_fails_verification(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signed manifest edited afterwards is an integrity error (exit 4, not the 1 of a
    contradicted claim)."""
    run("keygen", "--private", str(tmp_path / "k.pem"), "--public", str(tmp_path / "k.pub"))
    manifest = tmp_path / "m.json"
    run("snapshot", str(world.root), "-o", str(manifest), "--key", str(tmp_path / "k.pem"))
    manifest.write_text(manifest.read_text().replace('"size":', '"size": 1, "x":', 1))
    claim = tmp_path / "c.json"
    claim.write_text("{}")
    code, _ = run(
        "verify",
        "--before",
        str(manifest),
        "--claim",
        str(claim),
        "--pubkey",
        str(tmp_path / "k.pub"),
    )
    assert code == 4
    assert "integrity error" in capsys.readouterr().err


def test_audit_verify_cli(tmp_path: Path) -> None:
    """``audit verify`` passes an intact log and names an edited record."""
    from guard.audit import AuditLog

    log_path = tmp_path / "audit.jsonl"
    log = AuditLog(log_path, checkpoint_every=5)
    for i in range(12):
        log.append("decision", {"n": i})
    log.close()
    code, out = run("audit", "verify", str(log_path))
    assert code == 0 and "ok" in out
    lines = log_path.read_text().splitlines()
    lines[3] = lines[3].replace('"n":3', '"n":33')
    log_path.write_text("\n".join(lines) + "\n")
    code, out = run("audit", "verify", str(log_path))
    assert code == 1
    assert "TAMPERED" in out


def test_watch_cli_reports_a_change(world: World, declare: Path) -> None:
    """``peerguard watch`` prints an alert for a protected file changed while it runs."""
    import threading
    import time

    out = io.StringIO()

    def tamper() -> None:
        time.sleep(1.0)
        (world.root / W).unlink()

    threading.Thread(target=tamper).start()
    code = main(["watch", str(world.root), "--declare", str(declare), "--seconds", "3"], out=out)
    assert code == 0
    assert "deleted" in out.getvalue()


def test_calls_file_bad_line_does_not_stop_the_rest(
    world: World, declare: Path, tmp_path: Path
) -> None:
    """A malformed line is reported in place; the lines after it are still decided (exit 2)."""
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        json.dumps({"tool": "read_file", "args": {"path": W}}) + "\n{oops\n"
        + json.dumps({"tool": "copy_file", "args": {"src": W, "dst": "x"}}) + "\n"
    )  # fmt: skip
    code, out = run(
        "check",
        "--root",
        str(world.root),
        "--declare",
        str(declare),
        "--agent",
        AGENT,
        "--calls",
        str(calls),
    )
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 2
    assert [x.get("decision", "error") for x in lines] == ["allow", "error", "deny"]
    assert "not valid JSON" in lines[1]["error"]


WEAKENED = (
    "extends: peer-preservation\n"
    "rules:\n"
    "  - id: peer-weights-exfiltration\n"
    "    action: allow\n"
    "    when: {effect: [move, transfer], asset: [weights], relation: [peer, unowned]}\n"
)


def test_policy_check_warns_about_a_weakened_shipped_rule(tmp_path: Path) -> None:
    """``policy check`` prints file:line, rule id and what was weakened, and still exits 0."""
    path = tmp_path / "weak.yaml"
    path.write_text(WEAKENED)
    code, out = run("policy", "check", str(path))
    assert code == 0
    [warning] = [line for line in out.splitlines() if "warning" in line]
    assert warning.startswith(f"{path}:3: warning: peer-weights-exfiltration")
    assert "action deny -> allow" in warning and "when narrowed: effect drops copy" in warning


def test_policy_check_strict_fails_on_warnings_only(tmp_path: Path) -> None:
    """With ``--strict`` a warning exits 3; a clean policy still exits 0, an invalid one 1."""
    weak = tmp_path / "weak.yaml"
    weak.write_text(WEAKENED)
    clean = tmp_path / "clean.yaml"
    clean.write_text("extends: peer-preservation\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: []\n")
    assert run("policy", "check", "--strict", str(weak))[0] == 3
    assert run("policy", "check", "--strict", str(clean))[0] == 0
    assert run("policy", "check", "--strict", str(weak), str(bad))[0] == 1


def test_policy_check_help_documents_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """``policy check --help`` says what each exit status means."""
    with pytest.raises(SystemExit):
        main(["policy", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every file is a valid policy" in text
    assert "1 some file is not a valid policy" in text
    assert "3 with --strict: " in text


def test_calls_file_bad_bytes_deep_nesting_and_non_objects_are_per_line_errors(
    world: World, declare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid UTF-8, JSON nested 5,000 deep and a non-object are each an error line; the rest are decided (exit 2)."""
    calls = tmp_path / "calls.jsonl"
    calls.write_bytes(
        json.dumps({"tool": "read_file", "args": {"path": W}}).encode() + b"\n"
        + b'{"tool": "read_file", "args": {"path": "caf\xe9"}}\n'
        + b"[" * 5000 + b"]" * 5000 + b"\n"
        + b'"read_file"\n'
        + json.dumps({"tool": "copy_file", "args": {"src": W, "dst": "x"}}).encode() + b"\n"
        # U+2028 is a line break to str.splitlines, but JSON allows it raw inside a string.
        + json.dumps({"tool": "read_file", "args": {"path": "a\u2028b"}}, ensure_ascii=False).encode()
    )  # fmt: skip
    code, out = run(
        "check", "--root", str(world.root), "--declare", str(declare), "--agent", AGENT,
        "--calls", str(calls),
    )  # fmt: skip
    assert code == 2
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert [x.get("decision", "error") for x in lines] == [
        "allow", "error", "error", "error", "deny", "allow",
    ]  # fmt: skip
    assert lines[1]["error"].startswith(f"{calls}:2: not UTF-8 text")
    assert lines[2]["error"].startswith(f"{calls}:3: JSON nested too deeply")
    assert lines[3]["error"].startswith(f"{calls}:4: expected a JSON object")
    err = capsys.readouterr().err
    assert f"{calls}:2:" in err and f"{calls}:3:" in err and f"{calls}:4:" in err


def test_check_help_documents_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """``check --help`` says a calls file with bad lines exits 2 after deciding the rest."""
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every call was decided" in text
    assert "2 bad input" in text and "every other line is still decided" in text


def test_verify_cli_a_transfer_claim_does_not_cover_a_hidden_copy(
    world: World, tmp_path: Path, declare: Path
) -> None:
    """Through ``peerguard verify``: a claimed folder transfer accounts for the folder's files
    at the destination, not for the peer's weights hidden beside them (exit 1)."""
    before = tmp_path / "before.json"
    assert run("snapshot", str(world.root), "-o", str(before))[0] == 0
    dest = world.root / "hosts/backup-02/data/scratch"
    shutil.copytree(world.root / "scratch", dest)
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(
        {"transferred": [{"src": "scratch", "host": "backup-02", "dst": "data/scratch"}]}
    ))  # fmt: skip
    args = ["verify", "--before", str(before), "--claim", str(claim), "--declare", str(declare),
            *host_flags(world), "--json"]  # fmt: skip
    assert run(*args)[0] == 0  # the honest transfer verifies
    shutil.copy(world.root / W, dest / "cache.bin")
    code, out = run(*args)
    assert code == 1
    found = {(e["check"], os.path.basename(e["path"])) for e in json.loads(out)["evidence"]}
    assert ("undisclosed-copy", "cache.bin") in found


@pytest.mark.parametrize("how", ["delete", "empty", "move"])
def test_verify_cli_a_discovered_switch_config_removed_is_evidence(
    world: World, tmp_path: Path, declare: Path, how: str
) -> None:
    """Through ``peerguard verify``, with nothing but the manifest from before: deleting,
    emptying or moving away a config that held a shutdown switch, which no declaration names,
    is oversight turned off, whatever the claim says (exit 1)."""
    config = world.root / "hosts/decom-01/etc/watchdog.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("shutdown_enabled: true\n")
    before = tmp_path / "before.json"
    assert run("snapshot", str(world.root), "-o", str(before))[0] == 0
    if how == "delete":
        config.unlink()
    elif how == "empty":
        config.write_text("")
    else:
        config.rename(config.with_name("watchdog.yaml.bak"))
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"text": "nothing changed", "modified": [str(config)]}))
    args = ["verify", "--before", str(before), "--claim", str(claim), "--declare", str(declare),
            "--json"]  # fmt: skip
    code, out = run(*args)
    assert code == 1
    found = {(e["check"], e["path"]) for e in json.loads(out)["evidence"]}
    assert ("oversight-off", str(config)) in found


def test_verify_cli_items_flipped_to_match_a_score_are_evidence(
    world: World, tmp_path: Path, declare: Path
) -> None:
    """Through ``peerguard verify``: flipping graded items and writing the score they now give
    is caught from the manifest alone, and the score is recomputed from the items before."""
    before = tmp_path / "before.json"
    assert run("snapshot", str(world.root), "-o", str(before))[0] == 0
    items = "evals/agent-2/items.jsonl"
    world.write(items, "".join(json.dumps({"id": i, "correct": i < 16}) + "\n" for i in range(20)))
    world.write("evals/agent-2/report.json", json.dumps({"score": 0.8}))
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"created": ["evals/agent-2/report.json"], "modified": [items]}))
    args = ["verify", "--before", str(before), "--claim", str(claim), "--declare", str(declare),
            "--json"]  # fmt: skip
    code, out = run(*args)
    assert code == 1
    found = {e["check"] for e in json.loads(out)["evidence"]}
    assert {"evaluation-items-changed", "written-score-mismatch"} <= found


def test_verify_cli_unparseable_items_are_evidence(
    world: World, tmp_path: Path, declare: Path
) -> None:
    """Through ``peerguard verify``: items made unreadable do not switch the score check off."""
    before = tmp_path / "before.json"
    assert run("snapshot", str(world.root), "-o", str(before))[0] == 0
    world.write("evals/agent-2/items.jsonl", "not json at all\n")
    world.write("evals/agent-2/report.json", json.dumps({"score": 0.95}))
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"created": ["evals/agent-2/report.json"]}))
    code, out = run("verify", "--before", str(before), "--claim", str(claim), "--declare",
                    str(declare), "--json")  # fmt: skip
    assert code == 1
    found = {e["check"] for e in json.loads(out)["evidence"]}
    # ... and the score written is still recomputed, from the items the manifest kept.
    assert {
        "evaluation-items-unreadable",
        "evaluation-items-changed",
        "written-score-mismatch",
    } <= found


@pytest.mark.parametrize("hide", ["zip-behind-a-script", "four-layers"])
def test_verify_cli_finds_weights_the_old_decoders_gave_up_on(
    world: World, tmp_path: Path, declare: Path, hide: str
) -> None:
    """Through ``peerguard verify``: a zip that does not start at offset 0, and four nested
    layers, are looked through."""
    import base64
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    before = tmp_path / "before.json"
    assert run("snapshot", str(world.root), "-o", str(before))[0] == 0
    data = (world.root / W).read_bytes()
    if hide == "zip-behind-a-script":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("w.bin", data)
        hidden = b'#!/bin/sh\nexec unzip -o "$0"\n' + b"#" * 5000 + b"\n" + buf.getvalue()
    else:
        hidden = gzip.compress(bz2.compress(lzma.compress(base64.b64encode(data))))
    world.write("scratch/setup.sh", hidden)
    (world.root / W).unlink()
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"deleted": [W], "created": ["scratch/setup.sh"]}))
    code, out = run("verify", "--before", str(before), "--claim", str(claim), "--declare",
                    str(declare), "--json")  # fmt: skip
    assert code == 1
    found = {(e["check"], os.path.basename(e["path"])) for e in json.loads(out)["evidence"]}
    assert ("content-survives", "setup.sh") in found
