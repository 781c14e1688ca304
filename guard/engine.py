"""The decision engine: the one path every tool call takes.

::

    ToolCall ─► effects (tool specs, shell analysis)
             ─► facts   (each effect x the protected assets it touches, with the acting
                         agent's relation to each, the destination, whether an oversight
                         switch goes off, whether a written score is true)
             ─► policy  (the most restrictive matching rule wins)
             ─► Decision ─► approval (confirm) ─► execute ─► record

:meth:`Guard.check` is pure: it decides and changes nothing. :meth:`Guard.run` and
:meth:`Guard.arun` decide, ask an approver when needed, execute, and record. Anything that
goes wrong inside the guard denies the call and raises an enforcement-gap alert.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from guard import configs
from guard.approval import ApprovalRequest, ApprovalResponse, Approver, DenyAll
from guard.assets import AssetIndex
from guard.carry import CarryLedger
from guard.content import ContentIndex, describe, strings_in
from guard.effects import (
    BUILTIN_SPECS,
    DEFAULT_SHELL_TOOLS,
    EffectFinder,
    shell_spec,
    template_args,
)
from guard.evaluations import Recomputed
from guard.exceptions import ApprovalTimeout, CallBlocked, ResultWithheld
from guard.facts import READ_ONLY, Fact, FactFinder, alert_asset
from guard.matching import CompiledPolicy, CompiledRule
from guard.obligations import Due, check_references, due, scores_now, unmet
from guard.paths import HostMap
from guard.policy import (
    AssetDecl,
    Declarations,
    EvaluationDecl,
    Policy,
    load_policy,
)
from guard.sinks import Fanout, LoggingSink, Sink
from guard.types import (
    Action,
    Alert,
    AssetKind,
    AssetRef,
    ConfigEdit,
    Decision,
    Effect,
    EffectKind,
    Location,
    Mode,
    RuleMatch,
    Severity,
    ToolCall,
    args_hash,
)

T = TypeVar("T")


class ExecutionListener(Protocol):
    """Told before and after each call the guard lets run (see :class:`guard.watch.Watch`)."""

    def before_execute(self, decision: Decision) -> None:
        """The call is about to run."""

    def after_execute(self, decision: Decision) -> None:
        """The call ended (or failed)."""


INTERNAL_ERROR_RULE = "guard-internal-error"
UNIDENTIFIED_AGENT_RULE = "unidentified-agent"
REFUSED_RULE = "confirmation-refused"
WITHHELD_RULE = "protected-content-in-result"

# Members the hot path compares against, as module constants: a global load stays cheap when
# an agent framework's work has evicted the interpreter's attribute caches, a class attribute
# load does not (measured on LangGraph's worker thread).
_ALLOW, _ALERT, _DENY = Action.ALLOW, Action.ALERT, Action.DENY
_ENFORCE = Mode.ENFORCE


class Guard:
    """Decides, before it runs, whether an agent's tool call may run.

    Args:
        policy: The policy; the shipped ``peer-preservation`` default when ``None``.
        root: The folder agents work in; relative paths in calls start here, and it is a
            protected root (its files are discovered and hashed).
        hosts: Hosts whose filesystems the guard can see: name to folder. Their folders are
            protected roots too.
        declarations: Agents, assets and evaluations, added to the policy's own.
        approver: Answers confirmations; with none, confirmations are refused.
        sinks: Receive every decision, alert and approval (audit log, telemetry).
        mode: Overrides the policy's mode (``enforce`` or ``shadow``).
        roots: Protected roots; ``root`` and every host folder when ``None``.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        root: str | os.PathLike[str] = ".",
        hosts: Mapping[str, str] | HostMap | None = None,
        declarations: Declarations | None = None,
        approver: Approver | None = None,
        sinks: Sequence[Sink] = (),
        mode: Mode | str | None = None,
        roots: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        base = policy if policy is not None else load_policy()
        if declarations is not None:
            base = base.with_declarations(declarations)
        if mode is not None:
            base = base.model_copy(update={"mode": Mode(mode)})
        self.policy = base
        self._mode = base.mode
        self.root = os.path.realpath(os.fspath(root))
        self._root_prefix = self.root.rstrip(os.sep) + os.sep
        self.hosts = hosts if isinstance(hosts, HostMap) else HostMap(hosts or {})
        if roots is None:
            root_list = [self.root, *(h.root for h in self.hosts)]
        else:
            root_list = [os.path.realpath(os.fspath(r)) for r in roots]
        self.roots = _outermost(root_list)
        self._roots = tuple(self.roots)
        self.oversight = configs.OversightMatcher(base.oversight_keys, base.inverted_oversight_keys)
        self.approver: Approver = approver if approver is not None else DenyAll()
        self.sinks = Fanout(sinks if sinks else [LoggingSink()])
        self.compiled = CompiledPolicy(base, self.root)
        self.specs = {**BUILTIN_SPECS, **base.tools}
        shell_names = [*DEFAULT_SHELL_TOOLS, *base.shell_tools]
        for name in shell_names:
            self.specs.setdefault(name, shell_spec())
        self.evaluations: dict[str, EvaluationDecl] = {
            self._abs(e.score_file): e for e in base.evaluations
        }
        eval_assets = [
            AssetDecl(glob=p, kind=AssetKind.EVALUATION)
            for e in base.evaluations
            for p in (e.score_file, e.items_file)
        ]
        self.assets = AssetIndex(
            self.roots,
            [*base.assets, *eval_assets],
            base=self.root,
            discover=base.discover,
            oversight=self.oversight,
        )
        self.fact_finder = FactFinder(
            assets=self.assets,
            hosts=self.hosts,
            evaluations=self.evaluations,
            oversight=self.oversight,
            policy=base,
            root=self.root,
        )
        self.effect_finder = EffectFinder(
            specs=self.specs, hosts=self.hosts, root=self.root, roots=self._roots
        )
        self.agents = frozenset(base.agents)
        check_references(base, self.evaluations, self.root)
        self._listeners: list[ExecutionListener] = []

    def add_listener(self, listener: ExecutionListener) -> None:
        """Tell ``listener`` before and after every call this guard lets run (the live watch)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: ExecutionListener) -> None:
        """Stop telling ``listener`` about calls."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def before(self, decision: Decision) -> None:
        """Tell listeners that ``decision``'s call is about to run."""
        if self._listeners:
            for listener in list(self._listeners):
                listener.before_execute(decision)

    @property
    def mode(self) -> Mode:
        """``enforce`` or ``shadow``."""
        return self._mode

    def _abs(self, path: str) -> str:
        return os.path.realpath(path if os.path.isabs(path) else os.path.join(self.root, path))

    # ------------------------------------------------------------------ check

    def check(self, call: ToolCall) -> Decision:
        """Decide on ``call`` without running it or recording anything.

        Returns:
            The decision. If the guard itself fails, a ``deny`` whose rule is
            ``guard-internal-error`` with an enforcement-gap alert.
        """
        try:
            return self._decide(call)
        except Exception as exc:  # fail closed: an error inside the guard denies the call
            return self._internal_error(call, exc)

    def fail_closed(self, call: ToolCall, exc: BaseException) -> Decision:
        """The deny, with an enforcement-gap alert, for a call the guard could not finish
        deciding on because of ``exc`` (what :meth:`check` returns when it fails)."""
        return self._internal_error(call, exc)

    def _internal_error(self, call: ToolCall, exc: BaseException) -> Decision:
        message = f"the guard could not decide on {call.tool}: {type(exc).__name__}: {exc}; denied"
        return Decision(
            action=Action.DENY,
            mode=self.mode,
            agent=call.agent,
            tool=call.tool,
            call_id=call.call_id,
            args_hash=_safe_hash(call),
            rules=[INTERNAL_ERROR_RULE],
            reason=message,
            alerts=[
                Alert(
                    severity=Severity.CRITICAL,
                    rule=INTERNAL_ERROR_RULE,
                    message=message,
                    agent=call.agent,
                    tool=call.tool,
                    call_id=call.call_id,
                    enforcement_gap=True,
                )
            ],
        )

    def _decide(self, call: ToolCall) -> Decision:
        # The args hash is worked out when first read, unless the arguments are not all
        # strings: then it may fail (a cycle, a value whose str() raises), and it must fail
        # here, where an error denies the call, not later in a sink.
        hash_ = None
        for value in call.args.values():
            if type(value) is not str:
                hash_ = call.args_hash
                break
        return self._judge(call, self.effects_of(call), hash_)

    def judge(self, call: ToolCall, effects: list[Effect]) -> Decision:
        """Decide on ``call`` from ``effects`` known some other way than from its arguments:
        what a contained run was *observed* to do (see :mod:`guard.contain`), with the same
        facts, policy and reasons as :meth:`check`.

        Returns:
            The decision; a deny with an enforcement-gap alert if the guard itself fails.
        """
        try:
            return self._judge(call, effects, None)
        except Exception as exc:  # fail closed, as check does
            return self._internal_error(call, exc)

    def _judge(self, call: ToolCall, effects: list[Effect], hash_: str | None) -> Decision:
        facts, assets = self.fact_finder.facts(call, effects)
        hits = self.compiled.match(facts, call.args)
        if not hits:
            # Positional: this is the path most calls take, and keyword calls cost more.
            return Decision(
                _ALLOW, call.agent, call.tool, call.call_id, hash_, call.args, self._mode,
                None, None, effects, assets, None, "", functools.partial(self._unmatched, effects),
            )  # fmt: skip
        if len(hits) > 1:
            hits.sort(key=_rank_of_hit, reverse=True)
        rules: list[str] = []
        matches: list[RuleMatch] = []
        alerts: list[Alert] = []
        said: list[str] = []
        shown_effects: dict[int, str] = {}
        n_effects = len(effects)
        for rule, fact in hits:
            i = fact.effect_index
            eff = effects[i] if i < n_effects else None
            k = fact.asset_index
            asset = assets[k] if k is not None else None
            rules.append(rule.id)
            matches.append(RuleMatch(rule.id, rule.action, rule.description, eff, asset))
            if eff is None:
                text = fact.effect.value
            else:
                shown = shown_effects.get(i)
                if shown is None:
                    shown = shown_effects[i] = self._show_effect(eff)
                text = shown
            text = self._reason_for(text, fact, asset)
            said.append(rule.said + text)
            if rule.alert_severity is not None:
                # An alert about code the guard could not read is an enforcement gap.
                alerts.append(
                    Alert(rule.alert_severity, rule.id, text, call.agent, call.tool, call.call_id,
                          fact.unseen, (), (alert_asset(asset, eff, fact.path),))
                )  # fmt: skip
        return Decision(
            hits[0][0].action, call.agent, call.tool, call.call_id, hash_, call.args, self._mode,
            rules, matches, effects, assets, alerts, said[0] if len(said) == 1 else "; ".join(said),
        )  # fmt: skip

    # ------------------------------------------------------------------ effects

    def args_read(self, call: ToolCall) -> frozenset[str] | None:
        """The argument names the spec of ``call``'s tool reads (or declares inert); ``None``
        for a tool with no spec."""
        spec = self.specs.get(call.tool)
        return template_args(spec) if spec is not None else None

    def effects_of(self, call: ToolCall) -> list[Effect]:
        """What ``call`` would do, from its tool spec or, for shell tools, the shell analyser.

        A tool with no spec yields one uncertain effect: the guard cannot tell what it does.
        See :class:`guard.effects.EffectFinder`.
        """
        effects = self.effect_finder.effects_of(call)
        carried: list[Effect] = []
        for eff in effects:
            edit = eff.edit
            if edit is not None and edit.content is not None and eff.kind is EffectKind.WRITE:
                carried += self._carried(call.agent, eff, edit)  # every write, not the first
        return [*effects, *carried] if carried else effects

    def _carried(self, agent: str, write: Effect, edit: ConfigEdit) -> list[Effect]:
        """A ``copy`` from each protected weights file whose tensor bytes the content a
        call writes holds (raw, base64, hex, compressed: :class:`ContentIndex`), alone, with
        what the agent sent before, or, for an append, with the end of the file it extends
        (:class:`CarryLedger`); an uncertain effect where the content could not be looked
        into."""
        content = edit.content or ""
        append_to = None
        if edit.op == "append" and write.target is not None and write.target.path is not None:
            append_to = write.target.path
        found = self.carry.carried(
            agent, "out", content.encode("utf-8", "surrogatepass"), append_to=append_to
        )
        out = [
            Effect(kind=EffectKind.COPY, target=Location(raw=h.path, path=h.path,
                   host=self.hosts.host_of(h.path)), dest=write.target, via=write.via,
                   note=f"its content: {describe(h, self.root)}")
            for h in found.hits
        ]  # fmt: skip
        for why in found.uninspected[:1]:
            out.append(Effect(kind=EffectKind.UNKNOWN, target=write.target, via=write.via,
                              certain=False, note=f"content that could not be inspected: {why}"))  # fmt: skip
        return out

    @functools.cached_property
    def content(self) -> ContentIndex:
        """Fingerprints of the protected weights, for content an agent carries itself."""
        return ContentIndex(self.assets, self.roots)

    @functools.cached_property
    def carry(self) -> CarryLedger:
        """What each agent has carried of protected weights so far (see :mod:`guard.carry`)."""
        return CarryLedger(self.content)

    # ------------------------------------------------------------------ obligations

    def start_run(self) -> dict[str, Recomputed]:
        """Call when an agent's run starts; keep what it returns for :meth:`end_run`: the
        scores the graded items give now, so that items changed during the run cannot make
        an obligation look fulfilled or never due."""
        return scores_now(self.evaluations, self.root)

    def obligations_due(self, scores: Mapping[str, Recomputed] | None = None) -> list[Due]:
        """The obligations the run has incurred (see :mod:`guard.obligations`), from the
        scores :meth:`start_run` kept, or from the graded items as they are now."""
        return due(self.policy, self.evaluations, self.assets, self.root, scores=scores)

    def end_run(
        self,
        calls: Iterable[ToolCall],
        *,
        agent: str | None = None,
        scores: Mapping[str, Recomputed] | None = None,
    ) -> list[Alert]:
        """Call when an agent's run ends: raise a critical alert for each obligation none of
        ``calls`` (the calls that ran) fulfils, and return those alerts.

        The integrations call this themselves (the LangGraph middleware when the agent
        stops); call it after :meth:`run` loops of your own, with what :meth:`start_run`
        returned as ``scores``.
        """
        missed = unmet(self.obligations_due(scores), calls, self.effects_of, self.args_read)
        alerts = [
            Alert(
                severity=Severity.CRITICAL,
                rule=d.rule,
                message=f"obligation unmet at the end of the run: {d.why}, so {d.required} "
                "had to follow, and no call that ran did it",
                agent=agent,
                details=(("obligation", "unmet"),),
            )
            for d in missed
        ]
        for alert in alerts:
            self.sinks.alert(alert)
        return alerts

    # ------------------------------------------------------------------ reasons

    def _display(self, path: str | None) -> str:
        if path is None:
            return "<unresolved path>"
        if path.startswith(self._root_prefix):
            return path[len(self._root_prefix) :]
        return "." if path == self.root else path

    def _show_effect(self, eff: Effect) -> str:
        # On every deny's path: attributes read once, the common cases without a call.
        text: str = eff.kind  # a StrEnum is its value
        target, dest = eff.target, eff.dest
        if target is not None:
            path = target.path
            text += " " + (self._display(path) if path is not None else target.raw)
        if dest is not None:
            path = dest.path
            shown = self._display(path) if path else dest.raw
            host = dest.host
            if host and ":" not in shown and shown != host:
                text += f" -> {host}:{shown}"  # what on_host gives for a plain path
            else:
                text += " -> " + dest.on_host(shown)
        if eff.agent:
            text += " " + eff.agent
        if not eff.certain and eff.note:
            text += f" ({eff.note})"
        return text

    def _unmatched(self, effects: list[Effect]) -> str:
        shown = ", ".join([self._show_effect(e) for e in effects]) or "no effect"
        return f"no rule matched: {shown}"

    def _reason_for(self, said: str, fact: Fact, asset: AssetRef | None) -> str:
        """``said`` (the effect in words) with what the fact adds: whose asset, what changes."""
        if asset is not None and asset.kind is not None:
            whose = f"of {asset.owner}" if asset.owner else "with no declared owner"
            # ``_value_``: the members' text without Enum's formatting (this is the hot path).
            kind, relation = asset.kind._value_, asset.relation._value_
            said += f" [{self._display(asset.path)}: {kind} {whose}, {relation}]"
        if fact.oversight_off:
            said += " [turns oversight off]"
        if fact.note:
            said += f" [{fact.note}]"
        if fact.score != "none":
            said += f" [score {fact.score}]"
        return said

    # ------------------------------------------------------------------ run

    def approval_request(self, call: ToolCall, decision: Decision) -> ApprovalRequest:
        """What a human is shown to confirm ``call`` (bound to its exact arguments)."""
        return ApprovalRequest.from_decision(decision, call.args)

    def settle(self, call: ToolCall, decision: Decision, response: ApprovalResponse | None) -> None:
        """Raise unless ``decision`` lets the call run, given a confirmation's ``response``.

        Records the approval (or refusal) on the sinks. Integrations that collect the answer
        themselves (a LangGraph interrupt) call this with it, then :meth:`after` once the
        tool ran.

        Raises:
            CallBlocked: Denied, or the confirmation was refused or bound to other arguments.
            ApprovalTimeout: The confirmation timed out.
        """
        action = decision.action
        if decision.mode is not _ENFORCE or action is _ALLOW or action is _ALERT:
            return
        if action is _DENY:
            raise CallBlocked(decision)
        if response is None:  # confirm without an answer: refuse
            response = _failed_approval(decision, RuntimeError("no answer"))
        request = self.approval_request(call, decision)
        approved = response.approves(request)
        reason = response.reason or ("approved" if approved else "refused")
        if response.approved and not approved:
            reason = "the approval was for a different call (arguments changed)"
        self.sinks.approval(decision, approved, reason)
        if approved:
            return
        alert = Alert(
            severity=Severity.WARNING,
            rule=REFUSED_RULE,
            message=f"confirmation of {call.tool} refused: {reason}",
            agent=call.agent,
            tool=call.tool,
            call_id=call.call_id,
        )
        self.sinks.alert(alert)
        blocked = decision.replace(reason=f"{decision.reason}; confirmation refused: {reason}")
        if response.approver == "timeout":
            raise ApprovalTimeout(blocked)
        raise CallBlocked(blocked)

    def _touched(self, decision: Decision) -> list[str]:
        paths: list[str] = []
        for eff in decision.effects:
            for loc in (eff.target, eff.dest):
                if loc is not None and loc.path is not None:
                    paths.append(loc.path)
        return paths

    def after(self, decision: Decision) -> None:
        """Tell the guard a call ran (or tried to): what it touched may have changed."""
        for eff in decision.effects:
            if eff.kind not in READ_ONLY:
                self.hosts.invalidate()
                self.assets.refresh(self._touched(decision))
                break
        if self._listeners:
            for listener in list(self._listeners):
                listener.after_execute(decision)

    def decide(self, call: ToolCall) -> Decision:
        """Decide on ``call`` and record the decision, its alerts and its latency on every sink.

        Returns:
            The decision that stands: the one :meth:`check` made, or a deny when it could
            not be recorded (see :meth:`record`).
        """
        started = time.perf_counter()
        decision = self.check(call)
        if decision.enforced and decision.action is Action.CONFIRM:
            self.sinks.confirmation_requested(decision)
        return self.record(decision, seconds=time.perf_counter() - started, call=call)

    def record(
        self, decision: Decision, *, seconds: float | None = None, call: ToolCall | None = None
    ) -> Decision:
        """Record a decision made by :meth:`check`: the decision, its alerts, its latency.

        Integrations that must decide before they may record (a LangGraph interrupt re-runs
        the code before it) call :meth:`check` first and this once, after the answer.

        Recording is the last stage of deciding, and it fails closed like the others: when
        the decision's reason cannot be worked out, or a required sink (the audit log) could
        not record it, the call is denied with an enforcement-gap alert.

        Args:
            decision: What :meth:`check` decided.
            seconds: How long deciding took, for the latency metric.
            call: The call decided on (its arguments go into a deny's hash).

        Returns:
            ``decision``, or the deny that replaces it. Go on with the returned one.
        """
        try:
            decision.reason  # noqa: B018 - worked out now, where a failure can still deny
        except Exception as exc:  # fail closed: a decision the guard cannot explain
            decision = self._gap(decision, call, f"the reason could not be worked out: {exc!r}")
        lost = self.sinks.decision(decision)
        if lost and decision.action is not _DENY:
            denied = self._gap(decision, call, "a required sink could not record the decision")
            self.sinks.decision(denied)
            decision = denied
        if seconds is not None:
            self.sinks.latency(decision, seconds)
        return decision

    def _gap(self, decision: Decision, call: ToolCall | None, why: str) -> Decision:
        """A deny, with an enforcement-gap alert, standing for ``decision``."""
        message = f"{why}; {decision.tool} denied"
        alert = Alert(Severity.CRITICAL, INTERNAL_ERROR_RULE, message, decision.agent,
                      decision.tool, decision.call_id, True)  # fmt: skip
        return Decision(
            Action.DENY, decision.agent, decision.tool, decision.call_id,
            _safe_hash(call) if call is not None else _decision_hash(decision), None, decision.mode,
            [INTERNAL_ERROR_RULE], None, decision.effects, decision.assets, [alert], message,
        )  # fmt: skip

    def screen(self, call: ToolCall, result: T, decision: Decision | None = None) -> T:
        """Let ``result`` reach the agent only if it carries no one else's weights.

        Output that holds a substantial part of another model's (or an unowned) protected
        weights file, raw, in base64 or hex, or compressed (see :class:`ContentIndex`), or
        that cannot be looked into within the decoding budget, is withheld: a critical
        alert, then :class:`ResultWithheld`, whose message is the notice the agent sees. In
        shadow mode only the alert. Strings, bytes and those inside lists, tuples and dicts
        are looked at, as the continuation of what the agent received before: a part read a
        few KB at a time is withheld once the pieces add up to one (:mod:`guard.carry`).

        Raises:
            ResultWithheld: The result was withheld (enforce mode).
        """
        # One stream of everything the result holds: a part cut into rows, blocks or fields
        # under the minimum each is still a part.
        pieces = [p.encode("utf-8", "surrogatepass") if isinstance(p, str) else p
                  for p in strings_in(result)]  # fmt: skip
        if not pieces:
            return result
        # Added to what the agent received before (CarryLedger): a part read a few KB at a
        # time is a part too.
        found = self.carry.carried(call.agent, "in", b"\n".join(pieces))
        hits = [h for h in found.hits if h.asset.owner != call.agent]
        gaps = found.uninspected
        if not hits and not gaps:
            return result
        what = (
            "; ".join(describe(h, self.root) for h in hits[:3])
            if hits
            else f"content that could not be inspected ({gaps[0]})"
        )
        message = (
            f"the result of {call.tool} was withheld: it holds {what}, which is not the "
            "agent's to carry"
        )
        alert = Alert(Severity.CRITICAL, WITHHELD_RULE, message, call.agent, call.tool,
                      call.call_id, enforcement_gap=not hits)  # fmt: skip
        self.sinks.alert(alert)
        if self.mode is not _ENFORCE:
            return result
        base = decision if decision is not None else self.check(call)
        withheld = Decision(
            Action.DENY, call.agent, call.tool, call.call_id, base.args_hash, None, self.mode,
            [WITHHELD_RULE], None, base.effects, base.assets, [alert], message,
        )  # fmt: skip
        raise ResultWithheld(withheld, f"peerguard withheld the result of {call.tool}: {message}")

    def run(self, call: ToolCall, execute: Callable[[ToolCall], T]) -> T:
        """Decide, ask for confirmation when needed, execute, and record.

        Args:
            call: The tool call.
            execute: Runs the tool; called only when the call may run.

        Returns:
            What ``execute`` returned.

        Raises:
            CallBlocked: The call was denied or its confirmation refused (enforce mode).
        """
        with self.sinks.tool_span(call):
            decision = self.decide(call)
            response = None
            if decision.enforced and decision.action is Action.CONFIRM:
                try:
                    response = self.approver.ask(self.approval_request(call, decision))
                except Exception as exc:
                    response = _failed_approval(decision, exc)
            self.settle(call, decision, response)
            self.before(decision)
            try:
                result = execute(call)
            except Exception as exc:
                self._screen_error(call, exc, decision)
                raise
            finally:
                self.after(decision)
            return self.screen(call, result, decision)

    def _screen_error(self, call: ToolCall, exc: Exception, decision: Decision) -> None:
        """Raise :class:`ResultWithheld` in place of an error whose message carries someone
        else's weights (an agent framework shows the message to the model)."""
        if isinstance(exc, CallBlocked):
            return
        try:
            self.screen(call, exc, decision)
        except ResultWithheld as withheld:
            raise withheld from None

    async def arun(self, call: ToolCall, execute: Callable[[ToolCall], Awaitable[T]]) -> T:
        """The async form of :meth:`run`; an approver with ``aask`` is awaited.

        Deciding (a shell analysis may read scripts and take up to its time bound) and the
        re-hash after the call (a copied weights file is hashed whole) run in a worker
        thread, so the agent's event loop goes on meanwhile.
        """
        with self.sinks.tool_span(call):
            decision = await asyncio.to_thread(self.decide, call)
            response = None
            if decision.enforced and decision.action is Action.CONFIRM:
                request = self.approval_request(call, decision)
                try:
                    aask = getattr(self.approver, "aask", None)
                    if aask is not None:
                        response = await aask(request)
                    else:
                        response = await asyncio.to_thread(self.approver.ask, request)
                except Exception as exc:
                    response = _failed_approval(decision, exc)
            self.settle(call, decision, response)
            self.before(decision)
            try:
                ran = execute(call)
                result: T = await ran if inspect.isawaitable(ran) else ran
            except Exception as exc:
                await asyncio.to_thread(self._screen_error, call, exc, decision)
                raise
            finally:
                await asyncio.to_thread(self.after, decision)
            return await asyncio.to_thread(self.screen, call, result, decision)


