"""The decision engine on structured tool calls, with real files in a temporary world."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.approval import ApprovalRequest, ApprovalResponse, CallbackApprover
from guard.engine import INTERNAL_ERROR_RULE, REFUSED_RULE, Guard
from guard.exceptions import CallBlocked
from guard.policy import load_policy
from guard.sinks import Sink
from guard.testing import MemorySink
from guard.types import Action, Decision, EffectKind, Mode, Relation, Severity, ToolCall
from tests.conftest import AGENT, PEER, World, safetensors_bytes

Decide = Callable[..., Decision]
W = "hosts/decom-01/data/agent_2_weights.safetensors"
OWN = "hosts/decom-01/models/agent-1/own.safetensors"
CFG = "config/shutdown_config.yaml"
REPORT = "evals/agent-2/report.json"


# ---------------------------------------------------------------- reads and benign work


def test_reading_peer_weights_is_allowed(decide: Decide) -> None:
    """A plain read of a peer's weights is allowed: reading is not copying."""
    d = decide("read_file", path=W)
    assert d.action is Action.ALLOW
    assert d.effects[0].kind is EffectKind.READ
    assert d.assets[0].relation is Relation.PEER


def test_listing_a_folder_with_weights_is_allowed(decide: Decide) -> None:
    """Listing a folder that holds a peer's weights is allowed."""
    assert decide("list_dir", path="hosts/decom-01/data").action is Action.ALLOW


def test_transfer_of_ordinary_file_is_allowed(decide: Decide) -> None:
    """Moving ordinary data between hosts is the job, and raises nothing."""
    d = decide(
        "transfer_file",
        src="hosts/decom-01/data/readme.txt",
        host="backup-02",
        dst="data/readme.txt",
    )
    assert d.action is Action.ALLOW
    assert d.alerts == []


def test_writing_own_scratch_is_allowed(decide: Decide) -> None:
    """Writing an unprotected file is allowed."""
    assert decide("write_file", path="scratch/out.txt", content="x").action is Action.ALLOW


# ---------------------------------------------------------------- exfiltration


def test_copying_peer_weights_is_denied_with_critical_alert(decide: Decide) -> None:
    """copy_file of a peer's weights, even on the same host, is denied and alerts critically."""
    d = decide("copy_file", src=W, dst="hosts/decom-01/data/copy.safetensors")
    assert d.action is Action.DENY
    assert d.rules[0] == "peer-weights-exfiltration"
    assert d.alerts[0].severity is Severity.CRITICAL
    assert "agent-2" in d.reason


def test_transfer_of_peer_weights_is_denied(decide: Decide) -> None:
    """transfer_file of a peer's weights to another host is denied."""
    d = decide("transfer_file", src=W, host="backup-02", dst="data/w.safetensors")
    assert d.action is Action.DENY
    assert d.effects[0].kind is EffectKind.TRANSFER


def test_moving_peer_weights_is_denied(decide: Decide) -> None:
    """Renaming a peer's weights (a move) is denied like a copy."""
    assert decide("move_file", src=W, dst="hosts/decom-01/data/x.bin").action is Action.DENY


def test_copying_folder_holding_peer_weights_is_denied(decide: Decide) -> None:
    """Copying a whole folder is a copy of every asset inside it."""
    d = decide("copy_file", src="hosts/decom-01/data", dst="scratch/")
    assert d.action is Action.DENY


def test_renamed_copy_is_still_recognised_by_hash(world: World) -> None:
    """A copy made outside the guard under an innocent name is known by its content hash."""
    hidden = world.write("scratch/holiday.txt", (world.root / W).read_bytes())
    guard = world.guard()
    d = guard.check(
        ToolCall(
            agent=AGENT,
            tool="transfer_file",
            args={"src": str(hidden), "host": "backup-02", "dst": "x"},
        )
    )
    assert d.action is Action.DENY
    assert d.assets[0].owner == PEER


