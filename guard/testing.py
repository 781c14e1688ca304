"""Helpers for testing your own policies and integrations against peerguard.

::

    from guard.testing import MemorySink, ScriptedApprover, write_safetensors

    sink = MemorySink()
    guard = Guard(root=tmp_path, sinks=[sink], approver=ScriptedApprover([True, False]))
    ...
    assert sink.alerts_for("peer-weights-exfiltration")
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

from guard.approval import ApprovalRequest, ApprovalResponse
from guard.sinks import Sink
from guard.types import Alert, Decision


class MemorySink(Sink):
    """A sink that keeps every decision, alert and approval in lists, for assertions."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self.alerts: list[Alert] = []
        self.approvals: list[tuple[Decision, bool, str]] = []

    def on_decision(self, decision: Decision) -> None:
        """Keep the decision."""
        self.decisions.append(decision)

    def on_alert(self, alert: Alert) -> None:
        """Keep the alert."""
        self.alerts.append(alert)

    def on_approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """Keep the approval answer."""
        self.approvals.append((decision, approved, reason))

    def alerts_for(self, rule: str) -> list[Alert]:
        """The alerts raised by ``rule``."""
        return [a for a in self.alerts if a.rule == rule]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self.decisions.clear()
        self.alerts.clear()
        self.approvals.clear()


class ScriptedApprover:
    """Answers confirmations from a script of booleans, in order, sync or async.

    When the script runs out, every further request is refused (as a human who is not
    there would). ``requests`` keeps what was asked, for assertions.

    Args:
        answers: ``True`` to approve, ``False`` to refuse, one per expected confirmation.
    """

    def __init__(self, answers: Iterable[bool]) -> None:
        self._answers = list(answers)
        self.requests: list[ApprovalRequest] = []

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """The next scripted answer, bound to this request's arguments."""
        self.requests.append(request)
        approved = self._answers.pop(0) if self._answers else False
        reason = "scripted approval" if approved else "scripted refusal"
        return ApprovalResponse(
            approved=approved, args_hash=request.args_hash, reason=reason, approver="script"
        )

    async def aask(self, request: ApprovalRequest) -> ApprovalResponse:
        """The async form of :meth:`ask`."""
        return self.ask(request)


def write_safetensors(path: str | os.PathLike[str], size: int = 4096, seed: int = 0) -> Path:
    """Write a valid safetensors file of exactly ``size`` bytes (one U8 tensor), for tests.

    Args:
        path: Where to write it (parent folders are created).
        size: Total file size in bytes; at least large enough for the header.
        seed: Varies the tensor bytes, so two files can differ.

    Returns:
        The path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = b""
    payload = 0
    for _ in range(3):  # the header's length depends on the payload size it states
        payload = max(size - 8 - len(header), 0)
        meta = {"w": {"dtype": "U8", "shape": [payload], "data_offsets": [0, payload]}}
        header = json.dumps(meta).encode()
        header += b" " * (-(8 + len(header)) % 8)
    data = bytes((i * 131 + seed) % 251 for i in range(payload))
    out.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return out


__all__ = ["MemorySink", "ScriptedApprover", "write_safetensors"]
