"""``peerguard report``: a bench JSON report or an audit log as one self-contained HTML page.

The page is for a reviewer: what was decided, by tactic (or agent) and rule, then every call
with its decision, effects, assets and reason. It needs nothing beyond itself: the CSS is
inline and there is no script. Every string that comes from the data is escaped, since an agent
controls its tool calls' arguments and so part of what is shown.

An audit log is verified first (:func:`guard.auditcheck.verify_log`) and the result heads the
page: a log that does not verify is still shown, under a banner saying so, since a reviewer
then needs to see it all the more.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, TextIO

from pydantic import TypeAdapter, ValidationError

from guard.exceptions import ConfigError
from guard.types import Effect

_EFFECT = TypeAdapter(Effect)

# The bench's word for a call the guard did not decide (its control, or --no-guard).
UNGUARDED = "unguarded"
_DECISIONS = ("deny", "confirm", "alert", "allow", UNGUARDED)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#f6f7f9;color:#1d232b}
header{background:#1d2733;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c8d1dc}
main{padding:18px 28px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:0 0 18px;
 padding:12px 16px}
h2{font-size:17px;margin:4px 0 10px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e6e9ee;padding:5px 7px;text-align:left;vertical-align:top;
 overflow-wrap:anywhere}
th{background:#eef1f5;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;min-width:200px;font:12px/1.35 ui-monospace,monospace;
 background:#f3f5f8;padding:4px 6px;border-radius:3px;max-width:460px}
ul{margin:0;padding-left:18px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;
 color:#fff}
.deny{background:#c62828}.confirm{background:#ef6c00}.alert{background:#f9a825;color:#222}
.allow{background:#2e7d32}.unguarded{background:#78909c}
.banner{padding:12px 16px;border-radius:6px;margin:0 0 18px;font-weight:600;font-size:15px}
.ok{background:#e3f4e4;border:1px solid #2e7d32;color:#1b5e20}
.bad{background:#fde7e7;border:1px solid #c62828;color:#8e1c1c}
.warn{background:#fff6e0;border:1px solid #ef6c00;color:#7a4100}
.muted{color:#68737f}
.outcome-prevented,.outcome-clean{color:#2e7d32;font-weight:600}
.outcome-detected{color:#ef6c00;font-weight:600}
.outcome-missed,.outcome-false_positive,.outcome-broken{color:#c62828;font-weight:600}
"""


@dataclass
class CallView:
    """One call as the page shows it."""

    group: str  # the tactic (bench) or the agent (audit log)
    run: str  # the scenario run (bench) or "" (audit log)
    tool: str
    decision: str  # one of _DECISIONS (or what the data said)
    rules: list[str] = field(default_factory=list)
    effects: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    reason: str = ""
    args: Any = None
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, value) shown as is


@dataclass
class Page:
    """What goes on the page, whatever the input."""

    title: str
    source: str
    group_name: str  # "tactic" or "agent"
    banner: tuple[str, str] | None = None  # (css class, text)
    notes: list[str] = field(default_factory=list)
    summary: list[list[str]] = field(default_factory=list)  # first row is the header
    runs: list[tuple[str, list[tuple[str, str]], list[CallView]]] = field(default_factory=list)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badge(decision: str) -> str:
    cls = decision if decision in _DECISIONS else "unguarded"
    return f'<span class="badge {cls}">{_e(decision)}</span>'


def _list(items: Sequence[str]) -> str:
    if not items:
        return '<span class="muted">none</span>'
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _asset(a: Any) -> str:
    if not isinstance(a, dict):
        return str(a)
    kind = a.get("kind") or "unknown kind"
    owner = a.get("owner") or "no declared owner"
    return f"{a.get('path')}: {kind} of {owner}, {a.get('relation')}"


def _effect(e: Any) -> str:
    if isinstance(e, str):
        return e
    try:
        return _EFFECT.validate_python(e).describe()
    except (ValidationError, TypeError, ValueError):
        return json.dumps(e, sort_keys=True, default=str)


# ------------------------------------------------------------------ bench JSON


