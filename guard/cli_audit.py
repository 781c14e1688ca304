"""``peerguard audit``: verify audit logs, merge them into one timeline, and show (filtered)
the records of a log that verifies."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from guard.cli_common import Exit, UsageError
from guard.cli_verify import public_key

AUDIT_SHOW_STATUS = """\
exit status:
  0  the log verified and its records (those the filters keep) were printed
  1  the log did not verify: nothing is shown (with --force it is, after a warning)
  2  bad input: a filter, a log that cannot be read
"""


def cmd_audit_verify(args: argparse.Namespace, out: TextIO) -> int:
    from guard.auditset import verify_logs

    head = _head(args.head) if args.head is not None else None
    if head is not None and len(args.log) > 1:
        raise UsageError("--head names one log's checkpoint: give one log with it")
    result = verify_logs(
        args.log,
        public_key(args.pubkey),
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


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (``2026-11-23``, ``2026-11-23T19:15:00+00:00``; UTC when
    no zone is given) or an age (``30m``, ``2h``, ``7d``)."""
    match = _RELATIVE.match(text.strip())
    if match:
        delta = timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        then = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected an ISO 8601 time (2026-11-23T19:15:00Z) or an age "
            "(30m, 2h, 7d)"
        ) from None
    return then if then.tzinfo is not None else then.replace(tzinfo=UTC)


def _record_time(time: str) -> datetime | None:
    try:
        then = datetime.fromisoformat(time)
    except ValueError:
        return None
    return then if then.tzinfo is not None else then.replace(tzinfo=UTC)


def _facts(kind: str, p: dict[str, Any]) -> dict[str, Any]:
    """What a record says, whatever its kind: agent, tool, decision, rules."""
    inner = p.get("decision")
    d: dict[str, Any] = inner if isinstance(inner, dict) else p
    listed = d.get("rules")
    rules: list[Any] = list(listed) if isinstance(listed, list) else []
    if isinstance(p.get("rule"), str):
        rules.append(p["rule"])
    action = d.get("action") if kind in ("decision", "approval") else None
    return {
        "agent": d.get("agent") or p.get("agent"),
        "tool": d.get("tool") or p.get("tool"),
        "decision": action,
        "rules": [r for r in rules if isinstance(r, str)],
        "call_id": p.get("call_id") or d.get("call_id"),
    }


def _keep(kind: str, facts: dict[str, Any], args: argparse.Namespace, after: datetime | None,
          time: str) -> bool:  # fmt: skip
    if args.kind and kind not in args.kind:
        return False
    if args.agent and facts["agent"] not in args.agent:
        return False
    if args.rule and not set(args.rule) & set(facts["rules"]):
        return False
    if args.decision and facts["decision"] not in args.decision:
        return False
    if after is not None:
        when = _record_time(time)
        if when is None or when < after:
            return False
    return True


def _line(path: str, rec: Any, facts: dict[str, Any], many: bool) -> str:
    p = rec.payload
    parts = [rec.time, *([path] if many else []), f"seq {rec.seq}", rec.kind]
    if rec.kind == "decision":
        parts += [str(facts["decision"]), str(facts["agent"]), str(facts["tool"]),
                  ",".join(facts["rules"]) or "-"]  # fmt: skip
    elif rec.kind == "approval":
        parts += ["approved" if p.get("approved") else "refused", str(facts["agent"]),
                  str(facts["tool"]), ",".join(facts["rules"]) or "-"]  # fmt: skip
    elif rec.kind == "alert":
        parts += [str(p.get("severity", "")).upper(), str(facts["agent"]),
                  f"{p.get('rule', '')}: {p.get('message', '')}"]  # fmt: skip
    if facts["call_id"]:
        parts.append(f"call {facts['call_id']}")
    return "  ".join(parts)


def cmd_audit_show(args: argparse.Namespace, out: TextIO) -> int:
    from guard.auditset import interleave, verify_logs

    after = since(args.since) if args.since else None
    result = verify_logs(
        args.log,
        public_key(args.pubkey),
        allow_unsealed=args.allow_unsealed,
        allow_empty=True,
    )
    if not result.ok:
        bad = [r for r in result.reports if not r.ok]
        first = bad[0].problems[0] if bad and bad[0].problems else None
        what = (
            f"{bad[0].path}: TAMPERED: {first.kind}: {first.message}"
            if bad and first is not None
            else f"{', '.join(args.log)}: the set of logs does not verify"
        )
        if not args.force:
            print(
                f"peerguard: error: {what}; not showing a log that does not verify "
                "(peerguard audit verify says why; --force shows it anyway)",
                file=sys.stderr,
            )
            return Exit.FINDINGS
        print(f"peerguard: warning: {what}; showing it anyway (--force)", file=sys.stderr)
    many = len(result.reports) > 1
    shown = 0
    for path, rec in interleave(args.log):
        facts = _facts(rec.kind, rec.payload)
        if not _keep(rec.kind, facts, args, after, rec.time):
            continue
        shown += 1
        if args.json:
            print(json.dumps({"log": path, **rec.model_dump(mode="json")}), file=out)
        else:
            print(_line(path, rec, facts, many), file=out)
        if args.limit and shown >= args.limit:
            break
    return Exit.OK if result.ok else Exit.FINDINGS


def add_parsers(sub: Any) -> None:
    """``audit verify``, ``audit timeline`` and ``audit show`` on the command subparsers."""
    audit = sub.add_parser("audit", help="work with audit logs (verify, timeline, show)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
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

    show = audit_sub.add_parser(
        "show",
        help="verify an audit log, then print its records, filtered",
        description="Verify the logs (as audit verify does), then print one line per record "
        "the filters keep, merged by time. Filters of one kind are or-ed (--agent a --agent "
        "b), filters of different kinds and-ed. A log that does not verify is not shown "
        "unless --force.",
        epilog=AUDIT_SHOW_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument(
        "log", nargs="+", help="log files, or folders of *.jsonl logs (one per writer)"
    )
    show.add_argument("--agent", action="append", metavar="A", help="records of agent A")
    show.add_argument(
        "--rule", action="append", metavar="R", help="records where rule R matched or alerted"
    )
    show.add_argument(
        "--decision",
        action="append",
        choices=["allow", "alert", "confirm", "deny"],
        help="decisions (and approvals of decisions) with this action",
    )
    show.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="records of this kind (decision, alert, approval, checkpoint, gap, ...)",
    )
    show.add_argument(
        "--since", metavar="T", help="records at or after T: ISO 8601 time, or an age (2h, 7d)"
    )
    show.add_argument("--limit", type=int, metavar="N", help="stop after N records")
    show.add_argument("--pubkey", help="public key: checkpoint signatures must verify")
    show.add_argument(
        "--allow-unsealed",
        type=int,
        default=0,
        metavar="N",
        help="with --pubkey, accept up to N records after the last signed checkpoint",
    )
    show.add_argument(
        "--force", action="store_true", help="show a log that does not verify (after a warning)"
    )
    show.add_argument("--json", action="store_true", help="one JSON object per record")
    show.set_defaults(func=cmd_audit_show)
