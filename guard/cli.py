"""The ``peerguard`` command line.

``peerguard check`` decides calls and prints JSON; ``peerguard policy check`` lints a policy and
``policy test`` runs a file of calls with the decisions they must get; ``peerguard demo`` shows
the default policy stopping a peer-preservation incident; ``peerguard mcp-proxy`` guards the tool
calls of another MCP server (:mod:`guard.integrations.mcp`). The command families live in
``guard.cli_policy``, ``guard.cli_verify`` and ``guard.cli_audit``; this module is the entry point.

Exit status, for every command (:class:`guard.cli_common.Exit`): 0 success (every call allowed,
the claim verified, the log intact); 1 findings (a deny, a contradicted claim, a tampered log, an
invalid policy, a failing policy test); 2 bad input (one line: ``peerguard: error: FILE:LINE:
expected ...``); 3 ``--strict`` warnings; 4 a signature or integrity check failed; 70 an internal
error (one line; ``PEERGUARD_DEBUG=1`` or ``--debug`` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from guard import cli_audit, cli_policy, cli_verify
from guard._version import __version__
from guard.cli_common import (
    Exit,
    UsageError,
    existing_dir,
    host_pairs,
    parse_call,
    policy_and_declarations,
)
from guard.exceptions import GuardError, IntegrityError

__all__ = ["Exit", "UsageError", "build_parser", "main", "parse_call"]


def _make_guard(args: argparse.Namespace) -> Any:
    from guard.engine import Guard
    from guard.sinks import Sink

    if not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root}: not a folder")
    policy, declarations = policy_and_declarations(args)
    return Guard(
        policy,
        root=args.root,
        hosts=host_pairs(args.host or []),
        declarations=declarations,
        mode=args.mode,
        # The CLI prints each decision with its alerts; nothing else needs to hear of them.
        sinks=[Sink()],
    )


_FAILING = {"deny": {"deny"}, "confirm": {"deny", "confirm"}, "never": set()}


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    if bool(args.call) == bool(args.calls):
        raise UsageError("give exactly one of --call JSON and --calls FILE")
    guard = _make_guard(args)
    failing = _FAILING[args.fail_on]
    if args.call:
        try:
            data = json.loads(args.call)
        except ValueError as exc:
            raise UsageError(f"--call: not valid JSON: {exc}") from exc
        call = parse_call(data, args.agent, "--call")
        summary = guard.check(call).summary()
        print(json.dumps(summary, indent=2), file=out)
        return Exit.FINDINGS if summary["decision"] in failing else Exit.OK
    try:
        # Bytes, split on newlines only: a line that is not UTF-8 is that line's error, not
        # the file's, and U+2028, a line break to str.splitlines, is allowed raw in JSON.
        lines = Path(args.calls).read_bytes().split(b"\n")
    except OSError as exc:
        raise UsageError(f"--calls {args.calls}: {exc.strerror}") from exc
    bad = found = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{args.calls}:{number}"
        try:
            # One bad line must not cost the decisions on the lines after it.
            summary = _decide_line(guard, raw, args.agent, where)
        except UsageError as exc:
            bad += 1
            print(json.dumps({"line": number, "error": str(exc)}), file=out)
            print(f"peerguard: error: {exc}", file=sys.stderr)
            continue
        found += summary["decision"] in failing
        print(json.dumps({"line": number, **summary}), file=out)
    if bad:
        return Exit.USAGE
    return Exit.FINDINGS if found else Exit.OK


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
  0  every call was decided, and none was denied (nor, with --fail-on confirm, confirmed);
     with --fail-on never, whatever the decisions (read them from the JSON)
  1  some call was denied (with --fail-on confirm: denied or confirmed): a CI gate fails
  2  bad input: a bad flag, policy or declarations file, or a --calls line that is not a
     call (not UTF-8, not JSON, nested too deeply, not an object); such a line prints
     {"line": N, "error": "FILE:N: ..."} in its place, and every other line is still decided
"""