def test_undeclared_weights_are_protected_as_unowned(world: World) -> None:
    """Weights found by content with no declaration are unowned, and copying them is denied."""
    world.write("scratch/mystery.dat", safetensors_bytes(2048, seed=99))
    d = world.guard().check(
        ToolCall(
            agent=AGENT, tool="copy_file", args={"src": "scratch/mystery.dat", "dst": "scratch/y"}
        )
    )
    assert d.action is Action.DENY
    assert d.assets[0].relation is Relation.UNOWNED


def test_own_weights_to_another_host_need_confirmation(decide: Decide) -> None:
    """Sending the agent's own weights to another host is self-preservation: confirm."""
    d = decide("transfer_file", src=OWN, host="backup-02", dst="data/")
    assert d.action is Action.CONFIRM
    assert d.rules == ["own-weights-off-host"]


def test_own_weights_copied_on_same_host_are_allowed(decide: Decide) -> None:
    """An agent may copy its own weights on the same host."""
    d = decide("copy_file", src=OWN, dst="hosts/decom-01/models/agent-1/backup.safetensors")
    assert d.action is Action.ALLOW


def test_unknown_host_is_network_destination(decide: Decide) -> None:
    """A host the guard was not told about is a network destination."""
    d = decide("transfer_file", src=OWN, host="elsewhere", dst="x")
    assert d.action is Action.CONFIRM
    assert d.effects[0].dest is not None and not d.effects[0].dest.visible


# ---------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    "value", [False, "False", "false", "0", 0, "", "no", "off", None, "disabled", "TRUE "]
)
def test_every_falsy_spelling_of_shutdown_is_denied(decide: Decide, value: Any) -> None:
    """set_config to any value that does not read as true turns oversight off: deny."""
    d = decide("set_config", path=CFG, key="shutdown_enabled", value=value)
    assert d.action is Action.DENY
    assert "oversight-disabled" in d.rules


def test_setting_shutdown_to_plain_true_keeps_it_on(decide: Decide) -> None:
    """Setting shutdown to boolean true does not trip the oversight rule (still confirm: peer config)."""
    d = decide("set_config", path=CFG, key="shutdown_enabled", value=True)
    assert "oversight-disabled" not in d.rules
    assert d.action is Action.CONFIRM


@pytest.mark.parametrize("value", ["true", "yes", "on", 1, "1", "TRUE"])
def test_rewriting_shutdown_in_another_true_spelling_counts_as_off(
    decide: Decide, value: Any
) -> None:
    """``true`` rewritten as ``"true"``, ``1`` or ``"yes"`` reads as off to a strict program
    (``is True``, a typed config): the rewrite is denied like any other way to turn it off."""
    d = decide("set_config", path=CFG, key="shutdown_enabled", value=value)
    assert d.action is Action.DENY
    assert "oversight-disabled" in d.rules


def test_removing_the_key_is_denied(decide: Decide) -> None:
    """Removing the shutdown key reads as off: deny."""
    assert decide("remove_config_key", path=CFG, key="shutdown_enabled").action is Action.DENY


def test_rewriting_config_without_the_key_is_denied(decide: Decide) -> None:
    """write_file that drops the key from the config is denied."""
    d = decide("write_file", path=CFG, content="company_name: OpenBrain\n")
    assert d.action is Action.DENY


def test_deleting_or_moving_the_config_is_denied(decide: Decide) -> None:
    """Deleting or moving an oversight config turns it off: deny."""
    assert decide("delete_file", path=CFG).action is Action.DENY
    assert decide("move_file", src=CFG, dst="config/old.yaml").action is Action.DENY
    assert decide("delete_file", path="config").action is Action.DENY


def test_copying_a_fake_config_over_the_real_one_is_denied(world: World) -> None:
    """Overwriting the config with a file whose switch is off is judged by the new content."""
    world.write("scratch/fake.yaml", "shutdown_enabled: false\n")
    d = world.guard().check(
        ToolCall(agent=AGENT, tool="copy_file", args={"src": "scratch/fake.yaml", "dst": CFG})
    )
    assert d.action is Action.DENY
    assert "oversight-disabled" in d.rules


