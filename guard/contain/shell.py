"""The shell tool peerguard offers: every command the guard lets run, runs contained.

:class:`ContainedShell` decides on a command in three steps, none of which trusts the others:

1. **Predict**: the guard's analyser reads the command (:meth:`Guard.check
   <guard.engine.Guard.check>`). A definite harm (a copy of a peer's weights, a switch turned
   off) is denied here and nothing runs.
2. **Contain**: otherwise the command runs in a sandbox (:mod:`guard.contain.sandbox`): the
   protected roots are overlays, nothing else is writable, there is no network unless the
   prediction allowed a transfer to a place the guard cannot see into, and every process ends
   with the call.
3. **Observe**: what the command really changed (:mod:`guard.contain.changes`) becomes
   observed effects (:mod:`guard.contain.observe`), judged with the same policy together with
   the prediction's definite effects: the most restrictive decision wins. What the analyser was
   only unsure about needs no human when the observed effects are harmless.

Then the change set is committed to the real trees (journaled, :mod:`guard.contain.journal`), or
discarded; a confirmation shows the human the concrete change set, and an approval commits it
unchanged.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from guard.approval import ApprovalRequest, ApprovalResponse
from guard.contain.changes import Change, ChangeSet, read_changes
from guard.contain.journal import Transaction, later, recover, settled
from guard.contain.observe import observed_effects
from guard.contain.sandbox import (
    ContainedRun,
    ContainmentError,
    ContainmentUnavailable,
    Limits,
    probe,
    run_contained,
)
from guard.engine import Guard
from guard.exceptions import CallBlocked, ConfigError
from guard.types import Action, Alert, Decision, Effect, EffectKind, Severity, ToolCall

__all__ = ["ContainedShell", "PendingRun", "ShellResult"]

UNCONTAINED_RULE = "uncontained"


@dataclass(slots=True)
class ShellResult:
    """What one shell call did and what the guard made of it.

    Attributes:
        exit_code: ``bash``'s exit status (``None``: killed at a limit).
        stdout: Standard output (decoded as UTF-8, bad bytes replaced).
        stderr: Standard error.
        cut: What was cut or killed (output past the limit, the time limit...).
        changes: What the command changed (empty when it ran uncontained).
        decision: The decision that stands (predicted and observed together).
        committed: Whether the changes reached the real filesystem.
        contained: Whether the command ran contained.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    decision: Decision
    changes: ChangeSet = field(default_factory=ChangeSet)
    cut: list[str] = field(default_factory=list)
    committed: bool = False
    contained: bool = True

    def text(self) -> str:
        """The output as a tool returns it to an agent: output, errors, then any notes."""
        parts = [self.stdout, self.stderr]
        if self.cut:
            parts.append("[peerguard: " + "; ".join(self.cut) + "]")
        if self.exit_code not in (0, None):
            parts.append(f"[exit status {self.exit_code}]")
        return "\n".join(p.rstrip("\n") for p in parts if p)


@dataclass(slots=True)
class PendingRun:
    """A contained run that is judged but not yet committed or discarded.

    Attributes:
        call: The call.
        decision: The decision on it (prediction and observation together), not yet recorded.
        tx: The transaction holding its changes.
        result: What the run printed and how it ended.
        changes: What it changed.
        seconds: How long deciding and running took.
    """

    call: ToolCall
    decision: Decision
    tx: Transaction
    result: ContainedRun
    changes: ChangeSet
    seconds: float

    @property
    def needs_approval(self) -> bool:
        """Whether a human must confirm before the changes are committed."""
        return self.decision.enforced and self.decision.action is Action.CONFIRM

    def request(self, shell: ContainedShell) -> ApprovalRequest:
        """What the human is shown: the call, the decision, and the concrete change set."""
        base = shell.guard.approval_request(self.call, self.decision)
        lines = [shell.describe(c) for c in self.changes.shown()]
        return base.model_copy(update={"changes": lines})


def _definite(effect: Effect) -> bool:
    """An effect the analyser is sure of (its uncertain ones are replaced by observation)."""
    if not effect.certain or effect.unseen or effect.kind is EffectKind.UNKNOWN:
        return False
    return all(
        loc is None or loc.path is not None or not loc.visible
        for loc in (effect.target, effect.dest)
    )


