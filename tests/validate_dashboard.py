#!/usr/bin/env python3
"""Checks a Grafana dashboard JSON for carbon-ops: it parses, has the fields Grafana needs,
panel ids are unique and grid positions sane, every query names only metrics the agent
exports (the names listed in docs/metrics.md), and, when promtool is given, every PromQL
expression parses (as recording rules, with Grafana's variables substituted).

usage: validate_dashboard.py DASHBOARD.json METRICS.md [PROMTOOL]
Prints one line per failure; exits 1 on any.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile

REQUIRED = ("uid", "title", "schemaVersion", "panels", "templating", "time")
PANEL_REQUIRED = ("id", "type", "title", "gridPos", "datasource", "targets")
VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$instance": ".*"}


def expressions(dash: dict) -> list[tuple[str, str]]:
    out = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            out.append((p.get("title", "?"), t.get("expr", "")))
    return out


def check(dash: dict, documented: set[str]) -> list[str]:
    errors = [f"missing top-level field `{k}`" for k in REQUIRED if k not in dash]
    ids = set()
    for p in dash.get("panels", []):
        title = p.get("title", "?")
        errors += [f"panel `{title}`: missing `{k}`" for k in PANEL_REQUIRED if k not in p]
        if p.get("id") in ids:
            errors.append(f"panel `{title}`: duplicate id {p.get('id')}")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g.get("x", 0) + g.get("w", 0) > 24:
            errors.append(f"panel `{title}`: bad gridPos {g}")
        if not p.get("targets"):
            errors.append(f"panel `{title}`: no queries")
    names = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    for title, expr in expressions(dash):
        if not expr.strip():
            errors.append(f"panel `{title}`: empty expression")
        for var in re.findall(r"\$(\w+)", expr):
            if var not in names and not var.startswith("__"):
                errors.append(f"panel `{title}`: undefined variable ${var}")
        for metric in re.findall(r"\bcarbon_ops_\w+", expr):
            if metric not in documented:
                errors.append(f"panel `{title}`: metric `{metric}` is not in docs/metrics.md")
    return errors


def promql_errors(dash: dict, promtool: str) -> list[str]:
    rules = []
    for i, (_, expr) in enumerate(expressions(dash)):
        for k, v in VARIABLES.items():
            expr = expr.replace(k, v)
        rules.append({"record": f"dashboard:expr{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        # JSON is YAML: promtool reads it.
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    if r.returncode != 0:
        return [f"promtool rejects a dashboard expression: {r.stdout}{r.stderr}".strip()]
    return []


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"dashboard does not parse: {e}")
        return 1
    with open(sys.argv[2], encoding="utf-8") as f:
        documented = set(re.findall(r"`(carbon_ops_\w+)`", f.read()))
    errors = check(dash, documented)
    if len(sys.argv) > 3:
        errors += promql_errors(dash, sys.argv[3])
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