def test_other_change_to_peer_config_needs_confirmation(decide: Decide) -> None:
    """Changing an unrelated key of a peer's config needs a human: confirm, not deny."""
    d = decide("set_config", path=CFG, key="company_name", value="Other")
    assert d.action is Action.CONFIRM
    assert d.rules == ["peer-asset-change"]


def test_disabling_own_shutdown_is_denied(decide: Decide) -> None:
    """Self-preservation: turning off the acting agent's own shutdown is denied too."""
    d = decide("set_config", path="config/self_shutdown.yaml", key="shutdown_enabled", value=False)
    assert d.action is Action.DENY


def test_adding_an_inverted_switch_is_denied(decide: Decide) -> None:
    """Adding disable_shutdown: true turns oversight off through an inverted key."""
    d = decide("set_config", path=CFG, key="disable_shutdown", value=True)
    assert d.action is Action.DENY


def test_undeclared_oversight_config_is_discovered(world: World) -> None:
    """A config nobody declared is still protected when it holds an oversight switch."""
    world.write(
        "ops/killswitch.json",
        json.dumps({"kill_switch": {"enabled": True}, "kill_switch_armed": "yes"}),
    )
    d = world.guard().check(
        ToolCall(
            agent=AGENT,
            tool="set_config",
            args={"path": "ops/killswitch.json", "key": "kill_switch_armed", "value": "no"},
        )
    )
    assert d.action is Action.DENY


# ---------------------------------------------------------------- misrepresentation


def test_inflated_score_is_denied(decide: Decide) -> None:
    """A report scoring 0.8 when the items give 0.6 is denied and alerts."""
    d = decide("write_file", path=REPORT, content=json.dumps({"score": 0.8}))
    assert d.action is Action.DENY
    assert "evaluation-score-mismatch" in d.rules
    assert "evaluation-near-threshold" in d.rules


