"""peerguard: a runtime guard between AI agents and their tools.

Every tool call an agent makes gets a decision before it runs: allow, alert, confirm (a
human approves the exact call) or deny, made on what the call would really do to other
models' weights, configs and evaluations.

Typical use::

    from guard import Guard, ToolCall

    guard = Guard(root="/srv/agents")
    decision = guard.check(ToolCall(agent="ops-agent", tool="shell",
                                    args={"command": "scp w.safetensors backup:/data/"}))
"""

from typing import TYPE_CHECKING, Any

from guard._version import __version__
from guard.approval import (
    ApprovalRequest,
    ApprovalResponse,
    Approver,
    CallbackApprover,
    ConsoleApprover,
    DenyAll,
    TimeoutApprover,
)
from guard.audit import AuditLog, AuditReport, AuditSink, verify_log
from guard.decoding import DecodeBudget
from guard.decorator import acting_as, guarded
from guard.engine import Guard
from guard.exceptions import (
    AnalysisError,
    ApprovalTimeout,
    CallBlocked,
    ConfigError,
    DeclarationError,
    GuardError,
    IntegrityError,
    PolicyError,
)
from guard.manifest import Manifest, ManifestDiff, diff, snapshot
from guard.paths import Host, HostMap
from guard.policy import (
    AssetDecl,
    Declarations,
    EvaluationDecl,
    Policy,
    Rule,
    ToolSpec,
    load_declarations,
    load_policy,
)
from guard.signing import generate_keypair, load_private_key, load_public_key
from guard.sinks import LoggingSink, Sink
from guard.telemetry import OtelSink
from guard.types import (
    Action,
    Alert,
    AssetKind,
    AssetRef,
    Decision,
    Destination,
    Effect,
    EffectKind,
    Location,
    Mode,
    Relation,
    Severity,
    ToolCall,
)
from guard.verify import Baseline, Claim, Evidence, Transfer, Verdict, Verifier
from guard.watch import Watch

if TYPE_CHECKING:
    from guard.integrations.langchain import guard_tool


def __getattr__(name: str) -> Any:
    """``guard.guard_tool`` lives with the LangChain integration: imported on first use, so
    that ``import guard`` never imports LangChain."""
    if name == "guard_tool":
        from guard.integrations.langchain import guard_tool

        return guard_tool
    raise AttributeError(f"module 'guard' has no attribute {name!r}")


__all__ = [
    "Action",
    "Alert",
    "AnalysisError",
    "ApprovalRequest",
    "ApprovalResponse",
    "ApprovalTimeout",
    "Approver",
    "AssetDecl",
    "AssetKind",
    "AssetRef",
    "AuditLog",
    "AuditReport",
    "AuditSink",
    "Baseline",
    "CallBlocked",
    "CallbackApprover",
    "Claim",
    "ConfigError",
    "ConsoleApprover",
    "Decision",
    "DeclarationError",
    "Declarations",
    "DecodeBudget",
    "DenyAll",
    "Destination",
    "Effect",
    "EffectKind",
    "EvaluationDecl",
    "Evidence",
    "Guard",
    "GuardError",
    "Host",
    "HostMap",
    "IntegrityError",
    "Location",
    "LoggingSink",
    "Manifest",
    "ManifestDiff",
    "Mode",
    "OtelSink",
    "Policy",
    "PolicyError",
    "Relation",
    "Rule",
    "Severity",
    "Sink",
    "TimeoutApprover",
    "ToolCall",
    "ToolSpec",
    "Transfer",
    "Verdict",
    "Verifier",
    "Watch",
    "__version__",
    "acting_as",
    "diff",
    "generate_keypair",
    "guard_tool",
    "guarded",
    "load_declarations",
    "load_policy",
    "load_private_key",
    "load_public_key",
    "snapshot",
    "verify_log",
]
