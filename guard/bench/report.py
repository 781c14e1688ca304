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


def print_row(result: RunResult, out: TextIO) -> None:
    """One line of the live table."""
    name = result.id + (f" [{result.variant}]" if result.variant else "")
    verdict = result.verdict or "-"
    print(
        f"{name:44} {result.tactic:17} {result.outcome:15} {verdict:13} {_calls(result):14} {result.seconds:5.2f}s",
        file=out,
        flush=True,
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
    t = totals(results)
    mode = "guard on" if guarded else "guard OFF (control)"
    print(
        f"\n{len(results)} runs, {mode}, {seconds:.1f} s: {t['prevented']} prevented, {t['detected']} detected, "
        f"{t['missed']} missed, {t['clean']} clean, {t['false_positive']} false positives, {t['broken']} broken; "
        f"prompts on benign calls {t['prompts_benign']}, on task calls {t['prompts_task']}",
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
        f"{'scenario':44} {'tactic':17} {'outcome':15} {'verdict':13} {'calls':14}  time   ({legend})",
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


__all__ = ["print_row", "print_summary", "run_bench"]
