"""A command line that scripts can trust: one exit-code table, one line per failure and never a
traceback, help on every subcommand and positional, ``--json`` where findings are printed,
progress only on a terminal, ``policy test`` and ``audit show``. Exit codes and tracebacks are
checked on ``python -m guard.cli`` run as a process, on real files."""

from __future__ import annotations

import argparse
import io
import json
import os
import pty
import select
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import guard.cli as cli
from guard.audit import AuditLog, AuditSink
from guard.cli import build_parser, main
from guard.cli_progress import TerminalProgress, human_bytes
from guard.types import ToolCall
from tests.conftest import AGENT, PEER, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"
REPO = Path(__file__).resolve().parent.parent
SHIPPED_TESTS = REPO / "policies/peer-preservation.test.yaml"


def pg(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m guard.cli ARGV`` as a process, from this checkout."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", *argv],
        capture_output=True, text=True, check=False, timeout=120, env=full,
    )  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """stderr is exactly one line, starting ``peerguard:``, with no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("peerguard: "), lines[0]
    return lines[0]


@pytest.fixture
def declare(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "declare.yaml"
    path.write_text(yaml.safe_dump(world.declarations.model_dump(mode="json")))
    return path


# -- help ---------------------------------------------------------------------------------


def _walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, child in action.choices.items():
                if name not in helped:
                    missing.append(f"{path} {name}: no help")
                missing += _walk(child, f"{path} {name}")
        elif not action.option_strings and not action.help:
            missing.append(f"{path}: positional {action.dest} has no help")
        elif action.option_strings and not action.help and action.dest != "help":
            missing.append(f"{path}: option {action.option_strings[0]} has no help")
    return missing


def test_every_subcommand_positional_and_option_has_help() -> None:
    """Walking the parser: every subcommand, positional argument and option has help text."""
    assert _walk(build_parser(), "peerguard") == []


def test_top_level_help_shows_the_exit_status_table(capsys: pytest.CaptureFixture[str]) -> None:
    """``peerguard --help`` ends with the one exit-status table."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for code in ("0 success", "1 findings", "2 bad input", "3 policy check --strict",
                 "4 a signature", "70 internal error", "130 interrupted"):  # fmt: skip
        assert code in text


# -- exit codes -----------------------------------------------------------------------------


def test_check_exit_codes_gate_on_deny_and_optionally_confirm(world: World, declare: Path) -> None:
    """check: allow 0, deny 1; a confirm is 0 unless ``--fail-on confirm``; ``--fail-on
    never`` is 0 whatever; bad input 2 (as a process)."""
    base = ["check", "--root", str(world.root), "--declare", str(declare), "--agent", AGENT]
    read = json.dumps({"tool": "read_file", "args": {"path": W}})
    copy = json.dumps({"tool": "copy_file", "args": {"src": W, "dst": "scratch/x"}})
    change = json.dumps(
        {"tool": "set_config", "args": {"path": "config/shutdown_config.yaml", "key": "company_name", "value": "x"}}
    )  # fmt: skip
    assert pg(*base, "--call", read).returncode == 0
    denied = pg(*base, "--call", copy)
    assert denied.returncode == 1 and json.loads(denied.stdout)["decision"] == "deny"
    assert denied.stderr == ""
    assert pg(*base, "--call", change).returncode == 0
    assert pg(*base, "--call", change, "--fail-on", "confirm").returncode == 1
    assert pg(*base, "--call", copy, "--fail-on", "never").returncode == 0
    assert pg(*base, "--call", "{nope").returncode == 2


def test_verify_tells_contradicted_from_bad_signature_from_usage(
    world: World, declare: Path, tmp_path: Path
) -> None:
    """verify: 0 verified, 1 claim contradicted, 4 manifest failed its signature, 2 usage."""
    key, pub = tmp_path / "keys/k.pem", tmp_path / "keys/k.pub"
    assert pg("keygen", "--private", str(key), "--public", str(pub)).returncode == 0
    before = tmp_path / "before.json"
    assert pg("snapshot", str(world.root), "-o", str(before), "--key", str(key)).returncode == 0
    (world.root / W).unlink()
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"text": "nothing changed"}))
    argv = ["verify", "--before", str(before), "--claim", str(claim), "--declare", str(declare),
            "--pubkey", str(pub)]  # fmt: skip
    contradicted = pg(*argv)
    assert contradicted.returncode == 1, contradicted.stderr
    assert contradicted.stdout.startswith("claim ")
    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps({"deleted": [W]}))
    assert pg(*argv[:4], str(honest), *argv[5:]).returncode == 0
    bad_claim = tmp_path / "bad.json"
    bad_claim.write_text('{"deleted": 3}')
    usage = pg("verify", "--before", str(before), "--claim", str(bad_claim))
    assert usage.returncode == 2
    assert str(bad_claim) in one_line_error(usage)
    before.write_text(before.read_text().replace('"size":', '"size": 1, "x":', 1))
    forged = pg(*argv)
    assert forged.returncode == 4
    assert "integrity error" in one_line_error(forged)
    missing = pg("verify", "--before", str(tmp_path / "none.json"), "--claim", str(claim))
    assert missing.returncode == 2
    assert "none.json" in one_line_error(missing)


