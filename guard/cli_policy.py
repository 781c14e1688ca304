"""``peerguard policy check`` (lint policy files) and ``peerguard policy test`` (run a file of
calls with the decisions they must get against a policy, like ``opa test``).

A test file is YAML::

    policy: my-policy.yaml          # optional, relative to this file; --policy overrides;
                                    # default: the shipped peer-preservation policy
    declarations: {agents: [...], assets: [...], evaluations: [...]}   # or a file name
    files:                          # optional: written into a fresh temporary root
      hosts/decom-01/data/agent_2_weights.safetensors: "..."
    root: sandbox/                  # instead of files: an existing folder (relative to this file)
    hosts: {backup-02: hosts/backup-02}   # optional: host name -> folder under the root
    agent: agent-1                  # the default acting agent
    cases:
      - name: copying a peer's weights is denied
        call: {tool: copy_file, args: {src: ..., dst: ...}}
        expect: deny                # allow | alert | confirm | deny
        rules: [peer-weights-exfiltration]   # optional: each must be among the matches
        agent: agent-1              # optional: this case's acting agent

Every case runs on a fresh guard (no history from the cases before it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field

from guard.cli_common import Exit, UsageError
from guard.exceptions import ConfigError, PolicyError
from guard.policy import Declarations

POLICY_CHECK_STATUS = """\
exit status:
  0  every file is a valid policy (warnings alone do not fail without --strict)
  1  some file is not a valid policy (the error names file, line and key)
  2  bad command-line input
  3  with --strict: every file is valid, but some rule weakens the shipped rule it replaces
"""

POLICY_TEST_STATUS = """\
exit status:
  0  every case got the decision (and matched the rules) it expects
  1  some case did not: each failure shows expected vs got and the rules that matched
  2  a test file, policy or declarations file is not valid (FILE:LINE: what was expected)
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestCall(_Strict):
    """The call a case makes."""

    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    host: str | None = None
    cwd: str | None = None


class TestCase(_Strict):
    """One call and the decision it must get."""

    name: str = Field(min_length=1)
    call: TestCall
    expect: Literal["allow", "alert", "confirm", "deny"]
    rules: list[str] = Field(default_factory=list)
    agent: str | None = None


class PolicyTestFile(_Strict):
    """A ``policy test`` file: the setup, then the cases."""

    policy: str | None = None
    declarations: Declarations | str | None = None
    root: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    hosts: dict[str, str] = Field(default_factory=dict)
    agent: str | None = None
    cases: list[TestCase] = Field(min_length=1)


def cmd_policy_check(args: argparse.Namespace, out: TextIO) -> int:
    from guard.policy import lint_policy, load_policy

    invalid = warned = False
    for file in args.files:
        try:
            policy = load_policy(file)
            warnings = lint_policy(file)
        except ConfigError as exc:
            if args.json:
                print(json.dumps({"file": file, "ok": False, "error": str(exc)}), file=out)
            else:
                print(f"{exc}", file=sys.stderr)
            invalid = True
            continue
        if args.json:
            print(
                json.dumps(
                    {
                        "file": file,
                        "ok": True,
                        "rules": len(policy.rules),
                        "tools": len(policy.tools),
                        "assets": len(policy.assets),
                        "mode": policy.mode.value,
                        "warnings": [
                            {
                                "line": w.line,
                                "rule": w.rule,
                                "changes": list(w.changes),
                                "setting": w.setting,
                                "message": str(w),
                            }
                            for w in warnings
                        ],
                    }
                ),
                file=out,
            )
        else:
            print(
                f"{file}: ok: {len(policy.rules)} rules, {len(policy.tools)} tool specs, "
                f"{len(policy.assets)} assets, mode {policy.mode.value}",
                file=out,
            )
            for warning in warnings:
                print(warning, file=out)
        warned = warned or bool(warnings)
    if invalid:
        return Exit.FINDINGS
    return Exit.WARNINGS if warned and args.strict else Exit.OK


