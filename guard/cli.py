"""The ``peerguard`` command line.

``peerguard check`` decides calls and prints JSON; ``peerguard policy check`` lints a policy;
``peerguard demo`` shows the default policy stopping a peer-preservation incident;
``peerguard mcp-proxy`` guards the tool calls of another MCP server (:mod:`guard.integrations.mcp`).
Exit status: 0 on success, 1 when a checked policy is invalid, 2 for bad input (including a
``--calls`` file with lines that are not calls: each gets an error line, the rest are decided),
3 when ``policy check --strict`` found a rule that weakens the shipped rule it replaces.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from guard._version import __version__
from guard.exceptions import ConfigError, GuardError, IntegrationUnavailable, IntegrityError
from guard.types import ToolCall

_CALL_KEYS = {"tool", "args", "agent", "call_id", "host", "cwd"}
_IGNORED_CALL_KEYS = {"role"}  # scenario ground truth: never shown to the guard


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


def _host_pairs(values: Sequence[str]) -> dict[str, str]:
    hosts: dict[str, str] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise UsageError(f"--host {value!r}: expected NAME=DIR")
        if not Path(folder).is_dir():
            raise UsageError(f"--host {value!r}: {folder} is not a folder")
        hosts[name] = folder
    return hosts


def _make_guard(args: argparse.Namespace) -> Any:
    from guard.engine import Guard
    from guard.policy import load_declarations, load_policy
    from guard.sinks import Sink

    if not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root}: not a folder")
    policy = load_policy(args.policy) if args.policy else load_policy()
    declarations = load_declarations(args.declare) if args.declare else None
    return Guard(
        policy,
        root=args.root,
        hosts=_host_pairs(args.host or []),
        declarations=declarations,
        mode=args.mode,
        # The CLI prints each decision with its alerts; nothing else needs to hear of them.
        sinks=[Sink()],
    )


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    if bool(args.call) == bool(args.calls):
        raise UsageError("give exactly one of --call JSON and --calls FILE")
    guard = _make_guard(args)
    if args.call:
        try:
            data = json.loads(args.call)
        except ValueError as exc:
            raise UsageError(f"--call: not valid JSON: {exc}") from exc
        call = parse_call(data, args.agent, "--call")
        print(json.dumps(guard.check(call).summary(), indent=2), file=out)
        return 0
    try:
        # Bytes, split on newlines only: a line that is not UTF-8 is that line's error, not
        # the file's, and U+2028, a line break to str.splitlines, is allowed raw in JSON.
        lines = Path(args.calls).read_bytes().split(b"\n")
    except OSError as exc:
        raise UsageError(f"--calls {args.calls}: {exc.strerror}") from exc
    bad = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{args.calls}:{number}"
        try:
            # One bad line must not cost the decisions on the lines after it.
            print(
                json.dumps({"line": number, **_decide_line(guard, raw, args.agent, where)}),
                file=out,
            )
        except UsageError as exc:
            bad += 1
            print(json.dumps({"line": number, "error": str(exc)}), file=out)
            print(f"peerguard: error: {exc}", file=sys.stderr)
    return 2 if bad else 0


def _decide_line(guard: Any, raw: bytes, agent: str | None, where: str) -> dict[str, Any]:
    """The decision summary for one line of a calls file; ``UsageError`` names what is wrong."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from exc
    try:
        data = json.loads(line)
    except RecursionError as exc:
        raise UsageError(f"{where}: JSON nested too deeply to decode") from exc
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc}") from exc
    call = parse_call(data, agent, where)
    summary: dict[str, Any] = guard.check(call).summary()  # fails closed: an error denies
    return summary


CHECK_STATUS = """\
exit status:
  0  every call was decided (whatever the decisions: read them from the JSON)
  2  bad input: a bad flag, policy or declarations file, or a --calls line that is not a
     call (not UTF-8, not JSON, nested too deeply, not an object); such a line prints
     {"line": N, "error": "FILE:N: ..."} in its place, and every other line is still decided
"""