def json_alert_sink(out: TextIO) -> Any:
    """A sink that prints each alert as one JSON object a line (``watch --json``)."""
    from guard.sinks import Sink
    from guard.types import Alert

    class JsonAlerts(Sink):
        def on_alert(self, alert: Alert) -> None:
            print(json.dumps(alert.to_dict(exclude_none=True)), file=out, flush=True)

    return JsonAlerts()


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
    if args.json:  # one JSON object per alert on stdout, in place of the Printer's lines
        sinks = [json_alert_sink(out) if isinstance(s, Printer) else s for s in sinks]
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
            file=sys.stderr if args.json else out,
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


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from guard.report import run_report

    return run_report(args.input, output=args.output, pubkey=args.pubkey, out=out)


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
        hosts=host_pairs(args.host or []),
        declarations=load_declarations(args.declare) if args.declare else None,
        mode=args.mode,
        sinks=sinks,
    )
    return mcp.run(guard, args.agent, mcp.upstream_of(command))


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from guard.demo import run_demo

    return run_demo(out)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit 2), like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(Exit.USAGE, f"peerguard: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog="peerguard",
        description="A runtime guard between AI agents and their tools.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"peerguard {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an internal error (also: PEERGUARD_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    check.add_argument(
        "--fail-on",
        choices=sorted(_FAILING),
        default="deny",
        help="exit 1 when a decision is deny (the default), confirm or deny (confirm), or never",
    )
    check.set_defaults(func=cmd_check)

    cli_policy.add_parsers(sub)

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

    rep = sub.add_parser(
        "report", help="turn a bench JSON report or an audit log into one HTML page"
    )
    rep.add_argument("input", help="peerguard bench --json FILE, or an audit log (verified first)")
    rep.add_argument("-o", "--output", help="the HTML file to write (default: standard output)")
    rep.add_argument("--pubkey", help="an audit log's checkpoint signer's public key")
    rep.set_defaults(func=cmd_report)

    cli_verify.add_parsers(sub)
    cli_audit.add_parsers(sub)

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
    proxy.add_argument(
        "upstream",
        nargs=argparse.REMAINDER,
        metavar="-- SERVER_COMMAND ...|URL",
        help="the upstream MCP server: a command to start (after --) or a streamable-HTTP URL",
    )
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
    watch.add_argument(
        "roots", nargs="+", metavar="ROOT", type=existing_dir, help="folders to watch"
    )
    watch.add_argument("--declare", help="YAML file of agents, assets and evaluations")
    watch.add_argument("--policy", help="policy file")
    watch.add_argument("--polling", action="store_true", help="poll instead of inotify")
    watch.add_argument(
        "--otel",
        action="store_true",
        help="also send alerts through OpenTelemetry (OTEL_* variables)",
    )
    watch.add_argument("--seconds", type=float, help="stop after this many seconds")
    watch.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per alert on stdout (the banner goes to stderr)",
    )
    watch.set_defaults(func=cmd_watch)
    return parser


EXIT_STATUS = """\
exit status (every command):
  0   success: every call allowed, the claim verified, the log intact, the tests passed
  1   findings: a deny (check), a contradicted claim (verify), a tampered log (audit),
      an invalid policy (policy check), a failing case (policy test)
  2   bad input: a flag, or a file that is not what was expected (one line names it)
  3   policy check --strict: valid, with warnings
  4   a signature or integrity check failed (a manifest altered or signed by another key)
  70  internal error: a bug in peerguard (PEERGUARD_DEBUG=1 or --debug: the traceback)
  130 interrupted (Ctrl-C)
"""


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (pydantic and YAML errors span several)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _os_error(exc: OSError) -> str:
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(os.fsdecode(n) for n in names)
    what = exc.strerror or _one_line(exc)
    return f"{where}: {what}" if where else what


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (see ``EXIT_STATUS``).

    No traceback reaches the user: a known failure is one line naming the file and what was
    expected; anything else is an internal error, one line (exit 70), with the traceback only
    under ``--debug`` or ``PEERGUARD_DEBUG=1``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("PEERGUARD_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args, out or sys.stdout))
    except IntegrityError as exc:
        print(f"peerguard: integrity error: {_one_line(exc)}", file=sys.stderr)
        return Exit.INTEGRITY
    except GuardError as exc:  # UsageError, ConfigError, IntegrationUnavailable, ...
        print(f"peerguard: error: {_one_line(exc)}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        print("peerguard: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, as a killed writer would.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 128 + 13  # SIGPIPE
    except OSError as exc:
        print(f"peerguard: error: {_os_error(exc)}", file=sys.stderr)
        return Exit.USAGE
    except Exception as exc:
        if debug:
            raise
        print(
            f"peerguard: internal error: {type(exc).__name__}: {_one_line(exc)}; run with "
            "PEERGUARD_DEBUG=1 (or --debug) for the traceback",
            file=sys.stderr,
        )
        return Exit.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