def _case_lines(text: str) -> list[int]:
    """The 1-based line each case starts on (for FILE:LINE in failures)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def _load_test_file(path: str) -> tuple[PolicyTestFile, list[int]]:
    from guard.policy import parse_model

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    spec = parse_model(PolicyTestFile, text, path, error=_TestFileError)
    if spec.root is not None and spec.files:
        raise _TestFileError(
            "expected 'files' (written into a fresh temporary root) or 'root' (an existing "
            "folder), not both",
            file=path,
            key="files",
        )
    return spec, _case_lines(text)


class _TestFileError(PolicyError):
    """A ``policy test`` file is not valid."""

    unnamed = "<policy test>"


def _setup(spec: PolicyTestFile, path: str, policy_flag: str | None, tmp: str) -> dict[str, Any]:
    """The policy, declarations, root and hosts every case of a file runs with."""
    from guard.policy import load_declarations, load_policy

    here = Path(path).parent
    if policy_flag:
        policy = load_policy(policy_flag)
    elif spec.policy:
        policy = load_policy(here / spec.policy)
    else:
        policy = load_policy()
    declarations = spec.declarations
    if isinstance(declarations, str):
        declarations = load_declarations(here / declarations)
    if spec.root is not None:
        root = str(here / spec.root)
        if not os.path.isdir(root):
            raise _TestFileError(f"root {root}: expected an existing folder", file=path, key="root")
    else:
        root = tmp
        for rel, text in spec.files.items():
            target = Path(root) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    hosts = {}
    for name, rel in spec.hosts.items():
        folder = Path(root) / rel
        if spec.root is None:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise _TestFileError(f"host {name}: {folder} is not a folder", file=path, key="hosts")
        hosts[name] = str(folder)
    return {"policy": policy, "declarations": declarations, "root": root, "hosts": hosts}


def run_policy_tests(path: str, policy_flag: str | None) -> list[dict[str, Any]]:
    """Every case of one test file, run: one result per case (``ok``, expected, got, rules)."""
    from guard.engine import Guard
    from guard.sinks import Sink
    from guard.types import ToolCall

    spec, lines = _load_test_file(path)
    results = []
    with tempfile.TemporaryDirectory(prefix="peerguard-policy-test-") as tmp:
        setup = _setup(spec, path, policy_flag, tmp)
        for index, case in enumerate(spec.cases):
            line = lines[index] if index < len(lines) else None
            where = f"{path}:{line}" if line else path
            agent = case.agent or spec.agent
            if not agent:
                raise UsageError(f"{where}: case {case.name!r}: expected an 'agent' (or a default)")
            guard = Guard(sinks=[Sink()], **setup)
            extra = {k: v for k, v in (("host", case.call.host), ("cwd", case.call.cwd)) if v}
            call = ToolCall(agent=agent, tool=case.call.tool, args=case.call.args, **extra)
            decision = guard.check(call)
            got = decision.action.value
            missing = [r for r in case.rules if r not in decision.rules]
            results.append({
                "file": path, "line": line, "name": case.name, "ok": got == case.expect and not missing,
                "expect": case.expect, "got": got, "rules": list(decision.rules),
                "missing_rules": missing, "reason": decision.reason,
            })  # fmt: skip
    return results


def cmd_policy_test(args: argparse.Namespace, out: TextIO) -> int:
    results = []
    for file in args.files:
        results += run_policy_tests(file, args.policy)
    failed = [r for r in results if not r["ok"]]
    for r in results:
        if args.json:
            print(json.dumps(r), file=out)
            continue
        where = f"{r['file']}:{r['line']}" if r["line"] else r["file"]
        if r["ok"]:
            if args.verbose:
                print(f"{where}: ok: {r['name']} ({r['got']})", file=out)
            continue
        print(f"{where}: FAIL: {r['name']}", file=out)
        print(f"  expected {r['expect']}, got {r['got']}", file=out)
        print(f"  rules matched: {', '.join(r['rules']) or 'none'}", file=out)
        if r["missing_rules"]:
            print(f"  rules expected but not matched: {', '.join(r['missing_rules'])}", file=out)
        print(f"  reason: {r['reason']}", file=out)
    if not args.json:
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed", file=out)
    return Exit.FINDINGS if failed else Exit.OK


def add_parsers(sub: Any) -> None:
    """``policy check`` and ``policy test`` on the command parser's subparsers."""
    policy = sub.add_parser("policy", help="work with policy files (check, test)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    lint = policy_sub.add_parser(
        "check",
        help="validate policy files without running anything",
        description="Validate policy files, and warn about each rule that replaces a shipped\n"
        "deny or confirm rule with a weaker one (a lower action, an added or wider unless,\n"
        "a narrower when).",
        epilog=POLICY_CHECK_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lint.add_argument("files", nargs="+", metavar="FILE", help="policy files to validate")
    lint.add_argument("--strict", action="store_true", help="exit 3 when a valid file has warnings")
    lint.add_argument(
        "--json", action="store_true", help="one JSON object per file (ok, error, warnings)"
    )
    lint.set_defaults(func=cmd_policy_check)

    test = policy_sub.add_parser(
        "test",
        help="run files of calls with the decisions they must get against a policy",
        description=(__doc__ or "").split("\n\n", 1)[1],
        epilog=POLICY_TEST_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument(
        "files", nargs="+", metavar="FILE", help="test files (YAML: setup and cases, see above)"
    )
    test.add_argument(
        "--policy", help="the policy to test (default: the file's 'policy', else the shipped one)"
    )
    test.add_argument("--json", action="store_true", help="one JSON object per case")
    test.add_argument("-v", "--verbose", action="store_true", help="also list the cases that pass")
    test.set_defaults(func=cmd_policy_test)
