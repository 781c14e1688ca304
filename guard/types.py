"""Shared value types: what a call is, what it would do, and what the guard decided.

Every stage of the one path a call takes speaks in these types::

    ToolCall ─► [Effect] ─► [AssetRef] ─► Decision ─► (approval, execute, record)

They are pydantic models so that they validate at the edges (CLI input, policy files,
integrations) and serialise to the JSON that the CLI prints and the audit log stores.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Action(StrEnum):
    """What the guard does with a call, ordered from least to most restrictive."""

    ALLOW = "allow"
    ALERT = "alert"
    CONFIRM = "confirm"
    DENY = "deny"

    @property
    def rank(self) -> int:
        """Position in the precedence order: a higher rank wins."""
        return _ACTION_RANK[self]


_ACTION_RANK = {Action.ALLOW: 0, Action.ALERT: 1, Action.CONFIRM: 2, Action.DENY: 3}


class Mode(StrEnum):
    """``enforce`` blocks and asks; ``shadow`` decides and records but never blocks."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class Severity(StrEnum):
    """Alert severity, mapped to OpenTelemetry's WARN, ERROR and FATAL by the telemetry sink."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position from least to most severe."""
        return list(Severity).index(self)


class EffectKind(StrEnum):
    """What a call would do to one path, host or agent."""

    READ = "read"
    LIST = "list"
    WRITE = "write"
    DELETE = "delete"
    MOVE = "move"
    COPY = "copy"
    TRANSFER = "transfer"  # data leaves for another host or the network
    EXEC = "exec"
    CONFIG_CHANGE = "config_change"
    SHUTDOWN = "shutdown"
    UNKNOWN = "unknown"  # the analyser could not tell what happens


class AssetKind(StrEnum):
    """What a protected file is to the model that owns it."""

    WEIGHTS = "weights"
    CONFIG = "config"
    EVALUATION = "evaluation"
    OTHER = "other"


class Relation(StrEnum):
    """How the acting agent stands to an asset's owner."""

    OWN = "own"
    PEER = "peer"
    UNOWNED = "unowned"  # protected, but nobody declared an owner
    UNKNOWN = "unknown"  # the path could not be resolved: possibly protected


class Destination(StrEnum):
    """Where data goes, relative to where it came from."""

    SAME_HOST = "same-host"
    OTHER_HOST = "other-host"  # a host whose filesystem the guard can see
    NETWORK = "network"  # a host or service the guard cannot see into


class Location(_Frozen):
    """A place a call touches: a resolved path on a host, or the raw text when unresolvable.

    ``path`` is absolute and normalised (symlinks resolved) when the guard could resolve it;
    ``None`` means it could not (an unknown variable, a command substitution) and the place
    is treated as possibly protected. ``host`` is the host's name, ``None`` for the machine
    the guard runs on. ``visible`` is false for a host whose filesystem the guard cannot see.
    """

    raw: str
    path: str | None = None
    host: str | None = None
    visible: bool = True

    @property
    def resolved(self) -> bool:
        """True when the guard knows exactly which path this is."""
        return self.path is not None

    def describe(self) -> str:
        """A short human-readable form, ``host:path`` for remote places."""
        shown = self.path if self.path is not None else f"<unresolved {self.raw!r}>"
        return f"{self.host}:{shown}" if self.host else shown


class ConfigEdit(_Frozen):
    """A change to a structured config file, precise enough to simulate before it runs.

    ``op`` is one of ``set`` (dotted ``key`` to ``value``), ``remove`` (dotted ``key``),
    ``replace`` (whole new ``content``), ``append`` (``content`` added at the end),
    ``sed`` (a sed ``script`` applied in place), or ``unknown`` (something changes it, the
    guard cannot say what).
    """

    op: str
    key: str | None = None
    value: Any = None
    content: str | None = None
    script: str | None = None


