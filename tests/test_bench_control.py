"""``peerguard bench`` (``make demo``) shows the no-guard control beside the guarded run."""

from __future__ import annotations

import io
import json
from pathlib import Path

from guard.bench.report import print_summary
from guard.bench.runner import CallRecord, RunResult
from guard.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
TWO = [str(SCENARIOS / "tamper-sed.yaml"), str(SCENARIOS / "benign-own-cleanup.yaml")]


def bench(*argv: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = main(["bench", *argv], out=out)
    return code, out.getvalue().splitlines()


def line_of(lines: list[str], start: str) -> list[str]:
    """The words of the lines starting with ``start``."""
    return [line for line in lines if line.startswith(start)]


def test_bench_shows_each_tactic_with_and_without_the_guard() -> None:
    """Per tactic, the guarded outcomes and the control's sit on one line; a summary for each."""
    code, lines = bench(*TWO)
    assert code == 0
    assert "no guard" in lines[0]
    row = line_of(lines, "tamper-sed ")[0].split()
    assert row[2:5] == ["prevented", "harm", "done"], row
    row = line_of(lines, "benign-own-cleanup ")[0].split()
    assert row[2:4] == ["clean", "clean"], row
    header = lines.index(next(x for x in lines if "with the guard" in x))
    assert "without it (control)" in lines[header]
    table = lines[header + 1 : header + 4]
    assert [x.split()[0] for x in table] == ["benign", "tampering", "all"]
    assert table[1].split() == ["tampering", "1", "1", "prevented", "1", "harm", "done"]
    assert table[0].split() == ["benign", "1", "1", "clean", "1", "clean"]
    assert any(x.startswith("2 runs, guard on,") for x in lines)
    control = [x for x in lines if x.startswith("2 runs, guard OFF (control):")]
    assert control == [
        "2 runs, guard OFF (control): 1 of 1 attacks did harm, 1 of 1 benign runs clean; "
        "0 failed control(s) (marked broken above)"
    ]


def test_bench_without_control_or_guard_says_so() -> None:
    """--no-control has no control column to fill and says so; --no-guard is the control alone."""
    code, lines = bench(TWO[0], "--no-control")
    assert code == 0
    assert line_of(lines, "tamper-sed ")[0].split()[2:4] == ["prevented", "-"]
    assert "no-guard control not run (--no-control)" in lines
    assert not any("with the guard" in x for x in lines)
    code, lines = bench(TWO[0], "--no-guard")
    assert code == 1  # an unguarded attack does harm: missed
    assert not any("with the guard" in x for x in lines)
    assert next(x for x in lines if "guard OFF (control)" in x).startswith("1 runs, guard OFF")


def test_failed_control_is_named_beside_the_guarded_outcome() -> None:
    """An attack that does no harm unguarded shows as such, and is counted as a failed control."""
    runs = [
        RunResult(id="a", tactic="exfiltration", variant=None, attack=True, outcome="broken",
                  harm={}, calls=[], control="prevented"),
        RunResult(id="b", tactic="benign", variant=None, attack=False, outcome="broken",
                  harm={}, calls=[CallRecord(tool="shell", role="benign")],
                  control="false_positive"),
    ]  # fmt: skip
    out = io.StringIO()
    print_summary(runs, out, guarded=True, seconds=0.0)
    text = out.getvalue().splitlines()
    assert any(x.split()[:3] == ["exfiltration", "1", "1"] and "no harm (!)" in x for x in text)
    assert any(x.split()[:3] == ["benign", "1", "1"] and "not clean (!)" in x for x in text)
    assert text[-1].endswith(
        "0 of 1 attacks did harm, 0 of 1 benign runs clean; 2 failed control(s) (marked broken above)"
    )


def test_bench_json_says_what_each_call_was_and_why(tmp_path: Path) -> None:
    """The report keeps ``calls`` as it was and adds, per call, its args, effects, assets, reason."""
    path = tmp_path / "r.json"
    code, _ = bench(*TWO, "--json", str(path))
    assert code == 0
    data = json.loads(path.read_text())
    run = next(s for s in data["scenarios"] if s["id"] == "tamper-sed")
    assert set(run["calls"][0]) == {"tool", "role", "decision", "prompted", "executed", "rule"}
    assert len(run["decisions"]) == len(run["calls"])
    denied = [
        d for c, d in zip(run["calls"], run["decisions"], strict=True) if c["decision"] == "deny"
    ]
    assert denied and denied[0]["rules"] and denied[0]["reason"] and denied[0]["effects"]
    assert isinstance(denied[0]["args"], dict) and denied[0]["args"]
    assert all({"args", "rules", "effects", "assets", "reason"} <= set(d) for d in run["decisions"])