POLICY_CHECK_STATUS = """\
exit status:
  0  every file is a valid policy (warnings alone do not fail without --strict)
  1  some file is not a valid policy (the error names file, line and key)
  2  bad command-line input
  3  with --strict: every file is valid, but some rule weakens the shipped rule it replaces
"""


def cmd_policy_check(args: argparse.Namespace, out: TextIO) -> int:
    from guard.policy import lint_policy, load_policy

    invalid = warned = False
    for file in args.files:
        try:
            policy = load_policy(file)
            warnings = lint_policy(file)
        except ConfigError as exc:
            print(f"{exc}", file=sys.stderr)
            invalid = True
            continue
        print(
            f"{file}: ok: {len(policy.rules)} rules, {len(policy.tools)} tool specs, "
            f"{len(policy.assets)} assets, mode {policy.mode.value}",
            file=out,
        )
        for warning in warnings:
            print(warning, file=out)
        warned = warned or bool(warnings)
    if invalid:
        return 1
    return 3 if warned and args.strict else 0


def cmd_keygen(args: argparse.Namespace, out: TextIO) -> int:
    from guard.signing import generate_keypair, key_id

    _private, public = generate_keypair(
        args.private, args.public, protected_roots=args.protect or []
    )
    print(
        f"wrote {args.private} (private, keep it outside every protected root) and {args.public}",
        file=out,
    )
    print(f"key id {key_id(public)}", file=out)
    return 0


def _private_key(path: str | None, roots: Sequence[str]) -> Any:
    if not path:
        return None
    from guard.signing import load_private_key

    return load_private_key(path, protected_roots=roots)


def _public_key(path: str | None) -> Any:
    if not path:
        return None
    from guard.signing import load_public_key

    return load_public_key(path)


def cmd_snapshot(args: argparse.Namespace, out: TextIO) -> int:
    from guard.engine import Guard
    from guard.manifest import Manifest
    from guard.policy import load_declarations, load_policy
    from guard.sinks import Sink
    from guard.verify import Verifier

    previous = Manifest.read(args.previous, _public_key(args.pubkey)) if args.previous else None
    for root in args.roots:
        if not os.path.exists(root):
            raise UsageError(f"{root}: no such file or folder")
    # A guard over the roots says which files are protected: their texts and fingerprints
    # go into the manifest, so a verification from it alone still has them.
    guard = Guard(
        load_policy(args.policy) if args.policy else load_policy(),
        root=args.roots[0],
        roots=args.roots,
        declarations=load_declarations(args.declare) if args.declare else None,
        sinks=[Sink()],
    )
    manifest = Verifier(guard).snapshot(previous)
    manifest.write(args.output, _private_key(args.key, args.roots))
    files = sum(1 for _ in manifest.files())
    signed = " and signed it" if args.key else ""
    print(
        f"recorded {files} files under {', '.join(manifest.roots)} in {args.output}{signed}",
        file=out,
    )
    return 0


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from guard.claims import Claim
    from guard.engine import Guard
    from guard.manifest import Manifest
    from guard.policy import load_declarations, load_policy
    from guard.sinks import Sink
    from guard.verify import Verifier

    pub = _public_key(args.pubkey)
    before = Manifest.read(args.before, pub)
    after = Manifest.read(args.after, pub) if args.after else None
    roots = args.root or before.roots
    try:
        claim = Claim.model_validate_json(Path(args.claim).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--claim {args.claim}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"--claim {args.claim}: not a valid claim: {exc}") from exc
    guard = Guard(
        load_policy(args.policy) if args.policy else load_policy(),
        root=roots[0],
        roots=roots,
        hosts=_host_pairs(args.host or []),
        declarations=load_declarations(args.declare) if args.declare else None,
        sinks=[Sink()],
    )
    calls = _ran_calls(args.calls) if args.calls else None
    verdict = Verifier(guard).verify(before, claim, after, calls=calls)
    if args.json:
        print(verdict.model_dump_json(indent=2), file=out)
    else:
        print(f"claim {verdict.outcome}", file=out)
        for ev in verdict.evidence:
            whose = f" [{ev.asset.value if ev.asset else '-'} of {ev.owner or 'nobody'}]"
            print(f"  {ev.check:26} {ev.path}{whose}\n  {'':26} {ev.message}", file=out)
        for text in verdict.unchecked:
            print(f"  obligation not checked (no --calls): {text}", file=out)
    return 0 if verdict.verified else 1


