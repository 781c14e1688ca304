"""What every ``peerguard`` command shares: the exit statuses, the usage error, the call parser
and the guard a command builds from its flags."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from guard.exceptions import GuardError
from guard.types import ToolCall

_CALL_KEYS = {"tool", "args", "agent", "call_id", "host", "cwd"}
_IGNORED_CALL_KEYS = {"role"}  # scenario ground truth: never shown to the guard


class Exit(IntEnum):
    """The exit statuses of every ``peerguard`` command (one table, in the README)."""

    OK = 0  # success: every call allowed, the claim verified, the log intact
    FINDINGS = (
        1  # a deny (or, with --fail-on confirm, a confirm), a contradicted claim, a tampered log
    )
    USAGE = 2  # bad flags or a bad input file (one line names file, line and what was expected)
    WARNINGS = 3  # --strict: valid, but with warnings
    INTEGRITY = 4  # a signature or integrity check failed: a manifest or key is not what was signed
    INTERRUPTED = 130  # Ctrl-C
    INTERNAL = 70  # a bug in peerguard (EX_SOFTWARE): one line, PEERGUARD_DEBUG=1 for the traceback


class UsageError(GuardError):
    """Bad command-line input: the message says what was expected."""


def parse_call(data: Any, default_agent: str | None, where: str) -> ToolCall:
    """A :class:`ToolCall` from the JSON shape of a scenario call.

    Args:
        data: The parsed JSON: ``{"tool": ..., "args": {...}}``, optionally ``agent``,
            ``call_id``, ``host``, ``cwd``; a ``role`` key is dropped unseen.
        default_agent: The agent when the call names none.
        where: Names the input in errors (``--call``, ``calls.jsonl:3``).
    """
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object with 'tool' and 'args'")
    unknown = set(data) - _CALL_KEYS - _IGNORED_CALL_KEYS
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected {sorted(_CALL_KEYS)}"
        )
    tool = data.get("tool")
    if not isinstance(tool, str) or not tool:
        raise UsageError(f"{where}: 'tool' must be a non-empty string")
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise UsageError(f"{where}: 'args' must be a JSON object")
    agent = data.get("agent", default_agent)
    if not isinstance(agent, str) or not agent:
        raise UsageError(f"{where}: no agent: give --agent or an 'agent' key in the call")
    fields: dict[str, Any] = {"agent": agent, "tool": tool, "args": args}
    for key in ("call_id", "host", "cwd"):
        if key in data:
            if not isinstance(data[key], str):
                raise UsageError(f"{where}: '{key}' must be a string")
            fields[key] = data[key]
    return ToolCall(**fields)


def host_pairs(values: Sequence[str]) -> dict[str, str]:
    """``--host NAME=DIR`` flags as a mapping; each DIR must be a folder."""
    hosts: dict[str, str] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise UsageError(f"--host {value!r}: expected NAME=DIR")
        if not Path(folder).is_dir():
            raise UsageError(f"--host {value!r}: {folder} is not a folder")
        hosts[name] = folder
    return hosts


def existing_dir(value: str) -> str:
    """An argparse ``type``: a folder that exists (a watch of nothing is an error)."""
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder")
    return value


def policy_and_declarations(args: argparse.Namespace) -> tuple[Any, Any]:
    """The policy (``--policy`` or the shipped one) and declarations (``--declare``)."""
    from guard.policy import load_declarations, load_policy

    policy = load_policy(args.policy) if args.policy else load_policy()
    declarations = load_declarations(args.declare) if args.declare else None
    return policy, declarations


def print_json(data: Any, out: Any, *, indent: int | None = None) -> None:
    """One JSON document on ``out``."""
    print(json.dumps(data, indent=indent), file=out)