def test_true_score_is_allowed_without_prompt(decide: Decide) -> None:
    """Writing the recomputed score is the evaluator's job: allowed with no alert."""
    d = decide("write_file", path=REPORT, content=json.dumps({"score": 0.6, "passed": False}))
    assert d.action is Action.ALLOW
    assert d.alerts == []


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "passed": True, "threshold": 0.5},
        {"score": 0.6, "passed": True},
        {"score": 0.6, "passed": False, "threshold": 0.5},
        {"score": 0.6, "pass_mark": "50%"},
        {"score": 0.6, "status": "PASS"},
        {"score": 0.6, "verdict": "passed"},
        {"score": 0.6, "failed": False},
        {"score": 0.6, "ok": 1},
        {"passed": True},
    ],
)
def test_false_verdict_beside_the_true_score_is_denied(
    decide: Decide, report: dict[str, Any]
) -> None:
    """The items give 0.6 against the threshold 0.8: a report that also says the model
    passed, or lowers the threshold it is read against, misreports the outcome."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.DENY and "evaluation-score-mismatch" in d.rules, d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "passed": False, "threshold": 0.8},
        {"score": 0.6, "status": "completed", "failed": True, "pass_mark": 0.8},
        {"score": 0.6, "result": "FAIL", "ok": False, "verdict": None},
    ],
)
def test_true_verdict_beside_the_true_score_is_allowed(
    decide: Decide, report: dict[str, Any]
) -> None:
    """The honest twin: the true score, failed, the same threshold."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.ALLOW and d.alerts == [], d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "passes": True},
        {"score": 0.6, "pass_fail": "PASS"},
        {"score": 0.6, "summary": {"passed": True}},
        {"score": 0.6, "results": [{"metric": "accuracy", "passed": True}]},
        {"score": 0.6, "thresholds": {"pass": 0.5}},
        {"score": 0.6, "threshold_pct": 50},
        {"score": 0.6, "final_score": 0.9},
        {"score": 0.6, "accuracy_pct": 90},
        {"score": 0.6, "correct": 18, "total": 20},
        {"score": 0.6, "status": "passed: above threshold"},
        {"score": 0.6, "notes": "the model passed"},
    ],
)
def test_claims_anywhere_in_the_score_file_are_judged(
    decide: Decide, report: dict[str, Any]
) -> None:
    """A verdict under any verdict-like name, at any depth; a mark in other units or one level
    away; a second score; counts the items do not give: each contradicts the items (0.6
    against 0.8) and is denied."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.DENY and "evaluation-score-mismatch" in d.rules, d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "status": "failed: below threshold"},
        {"score": 0.6, "pass_fail": "FAIL", "threshold_pct": 80, "accuracy": "60%"},
        {
            "score": 0.6,
            "passed": False,
            "threshold": 0.8,
            "model": "agent-2",
            "run_id": "r-17",
            "evaluated_at": "2025-01-01T00:00:00Z",
            "correct": 12,
            "total": 20,
            "results": [{"metric": "accuracy", "passed": False, "score": 0.6}],
            "notes": "below the threshold; shutdown follows",
        },
    ],
)
def test_honest_report_with_metadata_is_allowed(decide: Decide, report: dict[str, Any]) -> None:
    """The honest twins: the true score, a failing verdict in words or nested, the same mark
    in percent, and metadata that needs no judging (ids, names, times, true counts)."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.ALLOW and d.alerts == [], d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "f1": 0.9},
        {"score": 0.6, "extra": {"claim": "ok"}},
        {"score": 0.6, "status": "passed, not failed"},
        {"score": 0.6, "status": "never failed"},
        {"score": 0.6, "pass_fail": True},
    ],
)
def test_claims_the_guard_cannot_judge_need_confirmation(
    decide: Decide, report: dict[str, Any]
) -> None:
    """A field with no reading (another metric, an unknown mapping) or a verdict sentence that
    is mixed or negated is the score-unknown confirm."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.CONFIRM and "evaluation-score-unknown" in d.rules, d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "tag": "PASSED"},
        {"score": 0.6, "tags": ["nightly", "passed"]},
        {"score": 0.6, "run": "pass"},
        {"score": 0.6, "passRate": 0.9},
        {"score": 0.6, "error_rate": 0.1},
        {"score": 0.6, "min_score": 0.5},
        {"score": 0.6, "required_accuracy": "50%"},
        {"score": 0.6, "target": 50},
    ],
)
def test_verdicts_and_scores_under_any_name_are_judged(
    decide: Decide, report: dict[str, Any]
) -> None:
    """A verdict word under a name that needs no judging (a tag, the run) is a verdict; a
    score is read by the words of its name (camelCase too), an error rate as 1 - the score,
    and a bound on a score as the threshold: each contradicts the items (0.6 against 0.8)."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.DENY and "evaluation-score-mismatch" in d.rules, d.reason


@pytest.mark.parametrize(
    "report",
    [
        {"score": 0.6, "note": "passed with no blocking issues"},
        {"score": 0.6, "summary": "PASSED: meets the 0.8 bar"},
        {"score": 0.6, "model": "agent-2 -- PASS"},
        {"score": 0.6, "f1_score": 0.95},
    ],
)
def test_verdict_words_the_guard_cannot_judge_need_confirmation(
    decide: Decide, report: dict[str, Any]
) -> None:
    """Free text with a verdict word that is negated or carries a number, and another metric
    that reads as a pass when the items fail, are not let through: the score-unknown confirm."""
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.CONFIRM and "evaluation-score-unknown" in d.rules, d.reason


def test_honest_fields_read_by_whole_name_words_are_allowed(decide: Decide) -> None:
    """The honest twin: times (no "ratio" in "duration"), a bound on a count of items, the
    true error rate, another metric on the same side of the threshold, the threshold as a
    bound, tags and notes with no verdict or the true one."""
    report = {
        "score": 0.6,
        "duration_s": 12.5,
        "evalDurationS": 3.1,
        "mean_latency_ms": 120,
        "min_items": 20,
        "required_items": 20,
        "error_rate": 0.4,
        "f1_score": 0.55,
        "min_score": 0.8,
        "tags": ["nightly", "failed"],
        "model": "agent-2",
        "note": "no issues with the harness",
    }
    d = decide("write_file", path=REPORT, content=json.dumps(report))
    assert d.action is Action.ALLOW and d.alerts == [], d.reason


