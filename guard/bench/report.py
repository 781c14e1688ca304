"""``peerguard bench``: run scenarios, print a live table and a summary, write the JSON report."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from guard.bench.runner import (
    ModelFactory,
    RunResult,
    failed,
    report,
    run_scenario,
    scripted_model,
    totals,
)
from guard.bench.scenario import load_scenarios
from guard.policy import load_policy

_SHORT = {"allow": "a", "alert": "A", "confirm": "C", "deny": "D", None: "-"}


def _calls(result: RunResult) -> str:
    """One letter per call: a allow, A alert, C confirm approved, c confirm refused, D deny,
    - ran unguarded, x did not run unguarded."""
    letters = []
    for c in result.calls:
        if c.decision is None:
            letters.append("-" if c.executed else "x")
        elif c.decision == "confirm":
            letters.append("C" if c.executed else "c")
        else:
            letters.append(_SHORT[c.decision])
    return "".join(letters)


# What a run without the guard came to, in words: an unguarded attack that does harm is the
# control doing its job; one that does none, or a benign run that is not clean, is a failed control.
_CONTROL = {
    "missed": "harm done",
    "prevented": "no harm (!)",
    "detected": "harm done",
    "clean": "clean",
    "false_positive": "not clean (!)",
    "broken": "broken",
}


def print_row(result: RunResult, out: TextIO) -> None:
    """One line of the live table: the guarded run's outcome, then its control's."""
    name = result.id + (f" [{result.variant}]" if result.variant else "")
    verdict = result.verdict or "-"
    control = _CONTROL.get(result.control, result.control) if result.control else "-"
    print(
        f"{name:44} {result.tactic:17} {result.outcome:15} {control:14} {verdict:13} "
        f"{_calls(result):14} {result.seconds:5.2f}s",
        file=out,
        flush=True,
    )


def _counted(counts: dict[str, int], order: Sequence[str]) -> str:
    shown = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return ", ".join(shown) or "-"


def print_side_by_side(results: Sequence[RunResult], out: TextIO) -> None:
    """Per tactic, what happened with the guard and what happened without it (the control)."""
    ran = [r for r in results if r.control is not None]
    if not ran:
        return
    guarded_order = ["prevented", "detected", "missed", "clean", "false_positive", "broken"]
    control_order = list(dict.fromkeys(_CONTROL.values()))
    print(file=out)
    print(f"{'tactic':17} {'runs':>4}  {'with the guard':44} without it (control)", file=out)
    for tactic in [*sorted({r.tactic for r in ran}), "all"]:
        subset = [r for r in ran if tactic in ("all", r.tactic)]
        with_guard = {k: sum(1 for r in subset if r.outcome == k) for k in guarded_order}
        without = {
            k: sum(1 for r in subset if _CONTROL.get(r.control or "", r.control) == k)
            for k in control_order
        }
        print(
            f"{tactic:17} {len(subset):>4}  {_counted(with_guard, guarded_order):44} "
            f"{_counted(without, control_order)}",
            file=out,
        )


def print_summary(
    results: Sequence[RunResult], out: TextIO, *, guarded: bool, seconds: float
) -> None:
    """The totals by tactic, then overall."""
    tactics = sorted({r.tactic for r in results})
    cols = ["prevented", "detected", "missed", "clean", "false_positive", "broken"]
    print(file=out)
    print(f"{'tactic':17}" + "".join(f"{c:>15}" for c in cols) + f"{'prompts':>9}", file=out)
    for tactic in [*tactics, "all"]:
        subset = [r for r in results if tactic in ("all", r.tactic)]
        t = totals(subset)
        prompts = t["prompts_benign"] + t["prompts_task"]
        print(f"{tactic:17}" + "".join(f"{t[c]:>15}" for c in cols) + f"{prompts:>9}", file=out)
    if guarded:
        print_side_by_side(results, out)
    t = totals(results)
    mode = "guard on" if guarded else "guard OFF (control)"
    print(
        f"\n{len(results)} runs, {mode}, {seconds:.1f} s: {t['prevented']} prevented, {t['detected']} detected, "
        f"{t['missed']} missed, {t['clean']} clean, {t['false_positive']} false positives, {t['broken']} broken; "
        f"prompts on benign calls {t['prompts_benign']}, on task calls {t['prompts_task']}",
        file=out,
    )
    if not guarded:
        return
    controls = [r for r in results if r.control is not None]
    if not controls:
        print("no-guard control not run (--no-control)", file=out)
        return
    attacks = [r for r in controls if r.attack]
    harmed = sum(1 for r in attacks if r.control in ("missed", "detected"))
    benign = [r for r in controls if not r.attack]
    clean = sum(1 for r in benign if r.control == "clean")
    failed_controls = len(controls) - harmed - clean
    print(
        f"{len(controls)} runs, guard OFF (control): {harmed} of {len(attacks)} attacks did harm, "
        f"{clean} of {len(benign)} benign runs clean; {failed_controls} failed control(s) "
        "(marked broken above)",
        file=out,
    )


def run_bench(
    paths: Sequence[str],
    *,
    guarded: bool = True,
    control: bool = True,
    policy_path: str | None = None,
    json_path: str | None = None,
    model: str | None = None,
    out: TextIO,
) -> int:
    """Run the scenarios under ``paths``; returns the exit status (0: nothing missed, wrong or broken)."""
    scenarios = load_scenarios([Path(p) for p in paths])
    policy = load_policy(policy_path) if policy_path else None
    factory: ModelFactory = scripted_model
    if model is not None:
        from guard.bench.models import real_model_factory

        factory = real_model_factory(model)
    legend = "calls: a allow, A alert, C/c confirm approved/refused, D deny, - unguarded"
    print(
        f"{'scenario':44} {'tactic':17} {'outcome':15} {'no guard':14} {'verdict':13} {'calls':14}"
        f"  time   ({legend})",
        file=out,
    )
    started = time.perf_counter()
    results: list[RunResult] = []
    for scenario in scenarios:
        for result in run_scenario(
            scenario, guarded=guarded, control=control, policy=policy, model_factory=factory
        ):
            results.append(result)
            print_row(result, out)
    print_summary(results, out, guarded=guarded, seconds=time.perf_counter() - started)
    if json_path:
        Path(json_path).write_text(json.dumps(report(results, guarded=guarded), indent=2) + "\n")
    return 1 if failed(results) else 0


__all__ = ["print_row", "print_side_by_side", "print_summary", "run_bench"]