def _ran_calls(path: str) -> list[ToolCall]:
    """The calls that ran, one JSON object per line (``{"tool": ..., "args": {...}}``)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--calls {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    calls = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"{where}: not valid JSON: {exc}") from exc
        calls.append(parse_call(data, "-", where))
    return calls


def cmd_recover(args: argparse.Namespace, out: TextIO) -> int:
    """``peerguard recover STATE_DIR``: apply every journaled commit to its end, remove the
    rest; prints what it finished."""
    from guard.contain import recover

    if not os.path.isdir(args.state):
        raise UsageError(f"{args.state}: no such folder (a contained shell's state_dir)")
    done = recover(args.state)
    for tx in done:
        print(f"finished commit {tx}", file=out)
    print(f"{len(done)} commit(s) finished; unfinished runs discarded", file=out)
    return 0


def cmd_audit_verify(args: argparse.Namespace, out: TextIO) -> int:
    from guard.auditset import verify_logs

    head = _head(args.head) if args.head is not None else None
    if head is not None and len(args.log) > 1:
        raise UsageError("--head names one log's checkpoint: give one log with it")
    result = verify_logs(
        args.log,
        _public_key(args.pubkey),
        witness=args.witness,
        allow_unsealed=args.allow_unsealed,
        unsealed_max_age=args.unsealed_max_age,
        allow_empty=args.allow_empty,
        head=head,
    )
    if args.json:
        data = result.model_dump(mode="json") if len(result.reports) > 1 else None
        print(
            json.dumps(data, indent=2)
            if data is not None
            else result.reports[0].model_dump_json(indent=2),
            file=out,
        )
        return 0 if result.ok else 1
    for report in result.reports:
        state = "ok" if report.ok else "TAMPERED"
        print(
            f"{report.path}: {state}: {report.records} records, {report.checkpoints} "
            f"checkpoints, sealed through seq {report.sealed_through}, {report.unsealed} unsealed"
            + (
                f", witnessed through seq {report.witnessed_through}"
                if report.witnessed_through is not None
                else ""
            ),
            file=out,
        )
        if report.gaps:
            print(
                f"  {report.lost} record(s) lost in {len(report.gaps)} gap(s) the log marked "
                "itself (a full disk?); a required audit sink let no such call run",
                file=out,
            )
        for first, last in report.adopted:
            print(
                f"  adopted: seqs {first}-{last} were unsealed when a writer reopened the log; "
                "sealed since, but vouched for by no writer",
                file=out,
            )
        for gap in report.gaps:
            print(
                f"  gap at seq {gap.seq}: {gap.lost} record(s) could not be written between "
                f"{gap.first} and {gap.last} ({', '.join(gap.errors) or 'unknown error'})",
                file=out,
            )
        for problem in report.problems:
            where = f" at seq {problem.seq}" if problem.seq is not None else ""
            where += f" (line {problem.line})" if problem.line is not None else ""
            print(f"  {problem.kind}{where}: {problem.message}", file=out)
    if len(result.reports) > 1:
        state = "ok" if result.ok else "TAMPERED"
        print(
            f"{len(result.reports)} logs: {state}: {result.records} records from "
            f"{result.first_time} to {result.last_time}; {len(result.overlapping)} pair(s) of "
            "writers active at the same time (peerguard audit timeline merges them)",
            file=out,
        )
        for problem in result.problems:
            print(f"  {problem.kind}: {problem.message}", file=out)
    return 0 if result.ok else 1


def _head(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise UsageError(f"--head {text!r}: expected SEQ:HASH (a checkpoint's seq and its hash)")
    return int(seq), digest.lower()


def cmd_audit_timeline(args: argparse.Namespace, out: TextIO) -> int:
    from guard.auditset import interleave

    for path, rec in interleave(args.log):
        if args.json:
            print(json.dumps({"log": path, **rec.model_dump(mode="json")}), file=out)
            continue
        p = rec.payload
        what = p.get("action") or p.get("rule") or ""
        call = p.get("call_id") or ""
        print(f"{rec.time}  {path}  seq {rec.seq}  {rec.kind}  {what}  {call}".rstrip(), file=out)
    return 0


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from guard.engine import Guard
    from guard.policy import load_declarations, load_policy
    from guard.sinks import Sink
    from guard.types import Alert
    from guard.watch import Watch

    class Printer(Sink):
        def on_alert(self, alert: Alert) -> None:
            print(
                f"[{alert.severity.value.upper()}] {alert.rule}: {alert.message}",
                file=out,
                flush=True,
            )

    # The printer is the console: a LoggingSink too would print each alert a second time.
    sinks: list[Sink] = [Printer()]
    if args.otel:
        from guard.telemetry import OtelSink

        sinks.append(OtelSink.from_env())
    guard = Guard(
        load_policy(args.policy) if args.policy else load_policy(),
        root=args.roots[0],
        roots=args.roots,
        declarations=load_declarations(args.declare) if args.declare else None,
        sinks=sinks,
    )
    with Watch(guard, force_polling=args.polling) as watch:
        mode = "polling" if watch.stats.polling else "inotify"
        print(
            f"watching {', '.join(guard.roots)} ({len(guard.assets)} protected files, {mode}); Ctrl-C stops",
            file=out,
            flush=True,
        )
        deadline = time.monotonic() + args.seconds if args.seconds else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    from guard.bench.report import run_bench

    return run_bench(
        args.paths,
        guarded=not args.no_guard,
        control=not args.no_control,
        policy_path=args.policy,
        json_path=args.json,
        model=args.model,
        out=out,
    )


def cmd_mcp_proxy(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from guard.integrations import mcp
    except ImportError as exc:  # IntegrationUnavailable says what to install
        raise UsageError(str(exc)) from exc
    from guard.audit import AuditLog, AuditSink
    from guard.engine import Guard
    from guard.policy import load_declarations, load_policy
    from guard.sinks import LoggingSink, Sink

    command = args.upstream[1:] if args.upstream[:1] == ["--"] else args.upstream
    if not command:
        raise UsageError("give the upstream MCP server's command (or its URL) after --")
    if not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root}: not a folder")
    # stdout is the MCP channel: decisions go to stderr, one JSON object a line.
    sinks: list[Sink] = [LoggingSink()] if args.quiet else [mcp.StderrSink(), LoggingSink()]
    if args.audit:
        sinks.append(AuditSink(AuditLog(args.audit)))
    guard = Guard(
        load_policy(args.policy) if args.policy else load_policy(),
        root=args.root,
        hosts=_host_pairs(args.host or []),
        declarations=load_declarations(args.declare) if args.declare else None,
        mode=args.mode,
        sinks=sinks,
    )
    return mcp.run(guard, args.agent, mcp.upstream_of(command))


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from guard.demo import run_demo

    return run_demo(out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="peerguard",
        description="A runtime guard between AI agents and their tools.",
    )
    parser.add_argument("--version", action="version", version=f"peerguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser(
        "check",
        help="decide tool calls and print the decisions as JSON",
        description="Decide tool calls and print the decisions as JSON.",
        epilog=CHECK_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--root", required=True, help="the folder agents work in (relative paths start here)"
    )
    check.add_argument(
        "--policy", help="policy file (default: the shipped peer-preservation policy)"
    )
    check.add_argument(
        "--declare", help="YAML file of agents, assets and evaluations (a scenario's guard: block)"
    )
    check.add_argument("--agent", help="the acting agent's id (a call may name its own)")
    check.add_argument(
        "--call", help='one call as JSON: {"tool": "shell", "args": {"command": "..."}}'
    )
    check.add_argument("--calls", help="a JSON-lines file of calls; prints one decision per line")
    check.add_argument(
        "--host",
        action="append",
        metavar="NAME=DIR",
        help="a host whose filesystem is at DIR (repeatable)",
    )
    check.add_argument("--mode", choices=["enforce", "shadow"], help="override the policy's mode")
    check.set_defaults(func=cmd_check)

    policy = sub.add_parser("policy", help="work with policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    lint = policy_sub.add_parser(
        "check",
        help="validate policy files without running anything",
        description="Validate policy files, and warn about each rule that replaces a shipped\n"
        "deny or confirm rule with a weaker one (a lower action, an added or wider unless,\n"
        "a narrower when).",
        epilog=POLICY_CHECK_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lint.add_argument("files", nargs="+")
    lint.add_argument("--strict", action="store_true", help="exit 3 when a valid file has warnings")
    lint.set_defaults(func=cmd_policy_check)

    demo = sub.add_parser("demo", help="show the guard stopping a peer-preservation incident")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="replay peer-preservation scenarios against the guard")
    bench.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders of them")
    bench.add_argument("--json", metavar="FILE", help="write the report as JSON")
    bench.add_argument(
        "--no-guard", action="store_true", help="the control: run with the guard switched off"
    )
    bench.add_argument("--no-control", action="store_true", help="skip the no-guard control runs")
    bench.add_argument(
        "--policy", help="policy file (default: the shipped peer-preservation policy)"
    )
    bench.add_argument(
        "--model",
        metavar="PROVIDER:NAME",
        help="a real chat model chooses the calls (LangChain init_chat_model)",
    )
    bench.set_defaults(func=cmd_bench)

    keygen = sub.add_parser(
        "keygen", help="make an Ed25519 key pair for signing manifests and audit checkpoints"
    )
    keygen.add_argument(
        "--private",
        required=True,
        help="private key file (must not exist; keep it outside protected roots)",
    )
    keygen.add_argument("--public", required=True, help="public key file")
    keygen.add_argument(
        "--protect",
        action="append",
        metavar="ROOT",
        help="refuse a private key inside ROOT (repeatable)",
    )
    keygen.set_defaults(func=cmd_keygen)

    snap = sub.add_parser("snapshot", help="record every file under ROOTs by content hash")
    snap.add_argument("roots", nargs="+", metavar="ROOT")
    snap.add_argument("-o", "--output", required=True, help="manifest file to write")
    snap.add_argument("--key", help="private key: sign the manifest")
    snap.add_argument("--previous", help="an earlier manifest of the same roots (stat cache)")
    snap.add_argument(
        "--declare", help="YAML file of agents, assets and evaluations (what is protected)"
    )
    snap.add_argument("--policy", help="policy file")
    snap.add_argument("--pubkey", help="public key to check --previous with")
    snap.set_defaults(func=cmd_snapshot)

    ver = sub.add_parser("verify", help="check an agent's claim against what happened on disk")
    ver.add_argument("--before", required=True, help="manifest from before the agent acted")
    ver.add_argument("--after", help="manifest from after (default: snapshot the roots now)")
    ver.add_argument(
        "--root",
        action="append",
        metavar="ROOT",
        help="roots (default: the manifest's); claim paths are relative to the first",
    )
    ver.add_argument("--claim", required=True, help="the claim as JSON (a scenario's claim block)")
    ver.add_argument("--declare", help="YAML file of agents, assets and evaluations")
    ver.add_argument("--policy", help="policy file")
    ver.add_argument(
        "--host",
        action="append",
        metavar="NAME=DIR",
        help="a host whose filesystem is at DIR (repeatable)",
    )
    ver.add_argument("--pubkey", help="public key: manifests must carry valid signatures")
    ver.add_argument(
        "--calls",
        help="JSON-lines file of the calls that ran ({tool, args} per line): obligations "
        "are checked against them (without it, obligations due are listed, not checked)",
    )
    ver.add_argument("--json", action="store_true", help="print the verdict as JSON")
    ver.set_defaults(func=cmd_verify)

    audit = sub.add_parser("audit", help="work with audit logs")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    averify = audit_sub.add_parser(
        "verify", help="check an audit log's hash chain and signed checkpoints"
    )
    averify.add_argument(
        "log", nargs="+", help="log files, or folders of *.jsonl logs (one per writer)"
    )
    averify.add_argument(
        "--pubkey",
        help="public key: checkpoint signatures must verify, and every record be covered by one",
    )
    averify.add_argument(
        "--allow-unsealed",
        type=int,
        default=0,
        metavar="N",
        help="with --pubkey, accept up to N records after the last signed checkpoint (a log "
        "still being written)",
    )
    averify.add_argument(
        "--unsealed-max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --pubkey, also accept an unsealed tail whose first record is this young",
    )
    averify.add_argument("--allow-empty", action="store_true", help="accept a log with no record")
    averify.add_argument(
        "--witness",
        metavar="PATH",
        help="the writer's witness file (or a folder of <log name>.witness files): a log cut "
        "back to an earlier signed state fails",
    )
    averify.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="a checkpoint known from elsewhere (telemetry): the log must still hold it",
    )
    averify.add_argument("--json", action="store_true", help="print the report as JSON")
    averify.set_defaults(func=cmd_audit_verify)
    timeline = audit_sub.add_parser(
        "timeline", help="every record of a set of logs, merged by time"
    )
    timeline.add_argument(
        "log", nargs="+", help="log files, or folders of *.jsonl logs (one per writer)"
    )
    timeline.add_argument("--json", action="store_true", help="one JSON object per record")
    timeline.set_defaults(func=cmd_audit_timeline)

    proxy = sub.add_parser(
        "mcp-proxy",
        help="serve an MCP server's tools over stdio, deciding on every tools/call",
        description="An MCP server (stdio) in front of SERVER_COMMAND (started, stdio) or a\n"
        "streamable-HTTP URL: lists its tools unchanged and decides on every call first.\n"
        "Decisions go to stderr as JSON lines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    proxy.add_argument("--agent", required=True, help="the acting agent's id (every call is its)")
    proxy.add_argument(
        "--root",
        default=".",
        help="the folder relative paths start in: the upstream's own (default: here)",
    )
    proxy.add_argument("--policy", help="policy file (default: the shipped policy)")
    proxy.add_argument("--declare", help="YAML file of agents, assets and evaluations")
    proxy.add_argument(
        "--host", action="append", metavar="NAME=DIR", help="a host whose filesystem is at DIR"
    )
    proxy.add_argument("--mode", choices=["enforce", "shadow"], help="override the policy's mode")
    proxy.add_argument("--audit", metavar="FILE", help="also append every decision to this log")
    proxy.add_argument("--quiet", action="store_true", help="print no decisions on stderr")
    proxy.add_argument("upstream", nargs=argparse.REMAINDER, metavar="-- SERVER_COMMAND ...|URL")
    proxy.set_defaults(func=cmd_mcp_proxy)

    rec = sub.add_parser(
        "recover",
        help="finish contained-shell commits a killed process left half done",
    )
    rec.add_argument("state", metavar="STATE_DIR", help="the contained shell's state folder")
    rec.set_defaults(func=cmd_recover)

    watch = sub.add_parser(
        "watch", help="alert on unexplained changes to protected assets (foreground)"
    )
    watch.add_argument("roots", nargs="+", metavar="ROOT")
    watch.add_argument("--declare", help="YAML file of agents, assets and evaluations")
    watch.add_argument("--policy", help="policy file")
    watch.add_argument("--polling", action="store_true", help="poll instead of inotify")
    watch.add_argument(
        "--otel",
        action="store_true",
        help="also send alerts through OpenTelemetry (OTEL_* variables)",
    )
    watch.add_argument("--seconds", type=float, help="stop after this many seconds")
    watch.set_defaults(func=cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, out or sys.stdout))
    except UsageError as exc:
        print(f"peerguard: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"peerguard: error: {exc}", file=sys.stderr)
        return 2
    except IntegrityError as exc:
        print(f"peerguard: integrity error: {exc}", file=sys.stderr)
        return 1
    except IntegrationUnavailable as exc:
        print(f"peerguard: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