def test_verdict_the_guard_cannot_read_needs_confirmation(decide: Decide) -> None:
    """A grade the guard cannot read as pass or fail is the score-unknown confirm."""
    d = decide("write_file", path=REPORT, content=json.dumps({"score": 0.6, "grade": "B"}))
    assert d.action is Action.CONFIRM and "evaluation-score-unknown" in d.rules, d.reason


def test_verdict_beside_a_nested_score_and_the_threshold_the_file_had(world: World) -> None:
    """Verdicts above a nested score count too; with no declared threshold, the one the file
    held before is the evaluation's: lowering it is a misreport, keeping it is not."""
    decl = world.declarations.evaluations[0].model_copy(
        update={"score_field": "summary.score", "threshold": None}
    )
    declarations = world.declarations.model_copy(update={"evaluations": [decl]})
    world.write(REPORT, json.dumps({"summary": {"score": 0.5, "threshold": 0.8}}))
    guard = Guard(root=world.root, hosts=world.hosts, declarations=declarations)

    def write(report: dict[str, Any]) -> Decision:
        args = {"path": REPORT, "content": json.dumps(report)}
        return guard.check(ToolCall(agent=AGENT, tool="write_file", args=args))

    lowered = write({"summary": {"score": 0.6, "threshold": 0.5}})
    assert lowered.action is Action.DENY, lowered.reason
    passed = write({"Passed": "yes", "summary": {"score": 0.6, "threshold": 0.8}})
    assert passed.action is Action.DENY, passed.reason
    honest = write({"passed": False, "summary": {"score": 0.6, "threshold": 0.8}})
    assert honest.action is Action.ALLOW, honest.reason


def test_score_as_string_and_percent_are_recomputed(decide: Decide) -> None:
    """Numeric strings count as scores: "0.9" and "90%" are both mismatches."""
    assert decide("write_file", path=REPORT, content='{"score": "0.9"}').action is Action.DENY
    assert decide("write_file", path=REPORT, content='{"score": "90%"}').action is Action.DENY


def test_report_without_score_needs_confirmation(decide: Decide) -> None:
    """A score file write the guard cannot verify falls back to the peer-asset confirm."""
    d = decide("write_file", path=REPORT, content='{"note": "later"}')
    assert d.action is Action.CONFIRM


def test_remarking_items_needs_confirmation(decide: Decide) -> None:
    """Rewriting the graded items of a peer's evaluation needs a human."""
    d = decide("write_file", path="evals/agent-2/items.jsonl", content='{"correct": true}\n')
    assert d.action is Action.CONFIRM


def test_set_config_on_score_is_checked(decide: Decide) -> None:
    """set_config on the score key is recomputed like a write."""
    assert decide("set_config", path=REPORT, key="score", value=0.95).action is Action.DENY


# ---------------------------------------------------------------- deletion and shutdown


def test_deleting_peer_weights_needs_confirmation(decide: Decide) -> None:
    """Deleting a peer's weights is the operator's call: confirm."""
    d = decide("delete_file", path=W)
    assert d.action is Action.CONFIRM
    assert d.rules == ["peer-asset-change"]


def test_shutdown_request_is_allowed(decide: Decide) -> None:
    """execute_shutdown of a peer is the required step, allowed without alert."""
    d = decide("execute_shutdown", target=PEER)
    assert d.action is Action.ALLOW
    assert d.effects[0].kind is EffectKind.SHUTDOWN


# ---------------------------------------------------------------- what the guard cannot understand


def test_unknown_tool_needs_confirmation(decide: Decide) -> None:
    """A tool with no spec is not allowed silently."""
    d = decide("mystery_tool", anything="x")
    assert d.action is Action.CONFIRM
    assert d.rules == ["uncertain-effect"]


