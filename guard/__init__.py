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
from guard.assets import AssetIndex, AssetInfo
from guard.audit import AuditLog, AuditSink
from guard.auditcheck import AuditGap, AuditProblem, AuditReport, verify_log
from guard.auditrecord import AuditRecord
from guard.auditset import AuditSetReport, interleave, verify_logs
from guard.claims import Claim, Evidence, Transfer, Verdict
from guard.configs import OversightMatcher
from guard.contain import (
    Change,
    ChangeKind,
    ChangeSet,
    ContainedRun,
    ContainedShell,
    ContainmentError,
    ContainmentUnavailable,
    Limits,
    Overlay,
    PendingRun,
    ShellResult,
    Transaction,
)
from guard.content import ContentIndex, Found, Hit
from guard.decoding import DecodeBudget
from guard.decorator import acting_as, guarded
from guard.engine import ExecutionListener, Guard
from guard.evaluations import Recomputed
from guard.exceptions import (
    AnalysisError,
    ApprovalTimeout,
    CallBlocked,
    ConfigError,
    DeclarationError,
    GuardError,
    IntegrationUnavailable,
    IntegrityError,
    PolicyError,
    ResultWithheld,
)
from guard.fingerprints import FingerprintIndex, Scanner
from guard.ledger import (
    CallKey,
    CallLedger,
    LedgerEntry,
    MemoryLedger,
    PostgresLedger,
    SqliteLedger,
)
from guard.manifest import HashProgress, Manifest, ManifestEntry, snapshot
from guard.manifestdiff import CopiedFile, ManifestDiff, MetadataChange, MovedFile, diff
from guard.obligations import Due
from guard.paths import Host, HostMap
from guard.policy import (
    AssetDecl,
    Declarations,
    EffectTemplate,
    EvaluationDecl,
    Match,
    ObligationDecl,
    Policy,
    Required,
    Rule,
    ToolSpec,
    load_declarations,
    load_policy,
)
from guard.signing import generate_keypair, load_private_key, load_public_key
from guard.sinks import LoggingSink, Sink
from guard.streams import Tap
from guard.telemetry_pending import MemoryPending, PendingStore, SqlitePending
from guard.types import (
    Action,
    Alert,
    AlertAsset,
    AssetKind,
    AssetRef,
    ConfigEdit,
    Decision,
    Destination,
    Effect,
    EffectKind,
    Location,
    Mode,
    Relation,
    RuleMatch,
    Severity,
    ToolCall,
)
from guard.verify import Baseline, GuardView, Verifier

if TYPE_CHECKING:
    from guard.integrations.langchain import guard_tool
    from guard.telemetry import OtelSink
    from guard.watch import Watch

# Names whose module needs an extra: imported on first use, so that ``import guard`` needs
# only the core install (and never imports LangChain, OpenTelemetry or watchdog).
_LAZY = {
    "guard_tool": "guard.integrations.langchain",
    "OtelSink": "guard.telemetry",
    "Watch": "guard.watch",
}


def __getattr__(name: str) -> Any:
    """Import the names of :data:`_LAZY` on first use; a missing extra raises
    :class:`IntegrationUnavailable` naming the ``pip install`` line."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guard' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Action",
    "Alert",
    "AlertAsset",
    "AnalysisError",
    "ApprovalRequest",
    "ApprovalResponse",
    "ApprovalTimeout",
    "Approver",
    "AssetDecl",
    "AssetIndex",
    "AssetInfo",
    "AssetKind",
    "AssetRef",
    "AuditGap",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "AuditSetReport",
    "AuditSink",
    "Baseline",
    "CallBlocked",
    "CallKey",
    "CallLedger",
    "CallbackApprover",
    "Change",
    "ChangeKind",
    "ChangeSet",
    "Claim",
    "ConfigEdit",
    "ConfigError",
    "ConsoleApprover",
    "ContainedRun",
    "ContainedShell",
    "ContainmentError",
    "ContainmentUnavailable",
    "ContentIndex",
    "CopiedFile",
    "Decision",
    "DeclarationError",
    "Declarations",
    "DecodeBudget",
    "DenyAll",
    "Destination",
    "Due",
    "Effect",
    "EffectKind",
    "EffectTemplate",
    "EvaluationDecl",
    "Evidence",
    "ExecutionListener",
    "FingerprintIndex",
    "Found",
    "Guard",
    "GuardError",
    "GuardView",
    "HashProgress",
    "Hit",
    "Host",
    "HostMap",
    "IntegrationUnavailable",
    "IntegrityError",
    "LedgerEntry",
    "Limits",
    "Location",
    "LoggingSink",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "Match",
    "MemoryLedger",
    "MemoryPending",
    "MetadataChange",
    "Mode",
    "MovedFile",
    "ObligationDecl",
    "OtelSink",
    "Overlay",
    "OversightMatcher",
    "PendingRun",
    "PendingStore",
    "Policy",
    "PolicyError",
    "PostgresLedger",
    "Recomputed",
    "Relation",
    "Required",
    "ResultWithheld",
    "Rule",
    "RuleMatch",
    "Scanner",
    "Severity",
    "ShellResult",
    "Sink",
    "SqliteLedger",
    "SqlitePending",
    "Tap",
    "TimeoutApprover",
    "ToolCall",
    "ToolSpec",
    "Transaction",
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
    "interleave",
    "load_declarations",
    "load_policy",
    "load_private_key",
    "load_public_key",
    "snapshot",
    "verify_log",
    "verify_logs",
]