def bench_page(data: dict[str, Any], source: str) -> Page:
    """The page of a ``peerguard bench --json`` report."""
    guarded = bool(data.get("guard"))
    page = Page(
        title="peerguard bench report",
        source=source,
        group_name="tactic",
        banner=(
            ("ok", "guard on; every run also replayed without the guard as a control")
            if guarded
            else ("warn", "guard OFF: these runs are the no-guard control")
        ),
    )
    scenarios = [s for s in data.get("scenarios", []) if isinstance(s, dict)]
    by_tactic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scenarios:
        by_tactic[str(s.get("tactic"))].append(s)
    page.summary.append(["tactic", "runs", "with the guard", "without it (control)"])
    for tactic in [*sorted(by_tactic), "all"]:
        subset = scenarios if tactic == "all" else by_tactic[tactic]
        outcomes = Counter(str(s.get("outcome")) for s in subset)
        controls = Counter(str(s["control"]) for s in subset if s.get("control") is not None)
        page.summary.append(
            [
                tactic,
                str(len(subset)),
                ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())),
                ", ".join(f"{n} {_control_word(k)}" for k, n in sorted(controls.items()))
                or "not run",
            ]
        )
    for s in scenarios:
        name = str(s.get("id")) + (f" [{s['variant']}]" if s.get("variant") else "")
        facts = [
            ("outcome", str(s.get("outcome"))),
            ("without the guard", _control_word(s.get("control"))),
            ("verifier", str(s.get("verdict") or "-")),
            ("harm", "; ".join(f"{k}: {v}" for k, v in (s.get("harm") or {}).items()) or "-"),
        ]
        facts += [
            ("alert", f"{a.get('severity')} {a.get('rule')}: {a.get('message')}")
            for a in s.get("alerts") or []
            if isinstance(a, dict)
        ]
        details = s.get("decisions") or []
        calls = []
        for i, c in enumerate(s.get("calls") or []):
            d = details[i] if i < len(details) and isinstance(details[i], dict) else {}
            decision = c.get("decision") or UNGUARDED
            rules = d.get("rules") or ([c["rule"]] if c.get("rule") else [])
            ran = "ran" if c.get("executed") else "did not run"
            prompted = ", operator asked" if c.get("prompted") else ""
            calls.append(
                CallView(
                    group=str(s.get("tactic")),
                    run=name,
                    tool=str(c.get("tool")),
                    decision=str(decision),
                    rules=[str(r) for r in rules],
                    effects=[_effect(e) for e in d.get("effects") or []],
                    assets=[_asset(a) for a in d.get("assets") or []],
                    reason=str(d.get("reason") or ""),
                    args=d.get("args"),
                    facts=[("role", str(c.get("role"))), ("result", ran + prompted)],
                )
            )
        page.runs.append((name, facts, calls))
    if scenarios and not any(s.get("decisions") for s in scenarios):
        page.notes.append(
            "this report predates per-call detail: effects, assets, reasons and arguments "
            "are not in it (run peerguard bench again)"
        )
    return page


def _control_word(control: object) -> str:
    return {
        None: "not run",
        "missed": "harm done",
        "clean": "clean",
        "prevented": "no harm (control failed)",
        "false_positive": "not clean (control failed)",
    }.get(control if isinstance(control, str) or control is None else "", str(control))


# ------------------------------------------------------------------ audit log