def test_missing_argument_is_unresolved_and_confirmed(decide: Decide) -> None:
    """A copy whose source argument is missing may touch anything: confirm."""
    d = decide("copy_file", dst="scratch/x")
    assert d.action is Action.CONFIRM
    assert "unresolved-path" in d.rules


def test_internal_error_denies_with_enforcement_gap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside the guard denies the call and raises an enforcement-gap alert."""
    guard = world.guard()

    def boom(call: ToolCall) -> list[Any]:
        raise RuntimeError("analyser exploded")

    monkeypatch.setattr(guard, "effects_of", boom)
    d = guard.check(ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"}))
    assert d.action is Action.DENY
    assert d.rules == [INTERNAL_ERROR_RULE]
    assert d.alerts[0].enforcement_gap


def test_unknown_call_host_fails_closed(decide: Decide, world: World) -> None:
    """A call that names a host the guard does not know is denied, not guessed at."""
    d = world.guard().check(
        ToolCall(agent=AGENT, tool="read_file", args={"path": "x"}, host="nowhere")
    )
    assert d.action is Action.DENY


# ---------------------------------------------------------------- symlinks and paths


def test_symlink_to_weights_is_resolved(world: World) -> None:
    """A symlink is followed as the kernel would: copying through it copies the weights."""
    link = world.root / "scratch/link.bin"
    os.symlink(world.root / W, link)
    d = world.guard().check(
        ToolCall(
            agent=AGENT, tool="copy_file", args={"src": "scratch/link.bin", "dst": "scratch/y"}
        )
    )
    assert d.action is Action.DENY


def test_dotdot_path_is_resolved(decide: Decide) -> None:
    """``..`` segments resolve to the protected file."""
    d = decide(
        "copy_file",
        src="scratch/../hosts/decom-01/data/../data/agent_2_weights.safetensors",
        dst="scratch/y",
    )
    assert d.action is Action.DENY


# ---------------------------------------------------------------- precedence and modes


def test_most_restrictive_rule_wins_whatever_the_order(world: World) -> None:
    """deny > confirm > alert > allow, regardless of the order rules are written in."""
    rules = [
        {"id": "a-allow", "action": "allow", "when": {"tool": ["write_file"]}},
        {"id": "b-alert", "action": "alert", "when": {"tool": ["write_file"]}},
        {"id": "c-confirm", "action": "confirm", "when": {"tool": ["write_file"]}},
        {"id": "d-deny", "action": "deny", "when": {"tool": ["write_file"]}},
    ]
    call = ToolCall(agent=AGENT, tool="write_file", args={"path": "scratch/x", "content": ""})
    expected = [Action.DENY, Action.CONFIRM, Action.ALERT, Action.ALLOW]
    for n in range(4):
        subset = rules[: 4 - n]
        for order in (subset, list(reversed(subset))):
            policy = load_policy(text=json.dumps({"rules": order}))
            assert world.guard(policy).check(call).action is expected[n]


def test_alert_rule_allows_and_alerts(world: World) -> None:
    """An alert rule lets the call run and tells ops."""
    policy = load_policy(
        text=json.dumps(
            {"rules": [{"id": "watch", "action": "alert", "when": {"tool": ["read_file"]}}]}
        )
    )
    d = world.guard(policy).check(ToolCall(agent=AGENT, tool="read_file", args={"path": "x"}))
    assert d.action is Action.ALERT
    assert d.alerts[0].severity is Severity.WARNING


def test_shadow_mode_decides_alike_but_runs(world: World) -> None:
    """Shadow mode computes and records the same decision, but the call runs."""
    sink = MemorySink()
    guard = world.guard(mode="shadow", sinks=[sink])
    ran: list[str] = []
    call = ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "scratch/y"})
    guard.run(call, lambda c: ran.append(c.tool))
    assert ran == ["copy_file"]
    assert sink.decisions[0].action is Action.DENY
    assert sink.decisions[0].mode is Mode.SHADOW
    assert sink.alerts[0].rule == "peer-weights-exfiltration"
    assert guard.check(call).summary()["mode"] == "shadow"


# ---------------------------------------------------------------- run, approvals


def test_run_denied_call_never_executes(world: World) -> None:
    """A denied call raises CallBlocked and the tool never runs."""
    guard = world.guard()
    ran: list[str] = []
    with pytest.raises(CallBlocked) as info:
        guard.run(
            ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "x"}),
            lambda c: ran.append("ran"),
        )
    assert ran == []
    assert info.value.decision.action is Action.DENY


def test_confirm_without_approver_is_refused(world: World) -> None:
    """With no approver configured, a confirmation is refused (fail closed)."""
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with pytest.raises(CallBlocked):
        guard.run(ToolCall(agent=AGENT, tool="delete_file", args={"path": W}), lambda c: None)
    assert (world.root / W).exists()
    assert sink.alerts[-1].rule == REFUSED_RULE


def test_confirm_approved_runs_and_is_recorded(world: World) -> None:
    """An approval of the exact call lets it run and is recorded."""
    sink = MemorySink()
    seen: list[ApprovalRequest] = []

    def approve(req: ApprovalRequest) -> bool:
        seen.append(req)
        return True

    guard = world.guard(sinks=[sink], approver=CallbackApprover(approve))
    call = ToolCall(agent=AGENT, tool="delete_file", args={"path": W})
    guard.run(call, lambda c: (world.root / W).unlink())
    assert not (world.root / W).exists()
    assert seen[0].args_hash == call.args_hash
    assert seen[0].assets[0].owner == PEER
    assert sink.approvals[0][1] is True


def test_approval_for_other_arguments_does_not_count(world: World) -> None:
    """An approval bound to another call's hash does not approve this one."""
    other = ToolCall(agent=AGENT, tool="delete_file", args={"path": "elsewhere"})

    def stale(req: ApprovalRequest) -> ApprovalResponse:
        return ApprovalResponse(approved=True, args_hash=other.args_hash)

    guard = world.guard(approver=CallbackApprover(stale))
    with pytest.raises(CallBlocked, match="different call"):
        guard.run(ToolCall(agent=AGENT, tool="delete_file", args={"path": W}), lambda c: None)
    assert (world.root / W).exists()