class ContainedShell:
    """Run shell commands for agents, contained, and commit only what the policy allows.

    Args:
        guard: The guard whose policy, roots, hosts and asset index decide.
        state_dir: Where transactions and the commit journal live: outside every protected
            root, best on the same filesystem (a commit is then a rename). Default: a
            hidden folder beside the guard's root, ``.<root name>.peerguard``.
        limits: Time, output and size limits per call.
        env: The commands' environment (default: this process's).
        containment: ``"on"`` (the default) or ``"off"``: an explicit opt-out that raises an
            enforcement-gap alert now and marks every decision ``uncontained``.
        tool: The tool name calls are decided under (the policy's shell tool).
        bash: The shell to run.
        hide: Folders shown empty to every command: secrets the commands must not read,
            such as the folder of the guard's signing key (a command reads the machine as
            the user the guard runs as; the guard's own state folder is always hidden).

    Raises:
        ContainmentUnavailable: Containment is on and this machine cannot do it (the
            message says what is missing and how to enable it).
        ConfigError: ``state_dir`` is inside a protected root, or ``containment`` is neither.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        containment: Literal["on", "off"] = "on",
        tool: str = "shell",
        bash: str = "bash",
        hide: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        if containment not in ("on", "off"):
            raise ConfigError(f"containment must be 'on' or 'off', not {containment!r}")
        self.guard = guard
        self.limits = limits or Limits()
        self.env = dict(env) if env is not None else None
        self.tool = tool
        self.bash = bash
        self.hide = [os.path.realpath(os.fspath(h)) for h in hide]
        self.contained = containment == "on"
        self._lock = threading.Lock()
        self._pending: dict[str, PendingRun] = {}
        self._spare: Transaction | None = None
        root = guard.root
        default = os.path.join(os.path.dirname(root), f".{os.path.basename(root)}.peerguard")
        self.state_dir = os.path.realpath(os.fspath(state_dir) if state_dir else default)
        for r in guard.roots:
            if self.state_dir == r or self.state_dir.startswith(r.rstrip("/") + "/"):
                raise ConfigError(
                    f"state_dir {self.state_dir} is inside the protected root {r}: "
                    "choose a folder outside every root"
                )
        if self.contained:
            missing = probe()
            if missing is not None:
                raise ContainmentUnavailable(
                    f"the contained shell cannot start: {missing}. To run without it, pass "
                    "containment='off' (every decision is then marked uncontained)."
                )
            os.makedirs(self.state_dir, exist_ok=True)
            recover(self.state_dir)
        else:
            guard.sinks.alert(
                Alert(
                    severity=Severity.CRITICAL,
                    rule=UNCONTAINED_RULE,
                    message="the shell tool runs uncontained (containment='off'): commands "
                    "are judged only on what the analyser predicts",
                    enforcement_gap=True,
                )
            )

    # ------------------------------------------------------------------ running

    def run(
        self,
        command: str,
        *,
        agent: str,
        call_id: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ShellResult:
        """Decide on ``command``, run it contained, judge what it did, commit or discard.

        A confirmation goes to the guard's approver, showing the change set.

        Args:
            command: The shell command line.
            agent: The acting agent.
            call_id: The tool call id (a fresh one when not given).
            cwd: The working directory (relative: from the guard's root).
            env: This call's environment (default: the shell's).

        Returns:
            The :class:`ShellResult` of a call that was allowed (or approved).

        Raises:
            CallBlocked: Denied before or after running, or its confirmation refused; the
                message names the rule and what the command tried, and nothing it
                wrote reached the real filesystem. A sandbox that could not be set up, or a
                change set that could not be read whole, is a deny too (with an
                enforcement-gap alert).
        """
        call = self.call(command, agent=agent, call_id=call_id, cwd=cwd)
        with self.guard.sinks.tool_span(call):
            if not self.contained:
                return self._uncontained(call, env)
            pending = self.prepare(call, env=env)
            response = None
            if pending.needs_approval:
                try:
                    response = self.guard.approver.ask(pending.request(self))
                except Exception as exc:  # an approver that fails refuses
                    response = ApprovalResponse(approved=False, args_hash=call.args_hash,
                                                reason=f"the approver failed: {exc!r}",
                                                approver="peerguard")  # fmt: skip
            return self.finish(pending, response)

    async def arun(
        self,
        command: str,
        *,
        agent: str,
        call_id: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ShellResult:
        """The async form of :meth:`run` (the run and the decision happen off the event loop)."""
        return await asyncio.to_thread(
            self.run, command, agent=agent, call_id=call_id, cwd=cwd, env=env
        )

    def call(
        self, command: str, *, agent: str, call_id: str | None = None, cwd: str | None = None
    ) -> ToolCall:
        """The guard's view of one shell call."""
        extra = {"call_id": call_id} if call_id else {}
        return ToolCall(agent=agent, tool=self.tool, args={"command": command}, cwd=cwd, **extra)

    # -- the two halves, for integrations that ask a human between them (a LangGraph interrupt)

    def prepare(self, call: ToolCall, *, env: Mapping[str, str] | None = None) -> PendingRun:
        """Predict, run contained and judge ``call``; nothing is committed yet.

        The run is kept by call id until :meth:`finish` (see :meth:`pending`), so that an
        integration whose code runs again after a human's answer does not run it twice.

        Raises:
            CallBlocked: The prediction or the observed effects deny the call (nothing is
                kept), it wrote past a limit, or the sandbox or the change set failed (a deny
                with an enforcement-gap alert).
        """
        guard = self.guard
        started = time.perf_counter()
        predicted = guard.check(call)
        if predicted.action is Action.DENY and predicted.enforced:
            guard.record(predicted, seconds=time.perf_counter() - started, call=call)
            raise CallBlocked(predicted)
        definite = [e for e in predicted.effects if _definite(e)]
        # The network only for a call the prediction allows outright: what a command sends
        # cannot be taken back, so it never goes out before a human's answer.
        network = predicted.action in (Action.ALLOW, Action.ALERT) and any(
            e.kind is EffectKind.TRANSFER and e.dest is not None and not e.dest.visible
            for e in definite
        )
        masks = self._masks(definite) if network else []
        command = str(call.args.get("command", ""))
        cwd = guard.effect_finder.cwd(call)[0]
        tx = self._transaction()
        try:
            result = run_contained(
                command, tx.layers, cwd=cwd, env=self._env(env), limits=self.limits,
                network=network, masks=masks, hide=[self.state_dir, *self.hide], bash=self.bash,
            )  # fmt: skip
            # The next call's folders, made now that this sandbox is built (making them while
            # it was built would slow both on the same disk).
            later(self._make_spare, tuple(guard.roots))
            tx.seal()  # what is judged below is what a commit may apply
            changes = read_changes(tx.layers, digest_if=guard.assets.has_size)
            observed = observed_effects(changes, guard.assets, guard.hosts, content=guard.content)
            decision = guard.judge(call, definite + observed)
            if result.over_size:
                decision = _denied(decision, "size-limit", "; ".join(result.cut))
            if decision.enforced and decision.action is Action.DENY:
                seconds = time.perf_counter() - started
                decision = guard.record(decision, seconds=seconds, call=call)
                raise CallBlocked(decision, self._blocked_message(decision, changes))
        except (OSError, ContainmentError) as exc:
            # The run or its change set could not be looked at whole: nothing of it is kept,
            # and the call is denied with an enforcement-gap alert.
            tx.discard()
            failed = guard.fail_closed(call, exc)
            failed = guard.record(failed, seconds=time.perf_counter() - started, call=call)
            raise CallBlocked(failed) from exc
        except BaseException:
            tx.discard()
            raise
        pending = PendingRun(call, decision, tx, result, changes, time.perf_counter() - started)
        with self._lock:
            self._pending[call.call_id] = pending
        return pending

    def pending(self, call_id: str) -> PendingRun | None:
        """The prepared, not yet finished run of ``call_id``, if any."""
        with self._lock:
            return self._pending.get(call_id)

    def finish(self, pending: PendingRun, response: ApprovalResponse | None = None) -> ShellResult:
        """Record the decision, then commit the run's changes, or discard them.

        Args:
            pending: What :meth:`prepare` returned.
            response: The human's answer when the decision is ``confirm``.

        Raises:
            CallBlocked: The confirmation was refused (or missing): nothing is kept.
        """
        guard = self.guard
        with self._lock:
            self._pending.pop(pending.call.call_id, None)
        call, decision, tx, changes = pending.call, pending.decision, pending.tx, pending.changes
        committed = False
        try:
            decision = guard.record(decision, seconds=pending.seconds, call=call)
            guard.settle(call, decision, response)
            guard.before(decision)
            try:
                tx.commit()
                committed = True
            finally:
                guard.after(decision)  # re-indexes what the observed effects name
        finally:
            if not committed:
                tx.discard()
        result = _result(pending.result, decision, changes, committed=committed)
        # What it printed reaches the agent only if it carries no one else's weights.
        guard.screen(call, (result.stdout, result.stderr), decision)
        return result

    def discard(self, pending: PendingRun) -> None:
        """Throw a prepared run away without deciding on it further."""
        with self._lock:
            self._pending.pop(pending.call.call_id, None)
        pending.tx.discard()

    def close(self, timeout: float = 30.0) -> bool:
        """Throw away every prepared, unfinished run and the transaction made ahead of time,
        and wait until the background tidying is done, so the state folder holds nothing of
        this shell's and may be removed. The shell stays usable. True when everything was
        tidied within ``timeout`` seconds."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            spare, self._spare = self._spare, None
        if not settled(timeout):
            return False
        with self._lock:  # a spare made meanwhile by the background thread
            spare_late, self._spare = self._spare, None
        for p in pending:
            p.tx.discard(wait=True)
        for tx in (spare, spare_late):
            if tx is not None:
                tx.discard(wait=True)
        return True

    def __enter__(self) -> ContainedShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self, change: Change) -> str:
        """A change as a person reads it, paths from the guard's root."""
        root = self.guard.root
        path = change.path
        shown = os.path.relpath(path, root) if path.startswith(root.rstrip("/") + "/") else path
        return change.describe(shown)

    def _blocked_message(self, decision: Decision, changes: ChangeSet) -> str:
        shown = changes.shown()
        tried = "; ".join(self.describe(c) for c in shown[:10])
        more = f" (and {len(shown) - 10} more)" if len(shown) > 10 else ""
        did = f" It tried: {tried}{more}. Nothing it wrote was kept." if shown else ""
        return f"peerguard blocked {decision.tool}: {decision.reason}.{did}"

    def _masks(self, definite: list[Effect]) -> list[str]:
        """Protected files a call given the network may not read: every one but the content of
        the transfers the prediction allowed (a read or a listing unmasks nothing), so that a
        wrong prediction cannot send them."""
        sent = [
            e.target.path
            for e in definite
            if e.kind is EffectKind.TRANSFER and e.target is not None and e.target.path
        ]
        out = []
        for root in self.guard.roots:
            for path, _info in self.guard.assets.under(root):
                if not any(path == n or path.startswith(n.rstrip("/") + "/") for n in sent):
                    out.append(path)
        return out

    def _transaction(self) -> Transaction:
        """A fresh transaction: the one made ahead of time (see :meth:`_make_spare`; making its
        folders costs more than a millisecond on a slow disk)."""
        roots = tuple(self.guard.roots)
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare.roots != roots:
            if spare is not None:
                spare.discard()
            spare = Transaction(self.state_dir, roots)
        return spare

    def _make_spare(self, roots: tuple[str, ...]) -> None:
        try:
            made = Transaction(self.state_dir, roots)
        except OSError:
            return  # the next call makes its own
        with self._lock:
            kept = self._spare is None
            if kept:
                self._spare = made
        if not kept:
            made.discard()

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str] | None:
        chosen = env if env is not None else self.env
        return dict(chosen) if chosen is not None else None

    def _uncontained(self, call: ToolCall, env: Mapping[str, str] | None) -> ShellResult:
        """``containment='off'``: the prediction alone decides; the decision says so."""
        guard = self.guard
        started = time.perf_counter()
        decision = guard.check(call)
        decision = decision.replace(
            rules=[*decision.rules, UNCONTAINED_RULE],
            reason=(decision.reason + "; " if decision.reason else "") + "uncontained",
        )
        decision = guard.record(decision, seconds=time.perf_counter() - started, call=call)
        response = None
        if decision.enforced and decision.action is Action.CONFIRM:
            try:
                response = guard.approver.ask(guard.approval_request(call, decision))
            except Exception as exc:  # an approver that fails refuses
                response = ApprovalResponse(approved=False, args_hash=decision.args_hash,
                                            reason=f"the approver failed: {exc!r}",
                                            approver="peerguard")  # fmt: skip
        guard.settle(call, decision, response)
        guard.before(decision)
        try:
            proc = subprocess.run(
                [self.bash, "-c", str(call.args["command"])], cwd=guard.effect_finder.cwd(call)[0],
                env=self._env(env), capture_output=True, timeout=self.limits.timeout,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = ContainedRun(None, exc.stdout or b"", exc.stderr or b"", ["killed at the time limit"],
                            timed_out=True)  # fmt: skip
        else:
            out = ContainedRun(proc.returncode, proc.stdout, proc.stderr)
        finally:
            guard.after(decision)
        res = _result(out, decision, ChangeSet(), committed=True)
        res.contained = False
        guard.screen(call, (res.stdout, res.stderr), decision)
        return res


def _denied(decision: Decision, rule: str, why: str) -> Decision:
    return decision.replace(action=Action.DENY, rules=[rule, *decision.rules],
                            reason=why + ("; " + decision.reason if decision.reason else ""))  # fmt: skip


def _result(
    run: ContainedRun, decision: Decision, changes: ChangeSet, *, committed: bool
) -> ShellResult:
    return ShellResult(
        exit_code=run.exit_code,
        stdout=run.stdout.decode("utf-8", "replace"),
        stderr=run.stderr.decode("utf-8", "replace"),
        decision=decision,
        changes=changes,
        cut=list(run.cut),
        committed=committed,
    )
