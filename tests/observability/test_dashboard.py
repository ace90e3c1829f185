"""examples/grafana-dashboard.json: valid, and every metric it queries is one
csms_kit.metrics exports (and every metric exported is on it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from csms_kit.metrics import PrometheusMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana-dashboard.json"
METRIC = re.compile(r"\bcsms_kit_[a-z0-9_]+")
#: The sample names each metric type exposes, after the family's name.
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}


def exported() -> dict[str, str]:
    """Every sample name PrometheusMetrics exports, with the family it belongs to."""
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    names = {}
    for family in registry.collect():
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = family.name
    return names


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["definition"])
    return exprs


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    """Valid JSON; panels with unique ids, a grid position, a datasource and queries."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"]
    found = panels(dashboard)
    assert len(found) >= 10
    assert len({p["id"] for p in found}) == len(found)
    for panel in found:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        assert all(t["expr"] and t["refId"] for t in panel["targets"])


def test_every_metric_on_the_dashboard_is_exported() -> None:
    """Each csms_kit_* name in a query is a sample name of the exported metrics."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names = exported()
    used = {name for expr in queries(dashboard) for name in METRIC.findall(expr)}
    assert used, "no csms_kit metric on the dashboard"
    unknown = sorted(used - set(names))
    assert not unknown, f"not exported by csms_kit.metrics: {unknown}"


def test_every_exported_metric_is_on_the_dashboard() -> None:
    """Each metric family csms_kit.metrics exports is shown by some panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names = exported()
    used = {names[name] for expr in queries(dashboard) for name in METRIC.findall(expr)}
    assert sorted(set(names.values()) - used) == []