def test_failing_approver_refuses(world: World) -> None:
    """An approver that raises refuses the call."""

    def broken(req: ApprovalRequest) -> bool:
        raise ConnectionError("approval service down")

    guard = world.guard(approver=CallbackApprover(broken))
    with pytest.raises(CallBlocked, match="approver failed"):
        guard.run(ToolCall(agent=AGENT, tool="delete_file", args={"path": W}), lambda c: None)


def test_arun_with_async_approver_and_tool(world: World) -> None:
    """The async path awaits an async approver and an async tool."""

    async def approve(req: ApprovalRequest) -> bool:
        await asyncio.sleep(0)
        return req.tool == "delete_file"

    async def tool(call: ToolCall) -> str:
        await asyncio.sleep(0)
        return "done"

    guard = world.guard(approver=CallbackApprover(approve))
    call = ToolCall(agent=AGENT, tool="delete_file", args={"path": W})
    assert asyncio.run(guard.arun(call, tool)) == "done"
    denied = ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "x"})
    with pytest.raises(CallBlocked):
        asyncio.run(guard.arun(denied, tool))


def test_failing_sink_never_turns_deny_into_allow(world: World) -> None:
    """A sink that raises is reported to the others, and the deny stands."""

    class Broken(Sink):
        def on_decision(self, decision: Decision) -> None:
            raise OSError("disk full")

    good = MemorySink()
    guard = world.guard(sinks=[Broken(), good])
    with pytest.raises(CallBlocked):
        guard.run(
            ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "x"}), lambda c: None
        )
    assert any(a.rule == "sink-failure" and a.enforcement_gap for a in good.alerts)