def audit_page(path: str, public_key: Any = None) -> Page:
    """The page of an audit log, verified first."""
    from guard.auditcheck import verify_log

    report = verify_log(path, public_key)
    state = "verified" if report.ok else "DOES NOT VERIFY"
    text = (
        f"audit log {state}: {report.records} records, {report.checkpoints} checkpoints, "
        f"sealed through seq {report.sealed_through}, {report.unsealed} unsealed, "
        + ("signatures checked" if report.signatures_checked else "signatures NOT checked (no key)")
    )
    page = Page(
        title="peerguard audit log",
        source=path,
        group_name="agent",
        banner=(
            "ok" if report.ok and report.signatures_checked else "warn" if report.ok else "bad",
            text,
        ),
    )
    for problem in report.problems:
        where = f" at seq {problem.seq}" if problem.seq is not None else ""
        where += f" (line {problem.line})" if problem.line is not None else ""
        page.notes.append(f"{problem.kind}{where}: {problem.message}")
    for gap in report.gaps:
        page.notes.append(
            f"gap at seq {gap.seq}: {gap.lost} record(s) could not be written between "
            f"{gap.first} and {gap.last}"
        )
    for first, last in report.adopted:
        page.notes.append(
            f"adopted: seqs {first}-{last} were sealed by no writer that vouched for them"
        )
    records = list(_records(path, page.notes))
    approvals: dict[str, list[str]] = defaultdict(list)
    alerts: dict[str, list[str]] = defaultdict(list)
    for _, rec in records:
        p = rec.get("payload") or {}
        if rec.get("kind") == "approval" and isinstance(p, dict):
            word = "approved" if p.get("approved") else "refused"
            approvals[str(p.get("call_id"))].append(f"{word}: {p.get('reason', '')}")
        elif rec.get("kind") == "alert" and isinstance(p, dict) and p.get("call_id") is None:
            alerts["-"].append(f"{p.get('severity')} {p.get('rule')}: {p.get('message')}")
    calls: list[CallView] = []
    for lineno, rec in records:
        p = rec.get("payload")
        if rec.get("kind") != "decision" or not isinstance(p, dict):
            continue
        cid = str(p.get("call_id"))
        facts = [
            ("seq", str(rec.get("seq"))),
            ("line", str(lineno)),
            ("time", str(rec.get("time"))),
            ("call id", cid),
            ("mode", str(p.get("mode"))),
            ("args hash", str(p.get("args_hash"))),
        ]
        facts += [("answer", a) for a in approvals.get(cid, [])]
        facts += [
            ("alert", f"{a.get('severity')} {a.get('rule')}: {a.get('message')}")
            for a in p.get("alerts") or []
            if isinstance(a, dict)
        ]
        calls.append(
            CallView(
                group=str(p.get("agent")),
                run="",
                tool=str(p.get("tool")),
                decision=str(p.get("action")),
                rules=[str(r) for r in p.get("rules") or []],
                effects=[_effect(e) for e in p.get("effects") or []],
                assets=[_asset(a) for a in p.get("assets") or []],
                reason=str(p.get("reason") or ""),
                facts=facts,
            )
        )
    page.notes += [f"alert without a call: {a}" for a in alerts["-"]]
    page.summary.append(["agent", "calls", *_DECISIONS[:-1]])
    by_agent: dict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        by_agent[c.group][c.decision] += 1
        by_agent["all"][c.decision] += 1
    for agent in [*sorted(a for a in by_agent if a != "all"), "all"]:
        n = by_agent[agent]
        page.summary.append([agent, str(sum(n.values())), *(str(n[d]) for d in _DECISIONS[:-1])])
    page.runs.append(("decisions, in log order", [], calls))
    return page


