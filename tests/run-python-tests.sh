#!/usr/bin/env bash
# The Python client's tests (clients/python/tests) in a venv under target/python-venv.
# Run from the repository root (`cargo xtask test` does, after the Rust tests). The
# end-to-end module runs against target/debug/carbon-ops-agent when it has been built
# (or whatever CARBON_OPS_AGENT_BIN already names); otherwise it is skipped.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
venv=target/python-venv
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check pytest ./clients/python

if [[ -z "${CARBON_OPS_AGENT_BIN:-}" ]]; then
    for bin in "${CARGO_TARGET_DIR:-target}/debug/carbon-ops-agent" target/debug/carbon-ops-agent; do
        if [[ -x "$bin" ]]; then
            CARBON_OPS_AGENT_BIN=$(realpath "$bin")
            export CARBON_OPS_AGENT_BIN
            break
        fi
    done
fi
echo "python client tests (agent: ${CARBON_OPS_AGENT_BIN:-none, end-to-end test skipped})"

# The tests import the installed package (conftest falls back to src/ only when it is absent).
"$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir clients/python \
    clients/python/tests "$@"