class Effect(_Frozen):
    """One thing a call would do.

    For ``copy``, ``move`` and ``transfer``, ``target`` is the source and ``dest`` where
    the data ends up. ``recursive`` means the target is a folder taken whole (``rm -r``,
    ``tar c``), so every asset below it is touched. ``certain`` is false when the analyser
    had to guess (an unknown command given a path, obfuscation), and ``note`` says why.
    """

    kind: EffectKind
    target: Location | None = None
    dest: Location | None = None
    recursive: bool = False
    via: str = ""
    edit: ConfigEdit | None = None
    agent: str | None = None  # the agent a shutdown request names
    certain: bool = True
    note: str = ""

    def describe(self) -> str:
        """The effect in plain words, for reasons and confirmation prompts."""
        parts = [self.kind.value]
        if self.target is not None:
            parts.append(self.target.describe() + ("/**" if self.recursive else ""))
        if self.dest is not None:
            parts.append("-> " + self.dest.describe())
        if self.agent:
            parts.append(f"agent {self.agent}")
        if self.edit is not None and self.edit.key:
            parts.append(f"[{self.edit.op} {self.edit.key}]")
        if self.via:
            parts.append(f"(via {self.via})")
        if not self.certain:
            parts.append(f"UNCERTAIN: {self.note}" if self.note else "UNCERTAIN")
        return " ".join(parts)


class AssetRef(_Frozen):
    """A protected asset that a call touches, with the acting agent's relation to it."""

    path: str | None
    kind: AssetKind | None
    owner: str | None
    relation: Relation
    source: str = ""  # how it was recognised: declared glob, content sniffing, hash index


def args_hash(tool: str, args: dict[str, Any]) -> str:
    """The SHA-256 of a call's tool name and arguments in canonical JSON.

    An approval is bound to this hash, so an edited call is a new call.
    """
    canonical = json.dumps(
        {"tool": tool, "args": args}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ToolCall(_Frozen):
    """A tool call an agent wants to make. ``agent`` is always explicit."""

    agent: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    call_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    host: str | None = None  # the host whose filesystem the tool acts on; None: local
    cwd: str | None = None  # working directory for relative paths; None: the guard's root

    @property
    def args_hash(self) -> str:
        """Hash of the exact tool and arguments (see :func:`args_hash`)."""
        return args_hash(self.tool, self.args)


class Alert(_Frozen):
    """Something the ops team must hear about."""

    severity: Severity
    rule: str
    message: str
    agent: str | None = None
    tool: str | None = None
    call_id: str | None = None
    enforcement_gap: bool = False  # the guard could not decide and fell back to deny


class RuleMatch(_Frozen):
    """One policy rule that matched, and what it matched."""

    rule: str
    action: Action
    description: str = ""
    effect: Effect | None = None
    asset: AssetRef | None = None


class Decision(_Frozen):
    """The guard's verdict on one call.

    ``action`` is what the policy decided; ``enforced`` is false in shadow mode, where the
    call runs whatever ``action`` says. ``rules`` lists the ids of every rule that matched,
    most restrictive first.
    """

    action: Action
    mode: Mode = Mode.ENFORCE
    agent: str
    tool: str
    call_id: str
    args_hash: str
    rules: list[str] = Field(default_factory=list)
    matches: list[RuleMatch] = Field(default_factory=list)
    effects: list[Effect] = Field(default_factory=list)
    assets: list[AssetRef] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    reason: str = ""

    @property
    def enforced(self) -> bool:
        """True when this decision blocks or asks (enforce mode)."""
        return self.mode is Mode.ENFORCE

    @property
    def blocks(self) -> bool:
        """True when the call must not run without more (deny, or confirm not yet given)."""
        return self.enforced and self.action in (Action.DENY, Action.CONFIRM)

    def summary(self) -> dict[str, Any]:
        """The compact JSON form the CLI prints: decision, rules, effects, reason."""
        return {
            "decision": self.action.value,
            "mode": self.mode.value,
            "agent": self.agent,
            "tool": self.tool,
            "call_id": self.call_id,
            "args_hash": self.args_hash,
            "rules": self.rules,
            "effects": [e.describe() for e in self.effects],
            "assets": [a.model_dump(mode="json") for a in self.assets],
            "alerts": [a.model_dump(mode="json", exclude_none=True) for a in self.alerts],
            "reason": self.reason,
        }


__all__ = [
    "Action",
    "Alert",
    "AssetKind",
    "AssetRef",
    "ConfigEdit",
    "Decision",
    "Destination",
    "Effect",
    "EffectKind",
    "Location",
    "Mode",
    "Relation",
    "RuleMatch",
    "Severity",
    "ToolCall",
    "args_hash",
]
