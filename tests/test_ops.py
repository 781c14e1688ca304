"""examples/ops cannot drift from the code: every metric, attribute, label value and rule id the
Collector config, Prometheus rules and Grafana dashboard use is one the sinks emit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from guard import engine, watchscan
from guard.audit import AUDIT_GAP_RULE
from guard.policy import load_policy
from guard.telemetry import SCOPE, OtelSink
from guard.telemetry_attrs import LOG_ATTRIBUTES
from guard.telemetry_export import RULE as SINK_FAILURE_RULE
from guard.telemetry_export import ExportHealth
from guard.types import Action, Alert, AlertAsset, Decision, Mode, Severity

OPS = Path(__file__).resolve().parent.parent / "examples" / "ops"
COLLECTOR = OPS / "otel-collector.yaml"
RULES = OPS / "prometheus-rules.yaml"
DASHBOARD = OPS / "grafana-dashboard.json"


def emitted() -> tuple[dict[str, str], set[str], dict[str, set[Any]]]:
    """What a sink emits for a deny, a confirm answered, the alert kinds and a failed export:
    metric name -> kind, log attribute keys, and every attribute's values (metrics and logs)."""
    reader = InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    mp = MeterProvider(metric_readers=[reader])
    sink = OtelSink(tracer_provider=TracerProvider(), meter_provider=mp, logger_provider=lp)
    health = ExportHealth()
    health.connect(lambda alert: None, mp.get_meter(SCOPE))
    health.run("logs", 2, lambda: "failed", "failed")
    asset = AlertAsset("/w", "h", "weights", "agent-2", "peer")
    alerts = [
        Alert(Severity.CRITICAL, "peer-weights-exfiltration", "m", "agent-1", "copy_file", "c1",
              False, (), (asset,)),
        Alert(Severity.CRITICAL, "must-report", "m", "agent-1", details=(("obligation", "unmet"),)),
        Alert(Severity.CRITICAL, "watch-oversight-off", "m", details=(("watch.finding", "x"),)),
        Alert(Severity.CRITICAL, AUDIT_GAP_RULE, "m", enforcement_gap=True,
              details=(("lost", 3), ("log", "a.jsonl"))),
    ]  # fmt: skip
    deny = Decision(Action.DENY, "agent-1", "copy_file", "c1", args_hash="h",
                    rules=["peer-weights-exfiltration"], alerts=alerts[:1])  # fmt: skip
    confirm = Decision(Action.CONFIRM, "agent-1", "delete_file", "c2", args_hash="h",
                       rules=["peer-eval-tamper"], mode=Mode.ENFORCE)  # fmt: skip
    for decision in (deny, confirm):
        sink.on_decision(decision)
        sink.observe_latency(decision, 0.001)
    sink.on_approval(confirm, False, "no")
    for alert in alerts[1:]:
        sink.on_alert(alert)
    metrics: dict[str, str] = {}
    values: dict[str, set[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                metrics[metric.name] = f"{type(metric.data).__name__}:{metric.unit or ''}"
                for point in metric.data.data_points:
                    for key, value in (point.attributes or {}).items():
                        values.setdefault(key, set()).add(value)
    keys: set[str] = set()
    for record in logs.get_finished_logs():
        for key, value in (record.log_record.attributes or {}).items():
            keys.add(key)
            if isinstance(value, str | bool):
                values.setdefault(key, set()).add(value)
    return metrics, keys, values


def prometheus_names(metrics: dict[str, str]) -> set[str]:
    """The series names the Collector's Prometheus exporter makes of the OTel metrics."""
    names = set()
    for name, kind in metrics.items():
        base = name.replace(".", "_")
        if kind.startswith("Sum"):
            names.add(base + "_total")
        elif kind.startswith("Histogram"):
            unit = "_seconds" if kind.endswith(":s") else ""
            names |= {f"{base}{unit}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(base)
    return names


def rule_ids() -> set[str]:
    return (
        set(watchscan.FINDINGS.values())
        | {r.id for r in load_policy().rules}
        | {engine.INTERNAL_ERROR_RULE, engine.UNIDENTIFIED_AGENT_RULE, engine.REFUSED_RULE,
           engine.WITHHELD_RULE, SINK_FAILURE_RULE, AUDIT_GAP_RULE}
    )  # fmt: skip


def expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return exprs


def collector() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(COLLECTOR.read_text())
    return config


def test_collector_config_is_wired_and_names_emitted_attributes() -> None:
    """Every pipeline component is defined; the connectors count and route on attributes the
    alert logs carry; the metrics pipeline exports to Prometheus."""
    config = collector()
    metrics, keys, _values = emitted()
    known = {
        kind: set(config.get(kind, {}))
        for kind in ("receivers", "processors", "exporters", "connectors")
    }
    fed, fed_by = set(), set()
    for name, pipeline in config["service"]["pipelines"].items():
        for r in pipeline["receivers"]:
            assert r in known["receivers"] | known["connectors"], (name, r)
            if r in known["connectors"]:
                fed_by.add(r)
        for p in pipeline.get("processors", []):
            assert p in known["processors"], (name, p)
        for e in pipeline["exporters"]:
            assert e in known["exporters"] | known["connectors"], (name, e)
            if e in known["connectors"]:
                fed.add(e)
    assert fed == fed_by == known["connectors"]  # each connector both fed and read
    assert "prometheus" in config["service"]["pipelines"]["metrics"]["exporters"]
    text = COLLECTOR.read_text()
    used = set(re.findall(r'attributes\["([^"]+)"\]', text))
    counted = config["connectors"]["count"]["logs"]
    for spec in counted.values():
        used |= {a["key"] for a in spec["attributes"]}
    assert used, "the config names no attribute"
    assert used <= keys, used - keys
    assert used <= LOG_ATTRIBUTES | {"peerguard.obligation"}
    severities = set(re.findall(r'attributes\["peerguard.severity"\] == "([^"]+)"', text))
    assert severities <= {s.value for s in Severity} and severities
    # The counted alerts are series Prometheus sees too.
    assert set(counted) & set(metrics) == set()


def test_rules_and_dashboard_use_only_emitted_metrics_labels_and_rule_ids() -> None:
    """Each peerguard_* name in a Prometheus rule or dashboard query is a series the Collector
    makes of a metric the sink emits, or a label of an attribute it emits; each label value and
    rule id matched is one the code emits."""
    metrics, _keys, values = emitted()
    counted = dict.fromkeys(
        collector()["connectors"]["count"]["logs"], "Sum:"
    )  # the count connector's counters
    series = prometheus_names({**metrics, **counted})
    count_keys = {
        a["key"] for spec in collector()["connectors"]["count"]["logs"].values()
        for a in spec["attributes"]
    }  # fmt: skip
    labels = {k.replace(".", "_") for k in set(values) | count_keys}
    label_values = {k.replace(".", "_"): {str(v).lower() for v in vs} for k, vs in values.items()}
    label_values["peerguard_decision"] = {a.value for a in Action}
    label_values["peerguard_mode"] = {m.value for m in Mode}
    ids = rule_ids()
    used_series = set()
    for expr in expressions():
        tokens = set(re.findall(r"\bpeerguard_[a-z_]+\b", expr))
        assert tokens <= series | labels, (expr, tokens - series - labels)
        assert tokens & series, expr
        used_series |= tokens & series
        for label, op, value in re.findall(r'(peerguard_[a-z_]+)\s*(=~|=)\s*"([^"]*)"', expr):
            if label == "peerguard_rule":
                if op == "=":
                    assert value in ids, value
                    continue
                assert any(re.fullmatch(value, i) for i in ids), value
                for group in re.findall(r"\(([^()]*)\)", value):
                    prefix = value.split("(")[0]
                    for alt in group.split("|"):
                        assert prefix + alt in ids, prefix + alt
            else:
                assert value in label_values[label], (label, value)
    wanted = {
        "peerguard_decisions_total",
        "peerguard_decision_duration_seconds_bucket",
        "peerguard_confirmations_pending",
        "peerguard_alerts_total",
    }
    assert wanted <= used_series


def test_prometheus_rules_cover_what_ops_must_hear() -> None:
    """Denies, enforcement gaps, unmet obligations and pending confirmations each have a rule."""
    rules = yaml.safe_load(RULES.read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    for needle in (
        'peerguard_decision="deny"',
        'peerguard_enforcement_gap="true"',
        'peerguard_obligation="unmet"',
        "peerguard_confirmations_pending",
    ):
        assert needle in exprs


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    """``promtool check rules`` parses every rule and its PromQL."""
    done = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("otelcol-contrib") is None, reason="no Collector binary here")
def test_collector_validates_its_config() -> None:
    """``otelcol-contrib validate`` accepts the config (where a Collector is installed)."""
    done = subprocess.run(
        ["otelcol-contrib", "validate", f"--config={COLLECTOR}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