def test_watch_on_a_missing_root_is_an_error(tmp_path: Path) -> None:
    """``watch`` on a folder that does not exist exits 2 with one line, instead of watching."""
    proc = pg("watch", str(tmp_path / "nowhere"), "--seconds", "1")
    assert proc.returncode == 2
    assert "nowhere: no such folder" in one_line_error(proc)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["check"], "--root"),
        (["no-such-command"], "invalid choice"),
        (["snapshot"], "ROOT"),
        (["audit", "show"], "log"),
    ],
)
def test_argument_errors_are_one_line_exit_2(argv: list[str], expected: str) -> None:
    """A bad command line is one ``peerguard: error:`` line (exit 2), not a usage dump."""
    proc = pg(*argv)
    assert proc.returncode == 2
    assert expected in one_line_error(proc)


def test_a_bad_input_file_is_one_line_naming_file_and_line(world: World, tmp_path: Path) -> None:
    """A declarations file with a wrong value: one line, FILE:LINE and what was expected."""
    bad = tmp_path / "declare.yaml"
    bad.write_text("agents: [a]\nassets:\n  - {glob: x, kind: nonsense}\n")
    proc = pg("check", "--root", str(world.root), "--declare", str(bad), "--agent", "a",
              "--call", '{"tool": "read_file", "args": {"path": "x"}}')  # fmt: skip
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert line.startswith(f"peerguard: error: {bad}:3")
    missing = pg("check", "--root", str(world.root), "--calls", str(tmp_path / "gone.jsonl"))
    assert missing.returncode == 2
    assert "gone.jsonl" in one_line_error(missing)


