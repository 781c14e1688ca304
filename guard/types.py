"""Shared value types: what a call is, what it would do, and what the guard decided.

Every stage of the one path a call takes speaks in these types::

    ToolCall ─► [Effect] ─► [AssetRef] ─► Decision ─► (approval, execute, record)

They are plain slotted classes, not validating models: one of each is built for every tool
call an agent makes, a decision must cost microseconds, and a validated model costs one or
two each (far more on a worker thread with cold caches, where LangGraph runs tools).
``ToolCall`` checks its own fields; the CLI and integrations check input before building one. Their ``to_dict()`` gives the JSON that the CLI prints
and the audit log stores.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter


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


class _Value:
    """What every value type shares: its JSON form."""

    __slots__ = ()

    def to_dict(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The JSON form; without ``None`` fields when ``exclude_none``."""
        return _dump(self, exclude_none=exclude_none)


@dataclass(slots=True, unsafe_hash=True)
class Location(_Value):
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

    def on_host(self, shown: str) -> str:
        """``shown`` (this place's path or raw text) with its host named once in front.

        The raw text of a remote place often names the host already (``backup:/srv/``,
        ``user@backup:/srv/``, a URL, a bare host name): it is then shown as it is.
        """
        if not self.host or _names_host(shown, self.host):
            return shown
        return f"{self.host}:{shown}"

    def describe(self) -> str:
        """A short human-readable form, ``host:path`` for remote places."""
        if self.path is not None:
            return self.on_host(self.path)
        if self.host and _names_host(self.raw, self.host):
            return f"<unresolved {self.raw!r}>"
        return self.on_host(f"<unresolved {self.raw!r}>")


def _names_host(text: str, host: str) -> bool:
    """True when ``text`` starts by naming ``host`` (``host``, ``host:...``, ``user@host:...``,
    ``scheme://[user@]host[:port]/...``)."""
    if text == host:
        return True
    if ":" not in text:  # the common case, a plain path: no host part to compare
        return False
    scheme, sep, rest = text.partition("://")
    if sep and scheme.isalnum():
        netloc = rest.split("/", 1)[0].rpartition("@")[2]
        return netloc.split(":", 1)[0] == host
    head, sep, _ = text.partition(":")
    return bool(sep) and head.rpartition("@")[2] == host


@dataclass(slots=True, unsafe_hash=True)
class ConfigEdit(_Value):
    """A change to a structured config file, precise enough to simulate before it runs.

    ``op`` is one of ``set`` (dotted ``key`` to ``value``), ``remove`` (dotted ``key``),
    ``replace`` (whole new ``content``), ``append`` (``content`` added at the end),
    ``sed`` (a sed ``script`` applied in place), ``edits`` (``value`` holds ``(old, new)``
    text replacements made in turn, each of the first match; ``content`` holds the new texts,
    for what they carry in), ``metadata`` (its content stays: a new time stamp or mode),
    ``unreadable`` (its content stays but some reader can no longer open it: a mode or ACL
    that takes read access away), or ``unknown`` (something changes it, the guard cannot say
    what).
    """

    op: str
    key: str | None = None
    value: Any = None
    content: str | None = None
    script: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class Effect(_Value):
    """One thing a call would do.

    For ``copy``, ``move`` and ``transfer``, ``target`` is the source and ``dest`` where
    the data ends up. ``recursive`` means the target is a folder taken whole (``rm -r``,
    ``tar c``), so every asset below it is touched. ``certain`` is false when the analyser
    had to guess (an unknown command given a path, obfuscation), and ``note`` says why.
    ``unseen`` marks code that will run but that the guard cannot read at decision time (a
    startup file, a build recipe or hook it cannot parse, transformed text piped into a shell,
    background work that outlives the call, an analysis bound reached): whatever the target,
    such an effect may reach every protected place. ``prefix``, on a copy or transfer, says
    that only the target's first ``prefix`` bytes go (``head -c 64 w > x``).
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
    unseen: bool = False
    prefix: int | None = None

    def describe(self) -> str:
        """The effect in plain words, for reasons and confirmation prompts."""
        parts = [self.kind.value]
        if self.prefix is not None:
            parts.append(f"first {self.prefix} bytes of")
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


@dataclass(slots=True, unsafe_hash=True)
class AssetRef(_Value):
    """A protected asset that a call touches, with the acting agent's relation to it."""

    path: str | None
    kind: AssetKind | None
    owner: str | None
    relation: Relation
    source: str = ""  # how it was recognised: declared glob, content sniffing, hash index


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_QUOTE = json.encoder.encode_basestring_ascii


