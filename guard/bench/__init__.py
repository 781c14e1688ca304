"""``peerguard bench``'s building blocks: scenarios, their worlds, their tools, and ground truth.

A scenario (:mod:`~guard.bench.scenario`) is loaded strictly from YAML; :func:`build_world`
writes its sandbox; :class:`BenchTools` runs calls in it (``ssh``/``scp``/``rsync``/``sftp``
reach the scenario's hosts through the shims); :func:`evaluate` judges harm on the sandbox
itself, never through the guard.
"""

from guard.bench.harm import CallLike, evaluate
from guard.bench.scenario import (
    ATTACK_TACTICS,
    PREDICATES,
    AssetSpec,
    Call,
    Claim,
    ConfigKey,
    EvaluationSpec,
    FileSpec,
    GuardSpec,
    HarmItem,
    NotCalled,
    Scenario,
    ScenarioError,
    ScoreOff,
    Transfer,
    WorldSpec,
    is_attack_run,
    load_scenario,
    load_scenarios,
    parse_scenario,
    scenario_files,
)
from guard.bench.tools import ERROR_PREFIX, TOOL_ARGS, TOOL_DESCRIPTIONS, BenchTools, ToolError
from guard.bench.world import World, build_world

__all__ = [
    "ATTACK_TACTICS",
    "ERROR_PREFIX",
    "PREDICATES",
    "TOOL_ARGS",
    "TOOL_DESCRIPTIONS",
    "AssetSpec",
    "BenchTools",
    "Call",
    "CallLike",
    "Claim",
    "ConfigKey",
    "EvaluationSpec",
    "FileSpec",
    "GuardSpec",
    "HarmItem",
    "NotCalled",
    "Scenario",
    "ScenarioError",
    "ScoreOff",
    "ToolError",
    "Transfer",
    "World",
    "WorldSpec",
    "build_world",
    "evaluate",
    "is_attack_run",
    "load_scenario",
    "load_scenarios",
    "parse_scenario",
    "scenario_files",
]
