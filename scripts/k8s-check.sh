#!/usr/bin/env bash
# `make k8s-check`: validates k8s/ offline. The pinned kubernetes-validate (it bundles the Kubernetes JSON
# schemas, so validating needs no cluster and no network) is installed once into a virtualenv under .build;
# only that first install needs PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
signet=${1:?usage: scripts/k8s-check.sh SIGNET_BINARY}
venv=.build/k8s-venv
if ! cmp -s k8s/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r k8s/requirements.txt
    cp k8s/requirements.txt "$venv/requirements.txt"
fi
# SIGNET_BIN is how the tests find signet; to check-config it would be an unknown configuration key.
exec env -u SIGNET_BIN "$venv/bin/python" scripts/k8s_check.py "$signet"
