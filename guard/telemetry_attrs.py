"""The attributes :class:`~guard.telemetry.OtelSink` puts on spans, metrics and log records.

Alert and confirmation log records carry these (the README's OpenTelemetry section has the
same table; ``tests/test_ops.py`` checks the ops examples against :data:`LOG_ATTRIBUTES`):

=================================  ===========================================================
``peerguard.rule``                 the rule (an alert's own rule id; a confirmation's deciding
                                   rule)
``peerguard.severity``             ``info`` / ``warning`` / ``error`` / ``critical``
``peerguard.decision``             the decision of the call the record is about, when known
``peerguard.mode``                 ``enforce`` / ``shadow``, with the decision
``peerguard.enforcement_gap``      true when the guard could not decide or could not see
``gen_ai.agent.id``                the acting agent (its declared id) ...
``gen_ai.agent.name``              ... which is also its name: peerguard has no other
``peerguard.agent``                the same, under the name the metrics use
``gen_ai.tool.name``               the tool
``gen_ai.tool.call.id``            the call id
``peerguard.asset.paths``          each asset touched, in order: its path (``""`` unresolved)
``peerguard.asset.hosts``          ... the host it is on (this machine's name when local)
``peerguard.asset.kinds``          ... ``weights`` / ``config`` / ``evaluation`` / ``other``
``peerguard.asset.owners``         ... its owner (``""`` when none is declared)
``peerguard.asset.relations``      ... how the agent stands to it: ``own`` / ``peer`` /
                                   ``unowned`` / ``unknown`` (``""`` for a watch alert)
``peerguard.watch.finding``        a watch alert's kind of finding (see :mod:`guard.watch`)
``peerguard.confirmation.state``   ``requested`` / ``approved`` / ``refused`` / ``timed_out``
``peerguard.reason``               a confirmation's answer, in words
``peerguard.args_hash``            a confirmation's call hash (joins it to the audit log)
``peerguard.<detail>``             each of the alert's machine-readable details
=================================  ===========================================================

The asset attributes are parallel arrays: index ``i`` of each describes the same asset.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import AttributeValue

from guard.facts import this_host
from guard.types import Alert, AlertAsset, Decision

Attributes = dict[str, AttributeValue]

ASSET_ATTRIBUTES: Final = (
    "peerguard.asset.paths",
    "peerguard.asset.hosts",
    "peerguard.asset.kinds",
    "peerguard.asset.owners",
    "peerguard.asset.relations",
)

LOG_ATTRIBUTES: Final = frozenset(
    {
        "peerguard.rule",
        "peerguard.severity",
        "peerguard.decision",
        "peerguard.mode",
        "peerguard.enforcement_gap",
        "gen_ai.agent.id",
        "gen_ai.agent.name",
        "peerguard.agent",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        *ASSET_ATTRIBUTES,
        "peerguard.watch.finding",
        "peerguard.confirmation.state",
        "peerguard.reason",
        "peerguard.args_hash",
    }
)
"""Every attribute name an alert or confirmation log record may carry (besides details)."""


def call_attributes(tool: str, call_id: str, agent: str) -> Attributes:
    """What every span of a call carries."""
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.call.id": call_id,
        "peerguard.agent": agent,
    }


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def decision_attributes(decision: Decision) -> Attributes:
    """A decision, on its call's span."""
    attributes = call_attributes(decision.tool, decision.call_id, decision.agent)
    attributes.update(
        {
            "peerguard.decision": decision.action.value,
            "peerguard.mode": decision.mode.value,
            "peerguard.rules": list(decision.rules),
            "peerguard.asset.kinds": sorted({a.kind.value for a in decision.assets if a.kind}),
            "peerguard.asset.owners": sorted({a.owner for a in decision.assets if a.owner}),
            "peerguard.effects": _unique([e.kind.value for e in decision.effects]),
            "peerguard.args_hash": decision.args_hash,
        }
    )
    if decision.rules:
        attributes["peerguard.rule"] = decision.rules[0]
    return attributes


def metric_attributes(decision: Decision) -> Attributes:
    """A decision, on the decision counter and latency histogram."""
    attributes: Attributes = {
        "peerguard.decision": decision.action.value,
        "peerguard.mode": decision.mode.value,
        "peerguard.agent": decision.agent,
    }
    if decision.rules:
        attributes["peerguard.rule"] = decision.rules[0]
    return attributes


def _agent(attributes: Attributes, agent: str) -> None:
    attributes["gen_ai.agent.id"] = agent
    attributes["gen_ai.agent.name"] = agent
    attributes["peerguard.agent"] = agent


def _assets(attributes: Attributes, assets: tuple[AlertAsset, ...] | list[AlertAsset]) -> None:
    if not assets:
        return
    for name, field in zip(
        ASSET_ATTRIBUTES, ("path", "host", "kind", "owner", "relation"), strict=True
    ):
        attributes[name] = [getattr(a, field) or "" for a in assets]


def alert_attributes(alert: Alert, decision: Decision | None = None) -> Attributes:
    """An alert's log record (``decision`` when the alert came with one)."""
    attributes: Attributes = {
        "peerguard.rule": alert.rule,
        "peerguard.severity": alert.severity.value,
        "peerguard.enforcement_gap": alert.enforcement_gap,
    }
    if decision is not None:
        attributes["peerguard.decision"] = decision.action.value
        attributes["peerguard.mode"] = decision.mode.value
    if alert.agent is not None:
        _agent(attributes, alert.agent)
    if alert.tool is not None:
        attributes["gen_ai.tool.name"] = alert.tool
    if alert.call_id is not None:
        attributes["gen_ai.tool.call.id"] = alert.call_id
    _assets(attributes, alert.assets)
    for name, value in alert.details:
        attributes[f"peerguard.{name}"] = value
    return attributes


def confirmation_attributes(decision: Decision, state: str, reason: str = "") -> Attributes:
    """A confirmation's log record: asked, answered, refused or timed out."""
    attributes: Attributes = {
        "peerguard.confirmation.state": state,
        "peerguard.decision": decision.action.value,
        "peerguard.mode": decision.mode.value,
        "gen_ai.tool.name": decision.tool,
        "gen_ai.tool.call.id": decision.call_id,
        "peerguard.args_hash": decision.args_hash,
    }
    _agent(attributes, decision.agent)
    if decision.rules:
        attributes["peerguard.rule"] = decision.rules[0]
    if reason:
        attributes["peerguard.reason"] = reason
    assets = [
        AlertAsset(a.path, this_host(), a.kind.value if a.kind else None, a.owner, a.relation.value)
        for a in decision.assets
    ]
    _assets(attributes, assets)
    return attributes


__all__ = [
    "ASSET_ATTRIBUTES",
    "LOG_ATTRIBUTES",
    "Attributes",
    "alert_attributes",
    "call_attributes",
    "confirmation_attributes",
    "decision_attributes",
    "metric_attributes",
]
