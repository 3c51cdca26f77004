#!/usr/bin/env bash
# Validates deploy/: Kubernetes manifests (the optional ones under deploy/kubernetes/optional/
# too, and the DaemonSet as the pod-names patch leaves it) against the Kubernetes schemas
# (kubernetes-validate, strict, in a venv under target/), the DaemonSet's privileges and the
# optional pod-names RBAC against what docs/deploy-kubernetes.md promises, the Grafana
# dashboard (JSON, required fields, metric names, PromQL through promtool when installed), the
# container build file, and the systemd unit, sysusers and tmpfiles files (systemd-analyze
# verify / security, when installed).
# Run from anywhere; exits non-zero on any failure; ends with "N passed, M failed".
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
venv=target/deploy-venv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
skipped=0

ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; [[ -n "${2:-}" ]] && sed 's/^/      /' <<<"$2"; failed=$((failed + 1)); }
skip() { echo "SKIP  $1"; skipped=$((skipped + 1)); }
check() { # name, command...
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

# --- Kubernetes ---------------------------------------------------------------------------
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    "$python" -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate
fi
if [[ -x "$venv/bin/kubernetes-validate" ]]; then
    # The optional pod-names DaemonSet, as its JSON patch leaves it.
    check "the pod-names JSON patch applies to the DaemonSet" "$venv/bin/python" - \
        deploy/kubernetes/20-daemonset.yaml deploy/kubernetes/optional/pod-names-daemonset.patch.json \
        "$work/pod-names-daemonset.yaml" <<'PY'
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for op in json.load(open(sys.argv[2])):
    *parents, last = op["path"].lstrip("/").split("/")
    node = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if op["op"] == "add" and last == "-":
        node.append(op["value"])
    elif op["op"] in ("add", "replace"):
        node[int(last) if isinstance(node, list) else last] = op["value"]
    else:
        sys.exit(f"unsupported patch op {op['op']}")
yaml.safe_dump(doc, open(sys.argv[3], "w"))
PY
    for version in 1.29.0 1.33.0; do
        for f in deploy/kubernetes/*.yaml deploy/kubernetes/optional/*.yaml "$work/pod-names-daemonset.yaml"; do
            check "kubernetes-validate --strict -k $version $f" \
                "$venv/bin/kubernetes-validate" --strict --no-warn -k "$version" "$f"
        done
    done
    # The validator must catch mistakes: a misspelt field and a mistyped value.
    sed 's/hostPID: true/hostPid: true/' deploy/kubernetes/20-daemonset.yaml >"$work/typo.yaml"
    sed 's/terminationGracePeriodSeconds: 15/terminationGracePeriodSeconds: soon/' \
        deploy/kubernetes/20-daemonset.yaml >"$work/type.yaml"
    for f in "$work/typo.yaml" "$work/type.yaml"; do
        if "$venv/bin/kubernetes-validate" --strict --no-warn -k 1.33.0 "$f" >/dev/null 2>&1; then
            bad "kubernetes-validate rejects a broken manifest ($(basename "$f"))"
        else
            ok "kubernetes-validate rejects a broken manifest ($(basename "$f"))"
        fi
    done
    check "DaemonSet privileges, mounts and limits as documented" "$venv/bin/python" - <<'PY'
import sys, yaml
ds = yaml.safe_load(open("deploy/kubernetes/20-daemonset.yaml"))
svc = yaml.safe_load(open("deploy/kubernetes/30-service.yaml"))
spec = ds["spec"]["template"]["spec"]
[c] = spec["containers"]
sc = c["securityContext"]
errs = []
caps = sc["capabilities"]
if sorted(caps.get("add", [])) != ["BPF", "PERFMON", "SYS_RAWIO"]:
    errs.append(f"capabilities added: {caps.get('add')}, want BPF, PERFMON, SYS_RAWIO only")
if caps.get("drop") != ["ALL"]:
    errs.append("capabilities must drop ALL")
for k, want in [("privileged", False), ("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)]:
    if sc.get(k) is not want:
        errs.append(f"securityContext.{k} must be {want}")
lim = c.get("resources", {}).get("limits", {})
if not {"cpu", "memory"} <= lim.keys():
    errs.append("cpu and memory limits required")
if not spec.get("tolerations"):
    errs.append("tolerations required (run on tainted nodes too)")
mounts = {m["name"]: m for m in c["volumeMounts"]}
vols = {v["name"]: v.get("hostPath", {}).get("path") for v in spec["volumes"]}
for name, path in [("sys", "/sys"), ("socket-dir", "/run/carbon-ops"), ("ledger-dir", "/var/lib/carbon-ops")]:
    if vols.get(name) != path:
        errs.append(f"volume {name} must be hostPath {path}")
if not mounts.get("sys", {}).get("readOnly"):
    errs.append("/sys must be mounted read-only")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
addr = [a for a in c["args"] if a.startswith("--metrics-addr=")]
if not addr or not addr[0].endswith(f":{ports.get('metrics')}"):
    errs.append("--metrics-addr must listen on the `metrics` container port")
sp = svc["spec"]["ports"][0]
if sp["targetPort"] != "metrics" or svc["spec"]["selector"] != ds["spec"]["selector"]["matchLabels"]:
    errs.append("Service must select the DaemonSet's pods and target port `metrics`")
print("\n".join(errs))
sys.exit(1 if errs else 0)
PY
    check "optional pod names: least privilege, bound to the agent, DaemonSet patched as documented" \
        "$venv/bin/python" - "$work/pod-names-daemonset.yaml" <<'PY'
import sys, yaml
errs = []
docs = list(yaml.safe_load_all(open("deploy/kubernetes/optional/pod-names.yaml")))
sa = yaml.safe_load(open("deploy/kubernetes/10-serviceaccount.yaml"))
role = next(d for d in docs if d["kind"] == "ClusterRole")
binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
want = [{"apiGroups": [""], "resources": ["nodes/pods"], "verbs": ["get"]}]
if role["rules"] != want:
    errs.append(f"ClusterRole must grant get on nodes/pods only, grants {role['rules']}")
if binding["roleRef"]["name"] != role["metadata"]["name"]:
    errs.append("ClusterRoleBinding must bind the ClusterRole in the same file")
subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}
if binding["subjects"] != [subject]:
    errs.append(f"ClusterRoleBinding must bind the agent's ServiceAccount only: {subject}")
ds = yaml.safe_load(open(sys.argv[1]))
spec = ds["spec"]["template"]["spec"]
[c] = spec["containers"]
if spec.get("automountServiceAccountToken") is not True:
    errs.append("the patched DaemonSet must mount the service-account token")
env = {e["name"]: e for e in c.get("env", [])}
if env.get("NODE_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "status.hostIP":
    errs.append("NODE_IP must come from the downward API (status.hostIP)")
if "--kubelet-pods-url=https://$(NODE_IP):10250/pods" not in c["args"]:
    errs.append("the patched DaemonSet must pass --kubelet-pods-url=https://$(NODE_IP):10250/pods")
print("\n".join(errs))
sys.exit(1 if errs else 0)
PY
else
    bad "kubernetes-validate installs (pip install kubernetes-validate into $venv)"
fi

# --- Grafana ------------------------------------------------------------------------------
promtool=$(command -v promtool || true)
check "dashboard JSON, fields and metric names" "$python" tests/validate_dashboard.py \
    deploy/grafana/carbon-ops-fleet.json docs/metrics.md
sed 's/carbon_ops_pod_energy_joules_total/carbon_ops_pod_energy_total/' \
    deploy/grafana/carbon-ops-fleet.json >"$work/dash.json"
if "$python" tests/validate_dashboard.py "$work/dash.json" docs/metrics.md >/dev/null; then
    bad "dashboard check rejects an undocumented metric name"
else
    ok "dashboard check rejects an undocumented metric name"
fi
if [[ -n "$promtool" ]]; then
    check "dashboard PromQL parses (promtool check rules)" "$python" tests/validate_dashboard.py \
        deploy/grafana/carbon-ops-fleet.json docs/metrics.md "$promtool"
else
    skip "dashboard PromQL (promtool not installed: apt-get install prometheus)"
fi

# --- Container build file -----------------------------------------------------------------
cf=deploy/container/Containerfile
check "Containerfile is multi-stage (build stage, then a runtime stage copying from it)" bash -c "
    [[ \$(grep -c '^FROM ' $cf) -ge 2 ]] && grep -q '^FROM .* AS build' $cf && grep -q '^COPY --from=build' $cf"
check "Containerfile entrypoint is the agent" grep -q '^ENTRYPOINT \["/usr/local/bin/carbon-ops-agent"\]' "$cf"

# --- systemd ------------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    agent_bin=$(ls "${CARGO_TARGET_DIR:-target}"/debug/carbon-ops-agent target/debug/carbon-ops-agent 2>/dev/null | head -1)
    agent_bin=${agent_bin:-/bin/true}
    # verify needs the ExecStart binary to exist: point it at a built one (or /bin/true).
    sed "s#/usr/local/bin/carbon-ops-agent#$(realpath "$agent_bin")#" \
        deploy/systemd/carbon-ops-agent.service >"$work/carbon-ops-agent.service"
    # verify exits 0 on unknown or misspelt settings; any message is a failure here.
    check "systemd-analyze verify carbon-ops-agent.service (no warnings)" bash -c \
        "out=\$(systemd-analyze verify '$work/carbon-ops-agent.service' 2>&1); rc=\$?; echo \"\$out\"; [[ \$rc -eq 0 && -z \"\$out\" ]]"
    check "systemd-analyze security: exposure at most 3.5" \
        systemd-analyze security --offline=yes --threshold=35 "$work/carbon-ops-agent.service"
    mkdir -p "$work/sysroot/etc"
    check "sysusers.d creates the carbon-users group" bash -c \
        "systemd-sysusers --root='$work/sysroot' '$root/deploy/systemd/carbon-ops.sysusers' && grep -q '^carbon-users:' '$work/sysroot/etc/group'"
    check "tmpfiles.d creates the socket and ledger directories" bash -c \
        "systemd-tmpfiles --root='$work/sysroot' --create '$root/deploy/systemd/carbon-ops.tmpfiles' && [[ -d '$work/sysroot/run/carbon-ops' && -d '$work/sysroot/var/lib/carbon-ops' ]]"
else
    skip "systemd unit checks (systemd-analyze not installed)"
fi

echo "$passed passed, $failed failed ($skipped skipped)"
[[ $failed -eq 0 ]]