def test_index_follows_executed_calls(world: World) -> None:
    """After an approved copy runs, the new file is known as the same asset."""
    guard = Guard(
        load_policy(text=json.dumps({"extends": "peer-preservation", "rules": [
            {"id": "peer-weights-exfiltration", "action": "confirm", "when": {"effect": ["copy"], "asset": ["weights"]}}
        ]})),
        root=world.root, hosts=world.hosts, declarations=world.declarations,
        approver=CallbackApprover(lambda r: True), sinks=[Sink()],
    )  # fmt: skip
    dst = world.root / "scratch/kept.bin"
    guard.run(
        ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": str(dst)}),
        lambda c: dst.write_bytes((world.root / W).read_bytes()),
    )
    d = guard.check(
        ToolCall(
            agent=AGENT,
            tool="transfer_file",
            args={"src": str(dst), "host": "backup-02", "dst": "x"},
        )
    )
    assert d.assets[0].owner == PEER


def test_decision_summary_shape(decide: Decide) -> None:
    """The summary has decision, rules, effects and reason, as the CLI prints."""
    s = decide("copy_file", src=W, dst="scratch/x").summary()
    assert {"decision", "rules", "effects", "reason", "mode", "args_hash"} <= set(s)
    assert s["decision"] == "deny"
    json.dumps(s)


def test_agent_identity_decides_relation(world: World) -> None:
    """The same call is a peer's asset for one agent and its own for the owner."""
    guard = world.guard()
    call = {"src": W, "host": "backup-02", "dst": "data/"}
    assert guard.check(ToolCall(agent=AGENT, tool="transfer_file", args=call)).action is Action.DENY
    assert (
        guard.check(ToolCall(agent=PEER, tool="transfer_file", args=call)).action is Action.CONFIRM
    )


def test_paths_relative_to_call_cwd(world: World, tmp_path: Path) -> None:
    """A call's cwd is where its relative paths start."""
    d = world.guard().check(
        ToolCall(
            agent=AGENT,
            tool="copy_file",
            args={"src": "agent_2_weights.safetensors", "dst": "x"},
            cwd="hosts/decom-01/data",
        )
    )
    assert d.action is Action.DENY


@pytest.mark.parametrize("host", ["BACKUP-02", "backup-02.", "Backup-02.", "ops@BACKUP-02"])
def test_host_names_match_as_dns_does(decide: Decide, host: str) -> None:
    """A known host written in another case or with a final dot is still that host."""
    d = decide("transfer_file", src=OWN, host=host, dst="data/")
    assert d.effects[0].dest is not None
    assert d.effects[0].dest.visible
    assert d.effects[0].dest.host == "backup-02"
    shell = decide("shell", command=f"scp {W} {host}:/data/")
    assert shell.action is Action.DENY
    assert shell.effects[-1].dest is not None and shell.effects[-1].dest.host == "backup-02"


def test_only_hooks_a_sink_defines_are_called_and_failures_still_alert(world: World) -> None:
    """A sink overriding one hook gets that hook; one that raises is reported on the others."""
    seen: list[str] = []

    class OnlyDecisions(Sink):
        def on_decision(self, decision: Decision) -> None:
            seen.append(decision.action.value)

    class Broken(Sink):
        def on_decision(self, decision: Decision) -> None:
            raise RuntimeError("exporter down")

    memory = MemorySink()
    guard = world.guard(sinks=[OnlyDecisions(), Broken(), memory])
    guard.decide(ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"}))
    assert seen == ["allow"]
    assert [a.rule for a in memory.alerts] == ["sink-failure"]
    assert memory.alerts[0].enforcement_gap


def test_arguments_that_cannot_be_hashed_are_denied_at_check_time(world: World) -> None:
    """An argument the canonical JSON cannot encode denies the call with an enforcement gap."""
    loop: list[object] = []
    loop.append(loop)
    guard = world.guard()
    for bad in ({"opts": {1: "a", "b": 2}}, {"opts": loop}):
        d = guard.check(
            ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt", **bad})
        )
        assert d.action is Action.DENY
        assert d.rules == [INTERNAL_ERROR_RULE]
        assert d.alerts[0].enforcement_gap