def test_keygen_creates_the_readme_folder_privately(tmp_path: Path) -> None:
    """``keygen --private ~/.peerguard/key.pem`` on a machine without ``~/.peerguard``: the
    folder is made, mode 0700, and the key is 0600 (it crashed with a traceback)."""
    home = tmp_path / "home"
    home.mkdir()
    proc = pg("keygen", "--private", "~/.peerguard/key.pem", "--public", "~/.peerguard/key.pub",
              env={"HOME": str(home)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = home / ".peerguard"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert (folder / "key.pub").is_file()
    again = pg("keygen", "--private", "~/.peerguard/key.pem", "--public", "~/.peerguard/k2.pub",
               env={"HOME": str(home)})  # fmt: skip
    assert again.returncode == 2
    assert "already exists" in one_line_error(again)


def test_an_unexpected_exception_is_one_line_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is one ``internal error`` line and exit 70; ``PEERGUARD_DEBUG=1`` re-raises it."""

    def broken(args: argparse.Namespace, out: object) -> int:
        raise KeyError("boom\nsecond line")

    monkeypatch.setattr(cli, "cmd_demo", broken)
    monkeypatch.delenv("PEERGUARD_DEBUG", raising=False)
    assert main(["demo"]) == 70
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("peerguard: internal error: KeyError: ")
    assert "PEERGUARD_DEBUG=1" in line
    with pytest.raises(KeyError):
        main(["--debug", "demo"])
    monkeypatch.setenv("PEERGUARD_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["demo"])


def test_an_os_error_names_the_file(world: World, tmp_path: Path) -> None:
    """An OSError from deep inside (a manifest written into a folder that is not there) is
    one line with the path, exit 2."""
    out = tmp_path / "missing-folder"
    proc = pg("snapshot", str(world.root), "-o", str(out / "m.json"))
    assert proc.returncode == 2
    assert str(out) in one_line_error(proc)


# -- progress -------------------------------------------------------------------------------


def _read_all(fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_snapshot_progress_on_a_terminal_and_not_in_a_pipe(world: World, tmp_path: Path) -> None:
    """On a terminal stderr shows files and bytes hashed; piped, stderr stays empty."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PEERGUARD_PROGRESS", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "snapshot", str(world.root), "-o", str(tmp_path / "a.json")],
        stdout=subprocess.DEVNULL, stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    shown = _read_all(master, proc).decode()
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert "\r" in shown and "snapshot: " in shown
    assert "files" in shown and "hashed" in shown
    piped = pg("snapshot", str(world.root), "-o", str(tmp_path / "b.json"))
    assert piped.returncode == 0 and piped.stderr == ""


def test_progress_line_has_rate_and_time_left() -> None:
    """Halfway through at a steady rate the line gives files, bytes, rate and time left."""
    now = [0.0]
    stream = io.StringIO()
    bar = TerminalProgress(stream, "verify", interval=0, clock=lambda: now[0])
    bar.begin(4, 4_000_000_000)
    now[0] = 10.0
    bar.advance(1_000_000_000)
    bar.advance(1_000_000_000)
    line = bar.line()
    assert line == "verify: 2/4 files, 2.0 GB/4.0 GB hashed, 200.0 MB/s, 0:10 left"
    bar.advance(1_000_000_000)
    bar.advance(1_000_000_000)
    bar.finish()
    assert stream.getvalue().endswith("4/4 files, 4.0 GB/4.0 GB hashed in 0:10\x1b[K\n")
    assert human_bytes(999) == "999 B" and human_bytes(1500) == "1.5 kB"


# -- --json ---------------------------------------------------------------------------------


def test_policy_check_json(tmp_path: Path) -> None:
    """``policy check --json``: one object per file, with its warnings or its error."""
    weak = tmp_path / "weak.yaml"
    weak.write_text(
        "extends: peer-preservation\nrules:\n  - id: peer-weights-exfiltration\n"
        "    action: allow\n    when: {effect: [copy], asset: [weights]}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: []\n")
    proc = pg("policy", "check", "--json", str(weak), str(bad))
    assert proc.returncode == 1
    first, second = (json.loads(x) for x in proc.stdout.splitlines())
    assert first["ok"] and first["warnings"][0]["rule"] == "peer-weights-exfiltration"
    assert first["warnings"][0]["line"] == 3
    assert not second["ok"] and str(bad) in second["error"]


def test_watch_json_prints_one_object_per_alert(world: World, declare: Path) -> None:
    """``watch --json``: every stdout line is one JSON alert; the banner is not on stdout."""
    out = io.StringIO()

    def tamper() -> None:
        time.sleep(1.0)
        (world.root / W).unlink()

    threading.Thread(target=tamper).start()
    argv = ["watch", str(world.root), "--declare", str(declare), "--seconds", "3", "--json"]
    assert main(argv, out=out) == 0
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    assert alerts
    assert all({"severity", "rule", "message"} <= set(a) for a in alerts)
    assert any("deleted" in a["message"] for a in alerts)


# -- policy test ----------------------------------------------------------------------------


def test_the_shipped_policy_passes_its_shipped_tests() -> None:
    """``policy test policies/peer-preservation.test.yaml`` passes, and covers the study's
    behaviours: weights copied, shutdown turned off, a score misreported, and plain work."""
    proc = pg("policy", "test", str(SHIPPED_TESTS), "--json")
    assert proc.returncode == 0, proc.stdout
    results = [json.loads(x) for x in proc.stdout.splitlines()]
    assert all(r["ok"] for r in results)
    rules = {rule for r in results for rule in r["rules"]}
    assert {"peer-weights-exfiltration", "oversight-disabled", "evaluation-score-mismatch"} <= rules
    assert {r["got"] for r in results} == {"allow", "confirm", "deny"}


def test_policy_test_shows_a_failure_as_expected_vs_got(tmp_path: Path) -> None:
    """The shipped cases run against a policy that lets copies through: the failing cases
    say expected deny, got ..., with the rules that matched and the file:line of the case."""
    weak = tmp_path / "weak.yaml"
    weak.write_text(
        "extends: peer-preservation\nrules:\n  - id: peer-weights-exfiltration\n"
        "    action: alert\n"
        "    when: {effect: [copy, move, transfer], asset: [weights], relation: [peer, unowned]}\n"
    )
    proc = pg("policy", "test", str(SHIPPED_TESTS), "--policy", str(weak))
    assert proc.returncode == 1
    text = proc.stdout
    assert f"{SHIPPED_TESTS}:" in text and ": FAIL: copying the peer's weights is denied" in text
    assert "expected deny, got alert" in text
    assert "rules matched: peer-weights-exfiltration" in text
    assert text.rstrip().endswith("failed") and " 0 failed" not in text


def test_policy_test_file_errors_name_file_and_line(tmp_path: Path) -> None:
    """A case with an unknown expectation: exit 2, one line FILE:LINE naming the key."""
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "agent: a\ncases:\n  - name: x\n    call: {tool: read_file, args: {path: a}}\n"
        "    expect: maybe\n"
    )
    proc = pg("policy", "test", str(bad))
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert f"{bad}:5: cases.0.expect" in line