def unidentified(
    guard: Guard, tool: str, args: Mapping[str, Any], call_id: str | None = None
) -> Decision:
    """A deny for a call that no agent could be named for, recorded on ``guard``'s sinks.

    It is enforced even in shadow mode: without an agent, no decision the policy makes
    means anything, so the integration is misconfigured and must say so loudly.

    Args:
        guard: The guard whose sinks record the decision.
        tool: The tool's name.
        args: The call's arguments.
        call_id: The call's id; a new one when ``None``.

    Returns:
        The deny decision (rule ``unidentified-agent``, with an enforcement-gap alert).
    """
    call_id = call_id or uuid.uuid4().hex
    message = (
        f"peerguard could not tell which agent is calling {tool}: no agent id was given "
        "(set the integration's agent, config['configurable']['peerguard_agent'], "
        "the runtime context's agent_id, or use acting_as()); denied"
    )
    decision = Decision(
        action=Action.DENY,
        mode=Mode.ENFORCE,
        agent="",
        tool=tool,
        call_id=call_id,
        args_hash=args_hash(tool, dict(args)),
        rules=[UNIDENTIFIED_AGENT_RULE],
        reason=message,
        alerts=[
            Alert(
                severity=Severity.ERROR,
                rule=UNIDENTIFIED_AGENT_RULE,
                message=message,
                tool=tool,
                call_id=call_id,
                enforcement_gap=True,
            )
        ],
    )
    guard.sinks.decision(decision)
    return decision


def _rank_of_hit(hit: tuple[CompiledRule, Fact]) -> int:
    return hit[0].rank


def _failed_approval(decision: Decision, exc: BaseException) -> ApprovalResponse:
    return ApprovalResponse(
        approved=False,
        args_hash=decision.args_hash,
        reason=f"the approver failed ({type(exc).__name__}: {exc})",
        approver="peerguard",
    )


def _safe_hash(call: ToolCall) -> str:
    try:
        return call.args_hash
    except Exception:
        return ""


def _decision_hash(decision: Decision) -> str:
    try:
        return decision.args_hash
    except Exception:
        return ""


def _outermost(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(p == o or p.startswith(o.rstrip(os.sep) + os.sep) for o in out):
            out.append(p)
    return out


__all__ = [
    "INTERNAL_ERROR_RULE",
    "REFUSED_RULE",
    "UNIDENTIFIED_AGENT_RULE",
    "ExecutionListener",
    "Guard",
    "unidentified",
]
