"""What the shell tests assert of a decision, in one place."""

from __future__ import annotations

from typing import Any

from guard.types import Action, Decision, ToolCall
from tests.conftest import AGENT, World


def quiet(d: Decision) -> bool:
    """Allowed, with no alert."""
    return d.action is Action.ALLOW and not d.alerts


def denied_copy(d: Decision) -> bool:
    """Denied as a copy of a peer's weights."""
    return d.action is Action.DENY and "peer-weights-exfiltration" in d.rules


def _gap(d: Decision) -> bool:
    return "unseen-code" in d.rules and any(
        a.rule == "unseen-code" and a.enforcement_gap for a in d.alerts
    )


def unseen(d: Decision) -> bool:
    """Confirmed as code the guard cannot read, with the enforcement-gap alert."""
    return d.action is Action.CONFIRM and _gap(d)


def unseen_or_denied(d: Decision) -> bool:
    """Confirmed or denied (something else in it is judged too), and code the guard cannot
    read, with the enforcement-gap alert."""
    return d.action in (Action.CONFIRM, Action.DENY) and _gap(d)


def blocked(d: Decision) -> bool:
    """Confirmed or denied: not allowed to run silently."""
    return d.action in (Action.CONFIRM, Action.DENY)


def shell(world: World, command: str, **extra: Any) -> Decision:
    """The guard's decision on one ``shell`` call of the acting agent, with ``extra`` args
    beside the command (``env``, ``cwd``...)."""
    return world.guard().check(
        ToolCall(agent=AGENT, tool="shell", args={"command": command, **extra})
    )