def _records(path: str, notes: list[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    """Every line that parses as a JSON object, with its line number (a damaged line is noted)."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                notes.append(f"line {lineno} is not JSON: not shown")
                continue
            if isinstance(rec, dict):
                yield lineno, rec
            else:
                notes.append(f"line {lineno} is not a record: not shown")


# ------------------------------------------------------------------ HTML


def _by_group_and_rule(page: Page) -> list[str]:
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for _, _, calls in page.runs:
        for c in calls:
            for rule in c.rules or ["(no rule)"]:
                counts[(c.group, rule)][c.decision] += 1
    rows = [
        f"<tr><th>{_e(page.group_name)}</th><th>rule</th>"
        + "".join(f'<th class="n">{_e(d)}</th>' for d in _DECISIONS)
        + "</tr>"
    ]
    for (group, rule), n in sorted(counts.items()):
        rows.append(
            f'<tr class="by-rule"><td>{_e(group)}</td><td>{_e(rule)}</td>'
            + "".join(f'<td class="n">{n[d] or ""}</td>' for d in _DECISIONS)
            + "</tr>"
        )
    return rows


def _call_row(i: int, c: CallView) -> str:
    args = (
        f"<pre>{_e(json.dumps(c.args, indent=2, ensure_ascii=False, default=str))}</pre>"
        if c.args is not None
        else ""
    )
    facts = "".join(f"<div><span class=muted>{_e(k)}:</span> {_e(v)}</div>" for k, v in c.facts)
    return (
        f'<tr class="call" data-decision="{_e(c.decision)}" data-group="{_e(c.group)}">'
        f'<td class="n">{i}</td><td>{_e(c.tool)}{args}</td><td>{_badge(c.decision)}</td>'
        f"<td>{_list(c.rules)}</td><td>{_list(c.effects)}</td><td>{_list(c.assets)}</td>"
        f'<td class="reason">{_e(c.reason) or "<span class=muted>-</span>"}{facts}</td></tr>'
    )


def render(page: Page) -> str:
    """The page as one HTML document."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(page.title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(page.title)}</h1><p>{_e(page.source)} &middot; rendered "
        f"{_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))}</p></header><main>",
    ]
    if page.banner is not None:
        cls, text = page.banner
        out.append(f'<div class="banner {_e(cls)}" id="verification">{_e(text)}</div>')
    if page.notes:
        out.append('<section class="notes"><h2>Notes</h2>' + _list(page.notes) + "</section>")
    if page.summary:
        head, *rows = page.summary
        out.append("<section><h2>Summary</h2><table>")
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
        out += [
            '<tr class="summary">' + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in rows
        ]
        out.append("</table></section>")
    out.append(f"<section><h2>Decisions by {_e(page.group_name)} and rule</h2><table>")
    out += _by_group_and_rule(page)
    out.append("</table></section>")
    n = 0
    for name, facts, calls in page.runs:
        out.append(f'<section class="run"><h2>{_e(name)}</h2>')
        for k, v in facts:
            cls = f' class="outcome-{_e(v)}"' if k == "outcome" else ""
            out.append(f"<div><span class=muted>{_e(k)}:</span> <span{cls}>{_e(v)}</span></div>")
        out.append(
            "<table><tr><th>#</th><th>tool and arguments</th><th>decision</th><th>rules</th>"
            "<th>effects</th><th>assets</th><th>reason</th></tr>"
        )
        for c in calls:
            n += 1
            out.append(_call_row(n, c))
        if not calls:
            out.append('<tr><td colspan="7" class="muted">no call</td></tr>')
        out.append("</table></section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ input


def load_page(path: str, public_key: Any = None) -> Page:
    """A bench JSON report or an audit log, told apart by content.

    Raises:
        ConfigError: The file is missing, or neither.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = json.loads(p.read_bytes())
    except ValueError:
        data = None
    if isinstance(data, dict) and "scenarios" in data and "format" in data:
        return bench_page(data, path)
    first = next((ln for ln in p.read_bytes().splitlines() if ln.strip()), b"")
    try:
        rec = json.loads(first) if first else None
    except ValueError:
        rec = None
    if first and not (isinstance(rec, dict) and {"seq", "kind", "payload"} <= set(rec)):
        raise ConfigError(
            f"{path}: neither a bench report (peerguard bench --json) nor an audit log"
        )
    return audit_page(path, public_key)


def run_report(source: str, *, output: str | None, pubkey: str | None, out: TextIO) -> int:
    """``peerguard report``: write the page to ``output`` (or ``out``); 1 when a log fails to verify."""
    key = None
    if pubkey:
        from guard.signing import load_public_key

        key = load_public_key(pubkey)
    page = load_page(source, key)
    html = render(page)
    if output:
        Path(output).write_text(html, encoding="utf-8")
        print(f"wrote {output}", file=out)
    else:
        out.write(html)
    return 1 if page.banner is not None and page.banner[0] == "bad" else 0


__all__ = ["CallView", "Page", "audit_page", "bench_page", "load_page", "render", "run_report"]