def args_hash(tool: str, args: Mapping[str, Any]) -> str:
    """The SHA-256 of a call's tool name and arguments in canonical JSON.

    Canonical JSON here is ``json.dumps({"tool": ..., "args": ...}, sort_keys=True,
    separators=(",", ":"), default=str)``. An approval is bound to this hash, so an edited
    call is a new call; it is stable across processes, so a confirmation resumed by another
    worker checks out.
    """
    # Most calls have only string arguments: their canonical JSON is written directly with
    # the json module's own string encoder, in half the time of a general encode.
    if type(tool) is str:
        parts = []
        for key in sorted(args):
            value = args[key]
            if type(key) is not str or type(value) is not str:
                break
            parts.append(f"{_QUOTE(key)}:{_QUOTE(value)}")
        else:
            canonical = f'{{"args":{{{",".join(parts)}}},"tool":{_QUOTE(tool)}}}'
            return hashlib.sha256(canonical.encode()).hexdigest()
    canonical = _ENCODE({"tool": tool, "args": args})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _new_call_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call an agent wants to make. ``agent`` is always explicit.

    Args:
        agent: The acting agent's id (non-empty).
        tool: The tool's name.
        args: The arguments, by name; copied, so later edits to the caller's dict are not
            seen here.
        call_id: The tool call id; a fresh one when not given.
        host: The host whose filesystem the tool acts on; ``None``: local.
        cwd: Working directory for relative paths; ``None``: the guard's root.

    Raises:
        TypeError: A field of the wrong type (``args`` not a mapping with string keys).
        ValueError: An empty agent or tool name.
    """

    agent: str
    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    call_id: str = field(default_factory=_new_call_id)
    host: str | None = None
    cwd: str | None = None

    def __post_init__(self) -> None:
        # Checked by hand, not by a validating model: a call is built for every tool call
        # an agent makes, inside the agent's loop, often on a worker thread with cold caches.
        agent, tool, args = self.agent, self.tool, self.args
        if type(agent) is not str or type(tool) is not str:
            raise TypeError(f"ToolCall agent and tool must be strings, got {agent!r} and {tool!r}")
        if not agent or not tool:
            raise ValueError("ToolCall needs a non-empty agent and tool")
        if type(args) is not dict and not isinstance(args, Mapping):
            raise TypeError(f"ToolCall args must be a mapping, got {args!r}")
        copied = dict(args)
        for key in copied:
            if type(key) is not str:
                raise TypeError(f"ToolCall args must have string keys, got {key!r}")
        object.__setattr__(self, "args", copied)
        if type(self.call_id) is not str:
            raise TypeError(f"ToolCall call_id must be a string, got {self.call_id!r}")
        for value in (self.host, self.cwd):
            if value is not None and type(value) is not str:
                raise TypeError(f"ToolCall host and cwd must be strings, got {value!r}")

    @property
    def args_hash(self) -> str:
        """Hash of the exact tool and arguments (see :func:`args_hash`)."""
        return args_hash(self.tool, self.args)


@dataclass(slots=True, unsafe_hash=True)
class AlertAsset(_Value):
    """A protected asset an alert is about, as the on-call engineer needs it.

    ``host`` is the host the file is on (this machine's name for a local file); ``relation``
    is how the acting agent stands to the owner (``peer``, ``own``, ...), ``None`` when no
    agent acted (a change the watch saw).
    """

    path: str | None
    host: str | None = None
    kind: str | None = None
    owner: str | None = None
    relation: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class Alert(_Value):
    """Something the ops team must hear about."""

    severity: Severity
    rule: str
    message: str
    agent: str | None = None
    tool: str | None = None
    call_id: str | None = None
    # The guard could not decide (it fell back to deny) or could not see what will run.
    enforcement_gap: bool = False
    # Machine-readable facts behind the message, as (name, value) pairs: e.g. ("lost", 12).
    details: tuple[tuple[str, str | int | float | bool], ...] = ()
    # The protected assets the alert is about (telemetry emits them as peerguard.asset.*).
    assets: tuple[AlertAsset, ...] = ()

    def detail(self, name: str) -> str | int | float | bool | None:
        """The value of one of :attr:`details`, or ``None``."""
        for key, value in self.details:
            if key == name:
                return value
        return None


@dataclass(slots=True, unsafe_hash=True)
class RuleMatch(_Value):
    """One policy rule that matched, and what it matched."""

    rule: str
    action: Action
    description: str = ""
    effect: Effect | None = None
    asset: AssetRef | None = None


class Decision:
    """The guard's verdict on one call.

    ``action`` is what the policy decided; ``enforced`` is false in shadow mode, where the
    call runs whatever ``action`` says. ``rules`` lists the ids of every rule that matched,
    most restrictive first.

    ``args_hash`` binds approvals to the exact call. Give it, or give ``args`` (the call's
    arguments) and it is computed from them when first read: most calls are allowed and never
    need it, and the hash costs as much as the rest of a decision on a file tool. The same
    holds for ``reason`` given as ``explain``.

    A decision is a value: the guard never changes one after returning it, and neither
    should a sink (build a new one, e.g. with :meth:`replace`).
    """

    __slots__ = (
        "_args",
        "_args_hash",
        "_explain",
        "_reason",
        "action",
        "agent",
        "alerts",
        "assets",
        "call_id",
        "effects",
        "matches",
        "mode",
        "rules",
        "tool",
    )

    def __init__(
        self,
        action: Action,
        agent: str,
        tool: str,
        call_id: str,
        args_hash: str | None = None,
        args: Mapping[str, Any] | None = None,
        mode: Mode = Mode.ENFORCE,
        rules: list[str] | None = None,
        matches: list[RuleMatch] | None = None,
        effects: list[Effect] | None = None,
        assets: list[AssetRef] | None = None,
        alerts: list[Alert] | None = None,
        reason: str = "",
        explain: Callable[[], str] | None = None,
    ) -> None:
        if args_hash is None and args is None:
            raise TypeError("a Decision needs args_hash or the call's args")
        # Strings are accepted for the enums, as a validating model would: a "deny" that
        # stayed a string would compare unequal to Action.DENY and be let through.
        self.action = action if type(action) is Action else Action(action)
        self.mode = mode if type(mode) is Mode else Mode(mode)
        self.agent = agent
        self.tool = tool
        self.call_id = call_id
        self._args_hash = args_hash
        self._args = args
        self.rules = rules if rules is not None else []
        self.matches = matches if matches is not None else []
        self.effects = effects if effects is not None else []
        self.assets = assets if assets is not None else []
        self.alerts = alerts if alerts is not None else []
        self._reason = None if explain is not None else reason
        self._explain = explain

    @property
    def reason(self) -> str:
        """Why, in words: each rule that matched and what it matched, or what the call does.

        Given as ``explain`` (a function), it is worked out when first read: an allowed
        call's reason is only for the record, and many deployments record allows by count.
        """
        r = self._reason
        if r is None:
            # _explain is kept: two threads reading at once both explain, alike.
            explain = self._explain
            r = self._reason = explain() if explain is not None else ""
        return r

    @property
    def args_hash(self) -> str:
        """The hash of the exact tool and arguments decided on (see :func:`args_hash`)."""
        h = self._args_hash
        if h is None:
            h = self._args_hash = args_hash(self.tool, self._args or {})
        return h

    @property
    def enforced(self) -> bool:
        """True when this decision blocks or asks (enforce mode)."""
        return self.mode is Mode.ENFORCE

    @property
    def blocks(self) -> bool:
        """True when the call must not run without more (deny, or confirm not yet given)."""
        return self.enforced and self.action in (Action.DENY, Action.CONFIRM)

    def replace(self, **changes: Any) -> Decision:
        """A copy with ``changes`` applied (the keyword arguments of the constructor)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in _DECISION_FIELDS}
        fields["args_hash"] = self.args_hash
        fields.update(changes)
        return Decision(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The full JSON form, as the audit log stores it."""
        return {
            "action": self.action.value,
            "mode": self.mode.value,
            "agent": self.agent,
            "tool": self.tool,
            "call_id": self.call_id,
            "args_hash": self.args_hash,
            "rules": list(self.rules),
            "matches": [m.to_dict() for m in self.matches],
            "effects": [e.to_dict() for e in self.effects],
            "assets": [a.to_dict() for a in self.assets],
            "alerts": [a.to_dict() for a in self.alerts],
            "reason": self.reason,
        }

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
            "assets": [a.to_dict() for a in self.assets],
            "alerts": [a.to_dict(exclude_none=True) for a in self.alerts],
            "reason": self.reason,
        }

    def __reduce__(self) -> tuple[type[Decision], tuple[Any, ...]]:
        # Pickle and copy the worked-out hash and reason, not the functions that make them.
        return (
            Decision,
            (self.action, self.agent, self.tool, self.call_id, self.args_hash, None, self.mode,
             self.rules, self.matches, self.effects, self.assets, self.alerts, self.reason),
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self.args_hash == other.args_hash and all(
            getattr(self, n) == getattr(other, n) for n in _DECISION_FIELDS
        )

    __hash__ = None  # type: ignore[assignment]  # a mutable-looking value: not hashable

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{n}={getattr(self, n)!r}"
            for n in ("action", "mode", "agent", "tool", "call_id", "rules", "reason")
        )
        return f"Decision({shown})"


_DECISION_FIELDS = (
    "action",
    "mode",
    "agent",
    "tool",
    "call_id",
    "rules",
    "matches",
    "effects",
    "assets",
    "alerts",
    "reason",
)


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def _dump(value: object, *, exclude_none: bool = False) -> dict[str, Any]:
    # Serialisation lives at the edges (audit log, CLI, telemetry), so these value types stay
    # plain slotted dataclasses on the hot path and pydantic only shapes their JSON.
    out: dict[str, Any] = _adapter(type(value)).dump_python(
        value, mode="json", exclude_none=exclude_none
    )
    return out


__all__ = [
    "Action",
    "Alert",
    "AlertAsset",
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