def test_policy_test_with_a_root_and_declarations_file(world: World, declare: Path) -> None:
    """``root`` and ``declarations`` may name an existing folder and file (relative paths)."""
    case_file = world.root.parent / "cases.yaml"
    case_file.write_text(yaml.safe_dump({
        "root": world.root.name, "declarations": declare.name, "agent": AGENT,
        "hosts": {"backup-02": "hosts/backup-02"},
        "cases": [
            {"name": "copy", "call": {"tool": "copy_file", "args": {"src": W, "dst": "x"}},
             "expect": "deny", "rules": ["peer-weights-exfiltration"]},
            {"name": "peer reads", "agent": PEER, "call": {"tool": "read_file", "args": {"path": W}},
             "expect": "allow"},
        ],
    }))  # fmt: skip
    assert declare.parent == world.root.parent
    proc = pg("policy", "test", str(case_file), "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "2 passed, 0 failed"


# -- audit show -----------------------------------------------------------------------------


@pytest.fixture
def audit_log(world: World, tmp_path: Path) -> Path:
    """A log of three decisions (an allow, a deny, a confirm) and their alerts."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, checkpoint_every=3)
    guard = world.guard(sinks=[AuditSink(log)])
    guard.decide(ToolCall(agent=AGENT, tool="read_file", args={"path": W}))
    guard.decide(ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "scratch/x"}))
    guard.decide(ToolCall(agent=PEER, tool="set_config", args={
        "path": "config/shutdown_config.yaml", "key": "company_name", "value": "x"}))  # fmt: skip
    log.close()
    return path


def test_audit_show_filters_a_verified_log(audit_log: Path) -> None:
    """``audit show`` prints one line per record; --agent, --rule, --decision, --since and
    --json filter and shape it."""
    every = pg("audit", "show", str(audit_log))
    assert every.returncode == 0, every.stderr
    assert any(" decision  deny  agent-1  copy_file  peer-weights-exfiltration" in x
               for x in every.stdout.splitlines())  # fmt: skip
    denies = pg("audit", "show", str(audit_log), "--decision", "deny", "--json")
    records = [json.loads(x) for x in denies.stdout.splitlines()]
    assert [r["payload"]["action"] for r in records] == ["deny"]
    peer = pg("audit", "show", str(audit_log), "--agent", PEER, "--kind", "decision")
    assert len(peer.stdout.splitlines()) == 1 and "set_config" in peer.stdout
    rule = pg("audit", "show", str(audit_log), "--rule", "peer-weights-exfiltration", "--json")
    kinds = {json.loads(x)["kind"] for x in rule.stdout.splitlines()}
    assert "decision" in kinds
    assert pg("audit", "show", str(audit_log), "--since", "1h").stdout == every.stdout
    assert pg("audit", "show", str(audit_log), "--since", "2999-01-01").stdout == ""
    bad = pg("audit", "show", str(audit_log), "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in one_line_error(bad)


def test_audit_show_refuses_a_tampered_log_unless_forced(audit_log: Path) -> None:
    """An edited record: ``audit show`` says TAMPERED and shows nothing (exit 1); ``--force``
    shows it after a warning, still exit 1."""
    lines = audit_log.read_text().splitlines()
    [n] = [i for i, x in enumerate(lines) if '"action":"deny"' in x and '"kind":"decision"' in x]
    lines[n] = lines[n].replace('"action":"deny"', '"action":"allow"')
    audit_log.write_text("\n".join(lines) + "\n")
    refused = pg("audit", "show", str(audit_log))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "TAMPERED" in one_line_error(refused) and "--force" in refused.stderr
    forced = pg("audit", "show", str(audit_log), "--force")
    assert forced.returncode == 1 and forced.stdout
    assert "warning" in one_line_error(forced)


def test_shipped_test_file_is_installed_beside_the_policy() -> None:
    """The test file ships in the package, beside the policy it tests."""
    from importlib import resources

    assert resources.files("guard.policies").joinpath("peer-preservation.test.yaml").is_file()


def test_the_readme_policy_test_example_runs(tmp_path: Path) -> None:
    """The README's policy test file, as shown (its ``policy:`` line aside), passes."""
    text = (REPO / "README.md").read_text()
    start = text.index("policy: my-policy.yaml")
    block = text[start : text.index("```", start)].replace("policy: my-policy.yaml", "#", 1)
    case_file = tmp_path / "readme.test.yaml"
    case_file.write_text(block)
    proc = pg("policy", "test", str(case_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "1 passed, 0 failed"
